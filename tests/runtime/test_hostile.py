"""Hostile prefix trees and hostile CAPSULE_* values: each run ends in correct
behaviour or in one `capsule:` line and exit status 127, never a crash or a
hang (every run has a timeout)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from build import (
    FIXTURES,
    MULTIARCH,
    SANITIZE,
    Built,
    World,
    as_other_user,
    build_lib,
    build_program,
    glibc_prefix,
    make_prefix,
    patched_copy,
    sanitize_prefix,
    write_raw_ldcache,
)
from testarch import ARCH, LATER_LIB_DIR, OTHER_CLASS

SLOWDOWN = 4 if SANITIZE == "valgrind" else 1


@pytest.fixture(scope="module")
def program(built: Built) -> Path:
    return build_program(built, built.root / "prog-hostile", [], [])


def run(cmd: list[str | os.PathLike[str]], env: dict[str, str | bytes],
        timeout: float = 30, user: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """cmd (a program and its arguments) run as `user` (as_other_user()) when given."""
    full: dict[str | bytes, str | bytes] = {
        k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    full.update(env)
    wrappers = [*sanitize_prefix(), *(user or []), *glibc_prefix(full)]
    return subprocess.run([*map(os.fsencode, wrappers), *map(os.fsencode, cmd)],
                          env=full, capture_output=True, timeout=timeout * SLOWDOWN, check=False)


def run_prefix(b: Built, program: Path, prefix: str | bytes | Path, timeout: float = 30,
               **extra: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return run([program], {"LD_LIBRARY_PATH": str(b.shim_dir),
                           "CAPSULE_PREFIX": os.fsencode(prefix), **extra}, timeout=timeout)


def parse(out: bytes) -> dict[str, str]:
    text = os.fsdecode(out)
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def assert_works(proc: subprocess.CompletedProcess[bytes], prefix: Path | bytes) -> None:
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["add"] == "5" and got["dep"] == "42", got
    real = os.fsdecode(os.path.join(os.fsencode(prefix), os.fsencode(MULTIARCH),
                                    b"libdemo.so.1"))
    assert got["user_counter_object"] == real, got


def assert_fails(proc: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert proc.returncode == 127, proc
    lines = os.fsdecode(proc.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule: libdemo.so.1: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def copy_prefix(b: Built, dest: Path) -> Path:
    shutil.copytree(b.prefix, dest, symlinks=True)
    return dest


# ---- ld.so.cache ----

def test_truncated_ldcache_is_ignored(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    cache = prefix / "etc/ld.so.cache"
    whole = cache.read_bytes()
    for size in (0, 1, 19, 20, 47, 48, 60, len(whole) // 2, len(whole) - 1):
        cache.write_bytes(whole[:size])
        proc = run_prefix(built, program, prefix, CAPSULE_DEBUG="ldcache")
        assert_works(proc, prefix)


def test_corrupted_ldcache_never_crashes(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    cache = prefix / "etc/ld.so.cache"
    whole = cache.read_bytes()
    # Every byte of the header and the first entries, then a stride through
    # the strings, set to values that break counts, offsets and flags.
    step = 5 if SANITIZE == "valgrind" else 1
    positions = [*range(0, min(len(whole), 120), step), *range(120, len(whole), 7 * step)]
    for pos in positions:
        for value in (0x00, 0xff):
            data = bytearray(whole)
            data[pos] = value
            cache.write_bytes(bytes(data))
            proc = run_prefix(built, program, prefix)
            assert proc.returncode == 0, (pos, value, proc)


def test_ldcache_pointing_outside_the_prefix(built: Built, program: Path,
                                             tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    host_copy = str(built.real_dir / "libdemo.so.1").encode()
    write_raw_ldcache(prefix / "etc/ld.so.cache", [
        (b"libdemo.so.1", host_copy),
        (b"libdemo.so.1", b"/../../../../../.." + host_copy),
        (b"libdemodep.so.1", b"../../" + str(built.real_dir / "libdemodep.so.1").encode()),
    ])
    # Each entry is read inside the prefix, where it names nothing: the
    # search goes on to the prefix's own directories.
    proc = run_prefix(built, program, prefix, CAPSULE_DEBUG="search")
    assert_works(proc, prefix)
    assert f"{prefix}{host_copy.decode()}: No such file" in proc.stderr.decode()
    # Without those copies nothing outside the prefix is ever taken.
    (prefix / MULTIARCH / "libdemo.so.1").unlink()
    assert_fails(run_prefix(built, program, prefix),
                 "libdemo.so.1 not found under the prefix")


def test_ldcache_fifo_does_not_hang(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    (prefix / "etc/ld.so.cache").unlink()
    os.mkfifo(prefix / "etc/ld.so.cache")
    assert_works(run_prefix(built, program, prefix, CAPSULE_DEBUG="all", timeout=10), prefix)


# ---- symlinks ----

def test_symlink_loops(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    libdir = prefix / MULTIARCH
    (libdir / "libdemo.so.1").unlink()
    (libdir / "libdemo.so.1").symlink_to("libdemo.so.1")
    assert_fails(run_prefix(built, program, prefix), "libdemo.so.1 not found under the prefix")
    (libdir / "libdemo.so.1").unlink()
    (libdir / "libdemo.so.1").symlink_to("a")
    (libdir / "a").symlink_to("b")
    (libdir / "b").symlink_to(f"../{ARCH.triplet}/a")
    assert_fails(run_prefix(built, program, prefix), "libdemo.so.1 not found under the prefix")
    # A directory loop and a cache that is a loop are no worse.
    (prefix / "etc/ld.so.cache").unlink()
    (prefix / "etc/ld.so.cache").symlink_to("ld.so.cache")
    (prefix / "lib").symlink_to("lib/x")
    assert_fails(run_prefix(built, program, prefix), "libdemo.so.1 not found under the prefix")


@pytest.mark.parametrize("how", ["dotdot", "absolute", "dir-dotdot", "dir-absolute"])
def test_symlinks_cannot_escape(built: Built, program: Path, tmp_path: Path, how: str) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    libdir = prefix / MULTIARCH
    (libdir / "libdemodep.so.1").unlink()
    outside = built.real_dir / "libdemodep.so.1"  # a real, loadable copy
    if how == "dotdot":
        (libdir / "libdemodep.so.1").symlink_to("../" * 20 + str(outside).lstrip("/"))
    elif how == "absolute":
        (libdir / "libdemodep.so.1").symlink_to(outside)
    else:
        (prefix / "opt").symlink_to("../" * 20 if how == "dir-dotdot" else "/")
        (libdir / "libdemodep.so.1").symlink_to("../../../opt" + str(outside))
    line = assert_fails(run_prefix(built, program, prefix),
                        "libdemodep.so.1 (needed by ", "not found under the prefix")
    assert str(built.real_dir) not in line.split("needed by")[0]


# ---- the libraries themselves ----

def test_dependency_of_the_wrong_class(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    dep = prefix / MULTIARCH / "libdemodep.so.1"
    data = bytearray(dep.read_bytes())
    data[4] = OTHER_CLASS
    dep.write_bytes(bytes(data))
    assert_fails(run_prefix(built, program, prefix), "libdemodep.so.1 (needed by ",
                 f"wrong ELF class ({32 if OTHER_CLASS == 1 else 64}-bit)")


@pytest.mark.parametrize(("offset", "value", "cause"), [
    (5, 2, "wrong byte order (big-endian)"),  # EI_DATA = ELFDATA2MSB
    (4, 7, "bad ELF class 7"),
    (5, 9, "bad ELF byte order 9"),
])
def test_dependency_with_a_bad_ident(built: Built, program: Path, tmp_path: Path, offset: int,
                                     value: int, cause: str) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    dep = prefix / MULTIARCH / "libdemodep.so.1"
    data = bytearray(dep.read_bytes())
    data[offset] = value
    dep.write_bytes(bytes(data))
    assert_fails(run_prefix(built, program, prefix), "libdemodep.so.1 (needed by ", cause)


def test_dependency_fifo_does_not_hang(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    (prefix / MULTIARCH / "libdemodep.so.1").unlink()
    os.mkfifo(prefix / MULTIARCH / "libdemodep.so.1")
    assert_fails(run_prefix(built, program, prefix, timeout=10), "libdemodep.so.1 (needed by ",
                 "not a regular file")


def test_truncated_and_garbage_libraries(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = copy_prefix(built, tmp_path / "p")
    dep = prefix / MULTIARCH / "libdemodep.so.1"
    whole = built.demodep.read_bytes()
    for data in (b"", b"\x7fELF", whole[:64], whole[:600], whole[:len(whole) // 2],
                 b"\x7fELF" + b"\xff" * 4000):
        dep.write_bytes(data)
        proc = run_prefix(built, program, prefix)
        # Refused by the reader, or read but refused by dlmopen: one line either way.
        assert_fails(proc, "libdemodep.so.1")


def test_dependency_cycle_is_refused(built: Built, program: Path, tmp_path: Path) -> None:
    cyclic = build_lib(tmp_path / "b", "libdemodep.so.1", [FIXTURES / "demodep.c"],
                       libs=[built.demo, "-Wl,--no-as-needed"])
    cyclic = build_lib(tmp_path / "b", "libdemodep.so.1", [FIXTURES / "demodep.c"],
                       libs=["-Wl,--no-as-needed", built.demo])
    prefix = make_prefix(tmp_path / "p", [built.demo, cyclic])
    assert_fails(run_prefix(built, program, prefix),
                 "dependency cycle: libdemo.so.1 <- libdemodep.so.1 <- libdemo.so.1")


def test_library_needing_itself_is_fine(built: Built, program: Path, tmp_path: Path) -> None:
    demo = build_lib(tmp_path / "b", "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map",
                     libs=["-Wl,--no-as-needed", built.demodep, built.demo])
    prefix = make_prefix(tmp_path / "p", [demo, built.demodep])
    assert_works(run_prefix(built, program, prefix), prefix)


def chain_libraries(tmp: Path, depth: int) -> tuple[Path, list[Path]]:
    """libdemo.so.1 -> libchain000.so.1 -> ... -> libchain<depth-1>.so.1 (a leaf),
    made by patching names in two gcc-built templates."""
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "chain.c"
    src.write_text("int chain_link(void) { return 1; }\n")
    leaf = build_lib(tmp / "t", "libchainBBB.so.1", [src])
    link = build_lib(tmp / "t", "libchainAAA.so.1", [src], libs=["-Wl,--no-as-needed", leaf])
    first = build_lib(tmp / "t0", "libchain000.so.1", [src])
    demodep = build_lib(tmp / "t", "libdemodep.so.1", [FIXTURES / "demodep.c"])
    demo = build_lib(tmp / "t", "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map",
                     libs=["-Wl,--no-as-needed", demodep, first])
    libs = [demo, demodep]
    for i in range(depth - 1):
        libs.append(patched_copy(link, tmp / "l" / f"libchain{i:03d}.so.1",
                                 {b"libchainAAA": b"libchain%03d" % i,
                                  b"libchainBBB": b"libchain%03d" % (i + 1)}))
    last = depth - 1
    libs.append(patched_copy(leaf, tmp / "l" / f"libchain{last:03d}.so.1",
                             {b"libchainBBB": b"libchain%03d" % last}))
    return demo, libs


@pytest.mark.skipif(SANITIZE == "valgrind", reason="valgrind 3.19 itself fails an assertion "
                    "(truncate_DebugInfoMapping_overlaps) mapping this chain; the ASan run "
                    "covers it")
def test_chain_200_deep(built: Built, program: Path, tmp_path: Path) -> None:
    _, libs = chain_libraries(tmp_path / "b", 200)
    prefix = make_prefix(tmp_path / "p", libs)
    proc = run_prefix(built, program, prefix, CAPSULE_DEBUG="ns")
    assert_works(proc, prefix)
    loaded = [ln for ln in proc.stderr.decode().splitlines() if ": loaded " in ln]
    assert len(loaded) == 202
    names = [ln.rsplit("/", 1)[1] for ln in loaded]
    assert names[-1] == "libdemo.so.1"  # leaves first
    assert names.index("libchain199.so.1") < names.index("libchain000.so.1")


def test_chain_too_deep_is_refused(built: Built, program: Path, tmp_path: Path) -> None:
    _, libs = chain_libraries(tmp_path / "b", 300)
    prefix = make_prefix(tmp_path / "p", libs, ldcache=False)
    assert_fails(run_prefix(built, program, prefix), "dependency chain deeper than 256")


def test_library_with_300_dependencies(built: Built, program: Path, tmp_path: Path) -> None:
    src = tmp_path / "wide.c"
    src.write_text("int wide_leaf(void) { return 1; }\n")
    template = build_lib(tmp_path / "t", "libwideAAA.so.1", [src])
    wide = [patched_copy(template, tmp_path / "l" / f"libwide{i:03d}.so.1",
                         {b"libwideAAA": b"libwide%03d" % i}) for i in range(300)]
    demo = build_lib(tmp_path / "b", "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map",
                     libs=["-Wl,--no-as-needed", built.demodep, *wide])
    prefix = make_prefix(tmp_path / "p", [demo, built.demodep, *wide])
    proc = run_prefix(built, program, prefix, CAPSULE_DEBUG="ns")
    assert_works(proc, prefix)
    assert proc.stderr.decode().count(": loaded ") == 302


# ---- unreadable files ----

def test_unreadable_files(world: World, tmp_path: Path) -> None:
    drop = as_other_user()
    root = Path(world.root / "unreadable")
    prefix = copy_prefix(world, root / "p")
    root.chmod(0o755)
    env = {"LD_LIBRARY_PATH": str(world.shim_dir), "CAPSULE_PREFIX": str(prefix)}
    # An unreadable ld.so.cache is ignored: the standard directories still work.
    (prefix / "etc/ld.so.cache").chmod(0o000)
    assert_works(run([world.program], env, user=drop), prefix)
    # An unreadable library is skipped, and the error says why.
    (prefix / MULTIARCH / "libdemodep.so.1").chmod(0o000)
    assert_fails(run([world.program], env, user=drop), "libdemodep.so.1 (needed by ",
                 "Permission denied")
    # An unreadable directory hides what is in it; another copy is found.
    (prefix / MULTIARCH / "libdemodep.so.1").chmod(0o644)
    (prefix / LATER_LIB_DIR).mkdir()
    shutil.copy2(world.demodep, prefix / LATER_LIB_DIR)
    shutil.copy2(world.demo, prefix / LATER_LIB_DIR)
    (prefix / MULTIARCH).chmod(0o000)
    proc = run([world.program], env, user=drop)
    assert proc.returncode == 0, proc
    assert parse(proc.stdout)["user_counter_object"] == str(prefix / LATER_LIB_DIR / "libdemo.so.1")
    (prefix / MULTIARCH).chmod(0o755)


# ---- names ----

@pytest.mark.parametrize("name", [b"with spaces/and more", "non-ascii \u00e9\u4e2d".encode(),
                                  b"bytes \xff\xfe \x01 tab\there", b"colon:semi;star*"])
def test_prefix_paths_with_odd_bytes(built: Built, program: Path, tmp_path: Path,
                                     name: bytes) -> None:
    prefix = os.path.join(os.fsencode(tmp_path), name)
    shutil.copytree(built.prefix, os.fsdecode(prefix), symlinks=True)
    assert_works(run_prefix(built, program, prefix), prefix)


def test_failure_line_stays_one_line(built: Built, program: Path) -> None:
    line = assert_fails(run_prefix(built, program, b"/nonexistent\nsecond line\r\x1b[31m"),
                        "prefix does not exist")
    assert "second line" in line


GARBAGE: list[bytes] = [b" ", b"\x01\x02\x7f", b"relative/dir", b"/etc/passwd", b"%s%n%s%n",
                        b"../../..", b"\xff\xfe\xfd", b"/" * 5000, b"x" * 100000,
                        b"/nonexistent/" + b"a" * 5000, b",,,,", b"all,all,,all"]


@pytest.mark.parametrize("variable", ["CAPSULE_PREFIX", "CAPSULE_LIBDEMO_SO_1_PREFIX"])
def test_garbage_prefix_variables(built: Built, program: Path, variable: str) -> None:
    for value in GARBAGE:
        proc = run([program], {"LD_LIBRARY_PATH": str(built.shim_dir), variable: value})
        assert_fails(proc)
        assert len(proc.stderr) < 1200, proc.stderr


def test_empty_prefix_variables_fall_back(built: Built, program: Path) -> None:
    proc = run([program], {"LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_PREFIX": "",
                           "CAPSULE_LIBDEMO_SO_1_PREFIX": ""})
    assert_works(proc, built.prefix)


def test_garbage_debug_and_unknown_variables(built: Built, program: Path) -> None:
    for value in [*GARBAGE, b"", b"all" * 30000]:
        proc = run([program], {"LD_LIBRARY_PATH": str(built.shim_dir), "CAPSULE_DEBUG": value,
                               "CAPSULE_": value, "CAPSULE_LIBDEMO_SO_1_": value,
                               "CAPSULE_BOGUS_PREFIX": value})
        assert_works(proc, built.prefix)
        for line in proc.stderr.decode(errors="replace").splitlines():
            assert line.startswith("capsule["), line
