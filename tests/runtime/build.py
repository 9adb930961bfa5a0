"""Builders for the runtime tests: libcapsule, the demo libraries, shims
rendered by the product's render.py from this checkout, and prefix trees."""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:  # testarch, when imported from bench/
    sys.path.insert(0, str(REPO / "tests"))

from testarch import (  # noqa: E402
    ARCH,
    CROSS,
    EMULATED,
    GCC,
    LDCACHE_FLAGS,
    MULTIARCH,
    NATIVE,
    RUNNER,
    ldconfig,
    load_checkout_package,
)

LIBCAPSULE = REPO / "libcapsule"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# CAPSULE_TEST_ARCH (tests/testarch.py) chooses the architecture: libcapsule
# and every library, shim and program are built with GCC (gcc -m32 for
# i386), prefix trees use its MULTIARCH directory, shims are rendered for it.
# CAPSULE_TEST_SANITIZE=asan builds libcapsule, every fixture library, shim
# and program with ASan + UBSan; =valgrind runs every program under memcheck
# (see sanitize_prefix); =coverage builds libcapsule with gcov counters.
SANITIZE = os.environ.get("CAPSULE_TEST_SANITIZE", "")
if SANITIZE not in ("", "asan", "valgrind", "coverage"):
    raise SystemExit(f"CAPSULE_TEST_SANITIZE={SANITIZE!r}: expected asan, valgrind or coverage")
# Valgrind needs the symbols of the architecture's ld.so (Debian's
# libc6-dbg:i386 for i386), which cannot be installed without adding the
# architecture to dpkg: not done on this machine.
CROSS_VALGRIND = (f"valgrind cannot run {ARCH.name} programs here: it needs the {ARCH.name} "
                  f"ld.so's symbols (libc6-dbg:{ARCH.debian_arch}), which cannot be installed "
                  f"without adding the {ARCH.debian_arch} architecture to dpkg")
if SANITIZE == "valgrind" and CROSS:
    raise SystemExit(f"CAPSULE_TEST_SANITIZE=valgrind with CAPSULE_TEST_ARCH={ARCH.name}: "
                     f"{CROSS_VALGRIND}")


def valgrind_unusable() -> str | None:
    """Why the tests that run their own valgrind tool cannot, or None."""
    if not shutil.which("valgrind"):
        return "needs valgrind (scripts/bootstrap.sh installs it)"
    if SANITIZE == "asan":
        return "needs valgrind, which cannot run ASan builds"
    return CROSS_VALGRIND if CROSS else None
if SANITIZE == "asan" and EMULATED:
    # The aarch64 code is clang's, and Debian 12 packages clang's ASan
    # runtime (compiler-rt) for x86 only: libclang_rt.asan-aarch64.a is not
    # there to link.
    raise SystemExit(f"CAPSULE_TEST_SANITIZE=asan: not with CAPSULE_TEST_ARCH={ARCH.name} "
                     f"(clang's {ARCH.name} ASan runtime is not packaged in Debian 12)")
SAN_FLAGS = (["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
              "-fno-omit-frame-pointer"] if SANITIZE == "asan" else [])
CC = [*GCC, *SAN_FLAGS]
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]
# libcapsule's own sources (and the drivers built from them) under coverage.
COVERAGE_FLAGS = (["--coverage", "-fprofile-update=atomic", "-DCAPSULE_COVERAGE"]
                  if SANITIZE == "coverage" else [])
VALGRIND_ERROR = 99


def sanitize_prefix() -> list[str]:
    """What to put before a test program's command line."""
    if SANITIZE != "valgrind":
        return []
    # Without the inlined frames' names in its reports, each start of
    # valgrind skips reading them from libc's debug info: 0.7 s instead of
    # 1.0 s, for the hundreds of programs of a memcheck run.
    return ["valgrind", "--quiet", f"--error-exitcode={VALGRIND_ERROR}", "--leak-check=no",
            "--trace-children=no", "--read-inline-info=no"]


