#!/usr/bin/env python3
"""Benchmark: read a library's exported symbols with capsule's bulk reader vs
pyelftools' per-symbol objects, and time shim rendering. Prints a table.

    .venv/bin/python bench/bench_symbols.py [SONAME ...]

The per-symbol baseline runs once per library (it takes seconds on libLLVM);
the bulk reader and the renderer take the best of several runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from elftools.elf.elffile import ELFFile

from capsule_module.elfreader import read_library
from capsule_module.locate import find_library
from capsule_module.render import render_shim

DEFAULT_LIBS = ["libz.so.1", "libGL.so.1", "libLLVM-15.so.1"]
EXPORTED_BINDS = ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")


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


def bench(soname: str) -> tuple[str, int, float, int, float, float]:
    path = find_library(soname, "/")
    bulk_t, lib = best_of(lambda: read_library(path), 5)
    slow_t, slow_n = best_of(lambda: per_symbol_pyelftools(path), 1)
    render_t, _ = best_of(lambda: render_shim([lib], soname=lib.soname, prefix="/host",
                                              exclude=[], exports=[]), 3)
    return soname, len(lib.symbols), bulk_t, int(slow_n), slow_t, render_t


def main(argv: list[str]) -> int:
    libs = argv or DEFAULT_LIBS
    head = ("library", "exported", "bulk read", "per-symbol", "(symbols)", "speed-up", "render")
    print("{:<18} {:>9} {:>10} {:>11} {:>10} {:>9} {:>9}".format(*head))
    for soname in libs:
        name, n, bulk, slow_n, slow, rend = bench(soname)
        print(f"{name:<18} {n:>9} {bulk * 1000:>8.1f}ms {slow * 1000:>9.1f}ms {slow_n:>10} "
              f"{slow / bulk:>8.1f}x {rend * 1000:>7.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
