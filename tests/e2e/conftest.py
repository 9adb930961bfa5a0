"""Fixtures for the end-to-end tests (the world itself is built in e2e_world.py)."""

from __future__ import annotations

import pytest

from e2e_world import World, make_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory)
