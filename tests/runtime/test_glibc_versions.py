"""A library under the prefix built against a newer glibc than the
process's: with one libc in the process it cannot load. Before loading
anything, one `capsule:` line names each library and every glibc version it
needs that the process's glibc lacks, the process's glibc version, and what
to do (ld.so would name the first missing version of the first library)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from build import CC, GCC, MULTIARCH, Built, Sym, build_shim, make_prefix, program_prefix, sh
from testarch import require_unemulated

STUB = "int newer_glibc_function(void) { return 1; }\nint other_function(void) { return 2; }\n"
STUB_MAP = ("GLIBC_2.98 { global: other_function; local: *; };\n"
            "GLIBC_2.99 { global: newer_glibc_function; } GLIBC_2.98;\n")
NEWER = ("extern int newer_glibc_function(void);\nextern int other_function(void);\n"
         "int newer(void) { return newer_glibc_function() + other_function(); }\n")
PROG = ('#include <dlfcn.h>\n#include <stdio.h>\n'
        'int main(int argc, char **argv) { (void)argc; void *h = dlopen(argv[1], RTLD_NOW);'
        ' printf("%s\\n", h ? "loaded" : dlerror()); return 0; }\n')


def _lib(out: Path, soname: str, source: str, *args: str | Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{soname}.c").write_text(source)
    target = out / soname
    sh([*GCC, "-shared", "-fPIC", "-nostdlib", out / f"{soname}.c", "-o", target,
        f"-Wl,-soname,{soname}", *args])
    return target


def test_one_line_names_every_missing_glibc_version(built: Built, tmp_path: Path) -> None:
    # A "newer glibc": libc.so.6 defining GLIBC_2.98 and GLIBC_2.99.
    (tmp_path / "stub.map").write_text(STUB_MAP)
    stub = _lib(tmp_path / "newer-glibc", "libc.so.6", STUB,
                f"-Wl,--version-script,{tmp_path / 'stub.map'}")
    newer = _lib(tmp_path / "real", "libnewer.so.1", NEWER, stub)
    assert "GLIBC_2.99" in sh(["readelf", "-V", newer]).stdout
    prefix = make_prefix(tmp_path / "prefix", [newer])
    shim_dir = tmp_path / "shim"
    shim = build_shim(shim_dir, built.libcapsule_dir, "libnewer.so.1", str(prefix),
                      [Sym("newer", None)], [])
    prog = tmp_path / "prog"
    (tmp_path / "prog.c").write_text(PROG)
    sh([*CC, tmp_path / "prog.c", "-o", prog, "-ldl"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    proc = subprocess.run([*program_prefix(env), str(prog), str(shim)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    # The program dlopen()s the shim: the dlopen fails with the capsule:
    # line's text (test_dlopen_failure.py), which the program prints.
    assert proc.returncode == 0 and proc.stderr == "", proc
    lines = proc.stdout.splitlines()
    in_prefix = prefix / MULTIARCH / "libnewer.so.1"
    assert len(lines) == 1, proc.stdout
    # The version is the process's (under the glibc matrix, that glibc's).
    line = re.sub(r"\(glibc \d+\.\d+\)", "(glibc N)", lines[0])
    assert line == (
        f"capsule: libnewer.so.1: prefix {prefix}: the prefix's libraries need a newer glibc "
        f"than this process has (glibc N): {in_prefix} needs GLIBC_2.98 (libc.so.6), "
        "GLIBC_2.99 (libc.so.6); run the program with a glibc at least as new as the "
        "prefix's, as container runtimes do when the host's is newer"), lines[0]


def test_ldd_prints_the_capsule_line_of_a_failed_run(built: Built, tmp_path: Path) -> None:
    """capsule-shim ldd of a run that failed before any capsule was set up
    says why, with libcapsule's own line, rather than guessing: here the
    program's dlopen of the shim failed, and the program went on."""
    require_unemulated("capsule-shim ldd starts the program itself, with no emulator")
    prog = tmp_path / "prog"
    (tmp_path / "prog.c").write_text(PROG)
    sh([*CC, tmp_path / "prog.c", "-o", prog, "-ldl"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["CAPSULE_PREFIX"] = str(tmp_path / "none")
    proc = subprocess.run([sys.executable, "-m", "capsule_module.cli", "ldd", str(prog),
                           str(built.shim_dir / "libdemo.so.1")], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc
    assert proc.stderr.strip() == (
        f"capsule-shim: program {prog} exited with status 0: capsule: libdemo.so.1: "
        f"prefix {tmp_path / 'none'}: prefix does not exist"), proc.stderr
