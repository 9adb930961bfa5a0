#!/usr/bin/env python3
"""Make the two library trees of the graphics example from this machine.

host TREE     a "host" graphics stack: glvnd, Mesa (GLX and EGL vendor
              libraries, the DRI drivers, libgbm, libglapi), the Vulkan loader,
              its ICDs and layers, and everything they need (LLVM, libdrm,
              libstdc++, expat, the X client libraries ...), as hard links,
              with the loaders' data files (glvnd vendor JSON, Vulkan
              manifests, drirc) and the tree's own ld.so.cache.
runtime DIR   a program "runtime" directory holding an incompatible
              libexpat.so.1: every function the real one has except
              XML_ParserCreate, which Mesa calls and Python does not, so a
              Python program still starts on it while Mesa cannot load.

--arch i386 (default x86_64, this machine's stack) makes them for 32-bit
programs instead, --arch aarch64 for aarch64 programs (run under
qemu-aarch64). The host tree is Debian's packages of that stack for the
architecture (PACKAGES and what they depend on, glibc aside: arm64 Mesa
brings its libLLVM-15 for llvmpipe), unpacked by scripts/arch_tree.py
without installing anything (kept in build-arch/ and hard-linked into
TREE), with their -dev files, which the example's programs are built
against (`--machine-file PATH` writes the Meson machine file for that,
given after cross/<triplet>.ini; `fetch --arch ARCH` only fetches and
unpacks the packages). The runtime's libexpat.so.1 is built by the
architecture's compiler (its cross file's: gcc -m32, clang for aarch64)
from that libexpat's function list, and the runtime also holds the
program's own libraries that are not graphics (RUNTIME_OWN: libX11, libz
and what they need, from the host tree), which this machine does not have
for those architectures.

Only the standard library and pyelftools are needed (and, for the other
architectures, apt-get and dpkg-deb).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

MULTIARCH = "usr/lib/x86_64-linux-gnu"
SYSTEM_DIRS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/lib/x86_64-linux-gnu"))
# The loaders' data, which libcapsule reads from the host tree inside the
# capsule: glvnd's EGL vendor list, the Vulkan ICD and layer manifests,
# Mesa's driver configuration, libdrm's AMD device names.
DATA_DIRS = (
    "usr/share/glvnd/egl_vendor.d",
    "usr/share/vulkan/icd.d",
    "usr/share/vulkan/implicit_layer.d",
    "usr/share/vulkan/explicit_layer.d",
    "usr/share/drirc.d",
    "usr/share/libdrm",
)
# What programs link or dlopen (the shimmed sonames), and what the loaders
# dlopen inside the capsule (glvnd vendor libraries; the DRI drivers, Vulkan
# ICDs and layers are found through their directories and manifests).
ROOTS = (
    "libGL.so.1", "libGLX.so.0", "libEGL.so.1", "libGLESv2.so.2", "libGLESv1_CM.so.1",
    "libOpenGL.so.0", "libvulkan.so.1", "libGLdispatch.so.0",
    "libGLX_mesa.so.0", "libGLX_indirect.so.0", "libEGL_mesa.so.0", "libgbm.so.1", "libglapi.so.0",
)
GLIBC = ("libc.so.", "libm.so.", "libdl.so.", "libpthread.so.", "librt.so.", "libresolv.so.",
         "libutil.so.", "libanl.so.", "ld-linux")
FAKE_MISSING = "XML_ParserCreate"
REPO = Path(__file__).resolve().parents[2]
# Debian's packages (i386, arm64) of the stack the other architectures'
# programs use (scripts/arch_tree.py adds what they depend on): glvnd, Mesa's
# GLX and EGL vendor libraries, DRI drivers (llvmpipe: libLLVM-15), libgbm
# and libglapi, the Vulkan loader (the example shims it), and the -dev
# packages the programs are built against.
PACKAGES = (
    "libglvnd0", "libgl1", "libglx0", "libegl1", "libgles1", "libgles2", "libopengl0",
    "libglx-mesa0", "libegl-mesa0", "libgl1-mesa-dri", "libglapi-mesa", "libgbm1", "libvulkan1",
    "libgl-dev", "libegl-dev", "libgles-dev", "libx11-dev", "zlib1g-dev",
)
# The other architectures' programs' own libraries besides the graphics
# stack (their runtime brings them): glx_frames links libX11, egl_png zlib.
RUNTIME_OWN = ("libX11.so.6", "libz.so.1")


class Target(NamedTuple):
    """What differs between the architectures the example is made for (a
    NamedTuple: this file is also loaded by path, outside sys.modules)."""
    arch: str
    multiarch: str                # the tree's library directory

    @property
    def lib_dirs(self) -> tuple[str, ...]:
        return (self.multiarch, self.multiarch.removeprefix("usr/"))


TARGETS = {
    "x86_64": Target("x86_64", MULTIARCH),
    "i386": Target("i386", "usr/lib/i386-linux-gnu"),
    "aarch64": Target("aarch64", "usr/lib/aarch64-linux-gnu"),
}


class TreeError(Exception):
    """A tree cannot be made; str() names the input."""


def needed(path: Path) -> list[str]:
    """DT_NEEDED of an ELF file."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    return [t.needed for t in section.iter_tags("DT_NEEDED")]
    except (OSError, ELFError) as exc:
        raise TreeError(f"{path}: cannot read its dynamic section: {exc}") from exc
    return []


