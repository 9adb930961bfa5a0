"""Fixtures of the Python fuzz tests: the seed libraries, built once."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from fuzz_support import SeedMap, build_seeds, seed_map  # noqa: E402


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SeedMap]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    built = build_seeds(tmp_path_factory.mktemp("fuzz-seeds"))
    return {name: seed_map(data) for name, data in built.items()}
