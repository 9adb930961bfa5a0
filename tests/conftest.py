"""Suite-wide pytest configuration."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import testarch

# The suites CAPSULE_TEST_ARCH applies to (tests/testarch.py); the others
# test this machine's own architecture, or the configure-time side of every
# architecture, and are skipped when it names another one.
ARCH_SUITES = ("runtime", "e2e")
# An emulated architecture's programs start under qemu-user, as binfmt_misc
# would start them.
testarch.emulate_exec()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not testarch.CROSS:
        return
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=f"CAPSULE_TEST_ARCH={testarch.ARCH.name} applies to "
                                   f"tests/{' and tests/'.join(ARCH_SUITES)} only")
    for item in items:
        rel = Path(str(item.path)).resolve().relative_to(here)
        if rel.parts[0] not in ARCH_SUITES:
            item.add_marker(skip)




@pytest.fixture(scope="session", autouse=True)
def session_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """libcapsule keeps resolutions in XDG_CACHE_HOME/capsule: never in the
    account's ~/.cache during the tests, also for environments a module's
    fixture copies before any test's own is set."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("session-cache-home"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True)
def private_cache_home(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps libcapsule's resolutions in a directory of its own,
    as a user has one: no test sees another's, and a test's later runs take
    them as a user's later starts do. (Not CAPSULE_CACHE_DIR: the runtime
    tests clear CAPSULE_* from the environment their programs get.)"""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
