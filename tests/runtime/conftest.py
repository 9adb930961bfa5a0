"""Fixtures for the libcapsule runtime tests: everything is built once per
session with gcc into a temporary directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from boundary import Boundary, build_boundary

from build import (
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    Built,
    build_demo,
    build_libcapsule,
    build_shim,
    make_prefix,
)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("runtime")
    libcapsule_dir = root / "libcapsule"
    build_libcapsule(libcapsule_dir)
    real_dir = root / "real"
    demo, demodep = build_demo(real_dir)
    prefix = make_prefix(root / "prefix", [demo, demodep])
    shim_dir = root / "shim"
    build_shim(shim_dir, libcapsule_dir, "libdemo.so.1", str(prefix), DEMO_SYMBOLS,
               DEMO_VERSIONS)
    return Built(root, libcapsule_dir, real_dir, prefix, shim_dir, demo, demodep)


@pytest.fixture(scope="session")
def boundary(built: Built) -> Boundary:
    return build_boundary(built.root / "boundary", built.libcapsule_dir)
