"""Fuzz elfreader.read_library: on any file, a correct result or one
CapsuleError naming the file; never another exception, never a hang.

Inputs are real small libraries mutated three ways: structured (every ELF
header, section header, dynamic, dynsym, verdef and versym field set to a
boundary value), raw (byte patches and truncation), and bytes the reader never
needs (which must not change the result). Short in CI; CAPSULE_FUZZ_LONG=1
runs 20,000 examples per test (CAPSULE_FUZZ_EXAMPLES to change)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from fuzz_support import FUZZ, Field, Hang, SeedMap, check_result, put, time_limit
from hypothesis import given
from hypothesis import strategies as st

from capsule_module import symbolsfile
from capsule_module.elfreader import read_library
from capsule_module.errors import CapsuleError
from capsule_module.render import render_shim

SEEDS = ("libz", "kinds", "elf32")


def _boundaries(f: Field, original: int, file_size: int) -> st.SearchStrategy[int]:
    top = (1 << (8 * f.size)) - 1
    special = [0, 1, 2, 3, 4, 8, 16, 20, 24, 40, 64, 0x7F, 0x80, 0xFF, 0xFFFF,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 63, top, top - 1,
               original + 1, original - 1, original * 2, file_size - 1, file_size,
               file_size + 1, 0xFFF1, 0xFFFF, 0x8000, 0x8001]
    return st.one_of(st.sampled_from([v & top for v in special]), st.integers(0, top))


class Mutant(bytes):
    """Mutated file contents whose repr is the list of mutations, not the bytes."""

    steps: list[str]

    def __repr__(self) -> str:
        return f"Mutant({len(self)} bytes: {'; '.join(self.steps)})"


@st.composite
def mutated(draw: st.DrawFn, seed: SeedMap) -> Mutant:
    data, steps = bytearray(seed.data), []
    order = "little" if seed.endian == "<" else "big"
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(("field", "field", "field", "copy", "byte", "truncate")))
        if how == "field":
            f = draw(st.sampled_from(seed.fields))
            original = int.from_bytes(seed.data[f.offset:f.offset + f.size], order)
            value = draw(_boundaries(f, original, len(seed.data)))
            put(data, f, value, seed.endian)
            steps.append(f"{f.name}={value:#x}")
        elif how == "copy":  # one field's value into another: links, offsets, sizes
            src, dst = draw(st.sampled_from(seed.fields)), draw(st.sampled_from(seed.fields))
            value = int.from_bytes(data[src.offset:src.offset + src.size] or b"\0", order)
            put(data, dst, value, seed.endian)
            steps.append(f"{dst.name}={src.name}")
        elif how == "byte":
            at, byte = draw(st.integers(0, len(seed.data) - 1)), draw(st.integers(0, 255))
            if at < len(data):
                data[at] = byte
                steps.append(f"byte[{at:#x}]={byte:#x}")
        elif len(data) > 1:
            size = draw(st.integers(1, len(data) - 1))
            del data[size:]
            steps.append(f"truncate {size:#x}")
    out = Mutant(data)
    out.steps = steps
    return out


def _read(tmp: Path, data: bytes) -> object:
    """read_library on data: the LibrarySymbols or the CapsuleError."""
    path = tmp / "libfuzz.so.1"
    path.write_bytes(data)
    try:
        with time_limit():
            lib = read_library(path)
    except CapsuleError as exc:
        text = str(exc)
        assert text.startswith(f"{path}: ") and "\n" not in text, text
        return exc
    except Hang:
        pytest.fail(f"read_library hung on an input (kept at {path})")
    check_result(lib)
    # What the reader returns, the symbols file and the renderer must take.
    assert symbolsfile.loads(symbolsfile.dump(lib), "fuzz") == lib
    with contextlib.suppress(CapsuleError):
        render_shim([lib], soname=lib.soname, prefix="/host", exclude=[], exports=[])
    return lib


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-elf")


@pytest.mark.parametrize("name", SEEDS)
def test_seed_is_read(seeds: dict[str, SeedMap], tmp: Path, name: str) -> None:
    if name not in seeds:
        pytest.skip(f"no {name} seed on this machine")
    lib = _read(tmp, seeds[name].data)
    assert not isinstance(lib, CapsuleError), lib


@pytest.mark.parametrize("name", SEEDS)
def test_mutated_library(seeds: dict[str, SeedMap], tmp: Path, name: str) -> None:
    if name not in seeds:
        pytest.skip(f"no {name} seed on this machine")

    @FUZZ
    @given(data=mutated(seeds[name]))
    def run(data: bytes) -> None:
        _read(tmp, data)

    run()


@pytest.mark.parametrize("name", ("libz", "kinds"))
def test_unread_bytes_change_nothing(seeds: dict[str, SeedMap], tmp: Path, name: str) -> None:
    seed = seeds[name]
    expected = _read(tmp, seed.data)

    @FUZZ
    @given(st.data())
    def run(draw: st.DataObject) -> None:
        data = bytearray(seed.data)
        for _ in range(draw.draw(st.integers(1, 16))):
            off, size = draw.draw(st.sampled_from(seed.unread))
            data[off + draw.draw(st.integers(0, size - 1))] = draw.draw(st.integers(0, 255))
        assert _read(tmp, bytes(data)) == expected

    run()


# ---- the header mutations known to break ELF readers, each by name ----

def _field(seed: SeedMap, suffix: str, section_type: int | None = None) -> Field:
    for f in seed.fields:
        if f.name.endswith(suffix) and (section_type is None or f":{section_type:#x}]" in f.name):
            return f
    raise LookupError(suffix)


_SHT = {"dynsym": 11, "dynamic": 6, "strtab": 3, "verdef": 0x6FFFFFFD, "versym": 0x6FFFFFFF}
_NAMED: dict[str, list[tuple[str, str | None, int | str]]] = {
    "e_shentsize_zero": [("e_shentsize", None, 0)],
    "e_shentsize_one": [("e_shentsize", None, 1)],
    "e_shnum_huge": [("e_shnum", None, 0xFFFF)],
    "e_shnum_zero": [("e_shnum", None, 0)],
    "e_shnum_zero_sh0_size_huge": [("e_shnum", None, 0), ("shdr[0:0x0].sh_size", None, 1 << 62)],
    "e_shoff_past_eof": [("e_shoff", None, "size")],
    "e_shoff_last_byte": [("e_shoff", None, "size-1")],
    "e_shoff_huge": [("e_shoff", None, (1 << 64) - 1)],
    "e_shstrndx_xindex": [("e_shstrndx", None, 0xFFFF)],
    "e_shstrndx_out_of_range": [("e_shstrndx", None, 0xFFFE)],
    "dynsym_links_itself": [("sh_link", "dynsym", "self")],
    "dynsym_links_null": [("sh_link", "dynsym", 0)],
    "dynsym_links_huge": [("sh_link", "dynsym", 0xFFFFFFFF)],
    "verdef_links_itself": [("sh_link", "verdef", "self")],
    "versym_links_itself": [("sh_link", "versym", "self")],
    "dynamic_links_itself": [("sh_link", "dynamic", "self")],
    "dynsym_size_huge": [("sh_size", "dynsym", (1 << 64) - 1)],
    "dynsym_offset_huge": [("sh_offset", "dynsym", 1 << 63)],
    "dynamic_size_huge": [("sh_size", "dynamic", 1 << 40)],
    "verdef_size_huge": [("sh_size", "verdef", 1 << 40)],
    "versym_size_zero": [("sh_size", "versym", 0)],
    "versym_size_huge": [("sh_size", "versym", 1 << 40)],
    "dynsym_entsize_zero": [("sh_entsize", "dynsym", 0)],
    "dynsym_entsize_one": [("sh_entsize", "dynsym", 1)],
    "dynsym_type_nobits": [("sh_type", "dynsym", 8)],
    "dynsym_type_progbits": [("sh_type", "dynsym", 1), ("sh_type", "versym", 1)],
    "dynamic_links_null": [("sh_link", "dynamic", 0)],
    "dynamic_type_nobits": [("sh_type", "dynamic", 8)],
    "verdef_count_huge": [("sh_info", "verdef", 0xFFFFFFFF)],
    "verdef_next_zero_count_huge": [("verdef[0].vd_next", None, 0), ("sh_info", "verdef", 99)],
    "verdef_aux_past_end": [("verdef[1].vd_aux", None, 0xFFFFFFF0)],
    "verdef_aux_count_huge": [("verdef[1].vd_cnt", None, 0xFFFF)],
    "verdef_next_past_end": [("verdef[1].vd_next", None, 0x7FFFFFFF)],
    "verdef_index_duplicate": [("verdef[2].vd_ndx", None, 2)],
    "verdef_index_huge": [("verdef[1].vd_ndx", None, 0x7FFF)],
    "verdef_name_empty": [("verdef[1].aux[0].vda_name", None, 0)],
    "verdef_name_past_strtab": [("verdef[1].aux[0].vda_name", None, 0xFFFFFFFF)],
    "versym_undefined_index": [("versym", "exported", 0x7FF0)],
    "versym_hidden_base": [("versym", "exported", 0x8001)],
    "dynsym_name_past_strtab": [("st_name", "exported", 0xFFFFFFFF)],
    "dynsym_name_empty": [("st_name", "exported", 0)],
    "dynsym_name_in_middle": [("st_name", "exported", 1)],
    "soname_past_strtab": [("d_val", "soname", 0xFFFFFFFF)],
    "soname_empty": [("d_val", "soname", 0)],
    "needed_empty": [("d_val", "needed", 0)],
}


def _apply(seed: SeedMap, steps: list[tuple[str, str | None, int | str]]) -> bytes:
    data = bytearray(seed.data)
    for suffix, where, value in steps:
        f = _locate(seed, suffix, where)
        index = int(f.name.split("[")[1].split(":")[0]) if f.name.startswith("shdr") else 0
        number = {"size": len(data), "size-1": len(data) - 1, "self": index}.get(str(value), value)
        put(data, f, int(number), seed.endian)
    return bytes(data)


def _locate(seed: SeedMap, suffix: str, where: str | None) -> Field:
    if where in _SHT:
        return _field(seed, suffix, _SHT[where])
    if where in ("soname", "needed"):  # the dynamic entry with that tag
        tag = 14 if where == "soname" else 1
        word = 8 if seed.data[4] == 2 else 4
        for f in seed.fields:
            if f.name.endswith(".d_tag") and int.from_bytes(
                    seed.data[f.offset:f.offset + word], "little") == tag:
                return next(g for g in seed.fields if g.offset == f.offset + word)
        raise LookupError(where)
    if where == "exported":  # of the first defined global symbol
        for f in seed.fields:
            if f.name.startswith("dynsym[") and f.name.endswith(".st_shndx") and \
                    int.from_bytes(seed.data[f.offset:f.offset + 2], "little") not in (0, 0xFFF1):
                index = f.name[len("dynsym["):f.name.index("]")]
                if suffix == "versym":
                    return _field(seed, f"versym[{index}]")
                return _field(seed, f"dynsym[{index}].{suffix}")
        raise LookupError(where)
    return _field(seed, suffix)


@pytest.mark.parametrize("case", sorted(_NAMED))
@pytest.mark.parametrize("name", ("libz", "kinds"))
def test_named_mutation(seeds: dict[str, SeedMap], tmp: Path, name: str, case: str) -> None:
    try:
        data = _apply(seeds[name], _NAMED[case])
    except LookupError:
        pytest.skip(f"the {name} seed has no such field")
    _read(tmp, data)


def test_shentsize_zero_is_refused_before_pyelftools(seeds: dict[str, SeedMap], tmp: Path) -> None:
    # pyelftools itself loops forever here (its section iterator steps by 0).
    result = _read(tmp, _apply(seeds["libz"], _NAMED["e_shentsize_zero"]))
    assert isinstance(result, CapsuleError) and "section header size 0" in str(result)


def test_sh_link_loop_is_an_error(seeds: dict[str, SeedMap], tmp: Path) -> None:
    for case, problem in (
            ("verdef_links_itself", "bad string table link for the version definitions"),
            ("dynsym_links_itself", "bad string table link for the dynamic symbol table"),
            ("versym_links_itself", "bad symbol table link for the version symbol table")):
        result = _read(tmp, _apply(seeds["kinds"], _NAMED[case]))
        assert isinstance(result, CapsuleError) and problem in str(result), (case, result)


def test_dynsym_entsize_zero_is_an_error(seeds: dict[str, SeedMap], tmp: Path) -> None:
    result = _read(tmp, _apply(seeds["libz"], _NAMED["dynsym_entsize_zero"]))
    assert isinstance(result, CapsuleError) and "entry size" in str(result)


@pytest.mark.parametrize(("case", "problem"), [
    ("e_shnum_zero", "has no sections"),  # and section 0 says none either
    ("e_shnum_zero_sh0_size_huge", "section headers past the end of the file"),
    ("e_shstrndx_out_of_range", "bad section name table index 65534"),
    ("dynamic_links_null", "has a bad string table link for the dynamic section"),
    ("dynamic_type_nobits", "has no dynamic section (not a shared library)"),
    ("versym_size_zero", "version symbol table shorter than its symbol table"),
    ("verdef_aux_past_end", "truncated version definition table"),
    ("versym_undefined_index", "has version index 32752, which is not defined"),
    ("dynsym_name_past_strtab", "bad string offset 4294967295 for dynamic symbol"),
])
def test_each_problem_is_named(seeds: dict[str, SeedMap], tmp: Path, case: str,
                               problem: str) -> None:
    result = _read(tmp, _apply(seeds["libz"], _NAMED[case]))
    assert isinstance(result, CapsuleError) and problem in str(result), result


@pytest.mark.parametrize("name", ("libz", "kinds"))
@pytest.mark.parametrize(("case", "what"), [("needed_empty", "DT_NEEDED"),
                                            ("soname_empty", "DT_SONAME"),
                                            ("dynsym_name_empty", "dynamic symbol"),
                                            ("verdef_name_empty", "a version definition")])
def test_empty_names_are_refused(seeds: dict[str, SeedMap], tmp: Path, name: str, case: str,
                                 what: str) -> None:
    # Found by the fuzzer: an empty DT_NEEDED, symbol or version name was
    # returned, and the symbols file (rightly) refused what the reader wrote.
    try:
        data = _apply(seeds[name], _NAMED[case])
    except LookupError:
        pytest.skip(f"the {name} seed has no such field")
    result = _read(tmp, data)
    assert isinstance(result, CapsuleError), result
    assert f"has an empty name for {what}" in str(result)


def test_all_named_cases_resolve_on_libz(seeds: dict[str, SeedMap]) -> None:
    """Guard against the table above silently skipping: libz has them all."""
    missing = []
    for case, steps in _NAMED.items():
        try:
            _apply(seeds["libz"], steps)
        except LookupError:
            missing.append(case)
    assert missing == [], missing
