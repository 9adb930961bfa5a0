"""Find a library by soname under a tree (a "prefix"), the way the runtime does:
TREE/etc/ld.so.cache first, then the standard directories. Paths from the
cache are re-rooted under the tree, symlinks are followed by hand and never
leave it, and candidates of the wrong ELF class or machine are skipped. What
is right (cache flags, directories, class, machine) is the architecture's
(arch.Arch; x86_64 unless another is asked for).

Every lookup also reports the paths it examined (the cache, each candidate and
every symlink followed), so a build system can re-run when one changes.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import NamedTuple

from . import arch as arches
from . import ldcache
from .arch import Arch
from .errors import CapsuleError

MAX_SYMLINKS = 40


class Lookup:
    """The outcome of a lookup: the library found (or None), every existing
    path examined on the way, and the regular files skipped as unusable.
    (A plain class, not a dataclass: see elfreader.)"""

    def __init__(self, path: Path | None = None, examined: list[Path] | None = None,
                 rejected: list[Path] | None = None) -> None:
        self.path = path
        self.examined: list[Path] = [] if examined is None else examined
        self.rejected: list[Path] = [] if rejected is None else rejected

    def __repr__(self) -> str:
        return (f"Lookup(path={self.path!r}, examined={self.examined!r}, "
                f"rejected={self.rejected!r})")

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


class _Layout(NamedTuple):
    """The little-endian ELF structures of one class that _loadable reads."""
    ehdr_tail: struct.Struct  # ElfN_Ehdr after e_ident
    phdr: struct.Struct       # ElfN_Phdr
    offset_field: int         # index of p_offset in phdr
    filesz_field: int         # index of p_filesz in phdr
    align: int                # _Alignof(ElfN_Phdr) == _Alignof(ElfN_Dyn)


_LAYOUTS = {
    64: _Layout(struct.Struct("<HHIQQQIHHHHHH"), struct.Struct("<IIQQQQQQ"), 2, 5, 8),
    32: _Layout(struct.Struct("<HHIIIIIHHHHHH"), struct.Struct("<IIIIIIII"), 1, 4, 4),
}
_ELFDATA2LSB = 1
_ET_DYN, _PT_DYNAMIC = 3, 2


def _loadable(path: Path, arch: Arch = arches.X86_64) -> bool:
    """Whether libcapsule takes path as a candidate (elffile.c: check_header,
    read_dynamic): a little-endian shared object of arch's ELF class and
    machine whose program header table and (last) dynamic segment lie
    inside the file, aligned. Anything else is skipped and the search goes
    on, in both. (libcapsule also reads the dynamic string table; that is
    not repeated here.)"""
    layout = _LAYOUTS[arch.elf_class]
    ident = bytes([0x7F, *b"ELF", 1 if arch.elf_class == 32 else 2, _ELFDATA2LSB])
    want = 16 + layout.ehdr_tail.size
    try:  # O_NONBLOCK: a FIFO put there since the caller's stat must not block
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return False
            size, head = st.st_size, f.read(want)
            if len(head) < want or head[:6] != ident:
                return False
            (e_type, e_machine, _version, _entry, phoff, _shoff, _flags, _ehsize,
             phentsize, phnum, *_rest) = layout.ehdr_tail.unpack_from(head, 16)
            if (e_type, e_machine, phentsize) != (_ET_DYN, arch.e_machine, layout.phdr.size) \
                    or phoff > size or phnum > (size - phoff) // layout.phdr.size \
                    or phoff % layout.align:
                return False
            f.seek(phoff)
            table = f.read(phnum * layout.phdr.size)
    except OSError:
        return False
    dynamic = [p for p in layout.phdr.iter_unpack(table) if p[0] == _PT_DYNAMIC]
    if not dynamic:
        return False
    offset, filesz = dynamic[-1][layout.offset_field], dynamic[-1][layout.filesz_field]
    return offset <= size and filesz <= size - offset and offset % layout.align == 0


def _cache_paths(root: Path, soname: str, trail: Lookup, arch: Arch) -> list[str]:
    """What TREE/etc/ld.so.cache lists for soname; a missing or malformed cache
    lists nothing, as for ld.so and libcapsule."""
    cache = resolve_in_tree(root, "/etc/ld.so.cache", trail)
    if cache is None or not _is_regular(cache):
        return []
    try:
        return ldcache.lookup(ldcache.read_cache(cache), soname, arch)
    except CapsuleError:
        return []


def _candidates(root: Path, soname: str, trail: Lookup, arch: Arch) -> list[str]:
    return _cache_paths(root, soname, trail, arch) + [f"/{d}/{soname}" for d in arch.lib_dirs]


def _tree_root(tree: str | Path) -> Path:
    root = Path(os.path.realpath(tree))
    if not root.is_dir():
        raise CapsuleError(f"library search tree {tree} is not a directory")
    return root


def lookup_library(soname: str, tree: str | Path, arch: Arch = arches.X86_64) -> Lookup:
    """Search the plain soname for arch under tree; Lookup.path is None when
    nothing usable is there. Raises CapsuleError only if tree is not a directory."""
    root = _tree_root(tree)
    trail = Lookup()
    for cand in _candidates(root, soname, trail, arch):
        resolved = resolve_in_tree(root, cand, trail)
        if resolved is None or not _is_regular(resolved):
            continue
        if _loadable(resolved, arch):
            trail.path = resolved
            break
        trail.rejected.append(resolved)
    trail.examined = [p for p in trail.examined if os.path.lexists(p)]
    return trail


def not_found(soname: str, tree: str | Path, arch: Arch = arches.X86_64) -> CapsuleError:
    """The error for a soname the lookup did not find; it names the
    architecture unless it is the default one (whose sentence is unchanged)."""
    where = "" if arch is arches.X86_64 else f" for {arch.name}"
    return CapsuleError(f"library {soname} not found under {tree}{where} "
                        "(looked in etc/ld.so.cache and the standard library directories)")


def find_library_with_trail(soname: str, tree: str | Path,
                            arch: Arch = arches.X86_64) -> tuple[Path, list[Path]]:
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
    result = lookup_library(soname, tree, arch)
    if result.path is None:
        raise not_found(soname, tree, arch)
    return result.path, result.examined


def find_library(soname: str, tree: str | Path, arch: Arch = arches.X86_64) -> Path:
    """Path of arch's library `soname` (x86_64 ELF64 by default) inside `tree`.

    A soname containing '/' is a path: an absolute one is taken inside the
    tree, a relative one as given (relative to the working directory), of
    whatever class: the caller checks it."""
    return find_library_with_trail(soname, tree, arch)[0]


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
    # An explicit path is read whatever its class; the renderer rejects another arch's.
    if not path.exists():
        raise CapsuleError(f"library {path} does not exist")
    return path
