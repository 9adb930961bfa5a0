"""One truth per rule: the configure-time resolver (capsule_module.locate and
ldcache, which `capsule.shim()` and `capsule-shim` use to find the library to
read) and libcapsule's (resolve.c and ldcache.c, which load it at run time)
must find the same file in the same tree, or both find none: the ld.so.cache
layouts, truncated and corrupted caches, caches pointing outside the prefix,
symlink loops and escapes, candidates of the wrong class or byte order,
FIFOs, truncated files and odd prefix names (the hostile trees of
test_hostile.py). The target is a leaf library (libdemodep.so.1), so
libcapsule's answer is its lookup of that one soname.

Unlike the other runtime tests, this one imports the Python package."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from build import (
    FIXTURES,
    MULTIARCH,
    Built,
    build_driver,
    make_prefix,
    sh,
    write_ldcache,
    write_raw_ldcache,
)
from capsule_module import arch as arches
from capsule_module import ldcache
from capsule_module.errors import CapsuleError
from capsule_module.locate import lookup_library
from testarch import (
    ARCH,
    EHDR,
    LATER_LIB_DIR,
    OTHER_CLASS,
    OTHER_MACHINE,
    ldconfig,
    system_ldcache,
)

PRIVATE = ["error.c", "debug.c", "mapfile.c", "ldcache.c", "elffile.c", "resolve.c", "plancache.c",
           "forklock.c"]
TARGET = "libdemodep.so.1"
# capsule_module's entry for the architecture under test (CAPSULE_TEST_ARCH).
PY_ARCH = arches.get(ARCH.name)
Tree = Callable[[Built, Path], Path]  # makes a prefix tree under the given directory


@pytest.fixture(scope="module")
def drivers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("parity-drivers")
    for name in ("ldcache_driver", "resolve_driver"):
        build_driver(out / name, FIXTURES / f"{name}.c", PRIVATE)
    return {name: out / name for name in ("ldcache_driver", "resolve_driver")}


def drive(exe: Path, *args: str | Path) -> list[str]:
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, timeout=30,
                          check=False)
    assert proc.returncode in (0, 1), proc  # never a crash or a sanitizer report
    assert b"Sanitizer" not in proc.stderr, proc.stderr
    return proc.stdout.decode(errors="surrogateescape").splitlines()


def c_lookup(drivers: dict[str, Path], prefix: Path, soname: str = TARGET) -> str | None:
    """The file libcapsule loads for soname under prefix, or None."""
    out = drive(drivers["resolve_driver"], prefix, soname)
    if out[0].startswith("error: "):
        assert out[0].startswith(f"error: {soname} "), out  # about the target itself
        return None
    return next(line.split(" ", 1)[1] for line in out if line.split(" ", 1)[0] == soname)


def py_lookup(prefix: Path, soname: str = TARGET) -> str | None:
    found = lookup_library(soname, prefix, PY_ARCH).path
    return None if found is None else str(found)


def assert_same(drivers: dict[str, Path], prefix: Path) -> str | None:
    c, py = c_lookup(drivers, prefix), py_lookup(prefix)
    assert c == py, f"{prefix}: libcapsule found {c}, capsule_module found {py}"
    return c


# ---- trees ----

def _plain(b: Built, d: Path) -> Path:
    return make_prefix(d, [b.demodep])


def _no_cache(b: Built, d: Path) -> Path:
    return make_prefix(d, [b.demodep], ldcache=False)


def _cache_only(b: Built, d: Path) -> Path:
    """Only the cache knows the library's directory (not a standard one)."""
    (d / "opt/vendor/lib").mkdir(parents=True)
    shutil.copy2(b.demodep, d / "opt/vendor/lib" / TARGET)
    (d / "etc").mkdir()
    (d / "etc/ld.so.conf").write_text("/opt/vendor/lib\n")
    (d / "var/cache/ldconfig").mkdir(parents=True)
    sh([*ldconfig(), "-X", "-r", d])
    return d


def _cache_outside(b: Built, d: Path) -> Path:
    """The cache names copies outside the prefix, absolutely and with '..'."""
    real = str(b.real_dir / TARGET).encode()
    write_raw_ldcache(d / "etc/ld.so.cache", [(TARGET.encode(), real),
                                               (TARGET.encode(), b"/../../../.." + real),
                                               (TARGET.encode(), b"../../" + real)])
    return d


