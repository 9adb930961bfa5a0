"""Read glibc's ld.so.cache (new "glibc-ld.so.cache1.1" format, and the old
"ld.so-1.7.0" format, possibly followed by a new-format cache).

The policy is libcapsule's (libcapsule/ldcache.c): an entry matches when the
low 16 bits of its flags are one the architecture's ld.so accepts
(arch.Arch.ldcache_flags: FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 for x86_64,
FLAG_ELF_LIBC6 or FLAG_ELF for i386), entries for
glibc-hwcaps subdirectories (a non-zero hwcap) are skipped, and an entry whose
strings are out of range is skipped. Every offset is bounds-checked; a cache
whose header or entry table is malformed raises CapsuleError naming the file
(the lookup then ignores the cache, as ld.so does).
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import NamedTuple

from . import arch as arches
from .errors import CapsuleError

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache"
NEW_VERSION = b"1.1"

FLAG_ELF_LIBC6 = 0x0003
FLAG_X8664_LIB64 = 0x0300
FLAG_X86_64_LIBC6 = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64
FLAG_MASK = 0xFFFF  # type and architecture bits; the rest is not compared
HWCAP_EXTENSION = 1 << 62  # entry belongs to a glibc-hwcaps subdirectory
MAX_SIZE = 1 << 30

_OLD_HEADER = struct.Struct("<12sI")  # magic (padded), nlibs
_OLD_ENTRY = struct.Struct("<iII")  # flags, key, value
_NEW_HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, ext
_NEW_ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion, hwcap


class CacheEntry(NamedTuple):
    soname: str
    path: str
    flags: int
    hwcap: int


def _fail(path: Path, problem: str) -> CapsuleError:
    return CapsuleError(f"{path}: {problem}")


def _cstring(data: bytes, offset: int) -> str | None:
    """The NUL-terminated string at offset, or None when out of range."""
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        return None
    return data[offset:end].decode("utf-8", "surrogateescape")


def _entry(data: bytes, key: int, value: int, flags: int, hwcap: int) -> CacheEntry | None:
    soname, path = _cstring(data, key), _cstring(data, value)
    if soname is None or path is None:
        return None
    return CacheEntry(soname, path, flags, hwcap)


def _parse_new(path: Path, data: bytes, base: int) -> list[CacheEntry]:
    if base + _NEW_HEADER.size > len(data):
        raise _fail(path, "is a truncated ld.so.cache (incomplete header)")
    magic, nlibs, _len_strings, _flags, _ext = _NEW_HEADER.unpack_from(data, base)
    if magic != NEW_MAGIC + NEW_VERSION:
        raise _fail(path, "is not a supported ld.so.cache (unknown new-format version)")
    start = base + _NEW_HEADER.size
    if start + nlibs * _NEW_ENTRY.size > len(data):
        raise _fail(path, "is a truncated ld.so.cache (entries past the end of the file)")
    entries = (_NEW_ENTRY.unpack_from(data, start + i * _NEW_ENTRY.size) for i in range(nlibs))
    # New-format string offsets are relative to the new header.
    found = (_entry(data, base + key, base + value, flags, hwcap)
             for flags, key, value, _osv, hwcap in entries)
    return [e for e in found if e is not None]


def _parse_old(path: Path, data: bytes) -> list[CacheEntry]:
    if len(data) < _OLD_HEADER.size:
        raise _fail(path, "is a truncated ld.so.cache (incomplete header)")
    _magic, nlibs = _OLD_HEADER.unpack_from(data, 0)
    strings = _OLD_HEADER.size + nlibs * _OLD_ENTRY.size
    if strings > len(data):
        raise _fail(path, "is a truncated ld.so.cache (entries past the end of the file)")
    try:  # a new-format cache may follow, 8-byte aligned; if unusable, the old one counts
        return _parse_new(path, data, (strings + 7) & ~7)
    except CapsuleError:
        pass
    entries = (_OLD_ENTRY.unpack_from(data, _OLD_HEADER.size + i * _OLD_ENTRY.size)
               for i in range(nlibs))
    # Old-format string offsets are relative to the string table after the entries.
    found = (_entry(data, strings + key, strings + value, flags, 0)
             for flags, key, value in entries)
    return [e for e in found if e is not None]


def parse_cache(data: bytes, path: str | Path = "ld.so.cache") -> list[CacheEntry]:
    """All entries of a cache image, in file order."""
    path = Path(path)
    if data.startswith(NEW_MAGIC + NEW_VERSION):
        return _parse_new(path, data, 0)
    if data.startswith(OLD_MAGIC):
        return _parse_old(path, data)
    if data.startswith(NEW_MAGIC):
        return _parse_new(path, data, 0)
    raise _fail(path, "is not an ld.so.cache file (unknown magic)")


def read_cache(path: str | Path) -> list[CacheEntry]:
    """Read and parse an ld.so.cache file."""
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size <= MAX_SIZE:
            raise _fail(path, "is not a usable ld.so.cache file (not a regular file, "
                        "empty or too big)")
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    return parse_cache(data, path)


def is_for(entry: CacheEntry, arch: arches.Arch) -> bool:
    """An entry of arch's libraries, compared as libcapsule compares it."""
    return entry.flags & FLAG_MASK in arch.ldcache_flags


def is_x86_64(entry: CacheEntry) -> bool:
    """An x86_64 libc6 entry, compared as libcapsule compares it."""
    return is_for(entry, arches.X86_64)


def lookup(entries: list[CacheEntry], soname: str,
           arch: arches.Arch = arches.X86_64) -> list[str]:
    """Paths the cache lists for soname on arch, in cache order, without the
    glibc-hwcaps entries (valid only on some CPUs: libcapsule skips them)."""
    return [e.path for e in entries
            if e.soname == soname and is_for(e, arch) and not e.hwcap]
