"""Shared helpers of the Python-side tests (a unique module name: other test
directories have their own conftest.py and helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")


def system_lib(soname: str) -> Path:
    path = LIBDIR / soname
    if not path.exists():
        pytest.skip(f"{path} is not installed")
    return path
