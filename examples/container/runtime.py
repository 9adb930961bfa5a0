#!/usr/bin/env python3
"""Make a container runtime from unpacked Debian packages.

    runtime.py ROOT [--debs DIR]

The runtime holds what the programs of the container example need to run
(glxinfo, eglinfo, vulkaninfo, Debian's libSDL2, glibc, zlib, expat, the X
client libraries ...): the Debian packages that ship those files on this
machine, fetched with `apt-get download` (the system's own sources) and
unpacked with `dpkg-deb -x`, nothing installed. It holds no Mesa, glvnd or
Vulkan loader: the capsule shims installed into its libdir stand for them and
load the host's from /run/host. Its zlib and expat are incompatible with the
host's Mesa, as an older or leaner runtime's are: each is the Debian library
with one function Mesa needs made unfindable (its dynamic symbol renamed),
`uncompress` (which LLVM, under Mesa's DRI driver, needs) and `XML_ParserCreate`.

Needs python3 with pyelftools (through graphics_trees.py), dpkg and apt-get.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "graphics"))
import graphics_trees as trees

# The sonames the shims stand for: never in the runtime.
SHIMMED = ("libGL.so.1", "libGLX.so.0", "libEGL.so.1", "libGLESv2.so.2", "libGLESv1_CM.so.1",
           "libOpenGL.so.0", "libvulkan.so.1", "libgbm.so.1")
# Debian's glvnd, Mesa and Vulkan-loader packages: a runtime made with
# capsules ships none of them.
STACK_PACKAGES = {"libglvnd0", "libgl1", "libglx0", "libegl1", "libgles1", "libgles2",
                  "libopengl0", "libglx-mesa0", "libegl-mesa0", "libgbm1", "libglapi-mesa",
                  "libgl1-mesa-dri", "mesa-vulkan-drivers", "libvulkan1", "libosmesa6",
                  "libxatracker2"}
PROGRAMS = ("/usr/bin/glxinfo", "/usr/bin/eglinfo", "/usr/bin/vulkaninfo")
# Libraries the example's own programs link (egl_png: zlib; sdl_gl: SDL2),
# and expat, which the runtime has as any runtime does.
LIBRARIES = ("libSDL2-2.0.so.0", "libz.so.1", "libexpat.so.1")
# Functions Mesa's stack needs and the runtime's own programs and libraries
# never call, not even inside the library itself (its own calls bind by name too).
BROKEN = {"libz.so.1": "uncompress", "libexpat.so.1": "XML_ParserCreate"}


class RuntimeError_(Exception):
    """The runtime cannot be made; str() names the input."""


def runpath(path: Path) -> list[Path]:
    """DT_RUNPATH/DT_RPATH directories of an ELF file, $ORIGIN expanded."""
    with open(path, "rb") as f:
        dynamic = ELFFile(f).get_section_by_name(".dynamic")
        tags = [] if dynamic is None else [
            t.runpath if t.entry.d_tag == "DT_RUNPATH" else t.rpath
            for t in dynamic.iter_tags() if t.entry.d_tag in ("DT_RUNPATH", "DT_RPATH")]
    origin = str(path.parent)
    return [Path(d.replace("$ORIGIN", origin)) for tag in tags for d in tag.split(":") if d]


def find(soname: str, needer: Path) -> Path:
    for d in runpath(needer):
        if (d / soname).exists():
            return d / soname
    return trees.find_system(soname)


def closure(starts: Iterable[Path]) -> list[Path]:
    """starts and what they need, recursively, up to glibc and the shimmed sonames."""
    seen: dict[Path, None] = {}
    todo = list(starts)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        todo.extend(find(s, path) for s in trees.needed(path)
                    if not trees.is_glibc(s) and s not in SHIMMED)
    return list(seen)


def owning_package(path: Path) -> str:
    """The Debian package that ships path (merged /usr: either spelling)."""
    real = path.resolve()
    candidates = [real, Path("/usr") / real.relative_to("/")] if not str(real).startswith("/usr/") \
        else [real, Path("/") / real.relative_to("/usr")]
    for candidate in candidates:
        proc = subprocess.run(["dpkg-query", "-S", str(candidate)], capture_output=True,
                              text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.split(":", 1)[0].strip()
    raise RuntimeError_(f"{path}: no Debian package ships it")


def packages() -> list[str]:
    files = closure([Path(p) for p in PROGRAMS] + [trees.find_system(s) for s in LIBRARIES])
    names = {owning_package(f) for f in files} | {"libc6"}
    stack = sorted(names & STACK_PACKAGES)
    if stack:
        raise RuntimeError_(f"the runtime would contain the host's graphics stack: {stack}")
    return sorted(names)


def download(names: list[str], debs: Path) -> list[Path]:
    debs.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not list(debs.glob(f"{n}_*.deb"))]
    if missing:
        proc = subprocess.run(["apt-get", "download", "-q", *missing], cwd=debs,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError_(f"apt-get download failed: {proc.stderr.strip()[-500:]}")
    found = [next(iter(sorted(debs.glob(f"{n}_*.deb"))), None) for n in names]
    absent = [n for n, f in zip(names, found, strict=True) if f is None]
    if absent:
        raise RuntimeError_(f"apt-get download gave no package file for {absent}")
    return [f for f in found if f is not None]


def unpack(debs: list[Path], root: Path) -> None:
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def hide_symbol(lib: Path, name: str) -> None:
    """Rename one dynamic symbol in place (same length, last letter 'X'): the
    GNU hash still leads to its entry, whose name no longer matches."""
    data = bytearray(lib.read_bytes())
    needle = b"\0" + name.encode() + b"\0"
    at = data.find(needle)
    if at < 0 and data.find(needle[:-2] + b"X\0") >= 0:
        return   # hidden already
    if at < 0 or data.find(needle, at + 1) >= 0:
        raise RuntimeError_(f"{lib}: {name} is not exactly once in its string table")
    data[at + len(name)] = ord("X")
    tmp = lib.with_name(lib.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, lib)


def break_libraries(root: Path) -> None:
    for soname, symbol in BROKEN.items():
        links = [d / soname for d in (root / "lib/x86_64-linux-gnu", root / trees.MULTIARCH)
                 if (d / soname).exists()]
        if not links:
            raise RuntimeError_(f"{root}: the runtime has no {soname}")
        hide_symbol(links[0].resolve(), symbol)


def make_runtime(root: Path, debs: Path) -> Path:
    unpack(download(packages(), debs), root)
    break_libraries(root)
    for program in map(Path, PROGRAMS):   # mesa-utils' names are links to -bin's files
        inside = root / program.relative_to("/")
        if program.is_symlink() and not inside.is_symlink():
            inside.symlink_to(os.readlink(program))
    for sub in ("run/host", "tmp", "proc", "dev", "out"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    trees.write_ldcache(root)
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="directory to unpack the runtime into")
    p.add_argument("--debs", type=Path, help="where to keep the .deb files (default ROOT.debs)")
    args = p.parse_args(argv)
    try:
        make_runtime(args.root, args.debs or args.root.with_name(args.root.name + ".debs"))
    except (RuntimeError_, trees.TreeError) as exc:
        print(f"runtime.py: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"runtime.py: {exc}", file=sys.stderr)
        return 1
    print(f"runtime.py: runtime in {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
