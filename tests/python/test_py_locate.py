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

from capsule_module import ldcache, locate
from capsule_module.errors import CapsuleError
from capsule_module.locate import find_library, find_library_with_trail, resolve_in_tree

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
    got = {(e.soname, e.path) for e in entries if ldcache.is_x86_64(e) and not e.hwcap}
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


def _new_cache(pairs: list[tuple[str, str]], flags: int = ldcache.FLAG_X86_64_LIBC6) -> bytes:
    header_size = 48 + 24 * len(pairs)
    strings = b""
    entries = b""
    for key, value in pairs:
        k = header_size + len(strings)
        strings += key.encode() + b"\0"
        v = header_size + len(strings)
        strings += value.encode() + b"\0"
        entries += struct.pack("<iIIIQ", flags, k, v, 0, 0)
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


@pytest.mark.parametrize("hwcap", [ldcache.HWCAP_EXTENSION, ldcache.HWCAP_EXTENSION | 1, 2])
def test_hwcaps_entries_are_skipped(hwcap: int) -> None:
    """As libcapsule (ldcache.c): any entry with a hwcap value is skipped."""
    data = bytearray(_new_cache([("libz.so.1", "/hw/libz.so.1"), ("libz.so.1", "/p/libz.so.1")]))
    struct.pack_into("<Q", data, 48 + 16, hwcap)
    assert ldcache.lookup(ldcache.parse_cache(bytes(data)), "libz.so.1") == ["/p/libz.so.1"]


@pytest.mark.parametrize("flags, found", [
    (ldcache.FLAG_X86_64_LIBC6, True),
    (ldcache.FLAG_X86_64_LIBC6 | 0x10000, True),    # bits above 16 are not compared
    (ldcache.FLAG_X86_64_LIBC6 | -0x80000000, True),  # nor the sign bit of the int32
    (ldcache.FLAG_ELF_LIBC6, False),                 # i386 libc6
    (ldcache.FLAG_ELF_LIBC6 | 0x0500, False),        # another architecture
])
def test_flags_are_masked_like_libcapsule(flags: int, found: bool) -> None:
    entries = ldcache.parse_cache(_new_cache([("libz.so.1", "/p/libz.so.1")], flags))
    assert ldcache.lookup(entries, "libz.so.1") == (["/p/libz.so.1"] if found else [])


def test_entry_with_bad_strings_is_skipped() -> None:
    data = bytearray(_new_cache([("libz.so.1", "/bad/libz.so.1"), ("libz.so.1", "/p/libz.so.1")]))
    struct.pack_into("<I", data, 48 + 8, 0x7FFFFFF0)  # first entry's value offset
    assert ldcache.lookup(ldcache.parse_cache(bytes(data)), "libz.so.1") == ["/p/libz.so.1"]


def test_unusable_new_cache_after_old_falls_back_to_old() -> None:
    """Old entries, then at the next 8-byte boundary something starting like a
    new-format cache but unusable: libcapsule uses the old entries."""
    strings = b"\0" * 4 + b"glibc-ld.so.cache9.9\0" + b"libz.so.1\0/old/libz.so.1\0"
    key = strings.index(b"libz.so.1")
    value = strings.index(b"/old/")
    data = (b"ld.so-1.7.0\0" + struct.pack("<I", 1)
            + struct.pack("<iII", ldcache.FLAG_X86_64_LIBC6, key, value) + strings)
    assert ldcache.lookup(ldcache.parse_cache(data), "libz.so.1") == ["/old/libz.so.1"]


