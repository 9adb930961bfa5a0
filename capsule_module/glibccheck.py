"""`capsule-shim check`: would these libraries load in a capsule on this
machine's glibc?

A capsule runs on the program's one glibc, so every glibc version a library
of the prefix (or one of its dependencies there) needs must be defined by
the glibc of the process. This reads the libraries' DT_NEEDED and version
needs (pyelftools) the way libcapsule resolves them, and compares with the
version definitions of this machine's glibc libraries, reporting what
libcapsule would report at start-up, without running a program.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from .errors import CapsuleError
from .locate import find_library

GLIBC_FAMILY = {
    "libc.so.6", "libdl.so.2", "libpthread.so.0", "libm.so.6", "librt.so.1", "libresolv.so.2",
    "libutil.so.1", "libanl.so.1", "libnsl.so.1", "libmvec.so.1", "libBrokenLocale.so.1",
    "libc_malloc_debug.so.0", "libthread_db.so.1",
}


def is_glibc(soname: str) -> bool:
    return soname in GLIBC_FAMILY or soname.startswith(("ld-linux", "libnss_"))


@dataclass
class Needs:
    needed: list[str]                   # DT_NEEDED
    versions: list[tuple[str, str]]     # (file, version) from DT_VERNEED


def _read_needs(path: Path) -> Needs:
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            needed: list[str] = []
            versions: list[tuple[str, str]] = []
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    needed = [t.needed for t in section.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
                elif isinstance(section, GNUVerNeedSection):
                    for verneed, auxes in section.iter_versions():
                        versions += [(verneed.name, aux.name) for aux in auxes]
            return Needs(needed, versions)
    except (OSError, ELFError, ValueError, KeyError) as exc:
        raise CapsuleError(f"{path}: cannot read its dynamic section ({exc})") from None


def _defined_versions(path: Path) -> set[str]:
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            names: set[str] = set()
            for section in elf.iter_sections():
                if isinstance(section, GNUVerDefSection):
                    for _, auxes in section.iter_versions():
                        names.update(aux.name for aux in auxes)
            return names
    except (OSError, ELFError, ValueError, KeyError) as exc:
        raise CapsuleError(f"{path}: cannot read its version definitions ({exc})") from None


def _closure(sonames: list[str], prefix: str) -> list[tuple[Path, Needs]]:
    """Each library and its dependencies under prefix, glibc aside."""
    seen: dict[str, Path] = {}
    order: list[tuple[Path, Needs]] = []
    todo = list(sonames)
    while todo:
        soname = todo.pop(0)
        if soname in seen or is_glibc(soname):
            continue
        path = find_library(soname, prefix)
        seen[soname] = path
        needs = _read_needs(path)
        order.append((path, needs))
        todo += needs.needed
    return order


def glibc_version() -> str:
    """This machine's glibc version, as the process running this reports it."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "glibc ?"
    except (ValueError, OSError):
        return "glibc ?"


def missing(sonames: list[str], prefix: str, system: str = "/") -> list[str]:
    """One entry per library: '<path> needs V (lib), V2 (lib)' for the glibc
    versions it needs that system's glibc lacks."""
    defined: dict[str, set[str]] = {}
    problems = []
    for path, needs in _closure(sonames, prefix):
        lacking = []
        for file, version in needs.versions:
            if not is_glibc(file) or file.startswith("ld-linux"):
                continue
            if file not in defined:
                defined[file] = _defined_versions(find_library(file, system))
            if version not in defined[file]:
                lacking.append(f"{version} ({file})")
        if lacking:
            problems.append(f"{path} needs {', '.join(lacking)}")
    return problems


def report(sonames: list[str], prefix: str) -> tuple[int, str]:
    """(exit status, the line to print) for `capsule-shim check`."""
    problems = missing(sonames, prefix)
    version = glibc_version().removeprefix("glibc ")
    if not problems:
        return 0, (f"{', '.join(sonames)} and their dependencies under {prefix} need nothing "
                   f"newer than this machine's glibc {version}")
    return 1, (f"the prefix's libraries need a newer glibc than this machine has "
               f"(glibc {version}): {'; '.join(problems)}; run the program with a glibc at "
               "least as new as the prefix's, as container runtimes do when the host's is "
               "newer")
