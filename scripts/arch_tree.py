#!/usr/bin/env python3
"""A "host" tree of another architecture, unpacked from Debian's packages.

    python3 scripts/arch_tree.py i386 zlib1g libexpat1

downloads those packages for the architecture (capsule's name, see
capsule_module/arch.py: i386 is dpkg's i386) from this machine's own Debian
release with scripts/glibc_tree.py's *private* apt state: nothing is added
to the system's apt or dpkg configuration (no `dpkg --add-architecture`),
nothing is installed. They are unpacked with `dpkg-deb -x` into
build-arch/<arch>/<packages>/root, whose etc/ld.so.conf lists the
architecture's multiarch directories; `ldconfig -r` writes its ld.so.cache,
as the host's own ldconfig would. A tree already there is reused
(`--refresh` fetches again). Prints the tree's root. Other Python code
imports `ensure_tree()`.

    python3 scripts/arch_tree.py i386 --depends --name graphics libegl-mesa0 ...

also takes everything those packages depend on (Depends and Pre-Depends,
recursively, the first of alternatives; never glibc's own packages, which a
host tree does not provide to a capsule: see GLIBC_PACKAGES) into
build-arch/<arch>/<name>/root. Absolute symbolic links in the packages
(a -dev package's `libz.so -> /lib/i386-linux-gnu/libz.so.1.2.13`) are made
relative, so that they resolve inside the tree also for a linker that does
not know it is one.

    python3 scripts/arch_tree.py i386 zlib1g-dev ... --machine-file build/i386-tree.ini

also writes a Meson machine file that builds against the tree, given after
the architecture's cross file (`meson setup --cross-file
cross/i386-linux-gnu.ini --cross-file build/i386-tree.ini`): pkg-config reads
the tree's .pc files with the tree as its sysroot (a -dev package's headers
and link-time libraries), and the linker finds the libraries those need in
the tree (`-rpath-link`). Other Python code imports `write_machine_file()`.

    python3 scripts/arch_tree.py aarch64 --ldconfig TREE

writes TREE's etc/ld.so.cache with the ldconfig that knows the
architecture's libraries (this machine's for i386; for aarch64, whose
libraries x86's ldconfig skips, the arm64 one under qemu-aarch64).

    python3 scripts/arch_tree.py aarch64 --runner

prints what runs the architecture's programs here: its cross file's
exe_wrapper (`qemu-aarch64 -L /usr/aarch64-linux-gnu`), nothing for i386.

    python3 scripts/arch_tree.py i386 --why-not

prints why shims and programs for the architecture cannot be built and run
on this machine (no shim runtime for it in capsule yet; its cross file's
compiler, cross/<triplet>.ini, cannot link a program; its emulator is
missing or cannot run one), or nothing when they can: the demo and the
graphics example skip their part for that architecture with this sentence.
Other Python code imports `toolchain()` (the cross file's compiler and
runner) and `why_not()`.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "build-arch"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from capsule_module import arch as arches  # noqa: E402
from capsule_module.errors import CapsuleError  # noqa: E402


def _glibc_tree() -> ModuleType:
    """scripts/glibc_tree.py, for its private apt state and mirror lookup."""
    if "glibc_tree" in sys.modules:
        return sys.modules["glibc_tree"]
    spec = importlib.util.spec_from_file_location("glibc_tree", REPO / "scripts/glibc_tree.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["glibc_tree"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gt = _glibc_tree()
TreeError = gt.TreeError
# glibc's packages and what only their development files pull in: a capsule
# uses the program's glibc, never the tree's, and the compiler brings its own
# (gcc-multilib's) headers and start files.
GLIBC_PACKAGES = frozenset({"libc6", "libc6-dev", "libc-dev-bin", "linux-libc-dev",
                            "libc6-i386", "libc6-dev-i386"})


def system_release(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's Debian release (VERSION_CODENAME: bookworm)."""
    try:
        text = os_release.read_text()
    except OSError as exc:
        raise TreeError(f"{os_release} cannot be read ({exc.strerror})") from None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise TreeError(f"{os_release} names no VERSION_CODENAME")


