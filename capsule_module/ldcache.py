"""Read glibc's ld.so.cache (new "glibc-ld.so.cache1.1" format, and the old
"ld.so-1.7.0" format, possibly followed by a new-format cache).

Only what the lookup needs is kept: soname -> library path entries for
x86_64 (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64), in cache order. Every offset is
bounds-checked; a malformed cache raises CapsuleError naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import CapsuleError

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache"
NEW_VERSION = b"1.1"

FLAG_ELF_LIBC6 = 0x0003
FLAG_X8664_LIB64 = 0x0300
FLAG_X86_64_LIBC6 = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64
HWCAP_EXTENSION = 1 << 62  # entry belongs to a glibc-hwcaps subdirectory

_OLD_HEADER = struct.Struct("<12sI")  # magic (padded), nlibs
_OLD_ENTRY = struct.Struct("<iII")  # flags, key, value
_NEW_HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, ext
_NEW_ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion, hwcap


@dataclass(frozen=True)
class CacheEntry:
    soname: str
    path: str
    flags: int
    hwcap: int


def _fail(path: Path, problem: str) -> CapsuleError:
    return CapsuleError(f"{path}: {problem}")


def _cstring(path: Path, data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise _fail(path, f"is a malformed ld.so.cache (string offset {offset} out of range)")
    return data[offset:end].decode("utf-8", "surrogateescape")


def _parse_new(path: Path, data: bytes, base: int) -> list[CacheEntry]:
    if base + _NEW_HEADER.size > len(data):
        raise _fail(path, "is a truncated ld.so.cache (incomplete header)")
    magic, nlibs, _len_strings, _flags, _ext = _NEW_HEADER.unpack_from(data, base)
    if magic != NEW_MAGIC + NEW_VERSION:
        raise _fail(path, "is not a supported ld.so.cache (unknown new-format version)")
    start = base + _NEW_HEADER.size
    if start + nlibs * _NEW_ENTRY.size > len(data):
        raise _fail(path, "is a truncated ld.so.cache (entries past the end of the file)")
    out = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = _NEW_ENTRY.unpack_from(data, start + i * _NEW_ENTRY.size)
        # New-format string offsets are relative to the new header.
        out.append(CacheEntry(_cstring(path, data, base + key), _cstring(path, data, base + value),
                              flags, hwcap))
    return out


def _parse_old(path: Path, data: bytes) -> list[CacheEntry]:
    if len(data) < _OLD_HEADER.size:
        raise _fail(path, "is a truncated ld.so.cache (incomplete header)")
    _magic, nlibs = _OLD_HEADER.unpack_from(data, 0)
    strings = _OLD_HEADER.size + nlibs * _OLD_ENTRY.size
    if strings > len(data):
        raise _fail(path, "is a truncated ld.so.cache (entries past the end of the file)")
    new_base = (strings + 7) & ~7  # a new-format cache may follow, 8-byte aligned
    if data.startswith(NEW_MAGIC, new_base):
        return _parse_new(path, data, new_base)
    out = []
    for i in range(nlibs):
        flags, key, value = _OLD_ENTRY.unpack_from(data, _OLD_HEADER.size + i * _OLD_ENTRY.size)
        # Old-format string offsets are relative to the string table after the entries.
        out.append(CacheEntry(_cstring(path, data, strings + key),
                              _cstring(path, data, strings + value), flags, 0))
    return out


def parse_cache(data: bytes, path: str | Path = "ld.so.cache") -> list[CacheEntry]:
    """All entries of a cache image, in file order."""
    path = Path(path)
    if data.startswith(OLD_MAGIC):
        return _parse_old(path, data)
    if data.startswith(NEW_MAGIC):
        return _parse_new(path, data, 0)
    raise _fail(path, "is not an ld.so.cache file (unknown magic)")


def read_cache(path: str | Path) -> list[CacheEntry]:
    """Read and parse an ld.so.cache file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    return parse_cache(data, path)


def lookup(entries: list[CacheEntry], soname: str) -> list[str]:
    """Paths the cache lists for an x86_64 soname: plain entries first, then
    glibc-hwcaps ones (a build-time reader cannot know the run-time CPU)."""
    hits = [e for e in entries if e.soname == soname and e.flags == FLAG_X86_64_LIBC6]
    plain = [e.path for e in hits if not e.hwcap & HWCAP_EXTENSION]
    return plain + [e.path for e in hits if e.hwcap & HWCAP_EXTENSION]
