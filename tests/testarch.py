"""The architecture the test suites build and run for.

    CAPSULE_TEST_ARCH=i386 .venv/bin/python -m pytest -q tests/runtime tests/e2e

CAPSULE_TEST_ARCH names one of capsule_module/arch.py's entries (x86_64,
i386, aarch64; default: this machine's); aarch64 programs run under
qemu-aarch64 (RUNNER). The runtime suite (tests/runtime/build.py)
and the end-to-end helpers (tests/helpers.py) take from here everything that
depends on it: the gcc options that make code for it on this machine (`-m32`
with Debian's gcc-multilib and g++-multilib for i386 on x86_64), the
architecture's multiarch directory for prefix trees (its `Arch.lib_dirs`),
the relocation names readelf prints, and where this architecture's *system*
libraries are. The latter is not the multiarch directory when the
architecture is not the machine's: this machine has no i386 packages
installed (its dpkg is never given another architecture), so i386 libc,
libgcc_s, libstdc++ and the sanitizer runtimes come from the multilib
directory (`gcc -m32 -print-file-name=libc.so.6`: /usr/lib32), and zlib,
expat, libX11 and the allocators from a tree unpacked from Debian's i386
packages by scripts/arch_tree.py (a private apt state; kept in build-arch/).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_checkout_package() -> ModuleType:
    """This checkout's capsule_module, whatever copy the interpreter has
    installed, as `capsule_checkout`: the tests use the product's own
    architecture table, renderer and templates (loaded under another name,
    so an installed copy is untouched)."""
    name = "capsule_checkout"
    if name in sys.modules:
        return sys.modules[name]
    init = REPO / "capsule_module" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


load_checkout_package()
arches = importlib.import_module("capsule_checkout.arch")
NATIVE = arches.of_machine()
try:
    ARCH = arches.get(os.environ.get("CAPSULE_TEST_ARCH") or NATIVE.name)
except Exception as exc:  # CapsuleError of the checkout's package
    raise SystemExit(f"CAPSULE_TEST_ARCH: {exc}") from exc
CROSS = ARCH.name != NATIVE.name

# The C and C++ compilers for code of another architecture than the
# machine's: the multilib compilers of Debian's gcc-multilib and
# g++-multilib for i386; for aarch64 clang (Debian 12's aarch64 gcc cannot be
# installed beside gcc-multilib) with binutils' aarch64 ld and the cross
# libc (libc6-dev-arm64-cross), as cross/aarch64-linux-gnu.ini has them.
_AARCH64 = ["--target=aarch64-linux-gnu", "-fuse-ld=bfd", "-mbranch-protection=standard",
            "-Wno-unused-command-line-argument"]  # -fuse-ld while compiling
_COMPILERS = {("x86_64", "i386"): (["gcc", "-m32"], ["g++", "-m32"]),
              ("x86_64", "aarch64"): (["clang", *_AARCH64], ["clang++", *_AARCH64])}
if CROSS and (NATIVE.name, ARCH.name) not in _COMPILERS:
    raise SystemExit(f"CAPSULE_TEST_ARCH={ARCH.name}: the tests cannot build {ARCH.name} code "
                     f"on this {NATIVE.name} machine")
GCC, GXX = _COMPILERS.get((NATIVE.name, ARCH.name), (["gcc"], ["g++"]))
ARCH_FLAGS: list[str] = GCC[1:]
# An architecture this machine cannot run natively runs under its emulator
# (qemu-user), with the cross libc's directory as the root ld.so and libc
# come from (binfmt_misc is not relied on: a program it execs runs natively
# only if it is the machine's).
EMULATED = CROSS and ARCH.emulator is not None
SYSROOT = Path("/usr") / ARCH.triplet
RUNNER: list[str] = [ARCH.emulator, "-L", str(SYSROOT)] if EMULATED else []

# Where the suites put a prefix tree's libraries: the architecture's
# usr/lib/<triplet>, one of the directories ld.so and libcapsule search.
MULTIARCH = f"usr/lib/{ARCH.triplet}"
assert MULTIARCH in ARCH.lib_dirs, (MULTIARCH, ARCH.lib_dirs)
# The first directory searched after the cache (lib/<triplet>), and one
# searched after MULTIARCH (usr/lib64; i386: usr/lib32).
FIRST_LIB_DIR = ARCH.lib_dirs[0]
LATER_LIB_DIR = ARCH.lib_dirs[3]
assert ARCH.lib_dirs.index(MULTIARCH) < 3
# The ld.so.cache flags ldconfig gives a library linking libc.
LDCACHE_FLAGS = max(ARCH.ldcache_flags)

# Relocation types and sections as readelf names them.
_RELOCS = {
    "x86_64": {"COPY": "R_X86_64_COPY", "GLOB_DAT": "R_X86_64_GLOB_DAT",
               "JUMP_SLOT": "R_X86_64_JUMP_SLOT", "IRELATIVE": "R_X86_64_IRELATIVE",
               "ADDRESS": "R_X86_64_64", "dyn": ".rela.dyn", "plt": ".rela.plt"},
    "i386": {"COPY": "R_386_COPY", "GLOB_DAT": "R_386_GLOB_DAT",
             "JUMP_SLOT": "R_386_JMP_SLOT", "IRELATIVE": "R_386_IRELATIVE",
             "ADDRESS": "R_386_32", "dyn": ".rel.dyn", "plt": ".rel.plt"},
    "aarch64": {"COPY": "R_AARCH64_COPY", "GLOB_DAT": "R_AARCH64_GLOB_DAT",
                "JUMP_SLOT": "R_AARCH64_JUMP_SLOT", "IRELATIVE": "R_AARCH64_IRELATIVE",
                "ADDRESS": "R_AARCH64_ABS64", "dyn": ".rela.dyn", "plt": ".rela.plt"},
}
RELOC = _RELOCS[ARCH.name]
# Whether gcc gives a PIE program COPY relocations for a library's
# variables, as it does for a non-PIE one: x86-64 (HAVE_LD_PIE_COPYRELOC);
# i386 PIE code reads them through the GOT instead.
PIE_COPIES = ARCH.name == "x86_64"
# The program flags under which gcc copies a library's variables into it.
COPY_FLAGS = ["-fPIE", "-pie"] if PIE_COPIES else ["-fno-pie", "-no-pie"]

# ELF header fields the hostile-tree tests spoil: (offset, size) by class.
_EHDR = {64: {"e_phoff": (32, 8), "e_phentsize": (54, 2)},
         32: {"e_phoff": (28, 4), "e_phentsize": (42, 2)}}
EHDR = _EHDR[ARCH.elf_class]
# EI_CLASS of the other class (a library of the wrong class), and an
# e_machine that is not ARCH's.
OTHER_CLASS = 1 if ARCH.elf_class == 64 else 2
OTHER_MACHINE = 3 if ARCH.e_machine != 3 else 62

# The Debian packages (of ARCH) whose libraries the suites copy into prefix
# trees, link against or preload, beyond glibc and the compiler's runtime.
CROSS_PACKAGES = ("zlib1g", "libexpat1", "libx11-6", "libxcb1", "libxau6", "libxdmcp6",
                  "libbsd0", "libmd0", "libjemalloc2", "libtcmalloc-minimal4", "libmimalloc2.0")


def arch_tree_module() -> ModuleType:
    """scripts/arch_tree.py, loaded once (the suites' and benchmarks' one
    loader of it)."""
    module = sys.modules.get("arch_tree")
    if module is None:
        spec = importlib.util.spec_from_file_location("arch_tree", REPO / "scripts/arch_tree.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["arch_tree"] = module
        spec.loader.exec_module(module)
    return module


@functools.cache
def cross_tree() -> Path:
    """The unpacked tree of CROSS_PACKAGES for ARCH (scripts/arch_tree.py,
    reused once made). Skips the test, with the reason, when it cannot be
    fetched; scripts/test.sh fetches it first, so CI fails instead."""
    assert CROSS
    module = arch_tree_module()
    try:
        return Path(module.ensure_tree(ARCH.name, CROSS_PACKAGES))
    except module.TreeError as exc:
        import pytest
        pytest.skip(f"no {ARCH.name} tree of {' '.join(CROSS_PACKAGES)}: {exc}")


@functools.cache
def multilib_dir() -> Path:
    """Where ARCH's compiler finds libc (Debian: /usr/lib32 for i386's
    multilib, /usr/aarch64-linux-gnu/lib for the cross libc)."""
    if EMULATED:
        return SYSROOT / "lib"
    out = subprocess.run([*GCC, "-print-file-name=libc.so.6"], capture_output=True, text=True,
                         check=True).stdout.strip()
    if "/" not in out:
        raise SystemExit(f"CAPSULE_TEST_ARCH={ARCH.name}: {' '.join(GCC)} knows no libc.so.6 "
                         "(Debian: apt-get install gcc-multilib g++-multilib)")
    return Path(out).resolve().parent


@functools.cache
def ldconfig() -> list[str]:
    """The ldconfig that writes ARCH's ld.so.cache entries: this machine's,
    or an emulated architecture's own (its libc-bin's static ldconfig under
    the emulator, as scripts/arch_tree.py runs it): this machine's ldconfig
    skips libraries it cannot run (aarch64)."""
    if not EMULATED:
        return ["/sbin/ldconfig"]
    return list(arch_tree_module()._ldconfig(ARCH, cross_tree().parent))


def system_ldcache() -> Path:
    """An ld.so.cache ldconfig wrote for this machine's ARCH libraries: the
    machine's own, or for an emulated ARCH (which the machine's lists
    nothing of) the unpacked tree's."""
    return cross_tree() / "etc/ld.so.cache" if EMULATED else Path("/etc/ld.so.cache")


