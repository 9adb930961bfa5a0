"""elfreader.read_library against readelf, speed, and untrusted input."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from py_support import system_lib

from capsule_module.elfreader import LibrarySymbols, read_library
from capsule_module.errors import CapsuleError
from elforacle import readelf

SYSTEM_LIBS = ["libz.so.1", "libexpat.so.1", "libGL.so.1", "libLLVM-15.so.1"]


def _as_tuples(lib: LibrarySymbols) -> Counter:
    return Counter((s.name, s.kind, s.size, s.binding, s.version, s.default) for s in lib.symbols)


def _check_against_readelf(path: Path) -> LibrarySymbols:
    lib = read_library(path)
    oracle = readelf(path)
    assert lib.soname == oracle.soname
    assert lib.needed == oracle.needed
    assert [(v.name, v.parents, v.flags) for v in lib.versions] == oracle.versions
    assert _as_tuples(lib) == Counter(oracle.symbols)
    assert lib.elf_class == 64 and lib.machine == "EM_X86_64"
    return lib


@pytest.mark.parametrize("soname", SYSTEM_LIBS)
def test_system_library_matches_readelf(soname: str) -> None:
    lib = _check_against_readelf(system_lib(soname))
    assert lib.symbols


def test_zlib_has_versions_with_parents() -> None:
    lib = read_library(system_lib("libz.so.1"))
    versions = {v.name: v.parents for v in lib.versions}
    assert versions["ZLIB_1.2.0.2"] == ["ZLIB_1.2.0"]
    assert any(s.version is None for s in lib.symbols)  # zlib keeps unversioned ones
    assert not any(s.name.startswith("ZLIB_") for s in lib.symbols)


def test_every_kind_matches_readelf(kinds_lib: Path) -> None:
    lib = _check_against_readelf(kinds_lib)
    by_key = {(s.name, s.version): s for s in lib.symbols}
    assert by_key[("kinds_versioned", "KINDS_1.0")].default is False
    assert by_key[("kinds_versioned", "KINDS_2.0")].default is True
    assert by_key[("kinds_table", "KINDS_1.0")].kind == "object"
    assert by_key[("kinds_tls_big", "KINDS_1.0")].kind == "tls"
    assert by_key[("kinds_tls_big", "KINDS_1.0")].size == 100
    assert by_key[("kinds_ifunc", "KINDS_1.0")].kind == "ifunc"
    assert by_key[("kinds_unique", "KINDS_1.0")].binding == "unique"
    assert by_key[("kinds_weak_data", "KINDS_1.0")].binding == "weak"
    assert by_key[("kinds_notype", "KINDS_1.0")].kind == "notype"
    assert ("kinds_protected", "KINDS_1.0") in by_key
    assert not any(s.name == "kinds_hidden" for s in lib.symbols)
    versions = {v.name: v for v in lib.versions}
    assert versions["KINDS_3.0"].parents == ["KINDS_1.0", "KINDS_2.0"]
    assert versions["KINDS_EMPTY"].flags == 2  # VER_FLG_WEAK


def test_llvm_is_read_fast() -> None:
    if sys.gettrace() is not None:
        pytest.skip("timing means nothing under a tracer (test.sh --coverage, coverage.sh)")
    path = system_lib("libLLVM-15.so.1")
    read_library(path)  # warm the page cache
    start = time.perf_counter()
    lib = read_library(path)
    elapsed = time.perf_counter() - start
    assert len(lib.symbols) > 40000
    assert elapsed < 1.0, f"reading {path} took {elapsed:.2f} s"


def test_machine_names_are_pyelftools_names() -> None:
    """The symbols file's "machine" is the name pyelftools' decoder gives
    e_machine, for the supported architectures (capsule_module.arch) as for
    any other number."""
    from elftools.construct import Container
    from elftools.elf.structs import ELFStructs

    from capsule_module.elfreader import _machine_name
    structs = ELFStructs(little_endian=True, elfclass=64)
    structs.create_basic_structs()
    structs.create_advanced_structs(e_type="ET_DYN")
    for number in range(0, 300):
        header = bytearray(structs.Elf_Ehdr.build(Container(
            e_ident=Container(EI_MAG=[0x7F, 0x45, 0x4C, 0x46], EI_CLASS="ELFCLASS64",
                              EI_DATA="ELFDATA2LSB", EI_VERSION="EV_CURRENT",
                              EI_OSABI="ELFOSABI_SYSV", EI_ABIVERSION=0),
            e_type="ET_DYN", e_machine=0, e_version="EV_CURRENT", e_entry=0, e_phoff=0,
            e_shoff=0, e_flags=0, e_ehsize=64, e_phentsize=56, e_phnum=0, e_shentsize=64,
            e_shnum=0, e_shstrndx=0)))
        header[18:20] = number.to_bytes(2, "little")
        decoded = structs.Elf_Ehdr.parse(bytes(header))["e_machine"]
        expected = decoded if isinstance(decoded, str) else f"EM_{decoded}"
        assert _machine_name(number) == expected, number


def test_unknown_machine_is_named_by_number(tmp_path: Path) -> None:
    lib = read_library(_patched(tmp_path, system_lib("libz.so.1"), {18: struct.pack("<H", 0xBEEF)}))
    assert lib.machine == "EM_48879"


def test_elf32_is_read_with_class_32(lib32: Path) -> None:
    lib = read_library(lib32)
    assert (lib.elf_class, lib.machine, lib.soname) == (32, "EM_386", "libt32.so.1")
    assert {(s.name, s.kind, s.size) for s in lib.symbols} == {("f", "func", 0), ("d", "object", 4)}


# ---- untrusted input: always one CapsuleError naming the file ----

def _expect_error(path: Path, fragment: str) -> None:
    with pytest.raises(CapsuleError) as info:
        read_library(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def _patched(tmp_path: Path, src: Path, patches: dict[int, bytes], size: int | None = None) -> Path:
    data = bytearray(src.read_bytes()[:size] if size is not None else src.read_bytes())
    for off, value in patches.items():
        data[off:off + len(value)] = value
    out = tmp_path / "libbad.so.1"
    out.write_bytes(bytes(data))
    return out


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "libnothere.so.1", "does not exist")


def test_directory(tmp_path: Path) -> None:
    _expect_error(tmp_path, "directory")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "libz.so.1"
    os.mkfifo(fifo)
    _expect_error(fifo, "is not a regular file, so not a library")  # open() would block


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.so").write_bytes(b"")
    _expect_error(tmp_path / "empty.so", "empty")


def test_not_elf(tmp_path: Path) -> None:
    (tmp_path / "libc.so").write_text("/* GNU ld script */\nGROUP ( libc.so.6 )\n")
    _expect_error(tmp_path / "libc.so", "not an ELF file")


@pytest.mark.parametrize("size", [10, 40, 100, 4096, 30000])
def test_truncated(tmp_path: Path, size: int) -> None:
    _expect_error(_patched(tmp_path, system_lib("libz.so.1"), {}, size), "truncated")


def test_bad_class_byte(tmp_path: Path) -> None:
    _expect_error(_patched(tmp_path, system_lib("libz.so.1"), {4: b"\x07"}), "ELF class")


def test_zero_section_header_entry_size(tmp_path: Path) -> None:
    # e_shentsize is at offset 58 in an ELF64 header; pyelftools can loop on 0.
    _expect_error(_patched(tmp_path, system_lib("libz.so.1"), {58: b"\0\0"}),
                  "section header size")


def test_no_section_headers(tmp_path: Path) -> None:
    _expect_error(_patched(tmp_path, system_lib("libz.so.1"), {40: bytes(8)}),
                  "no section headers")


def test_section_headers_past_end(tmp_path: Path) -> None:
    _expect_error(_patched(tmp_path, system_lib("libz.so.1"), {40: struct.pack("<Q", 1 << 40)}),
                  "truncated")


def test_no_soname(tmp_path: Path) -> None:
    src = tmp_path / "a.c"
    src.write_text("int f(void) { return 1; }\n")
    out = tmp_path / "libnosoname.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(out)], check=True)
    _expect_error(out, "has no DT_SONAME")


def test_no_exported_symbols(tmp_path: Path) -> None:
    src = tmp_path / "a.c"
    src.write_text("static int f(void) { return 1; }\nint (*g(void))(void) { return f; }\n")
    out = tmp_path / "libempty.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", str(src),
                    "-Wl,-soname,libempty.so.1", "-o", str(out)], check=True)
    _expect_error(out, "exports no dynamic symbols")


def test_executable_is_refused(tmp_path: Path) -> None:
    exe = shutil.which("true")
    assert exe
    with pytest.raises(CapsuleError) as info:
        read_library(exe)
    assert exe in str(info.value)


def test_corrupted_files_never_escape_as_other_errors(tmp_path: Path) -> None:
    src = system_lib("libz.so.1").read_bytes()
    rng = random.Random(1234)
    shoff = struct.unpack_from("<Q", src, 40)[0]
    regions = [(0, 64), (shoff, len(src) - shoff), (0, 0x1000)]
    out = tmp_path / "libfuzz.so.1"
    for _ in range(300):
        data = bytearray(src)
        start, length = rng.choice(regions)
        for _ in range(rng.randint(1, 8)):
            data[start + rng.randrange(length)] = rng.randrange(256)
        out.write_bytes(bytes(data))
        try:
            read_library(out)
        except CapsuleError as exc:
            assert str(out) in str(exc)


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read anything")
    path = tmp_path / "libz.so.1"
    shutil.copy(system_lib("libz.so.1"), path)
    path.chmod(0)
    _expect_error(path, "cannot be read")


def test_path_through_a_file_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "lib").write_text("")
    _expect_error(tmp_path / "lib" / "libz.so.1", "cannot be read (Not a directory)")
