"""Fixtures for the libcapsule runtime tests: everything is built once per
session with gcc into a temporary directory."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import (
    CC,
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    SANITIZE,
    build_lib,
    build_libcapsule,
    build_shim,
    make_prefix,
    sh,
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


def build_program(b: Built, out: Path, mode: list[str], kind: list[str],
                  extra: list[str] | None = None) -> Path:
    """fixtures/prog.c linked against the real libdemo.so.1, libuser.so and
    libolduser.so (built into `out` with `mode`)."""
    user = build_lib(out, "libuser.so", [FIXTURES / "user.c"], flags=mode, libs=[b.demo],
                     version_script=FIXTURES / "user.map")
    old = build_lib(out / "old", "libdemo.so.1", [FIXTURES / "demo_old.c"],
                    version_script=FIXTURES / "demo_old.map")
    olduser = build_lib(out, "libolduser.so", [FIXTURES / "olduser.c"], flags=mode, libs=[old])
    prog = out / "prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", *kind, *mode, f"-I{FIXTURES}",
        FIXTURES / "prog.c", "-o", prog, user, olduser, b.demo, *(extra or []),
        f"-Wl,-rpath,{out}", f"-Wl,-rpath-link,{b.real_dir}", "-Wl,--allow-shlib-undefined",
        "-ldl"])
    return prog


@dataclass
class World(Built):
    program: Path


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


def as_other_user() -> list[str]:
    """The command prefix that drops root (to nobody), or [] when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop to nobody")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    if SANITIZE == "coverage":
        # nobody cannot update root's gcov counters: send its own elsewhere
        # (they are not counted; root runs cover the same code).
        other = Path(tempfile.gettempdir()) / "capsule-gcov-nobody"
        other.mkdir(exist_ok=True)
        other.chmod(0o1777)
        drop += ["env", f"GCOV_PREFIX={other}"]
    return drop
