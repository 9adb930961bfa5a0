"""llvmpipe's worker threads are created inside the capsule, by the one libc
of the process: while es2gears_x11 renders through the shims, its
llvmpipe-N threads wait in the program's own libc.so.6, as they do without
capsules (the capsule has no second libc: its libc.so.6 is a placeholder of
the program's, so no second copy of libc is even mapped)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from graphics_world import Graphics
from helpers import compile_c, stop

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \S+\s*(.*)$")


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str


def mappings(pid: int) -> list[Mapping]:
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if m := MAPPING.match(line):
            out.append(Mapping(int(m[1], 16), int(m[2], 16), int(m[3], 16), m[4]))
    return out


def worker_pcs(pid: int) -> dict[str, int]:
    """Thread name -> user-space pc, for llvmpipe workers blocked in a syscall."""
    pcs = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "syscall").read_text().split()
        except OSError:
            continue  # the thread ended
        if name.startswith("llvmpipe-") and len(fields) == 9:
            pcs[name] = int(fields[8], 16)
    return pcs


def libc_of(pc: int, maps: list[Mapping]) -> int | None:
    """The load address of the libc.so.6 copy whose code holds pc, if any."""
    for m in maps:
        if m.start <= pc < m.end and os.path.basename(m.path) == "libc.so.6":
            return m.start - m.offset
    return None


def program_libc_base(err_file: Path) -> int | None:
    m = re.search(r"program libc base=0x([0-9a-f]+)", err_file.read_text(errors="replace"))
    return int(m[1], 16) if m else None


def sample_workers(extra_env: dict[str, str], display: str,
                   tmp_path: Path) -> tuple[int | None, dict[str, int]]:
    """Run es2gears_x11 until two llvmpipe workers were seen blocked in a
    libc: (the program's libc load address, worker -> that libc's address)."""
    probe = compile_c(tmp_path / "libc_base.so", [FIXTURES / "libc_base.c"],
                      shared_soname="libc_base.so")
    env = {**os.environ, **extra_env, "DISPLAY": display, "LD_PRELOAD": str(probe),
           "LP_NUM_THREADS": "2"}
    err_file = tmp_path / "stderr"
    seen: dict[str, int] = {}
    base = None
    with err_file.open("w") as err, subprocess.Popen(
            ["es2gears_x11"], env=env, stdout=subprocess.DEVNULL, stderr=err) as proc:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                base = base or program_libc_base(err_file)
                maps = mappings(proc.pid)
                for name, pc in worker_pcs(proc.pid).items():
                    if (libc := libc_of(pc, maps)) is not None:
                        seen[name] = libc
                if base and len(seen) >= 2:
                    break
                time.sleep(0.2)
        finally:
            stop(proc, signal.SIGINT)
    assert base is not None, err_file.read_text()[-2000:]
    assert len(seen) >= 2, f"llvmpipe workers waiting in a libc: {seen}"
    return base, seen


def test_llvmpipe_workers_wait_in_the_programs_libc_without_capsules(
        display: str, tmp_path: Path) -> None:
    """The probe's sanity check, on the plain host stack."""
    base, seen = sample_workers({}, display, tmp_path)
    assert all(libc == base for libc in seen.values()), (hex(base or 0), seen)


def test_llvmpipe_workers_wait_in_the_programs_libc_through_capsules(
        gfx: Graphics, display: str, tmp_path: Path) -> None:
    base, seen = sample_workers(gfx.with_shims(), display, tmp_path)
    assert all(libc == base for libc in seen.values()), (hex(base or 0), seen)
