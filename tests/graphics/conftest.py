"""Fixtures for the graphics tests (the world itself is in graphics_world.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from graphics_world import Graphics, graphics_trees, make_graphics, start_xvfb


@pytest.fixture(scope="session")
def gfx(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    return make_graphics(tmp_path_factory.mktemp("graphics"))


@pytest.fixture(scope="session")
def gfx_i386(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    """The world for 32-bit programs: i386 Mesa from Debian's packages
    (skipped, with the reason, when gcc -m32 cannot link or the packages
    cannot be fetched); its shims only once the i386 runtime exists."""
    root = tmp_path_factory.mktemp("graphics-i386")
    (root / "m32.c").write_text("int main(void) { return 0; }\n")
    m32 = subprocess.run(["gcc", "-m32", str(root / "m32.c"), "-o", str(root / "m32")],
                         capture_output=True, check=False)
    if m32.returncode != 0:
        pytest.skip("gcc -m32 cannot link: gcc-multilib is not installed "
                    "(scripts/bootstrap.sh installs it)")
    try:
        return make_graphics(root, "i386")
    except graphics_trees.TreeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    yield from start_xvfb()
