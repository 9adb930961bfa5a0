"""libcapsule's ld.so.cache reader and dependency resolver, driven through
small C programs compiled with the private sources."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from build import (
    FIXTURES,
    MULTIARCH,
    Built,
    build_driver,
    build_lib,
    glibc_prefix,
    write_ldcache,
)
from testarch import ARCH, EMULATED, LATER_LIB_DIR, OTHER_MACHINE, ldconfig, system_ldcache

LDCONFIG_KIND = {"x86_64": "(libc6,x86-64)", "i386": "(libc6)", "aarch64": "(libc6,AArch64)"}
PRIVATE = ["error.c", "debug.c", "mapfile.c", "ldcache.c", "elffile.c", "resolve.c", "plancache.c",
           "forklock.c"]


@pytest.fixture(scope="module")
def drivers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("drivers")
    result = {}
    for name in ("ldcache_driver", "resolve_driver"):
        exe = out / name
        build_driver(exe, FIXTURES / f"{name}.c", PRIVATE)
        result[name] = exe
    return result


def drive(exe: Path, *args: str | Path, env: dict[str, str] | None = None) -> list[str]:
    full = {**os.environ, **(env or {})}
    proc = subprocess.run([*glibc_prefix(full), str(exe), *map(str, args)], capture_output=True,
                          text=True, timeout=30, check=False, env=full)
    assert proc.returncode in (0, 1), proc  # never a crash or a sanitizer report
    assert "Sanitizer" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_ldcache_formats(built: Built, drivers: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "tree"
    (root / MULTIARCH).mkdir(parents=True)
    for lib in (built.demo, built.demodep):
        (root / MULTIARCH / lib.name).write_bytes(lib.read_bytes())
    cache = write_ldcache(root, fmt)
    out = drive(drivers["ldcache_driver"], cache, "libdemo.so.1")
    assert out[0] == {"new": "format=new", "compat": "format=old+new", "old": "format=old"}[fmt]
    assert out[1:] == [f"libdemo.so.1 /{MULTIARCH}/libdemo.so.1"]


def test_system_ldcache_matches_ldconfig(drivers: dict[str, Path]) -> None:
    cache = system_ldcache()
    soname = "libz.so.1" if EMULATED else "libc.so.6"  # the unpacked tree has no libc
    out = drive(drivers["ldcache_driver"], cache, soname)
    listed = subprocess.run([*ldconfig(), "-p", "-C", str(cache)], capture_output=True,
                            text=True).stdout
    kind = LDCONFIG_KIND[ARCH.name]  # how ldconfig -p tags the architecture's libraries
    expected = [ln.split(" => ")[1] for ln in listed.splitlines()
                if ln.strip().startswith(f"{soname} {kind} ")]
    assert expected and [ln.split(" ", 1)[1] for ln in out[1:]] == expected
    everything = drive(drivers["ldcache_driver"], cache)
    assert len(everything) > (2 if EMULATED else 10)


def test_ldcache_garbage_is_refused(drivers: dict[str, Path], tmp_path: Path) -> None:
    real = Path("/etc/ld.so.cache").read_bytes()
    cases = {
        "empty": b"", "magic": b"not a cache at all",
        "truncated": real[:60], "huge-count": real[:20] + b"\xff\xff\xff\x7f" + real[24:200],
        "bad-offsets": real[:48] + b"\x03\x03\x00\x00" + b"\xff" * 8 + real[60:],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        out = drive(drivers["ldcache_driver"], path)
        assert out and (out[0].startswith("error: ") or out[0].startswith("format=")), name
    assert drive(drivers["ldcache_driver"], tmp_path / "absent") == ["missing"]


def put(root: Path, rel: str, lib: Path) -> Path:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(lib.read_bytes())
    return dest


def test_resolve_order_and_glibc_family(built: Built, drivers: dict[str, Path]) -> None:
    out = drive(drivers["resolve_driver"], built.prefix, "libdemo.so.1")
    libdir = built.prefix / MULTIARCH
    assert out == [f"libdemodep.so.1 {libdir}/libdemodep.so.1",
                   f"libdemo.so.1 {libdir}/libdemo.so.1"]  # leaves first, no libc
    out = drive(drivers["resolve_driver"], built.prefix, "libdemo.so.1", "libdemodep.so.1")
    assert out == [f"libdemo.so.1 {libdir}/libdemo.so.1"]
    assert drive(drivers["resolve_driver"], built.prefix, "libc.so.6")[0].startswith("error: ")


def test_runpath_origin(built: Built, drivers: dict[str, Path], tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    dep = build_lib(tmp_path / "b", "libprivate.so.1", [FIXTURES / "demodep.c"])
    src = tmp_path / "app.c"
    src.write_text("int demodep_value(void);\nint app(void) { return demodep_value(); }\n")
    app = build_lib(tmp_path / "b", "libapp.so.1", [src],
                    flags=["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../private"],
                    libs=[dep])
    put(prefix, "opt/app/private/libprivate.so.1", dep)
    put(prefix, f"{MULTIARCH}/libapp.so.1", app)
    # libapp is found in the standard dir; its RUNPATH is $ORIGIN/../private,
    # which does not exist there: the error names the dependency.
    assert "libprivate.so.1 (needed by" in drive(drivers["resolve_driver"], prefix,
                                                 "libapp.so.1")[0]
    put(prefix, "opt/app/lib/libapp.so.1", app)
    out = drive(drivers["resolve_driver"], prefix, "/opt/app/lib/libapp.so.1")
    assert out[0] == f"libprivate.so.1 {prefix}/opt/app/private/libprivate.so.1"


def test_symlinks_never_escape(built: Built, drivers: dict[str, Path], tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    outside = tmp_path / "outside"
    put(outside, "libdemodep.so.1", built.demodep)
    libdir = prefix / MULTIARCH
    put(prefix, f"{MULTIARCH}/libdemo.so.1", built.demo)
    (libdir / "libdemodep.so.1").symlink_to(outside / "libdemodep.so.1")  # absolute
    out = drive(drivers["resolve_driver"], prefix, "libdemo.so.1")
    assert out[0].startswith("error: libdemodep.so.1 (needed by"), out
    (libdir / "libdemodep.so.1").unlink()
    (libdir / "libdemodep.so.1").symlink_to("../../../../../../../../outside/libdemodep.so.1")
    assert drive(drivers["resolve_driver"], prefix, "libdemo.so.1")[0].startswith("error: ")
    # An absolute target is re-rooted: it works when the file is in the prefix.
    put(prefix, "outside/libdemodep.so.1", built.demodep)
    (libdir / "libdemodep.so.1").unlink()
    (libdir / "libdemodep.so.1").symlink_to("/outside/libdemodep.so.1")
    out = drive(drivers["resolve_driver"], prefix, "libdemo.so.1")
    assert out[0] == f"libdemodep.so.1 {prefix}/outside/libdemodep.so.1"
    (libdir / "loop.so.1").symlink_to("loop.so.1")
    assert drive(drivers["resolve_driver"], prefix, "loop.so.1")[0].startswith("error: ")


def test_wrong_class_candidate_skipped(built: Built, drivers: dict[str, Path],
                                       tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    put(prefix, f"{LATER_LIB_DIR}/libdemodep.so.1", built.demodep)
    bad = put(prefix, f"{MULTIARCH}/libdemodep.so.1", built.demodep)
    data = bytearray(bad.read_bytes())
    data[18] = OTHER_MACHINE  # e_machine = EM_386 (i386: EM_X86_64)
    bad.write_bytes(bytes(data))
    out = drive(drivers["resolve_driver"], prefix, "libdemodep.so.1")
    assert out == [f"libdemodep.so.1 {prefix}/{LATER_LIB_DIR}/libdemodep.so.1"]
    (prefix / LATER_LIB_DIR / "libdemodep.so.1").unlink()
    out = drive(drivers["resolve_driver"], prefix, "libdemodep.so.1")
    assert out[0].startswith("error: libdemodep.so.1 not found under the prefix (skipped ")
    assert "wrong machine" in out[0]
