#!/usr/bin/env python3
"""Real graphics programs through capsules against the plain host stack.

For each program: wall time (median of RUNS fresh processes, the two sides alternating) on the plain
system stack and through the example's shims (host tree from this machine,
the incompatible runtime on LD_LIBRARY_PATH behind them), their ratio, the
capsule's own set-up (the sum of the per-shim init times libcapsule reports
under CAPSULE_DEBUG=time: resolve, namespace load, relocation pass), the
peak memory (max RSS) difference, and the private dirty memory difference at
exit (from /proc/self/smaps: what the process could not share or drop). A program that does not work through
capsules yet is listed with the reason instead of numbers.

Run from the repository after scripts/bootstrap.sh (needs Xvfb, mesa-utils,
vulkan-tools):
    .venv/bin/python bench/bench_graphics.py [--runs N] [--work DIR] [--arch i386]

--arch i386 measures the example's own programs built 32-bit (this machine
has no i386 glxinfo ...): on the plain i386 host stack (Debian's i386 Mesa,
unpacked by graphics_trees.py --arch i386, first on the library path)
against the same through the i386 shims; the egl_png start-up row is the
one to compare with x86_64's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "graphics"
CROSS_FILES = {"i386": REPO / "cross" / "i386-linux-gnu.ini"}
CFLAGS = {"x86_64": [], "i386": ["-m32"]}
INIT_LINE = re.compile(r"capsule\[time\]: \S+: init (\d+) us")
FRAMES = 300
# glibc's libraries: a capsule has none of its own (placeholders of the
# program's stand for them), so a second copy here would be a regression.
GLIBC_FAMILY = ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
                "libmvec.so.1", "libresolv.so.2")
MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
# The placeholders' sealed images (placeholder.c names them capsule-<soname>).
PLACEHOLDER = re.compile(r"^/memfd:capsule-lib")
# Copies /proc/self/smaps when the process exits, for the memory breakdown.
SMAPS_DUMPER = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((destructor)) static void dump(void)
{
    const char *out = getenv("BENCH_SMAPS_OUT");
    FILE *in = fopen("/proc/self/smaps", "r"), *to = out ? fopen(out, "w") : NULL;
    char buf[8192];
    size_t n;
    while (in && to && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, to);
    if (in)
        fclose(in);
    if (to)
        fclose(to);
}
"""


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    ok: str            # text the output must contain when it worked
    x11: bool = True
    # For rendering: the program's own timing of its rendering ("... N ms"),
    # compared instead of the wall time, which includes start-up.
    inner: re.Pattern[str] | None = None
    runs_scale: int = 1  # cheap rows with small differences get more runs


@dataclass(frozen=True)
class Sample:
    seconds: float     # wall time, or the program's own timing for Case.inner
    maxrss_kib: int
    setup_us: float
    ok: bool
    output: str


