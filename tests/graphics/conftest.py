"""Fixtures for the graphics tests (the world itself is in graphics_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graphics_world import Graphics, make_graphics, start_xvfb


@pytest.fixture(scope="session")
def gfx(tmp_path_factory: pytest.TempPathFactory) -> Graphics:
    return make_graphics(tmp_path_factory.mktemp("graphics"))


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    yield from start_xvfb()