def _in_lib64_behind(bad: Callable[[bytearray], None]) -> Tree:
    """A spoiled candidate in the multiarch directory, a good one in usr/lib64
    (i386: usr/lib32)."""
    def tree(b: Built, d: Path) -> Path:
        make_prefix(d, [b.demodep], ldcache=False)
        spoiled = bytearray(b.demodep.read_bytes())
        bad(spoiled)
        (d / MULTIARCH / TARGET).write_bytes(bytes(spoiled))
        (d / LATER_LIB_DIR).mkdir(parents=True)
        shutil.copy2(b.demodep, d / LATER_LIB_DIR / TARGET)
        return d
    return tree


def _replaced(make: Callable[[Built, Path, Path], None]) -> Tree:
    """The multiarch copy replaced by what `make` puts at its path."""
    def tree(b: Built, d: Path) -> Path:
        make_prefix(d, [b.demodep])
        lib = d / MULTIARCH / TARGET
        lib.unlink()
        make(b, d, lib)
        return d
    return tree


def _setitem(offset: int, value: int) -> Callable[[bytearray], None]:
    def spoil(data: bytearray) -> None:
        data[offset] = value
    return spoil


def _contents(data: Callable[[bytes], bytes]) -> Callable[[Built, Path, Path], None]:
    return lambda b, d, lib: lib.write_bytes(data(b.demodep.read_bytes()))


def _link(target: Callable[[Built, Path], str | Path]) -> Callable[[Built, Path, Path], None]:
    return lambda b, d, lib: lib.symlink_to(target(b, d))


def _loop3(b: Built, d: Path, lib: Path) -> None:
    lib.symlink_to("a")
    (lib.parent / "a").symlink_to("b")
    (lib.parent / "b").symlink_to(f"../{ARCH.triplet}/a")


def _dir_escape(up: bool) -> Callable[[Built, Path, Path], None]:
    def make(b: Built, d: Path, lib: Path) -> None:
        (d / "opt").symlink_to("../" * 20 if up else "/")
        lib.symlink_to("../../../opt" + str(b.real_dir / TARGET))
    return make


def _rerooted(b: Built, d: Path, lib: Path) -> None:
    """An absolute symlink whose target exists inside the prefix."""
    inside = d / "vendor" / TARGET
    inside.parent.mkdir()
    shutil.copy2(b.demodep, inside)
    lib.symlink_to("/vendor/" + TARGET)


