"""Shim rendering: parity with the real library after a real gcc build,
escaping, rejection of unsupported targets, atomic and lazy writing."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from py_support import HERE, REPO, system_lib

from capsule_module import render
from capsule_module.elfreader import LibrarySymbols, Symbol, VersionDef, read_library
from capsule_module.errors import CapsuleError
from elforacle import Oracle, readelf


def _build_shim(libs: list[LibrarySymbols], out: Path, **kw) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    soname = libs[0].soname
    rendered = render.render_shim(libs, soname=soname, prefix=kw.get("prefix", "/host"),
                                  exclude=kw.get("exclude", []), exports=kw.get("exports", []))
    c_path, map_path = render.write_shim(rendered, out, "shim")
    cmd = ["gcc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
           "-I", str(REPO / "libcapsule/include"), str(c_path),
           f"-Wl,-soname,{soname}", "-Wl,--unresolved-symbols=ignore-all",
           "-o", str(out / soname)]
    if map_path is not None:
        cmd.append(f"-Wl,--version-script,{map_path}")
    subprocess.run(cmd, check=True)
    return out / soname


def _interface(o: Oracle) -> Counter:
    """What callers link against: name, version, @@/@, kind, data size, binding
    (weak stays weak, GNU unique stays unique)."""
    kinds = {"ifunc": "func"}
    return Counter((name, kinds.get(kind, kind), size if kind in ("object", "tls") else None,
                    bind, version, default)
                   for name, kind, size, bind, version, default in o.symbols)


def _assert_parity(real: Path, shim: Path) -> None:
    want, got = readelf(real), readelf(shim)
    assert got.soname == want.soname
    assert _interface(got) == _interface(want)
    assert [(n, p) for n, p, _f in got.versions] == [(n, p) for n, p, _f in want.versions]


@pytest.mark.parametrize("soname", ["libz.so.1", "libexpat.so.1", "libGL.so.1",
                                    "libLLVM-15.so.1"])
def test_shim_parity_with_system_library(soname: str, tmp_path: Path) -> None:
    real = system_lib(soname)
    _assert_parity(real, _build_shim([read_library(real)], tmp_path))


def test_shim_parity_every_kind(kinds_lib: Path, tmp_path: Path) -> None:
    _assert_parity(kinds_lib, _build_shim([read_library(kinds_lib)], tmp_path))


def test_shim_parity_keeps_weak_and_unique_bindings(kinds_lib: Path, tmp_path: Path) -> None:
    shim = {s[0]: s[3] for s in readelf(_build_shim([read_library(kinds_lib)], tmp_path)).symbols}
    assert shim["kinds_weak_func"] == shim["kinds_weak_data"] == "weak"
    assert shim["kinds_unique"] == "unique"  # versioned KINDS_1.0 in the fixture
    assert shim["kinds_func"] == "global"


def test_library_exporting_the_template_names(tmp_path: Path) -> None:
    """Exported names equal to the template's old internal names (shim,
    shim_init, capsule_shim_targets, capsule_stub_0 ...) build and match."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    real = tmp_path / "libclash.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", str(HERE / "fixtures/clash.c"),
                    f"-Wl,--version-script,{HERE / 'fixtures/clash.map'}",
                    "-Wl,-soname,libclash.so.1", "-o", str(real)], check=True)
    names = {s[0] for s in readelf(real).symbols}
    assert {"shim", "shim_init", "capsule_shim_targets", "capsule_stub_0"} <= names
    out = tmp_path / "shim"
    out.mkdir()
    _assert_parity(real, _build_shim([read_library(real)], out))


@pytest.mark.parametrize("name", ["__capsule_shim", "__capsule_stub_0", "__capsule_shim_targets",
                                  "capsule_shim_init", "capsule_shim_preflight",
                                  "capsule_shim_unresolved", "capsule_shim_wait"])
