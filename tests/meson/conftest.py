"""Fixtures for the Meson module tests: capsule installed into fresh
environments exactly as users install it, the Meson releases to drive, and a
prefix tree holding this machine's libz."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from mesontools import Meson

from helpers import REPO, SYSTEM_LIBDIR, make_prefix_tree, run

DEBIAN_MESON = Path("/usr/bin/meson")
DEBIAN_PYTHON = Path("/usr/bin/python3")


def _pip(python: Path, *args: str) -> None:
    """pip of this test interpreter acting on another environment."""
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", *args])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """capsule built once into a wheel, as `pip install <repo>` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(out), str(REPO)])
    (found,) = out.glob("capsule-*.whl")
    return found


def _env_for(venv: Path) -> dict[str, str]:
    return {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


@pytest.fixture(scope="session")
def pypi_meson(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Meson:
    """A fresh venv with PyPI's meson, ninja, pyelftools and capsule."""
    venv = tmp_path_factory.mktemp("venv-pypi")
    run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)])
    python = venv / "bin" / "python"
    _pip(python, "meson", "ninja", "pyelftools")
    _pip(python, "--no-deps", str(wheel))
    return Meson("pypi", python, (str(venv / "bin" / "meson"),), _env_for(venv))


@pytest.fixture(scope="session")
def debian_meson(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Meson:
    """Debian's own meson (1.0.1 on /usr/bin/python3), run by a venv that sees
    the system packages and holds only capsule: nothing lands in /usr."""
    if not DEBIAN_MESON.exists() or not DEBIAN_PYTHON.exists():
        pytest.skip("Debian's meson is not installed (apt-get install meson)")
    venv = tmp_path_factory.mktemp("venv-debian")
    run([str(DEBIAN_PYTHON), "-m", "venv", "--without-pip", "--system-site-packages", "--clear", str(venv)])
    python = venv / "bin" / "python3"
    _pip(python, "--no-deps", str(wheel))
    # Not `python /usr/bin/meson`: Meson records a script without .py as the
    # command ninja regenerates with, and /usr/bin/meson's shebang is
    # /usr/bin/python3, which has no hook. `-m mesonbuild.mesonmain` is recorded
    # as this interpreter + -m, so regeneration keeps the venv.
    return Meson("debian", python, (str(python), "-m", "mesonbuild.mesonmain"), _env_for(venv))


@pytest.fixture(scope="session", params=["pypi", "debian"])
def meson(request: pytest.FixtureRequest) -> Meson:
    return request.getfixturevalue(f"{request.param}_meson")


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prefix tree with this machine's libz (hard links) and an ld.so.cache."""
    return make_prefix_tree(tmp_path_factory.mktemp("tree"), [SYSTEM_LIBDIR / "libz.so.1"])