@pytest.mark.parametrize("mangle, message", [
    (lambda d: b"garbage" + d, "unknown magic"),
    (lambda d: d[:30], "truncated"),
    (lambda d: d[:48 + 10], "truncated"),
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
    assert ldcache.parse_cache(data[:-3]) == []  # the entry's path runs off the end
    with pytest.raises(CapsuleError, match=r"truncated"):
        ldcache.parse_cache(data[:20])


@pytest.mark.parametrize("content", [b"garbage", b"glibc-ld.so.cache1.1" + b"\xff" * 10, b""])
def test_malformed_cache_in_tree_is_ignored(tree: Path, content: bytes) -> None:
    """As ld.so and libcapsule: a bad cache is not used, the standard
    directories still are."""
    (tree / "etc/ld.so.cache").write_bytes(content)
    assert find_library("libz.so.1", tree).parent == tree.resolve() / MULTIARCH
    with pytest.raises(CapsuleError, match=r"libexpat.so.1 not found"):
        find_library("libexpat.so.1", tree)  # only the cache knew /opt/odd/lib


def test_fifo_cache_in_tree_is_ignored_without_blocking(tree: Path) -> None:
    (tree / "etc/ld.so.cache").unlink()
    os.mkfifo(tree / "etc/ld.so.cache")
    assert find_library("libz.so.1", tree).parent == tree.resolve() / MULTIARCH
    with pytest.raises(CapsuleError, match=r"not a usable ld.so.cache"):
        ldcache.read_cache(tree / "etc/ld.so.cache")


def test_trail_follows_cache_symlinks(tree: Path) -> None:
    """Every path the lookup read: the cache, the symlink the cache names and
    the file it leads to."""
    odd = tree / "opt/odd/lib"
    real = odd / _real_name("libexpat.so.1")
    assert (odd / "libexpat.so.1").is_symlink()  # made by ldconfig
    path, trail = find_library_with_trail("libexpat.so.1", tree)
    root = tree.resolve()
    assert path == root / "opt/odd/lib" / real.name
    assert trail == [root / "etc/ld.so.cache", root / "opt/odd/lib/libexpat.so.1", path]


def test_trail_stays_inside_the_tree(tree: Path) -> None:
    """An absolute directory symlink is re-rooted: the trail names the tree's
    own files, never the host's."""
    (tree / "etc/ld.so.cache").unlink()
    (tree / "lib").mkdir()
    (tree / "lib/x86_64-linux-gnu").symlink_to(f"/{MULTIARCH}")  # merged /usr, absolute
    path, trail = find_library_with_trail("libz.so.1", tree)
    root = tree.resolve()
    assert trail == [root / "lib/x86_64-linux-gnu", root / MULTIARCH / "libz.so.1", path]
    assert path == root / MULTIARCH / _real_name("libz.so.1")


def test_unreadable_symlink_is_not_found(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / "etc/ld.so.cache").unlink()
    (tree / MULTIARCH / "libq.so.1").symlink_to("libz.so.1")

    def failing(path: object) -> str:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "readlink", failing)
    with pytest.raises(CapsuleError, match=r"libq.so.1 not found"):
        find_library("libq.so.1", tree)


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


def test_empty_soname_is_refused(tree: Path) -> None:
    with pytest.raises(CapsuleError, match=r"^empty library name$"):
        find_library("", tree)


def test_relative_path_is_taken_from_the_working_directory(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / MULTIARCH)
    path, examined = find_library_with_trail("./libz.so.1", "/nonexistent-tree")
    assert path == Path("./libz.so.1") and examined == [path]


def test_absolute_path_missing_from_the_tree(tree: Path) -> None:
    with pytest.raises(CapsuleError, match=r"library /opt/nothere/libz.so.1 not found under"):
        find_library("/opt/nothere/libz.so.1", tree)


def test_truncated_old_cache_header() -> None:
    with pytest.raises(CapsuleError, match=r"truncated ld.so.cache \(incomplete header\)"):
        ldcache.parse_cache(b"ld.so-1.7.0\0\1\0", "c")


def test_cache_under_a_file_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "etc").write_text("")
    with pytest.raises(CapsuleError, match=r"etc/ld.so.cache: cannot be read \(Not a directory\)"):
        ldcache.read_cache(tmp_path / "etc" / "ld.so.cache")


def test_fifo_candidate_is_skipped_without_blocking(tree: Path) -> None:
    """A FIFO where the library should be is passed over (as by libcapsule),
    never opened for a blocking read, also when it appears after the stat."""
    fifo = tree / MULTIARCH / "libz.so.1"
    good = tree / "usr/lib64/libz.so.1"
    good.parent.mkdir(parents=True)
    shutil.copy(fifo.resolve(), good)
    fifo.unlink()
    os.mkfifo(fifo)
    assert find_library("libz.so.1", tree) == tree.resolve() / "usr/lib64/libz.so.1"
    assert not locate._loadable(fifo)
