"""`capsule-shim ldd`: which objects live in which namespace, from which tree.

libcapsule prints its namespace map under CAPSULE_DEBUG=ns after each shim's
initialisation, after each dlopen inside a capsule, and at exit:

    capsule[ns]: map <when>: namespace <lmid> prefix <prefix>
    capsule[ns]: map <when>: <lmid> <path>
    capsule[ns]: map <when>: <lmid> /proc/<pid>/fd/<n> (shared: <soname>)
    capsule[ns]: map <when>: <lmid> /proc/<pid>/fd/<n> (glibc: <soname>)

This module runs a program with that topic on, keeps the last complete map
(the one at exit, else the last one printed) plus the objects earlier maps
had and it lacks (a driver unloaded before exit), and says for every object
whether it is a shim, a placeholder of the process's glibc, a file from the
capsule's prefix, or a file from outside it (what makes a game fail when a
driver's dependency leaks in from the runtime; a real glibc library inside a
capsule is one too: the capsule runs on the program's one glibc).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from .errors import CapsuleError

_HEADER = re.compile(r"^capsule\[ns\]: map (?P<when>.+?): namespace (?P<ns>-?\d+) prefix (?P<prefix>.*)$")
_OBJECT = re.compile(r"^capsule\[ns\]: map (?P<when>.+?): (?P<ns>-?\d+) (?P<path>.+)$")
_GLIBC = {
    "libc.so.6", "libdl.so.2", "libpthread.so.0", "libm.so.6", "librt.so.1", "libresolv.so.2",
    "libutil.so.1", "libanl.so.1", "libnsl.so.1", "libmvec.so.1", "libBrokenLocale.so.1",
    "libc_malloc_debug.so.0", "libthread_db.so.1",
}
# In-memory objects are named /proc/<pid>/fd/<n> (before 2026-12: /proc/self/fd/<n>).
_IN_MEMORY = r"/proc/(?:self|\d+)/fd/\d+"
_SHARED = re.compile(rf"^{_IN_MEMORY} \(shared: (?P<soname>[^)]+)\)$")
_GLIBC_PLACEHOLDER = re.compile(rf"^{_IN_MEMORY} \(glibc: (?P<soname>[^)]+)\)$")
PROGRAM_NS = 0


@dataclass
class Namespace:
    lmid: int
    prefix: str | None              # None for the program's own namespace
    objects: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)  # in an earlier map only


@dataclass
class NamespaceMap:
    when: str
    namespaces: dict[int, Namespace]
    shims: set[str]                 # sonames of the shims that were initialised


def parse(text: str) -> NamespaceMap | None:
    """The last complete map in libcapsule's stderr text, or None."""
    maps: dict[str, dict[int, Namespace]] = {}
    shims: set[str] = set()
    for line in text.splitlines():
        if m := _HEADER.match(line):
            when, ns = m["when"], int(m["ns"])
            prefix = None if ns == PROGRAM_NS else m["prefix"]
            maps.setdefault(when, {})[ns] = Namespace(ns, prefix)
            if when.endswith(" ready"):
                shims.add(when.removesuffix(" ready"))
        elif (m := _OBJECT.match(line)) and m["when"] in maps:
            space = maps[m["when"]].get(int(m["ns"]))
            if space is not None:
                space.objects.append(m["path"])
    if not maps:
        return None
    when = "at exit" if "at exit" in maps else list(maps)[-1]
    _note_unloaded(maps[when], [m for w, m in maps.items() if w != when])
    return NamespaceMap(when, maps[when], shims)


def _note_unloaded(final: dict[int, Namespace], earlier: list[dict[int, Namespace]]) -> None:
    """Adds to final's namespaces the objects only earlier maps listed."""
    for spaces in earlier:
        for lmid, space in spaces.items():
            into = final.get(lmid)
            if into is None or into.prefix != space.prefix:
                continue
            for path in space.objects:
                if path not in into.objects and path not in into.unloaded:
                    into.unloaded.append(path)