def test_reserved_symbol_names_are_refused(name: str) -> None:
    lib = read_library(system_lib("libexpat.so.1"))
    lib = lib._replace(symbols=[*lib.symbols,
                                            Symbol(name, "func", 0, "global", None, True)])
    with pytest.raises(CapsuleError) as info:
        render.render_shim([lib], soname="libexpat.so.1", prefix="/", exclude=[], exports=[])
    assert str(info.value) == (
        f"library libexpat.so.1 exports a symbol {name!r} whose name is reserved for the "
        "shim itself (names starting with '__capsule_' and libcapsule's entry points)")


def test_shim_table_matches_asm(tmp_path: Path) -> None:
    lib = read_library(system_lib("libz.so.1"))
    r = render.render_shim([lib], soname="libz.so.1", prefix="/host", exclude=[], exports=[])
    assert f"#define __CAPSULE_SHIM_SYMBOL_COUNT {len(lib.symbols)}" in r.c_source
    assert r.c_source.count('"CAPSULE_STUB ') == len(lib.symbols)  # all functions
    assert '    "crc32_z\\0"\n' in r.c_source and '    "ZLIB_1.2.9\\0"\n' in r.c_source
    assert r.c_source.count('    "ZLIB_1.2.9\\0"\n') == 1  # each string once
    assert r.version_script is not None and "ZLIB_1.2.0.2 { } ZLIB_1.2.0;" in r.version_script


def test_share_not_given_leaves_the_default_to_libcapsule() -> None:
    """share None: `.share = NULL`, libcapsule's default list at run time;
    share []: an empty list (no sharing); a list: exactly those."""
    lib = read_library(system_lib("libz.so.1"))
    sources = {repr(share): render.render_shim([lib], soname="libz.so.1", prefix="/host",
                                               exclude=[], exports=[], share=share).c_source
               for share in (None, [], ["libX11.so.6"])}
    assert ".share = NULL," in sources["None"]
    assert ".share = __capsule_shim_share," in sources["[]"]
    assert "__capsule_shim_share[] = { NULL };" in sources["[]"]
    assert '__capsule_shim_share[] = { "libX11.so.6", NULL };' in sources["['libX11.so.6']"]


def _static_bytes(elf: ELFFile, name: str) -> bytes:
    """The file bytes of a local symbol (as built, before any relocation)."""
    sym = next(s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == name)
    section = elf.get_section(sym["st_shndx"])
    start = sym["st_value"] - section["sh_addr"]
    return section.data()[start:start + sym["st_size"]]


def test_compiled_table_is_relocation_free_and_decodes(tmp_path: Path) -> None:
    """The table and its strings, read back from the built shim: every row names
    its symbol by offsets, and no load-time relocation touches them (ABI 3)."""
    lib = read_library(system_lib("libGL.so.1"))
    shim = _build_shim([lib], tmp_path)
    with shim.open("rb") as f:
        elf = ELFFile(f)
        strings = _static_bytes(elf, "__capsule_shim_strings")
        table = _static_bytes(elf, "__capsule_shim_symbols")
        relocs = sum(s.num_relocations() for s in elf.iter_sections()
                     if s["sh_type"] == "SHT_RELA")
    assert strings[:1] == b"\0"

    def text(offset: int) -> str:
        return strings[offset:strings.index(b"\0", offset)].decode()
    rows = list(struct.iter_unpack("<IIIBBxx", table))
    assert rows[-1] == (0, 0, 0, 0, 0) and len(rows) == len(lib.symbols) + 1
    kinds = {"func": 0, "ifunc": 0, "object": 1, "notype": 1, "tls": 2}
    want = [(s.name, s.version or "", 0 if s.kind in ("func", "ifunc") else s.size,
             kinds[s.kind], 0 if s.default else 1) for s in render.merge_symbols([lib])]
    assert [(text(n), text(v), size, k, h) for n, v, size, k, h in rows[:-1]] == want
    # A few pointers (soname, prefix, lists, the shim itself), none per symbol.
    assert relocs < 32, relocs


