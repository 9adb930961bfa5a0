"""The architecture table and the configure-time side of i386 (issue 11):
reading, finding and refusing i386 libraries from a host tree of real
Debian i386 packages (zlib1g, libexpat1), beside x86_64 copies."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from py_support import REPO, system_lib

from capsule_module import arch, ldcache, render, symbolsfile
from capsule_module.arch import I386, X86_64
from capsule_module.elfreader import read_library
from capsule_module.errors import CapsuleError
from capsule_module.locate import find_library, lookup_library
from elforacle import readelf
from helpers import i386_host_tree

I386_DIR = "lib/i386-linux-gnu"
X86_64_DIR = "usr/lib/x86_64-linux-gnu"


@pytest.fixture(scope="session")
def i386_root() -> Path:
    return i386_host_tree()


def _copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.realpath(src), dest)
    return dest


@pytest.fixture
def mixed(tmp_path: Path, i386_root: Path, lib32: Path) -> Path:
    """A tree holding zlib and expat twice, x86_64 and i386, as a multilib
    host does, plus libt32.so.1 (i386, links no libc) where only the cache
    finds it; etc/ld.so.cache written by ldconfig -r."""
    root = tmp_path / "mixed"
    for soname in ("libz.so.1", "libexpat.so.1"):
        _copy(system_lib(soname), root / X86_64_DIR / soname)
        _copy(i386_root / I386_DIR / soname, root / I386_DIR / soname)
    _copy(lib32, root / "opt/i386/libt32.so.1")
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text(f"/{X86_64_DIR}\n/{I386_DIR}\n/opt/i386\n")
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    return root


# ---- the table ----

def test_x86_64_entry_keeps_the_old_facts() -> None:
    """What locate, ldcache and the Meson module hard-coded before the table."""
    assert X86_64.lib_dirs == ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64",
                               "usr/lib64", "lib", "usr/lib")
    assert X86_64.system_lib_dirs == {"/lib", "/usr/lib", "/lib64", "/usr/lib64",
                                      "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}
    assert (X86_64.elf_class, X86_64.e_machine, X86_64.ldcache_flags) == (64, 62, {0x0303})


def test_i386_entry() -> None:
    assert I386.lib_dirs == ("lib/i386-linux-gnu", "usr/lib/i386-linux-gnu", "lib32",
                             "usr/lib32", "lib", "usr/lib")
    assert (I386.elf_class, I386.e_machine, I386.machine) == (32, 3, "EM_386")
    assert I386.ldcache_flags == {0x0001, 0x0003}
    assert (I386.lib, I386.platform, I386.meson_cpu_family) == ("lib/i386-linux-gnu", "i686",
                                                                 "x86")


@pytest.mark.parametrize("uname, expected", [("x86_64", X86_64), ("i686", I386),
                                             ("i386", I386)])
def test_of_machine(uname: str, expected: arch.Arch) -> None:
    assert arch.of_machine(uname) is expected


def test_of_this_machine() -> None:
    assert arch.of_machine().name == os.uname().machine  # the suite runs on x86_64


@pytest.mark.parametrize("call, message", [
    (lambda: arch.get("sparc"), r"^unknown architecture 'sparc' \(known: aarch64, i386, x86_64\)$"),
    (lambda: arch.of_machine("riscv64"), r"this machine's architecture 'riscv64' is not one"),
    (lambda: arch.of_meson_cpu_family("arm"),
     r"^the host machine's CPU family 'arm' is not one capsule supports "
     r"\(aarch64, x86, x86_64\)$"),
])
def test_unknown_architectures_are_one_error(call, message: str) -> None:
    with pytest.raises(CapsuleError, match=message):
        call()


def test_meson_cpu_families() -> None:
    assert arch.of_meson_cpu_family("x86") is I386
    assert arch.of_meson_cpu_family("x86_64") is X86_64


# ---- reading an i386 library ----

@pytest.mark.parametrize("soname", ["libz.so.1", "libexpat.so.1"])
def test_i386_library_is_read_with_its_class_and_machine(i386_root: Path, soname: str) -> None:
    path = i386_root / I386_DIR / soname
    lib = read_library(path)
    oracle = readelf(path)
    assert (lib.elf_class, lib.machine) == (32, "EM_386")
    assert arch.of_library(lib.elf_class, lib.machine) is I386
    assert lib.soname == oracle.soname == soname
    assert [(v.name, v.parents, v.flags) for v in lib.versions] == oracle.versions
    assert sorted((s.name, s.kind, s.size, s.binding, s.version, s.default)
                  for s in lib.symbols) == sorted(oracle.symbols)


def test_i386_zlib_has_the_x86_64_interface(i386_root: Path) -> None:
    """Same zlib, other architecture: the same names and versions."""
    def interface(path: Path) -> set[tuple[str, str | None, bool]]:
        return {(s.name, s.version, s.default) for s in read_library(path).symbols}
    assert interface(i386_root / I386_DIR / "libz.so.1") == interface(system_lib("libz.so.1"))


# ---- finding it ----

@pytest.mark.parametrize("with_cache", [True, False])
@pytest.mark.parametrize("soname", ["libz.so.1", "libexpat.so.1"])
def test_mixed_tree_gives_each_architecture_its_own(mixed: Path, soname: str,
                                                    with_cache: bool) -> None:
    if not with_cache:
        (mixed / "etc/ld.so.cache").unlink()
    root = mixed.resolve()
    assert find_library(soname, mixed, I386).parent == root / I386_DIR
    assert find_library(soname, mixed, X86_64).parent == root / X86_64_DIR
    assert find_library(soname, mixed).parent == root / X86_64_DIR  # the default


@pytest.mark.parametrize("directory", ["lib32", "usr/lib32", "lib", "usr/lib"])
def test_i386_standard_directories(tmp_path: Path, i386_root: Path, directory: str) -> None:
    """Each i386 directory is searched; an x86_64 copy earlier in the order
    (lib before usr/lib) is skipped, and is what x86_64 finds."""
    _copy(i386_root / I386_DIR / "libz.so.1", tmp_path / directory / "libz.so.1")
    if directory == "usr/lib":
        _copy(system_lib("libz.so.1"), tmp_path / "lib/libz.so.1")
        assert find_library("libz.so.1", tmp_path).parent == tmp_path.resolve() / "lib"
    assert find_library("libz.so.1", tmp_path, I386).parent == tmp_path.resolve() / directory


def test_x86_64_does_not_search_i386_directories(tmp_path: Path, i386_root: Path) -> None:
    _copy(system_lib("libz.so.1"), tmp_path / "usr/lib32/libz.so.1")
    _copy(system_lib("libz.so.1"), tmp_path / I386_DIR / "libz.so.1")
    with pytest.raises(CapsuleError, match=r"libz.so.1 not found"):
        find_library("libz.so.1", tmp_path)
    with pytest.raises(CapsuleError, match=r"libz.so.1 not found under \S+ for i386"):
        find_library("libz.so.1", tmp_path, I386)  # x86_64 copies in i386 places


def test_i386_lookup_records_what_it_read(mixed: Path) -> None:
    found = lookup_library("libz.so.1", mixed, I386)
    root = mixed.resolve()
    assert found.path == root / I386_DIR / "libz.so.1"
    assert found.examined == [root / "etc/ld.so.cache", found.path]


# ---- ld.so.cache flags ----

def test_ldconfig_flags_i386_libraries_0x0001_and_0x0003(mixed: Path) -> None:
    """ldconfig's own cache: libt32 links no libc (0x0001), zlib does (0x0003);
    i386 takes both, x86_64 neither."""
    entries = ldcache.read_cache(mixed / "etc/ld.so.cache")
    flags = {(e.soname, e.path): e.flags & ldcache.FLAG_MASK for e in entries}
    assert flags[("libt32.so.1", "/opt/i386/libt32.so.1")] == 0x0001
    assert flags[("libz.so.1", f"/{I386_DIR}/libz.so.1")] == 0x0003
    assert flags[("libz.so.1", f"/{X86_64_DIR}/libz.so.1")] == 0x0303
    assert ldcache.lookup(entries, "libt32.so.1", I386) == ["/opt/i386/libt32.so.1"]
    assert ldcache.lookup(entries, "libt32.so.1", X86_64) == []
    assert ldcache.lookup(entries, "libz.so.1", I386) == [f"/{I386_DIR}/libz.so.1"]
    assert ldcache.lookup(entries, "libz.so.1") == [f"/{X86_64_DIR}/libz.so.1"]


def test_cache_alone_finds_a_library_without_libc_for_i386(mixed: Path, lib32: Path) -> None:
    assert find_library("libt32.so.1", mixed, I386) == mixed.resolve() / "opt/i386/libt32.so.1"
    with pytest.raises(CapsuleError, match=r"libt32.so.1 not found"):
        find_library("libt32.so.1", mixed)


def _cache(flags: int) -> bytes:
    """A one-entry new-format cache: libz.so.1 => /p/libz.so.1."""
    strings = b"libz.so.1\0/p/libz.so.1\0"
    header = 48 + 24
    entry = struct.pack("<iIIIQ", flags, header, header + 10, 0, 0)
    return (b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", 1, len(strings), 0, 0)
            + entry + strings)


@pytest.mark.parametrize("flags, i386, x86_64", [
    (0x0001, True, False),
    (0x0003, True, False),
    (0x0003 | 0x10000, True, False),  # bits above 16 are not compared
    (0x0303, False, True),
    (0x0002, False, False),           # libc5
    (0x0a03, False, False),           # aarch64
])
def test_cache_flags_per_architecture(flags: int, i386: bool, x86_64: bool) -> None:
    entries = ldcache.parse_cache(_cache(flags))
    assert ldcache.lookup(entries, "libz.so.1", I386) == (["/p/libz.so.1"] if i386 else [])
    assert ldcache.lookup(entries, "libz.so.1", X86_64) == (["/p/libz.so.1"] if x86_64 else [])


# ---- rendering ----

def test_rendering_for_i386_uses_its_stubs(i386_root: Path) -> None:
    lib = read_library(i386_root / I386_DIR / "libz.so.1")
    source = render.render_shim([lib], soname="libz.so.1", prefix="/host", exclude=[],
                                exports=[], arch=I386).c_source
    assert '#error "this shim was rendered for i386' in source
    assert "  mov $\\\\idx, %eax\\n" in source and "%rip" not in source
    assert "CAPSULE_STUB 0\\n" in source


def test_an_architecture_without_its_runtime_is_the_one_clear_error(i386_root: Path) -> None:
    lib = read_library(i386_root / I386_DIR / "libz.so.1")
    future = I386._replace(shim_runtime=False)
    with pytest.raises(CapsuleError) as info:
        render.render_shim([lib], soname="libz.so.1", prefix="/host", exclude=[], exports=[],
                           arch=future)
    assert str(info.value) == (
        "shims for i386 (ELF32, EM_386) cannot be built yet: the i386 runtime (libcapsule "
        "and the shim template) is not available; reading its libraries and symbols files "
        "works")


@pytest.mark.parametrize("target, lib_arch", [(I386, X86_64), (X86_64, I386)])
def test_rendering_refuses_the_other_architecture(i386_root: Path, target: arch.Arch,
                                                  lib_arch: arch.Arch) -> None:
    path = (i386_root / I386_DIR / "libz.so.1" if lib_arch is I386
            else system_lib("libz.so.1"))
    with pytest.raises(CapsuleError, match=(
            rf"^library libz.so.1 is ELF{lib_arch.elf_class} for {lib_arch.machine}: capsule "
            rf"shims for {target.name} support only {target.name} ELF{target.elf_class} "
            rf"\({target.machine}\) libraries$")):
        render.render_shim([read_library(path)], soname="libz.so.1", prefix="/", exclude=[],
                           exports=[], arch=target)


# ---- the command line ----

def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
           **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}}
    return subprocess.run([sys.executable, "-m", "capsule_module.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env=env)


def test_symbols_arch_i386_reads_and_says_i386(mixed: Path) -> None:
    r = _cli("symbols", "libz.so.1", "--prefix", str(mixed), "--arch", "i386")
    assert r.returncode == 0, r.stderr
    lib = symbolsfile.loads(r.stdout, "stdout")
    assert (lib.elf_class, lib.machine) == (32, "EM_386")
    path = mixed.resolve() / I386_DIR / "libz.so.1"
    assert r.stderr == (f"capsule-shim: libz.so.1: i386 (ELF32, EM_386), as --arch asked; "
                        f"read from {path}\n")


def test_symbols_defaults_to_this_machine_and_says_so(mixed: Path) -> None:
    r = _cli("symbols", "libz.so.1", "--prefix", str(mixed))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["machine"] == "EM_X86_64"
    assert r.stderr.startswith("capsule-shim: libz.so.1: x86_64 (ELF64, EM_X86_64), this "
                               "machine's architecture (--arch chooses another); read from ")


def test_symbols_of_a_path_is_its_own_architecture_unless_asked(i386_root: Path) -> None:
    path = i386_root / I386_DIR / "libexpat.so.1"
    r = _cli("symbols", str(path))
    assert r.returncode == 0 and json.loads(r.stdout)["elf_class"] == 32
    assert "i386 (ELF32, EM_386), the library's own architecture" in r.stderr
    r = _cli("symbols", str(path), "--arch", "x86_64")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"capsule-shim: library {path} is ELF32 for EM_386: capsule shims for "
                        "x86_64 support only x86_64 ELF64 (EM_X86_64) libraries\n")


def test_symbols_unknown_arch_is_a_usage_error() -> None:
    r = _cli("symbols", "libz.so.1", "--arch", "sparc")
    assert r.returncode == 2 and "invalid choice: 'sparc'" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_init_arch_i386_writes_the_project_and_says_i386(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    r = _cli("init", "libexpat.so.1", "--search-prefix", str(mixed), "--arch", "i386",
             "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(f"in {out}: i386 (ELF32, EM_386), as --arch asked\n")
    assert r.stderr == ""
    # The project builds for i386 as its README says: with capsule's cross file.
    assert (out / "i386-linux-gnu.ini").read_text() == (REPO / "cross/i386-linux-gnu.ini").read_text()
    assert " setup --cross-file i386-linux-gnu.ini build\n" in (out / "README.md").read_text()
    lib = symbolsfile.load(out / "libexpat.so.1.symbols.json")
    assert lib == read_library(mixed / I386_DIR / "libexpat.so.1")


def test_init_default_is_this_machine(mixed: Path, tmp_path: Path) -> None:
    r = _cli("init", "libz.so.1", "--search-prefix", str(mixed), "-o", str(tmp_path / "p"))
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.endswith("x86_64 (ELF64, EM_X86_64), this machine's architecture "
                             "(--arch chooses another)\n")
    assert symbolsfile.load(tmp_path / "p/libz.so.1.symbols.json").elf_class == 64


def test_init_arch_i386_of_an_x86_64_only_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _copy(system_lib("libz.so.1"), root / X86_64_DIR / "libz.so.1")
    r = _cli("init", "libz.so.1", "--search-prefix", str(root), "--arch", "i386",
             "-o", str(tmp_path / "p"))
    assert r.returncode == 1 and not (tmp_path / "p").exists()
    assert r.stderr == (f"capsule-shim: library libz.so.1 not found under {root} for i386 "
                        "(looked in etc/ld.so.cache and the standard library directories)\n")