def system_libdirs() -> list[Path]:
    """Directories holding this machine's ARCH libraries, in search order."""
    if not CROSS:
        return [Path("/") / MULTIARCH]
    tree = cross_tree()
    return [multilib_dir(), *(tree / d for d in ARCH.lib_dirs[:2])]


def system_library(name: str) -> Path:
    """This machine's ARCH copy of a library (file name), where it is; in
    the first directory when no directory has it (the caller checks)."""
    dirs = system_libdirs()
    return next((d / name for d in dirs if (d / name).exists()), dirs[0] / name)


def run_libdirs() -> list[str]:
    """Directories an ARCH program needs after its own LD_LIBRARY_PATH for
    the system libraries ld.so would not find (the unpacked tree's)."""
    if not CROSS:
        return []
    return [str(cross_tree() / d) for d in ARCH.lib_dirs[:2]]


def with_run_libdirs(value: str | None) -> str:
    """An LD_LIBRARY_PATH value followed by run_libdirs()."""
    return ":".join(d for d in (value or "", *run_libdirs()) if d)


@functools.cache
def _link_dir() -> Path:
    """Development links (libz.so -> libz.so.1 ...) for the tree's libraries."""
    tree = cross_tree()
    dev = tree.parent / "dev"
    dev.mkdir(exist_ok=True)
    for d in ARCH.lib_dirs[:2]:
        for lib in sorted((tree / d).glob("lib*.so.*")):
            link = dev / (lib.name.split(".so.", 1)[0] + ".so")
            if not link.is_symlink():
                link.symlink_to(lib)
    return dev


