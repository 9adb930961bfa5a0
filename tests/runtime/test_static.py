"""Static programs (issue 14, item 4): a -static or -static-pie program that
dlopen()s a shim used to die of SIGSEGV (libcapsule's first thread-local
access, in the second glibc such a dlopen brings). It now ends with one
capsule: line and status 127, as ld.so ends a program whose libraries
cannot load: the dlopen itself cannot be made to fail (libcapsule/static.h
says why)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from build import FIXTURES, GCC, SANITIZE, Built, Sym, build_lib, build_shim, make_prefix, sh
from testarch import ARCH, system_libdirs

KINDS = {"static": ["-static"], "static-pie": ["-static-pie", "-fPIE"]}


@pytest.fixture(scope="module")
def static_world(built: Built) -> tuple[Path, dict[str, Path]]:
    libc_a = system_libdirs()[0] / "libc.a"
    if not libc_a.exists():
        pytest.skip(f"{libc_a} is missing (libc6-dev, for i386 libc6-dev-i386): no static "
                    "programs")
    if SANITIZE == "asan":
        pytest.skip("ASan does not support statically linked programs")
    root = built.root / "static"
    real = build_lib(root / "real", "libdbg.so.1", [FIXTURES / "dbg.c"])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdbg.so.1",
               str(make_prefix(root / "prefix", [real])), [Sym("dbg_call", None)], [])
    programs = {}
    for kind, flags in KINDS.items():
        programs[kind] = root / f"static_prog_{kind}"
        # ld warns that dlopen in a static program needs the shared glibc at
        # run time: that is the point.
        sh([*GCC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
            *flags, FIXTURES / "static_prog.c", "-o", programs[kind]])
    return shim_dir / "libdbg.so.1", programs


@pytest.mark.parametrize("kind", KINDS)
def test_a_static_program_is_told_it_cannot_use_capsules(static_world: tuple[Path, dict[str, Path]],
                                                         kind: str) -> None:
    shim, programs = static_world
    # Not under memcheck: it cannot replace a static program's malloc, and
    # reports glibc's own start-up (libc.a) before libcapsule runs.
    proc = subprocess.run([programs[kind], shim], capture_output=True, text=True, timeout=60,
                          check=False, env={k: v for k, v in os.environ.items()
                                            if not k.startswith(("CAPSULE_", "LD_"))})
    if ARCH.name == "aarch64":
        # aarch64 code reaches thread-local variables through TLS
        # descriptors, which a static program's dlopen() can only place in
        # its static TLS block: ld.so refuses libcapsule (its thread-local
        # error text) before any constructor runs, and the dlopen() fails
        # as for any library it cannot load.
        assert proc.returncode == 1, proc
        assert proc.stdout.startswith("dlopen=failed "), proc
        assert proc.stdout.endswith("libcapsule.so.0: cannot allocate memory in static TLS "
                                    "block\n"), proc
        assert proc.stderr == ""
        return
    assert proc.returncode == 127, proc
    assert proc.stderr.splitlines() == [
        "capsule: libdbg.so.1: this program is statically linked (-static or -static-pie), "
        "and a static program cannot use capsules: exiting (its dlopen() cannot be made to "
        "fail)"], proc.stderr
    assert proc.stdout == ""
