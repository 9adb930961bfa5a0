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
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

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


def _architecture(name: str) -> arches.Arch:
    try:
        return arches.get(name)
    except CapsuleError as exc:
        raise TreeError(str(exc)) from None


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
                refresh: bool = False) -> Path:
    """The root of the unpacked tree of `packages` for the architecture."""
    arch = _architecture(arch_name)
    if not packages:
        raise TreeError("no package given")
    base = out / arch.name / "+".join(sorted(packages))
    root, stamp = base / "root", base / "packages"
    if not refresh and stamp.is_file() and stamp.read_text().split() == sorted(packages):
        return root
    debs = gt.download(base / "apt", system_release(), tuple(packages), gt.system_mirror(),
                       arch.debian_arch)
    partial = base / "root.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for deb in debs:
        gt._run(["dpkg-deb", "-x", str(deb), str(partial)])
    (partial / "etc").mkdir(exist_ok=True)
    (partial / "etc/ld.so.conf").write_text(
        f"/lib/{arch.triplet}\n/usr/lib/{arch.triplet}\n")
    gt._run([*_ldconfig(arch, base), "-r", str(partial)])
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    stamp.write_text("\n".join(sorted(packages)) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    ap.add_argument("arch", choices=sorted(arches.ARCHES))
    ap.add_argument("packages", nargs="+", metavar="PACKAGE")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="where trees are kept (default: build-arch in the checkout)")
    ap.add_argument("--refresh", action="store_true", help="fetch and unpack again")
    args = ap.parse_args(argv)
    try:
        print(ensure_tree(args.arch, tuple(args.packages), args.out.resolve(), args.refresh))
    except TreeError as exc:
        print(f"arch_tree: {args.arch}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