def find_system(soname: str) -> Path:
    for d in SYSTEM_DIRS:
        if (d / soname).exists():
            return d / soname
    raise TreeError(f"{soname}: not installed on this machine")


def finder(tree: Path, target: Target) -> Callable[[str], Path]:
    """find_system() for a tree's own library directories."""
    def find(soname: str) -> Path:
        for d in target.lib_dirs:
            if (tree / d / soname).exists():
                return tree / d / soname
        raise TreeError(f"{soname}: not in {tree}")
    return find


def is_glibc(soname: str) -> bool:
    return soname.startswith(GLIBC)


def link_file(src: Path, dest: Path) -> None:
    """Hard link (copy across file systems) src's real file to dest."""
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src.resolve(), dest)
    except OSError:
        shutil.copy2(src.resolve(), dest)


def add_library(tree: Path, lib: Path) -> None:
    """The library's real file and every symlink on the way to it, at the
    same places in the tree."""
    path = lib
    for _ in range(16):
        dest = tree / path.relative_to("/")
        if not path.is_symlink():
            link_file(path, dest)
            return
        target = os.readlink(path)
        if not dest.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(target)
        path = Path(os.path.normpath(path.parent / target))
    raise TreeError(f"{lib}: too many levels of symbolic links")


def manifest_libraries(tree: Path) -> Iterator[Path]:
    """library_path of each Vulkan manifest copied into the tree, found the
    way the loader finds it (absolute, or a bare name on the library path)."""
    for sub in ("icd.d", "implicit_layer.d", "explicit_layer.d"):
        for manifest in sorted((tree / "usr/share/vulkan" / sub).glob("*.json")):
            try:
                data = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise TreeError(f"{manifest}: not a readable JSON manifest: {exc}") from exc
            entries = [data.get("ICD") or data.get("layer") or {}, *data.get("layers", [])]
            for entry in entries:
                name = entry.get("library_path")
                if name:
                    yield Path(name) if name.startswith("/") else find_system(name)


def copy_data(tree: Path) -> None:
    for rel in DATA_DIRS:
        src = Path("/") / rel
        if src.is_dir():
            for f in sorted(src.iterdir()):
                link_file(f, tree / rel / f.name)


def closure(starts: Iterable[Path], find: Callable[[str], Path] = find_system) -> list[Path]:
    """starts and, recursively, what they need (glibc excluded)."""
    seen: dict[Path, None] = {}
    todo = list(starts)
    while todo:
        lib = todo.pop()
        if lib in seen:
            continue
        seen[lib] = None
        todo.extend(find(s) for s in needed(lib) if not is_glibc(s))
    return list(seen)


