"""Start-up races (issue 14, item 3): a thread started by an earlier
library's constructor dlopens a second shim, and calls into the first
shim's library, while the first shim is still setting up its capsule. No
libcapsule lock is held across calls into ld.so (set-ups run under ld.so's
own load lock), so nothing deadlocks; a call that reaches a shim's stub
before its target is known waits for the set-up instead of aborting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from boundary import Boundary
from build import CC, FIXTURES, SANITIZE, Built, build_lib, program_prefix, sh, valgrind_unusable

RUNS = 5 if SANITIZE == "valgrind" else 40


@pytest.fixture(scope="module")
def race(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("race")
    lib = build_lib(root / "lib", "librace.so", [FIXTURES / "race.c"], flags=["-std=gnu11"],
                    libs=["-ldl", "-lpthread"], sanitize=True)
    prog = root / "race_prog"
    # libdemo first on the link line: librace's constructor then runs first.
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", f"-I{FIXTURES}",
        FIXTURES / "race_prog.c", "-o", prog, built.demo, lib,
        f"-Wl,-rpath-link,{built.real_dir}", "-lpthread"])
    return prog, lib.parent


def test_a_thread_racing_the_first_set_up(built: Built, boundary: Boundary,
                                          race: tuple[Path, Path]) -> None:
    prog, lib_dir = race
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = f"{built.shim_dir}:{lib_dir}:{boundary.own_dir}"
    env["RACE_SHIM2"] = str(boundary.shim_dir / "libbound.so.1")
    if SANITIZE == "asan":
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    for run in range(RUNS):
        try:
            proc = subprocess.run([*program_prefix(env), str(prog)], env=env, capture_output=True,
                                  text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {run} deadlocked")
        assert proc.returncode == 0, (run, proc)
        assert proc.stdout == "main=3 second=ok add=42\n", (run, proc)


@pytest.mark.skipif(valgrind_unusable() is not None, reason=valgrind_unusable() or "")
def test_lock_order_under_helgrind(built: Built, boundary: Boundary,
                                   race: tuple[Path, Path]) -> None:
    """helgrind sees every lock, ld.so's and libcapsule's: no order between
    them is ever taken both ways (the deadlock above was one)."""
    prog, lib_dir = race
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = f"{built.shim_dir}:{lib_dir}:{boundary.own_dir}"
    env["RACE_SHIM2"] = str(boundary.shim_dir / "libbound.so.1")
    for run in range(2):
        try:
            proc = subprocess.run(["valgrind", "--tool=helgrind", "-q", str(prog)], env=env,
                                  capture_output=True, text=True, timeout=240, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {run} deadlocked under helgrind")
        assert proc.stdout == "main=3 second=ok add=42\n", (run, proc.stderr[-3000:])
        assert "lock order" not in proc.stderr, proc.stderr

