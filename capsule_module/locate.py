"""Find a library by soname under a tree (a "prefix"), the way the runtime does:
TREE/etc/ld.so.cache first, then the standard directories. Paths from the
cache are re-rooted under the tree, symlinks are followed by hand and never
leave it, and candidates of the wrong ELF class or machine are skipped.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import ldcache
from .elfreader import read_elf_identity
from .errors import CapsuleError

STANDARD_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64",
                 "lib", "usr/lib")
EM_X86_64 = 62
MAX_SYMLINKS = 40


def resolve_in_tree(root: Path, path: str) -> Path | None:
    """Resolve `path` (absolute inside the tree) with every symlink confined to
    root: absolute targets are re-rooted, '..' never goes above root. None if
    a component is missing or the link limit is hit."""
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
        try:
            st = os.lstat(here)
        except OSError:
            return None
        if not stat.S_ISLNK(st.st_mode):
            parts.append(comp)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            return None
        target = os.readlink(here)
        if target.startswith("/"):
            parts = []
        pending[:0] = [p for p in target.split("/") if p not in ("", ".")]
    return root.joinpath(*parts)


def _usable(candidate: Path | None) -> bool:
    if candidate is None:
        return False
    try:
        if not stat.S_ISREG(os.stat(candidate).st_mode):
            return False
    except OSError:
        return False
    return read_elf_identity(candidate) == (64, EM_X86_64)


def _candidates(root: Path, soname: str) -> list[str]:
    cache = resolve_in_tree(root, "/etc/ld.so.cache")
    found: list[str] = []
    if cache is not None and cache.is_file():
        found += ldcache.lookup(ldcache.read_cache(cache), soname)
    return found + [f"/{d}/{soname}" for d in STANDARD_DIRS]


def _tree_root(tree: str | Path) -> Path:
    root = Path(os.path.realpath(tree))
    if not root.is_dir():
        raise CapsuleError(f"library search tree {tree} is not a directory")
    return root


def find_library(soname: str, tree: str | Path) -> Path:
    """Path of the x86_64 ELF64 library `soname` inside `tree`.

    A soname containing '/' is a path: an absolute one is taken inside the
    tree, a relative one as given (relative to the working directory)."""
    if not soname:
        raise CapsuleError("empty library name")
    if "/" in soname and not soname.startswith("/"):
        return _check_path(Path(soname))
    root = _tree_root(tree)
    if soname.startswith("/"):
        found = resolve_in_tree(root, soname)
        if found is None or not found.exists():
            raise CapsuleError(f"library {soname} not found under {tree}")
        return _check_path(found)
    for cand in _candidates(root, soname):
        resolved = resolve_in_tree(root, cand)
        if _usable(resolved):
            assert resolved is not None
            return resolved
    raise CapsuleError(f"library {soname} not found under {tree} "
                       "(looked in etc/ld.so.cache and the standard library directories)")


def _check_path(path: Path) -> Path:
    # An explicit path is read whatever its class; the renderer rejects non-x86_64.
    if not path.exists():
        raise CapsuleError(f"library {path} does not exist")
    return path