def _load_glibc_tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("glibc_tree", REPO / "scripts/glibc_tree.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["glibc_tree"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# CAPSULE_TEST_GLIBC=trixie|sid (or the path of an unpacked tree) runs every
# test program through that glibc's own ld.so (scripts/glibc_tree.py fetches
# and unpacks Debian's packages once, into build-glibc/). See glibc_prefix.
GLIBC = os.environ.get("CAPSULE_TEST_GLIBC", "")
GLIBC_TREE = None
if GLIBC and CROSS:
    raise SystemExit(f"CAPSULE_TEST_GLIBC={GLIBC!r}: the glibc trees are {NATIVE.name}'s: "
                     f"not with CAPSULE_TEST_ARCH={ARCH.name}")
if GLIBC:
    _glibc_tree = _load_glibc_tree()
    try:
        GLIBC_TREE = _glibc_tree.tree_from_env(GLIBC)
    except _glibc_tree.TreeError as e:
        raise SystemExit(f"CAPSULE_TEST_GLIBC={GLIBC!r}: {e}") from e


def glibc_prefix(env: Mapping[str, str] | Mapping[str | bytes, str | bytes]) -> list[str]:
    """What to put right before a test program (after a sanitizer's wrapper or
    a switch to another user) to run it under CAPSULE_TEST_GLIBC's ld.so.

    An explicit ld.so's --library-path replaces LD_LIBRARY_PATH, so the
    program's LD_LIBRARY_PATH (in `env`, the environment it gets) follows the
    glibc tree there: the tree supplies only glibc's own libraries (and
    libgcc_s), which must match that ld.so, while the test's directories still
    come before the system's (shims before the system's libz ...). The
    variable itself stays as the test set it: libcapsule reads it when it
    emulates the dlopen of a caller with a DT_RUNPATH, and programs a test
    program execs run on the system's glibc with it."""
    if GLIBC_TREE is None:
        return []
    value = next((v for k, v in env.items() if k in ("LD_LIBRARY_PATH", b"LD_LIBRARY_PATH")), "")
    return [str(GLIBC_TREE.ldso), "--library-path",
            ":".join(d for d in (str(GLIBC_TREE.libdir), os.fsdecode(value)) if d)]


def glibc_link_flags() -> list[str]:
    """Link flags that make a program run under CAPSULE_TEST_GLIBC by itself,
    for programs that cannot be started through ld.so (a setuid program run
    that way is not setuid: ld.so is not). The tree's ld.so becomes the
    interpreter and its library directory a DT_RPATH (not DT_RUNPATH: RPATH
    also serves the dependencies of objects without a run path, such as
    libcapsule's own libdl/libpthread), which secure mode honours."""
    if GLIBC_TREE is None:
        return []
    return [f"-Wl,--dynamic-linker={GLIBC_TREE.ldso}", "-Wl,--disable-new-dtags",
            f"-Wl,-rpath,{GLIBC_TREE.libdir}"]


def program_prefix(env: Mapping[str, str] | Mapping[str | bytes, str | bytes]) -> list[str]:
    """sanitize_prefix() then glibc_prefix(env): before a test program. (A
    program of an emulated architecture gets its emulator from
    testarch.emulate_exec.)"""
    return [*sanitize_prefix(), *glibc_prefix(env)]


def sh(cmd: list[str | os.PathLike[str]], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def libcapsule_arch_dir() -> Path | None:
    """libcapsule/arch/<ARCH>: the architecture's own sources, where the
    source tree has them (compiled with it on the include path)."""
    arch_dir = LIBCAPSULE / "arch" / ARCH.name
    return arch_dir if arch_dir.is_dir() else None


def libcapsule_sources() -> list[Path]:
    """libcapsule's sources for ARCH: libcapsule/*.c, then the *.c and *.S
    of libcapsule/arch/<ARCH> when it exists."""
    sources = sorted(LIBCAPSULE.glob("*.c"))
    arch_dir = libcapsule_arch_dir()
    if arch_dir is not None:
        sources += sorted([*arch_dir.glob("*.c"), *arch_dir.glob("*.S")])
    return sources


def libcapsule_cflags() -> list[str]:
    """The include path libcapsule's own sources (and drivers built from
    them) need: libcapsule/ itself, libcapsule/include and the arch directory."""
    arch_dir = libcapsule_arch_dir()
    return [f"-I{LIBCAPSULE}", f"-I{LIBCAPSULE / 'include'}",
            *([f"-I{arch_dir}"] if arch_dir is not None else [])]


def libcapsule_arch_archive(out: Path, flags: list[str]) -> list[Path]:
    """For a driver linking some of libcapsule/*.c: the arch directory's
    sources, built with `flags` into a static archive (only what those
    sources call is linked), as a list to append to its command line;
    [] when there is no arch directory."""
    arch_dir = libcapsule_arch_dir()
    if arch_dir is None:
        return []
    objdir = out / "arch-obj"
    objdir.mkdir(parents=True, exist_ok=True)
    objects = []
    for source in sorted([*arch_dir.glob("*.c"), *arch_dir.glob("*.S")]):
        obj = objdir / f"{source.stem}.o"
        sh([*GCC, *flags, "-c", *libcapsule_cflags(), source, "-o", obj])
        objects.append(obj)
    archive = out / "libcapsule-arch.a"
    archive.unlink(missing_ok=True)
    sh(["ar", "rcs", archive, *objects])
    return [archive]


def build_driver(exe: Path, source: Path, private: list[str]) -> Path:
    """A test driver (fixtures/*_driver.c) linked with some of libcapsule's
    own sources, under ASan + UBSan: the named ones the top of the tree
    holds, and the arch directory's through an archive. An emulated
    architecture's driver has UBSan alone, trapping: clang's sanitizer
    runtimes are not there for it (see CAPSULE_TEST_SANITIZE above)."""
    sanitize = (["-fsanitize=undefined", "-fsanitize-trap=undefined"] if EMULATED
                else ["-fsanitize=address,undefined"])
    flags = [*CFLAGS, *COVERAGE_FLAGS, *sanitize]
    top = [LIBCAPSULE / f for f in private if (LIBCAPSULE / f).exists()]
    archive = libcapsule_arch_archive(exe.parent / f"{exe.name}.arch", flags)
    sh([*GCC, *flags, *libcapsule_cflags(), source, *top, *archive, "-o", exe, "-lpthread"])
    return exe


def build_libcapsule(out: Path) -> Path:
    """libcapsule.so.0 built directly with gcc, as meson.build builds it."""
    out.mkdir(parents=True, exist_ok=True)
    lib = out / "libcapsule.so.0"
    objects = []
    for source in libcapsule_sources():
        # One object per source, so gcov counters land in out/obj/NAME.gcda
        # (an arch directory's as out/obj/arch/NAME.gcda).
        rel = source.relative_to(LIBCAPSULE)
        obj = out / "obj" / ("arch" if len(rel.parts) > 1 else "") / f"{source.stem}.o"
        obj.parent.mkdir(parents=True, exist_ok=True)
        sh([*CC, *CFLAGS, *COVERAGE_FLAGS, "-c", "-fPIC", "-fvisibility=hidden",
            *libcapsule_cflags(), source, "-o", obj])
        objects.append(obj)
    sh([*CC, *COVERAGE_FLAGS, "-shared", *objects, "-o", lib, "-Wl,-soname,libcapsule.so.0",
        f"-Wl,--version-script,{LIBCAPSULE / 'libcapsule.map'}", "-ldl", "-lpthread"])
    (out / "libcapsule.so").unlink(missing_ok=True)
    (out / "libcapsule.so").symlink_to("libcapsule.so.0")
    return lib


def build_lib(out: Path, soname: str, sources: list[Path], *, version_script: Path | None = None,
              flags: list[str] | None = None, libs: list[str | Path] | None = None,
              sanitize: bool = False) -> Path:
    """A shared library. Only objects of the program's own namespace may be
    sanitized: a library meant for a prefix would need the sanitizer runtime
    inside the capsule, which resolution (rightly) never takes from outside."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / soname
    cc = CC if sanitize else GCC
    cmd: list[str | os.PathLike[str]] = [*cc, *CFLAGS, "-shared", "-fPIC", *(flags or []),
                                         f"-I{FIXTURES}", *sources, "-o", target,
                                         f"-Wl,-soname,{soname}"]
    if version_script:
        cmd.append(f"-Wl,--version-script,{version_script}")
    sh([*cmd, *(libs or [])])
    return target


@dataclass
class Sym:
    name: str
    version: str | None
    kind: str = "func"  # func | object | tls
    hidden: bool = False
    size: int = 0


DEMO_SYMBOLS = [
    Sym("demo_add", "DEMO_2"),
    Sym("demo_add", "DEMO_1", hidden=True),
    Sym("demo_where", "DEMO_1"),
    Sym("demo_bump", "DEMO_1"),
    Sym("demo_get_counter", "DEMO_1"),
    Sym("demo_counter", "DEMO_1", kind="object", size=4),
    Sym("demo_counter_address", "DEMO_2"),
    Sym("demo_dep", "DEMO_2"),
    Sym("demo_missing", "DEMO_2"),
]
DEMO_VERSIONS = [("DEMO_1", None), ("DEMO_2", "DEMO_1")]


def _load_checkout_package() -> ModuleType:
    """This checkout's capsule_module (testarch.load_checkout_package): the
    tests render shims with the product's own renderer and templates."""
    return load_checkout_package()


def _library(soname: str, symbols: list[Sym],
             versions: list[tuple[str, str | None]]) -> Any:
    """The description render.py takes, as the symbols reader would make it."""
    _load_checkout_package()
    elf = importlib.import_module("capsule_checkout.elfreader")
    kinds = {"func": "func", "object": "object", "tls": "tls"}
    return elf.LibrarySymbols(
        soname=soname, elf_class=ARCH.elf_class, machine=ARCH.machine, needed=[],
        versions=[elf.VersionDef(n, [p] if p else []) for n, p in versions],
        symbols=[elf.Symbol(s.name, kinds[s.kind], s.size, "global", s.version, not s.hidden)
                 for s in symbols])


def render_shim(soname: str, prefix: str, symbols: list[Sym], *, exclude: list[str] = (),
                exports: list[str] = (), share: list[str] | None = (),
                versions: list[tuple[str, str | None]] = ()) -> str:
    """The shim's C source, rendered by the product's render.py."""
    _load_checkout_package()
    render = importlib.import_module("capsule_checkout.render")
    lib = _library(soname, symbols, list(versions))
    return render.render_shim([lib], soname=soname, prefix=prefix, exclude=list(exclude),
                              exports=list(exports),
                              share=None if share is None else list(share), arch=ARCH).c_source


def build_shim(out: Path, libcapsule_dir: Path, soname: str, prefix: str,
               symbols: list[Sym], versions: list[tuple[str, str | None]],
               flags: list[str] | None = None, **kw: list[str]) -> Path:
    """flags: extra compiler and linker flags (binding modes)."""
    out.mkdir(parents=True, exist_ok=True)
    src = out / f"{soname}.shim.c"
    _load_checkout_package()
    render = importlib.import_module("capsule_checkout.render")
    rendered = render.render_shim(
        [_library(soname, symbols, versions)], soname=soname, prefix=prefix,
        exclude=list(kw.get("exclude", [])), exports=list(kw.get("exports", [])),
        share=None if kw.get("share", ()) is None else list(kw.get("share", ())), arch=ARCH)
    src.write_text(rendered.c_source)
    vmap = None  # only when the target has version definitions, as render does
    if rendered.version_script is not None:
        vmap = out / f"{soname}.shim.map"
        vmap.write_text(rendered.version_script)
    return build_lib(out, soname, [src], version_script=vmap, sanitize=True,
                     flags=[f"-I{LIBCAPSULE / 'include'}", *(flags or [])],
                     libs=[f"-L{libcapsule_dir}", "-lcapsule", f"-Wl,-rpath,{libcapsule_dir}"])


def make_prefix(root: Path, libs: list[Path], *, ldcache: bool = True) -> Path:
    libdir = root / MULTIARCH
    libdir.mkdir(parents=True, exist_ok=True)
    for lib in libs:
        shutil.copy2(lib, libdir / lib.name)
    if ldcache:
        write_ldcache(root)
    return root


def write_ldcache(root: Path, fmt: str = "new") -> Path:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/ldconfig").mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.conf").write_text(f"/{MULTIARCH}\n")
    sh([*ldconfig(), "-X", "-c", fmt, "-r", root])
    return root / "etc/ld.so.cache"


def write_raw_ldcache(path: Path, entries: list[tuple[bytes, bytes]]) -> Path:
    """An ld.so.cache in glibc's new layout with exactly these (soname, path)
    entries, whatever they say: for caches ldconfig would never write."""
    strings = bytearray()
    table = bytearray()
    base = 48 + 24 * len(entries)
    for key, value in entries:
        k = base + len(strings)
        strings += key + b"\0"
        v = base + len(strings)
        strings += value + b"\0"
        table += struct.pack("<iIIIQ", LDCACHE_FLAGS, k, v, 0, 0)
    header = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", len(entries), len(strings), 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + table + strings)
    return path


def patched_copy(src: Path, dest: Path, subs: dict[bytes, bytes]) -> Path:
    """A copy of a library with same-length strings replaced (sonames and
    DT_NEEDED names in .dynstr): hundreds of distinct libraries in
    milliseconds instead of one gcc run each."""
    data = src.read_bytes()
    for old, new in subs.items():
        assert len(old) == len(new) and old in data, (old, new)
        data = data.replace(old, new)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


@dataclass
class Built:
    root: Path
    libcapsule_dir: Path
    real_dir: Path        # the real libdemo.so.1 + libdemodep.so.1 (link time)
    prefix: Path          # a prefix tree holding both
    shim_dir: Path        # the shim libdemo.so.1 (built-in prefix = `prefix`)
    demo: Path
    demodep: Path


def build_demo(out: Path, *flags: str) -> tuple[Path, Path]:
    demodep = build_lib(out, "libdemodep.so.1", [FIXTURES / "demodep.c"])
    demo = build_lib(out, "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map", flags=list(flags),
                     libs=[demodep])
    return demo, demodep


def build_program(b: Built, out: Path, mode: list[str], kind: list[str],
                  extra: list[str] | None = None) -> Path:
    """fixtures/prog.c linked against the real libdemo.so.1, libuser.so and
    libolduser.so (built into `out` with `mode`)."""
    user = build_lib(out, "libuser.so", [FIXTURES / "user.c"], flags=mode, libs=[b.demo],
                     version_script=FIXTURES / "user.map")
    old = build_lib(out / "old", "libdemo.so.1", [FIXTURES / "demo_old.c"],
                    version_script=FIXTURES / "demo_old.map")
    olduser = build_lib(out, "libolduser.so", [FIXTURES / "olduser.c"], flags=mode, libs=[old])
    prog = out / "prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", *kind, *mode, f"-I{FIXTURES}",
        FIXTURES / "prog.c", "-o", prog, user, olduser, b.demo, *(extra or []),
        f"-Wl,-rpath,{out}", f"-Wl,-rpath-link,{b.real_dir}", "-Wl,--allow-shlib-undefined",
        "-ldl"])
    return prog


@dataclass
class World(Built):
    program: Path


def as_other_user() -> list[str]:
    """The command prefix that drops root (to nobody), or [] when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop to nobody")
    drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    if SANITIZE == "coverage":
        # nobody cannot update root's gcov counters: send its own elsewhere
        # (they are not counted; root runs cover the same code).
        other = Path(tempfile.gettempdir()) / "capsule-gcov-nobody"
        other.mkdir(exist_ok=True)
        other.chmod(0o1777)
        drop += ["env", f"GCOV_PREFIX={other}"]
    # setpriv execs the program itself: an emulated one needs its emulator
    # named (testarch.emulate_exec sees only setpriv).
    return [*drop, *RUNNER]
