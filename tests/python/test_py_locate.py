"""ld.so.cache reading and find_library under a tree (confinement, class checks)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from py_support import LIBDIR, system_lib

from capsule_module import ldcache
from capsule_module.errors import CapsuleError
from capsule_module.locate import find_library, resolve_in_tree

MULTIARCH = "usr/lib/x86_64-linux-gnu"


def _copy_lib(soname: str, dest_dir: Path) -> Path:
    real = Path(os.path.realpath(system_lib(soname)))
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(real, dest_dir / real.name)
    return dest_dir / real.name


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """TREE with libz in the multiarch dir and libexpat only in /opt/odd/lib
    (found through TREE/etc/ld.so.cache alone), cache written by ldconfig -r."""
    if shutil.which("ldconfig") is None:
        pytest.skip("ldconfig is not installed")
    root = tmp_path / "tree"
    _copy_lib("libz.so.1", root / MULTIARCH)
    _copy_lib("libexpat.so.1", root / "opt/odd/lib")
    (root / "etc").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text(f"/{MULTIARCH}\n/opt/odd/lib\n")
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    assert (root / "etc/ld.so.cache").exists()
    return root


def _real_name(soname: str) -> str:
    return Path(os.path.realpath(LIBDIR / soname)).name


def test_cache_written_by_ldconfig_is_read(tree: Path) -> None:
    entries = ldcache.read_cache(tree / "etc/ld.so.cache")
    assert ldcache.lookup(entries, "libexpat.so.1") == ["/opt/odd/lib/libexpat.so.1"]
    assert ldcache.lookup(entries, "libz.so.1") == [f"/{MULTIARCH}/libz.so.1"]


def test_find_through_cache_is_rerooted(tree: Path) -> None:
    found = find_library("libexpat.so.1", tree)
    assert found == tree.resolve() / "opt/odd/lib" / _real_name("libexpat.so.1")


def test_find_in_standard_dir(tree: Path) -> None:
    (tree / "etc/ld.so.cache").unlink()
    found = find_library("libz.so.1", tree)
    assert found == tree.resolve() / MULTIARCH / _real_name("libz.so.1")
    with pytest.raises(CapsuleError, match=r"libexpat.so.1 not found"):
        find_library("libexpat.so.1", tree)  # only the cache knew /opt/odd/lib


def test_not_found_names_soname_and_tree(tree: Path) -> None:
    with pytest.raises(CapsuleError) as info:
        find_library("libnothere.so.7", tree)
    assert "libnothere.so.7" in str(info.value) and str(tree) in str(info.value)


def test_system_cache_matches_ldconfig_p() -> None:
    cache = Path("/etc/ld.so.cache")
    if not cache.exists():
        pytest.skip("no system ld.so.cache")
    out = subprocess.run(["ldconfig", "-p"], check=True, capture_output=True, text=True).stdout
    expected = set(re.findall(r"^\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)$", out, re.M))
    entries = ldcache.read_cache(cache)
    got = {(e.soname, e.path) for e in entries if e.flags == ldcache.FLAG_X86_64_LIBC6}
    assert got == expected and len(got) > 10
    assert find_library("libz.so.1", "/") == Path(os.path.realpath(LIBDIR / "libz.so.1"))


# ---- old format, hand-built ----

def _old_cache(pairs: list[tuple[str, str]], new: bytes = b"") -> bytes:
    strings = b""
    entries = b""
    for key, value in pairs:
        k = len(strings)
        strings += key.encode() + b"\0"
        v = len(strings)
        strings += value.encode() + b"\0"
        entries += struct.pack("<iII", ldcache.FLAG_X86_64_LIBC6, k, v)
    head = b"ld.so-1.7.0\0" + struct.pack("<I", len(pairs)) + entries
    if new:
        head += b"\0" * (-len(head) % 8)
        return head + new
    return head + strings


def _new_cache(pairs: list[tuple[str, str]]) -> bytes:
    header_size = 48 + 24 * len(pairs)
    strings = b""
    entries = b""
    for key, value in pairs:
        k = header_size + len(strings)
        strings += key.encode() + b"\0"
        v = header_size + len(strings)
        strings += value.encode() + b"\0"
        entries += struct.pack("<iIIIQ", ldcache.FLAG_X86_64_LIBC6, k, v, 0, 0)
    head = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", len(pairs), len(strings), 0, 0)
    return head + entries + strings


def test_old_format_alone() -> None:
    entries = ldcache.parse_cache(_old_cache([("libz.so.1", "/old/libz.so.1")]))
    assert [(e.soname, e.path) for e in entries] == [("libz.so.1", "/old/libz.so.1")]


def test_old_format_followed_by_new_uses_new() -> None:
    new = _new_cache([("libz.so.1", "/new/libz.so.1"), ("libm.so.6", "/new/libm.so.6")])
    data = _old_cache([("libz.so.1", "/old/libz.so.1")], new)
    entries = ldcache.parse_cache(data)
    assert ldcache.lookup(entries, "libz.so.1") == ["/new/libz.so.1"]
    assert len(entries) == 2


def test_hwcaps_entries_come_last() -> None:
    data = bytearray(_new_cache([("libz.so.1", "/hw/libz.so.1"), ("libz.so.1", "/p/libz.so.1")]))
    struct.pack_into("<Q", data, 48 + 16, ldcache.HWCAP_EXTENSION)
    assert ldcache.lookup(ldcache.parse_cache(bytes(data)), "libz.so.1") == [
        "/p/libz.so.1", "/hw/libz.so.1"]


@pytest.mark.parametrize("mangle, message", [
    (lambda d: b"garbage" + d, "unknown magic"),
    (lambda d: d[:30], "truncated"),
    (lambda d: d[:48 + 10], "truncated"),
    (lambda d: d[:-5], "string offset"),
    (lambda d: d[:17] + b"9.9" + d[20:], "unknown new-format version"),
    (lambda d: d[:20] + struct.pack("<I", 0x7FFFFFFF) + d[24:], "truncated"),
])
def test_malformed_cache(tmp_path: Path, mangle, message: str) -> None:
    path = tmp_path / "ld.so.cache"
    path.write_bytes(mangle(_new_cache([("libz.so.1", "/x/libz.so.1")])))
    with pytest.raises(CapsuleError) as info:
        ldcache.read_cache(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_malformed_old_cache() -> None:
    data = _old_cache([("libz.so.1", "/old/libz.so.1")])
    with pytest.raises(CapsuleError, match=r"string offset"):
        ldcache.parse_cache(data[:-3])
    with pytest.raises(CapsuleError, match=r"truncated"):
        ldcache.parse_cache(data[:20])


# ---- symlinks stay inside the tree ----

def test_absolute_symlink_is_rerooted(tree: Path) -> None:
    link = tree / MULTIARCH / "libalias.so.1"
    link.symlink_to(f"/{MULTIARCH}/libz.so.1")
    (tree / "etc/ld.so.cache").unlink()
    assert find_library("libalias.so.1", tree) == tree.resolve() / MULTIARCH / _real_name(
        "libz.so.1")


def test_absolute_symlink_to_host_only_file_is_not_followed_out(tree: Path) -> None:
    (tree / MULTIARCH / "libGL.so.1").symlink_to(f"/{MULTIARCH}/{_real_name('libGL.so.1')}")
    (tree / "etc/ld.so.cache").unlink()
    with pytest.raises(CapsuleError, match=r"not found"):
        find_library("libGL.so.1", tree)


def test_dotdot_never_goes_above_the_tree(tree: Path) -> None:
    escape = "../" * 30 + f"{MULTIARCH}/{_real_name('libexpat.so.1')}"
    (tree / MULTIARCH / "libexpat.so.1").symlink_to(escape)
    (tree / "etc/ld.so.cache").unlink()
    with pytest.raises(CapsuleError, match=r"not found"):
        find_library("libexpat.so.1", tree)  # host has it; the tree does not
    assert resolve_in_tree(tree.resolve(), "/etc/../../../etc") == tree.resolve() / "etc"


def test_symlink_loop_is_not_found(tree: Path) -> None:
    d = tree / MULTIARCH
    (d / "libloop.so.1").symlink_to("libloop2.so.1")
    (d / "libloop2.so.1").symlink_to("libloop.so.1")
    with pytest.raises(CapsuleError, match=r"not found"):
        find_library("libloop.so.1", tree)


def test_wrong_machine_and_non_elf_candidates_are_skipped(tree: Path, lib32: Path) -> None:
    (tree / "etc/ld.so.cache").unlink()
    first = tree / "lib/x86_64-linux-gnu"
    first.mkdir(parents=True)
    (first / "libz.so.1").write_text("not an ELF file\n")
    (tree / "lib64").mkdir()
    shutil.copy(lib32, tree / "lib64/libexpat.so.1")
    arm = bytearray((tree / MULTIARCH / _real_name("libz.so.1")).read_bytes())
    arm[18:20] = struct.pack("<H", 183)  # EM_AARCH64
    (tree / "lib64/libz.so.1").write_bytes(bytes(arm))
    assert find_library("libz.so.1", tree).parent == tree.resolve() / MULTIARCH
    with pytest.raises(CapsuleError, match=r"not found"):
        find_library("libexpat.so.1", tree)  # the only candidate is i386


def test_path_argument(tree: Path, lib32: Path) -> None:
    inside = find_library(f"/{MULTIARCH}/libz.so.1", tree)
    assert inside.is_relative_to(tree.resolve())
    assert find_library(str(lib32), "/") == lib32  # explicit paths are read as they are
    with pytest.raises(CapsuleError, match=r"does not exist"):
        find_library("./nothere/libz.so.1", tree)
