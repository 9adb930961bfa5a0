"""Fixtures for the libcapsule runtime tests: everything is built once per
session with gcc into a temporary directory."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import (
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    build_lib,
    build_libcapsule,
    build_shim,
    make_prefix,
)


@dataclass
class Built:
    root: Path
    libcapsule_dir: Path
    real_dir: Path        # the real libdemo.so.1 + libdemodep.so.1 (link time)
    prefix: Path          # a prefix tree holding both
    shim_dir: Path        # the shim libdemo.so.1 (built-in prefix = `prefix`)
    demo: Path
    demodep: Path


def build_demo(out: Path, *flags: str) -> tuple[Path, Path]:
    demodep = build_lib(out, "libdemodep.so.1", [FIXTURES / "demodep.c"])
    demo = build_lib(out, "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map", flags=list(flags),
                     libs=[demodep])
    return demo, demodep


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
