"""Debuggers (issue 14, item 6): gdb attached to a process with a capsule,
or reading its core, names every object the capsule loaded, the in-memory
ones (the bridge, the placeholders) included, and shows the capsule's
frames in a backtrace."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import CC, FIXTURES, MULTIARCH, SANITIZE, Built, Sym, build_lib, build_shim, make_prefix, sh
from testarch import require_unemulated

GDB_TIMEOUT = 20


@dataclass
class Dbg:
    real: Path
    prefix: Path
    shim_dir: Path
    program: Path


@pytest.fixture(scope="module")
def dbg(built: Built) -> Dbg:
    require_unemulated("gdb cannot attach to, or read the cores of, a qemu-user guest")
    if not shutil.which("gdb"):
        pytest.skip("gdb is missing (scripts/bootstrap.sh installs it)")
    if SANITIZE == "valgrind":
        pytest.skip("gdb and valgrind cannot both trace one process")
    root = built.root / "dbg"
    real = build_lib(root / "real", "libdbg.so.1", [FIXTURES / "dbg.c"])
    prefix = make_prefix(root / "prefix", [real])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdbg.so.1", str(prefix),
               [Sym("dbg_call", None)], [])
    program = root / "dbg_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", f"-I{FIXTURES}",
        FIXTURES / "dbg_prog.c", "-o", program, real])
    return Dbg(real, prefix, shim_dir, program)


def env(d: Dbg) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CAPSULE_", "LD_"))}
    full["LD_LIBRARY_PATH"] = str(d.shim_dir)
    return full


def gdb(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """gdb in batch mode, no init files, stdin closed: nothing can prompt."""
    return subprocess.run(["gdb", "-batch", "-nx", *map(str, args)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=GDB_TIMEOUT, check=False)


def ptrace_permitted() -> None:
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    if scope.exists() and scope.read_text().strip() not in ("0",) and os.geteuid() != 0:
        pytest.skip(f"ptrace of a non-child is not permitted here ({scope} is "
                    f"{scope.read_text().strip()})")


def frames(out: str) -> list[str]:
    """The function of each backtrace line."""
    found = []
    for line in out.splitlines():
        m = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", line)
        if m:
            found.append(m[1])
    return found


def assert_capsule_backtrace(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 0, out
    # The program's callback, called from the capsule's dbg_call, called by main.
    called = frames(out.stdout)
    assert called[-2:] == ["dbg_call", "main"], out.stdout
    assert called[-3] in ("waiter", "crasher"), out.stdout
    assert "dbg.c:" in out.stdout, out.stdout  # the capsule's frame, with its line


def attached(d: Dbg, *commands: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Runs `gdb -p` with commands on dbg_prog stopped in the capsule's
    frame; the process id and gdb's outcome."""
    ptrace_permitted()
    proc = subprocess.Popen([d.program, "wait"], env=env(d), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout and proc.stdout.readline() == "ready\n"
        args = [a for c in commands for a in ("-ex", c)]
        return proc.pid, gdb("-p", str(proc.pid), *args)
    finally:
        proc.kill()
        proc.wait()


def test_gdb_attaches_and_shows_the_capsule_frame(dbg: Dbg) -> None:
    """gdb -p: no hang, every in-memory object read (by its /proc/PID/fd/N
    name), the frame of the real library from the prefix in the backtrace."""
    pid, out = attached(dbg, "info sharedlibrary", "bt")
    assert_capsule_backtrace(out)
    in_memory = [line for line in out.stdout.splitlines() if f"/proc/{pid}/fd/" in line]
    assert len(in_memory) >= 2, out.stdout  # the bridge and libc.so.6's placeholder
    assert all(" Yes" in line for line in in_memory), out.stdout
    prefix_lib = f"{dbg.prefix}/{MULTIARCH}/libdbg.so.1"
    assert any(line.endswith(prefix_lib) and " Yes" in line
               for line in out.stdout.splitlines()), out.stdout
    assert "/proc/self/fd" not in out.stdout + out.stderr


def test_gdb_reads_the_core_gcore_wrote(dbg: Dbg, tmp_path: Path) -> None:
    if SANITIZE == "asan":
        pytest.skip("gcore of an ASan process writes its shadow memory: tens of GB")
    core = tmp_path / "core"
    _, out = attached(dbg, f"gcore {core}")
    assert out.returncode == 0 and core.exists(), out
    # The process is gone: gdb says it cannot read the in-memory objects
    # (warnings, no prompt) and shows the backtrace.
    assert_capsule_backtrace(gdb(dbg.program, core, "-ex", "bt"))


def test_gdb_reads_the_core_of_a_crash_in_a_capsule(dbg: Dbg, tmp_path: Path) -> None:
    if SANITIZE == "asan":
        pytest.skip("ASan turns core dumps off (its shadow memory would make tens of GB)")
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core dumps go elsewhere here (core_pattern {pattern!r})")

    def allow_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    proc = subprocess.run([dbg.program, "crash"], env=env(dbg), cwd=tmp_path,
                          preexec_fn=allow_core, capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGABRT, proc
    cores = list(tmp_path.glob("core*"))
    if not cores:
        pytest.skip(f"the kernel wrote no core (core_pattern {pattern!r})")
    assert_capsule_backtrace(gdb(dbg.program, cores[0], "-ex", "bt"))
