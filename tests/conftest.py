"""Suite-wide pytest configuration."""

from __future__ import annotations

import sys
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