def is_glibc(path: str) -> bool:
    base = os.path.basename(path)
    return base in _GLIBC or base.startswith(("ld-linux", "libnss_"))


def classify(path: str, space: Namespace, shims: set[str]) -> str:
    """shim, glibc, second-glibc, bridge, shared, prefix, program, vdso or outside."""
    if space.prefix is None:
        if os.path.basename(path) in shims or os.path.basename(os.path.realpath(path)) in shims:
            return "shim"
        return "vdso" if path.startswith("linux-vdso") else "program"
    if _GLIBC_PLACEHOLDER.match(path):
        return "glibc"
    if os.path.basename(path).startswith("ld-linux"):
        return "ldso"
    if is_glibc(path):
        return "second-glibc"
    if _SHARED.match(path):
        return "shared"
    if re.match(_IN_MEMORY, path) or os.path.basename(path).startswith("capsule-bridge"):
        return "bridge"
    if path.startswith(space.prefix.rstrip("/") + "/"):
        return "prefix"
    return "outside"


_LABELS = {
    "shim": "capsule shim",
    "program": "",
    "vdso": "kernel vDSO",
    "glibc": "placeholder made in memory: the capsule uses the program's glibc",
    "ldso": "the process's dynamic linker (one for every namespace)",
    "second-glibc": "A SECOND COPY OF GLIBC: the capsule should use the program's",
    "bridge": "libcapsule's bridge object, made in memory",
    "shared": "placeholder made in memory: the capsule uses the program's copy",
    "prefix": "from the prefix",
    "outside": "OUTSIDE THE PREFIX",
}


def outside(nsmap: NamespaceMap) -> list[tuple[int, str]]:
    """(namespace, path) of every capsule object not from its prefix (glibc's
    placeholders and ld.so aside), a real glibc library included."""
    return [(space.lmid, path) for space in nsmap.namespaces.values()
            for path in space.objects + space.unloaded
            if classify(path, space, nsmap.shims) in ("outside", "second-glibc")]


def format_map(nsmap: NamespaceMap) -> str:
    lines = [f"namespace map {nsmap.when}:"]
    for space in sorted(nsmap.namespaces.values(), key=lambda s: s.lmid):
        title = "the program's" if space.prefix is None else f"capsule, prefix {space.prefix}"
        lines.append(f"namespace {space.lmid} ({title}):")
        for path in space.objects:
            label = _LABELS[classify(path, space, nsmap.shims)]
            lines.append(f"    {path}" + (f"    [{label}]" if label else ""))
        for path in space.unloaded:
            label = _LABELS[classify(path, space, nsmap.shims)]
            lines.append(f"    {path}    [{label + ', ' if label else ''}unloaded before exit]")
    leaks = outside(nsmap)
    if leaks:
        lines.append(f"{len(leaks)} object(s) in a capsule come from outside its prefix: "
                     "a dependency missing from the prefix, an `exclude`, a library "
                     "the capsule's code dlopen()ed by a path outside the prefix, or a "
                     "second copy of glibc")
    return "\n".join(lines) + "\n"


def run_with_map(argv: list[str], timeout: float) -> tuple[NamespaceMap | None, int | None, str]:
    """Run argv with CAPSULE_DEBUG=ns added; (map, exit status or None on
    timeout, the program's own stderr without capsule lines)."""
    env = dict(os.environ)
    env["CAPSULE_DEBUG"] = ",".join(filter(None, [env.get("CAPSULE_DEBUG", ""), "ns"]))
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, errors="replace")
    except OSError as exc:
        raise CapsuleError(f"program {argv[0]} cannot be run ({exc.strerror})") from None
    try:
        _, err = proc.communicate(timeout=timeout)
        status: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate()
        status = None
    own = "\n".join(line for line in err.splitlines() if not line.startswith("capsule["))
    return parse(err), status, own
