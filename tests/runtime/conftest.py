"""Fixtures for the libcapsule runtime tests: everything is built once per
session with gcc into a temporary directory."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from boundary import Boundary, build_boundary
from build import (
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    Built,
    World,
    build_demo,
    build_libcapsule,
    build_program,
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
def world(built: Built) -> Iterator[World]:
    """The demo setup again, in a directory every user can read (pytest's own
    temporary directories are private to root), for runs as another user."""
    root = Path(tempfile.mkdtemp(prefix="capsule-world-"))
    root.chmod(0o755)
    try:
        libcapsule_dir = root / "libcapsule"
        libcapsule_dir.mkdir()
        shutil.copy2(built.libcapsule_dir / "libcapsule.so.0", libcapsule_dir)
        (libcapsule_dir / "libcapsule.so").symlink_to("libcapsule.so.0")
        real_dir = root / "real"
        real_dir.mkdir()
        demo = Path(shutil.copy2(built.demo, real_dir))
        demodep = Path(shutil.copy2(built.demodep, real_dir))
        prefix = make_prefix(root / "prefix", [demo, demodep])
        shim_dir = root / "shim"
        build_shim(shim_dir, libcapsule_dir, "libdemo.so.1", str(prefix), DEMO_SYMBOLS,
                   DEMO_VERSIONS)
        w = World(root, libcapsule_dir, real_dir, prefix, shim_dir, demo, demodep,
                  program=root / "prog/prog")
        build_program(w, root / "prog", [], [])
        for path in root.rglob("*"):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else
                           path.stat().st_mode | 0o444)
        yield w
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def boundary(built: Built) -> Boundary:
    return build_boundary(built.root / "boundary", built.libcapsule_dir)
