"""Find a library by soname under a tree (a "prefix"), the way the runtime does:
TREE/etc/ld.so.cache first, then the standard directories. Paths from the
cache are re-rooted under the tree, symlinks are followed by hand and never
leave it, and candidates of the wrong ELF class or machine are skipped.

Every lookup also reports the paths it examined (the cache, each candidate and
every symlink followed), so a build system can re-run when one changes.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

from . import ldcache
from .errors import CapsuleError

STANDARD_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64",
                 "lib", "usr/lib")
EM_X86_64 = 62
MAX_SYMLINKS = 40


@dataclass
class Lookup:
    """The outcome of a lookup: the library found (or None), every existing
    path examined on the way, and the regular files skipped as unusable."""
    path: Path | None = None
    examined: list[Path] = field(default_factory=list)
    rejected: list[Path] = field(default_factory=list)

    def saw(self, path: Path) -> None:
        if path not in self.examined:
            self.examined.append(path)


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def resolve_in_tree(root: Path, path: str, trail: Lookup | None = None) -> Path | None:
    """Resolve `path` (absolute inside the tree) with every symlink confined to
    root: absolute targets are re-rooted, '..' never goes above root. None if
    a component is missing or unreadable, or the link limit is hit. Each
    symlink followed, and the result, are recorded in trail."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    parts: list[str] = []
    links = 0
    while pending:
        comp = pending.pop(0)
        if comp == "..":
            if parts:
                parts.pop()
            continue
        here = root.joinpath(*parts, comp)
        mode = _lstat_mode(here)
        if mode is None:
            return None
        if not stat.S_ISLNK(mode):
            parts.append(comp)
            continue
        links += 1
        target = _readlink(here)
        if links > MAX_SYMLINKS or target is None:
            return None
        if trail is not None:
            trail.saw(here)
        if target.startswith("/"):
            parts = []
        pending[:0] = [p for p in target.split("/") if p not in ("", ".")]
    result = root.joinpath(*parts)
    if trail is not None:
        trail.saw(result)
    return result


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


_EHDR_TAIL = struct.Struct("<HHIQQQIHHHHHH")  # Elf64_Ehdr after e_ident
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
_ET_DYN, _PT_DYNAMIC = 3, 2


def _loadable(path: Path) -> bool:
    """Whether libcapsule takes path as a candidate (elffile.c: check_header,
    read_dynamic): an x86_64 little-endian ELF64 shared object whose program
    header table and (last) dynamic segment lie inside the file. Anything
    else is skipped and the search goes on, in both. (libcapsule also reads
    the dynamic string table; that is not repeated here.)"""
    try:  # O_NONBLOCK: a FIFO put there since the caller's stat must not block
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return False
            size, head = st.st_size, f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4:6] != b"\x02\x01":
                return False
            (e_type, e_machine, _version, _entry, phoff, _shoff, _flags, _ehsize,
             phentsize, phnum, *_rest) = _EHDR_TAIL.unpack_from(head, 16)
            if (e_type, e_machine, phentsize) != (_ET_DYN, EM_X86_64, _PHDR.size) \
                    or phoff > size or phnum > (size - phoff) // _PHDR.size or phoff % 8:
                return False
            f.seek(phoff)
            table = f.read(phnum * _PHDR.size)
    except OSError:
        return False
    dynamic = [p for p in _PHDR.iter_unpack(table) if p[0] == _PT_DYNAMIC]
    if not dynamic:
        return False
    _type, _flags, offset, _vaddr, _paddr, filesz, _memsz, _align = dynamic[-1]
    return offset <= size and filesz <= size - offset and offset % 8 == 0


def _cache_paths(root: Path, soname: str, trail: Lookup) -> list[str]:
    """What TREE/etc/ld.so.cache lists for soname; a missing or malformed cache
    lists nothing, as for ld.so and libcapsule."""
    cache = resolve_in_tree(root, "/etc/ld.so.cache", trail)
    if cache is None or not _is_regular(cache):
        return []
    try:
        return ldcache.lookup(ldcache.read_cache(cache), soname)
    except CapsuleError:
        return []


def _candidates(root: Path, soname: str, trail: Lookup) -> list[str]:
    return _cache_paths(root, soname, trail) + [f"/{d}/{soname}" for d in STANDARD_DIRS]


def _tree_root(tree: str | Path) -> Path:
    root = Path(os.path.realpath(tree))
    if not root.is_dir():
        raise CapsuleError(f"library search tree {tree} is not a directory")
    return root


def lookup_library(soname: str, tree: str | Path) -> Lookup:
    """Search the plain soname under tree; Lookup.path is None when nothing
    usable is there. Raises CapsuleError only if tree is not a directory."""
    root = _tree_root(tree)
    trail = Lookup()
    for cand in _candidates(root, soname, trail):
        resolved = resolve_in_tree(root, cand, trail)
        if resolved is None or not _is_regular(resolved):
            continue
        if _loadable(resolved):
            trail.path = resolved
            break
        trail.rejected.append(resolved)
    trail.examined = [p for p in trail.examined if os.path.lexists(p)]
    return trail


def not_found(soname: str, tree: str | Path) -> CapsuleError:
    return CapsuleError(f"library {soname} not found under {tree} "
                        "(looked in etc/ld.so.cache and the standard library directories)")


def find_library_with_trail(soname: str, tree: str | Path) -> tuple[Path, list[Path]]:
    """find_library(), and every existing path the lookup examined."""
    if not soname:
        raise CapsuleError("empty library name")
    if "/" in soname and not soname.startswith("/"):
        path = _check_path(Path(soname))
        return path, [path]
    if soname.startswith("/"):
        trail = Lookup()
        found = resolve_in_tree(_tree_root(tree), soname, trail)
        if found is None or not found.exists():
            raise CapsuleError(f"library {soname} not found under {tree}")
        return _check_path(found), trail.examined
    result = lookup_library(soname, tree)
    if result.path is None:
        raise not_found(soname, tree)
    return result.path, result.examined


def find_library(soname: str, tree: str | Path) -> Path:
    """Path of the x86_64 ELF64 library `soname` inside `tree`.

    A soname containing '/' is a path: an absolute one is taken inside the
    tree, a relative one as given (relative to the working directory)."""
    return find_library_with_trail(soname, tree)[0]


def check_soname(asked: str, path: Path, soname: str) -> None:
    """CapsuleError unless the library found at path for `asked` can be shimmed
    under that name: its DT_SONAME must be a file name, and, when `asked` is a
    soname rather than a path, that soname. A shim carries the soname it was
    asked for, which programs' DT_NEEDED name; a library that calls itself
    otherwise is another library (libfoo.so.1 installed as a copy of
    libfoo.so.2), or a path where a soname belongs."""
    if "/" in soname or soname in (".", ".."):
        raise CapsuleError(f"library {asked} ({path}) has DT_SONAME {soname!r}, which is not "
                           "a file name such as libz.so.1, so no shim can carry it")
    if "/" not in asked and soname != asked:
        raise CapsuleError(f"library {asked} ({path}) has DT_SONAME {soname!r}, not {asked!r}: "
                           f"it is another library, and a shim named {asked} would not be it")


def _check_path(path: Path) -> Path:
    # An explicit path is read whatever its class; the renderer rejects non-x86_64.
    if not path.exists():
        raise CapsuleError(f"library {path} does not exist")
    return path