def load_trees() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graphics_trees", EXAMPLE / "graphics_trees.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(work: Path, arch: str = "x86_64") -> tuple[Path, Path, Path]:
    trees = load_trees()
    host = trees.make_host(work / "host", arch)
    runtime = trees.make_runtime(work / "runtime", arch, host)
    out = work / "build"
    meson = str(Path(sys.executable).parent / "meson")
    cross = []
    if arch != "x86_64":
        machine = trees.write_machine_file(host, work / f"{arch}-host.ini", arch)
        cross = ["--cross-file", str(CROSS_FILES[arch]), "--cross-file", str(machine)]
    # Optimised, as a distribution builds libcapsule into its shims (Meson's
    # default build type would measure an -O0 libcapsule).
    if not (out / "build.ninja").exists():
        subprocess.run([meson, "setup", "--buildtype=release", *cross, str(out), str(EXAMPLE),
                        f"-Dhost={host}"], check=True, stdout=subprocess.DEVNULL)
    else:
        subprocess.run([meson, "configure", str(out), "-Dbuildtype=release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([meson, "compile", "-C", str(out)], check=True, stdout=subprocess.DEVNULL)
    # Freshly written files stay dirty in the page cache until written back,
    # and smaps counts their mapped pages as private dirty: write them back.
    os.sync()
    return host, runtime, out


def host_stack(host: Path, arch: str) -> dict[str, str]:
    """The environment that runs a program of arch on the plain host stack:
    nothing for this machine's, the host tree's for another architecture
    (this machine has none of its own)."""
    if arch == "x86_64":
        return {}
    multiarch = load_trees().TARGETS[arch].multiarch
    return {"LD_LIBRARY_PATH": f"{host / multiarch}:{host / multiarch.removeprefix('usr/')}",
            "LIBGL_DRIVERS_PATH": str(host / multiarch / "dri"),
            "__EGL_VENDOR_LIBRARY_DIRS": str(host / "usr/share/glvnd/egl_vendor.d")}


@contextmanager
def xvfb() -> Iterator[str]:
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    try:
        if not number:
            raise SystemExit("bench_graphics: Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # SIGTERM ignored: never wait forever
            proc.kill()
            proc.wait()


def measure(case: Case, env: dict[str, str]) -> Sample:
    """One fresh process: wall time, its own max RSS (wait4), libcapsule's init times."""
    full = {**os.environ, **env, "CAPSULE_DEBUG": "time"}
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(case.argv, env=full, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    setup = sum(float(m) for m in INIT_LINE.findall(text))
    ok = proc.returncode >= 0 and case.ok in text
    if case.inner:
        m = case.inner.search(text)
        ok, seconds = ok and m is not None, float(m[1]) / 1000 if m else seconds
    return Sample(seconds, usage.ru_maxrss, setup, ok, text)


def smaps_field(path: Path, field: str) -> dict[str, int]:
    """KiB of one smaps field (Rss:, Private_Dirty:) per mapped file (or
    [anon]/[heap]...) in one smaps dump."""
    kib: dict[str, int] = {}
    name = ""
    for line in path.read_text().splitlines():
        m = MAPPING.match(line)
        if m:
            name = m.group(1) or "[anon]"
        elif line.startswith(field):
            kib[name] = kib.get(name, 0) + int(line.split()[1])
    return kib


def second_copies(rss: dict[str, int], prefix: str) -> int:
    """KiB of the library copies a capsule added besides glibc's: the same
    file name mapped both from the prefix and from outside it (the smaller
    of the two is counted)."""
    by_name: dict[str, list[int]] = {}
    for path, kib in rss.items():
        if path.startswith(prefix) and ".so" in path:
            by_name.setdefault(Path(path).name, []).append(kib)
    others = 0
    for path, kib in rss.items():
        if path.startswith("/") and not path.startswith(prefix) and Path(path).name in by_name:
            others += min(kib, *by_name[Path(path).name])
    return others


@dataclass(frozen=True)
class Parts:
    """KiB at exit that only a capsule has, and the private dirty difference."""
    glibc: int         # second copies of glibc libraries (none expected)
    placeholders: int  # the glibc and shared sonames' placeholder images
    copies: int        # second copies of other libraries (the host's beside the program's)
    runtime: int       # shims, libcapsule, the bridge
    private_dirty: int


def capsule_parts(plain: dict[str, int], capsuled: dict[str, int], dirty: tuple[int, int],
                  out: Path, host: Path) -> Parts:
    def glibc(rss: dict[str, int]) -> int:
        return sum(v for k, v in rss.items() if Path(k).name in GLIBC_FAMILY)
    placeholders = sum(v for k, v in capsuled.items() if PLACEHOLDER.match(k))
    runtime = sum(v for k, v in capsuled.items()
                  if k.startswith(str(out) + "/") or "capsule-image" in k)
    others = second_copies(capsuled, str(host) + "/")
    return Parts(glibc(capsuled) - glibc(plain), placeholders, others, runtime,
                 dirty[1] - dirty[0])


def breakdown(case: Case, plain_env: dict[str, str], capsule_env: dict[str, str],
              dumper: Path, out: Path, host: Path, runs: int = 9) -> Parts:
    """From smaps dumps at exit: the median private dirty total of `runs`
    runs per side, and the parts of one run."""
    rss: list[dict[str, int]] = []
    dirty: list[int] = []
    for env in (plain_env, capsule_env):
        totals = []
        for _ in range(runs):
            with tempfile.NamedTemporaryFile(suffix=".smaps") as f:
                subprocess.run(case.argv, env={**os.environ, **env, "LD_PRELOAD": str(dumper),
                                               "BENCH_SMAPS_OUT": f.name},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               check=False)
                totals.append(sum(smaps_field(Path(f.name), "Private_Dirty:").values()))
                last = smaps_field(Path(f.name), "Rss:")
        rss.append(last)
        dirty.append(int(statistics.median(totals)))
    return capsule_parts(rss[0], rss[1], (dirty[0], dirty[1]), out, host)


def build_dumper(work: Path, arch: str = "x86_64") -> Path:
    source, lib = work / "smaps_dumper.c", work / "smaps_dumper.so"
    source.write_text(SMAPS_DUMPER)
    subprocess.run(["gcc", *CFLAGS[arch], "-shared", "-fPIC", "-O2", "-o", str(lib), str(source)],
                   check=True)
    return lib


def side_by_side(case: Case, plain_env: dict[str, str], capsule_env: dict[str, str],
                 n: int) -> tuple[list[Sample], list[Sample]]:
    """n runs of each, alternating, so that a machine getting slower or
    faster during the run weighs on both sides alike."""
    plain, capsuled = [], []
    for _ in range(n):
        plain.append(measure(case, plain_env))
        capsuled.append(measure(case, capsule_env))
    return plain, capsuled


def syscalls(argv: list[str], env: dict[str, str]) -> dict[str, int]:
    """System calls of one run by name (strace -f -c), with "total"."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as f:
        subprocess.run(["strace", "-f", "-c", "-o", f.name, *argv], env={**os.environ, **env},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        counts = {}
        for line in Path(f.name).read_text().splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit():
                counts[fields[-1]] = int(fields[3])
    return counts


def syscall_row(case: Case, base: dict[str, str], through: dict[str, str],
                empty_dirs: str) -> list[str]:
    """plain, plain with an LD_LIBRARY_PATH as long as the capsule side's
    (two empty directories: ld.so's own probing of such a path), capsule,
    the ratios, and the calls the capsule side adds most."""
    plain = syscalls(case.argv, base)
    probing = syscalls(case.argv, {**base, "LD_LIBRARY_PATH": empty_dirs})
    capsule = syscalls(case.argv, through)  # the resolutions kept by the timed runs
    unkept = syscalls(case.argv, {**through, "CAPSULE_CACHE_DIR": "off"})
    added = sorted(((capsule.get(k, 0) - plain.get(k, 0), k) for k in capsule if k != "total"),
                   reverse=True)[:3]
    total = plain.get("total", 0) or 1
    return [case.name, str(plain.get("total", 0)), str(probing.get("total", 0)),
            str(capsule.get("total", 0)), f"{capsule.get('total', 0) / total:.2f}",
            f"{capsule.get('total', 0) / (probing.get('total', 0) or 1):.2f}",
            str(unkept.get("total", 0)), f"{unkept.get('total', 0) / total:.2f}",
            ", ".join(f"{k} +{n}" for n, k in added)]


def fmt_ms(s: float) -> str:
    return f"{s * 1000:.1f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                        enumerate(zip(r, widths, strict=True))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--work", type=Path, default=REPO / "build-bench-graphics")
    parser.add_argument("--arch", choices=("x86_64", "i386"), default="x86_64",
                        help="i386: the example's programs built 32-bit, on i386 Mesa")
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="only the programs whose row names contain TEXT (repeatable)")
    args = parser.parse_args()
    arch = args.arch
    tools = ("Xvfb", "glxinfo", "eglinfo", "vulkaninfo") if arch == "x86_64" else ("Xvfb",)
    for tool in tools:
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_graphics: {tool} is not installed (scripts/bootstrap.sh)")
    work = args.work.absolute() / ("" if arch == "x86_64" else arch)
    if arch != "x86_64":
        blocker = load_trees()._arch_tree().why_not(arch)
        if blocker:
            raise SystemExit(f"bench_graphics: {arch}: {blocker}")
    host, runtime, out = build(work, arch)
    dumper = build_dumper(work, arch)
    png = str(work / "bench.png")
    cases = [
        Case("glxinfo -B", ["glxinfo", "-B"], "llvmpipe"),
        Case(f"GLX render, {FRAMES} frames (frame loop)", [str(out / "glx_frames"), str(FRAMES)],
             f"frames: {FRAMES} ok", inner=re.compile(r"frame loop: ([\d.]+) ms"),
             runs_scale=3),
        Case("eglinfo", ["eglinfo"], "EGL driver name: swrast"),
        Case("egl_png 256x256 (start-up: wall time)", [str(out / "egl_png"), png], "wrote ",
             x11=False),
        Case("EGL surfaceless render 1024x1024 (render)", [str(out / "egl_png"), png, "1024"],
             "wrote ", x11=False, inner=re.compile(r"render: ([\d.]+) ms"), runs_scale=3),
        Case("vulkaninfo --summary (headless)", ["vulkaninfo", "--summary"], "llvmpipe",
             x11=False),
    ]
    if arch != "x86_64":  # the example's own programs: this machine has no others for it
        cases = [c for c in cases if c.argv[0].startswith(str(out))]
    if args.only:
        cases = [c for c in cases if any(text in c.name for text in args.only)]
    rows, setup_rows, memory_rows, syscall_rows, notes = [], [], [], [], []
    plans = work / "plans"
    shutil.rmtree(plans, ignore_errors=True)
    empty = work / "empty"
    empty_dirs = f"{empty / 'a'}:{empty / 'b'}"
    for d in ("a", "b"):
        (empty / d).mkdir(parents=True, exist_ok=True)
    with xvfb() as display:
        for case in cases:
            display_env = {"DISPLAY": display if case.x11 else ""}
            base = {**display_env, **host_stack(host, arch)}
            # Resolutions kept as a user's are (~/.cache/capsule): the first
            # run keeps them, the later ones take them.
            through = {**display_env, "LD_LIBRARY_PATH": f"{out}:{runtime}",
                       "CAPSULE_CACHE_DIR": str(plans)}
            plain, capsuled = side_by_side(case, base, through, args.runs * case.runs_scale)
            if not all(s.ok for s in plain):
                rows.append([case.name, "fails", "-", "-", "-", "-"])
                notes.append(f"{case.name}: fails on the plain stack here")
                continue
            if not all(s.ok for s in capsuled):
                why = next(s.output for s in capsuled if not s.ok).strip().splitlines()
                rows.append([case.name, fmt_ms(statistics.median(s.seconds for s in plain)),
                             "fails", "-", "-", "-"])
                notes.append(f"{case.name}: fails through capsules: {why[-1] if why else '?'}")
                continue
            p = statistics.median(s.seconds for s in plain)
            c = statistics.median(s.seconds for s in capsuled)
            rss = statistics.median(s.maxrss_kib for s in capsuled) - \
                statistics.median(s.maxrss_kib for s in plain)
            parts = breakdown(case, base, through, dumper, out, host)
            rows.append([case.name, fmt_ms(p), fmt_ms(c), f"{c / p:.3f}", f"{rss / 1024:+.1f}",
                         f"{parts.private_dirty / 1024:+.2f}"])
            setup_rows.append([case.name, f"{statistics.median(s.setup_us for s in capsuled):.0f}",
                               f"{min(s.setup_us for s in capsuled):.0f}"])
            if case.name in ("glxinfo -B", "eglinfo", "vulkaninfo --summary (headless)"):
                syscall_rows.append(syscall_row(case, base, through, empty_dirs))
            known = parts.glibc + parts.placeholders + parts.copies + parts.runtime
            memory_rows.append([case.name, f"{rss / 1024:+.1f}", f"{parts.glibc / 1024:.1f}",
                                f"{parts.placeholders / 1024:.2f}", f"{parts.copies / 1024:.1f}",
                                f"{parts.runtime / 1024:.1f}", f"{(rss - known) / 1024:+.1f}"])
    print(f"bench_graphics: {arch} programs")
    table(f"Time, median of {args.runs} runs each ({3 * args.runs} for the render rows), "
          "alternating (ms: wall time, or what the program timed itself in parentheses); "
          "peak memory: max RSS difference; private dirty: difference at exit (smaps, median "
          "of 9 runs each)",
          ["program", "plain", "capsule", "ratio", "peak MiB", "private dirty MiB"], rows)
    for note in notes:
        print(f"  {note}")
    table("Capsule set-up (sum of the shims' init under CAPSULE_DEBUG=time: median, and the "
          "best run, the least disturbed)",
          ["program", "median us", "best us"], setup_rows)
    table("Peak memory above plain (MiB), and what only a capsule has at exit (RSS): second "
          "copies of glibc (none: the capsule uses the program's), the placeholders standing "
          "for glibc and the shared sonames, second copies of other libraries both sides load "
          "(the host's beside the program's), the capsule runtime (shims, libcapsule, "
          "bridge); the rest",
          ["program", "peak", "glibc", "placeholders", "2nd copies", "runtime", "rest"],
          memory_rows)
    table("System calls of one run (strace -f -c): plain; plain with LD_LIBRARY_PATH naming "
          "two empty directories (the capsule side finds its shims through a two-directory "
          "LD_LIBRARY_PATH, and ld.so probes such a path for every library); through the "
          "capsules, resolutions kept by the earlier runs; the ratios to each; through the "
          "capsules with nothing kept (CAPSULE_CACHE_DIR=off: a first start) and its ratio to "
          "plain; the calls the capsule side adds most",
          ["program", "plain", "plain + path", "capsule", "ratio", "ratio to plain + path",
           "nothing kept", "ratio", "most added"], syscall_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