def test_export_libraries_merge_first_wins(kinds_lib: Path, tmp_path: Path) -> None:
    target = read_library(system_lib("libz.so.1"))
    kinds = read_library(kinds_lib)
    clash = kinds._replace(symbols=[
        *kinds.symbols,
        Symbol("crc32", "object", 4, "global", None, True),          # same name: zlib wins
        Symbol("crc32_z", "func", 0, "global", "ZLIB_1.2.9", True),  # same (name, ver)
    ], versions=[*kinds.versions, VersionDef("ZLIB_1.2.9", [], 0)])
    merged = render.merge_symbols([target, clash])
    assert len(merged) == len(target.symbols) + len(kinds.symbols)
    assert next(s for s in merged if s.name == "crc32").kind == "func"
    shim = _build_shim([target, clash], tmp_path, exports=["libkinds.so.1"])
    names = {(s[0], s[4]) for s in readelf(shim).symbols}
    assert ("kinds_versioned", "KINDS_2.0") in names and ("inflate", None) in names


def test_no_version_script_without_versions(tmp_path: Path) -> None:
    lib = read_library(system_lib("libexpat.so.1"))
    r = render.render_shim([lib], soname=lib.soname, prefix="/", exclude=[], exports=[])
    assert r.version_script is None
    assert render.write_shim(r, tmp_path, "s")[1] is None


@pytest.mark.parametrize("field, value", [("elf_class", 32), ("machine", "EM_AARCH64")])
def test_non_x86_64_target_is_refused(field: str, value: object) -> None:
    lib = read_library(system_lib("libz.so.1"))._replace(**{field: value})
    with pytest.raises(CapsuleError, match=r"libz.so.1 .*only x86_64 ELF64"):
        render.render_shim([lib], soname="libz.so.1", prefix="/", exclude=[], exports=[])


def test_real_elf32_library_is_refused(lib32: Path) -> None:
    with pytest.raises(CapsuleError, match=r"libt32.so.1 is ELF32 for EM_386"):
        render.render_shim([read_library(lib32)], soname="libt32.so.1", prefix="/",
                           exclude=[], exports=[])


@pytest.mark.parametrize("name", ['a"b', "a\\b", "a b", "a@b", "caf\u00e9", "a\nb"])
def test_unwritable_symbol_names_are_refused(name: str) -> None:
    lib = read_library(system_lib("libexpat.so.1"))
    lib = lib._replace(symbols=[Symbol(name, "func", 0, "global", None, True)])
    with pytest.raises(CapsuleError, match=r"libexpat.so.1 exports a symbol"):
        render.render_shim([lib], soname="libexpat.so.1", prefix="/", exclude=[], exports=[])


def test_unwritable_version_name_is_refused() -> None:
    lib = read_library(system_lib("libz.so.1"))
    lib = lib._replace(versions=[VersionDef("V 1;", [], 0)])
    with pytest.raises(CapsuleError, match=r"version name"):
        render.render_shim([lib], soname="libz.so.1", prefix="/", exclude=[], exports=[])


def test_c_strings_survive_the_compiler(tmp_path: Path) -> None:
    texts = ['plain', 'quote " and \\ backslash', "new\nline\ttab", "??=trigraph??/",
             "caf\u00e9 \u2603", "octal\0017 digits 1234", "/weird */ prefix"]
    src = tmp_path / "t.c"
    src.write_text("#include <stdio.h>\nint main(void) {\n" + "".join(
        f"    fputs({render.c_string(t)}, stdout); putchar(0);\n" for t in texts) + "}\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-trigraphs",
                    str(src), "-o", str(tmp_path / "t")], check=True)
    out = subprocess.run([str(tmp_path / "t")], check=True, capture_output=True).stdout
    # "\0" inside a string ends fputs early: compare up to the first NUL of each text.
    assert out.split(b"\0")[:-1] == [t.split("\0")[0].encode() for t in texts]


def test_strange_soname_prefix_and_lists_compile(tmp_path: Path) -> None:
    lib = read_library(system_lib("libexpat.so.1"))
    rendered = render.render_shim([lib], soname='lib"x*/.so.1', prefix='/a "b"\\c\n??=',
                                  exclude=["libq\"uote.so"], exports=["libe*/x.so"],
                                  share=["libs\"hare*/.so"])
    assert '__capsule_shim_share[] = { "libs\\"hare*/.so", NULL };' in rendered.c_source
    src = tmp_path / "s.c"
    src.write_text(rendered.c_source)
    subprocess.run(["gcc", "-c", "-fPIC", "-Wall", "-Wextra", "-Werror", "-trigraphs",
                    "-I", str(REPO / "libcapsule/include"), str(src), "-o",
                    str(tmp_path / "s.o")], check=True)


