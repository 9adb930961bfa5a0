"""`capsule-shim check`: the glibc versions a prefix's libraries need that
this machine's glibc lacks, found without running a program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STUB = "int newer_glibc_function(void) { return 1; }\nint other_function(void) { return 2; }\n"
STUB_MAP = ("GLIBC_2.98 { global: other_function; local: *; };\n"
            "GLIBC_2.99 { global: newer_glibc_function; } GLIBC_2.98;\n")
NEWER = ("extern int newer_glibc_function(void);\nextern int other_function(void);\n"
         "int newer(void) { return newer_glibc_function() + other_function(); }\n")
TOP = "extern int newer(void);\nint top(void) { return newer(); }\n"


def _lib(out: Path, soname: str, source: str, *args: str | Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{soname}.c").write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-nostdlib", str(out / f"{soname}.c"), "-o",
                    str(out / soname), f"-Wl,-soname,{soname}", *map(str, args)], check=True)
    return out / soname


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capsule_module.cli", "check", *args],
                          capture_output=True, text=True, check=False)


def test_a_library_needing_a_newer_glibc_is_named(tmp_path: Path) -> None:
    (tmp_path / "stub.map").write_text(STUB_MAP)
    stub = _lib(tmp_path / "glibc", "libc.so.6", STUB,
                f"-Wl,--version-script,{tmp_path / 'stub.map'}")
    libdir = tmp_path / "tree/usr/lib/x86_64-linux-gnu"
    newer = _lib(libdir, "libnewer.so.1", NEWER, stub)
    _lib(libdir, "libtop.so.1", TOP, newer)
    proc = _check("--prefix", str(tmp_path / "tree"), "libtop.so.1")
    assert proc.returncode == 1, proc
    line = proc.stderr.strip()
    assert line.startswith("capsule-shim: the prefix's libraries need a newer glibc than this "
                           "machine has (glibc "), line
    assert f"{libdir}/libnewer.so.1 needs GLIBC_2.98 (libc.so.6), GLIBC_2.99 (libc.so.6);" \
        in line
    assert "libtop" not in line and len(proc.stderr.splitlines()) == 1


def test_this_machines_own_libraries_need_nothing_newer() -> None:
    proc = _check("--prefix", "/", "libz.so.1", "libexpat.so.1")
    assert proc.returncode == 0, proc
    assert "need nothing newer than this machine's glibc" in proc.stdout


def test_a_missing_library_is_one_error(tmp_path: Path) -> None:
    proc = _check("--prefix", str(tmp_path), "libnothere.so.1")
    assert proc.returncode == 1
    assert "libnothere.so.1" in proc.stderr and "Traceback" not in proc.stderr