def link_flags() -> list[str]:
    """gcc options that let an ARCH program or library link the system
    libraries by their development names (-lz, -lexpat, -lX11)."""
    if not CROSS:
        return []
    return [f"-L{_link_dir()}", *(f"-Wl,-rpath-link,{d}" for d in run_libdirs())]


def require_unemulated(why: str) -> None:
    """Skip the calling test when ARCH runs under an emulator, saying why."""
    if EMULATED:
        import pytest
        pytest.skip(f"not under {ARCH.emulator} ({why}); CAPSULE_TEST_ARCH={ARCH.name}")


def require_native(why: str) -> None:
    """Skip the calling test unless ARCH is the machine's own, saying why."""
    if CROSS:
        import pytest
        pytest.skip(f"{NATIVE.name} only ({why}); CAPSULE_TEST_ARCH={ARCH.name}")


def skip_unless(arch_name: str, why: str) -> None:
    """Skip the calling test unless ARCH is arch_name, saying why."""
    if ARCH.name != arch_name:
        import pytest
        pytest.skip(f"{arch_name} only ({why}); CAPSULE_TEST_ARCH={ARCH.name}")


def _is_emulated_program(path: object) -> bool:
    """Whether path names an ELF file of ARCH (which this machine runs only
    under its emulator)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return (head[:4] == b"\x7fELF" and len(head) == 20
            and int.from_bytes(head[18:20], "little") == ARCH.e_machine)


def emulate_exec() -> None:
    """For an emulated ARCH, make every subprocess this test process starts
    whose program is an ARCH executable start under RUNNER instead: what the
    kernel's binfmt_misc would do with qemu-user's handler registered (it is
    not, on this machine). Tests then run ARCH programs exactly as they run
    the machine's; a test that needs a native tool (gdb, valgrind, strace)
    on one is skipped with require_unemulated."""
    if not EMULATED or getattr(subprocess.Popen, "_capsule_emulated", False):
        return
    original = subprocess.Popen.__init__

    def init(self: subprocess.Popen, args: object, *a: object, **kw: object) -> None:
        if isinstance(args, (list, tuple)) and args and kw.get("executable") is None \
                and _is_emulated_program(args[0]):
            args = [*RUNNER, *args]
        original(self, args, *a, **kw)  # type: ignore[arg-type]

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    subprocess.Popen._capsule_emulated = True  # type: ignore[attr-defined]
