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
capsule is one too: the capsule runs on the program's one glibc). In the
program's own namespace it flags the real library of a shimmed soname,
loaded beside its shim (a dlopen of the development name libGL.so, or of a
full path, that found the system's library instead of the shim's link).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache

from .elfreader import read_library
from .errors import CapsuleError

_HEADER = re.compile(r"^capsule\[ns\]: map (?P<when>.+?): namespace (?P<ns>-?\d+) prefix (?P<prefix>.*)$")
_OBJECT = re.compile(r"^capsule\[ns\]: map (?P<when>.+?): (?P<ns>-?\d+) (?P<path>.+)$")
# A dlopen of a shim that failed with its capsule: line (libcapsule's
# preflight), traced under `ns` (or `path`): the program went on.
_FAILED_DLOPEN = re.compile(r"^capsule\[(?:ns|path)\]: preflight: the dlopen fails: (?P<line>capsule: .*)$")
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
    root: str = "/"                 # the program's file-system root, as seen from here


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


def _identity(path: str) -> tuple[str, bool] | None:
    """(DT_SONAME, links libcapsule) of a loaded file, or None if unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _identity_of(path, st.st_dev, st.st_ino, st.st_mtime_ns)


@cache
def _identity_of(path: str, dev: int, ino: int, mtime: int) -> tuple[str, bool] | None:
    try:
        lib = read_library(path)
    except (CapsuleError, OSError):
        return None
    return lib.soname, "libcapsule.so.0" in lib.needed


def _under(root: str, path: str) -> str:
    return path if root == "/" else os.path.join(root, path.lstrip("/"))


def _program_object(path: str, shims: set[str], root: str) -> str:
    """shim, bypassed (a shimmed soname's real library) or program."""
    base = os.path.basename(path)
    if not any(base.startswith(s.split(".so", 1)[0] + ".so") for s in shims):
        return "program"
    identity = _identity(_under(root, path))
    if identity is None:   # gone or unreadable: judge by the name
        named = base in shims or os.path.basename(os.path.realpath(_under(root, path))) in shims
        return "shim" if named else "program"
    soname, is_shim = identity
    if soname not in shims:
        return "program"
    return "shim" if is_shim else "bypassed"


def classify(path: str, space: Namespace, shims: set[str], root: str = "/") -> str:
    """shim, bypassed, glibc, second-glibc, bridge, shared, prefix, program,
    vdso or outside; files of the program's namespace are read under root."""
    if space.prefix is None:
        return "vdso" if path.startswith("linux-vdso") else _program_object(path, shims, root)
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
    "bypassed": "THE REAL LIBRARY, OUTSIDE THE CAPSULE, beside its shim",
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


def bypassed(nsmap: NamespaceMap) -> list[tuple[str, str]]:
    """(soname, path) of every shimmed soname's real library that was loaded
    in the program's namespace, beside the shim."""
    out = []
    for space in nsmap.namespaces.values():
        if space.prefix is None:
            for path in space.objects + space.unloaded:
                if classify(path, space, nsmap.shims, nsmap.root) == "bypassed":
                    identity = _identity(_under(nsmap.root, path))
                    out.append((identity[0] if identity else os.path.basename(path), path))
    return out


def format_map(nsmap: NamespaceMap) -> str:
    lines = [f"namespace map {nsmap.when}:"]
    for space in sorted(nsmap.namespaces.values(), key=lambda s: s.lmid):
        title = "the program's" if space.prefix is None else f"capsule, prefix {space.prefix}"
        lines.append(f"namespace {space.lmid} ({title}):")
        for path in space.objects:
            label = _LABELS[classify(path, space, nsmap.shims, nsmap.root)]
            lines.append(f"    {path}" + (f"    [{label}]" if label else ""))
        for path in space.unloaded:
            label = _LABELS[classify(path, space, nsmap.shims, nsmap.root)]
            lines.append(f"    {path}    [{label + ', ' if label else ''}unloaded before exit]")
    leaks = outside(nsmap)
    if leaks:
        lines.append(f"{len(leaks)} object(s) in a capsule come from outside its prefix: "
                     "a dependency missing from the prefix, an `exclude`, a library "
                     "the capsule's code dlopen()ed by a path outside the prefix, or a "
                     "second copy of glibc")
    for soname, path in bypassed(nsmap):
        lines.append(f"{soname} was also loaded outside the capsule, in the program's "
                     f"namespace: {path} (a dlopen of its development name or of a path "
                     "found the real library, not the shim: put the shims' directory, with "
                     "its development-name links, first on LD_LIBRARY_PATH)")
    return "\n".join(lines) + "\n"


def run_with_map(argv: list[str], timeout: float) -> tuple[NamespaceMap | None, int | None, str]:
    """Run argv with CAPSULE_DEBUG=ns added; (map, exit status or None on
    timeout, the program's own stderr without capsule trace lines, but with
    the capsule: line of each dlopen of a shim that failed)."""
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
    own = "\n".join(m["line"] if (m := _FAILED_DLOPEN.match(line)) else line
                    for line in err.splitlines()
                    if _FAILED_DLOPEN.match(line) or not line.startswith("capsule["))
    return parse(err), status, own