# What to install (Debian) when an architecture's compiler cannot link a program.
TOOLCHAIN_PACKAGES = {
    "i386": "gcc-multilib",
    "aarch64": "clang binutils-aarch64-linux-gnu libc6-dev-arm64-cross libgcc-12-dev-arm64-cross",
}


class Toolchain(NamedTuple):
    """How this machine builds and runs programs of an architecture (a
    NamedTuple: this file is also loaded by path)."""
    cc: tuple[str, ...]       # the C compiler command, linker choice included
    runner: tuple[str, ...]   # what runs its programs here (an emulator), or nothing
    cross_file: Path | None   # the Meson cross file it comes from


def cross_file(arch_name: str) -> Path | None:
    """The repository's Meson cross file for the architecture
    (cross/<triplet>.ini); None for this machine's own."""
    arch = _architecture(arch_name)
    if arch.name == arches.of_machine().name:
        return None
    return REPO / "cross" / f"{arch.triplet}.ini"


def _machine_file(path: Path) -> dict[str, dict[str, object]]:
    """A Meson machine file's sections and values (literals only, as ours are)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(), str(path))
        return {name: {k: ast.literal_eval(v) for k, v in parser[name].items()}
                for name in parser.sections()}
    except (OSError, configparser.Error, ValueError, SyntaxError) as exc:
        raise TreeError(f"{path}: not a machine file this script can read ({exc})") from None


def toolchain(arch_name: str) -> Toolchain:
    """The C compiler and the runner of the architecture's cross file (its
    `c`, `c_ld` and `exe_wrapper`): -m32 gcc for i386, clang for aarch64
    under qemu-aarch64; plain gcc for this machine's own."""
    path = cross_file(arch_name)
    if path is None:
        return Toolchain(("gcc",), (), None)
    if not path.is_file():
        raise TreeError(f"this machine has no compiler set up for {arch_name} (no {path})")
    binaries = _machine_file(path).get("binaries", {})

    def words(value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    cc = words(binaries.get("c"))
    if not cc:
        raise TreeError(f"{path} names no C compiler")
    linker = binaries.get("c_ld")
    return Toolchain(cc + ((f"-fuse-ld={linker}",) if linker else ()),
                     words(binaries.get("exe_wrapper")), path)


def why_not(arch_name: str) -> str:
    """Why shims and programs for the architecture cannot be built and run
    here, in one line; "" when they can."""
    arch = _architecture(arch_name)
    reasons = []
    try:
        arches.require_shim_runtime(arch)
    except CapsuleError as exc:
        reasons.append(str(exc))
    blocker = toolchain_blocker(arch.name)
    return "; ".join(reasons + ([blocker] if blocker else []))


def toolchain_blocker(arch_name: str) -> str:
    """Why programs for the architecture cannot be built and run here (its
    cross file's compiler cannot link one, its emulator is missing or cannot
    run one), in one line; "" when they can."""
    arch = _architecture(arch_name)
    try:
        tools = toolchain(arch.name)
    except TreeError as exc:
        return str(exc)
    if tools.runner and shutil.which(tools.runner[0]) is None:
        return (f"{tools.runner[0]} is not installed (Debian: apt-get install qemu-user): "
                f"it runs the {arch.name} programs")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.c").write_text("int main(void) { return 0; }\n")
        proc = subprocess.run([*tools.cc, "t.c", "-o", "t"], cwd=tmp, capture_output=True,
                              check=False)
        if proc.returncode != 0:
            return (f"{' '.join(tools.cc)} cannot link a program (Debian: apt-get install "
                    f"{TOOLCHAIN_PACKAGES.get(arch.name, 'gcc')})")
        if tools.runner:
            ran = subprocess.run([*tools.runner, "./t"], cwd=tmp, capture_output=True, text=True,
                                 check=False)
            if ran.returncode != 0:
                return (f"{' '.join(tools.runner)} cannot run an {arch.name} program: "
                        f"{(ran.stderr.strip() or f'exit status {ran.returncode}')[-200:]}")
    return ""


def _architecture(name: str) -> arches.Arch:
    try:
        return arches.get(name)
    except CapsuleError as exc:
        raise TreeError(str(exc)) from None


def _first_alternatives(listing: str) -> list[str]:
    """The packages an `apt-cache depends` listing depends on: the first
    of each group of alternatives, real packages only (not <virtual> ones)."""
    deps: list[str] = []
    in_group = False
    for line in listing.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind.lstrip("|") not in ("Depends", "PreDepends"):
            continue
        if not in_group and not name.startswith("<"):
            deps.append(name.split(":")[0])
        in_group = kind.startswith("|")
    return deps


def depends_closure(opts: list[str], packages: tuple[str, ...]) -> tuple[str, ...]:
    """`packages` and, recursively, what they depend on (GLIBC_PACKAGES left out)."""
    seen: set[str] = set()
    todo = [p for p in packages if p not in GLIBC_PACKAGES]
    while todo:
        batch = sorted(set(todo) - seen)
        seen.update(batch)
        listing = gt._run(["apt-cache", *opts, "depends", "--no-recommends", "--no-suggests",
                           "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                           *batch])
        todo = [d for d in _first_alternatives(listing)
                if d not in seen and d not in GLIBC_PACKAGES]
    return tuple(sorted(seen))


def relative_symlinks(root: Path) -> None:
    """Make every absolute symbolic link under root point inside root,
    relatively (root stands for / in the packages)."""
    for link in root.rglob("*"):
        if link.is_symlink():
            target = Path(link.readlink())
            if target.is_absolute():
                inside = root / target.relative_to("/")
                link.unlink()
                link.symlink_to(os.path.relpath(inside, link.parent))


def _ldconfig(arch: arches.Arch, base: Path) -> list[str]:
    """The ldconfig that knows arch's ld.so.cache flags: this machine's, or
    for an architecture it cannot run (aarch64: this ldconfig writes no entry
    for its libraries), the architecture's own (statically linked, from its
    libc-bin package) under its emulator."""
    if arch.emulator is None:
        return ["ldconfig"]
    if shutil.which(arch.emulator) is None:
        raise TreeError(f"{arch.emulator} is not installed (Debian: apt-get install qemu-user): "
                        f"it runs the {arch.name} ldconfig")
    tools = base / "ldconfig"
    binary = tools / "sbin/ldconfig"
    if not binary.is_file():
        (deb,) = gt.download(base / "apt-ldconfig", system_release(), ("libc-bin",),
                             gt.system_mirror(), arch.debian_arch)
        gt._run(["dpkg-deb", "-x", str(deb), str(tools)])
    return [arch.emulator, str(binary)]


def ensure_tree(arch_name: str, packages: tuple[str, ...], out: Path = DEFAULT_OUT,
                refresh: bool = False, depends: bool = False, name: str | None = None) -> Path:
    """The root of the unpacked tree of `packages` for the architecture
    (with `depends`, of their dependency closure too), named `name` or
    after the packages."""
    arch = _architecture(arch_name)
    if not packages:
        raise TreeError("no package given")
    base = out / arch.name / (name or "+".join(sorted(packages)))
    root, stamp = base / "root", base / "packages"
    wanted = sorted(packages) + (["--depends"] if depends else [])
    if not refresh and stamp.is_file() and stamp.read_text().split() == wanted:
        return root
    mirror = gt.system_mirror()
    if depends:
        opts = gt.update(base / "apt", system_release(), mirror, arch.debian_arch)
        packages = depends_closure(opts, packages)
    debs = gt.download(base / "apt", system_release(), tuple(packages), mirror,
                       arch.debian_arch)
    partial = base / "root.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for deb in debs:
        gt._run(["dpkg-deb", "-x", str(deb), str(partial)])
    relative_symlinks(partial)
    (partial / "etc").mkdir(exist_ok=True)
    (partial / "etc/ld.so.conf").write_text(
        f"/lib/{arch.triplet}\n/usr/lib/{arch.triplet}\n")
    gt._run([*_ldconfig(arch, base), "-r", str(partial)])
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    stamp.write_text("\n".join(wanted) + "\n")
    return root


def write_ldcache(arch_name: str, root: Path, out: Path = DEFAULT_OUT) -> None:
    """The tree's etc/ld.so.cache for its libraries of the architecture, as
    ensure_tree() writes it (etc/ld.so.conf: the multiarch directories, unless
    the tree has one already): the ldconfig of _ldconfig(), the emulated
    architecture's own kept in out/<arch>/ldconfig."""
    arch = _architecture(arch_name)
    conf = root / "etc/ld.so.conf"
    if not conf.is_file():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"/lib/{arch.triplet}\n/usr/lib/{arch.triplet}\n")
    gt._run([*_ldconfig(arch, out / arch.name), "-r", str(root)])


def write_machine_file(arch_name: str, root: Path, path: Path) -> Path:
    """A Meson machine file (layered after the architecture's cross file)
    with which pkg-config and the linker use the tree's -dev files."""
    arch = _architecture(arch_name)
    libdirs = [root / "usr/lib" / arch.triplet, root / "lib" / arch.triplet]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Building against the {arch.name} tree {root} (scripts/arch_tree.py).\n"
        "[properties]\n"
        f"pkg_config_libdir = ['{libdirs[0] / 'pkgconfig'}', '{root / 'usr/share/pkgconfig'}']\n"
        f"sys_root = '{root}'\n\n"
        "[built-in options]\n"
        f"c_link_args = ['-Wl,-rpath-link,{':'.join(map(str, libdirs))}']\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("arch", choices=sorted(arches.ARCHES))
    ap.add_argument("packages", nargs="*", metavar="PACKAGE")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="where trees are kept (default: build-arch in the checkout)")
    ap.add_argument("--refresh", action="store_true", help="fetch and unpack again")
    ap.add_argument("--depends", action="store_true",
                    help="also what the packages depend on, recursively (glibc aside)")
    ap.add_argument("--name", help="the tree's directory name (default: the packages')")
    ap.add_argument("--machine-file", type=Path, metavar="PATH",
                    help="also write a Meson machine file that builds against the tree")
    ap.add_argument("--ldconfig", type=Path, metavar="TREE",
                    help="only write TREE's etc/ld.so.cache with the architecture's ldconfig "
                         "(aarch64's under its emulator)")
    ap.add_argument("--runner", action="store_true",
                    help="only print the command that runs the architecture's programs here "
                         "(its cross file's exe_wrapper: qemu-aarch64 -L ...; nothing: run them "
                         "directly)")
    ap.add_argument("--why-not", action="store_true",
                    help="only say why the architecture's shims and programs cannot be built "
                         "and run here (nothing: they can)")
    args = ap.parse_args(argv)
    if args.why_not:
        reason = why_not(args.arch)
        if reason:
            print(reason)
        return 0
    try:
        if args.runner:
            print(" ".join(toolchain(args.arch).runner))
            return 0
        if args.ldconfig:
            write_ldcache(args.arch, args.ldconfig.absolute(), args.out.resolve())
            return 0
        root = ensure_tree(args.arch, tuple(args.packages), args.out.resolve(), args.refresh,
                           args.depends, args.name)
        if args.machine_file:
            write_machine_file(args.arch, root, args.machine_file.absolute())
        print(root)
    except TreeError as exc:
        print(f"arch_tree: {args.arch}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
