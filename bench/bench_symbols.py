#!/usr/bin/env python3
"""Benchmark: read a library's exported symbols with capsule's bulk reader vs
pyelftools' per-symbol objects, the whole `capsule-shim symbols` command vs
`readelf --dyn-syms -W` (both as fresh processes, in the same run), and time
shim rendering; then `meson setup` of an empty project against one with a
libLLVM shim. Prints two tables.

    .venv/bin/python bench/bench_symbols.py [--runs N] [--no-meson] [SONAME ...]

The per-symbol baseline runs once per library (it takes seconds on libLLVM).
The two commands run alternately, N times each (default 9), so both see the
same machine load; the table gives the median and the best wall time of each.
The bulk reader and the renderer take the best of several in-process runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elftools.elf.elffile import ELFFile

from capsule_module.elfreader import read_library
from capsule_module.locate import find_library
from capsule_module.render import render_shim

DEFAULT_LIBS = ["libz.so.1", "libGL.so.1", "libLLVM-15.so.1"]
EXPORTED_BINDS = ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")
CAPSULE_SHIM = Path(sys.executable).parent / "capsule-shim"


@dataclass(frozen=True)
class Row:
    soname: str
    exported: int
    bulk: float
    per_symbol: float
    render: float
    command: list[float]  # wall seconds of each `capsule-shim symbols` run
    readelf: list[float]  # wall seconds of each `readelf --dyn-syms -W` run


def per_symbol_pyelftools(path: Path) -> int:
    """The straightforward reader: one pyelftools object per symbol and version."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        versym = elf.get_section_by_name(".gnu.version")
        verdef = elf.get_section_by_name(".gnu.version_d")
        names = {}
        if verdef is not None:
            for vd, aux in verdef.iter_versions():
                names[vd["vd_ndx"]] = next(aux).name
        count = 0
        for i, sym in enumerate(dynsym.iter_symbols()):
            if sym["st_shndx"] == "SHN_UNDEF" or sym["st_info"]["bind"] not in EXPORTED_BINDS:
                continue
            if versym is not None:
                ndx = versym.get_symbol(i)["ndx"]
                _version = names.get(ndx if isinstance(ndx, int) else 0)
            count += 1
        return count


def best_of(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def wall(argv: list[str]) -> float:
    """Wall time of one run of argv, its output discarded (as to a file)."""
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def commands(soname: str, path: Path, runs: int) -> tuple[list[float], list[float]]:
    """Alternating runs of capsule-shim symbols and readelf on the same library."""
    ours = [str(CAPSULE_SHIM), "symbols", soname, "--prefix", "/"]
    theirs = ["readelf", "--dyn-syms", "-W", str(path)]
    wall(ours), wall(theirs)  # warm the page cache
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        times[0].append(wall(ours))
        times[1].append(wall(theirs))
    return times


def bench(soname: str, runs: int) -> Row:
    path = find_library(soname, "/")
    bulk_t, lib = best_of(lambda: read_library(path), 5)
    slow_t, _ = best_of(lambda: per_symbol_pyelftools(path), 1)
    render_t, _ = best_of(lambda: render_shim([lib], soname=lib.soname, prefix="/host",
                                              exclude=[], exports=[]), 3)
    ours, theirs = commands(soname, path, runs)
    return Row(soname, len(lib.symbols), bulk_t, slow_t, render_t, ours, theirs)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def print_table(rows: list[Row]) -> None:
    print("| library | exported | bulk read ms | per-symbol pyelftools ms | speed-up "
          "| `capsule-shim symbols` ms, median (best) | `readelf --dyn-syms -W` ms, median (best) "
          "| ratio of medians | render ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ours, theirs = statistics.median(r.command), statistics.median(r.readelf)
        print(f"| {r.soname} | {r.exported:,} | {ms(r.bulk)} | {ms(r.per_symbol)} "
              f"| {r.per_symbol / r.bulk:.1f}x | {ms(ours)} ({ms(min(r.command))}) "
              f"| {ms(theirs)} ({ms(min(r.readelf))}) | {ours / theirs:.2f} | {ms(r.render)} |")


MESON_PROJECTS = {
    "empty project": "project('empty', 'c')\n",
    "one libLLVM-15.so.1 shim": "project('llvm', 'c')\ncapsule = import('capsule')\n"
                                "capsule.shim('libLLVM-15.so.1', search_prefix: '/')\n",
}


def meson_setups(runs: int) -> dict[str, list[float]]:
    """Wall time of `meson setup` (this environment's Meson) of each project,
    alternating, from a fresh build directory each time."""
    meson = str(Path(sys.executable).parent / "meson")
    times: dict[str, list[float]] = {name: [] for name in MESON_PROJECTS}
    with tempfile.TemporaryDirectory(prefix="bench-symbols-") as tmp:
        for i, text in enumerate(MESON_PROJECTS.values()):
            (Path(tmp) / str(i)).mkdir()
            (Path(tmp) / str(i) / "meson.build").write_text(text)
        for run in range(runs + 1):  # the first round warms caches, uncounted
            for i, name in enumerate(MESON_PROJECTS):
                src = Path(tmp) / str(i)
                elapsed = wall([meson, "setup", str(src / f"b{run}"), str(src)])
                if run:
                    times[name].append(elapsed)
    return times


def print_meson_table(times: dict[str, list[float]]) -> None:
    print("\n| `meson setup` of | median s | best s |")
    print("|---|---:|---:|")
    for name, runs in times.items():
        print(f"| {name} | {statistics.median(runs):.2f} | {min(runs):.2f} |")
    empty, llvm = (statistics.median(t) for t in times.values())
    print(f"| difference (medians) | {llvm - empty:.2f} | |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (default 9)")
    parser.add_argument("--no-meson", action="store_true",
                        help="skip timing meson setup of an empty and a libLLVM shim project")
    parser.add_argument("sonames", nargs="*", default=DEFAULT_LIBS)
    args = parser.parse_args(argv)
    print_table([bench(soname, args.runs) for soname in args.sonames])
    if not args.no_meson:
        print_meson_table(meson_setups(max(3, args.runs // 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