def test_write_shim_is_atomic_and_lazy(tmp_path: Path) -> None:
    lib = read_library(system_lib("libz.so.1"))
    r = render.render_shim([lib], soname="libz.so.1", prefix="/", exclude=[], exports=[])
    out = tmp_path / "out"
    c_path, map_path = render.write_shim(r, out, "libz_shim")
    assert map_path is not None
    assert c_path.read_text() == r.c_source and map_path.read_text() == r.version_script
    old = os.stat(c_path).st_mtime_ns, os.stat(c_path).st_ino
    os.utime(c_path, ns=(1, 1))
    render.write_shim(r, out, "libz_shim")
    assert os.stat(c_path).st_mtime_ns == 1  # unchanged content: not rewritten
    r2 = render.render_shim([lib], soname="libz.so.1", prefix="/other", exclude=[], exports=[])
    render.write_shim(r2, out, "libz_shim")
    assert c_path.read_text() == r2.c_source and os.stat(c_path).st_ino != old[1]
    assert sorted(p.name for p in out.iterdir()) == ["libz_shim.c", "libz_shim.map"]
    assert oct(c_path.stat().st_mode & 0o777) != oct(0o600)


def test_write_shim_error_is_a_capsule_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = render.RenderedShim("x", None)
    with pytest.raises(CapsuleError, match=r"cannot write"):
        render.write_shim(r, blocker / "sub", "s")


def test_render_needs_a_target_and_a_soname() -> None:
    lib = read_library(system_lib("libz.so.1"))
    with pytest.raises(CapsuleError, match=r"^no target library given"):
        render.render_shim([], soname="libz.so.1", prefix="/", exclude=[], exports=[])
    with pytest.raises(CapsuleError, match=r"^empty soname given for the shim$"):
        render.render_shim([lib], soname="", prefix="/", exclude=[], exports=[])


def test_hidden_version_exported_by_two_libraries_appears_once() -> None:
    hidden = Symbol("f", "func", 0, "global", "V1", False)
    libs = [LibrarySymbols(f"lib{n}.so.1", 64, "EM_X86_64", [], [VersionDef("V1")],
                           [hidden, Symbol(f"only_{n}", "func", 0, "global", None, True)])
            for n in "ab"]
    merged = render.merge_symbols(libs)
    assert [(s.name, s.version) for s in merged] == [("f", "V1"), ("only_a", None),
                                                     ("only_b", None)]


def test_unknown_template_placeholder_is_named() -> None:
    assert render.fill_template("a @X@ b", {"X": "1"}, "t.in") == "a 1 b"
    with pytest.raises(CapsuleError, match=r"^template t.in has an unknown placeholder @Y@$"):
        render.fill_template("@X@ @Y@", {"X": "1"}, "t.in")


def test_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "s.c"
    target.mkdir()  # a directory where the file goes: the final rename fails
    (target / "keep").write_text("")
    with pytest.raises(CapsuleError, match=r"cannot write .*s\.c"):
        render.write_if_changed(target, "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.c"]


@pytest.mark.parametrize("lines", [
    ["  .globl \"f\"", "x??=y", "back\\slash", "plain"],               # the one-pass path
    ["caf\u00e9", "tab\there", "nul\0byte", "\udcff", "?", ""],         # per line: not printable
    ["two\nlines", "one"],                                                # per line: a newline inside
])
def test_literals_in_one_pass_equal_c_string_per_line(lines: list[str]) -> None:
    """The renderer escapes 290k lines at once; each literal must be exactly
    what c_string gives for that line, ended by the newline or NUL escape."""
    for end in ("\\n", "\\0"):
        expected = "\n".join(f"  {render.c_string(line)[:-1]}{end}\"" for line in lines)
        assert render._c_string_lines(lines, "  ", end) == expected