def write_ldcache(tree: Path) -> None:
    etc = tree / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "ld.so.conf").write_text(f"/{MULTIARCH}\n/lib/x86_64-linux-gnu\n")
    proc = subprocess.run(["ldconfig", "-r", str(tree)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TreeError(f"{tree}: ldconfig -r failed: {proc.stderr.strip()}")


def _arch_tree() -> ModuleType:
    """scripts/arch_tree.py, loaded once."""
    module = sys.modules.get("arch_tree")
    if module is None:
        spec = importlib.util.spec_from_file_location("arch_tree", REPO / "scripts/arch_tree.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["arch_tree"] = module
        spec.loader.exec_module(module)
    return module


def target(arch: str) -> Target:
    try:
        return TARGETS[arch]
    except KeyError:
        raise TreeError(f"architecture {arch!r}: the example knows {', '.join(TARGETS)}") \
            from None


def make_host(tree: Path, arch: str = "x86_64") -> Path:
    """The host graphics tree (idempotent: existing files are kept)."""
    if target(arch).arch != "x86_64":
        return _unpacked_host(tree, arch)
    copy_data(tree)
    starts = [find_system(s) for s in ROOTS]
    dri = Path("/") / MULTIARCH / "dri"
    starts += sorted(dri.glob("*.so"))
    starts += list(manifest_libraries(tree))
    for lib in closure(starts):
        add_library(tree, lib)
    write_ldcache(tree)
    return tree


def _unpacked_host(tree: Path, arch: str) -> Path:
    """The unpacked packages of PACKAGES' closure, hard-linked into tree."""
    unpacked = _unpacked(arch)
    if not tree.exists():
        shutil.copytree(unpacked, tree, symlinks=True, copy_function=_link_or_copy)
    return tree


def _unpacked(arch: str) -> Path:
    """The unpacked packages of PACKAGES' closure (scripts/arch_tree.py)."""
    module = _arch_tree()
    try:
        return Path(module.ensure_tree(arch, PACKAGES, depends=True, name="graphics"))
    except module.TreeError as exc:
        raise TreeError(f"no {arch} host tree: {exc}") from exc


def _link_or_copy(src: str, dest: str) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_machine_file(tree: Path, path: Path, arch: str) -> Path:
    """The Meson machine file that builds the example's programs against
    the host tree's -dev files (after the architecture's cross file)."""
    return Path(_arch_tree().write_machine_file(arch, tree, path))


def exported_functions(lib: Path) -> list[str]:
    with open(lib, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        if dynsym is None:
            raise TreeError(f"{lib}: no .dynsym")
        return sorted({
            s.name for s in dynsym.iter_symbols()
            if s["st_shndx"] != "SHN_UNDEF" and s["st_info"]["type"] == "STT_FUNC"
            and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
        })


def fake_expat_source(functions: Iterable[str]) -> str:
    lines = [
        "/* An incompatible libexpat.so.1: same names, no XML_ParserCreate. */",
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "static void fake(const char *name)",
        "{",
        '    fprintf(stderr, "fake libexpat: %s called\\n", name);',
        "    abort();",
        "}",
    ]
    for name in functions:
        if name != FAKE_MISSING:
            lines.append(f'void {name}(void) {{ fake("{name}"); }}')
    return "\n".join(lines) + "\n"


def make_runtime(directory: Path, arch: str = "x86_64", host: Path | None = None) -> Path:
    """The runtime directory with the incompatible libexpat.so.1 (for
    another architecture than this machine's, made from the host tree's
    libexpat, and with the program's own libraries from there)."""
    t = target(arch)
    find = find_system
    if t.arch != "x86_64":
        if host is None:
            raise TreeError(f"a runtime for {arch} is made from its host tree: give it")
        find = finder(host, t)
    directory.mkdir(parents=True, exist_ok=True)
    source = fake_expat_source(exported_functions(find("libexpat.so.1")))
    # The architecture's compiler: its cross file's (gcc for this machine's).
    module = _arch_tree()
    try:
        cc = list(module.toolchain(t.arch).cc)
    except module.TreeError as exc:
        raise TreeError(f"no compiler for {arch}: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "fakeexpat.c"
        c_file.write_text(source)
        out = directory / "libexpat.so.1"
        proc = subprocess.run(
            [*cc, "-shared", "-fPIC", "-O1", "-Wl,-soname,libexpat.so.1", "-o",
             str(out), str(c_file)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise TreeError(f"{out}: {cc[0]} failed: {proc.stderr.strip()}")
    if t.arch != "x86_64":
        for lib in closure([find(s) for s in RUNTIME_OWN], find):
            if lib.name != "libexpat.so.1":
                link_file(lib, directory / lib.name)
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("host", "runtime", "fetch"),
                        help="fetch: only fetch and unpack the packages of --arch's host tree")
    parser.add_argument("dest", type=Path, nargs="?")
    parser.add_argument("--arch", choices=sorted(TARGETS), default="x86_64")
    parser.add_argument("--host", type=Path,
                        help="runtime: the host tree made for --arch (other than x86_64)")
    parser.add_argument("--machine-file", type=Path, metavar="PATH",
                        help="host: also write the Meson machine file that builds the "
                             "programs against the tree (with the architecture's cross file)")
    args = parser.parse_args(argv)
    if (args.dest is None) != (args.kind == "fetch"):
        parser.error("host and runtime take a destination, fetch none")
    try:
        if args.kind == "fetch":
            if args.arch != "x86_64":
                _unpacked(args.arch)
        elif args.kind == "host":
            tree = make_host(args.dest.absolute(), args.arch)
            if args.machine_file:
                write_machine_file(tree, args.machine_file.absolute(), args.arch)
        else:
            make_runtime(args.dest.absolute(), args.arch,
                         args.host.absolute() if args.host else None)
    except TreeError as exc:
        print(f"graphics_trees: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
