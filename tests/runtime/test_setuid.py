"""setuid safety: a setuid-root program that loads a shim, run by an
unprivileged user, ignores every CAPSULE_* variable (libcapsule reads them
with secure_getenv). The same binary without the setuid bit, run the same way,
honours them: that is what proves the variables were really there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from build import SANITIZE, World, as_other_user, build_program, glibc_link_flags
from testarch import require_unemulated

HOSTILE = {
    "CAPSULE_DEBUG": "all",
    "CAPSULE_PREFIX": "/nonexistent/global",
}


@pytest.fixture(scope="module")
def programs(world: World) -> tuple[Path, Path]:
    require_unemulated("the kernel runs a setuid program as what it is; qemu-user, a "
                       "program started by root, cannot")
    if os.geteuid() != 0:
        pytest.skip("making a setuid-root program needs root")
    if SANITIZE == "valgrind":
        pytest.skip("valgrind cannot run a setuid program as what it is")
    out = world.root / "suid"
    # setuid programs ignore LD_LIBRARY_PATH: the shim comes from the RUNPATH.
    # Under CAPSULE_TEST_GLIBC both programs get that glibc's ld.so as their
    # interpreter instead of being started through it (see glibc_link_flags).
    plain = build_program(world, out, [], [],
                          extra=[f"-Wl,-rpath,{world.shim_dir}", *glibc_link_flags()])
    if os.statvfs(out).f_flag & os.ST_NOSUID:
        pytest.skip(f"{out} is on a nosuid file system")
    suid = out / "prog-suid"
    shutil.copy2(plain, suid)
    os.chown(suid, 0, 0)
    suid.chmod(0o4755)
    return plain, suid


def run(prog: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CAPSULE_", "LD_"))}
    return subprocess.run([*as_other_user(), str(prog)], env={**base, **env},
                          capture_output=True, text=True, timeout=30, check=False)


def where(proc: subprocess.CompletedProcess[str]) -> str:
    got = dict(ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)
    assert got["add"] == "5", got
    return got["user_counter_object"]


def test_variables_work_without_setuid(world: World, programs: tuple[Path, Path]) -> None:
    plain, _ = programs
    proc = run(plain, {})
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert where(proc).startswith(f"{world.prefix}/")
    proc = run(plain, HOSTILE)
    assert proc.returncode == 127, proc
    assert "capsule[path]: " in proc.stderr
    assert "capsule: libdemo.so.1: prefix /nonexistent/global: " in proc.stderr


def test_setuid_program_ignores_every_variable(world: World,
                                                programs: tuple[Path, Path]) -> None:
    _, suid = programs
    # A complete, valid prefix elsewhere must be ignored as firmly as a bad one.
    elsewhere = world.root / "elsewhere"
    if not elsewhere.exists():
        shutil.copytree(world.prefix, elsewhere, symlinks=True)
    for env in (HOSTILE, {**HOSTILE, "CAPSULE_LIBDEMO_SO_1_PREFIX": "/nonexistent/one"},
                {"CAPSULE_PREFIX": str(elsewhere), "CAPSULE_LIBDEMO_SO_1_PREFIX": str(elsewhere),
                 "CAPSULE_DEBUG": "path,search,ldcache,reloc,ns"}):
        proc = run(suid, env)
        assert proc.returncode == 0, (env, proc)
        assert proc.stderr == "", (env, proc.stderr)  # no trace either
        assert where(proc).startswith(f"{world.prefix}/"), env
    # The plain binary does take that other prefix: the variables were live.
    plain, _ = programs
    proc = run(plain, {"CAPSULE_PREFIX": str(elsewhere)})
    assert proc.returncode == 0 and where(proc).startswith(f"{elsewhere}/"), proc
