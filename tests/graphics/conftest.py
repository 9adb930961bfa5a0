"""Fixtures for the graphics tests (the world itself is in graphics_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graphics_world import Graphics, graphics_trees, make_graphics, start_xvfb


@pytest.fixture(scope="session")
def gfx(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    return make_graphics(tmp_path_factory.mktemp("graphics"))


def other_world(tmp_path_factory: pytest.TempPathFactory, arch: str) -> Graphics:
    """The world for another architecture's programs: its Mesa from Debian's
    packages, its programs and shims built with its cross file (skipped,
    with the reason, when its compiler cannot link or its emulator cannot
    run a program, or the packages cannot be fetched); its shims only once
    its runtime exists."""
    blocker = graphics_trees._arch_tree().toolchain_blocker(arch)
    if blocker:
        pytest.skip(blocker)
    try:
        return make_graphics(tmp_path_factory.mktemp(f"graphics-{arch}"), arch)
    except graphics_trees.TreeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def gfx_i386(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    """32-bit programs: built -m32, on i386 Mesa."""
    return other_world(tmp_path_factory, "i386")


@pytest.fixture(scope="session")
def gfx_aarch64(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    """aarch64 programs: built by clang, on arm64 Mesa, under qemu-aarch64."""
    return other_world(tmp_path_factory, "aarch64")


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    yield from start_xvfb()
