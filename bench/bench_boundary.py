#!/usr/bin/env python3
"""The capsule boundary's run-time cost: a call through the capsule against
a normally linked call, dlopen of an unrelated library with and without a
capsule in the process, and a malloc/free pair made inside the capsule
against the same library loaded normally.

Prints a table; run from the repository:
    .venv/bin/python bench/bench_boundary.py [--calls N] [--arch x86_64 --arch i386]

--arch (repeatable; default x86_64) gives each architecture's rows: for
i386 the library, the program and the shim are built 32-bit (the shim with
capsule.shim() through cross/i386-linux-gnu.ini), and the unrelated library
is Debian's i386 zlib, unpacked by scripts/arch_tree.py.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE.parent / "tests" / "runtime"))

from build import Sym, build_lib, build_libcapsule, build_shim, make_prefix, sh  # noqa: E402
from testarch import arch_tree_module  # noqa: E402

UNRELATED = "/lib/x86_64-linux-gnu/libz.so.1"
I386_SHIM_PROJECT = """project('bench-shim', 'c')
capsule = import('capsule')
capsule.shim('libbench.so.1', prefix: '{prefix}')
"""


def build_i386(work: Path) -> tuple[Path, Path, Path, str]:
    """The same three builds 32-bit: the library and program with gcc -m32,
    the shim by capsule.shim() for an i386 host machine (release build, as
    a distribution's); the unrelated library: Debian's i386 zlib."""
    trees = arch_tree_module()
    blocker = trees.why_not("i386")
    if blocker:
        raise SystemExit(f"bench_boundary: i386: {blocker}")
    unrelated = trees.ensure_tree("i386", ("zlib1g", "libexpat1")) / "lib/i386-linux-gnu/libz.so.1"
    real = work / "real" / "libbench.so.1"
    real.parent.mkdir(parents=True)
    sh(["gcc", "-m32", "-O2", "-shared", "-fPIC", "-Wl,-soname,libbench.so.1",
        f"-Wl,--version-script={HERE / 'boundary' / 'benchlib.map'}", "-o", real,
        HERE / "boundary" / "benchlib.c"])
    prefix = work / "prefix"
    libdir = prefix / "usr/lib/i386-linux-gnu"
    libdir.mkdir(parents=True)
    (libdir / real.name).write_bytes(real.read_bytes())
    (prefix / "etc").mkdir()
    (prefix / "etc/ld.so.conf").write_text("/usr/lib/i386-linux-gnu\n")
    sh(["ldconfig", "-r", prefix])
    project = work / "shim-project"
    project.mkdir()
    (project / "meson.build").write_text(I386_SHIM_PROJECT.format(prefix=prefix))
    meson = str(Path(sys.executable).parent / "meson")
    sh([meson, "setup", "--buildtype=release", "--cross-file", REPO / "cross/i386-linux-gnu.ini",
        work / "shim", project])
    sh([meson, "compile", "-C", work / "shim"])
    prog = work / "bench_prog"
    sh(["gcc", "-m32", "-O2", "-std=gnu11", HERE / "boundary" / "bench_prog.c", "-o", prog, real,
        "-ldl"])
    return prog, real.parent, work / "shim", str(unrelated)


def build(work: Path, arch: str = "x86_64") -> tuple[Path, Path, Path, str]:
    """The benchmark program, the real library's directory, the shim's, and
    an unrelated library of the architecture to dlopen."""
    if arch == "i386":
        return build_i386(work)
    return (*build_x86_64(work), UNRELATED)


def build_x86_64(work: Path) -> tuple[Path, Path, Path]:
    libcapsule = build_libcapsule(work / "libcapsule").parent
    real = build_lib(work / "real", "libbench.so.1", [HERE / "boundary" / "benchlib.c"],
                     flags=["-O2"], version_script=HERE / "boundary" / "benchlib.map")
    prefix = make_prefix(work / "prefix", [real])
    symbols = [Sym("bench_add", "BENCH_1"), Sym("bench_malloc_free", "BENCH_1")]
    shim = build_shim(work / "shim", libcapsule, "libbench.so.1", str(prefix), symbols,
                      [("BENCH_1", None)])
    prog = work / "bench_prog"
    sh(["gcc", "-O2", "-std=gnu11", HERE / "boundary" / "bench_prog.c", "-o", prog, real,
        "-ldl"])
    return prog, real.parent, shim.parent


def once(prog: Path, libdir: Path, args: list[str]) -> float:
    env = {"LD_LIBRARY_PATH": str(libdir), "PATH": "/usr/bin:/bin"}
    return float(subprocess.run([str(prog), *args], env=env, capture_output=True, text=True,
                                check=True).stdout)


def measure(prog: Path, dirs: tuple[Path, Path], args: list[str], runs: int) -> list[float]:
    """Plain and capsule runs interleaved (so load drifts hit both); the
    minimum of each, the least disturbed run."""
    samples: list[list[float]] = [[], []]
    for _ in range(runs):
        for i, libdir in enumerate(dirs):
            samples[i].append(once(prog, libdir, args))
    return [min(s) for s in samples]


def instructions(prog: Path, libdir: Path, args: list[str]) -> int:
    """Instructions the whole run executes, counted by callgrind: exact and
    repeatable whatever else the machine is doing."""
    env = {"LD_LIBRARY_PATH": str(libdir), "PATH": "/usr/bin:/bin"}
    err = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          str(prog), *args], env=env, capture_output=True, text=True,
                         check=True).stderr
    found = re.search(r"Collected : (\d+)", err)
    if not found:
        raise SystemExit(f"callgrind printed no total:\n{err}")
    return int(found.group(1))


def instructions_per_call(prog: Path, libdir: Path) -> float:
    """The difference between two call counts cancels start-up and init."""
    small, large = 1_000_000, 2_000_000
    return (instructions(prog, libdir, ["calls", str(large)]) -
            instructions(prog, libdir, ["calls", str(small)])) / (large - small)


def table(rows: list[list[str]]) -> None:
    header = ["arch", "operation", "plain", "capsule", "ratio"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in
                        enumerate(zip(r, widths, strict=True))))


def rows_for(arch: str, work: Path, calls: int, runs: int) -> list[list[str]]:
    prog, real, shim, unrelated = build(work, arch)
    cases = [
        (f"call through the GOT ({calls:.0e} calls), ns/call", ["calls", str(calls)], 1),
        ("dlopen+dlclose of an unrelated library, us", ["dlopen", "20000", unrelated], 1e3),
        ("malloc+free pair made by the library, ns", ["malloc", "20000000"], 1),
    ]
    rows = []
    for label, argv, scale in cases:
        plain, capsule = (v / scale for v in measure(prog, (real, shim), argv, runs))
        rows.append([arch, label, f"{plain:.3f}", f"{capsule:.3f}", f"{capsule / plain:.3f}"])
    plain, capsule = (instructions_per_call(prog, d) for d in (real, shim))
    rows.insert(1, [arch, "call through the GOT, instructions/call (callgrind)", f"{plain:.3f}",
                    f"{capsule:.3f}", f"{capsule / plain:.3f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--arch", action="append", choices=("x86_64", "i386"),
                        help="the architecture's rows (repeat for several; default x86_64)")
    args = parser.parse_args()
    rows = []
    for arch in args.arch or ["x86_64"]:
        with tempfile.TemporaryDirectory() as tmp:
            rows += rows_for(arch, Path(tmp), args.calls, args.runs)
    print(f"capsule boundary benchmark (best of {args.runs} interleaved runs each)\n")
    table(rows)


if __name__ == "__main__":
    main()
