"""What capsule knows about each architecture, in one place.

One `Arch` entry per architecture holds every fact the Python side needs:
the ELF class and machine a library must have, the multiarch triplet, the
directories ld.so searches after its cache, the ld.so.cache flag values it
accepts, what `$LIB` and `$PLATFORM` expand to, and how Meson and uname
name the machine. locate, ldcache, render, the Meson module and the command
line ask this module instead of knowing x86_64 themselves: supporting
another architecture (aarch64 next) is adding an entry to ARCHES and, once
libcapsule (libcapsule/arch/NAME/) and the shim's stubs
(shim-templates/arch/NAME.stubs.in) are written, setting its
`shim_runtime`.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .errors import CapsuleError


class Arch(NamedTuple):
    """One architecture, as the Python side knows it (a named tuple, not a
    dataclass: see elfreader)."""

    name: str                     # capsule's name: --arch, messages
    elf_class: int                # 32 or 64
    e_machine: int                # ELF e_machine number
    machine: str                  # e_machine as pyelftools names it (symbols files)
    triplet: str                  # Debian multiarch triplet
    lib_dirs: tuple[str, ...]     # searched after the tree's ld.so.cache, in order
    ldcache_flags: frozenset[int]  # low 16 bits of ld.so.cache entries ld.so accepts
    lib: str                      # what $LIB expands to (Debian's ld.so)
    platform: str                 # what $PLATFORM expands to
    meson_cpu_family: str         # host_machine.cpu_family()
    uname_machines: tuple[str, ...]  # os.uname().machine values that run it
    debian_arch: str              # dpkg's name (apt-get download NAME:ARCH)
    shim_runtime: bool            # libcapsule and the shim template support it
    # The emulator that runs its programs on another machine (qemu-user), if
    # this machine's kernel cannot: how a tree's own ldconfig is run.
    emulator: str | None = None

    @property
    def description(self) -> str:
        """i386 (ELF32, EM_386): what messages say."""
        return f"{self.name} (ELF{self.elf_class}, {self.machine})"

    @property
    def system_lib_dirs(self) -> frozenset[str]:
        """The standard directories as absolute paths (a run path is not
        needed to find a library installed there)."""
        return frozenset(f"/{d}" for d in self.lib_dirs)


# ldconfig's flags (glibc elf/cache.h): FLAG_ELF_LIBC6 0x0003 for a library
# linking libc, FLAG_ELF 0x0001 for one that does not; the architecture bits
# above them (FLAG_X8664_LIB64 0x0300; i386 has none). glibc's
# _dl_cache_check_flags: x86_64 takes 0x0303 alone, i386 both 0x0001 and 0x0003.
X86_64 = Arch(
    name="x86_64", elf_class=64, e_machine=62, machine="EM_X86_64",
    triplet="x86_64-linux-gnu",
    lib_dirs=("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64",
              "lib", "usr/lib"),
    ldcache_flags=frozenset({0x0303}), lib="lib/x86_64-linux-gnu", platform="x86_64",
    meson_cpu_family="x86_64", uname_machines=("x86_64",), debian_arch="amd64",
    shim_runtime=True,
)
I386 = Arch(
    name="i386", elf_class=32, e_machine=3, machine="EM_386",
    triplet="i386-linux-gnu",
    lib_dirs=("lib/i386-linux-gnu", "usr/lib/i386-linux-gnu", "lib32", "usr/lib32",
              "lib", "usr/lib"),
    ldcache_flags=frozenset({0x0001, 0x0003}), lib="lib/i386-linux-gnu", platform="i686",
    meson_cpu_family="x86", uname_machines=("i386", "i486", "i586", "i686"),
    debian_arch="i386",
    shim_runtime=True,
)
# FLAG_AARCH64_LIB64 0x0a00: aarch64 takes 0x0a03 alone.
AARCH64 = Arch(
    name="aarch64", elf_class=64, e_machine=183, machine="EM_AARCH64",
    triplet="aarch64-linux-gnu",
    lib_dirs=("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib64", "usr/lib64",
              "lib", "usr/lib"),
    ldcache_flags=frozenset({0x0a03}), lib="lib/aarch64-linux-gnu", platform="aarch64",
    meson_cpu_family="aarch64", uname_machines=("aarch64", "arm64"), debian_arch="arm64",
    shim_runtime=True, emulator="qemu-aarch64",
)
ARCHES: dict[str, Arch] = {a.name: a for a in (X86_64, I386, AARCH64)}


def _known() -> str:
    return ", ".join(sorted(ARCHES))


def get(name: str) -> Arch:
    """The entry named `name`; CapsuleError listing the known ones otherwise."""
    try:
        return ARCHES[name]
    except KeyError:
        raise CapsuleError(f"unknown architecture {name!r} (known: {_known()})") from None


def of_machine(uname_machine: str | None = None) -> Arch:
    """This machine's architecture (os.uname()), or that of a uname machine name."""
    machine = uname_machine if uname_machine is not None else os.uname().machine
    for arch in ARCHES.values():
        if machine in arch.uname_machines:
            return arch
    raise CapsuleError(f"this machine's architecture {machine!r} is not one capsule knows "
                       f"({_known()}): name one")


def of_meson_cpu_family(cpu_family: str) -> Arch:
    """The architecture of a Meson machine (host_machine.cpu_family())."""
    for arch in ARCHES.values():
        if arch.meson_cpu_family == cpu_family:
            return arch
    families = ", ".join(sorted(a.meson_cpu_family for a in ARCHES.values()))
    raise CapsuleError(f"the host machine's CPU family {cpu_family!r} is not one capsule "
                       f"supports ({families})")


def of_library(elf_class: int, machine: str) -> Arch | None:
    """The architecture of a library's ELF class and machine, if known."""
    for arch in ARCHES.values():
        if (arch.elf_class, arch.machine) == (elf_class, machine):
            return arch
    return None


def require_library(arch: Arch, elf_class: int, machine: str, name: str) -> None:
    """CapsuleError naming the library unless it is of arch's class and machine."""
    if (elf_class, machine) != (arch.elf_class, arch.machine):
        raise CapsuleError(f"library {name} is ELF{elf_class} for {machine}: capsule shims "
                           f"for {arch.name} support only {arch.name} ELF{arch.elf_class} "
                           f"({arch.machine}) libraries")


def require_shim_runtime(arch: Arch) -> None:
    """CapsuleError unless shims for arch can be built and run: the one
    place that says so (the C port of an architecture sets shim_runtime)."""
    if not arch.shim_runtime:
        raise CapsuleError(f"shims for {arch.description} cannot be built yet: the {arch.name} "
                           "runtime (libcapsule and the shim template) is not available; "
                           "reading its libraries and symbols files works")
