#!/usr/bin/env python3
"""Start-up cost of a shim: libcapsule's init against loading the library
normally, and how the relocation pass grows with objects and slots.

Prints tables; run from the repository after scripts/bootstrap.sh:
    .venv/bin/python bench/bench_init.py
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from capsule_module.elfreader import read_library  # noqa: E402
from helpers import SYSTEM_LIBDIR, compile_c, make_prefix_tree, meson_command, run  # noqa: E402

RUNS = 41
TIME_LINE = re.compile(r"init (\d+) us \(resolve (\d+), load (\d+), relocate (\d+)\)")


def build(work: Path) -> tuple[Path, Path, Path]:
    host = make_prefix_tree(work / "host", [SYSTEM_LIBDIR / "libz.so.1"])
    shims = work / "shims"
    # Optimised, as a distribution builds libcapsule into its shims (and as
    # bench_graphics.py measures); Meson's default would time an -O0 build.
    run([*meson_command(), "setup", "--buildtype=release", str(shims), str(HERE / "init"),
         f"-Dhost={host}"])
    run([*meson_command(), "compile", "-C", str(shims)])
    probe = compile_c(work / "probe", [HERE / "init" / "probe.c"], libs=["-ldl"])
    return host, shims, probe


def median_us(cmd: list[str], env: dict[str, str] | None = None) -> float:
    return statistics.median(float(run(cmd, env=env).stdout) for _ in range(RUNS))


def phases(cmd: list[str], env: dict[str, str]) -> list[float]:
    """Median of each phase libcapsule reports under CAPSULE_DEBUG=time."""
    samples = []
    for _ in range(RUNS):
        found = TIME_LINE.search(run(cmd, env={**env, "CAPSULE_DEBUG": "time"}).stderr)
        assert found, "libcapsule printed no timing line"
        samples.append([float(x) for x in found.groups()])
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def bench_libz(work: Path, shims: Path, probe: Path) -> None:
    """The shim's start-up with the resolution kept by an earlier start (as
    every start after a program's first) and with keeping turned off."""
    real = median_us([str(probe), str(SYSTEM_LIBDIR / "libz.so.1")])
    shim_cmd = [str(probe), str(shims / "libz.so.1")]
    kept_env = {"CAPSULE_CACHE_DIR": str(work / "plans")}
    run(shim_cmd, env=kept_env)  # the first start keeps it
    rows = [["real libz, loaded normally", f"{real:.0f}", "1.00"]]
    for name, env in (("resolution kept by an earlier start", kept_env),
                      ("no kept resolution (CAPSULE_CACHE_DIR=off)", {"CAPSULE_CACHE_DIR": "off"})):
        shim = median_us(shim_cmd, env)
        init, resolve, load, relocate = phases(shim_cmd, env)
        rows += [[f"capsule shim, {name} (whole dlopen)", f"{shim:.0f}", f"{shim / real:.2f}"],
                 ["  libcapsule init", f"{init:.0f}", ""],
                 ["    namespace, placeholders, resolution", f"{resolve:.0f}", ""],
                 ["    dlmopen + lookups", f"{load:.0f}", ""],
                 ["    relocation pass", f"{relocate:.0f}", ""]]
    table(f"dlopen(RTLD_NOW) of libz.so.1, median of {RUNS} fresh processes (microseconds)",
          ["variant", "us", "ratio"], rows)


def zlib_functions() -> list[str]:
    lib = read_library(SYSTEM_LIBDIR / "libz.so.1")
    return sorted({s.name for s in lib.symbols if s.kind == "func" and (s.default or not s.version)})


def make_users(work: Path, count: int, functions: list[str]) -> list[Path]:
    template = (HERE / "init" / "user.c.in").read_text()
    libs = []
    for i in range(count):
        name = f"user{i}"
        src = work / f"{name}.c"
        declarations = "\n".join(f"void {f}(void);" for f in functions)
        entries = "\n".join(f"    (void *)&{f}," for f in functions)
        src.write_text(template.replace("@NAME@", name).replace("@ENTRIES@", entries)
                       .replace("@DECLARATIONS@", declarations))
        libs.append(compile_c(work / f"lib{name}.so", [src], shared_soname=f"lib{name}.so",
                              flags=["-Wl,-z,now", "-Wl,-z,relro"],
                              libs=["-lz"]))
    return libs


def mprotect_calls(cmd: list[str], env: dict[str, str]) -> int:
    trace = subprocess.run(["strace", "-f", "-e", "trace=mprotect", *cmd], env=env,
                           capture_output=True, text=True, check=True).stderr
    return sum(1 for line in trace.splitlines() if "mprotect(" in line)


def bench_growth(work: Path, shims: Path) -> None:
    functions = zlib_functions()
    rows = []
    first: tuple[int, int] | None = None
    for count in (1, 10, 50, 100, 200):
        d = work / f"growth{count}"
        d.mkdir()
        users = make_users(d, count, functions)
        main = d / "main.c"
        main.write_text("int main(void) { return 0; }\n")
        exe = compile_c(d / "main", [main], flags=["-Wl,--no-as-needed", f"-Wl,-rpath,{d}"],
                        libs=[*map(str, users), "-lz"])
        env = {"LD_LIBRARY_PATH": str(shims)}
        _, _, _, relocate = phases([str(exe)], env)
        slots = count * len(functions)
        with_capsule = mprotect_calls([str(exe)], {"LD_LIBRARY_PATH": str(shims)})
        plain = mprotect_calls([str(exe)], {})
        extra = with_capsule - plain
        first = first or (count, extra)
        # ld.so's own mprotects while loading the namespace are a constant;
        # the pass's share shows in the increase per added object.
        marginal = f"{(extra - first[1]) / (count - first[0]):.2f}" if count > first[0] else "-"
        rows.append([str(count), str(slots), f"{relocate:.0f}", f"{1000 * relocate / slots:.0f}",
                     str(extra), marginal])
    table(
        "relocation pass vs loaded objects (each object: -z now -z relro, one GOT slot "
        f"per zlib function, {len(functions)} functions)",
        ["objects", "slots", "pass us", "ns/slot", "extra mprotect", "per added object"],
        rows,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="capsule-bench-") as tmp:
        work = Path(tmp)
        _, shims, probe = build(work)
        bench_libz(work, shims, probe)
        bench_growth(work, shims)


if __name__ == "__main__":
    main()