TREES: dict[str, Tree] = {
    "plain": _plain,
    "no-cache": _no_cache,
    "cache-only": _cache_only,
    "cache-outside": _cache_outside,
    "wrong-class": _in_lib64_behind(_setitem(4, OTHER_CLASS)),
    "big-endian": _in_lib64_behind(_setitem(5, 2)),
    "bad-class": _in_lib64_behind(_setitem(4, 7)),
    "bad-byte-order": _in_lib64_behind(_setitem(5, 9)),
    "wrong-machine": _in_lib64_behind(_setitem(18, OTHER_MACHINE)),
    "executable": _in_lib64_behind(_setitem(16, 2)),  # e_type ET_EXEC
    "bad-phentsize": _in_lib64_behind(_setitem(EHDR["e_phentsize"][0], 0)),
    "phoff-past-end": _in_lib64_behind(_setitem(sum(EHDR["e_phoff"]) - 1, 0x7f)),  # its top byte
    "self-loop": _replaced(_link(lambda b, d: TARGET)),
    "loop-of-three": _replaced(_loop3),
    "escape-dotdot": _replaced(_link(lambda b, d: "../" * 20 + str(b.real_dir / TARGET))),
    "escape-absolute": _replaced(_link(lambda b, d: b.real_dir / TARGET)),
    "escape-dir-dotdot": _replaced(_dir_escape(up=True)),
    "escape-dir-absolute": _replaced(_dir_escape(up=False)),
    "absolute-rerooted": _replaced(_rerooted),
    "fifo": _replaced(lambda b, d, lib: os.mkfifo(lib)),
    "directory": _replaced(lambda b, d, lib: lib.mkdir()),
    "empty": _replaced(_contents(lambda whole: b"")),
    "magic-only": _replaced(_contents(lambda whole: b"\x7fELF")),
    "ident-only": _replaced(_contents(lambda whole: whole[:16])),
    "header-only": _replaced(_contents(lambda whole: whole[:64])),
    "first-600-bytes": _replaced(_contents(lambda whole: whole[:600])),
    "first-half": _replaced(_contents(lambda whole: whole[:len(whole) // 2])),
    "garbage": _replaced(_contents(lambda whole: b"\x7fELF" + b"\xff" * 4000)),
}


@pytest.mark.parametrize("name", TREES)
def test_same_library_found(built: Built, drivers: dict[str, Path], tmp_path: Path,
                            name: str) -> None:
    assert_same(drivers, TREES[name](built, tmp_path / "p"))


@pytest.mark.parametrize("name", ["with spaces/and more", "non-ascii \u00e9\u4e2d"])
def test_odd_prefix_names(built: Built, drivers: dict[str, Path], tmp_path: Path,
                          name: str) -> None:
    assert assert_same(drivers, make_prefix(tmp_path / name, [built.demodep])) is not None


def test_truncated_caches(built: Built, drivers: dict[str, Path], tmp_path: Path) -> None:
    """Only the cache knows where the library is: each cut either still
    lists it for both readers or for neither."""
    prefix = _cache_only(built, tmp_path / "p")
    cache = prefix / "etc/ld.so.cache"
    whole = cache.read_bytes()
    for size in (0, 1, 11, 12, 16, 19, 20, 47, 48, 60, len(whole) // 2, len(whole) - 1):
        cache.write_bytes(whole[:size])
        assert_same(drivers, prefix)


def test_corrupted_caches(built: Built, drivers: dict[str, Path], tmp_path: Path) -> None:
    prefix = _cache_only(built, tmp_path / "p")
    cache = prefix / "etc/ld.so.cache"
    whole = cache.read_bytes()
    positions = [*range(0, min(len(whole), 120), 2), *range(120, len(whole), 29)]
    for pos in positions:
        for value in (0x00, 0xff):
            data = bytearray(whole)
            data[pos] = value
            cache.write_bytes(bytes(data))
            assert_same(drivers, prefix)


# ---- the cache readers alone ----

def c_entries(drivers: dict[str, Path], cache: Path) -> list[tuple[str, str]] | None:
    """libcapsule's entries of a cache for its architecture, in order; None if it refuses
    the file or it is missing."""
    out = drive(drivers["ldcache_driver"], cache)
    if out[0].startswith(("error: ", "missing")):
        return None
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in out[1:]]


def py_entries(cache: Path) -> list[tuple[str, str]] | None:
    try:
        entries = ldcache.read_cache(cache)
    except CapsuleError:  # anything else fails the test
        return None
    return [(e.soname, e.path) for e in entries if ldcache.is_for(e, PY_ARCH)]


@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_cache_layouts_read_alike(built: Built, drivers: dict[str, Path], tmp_path: Path,
                                  fmt: str) -> None:
    root = tmp_path / "tree"
    make_prefix(root, [built.demo, built.demodep], ldcache=False)
    cache = write_ldcache(root, fmt)
    assert c_entries(drivers, cache) == py_entries(cache) == [
        ("libdemodep.so.1", f"/{MULTIARCH}/libdemodep.so.1"),
        ("libdemo.so.1", f"/{MULTIARCH}/libdemo.so.1")]


def test_system_cache_read_alike(drivers: dict[str, Path]) -> None:
    entries = py_entries(system_ldcache())
    assert entries and c_entries(drivers, system_ldcache()) == entries


def test_garbage_caches_read_alike(drivers: dict[str, Path], tmp_path: Path) -> None:
    real = Path("/etc/ld.so.cache").read_bytes()
    cases = {
        "empty": b"", "magic": b"not a cache at all", "truncated": real[:60],
        "huge-count": real[:20] + b"\xff\xff\xff\x7f" + real[24:200],
        "bad-offsets": real[:48] + b"\x03\x03\x00\x00" + b"\xff" * 8 + real[60:],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert c_entries(drivers, path) == py_entries(path), name
    assert c_entries(drivers, tmp_path / "absent") is py_entries(tmp_path / "absent") is None
