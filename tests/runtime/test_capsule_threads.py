"""Threads started inside a capsule (by the capsule's libc) allocating while
the program's main thread allocates: the one allocator (the program's) must
stay consistent. With a second libc in the namespace the program's libc does
not know those threads exist (its __libc_single_threaded stays 1), so its
malloc skips the arena lock. Found by the glibc matrix (Mesa's llvmpipe
threads corrupted the heap in egl_png under glibc 2.43, 5-7 runs in 100);
this program corrupted it on 2.36 too, in most runs, until the capsule
used the program's one libc (now its threads are the program's libc's).
Under ASan and memcheck their own allocators replace malloc and lock for
themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from programs import parse, run

from build import (
    CC,
    FIXTURES,
    MULTIARCH,
    SANITIZE,
    Built,
    Sym,
    build_lib,
    build_shim,
    make_prefix,
    sh,
)

RUNS = 3 if SANITIZE == "valgrind" else 30


@pytest.fixture(scope="module")
def storm(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("storm")
    lib = build_lib(root / "real", "libstorm.so.1", [FIXTURES / "storm.c"], libs=["-lpthread"])
    prefix = make_prefix(root / "prefix", [lib])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libstorm.so.1", str(prefix),
               [Sym("storm_start", None), Sym("storm_join", None)], [])
    prog = root / "storm_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "storm_prog.c", "-o",
        prog, lib, f"-Wl,-rpath-link,{lib.parent}"])
    assert (prefix / MULTIARCH / "libstorm.so.1").exists()
    return prog, shim_dir


def test_capsule_threads_and_the_program_allocate_at_once(storm: tuple[Path, Path]) -> None:
    prog, shim_dir = storm
    for i in range(RUNS):
        proc = run([prog], {"LD_LIBRARY_PATH": str(shim_dir)})
        assert proc.returncode == 0, (i, proc)
        got = parse(proc.stdout)
        assert got == {"started": "4", "damaged": "0", "mine": "0"}, (i, proc)
