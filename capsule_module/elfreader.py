"""Read a shared library's exported dynamic symbols and version definitions.

The ELF header and the section headers are decoded with struct, the symbol,
string and version tables in bulk from the section bytes: pyelftools'
per-symbol objects are ~30x slower on big libraries (libLLVM), and merely
importing it costs `capsule-shim symbols` more than reading libLLVM's
header. Input is untrusted: the header fields are checked first, every
table is bounds-checked, and every failure becomes one CapsuleError naming
the file.
"""

from __future__ import annotations

import array
import contextlib
import functools
import gc
import itertools
import mmap
import operator
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from .arch import ARCHES
from .errors import CapsuleError

SymbolKind = str  # 'func' | 'object' | 'tls' | 'ifunc' | 'notype'
Binding = str  # 'global' | 'weak' | 'unique'


# The records below are named tuples, not dataclasses: `capsule-shim symbols`
# imports this module, and importing dataclasses (inspect, ast, dis ...) and
# decorating a class with it cost more start-up than reading libLLVM's header.

class _VersionDef(NamedTuple):
    name: str
    parents: list[str]
    flags: int


class VersionDef(_VersionDef):
    """A version definition: its name, parents (a fresh list unless given) and flags."""

    __slots__ = ()

    def __new__(cls, name: str, parents: list[str] | None = None, flags: int = 0) -> VersionDef:
        return super().__new__(cls, name, [] if parents is None else parents, flags)


class Symbol(NamedTuple):
    """One exported symbol (a named tuple: libLLVM has 46k of them, and a
    tuple is built several times faster than a frozen dataclass)."""

    name: str
    kind: SymbolKind
    size: int
    binding: Binding
    version: str | None
    default: bool  # False: name@VERSION (hidden); True: name@@VERSION or unversioned


class LibrarySymbols(NamedTuple):
    soname: str
    elf_class: int
    machine: str
    needed: list[str]
    versions: list[VersionDef]
    symbols: list[Symbol]

    def symbol_columns(self) -> SymbolColumns:
        """The symbols as columns (what symbolsfile.dump writes)."""
        return SymbolColumns(*zip(*self.symbols, strict=True)) if self.symbols \
            else SymbolColumns((), (), (), (), (), ())


class SymbolColumns(NamedTuple):
    """Exported symbols as one sequence per field of Symbol, in symbol table
    order: how the reader builds them and the symbols file writes them, so
    that `capsule-shim symbols` never builds a tuple per symbol only to take
    it apart again (46k of them for libLLVM)."""

    name: Sequence[str]
    kind: Sequence[SymbolKind]
    size: Sequence[int]
    binding: Sequence[Binding]
    version: Sequence[str | None]
    default: Sequence[bool]

    def symbols(self) -> list[Symbol]:
        return list(map(functools.partial(tuple.__new__, Symbol), zip(*self, strict=True)))


class LibraryColumns(NamedTuple):
    """A LibrarySymbols with its symbols as columns (see SymbolColumns)."""

    soname: str
    elf_class: int
    machine: str
    needed: list[str]
    versions: list[VersionDef]
    columns: SymbolColumns

    def symbol_columns(self) -> SymbolColumns:
        return self.columns

    def library(self) -> LibrarySymbols:
        """The same library with a Symbol per symbol."""
        with without_gc():
            return LibrarySymbols(self.soname, self.elf_class, self.machine, self.needed,
                                  self.versions, self.columns.symbols())


KINDS = ("func", "object", "tls", "ifunc", "notype")
BINDINGS = ("global", "weak", "unique")

_TYPE_KIND = {0: "notype", 1: "object", 2: "func", 5: "object", 6: "tls", 10: "ifunc"}
_BIND_NAME = {1: "global", 2: "weak", 10: "unique"}
_EXPORTED_VISIBILITY = (0, 3)  # STV_DEFAULT, STV_PROTECTED
_SHN_UNDEF = 0
_SHN_ABS = 0xFFF1
_SHN_XINDEX = 0xFFFF
_VER_FLG_BASE = 1
_VERSYM_HIDDEN = 0x8000
_LINKER_MADE = frozenset({"_init", "_fini", "_edata", "_end", "__bss_start"})
_DT_NULL, _DT_NEEDED, _DT_SONAME = 0, 1, 14
_SHT_STRTAB, _SHT_DYNAMIC, _SHT_NOBITS, _SHT_DYNSYM = 3, 6, 8, 11
_SHT_GNU_VERDEF, _SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFF
_ET_DYN = 3
_T = TypeVar("_T")
_NATIVE = "<" if sys.byteorder == "little" else ">"
# array typecodes of unsigned 1, 2, 4 and 8 bytes on this machine.
_TYPECODES = {want: next(c for c in "BHILQ" if array.array(c).itemsize == size)
              for want, size in (("B", 1), ("H", 2), ("I", 4), ("Q", 8))}

# Per ELF class: ELF header tail after e_ident, section header, symbol, dynamic entry.
_LAYOUT = {
    1: {"ehdr": "HHIIIIIHHHHHH", "shdr": "IIIIIIIIII", "sym": "IIIBBH", "dyn": "iI"},
    2: {"ehdr": "HHIQQQIHHHHHH", "shdr": "IIQQQQIIQQ", "sym": "IBBHQQ", "dyn": "qQ"},
}


def _fail(path: Path, problem: str) -> CapsuleError:
    return CapsuleError(f"{path}: {problem}")


class ElfHeader(NamedTuple):
    elf_class: int
    endian: str  # '<' or '>'
    e_type: int
    e_machine: int
    e_shoff: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


def read_header(path: Path, data: bytes | mmap.mmap) -> ElfHeader:
    """Decode and sanity-check the ELF header."""
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise _fail(path, "is not an ELF file")
    elf_class, ei_data = data[4], data[5]
    if elf_class not in _LAYOUT:
        raise _fail(path, f"has an unknown ELF class {elf_class}")
    if ei_data not in (1, 2):
        raise _fail(path, f"has an unknown ELF data encoding {ei_data}")
    endian = "<" if ei_data == 1 else ">"
    fmt = endian + _LAYOUT[elf_class]["ehdr"]
    if len(data) < 16 + struct.calcsize(fmt):
        raise _fail(path, "is truncated (incomplete ELF header)")
    (e_type, e_machine, _ver, _entry, _phoff, e_shoff, _flags, _ehsize, _phentsize,
     _phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from(fmt, data, 16)
    return ElfHeader(elf_class, endian, e_type, e_machine, e_shoff, e_shentsize,
                     e_shnum, e_shstrndx)


def _check_section_headers(path: Path, hdr: ElfHeader, size: int,
                           data: bytes | mmap.mmap) -> int:
    """The number of sections, once the section headers are checked."""
    if hdr.e_shoff == 0:
        raise _fail(path, "has no section headers (reading ELF files without "
                          "section headers is not supported)")
    want = struct.calcsize(hdr.endian + _LAYOUT[hdr.elf_class]["shdr"])
    if hdr.e_shentsize != want:
        raise _fail(path, f"has a bad section header size {hdr.e_shentsize} "
                          f"(expected {want})")
    if hdr.e_shoff + want > size:
        raise _fail(path, "is truncated (section headers past the end of the file)")
    shnum, shstrndx = hdr.e_shnum, hdr.e_shstrndx
    if shnum == 0 or shstrndx == _SHN_XINDEX:  # extended numbering: section 0 holds them
        sh0 = struct.unpack_from(hdr.endian + _LAYOUT[hdr.elf_class]["shdr"], data,
                                 hdr.e_shoff)
        shnum = shnum or sh0[5]
        shstrndx = sh0[6] if shstrndx == _SHN_XINDEX else shstrndx
    if shnum == 0:
        raise _fail(path, "has no sections")
    if hdr.e_shoff + shnum * want > size:
        raise _fail(path, "is truncated (section headers past the end of the file)")
    if shstrndx >= shnum:
        raise _fail(path, f"has a bad section name table index {shstrndx}")
    return shnum


class _Shdr(NamedTuple):
    """One section header (Elf32_Shdr / Elf64_Shdr), in the file's order."""

    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


class _Reader:
    """The tables of one mapped file, bounds-checked."""

    def __init__(self, path: Path, data: bytes | mmap.mmap, hdr: ElfHeader,
                 shnum: int) -> None:
        self.path, self.data, self.hdr = path, data, hdr
        self.layout = _LAYOUT[hdr.elf_class]
        table = data[hdr.e_shoff:hdr.e_shoff + shnum * hdr.e_shentsize]  # in the file: checked
        self.sections = list(map(_Shdr._make, struct.iter_unpack(
            hdr.endian + self.layout["shdr"], table)))

    def section_of_type(self, sh_type: int) -> _Shdr | None:
        for sh in self.sections:
            if sh.type == sh_type:
                return sh
        return None

    def section_bytes(self, sh: _Shdr, what: str) -> bytes:
        off, size = sh.offset, sh.size
        if sh.type == _SHT_NOBITS or off + size > len(self.data):
            raise _fail(self.path, f"is truncated ({what} past the end of the file)")
        return self.data[off:off + size]

    def linked_strtab(self, sh: _Shdr, what: str) -> bytes:
        link = sh.link
        if not 0 < link < len(self.sections) or self.sections[link].type != _SHT_STRTAB:
            raise _fail(self.path, f"has a bad string table link for {what}")
        return self.section_bytes(self.sections[link], "string table")


def _string(path: Path, strtab: bytes, offset: int, what: str) -> str:
    """A non-empty name from a string table (every name the reader takes
    must be non-empty: a symbol, a version, a soname)."""
    end = strtab.find(b"\0", offset)
    if offset >= len(strtab) or end < 0:
        raise _fail(path, f"has a bad string offset {offset} for {what}")
    if end == offset:
        raise _fail(path, f"has an empty name for {what}")
    return strtab[offset:end].decode("utf-8", "surrogateescape")


class _Strings:
    """A string table split once into its NUL-terminated strings, in table
    order, with the offset -> string map of the non-empty ones: a name at
    another offset (into the middle of a string: a shared suffix, or bad) is
    looked up on its own. Scans for a few strings go over the strings in
    table order (in memory order), not over the names in symbol order."""

    def __init__(self, strtab: bytes) -> None:
        self.strtab = strtab
        if strtab.isascii():
            parts: list[str] = strtab.decode("ascii").split("\0")
            lengths: Iterator[int] = map(len, parts)
        else:
            raw_parts = strtab.split(b"\0")
            parts = [p.decode("utf-8", "surrogateescape") for p in raw_parts]
            lengths = map(len, raw_parts)
        # The k-th string starts after the k strings before it and their k NULs.
        self.starts = list(map(operator.add, itertools.accumulate(lengths, initial=0),
                               itertools.count()))
        self.parts = parts[:-1]  # the last part has no NUL
        self.at = dict(zip(self.starts, self.parts, strict=False))
        for k in _positions(self.parts, ("",)):
            del self.at[self.starts[k]]

    def names(self, offsets: Sequence[int]) -> tuple[list[str | None], list[int]]:
        """The name at each offset (None where _string would raise), and the
        positions of those not at the start of a non-empty string."""
        with contextlib.suppress(KeyError):
            return list(map(self.at.__getitem__, offsets)), []
        names: list[str | None] = list(map(self.at.get, offsets))
        odd = _positions(names, (None,))
        for k in odd:
            names[k] = _name_or_none(self.strtab, offsets[k])
        return names, odd

    def starts_of(self, wanted: Iterable[str]) -> set[int]:
        """The offsets of the strings equal to one of wanted, among those
        that start after a NUL (a shared suffix is not found here)."""
        return {self.starts[k] for k in _positions(self.parts, wanted)}


def _name_or_none(strtab: bytes, offset: int) -> str | None:
    """_string's result, or None where _string would raise."""
    end = strtab.find(b"\0", offset)
    if offset >= len(strtab) or end <= offset:
        return None
    return strtab[offset:end].decode("utf-8", "surrogateescape")


def _read_dynamic(r: _Reader) -> tuple[str | None, list[str]]:
    sh = r.section_of_type(_SHT_DYNAMIC)
    if sh is None:
        raise _fail(r.path, "has no dynamic section (not a shared library)")
    fmt = r.hdr.endian + r.layout["dyn"]
    raw = r.section_bytes(sh, "dynamic section")
    raw = raw[: len(raw) - len(raw) % struct.calcsize(fmt)]
    strtab = r.linked_strtab(sh, "the dynamic section")
    soname, needed = None, []
    for tag, val in struct.iter_unpack(fmt, raw):
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed.append(_string(r.path, strtab, val, "DT_NEEDED"))
        elif tag == _DT_SONAME:
            soname = _string(r.path, strtab, val, "DT_SONAME")
    return soname, needed


def _read_verdefs(r: _Reader) -> dict[int, tuple[str, list[str], int]]:
    """Version index -> (name, parents, flags), base definition included."""
    sh = r.section_of_type(_SHT_GNU_VERDEF)
    if sh is None:
        return {}
    raw = r.section_bytes(sh, "version definitions")
    strtab = r.linked_strtab(sh, "the version definitions")
    e = r.hdr.endian
    defs: dict[int, tuple[str, list[str], int]] = {}
    off = 0
    for _ in range(min(sh.info or 0x10000, 0x10000)):
        if off + 20 > len(raw):
            raise _fail(r.path, "has a truncated version definition table")
        _rev, flags, ndx, cnt, _hash, aux, nxt = struct.unpack_from(e + "HHHHIII", raw, off)
        names = _read_verdaux(r, raw, strtab, off + aux, cnt)
        defs[ndx] = (names[0], names[1:], flags)
        if nxt == 0:
            break
        off += nxt
    return defs


def _read_verdaux(r: _Reader, raw: bytes, strtab: bytes, off: int, cnt: int) -> list[str]:
    names = []
    for _ in range(max(cnt, 1)):
        if off + 8 > len(raw):
            raise _fail(r.path, "has a truncated version definition table")
        name, nxt = struct.unpack_from(r.hdr.endian + "II", raw, off)
        names.append(_string(r.path, strtab, name, "a version definition"))
        if nxt == 0:
            break
        off += nxt
    return names


def _versym_list(r: _Reader, dynsym: _Shdr, count: int) -> array.array[int] | None:
    sh = r.section_of_type(_SHT_GNU_VERSYM)
    if sh is None:
        return None
    link = sh.link
    if not 0 < link < len(r.sections) or r.sections[link] is not dynsym:
        raise _fail(r.path, "has a bad symbol table link for the version symbol table")
    raw = r.section_bytes(sh, "version symbol table")
    if len(raw) < 2 * count:
        raise _fail(r.path, "has a version symbol table shorter than its symbol table")
    return _column(raw[: 2 * count], "H", r.hdr.endian, 0, 1)


def _column(raw: bytes, typecode: str, endian: str, first: int,
            step: int) -> array.array[int]:
    """Every step-th item, from item `first`, of raw read as an array of
    unsigned `typecode` integers ('B', 'H', 'I', 'Q') in the file's byte order:
    one field of every entry of a table, decoded in C, not per entry (and
    kept an array: an int object is made only for an item picked)."""
    table = array.array(_TYPECODES[typecode], raw)
    if endian != _NATIVE and table.itemsize > 1:
        table.byteswap()
    return table[first::step]


class _SymbolColumns(NamedTuple):
    """One field of every symbol entry; st_shndx also as its two bytes."""

    name: array.array[int]
    info: bytes
    other: bytes
    shndx: array.array[int]
    shndx_bytes: tuple[bytes, bytes]
    size: array.array[int]


def _symbol_columns(raw: bytes, elf_class: int, endian: str) -> _SymbolColumns:
    if elf_class == 2:  # name I, info B, other B, shndx H, value Q, size Q: 24 bytes
        return _SymbolColumns(_column(raw, "I", endian, 0, 6), raw[4::24], raw[5::24],
                              _column(raw, "H", endian, 3, 12), (raw[6::24], raw[7::24]),
                              _column(raw, "Q", endian, 2, 3))
    # name I, value I, size I, info B, other B, shndx H: 16 bytes
    return _SymbolColumns(_column(raw, "I", endian, 0, 4), raw[12::16], raw[13::16],
                          _column(raw, "H", endian, 7, 8), (raw[14::16], raw[15::16]),
                          _column(raw, "I", endian, 2, 4))


# Per st_info / st_other byte: what it says, looked up in C by bytes.translate
# and map() rather than decoded per symbol in Python.
_KIND_OF_INFO = tuple(_TYPE_KIND.get(i & 0xF) for i in range(256))
_BIND_OF_INFO = tuple(_BIND_NAME.get(i >> 4) for i in range(256))
_INFO_EXPORTED = bytes(k is not None and b is not None
                       for k, b in zip(_KIND_OF_INFO, _BIND_OF_INFO, strict=True))
_OTHER_EXPORTED = bytes(o & 3 in _EXPORTED_VISIBILITY for o in range(256))
_NONZERO = bytes(b != 0 for b in range(256))


def _exported(cols: _SymbolColumns) -> list[int]:
    """Indexes of the defined, visible symbols of an exported type and binding.
    Each test gives one 0/1 byte per symbol; the bytes are combined as big
    integers (one AND or OR in C for the whole table, not one per symbol)."""
    def bits(flags: bytes) -> int:
        return int.from_bytes(flags, "little")
    lo, hi = cols.shndx_bytes
    mask = (bits(cols.info.translate(_INFO_EXPORTED)) & bits(cols.other.translate(_OTHER_EXPORTED))
            & (bits(lo.translate(_NONZERO)) | bits(hi.translate(_NONZERO))))  # not SHN_UNDEF
    return list(itertools.compress(range(len(cols.info)), mask.to_bytes(len(cols.info), "little")))


def _picker(indexes: list[int]) -> Callable[[Sequence[_T]], Sequence[_T]]:
    """column -> column[i] for each i of indexes, gathered in C."""
    if len(indexes) < 2:
        return lambda column: [column[i] for i in indexes]
    return operator.itemgetter(*indexes)


def _read_symbols(r: _Reader, verdefs: dict[int, tuple[str, list[str], int]]) -> SymbolColumns:
    """The exported symbols, decoded column by column (libLLVM has 46k)."""
    sh = r.section_of_type(_SHT_DYNSYM)
    if sh is None:
        raise _fail(r.path, "has no dynamic symbol table (not a shared library)")
    entsize = struct.calcsize(r.hdr.endian + r.layout["sym"])
    if sh.entsize != entsize:
        raise _fail(r.path, f"has a bad dynamic symbol entry size {sh.entsize}")
    raw = r.section_bytes(sh, "dynamic symbol table")
    raw = raw[: len(raw) - len(raw) % entsize]
    strtab = r.linked_strtab(sh, "the dynamic symbol table")
    versyms = _versym_list(r, sh, len(raw) // entsize)
    cols = _symbol_columns(raw, r.hdr.elf_class, r.hdr.endian)
    exported = _exported(cols)
    pick = _picker(exported)
    offsets = pick(cols.name)
    strings = _Strings(strtab)
    names, odd = strings.names(offsets)
    vs = pick(versyms) if versyms is not None else [1] * len(exported)
    versions, defaults, bad_version = _version_columns(verdefs, vs)
    if bad_version or any(names[k] is None for k in odd):
        _raise_first_bad(r, strtab, verdefs, exported, cols.name, vs)
    by_info = _picker(pick(cols.info))  # kind and binding: looked up by st_info, in C
    columns = SymbolColumns(names, by_info(_KIND_OF_INFO), pick(cols.size),
                            by_info(_BIND_OF_INFO), versions, defaults)
    drop = _linker_made(strings, offsets, odd, columns, pick(cols.shndx))
    return SymbolColumns(*(_without(c, drop) for c in columns)) if drop else columns


def _positions(items: Sequence[_T], wanted: Iterable[_T]) -> list[int]:
    """Indexes of the items equal to one of `wanted` (a few, rarely present),
    found in C: a count per wanted value, then one index() per occurrence."""
    found = []
    for value in wanted:
        k = -1
        for _ in range(items.count(value)):
            k = items.index(value, k + 1)
            found.append(k)
    return sorted(found)


def _version_columns(verdefs: dict[int, tuple[str, list[str], int]],
                     vs: Sequence[int]) -> tuple[list[str | None], list[bool], bool]:
    """(version, default) of each symbol from its .gnu.version entry, worked
    out once per distinct entry, and whether an index has no definition."""
    version_of = _version_of(verdefs)
    version: dict[int, str | None] = {}
    default: dict[int, bool] = {}
    for v in set(vs):
        name = version[v] = version_of.get(v & 0x7FFF, _UNDEFINED)
        default[v] = name is None or not v & _VERSYM_HIDDEN
    return (list(map(version.__getitem__, vs)), list(map(default.__getitem__, vs)),
            _UNDEFINED in version.values())


def _linker_made(strings: _Strings, offsets: Sequence[int], odd: list[int],
                 columns: SymbolColumns, shndx: Sequence[int]) -> set[int]:
    """Positions of what the linker defines itself: _LINKER_MADE, and each
    version's own definition symbol (SHN_ABS, named after its version).
    _LINKER_MADE names are found by offset (from a scan of the string table
    in its order; comparing or hashing every name in symbol order was ~15 ms
    of cache misses on libLLVM), those at odd offsets one by one."""
    names, versions = columns.name, columns.version
    made = strings.starts_of(_LINKER_MADE)
    drop = set()
    if len(made) > 8:  # hostile: many copies of them in the string table
        drop.update(itertools.compress(range(len(offsets)), map(made.__contains__, offsets)))
    elif not made.isdisjoint(offsets):
        drop.update(_positions(offsets, made))
    drop.update(k for k in odd if names[k] in _LINKER_MADE)
    drop.update(k for k in _positions(shndx, (_SHN_ABS,)) if names[k] == versions[k])
    return drop


def _without(items: Sequence[_T], drop: set[int]) -> list[_T]:
    if len(drop) <= 64:  # a few (the usual case): deleted one by one, not all copied
        kept = items if isinstance(items, list) else list(items)
        for k in sorted(drop, reverse=True):
            del kept[k]
        return kept
    keep = bytearray(b"\1") * len(items)
    for k in drop:
        keep[k] = 0
    return list(itertools.compress(items, keep))


_UNDEFINED = "\0undefined"  # no version name contains a NUL


def _version_of(verdefs: dict[int, tuple[str, list[str], int]]) -> dict[int, str | None]:
    """Version index -> the version a symbol gets: the definition's name, or
    None for local, global and the base definition (the file's own name)."""
    out: dict[int, str | None] = {ndx: None if flags & _VER_FLG_BASE else name
                                  for ndx, (name, _parents, flags) in verdefs.items()}
    out.setdefault(0, None)
    out.setdefault(1, None)
    return out


def _raise_first_bad(r: _Reader, strtab: bytes, verdefs: dict[int, tuple[str, list[str], int]],
                     exported: list[int], name_offs: Sequence[int], vs: Sequence[int]) -> None:
    """The error for the first exported symbol with a bad name or version."""
    version_of = _version_of(verdefs)
    for i, v in zip(exported, vs, strict=True):
        name = _string(r.path, strtab, name_offs[i], f"dynamic symbol {i}")
        if v & 0x7FFF not in version_of:
            raise _fail(r.path, f"symbol {name} has version index {v & 0x7FFF}, "
                                "which is not defined")


def _versions(verdefs: dict[int, tuple[str, list[str], int]]) -> list[VersionDef]:
    return [VersionDef(name, parents, flags)
            for _ndx, (name, parents, flags) in sorted(verdefs.items())
            if not flags & _VER_FLG_BASE]


_SUPPORTED_MACHINES = {a.e_machine: a.machine for a in ARCHES.values()}


@functools.cache
def _machine_name(e_machine: int) -> str:
    """pyelftools' name for e_machine (the symbols file's "machine"): the
    architectures capsule supports from capsule_module.arch, any other from
    pyelftools itself, imported only then (importing it costs more than
    reading libLLVM's header); a number it has no name for as EM_<number>."""
    if e_machine in _SUPPORTED_MACHINES:
        return _SUPPORTED_MACHINES[e_machine]
    from elftools.elf.enums import ENUM_E_MACHINE

    names = [name for name, number in ENUM_E_MACHINE.items()
             if number == e_machine and name != "_default_"]
    return names[-1] if names else f"EM_{e_machine}"  # the last of two names, as it decodes


def _read_mapped(path: Path, data: mmap.mmap) -> LibraryColumns:
    hdr = read_header(path, data)
    if hdr.e_type != _ET_DYN:
        raise _fail(path, "is not a shared library (ELF type is not ET_DYN)")
    shnum = _check_section_headers(path, hdr, len(data), data)
    try:
        r = _Reader(path, data, hdr, shnum)
        soname, needed = _read_dynamic(r)
        if not soname:
            raise _fail(path, "has no DT_SONAME")
        verdefs = _read_verdefs(r)
        symbols = _read_symbols(r, verdefs)
        machine = _machine_name(hdr.e_machine)
    except CapsuleError:
        raise
    except Exception as exc:  # struct.error, IndexError, ... on input the checks missed
        raise _fail(path, f"is a malformed ELF file ({type(exc).__name__}: {exc})") from exc
    if not symbols.name:
        raise _fail(path, "exports no dynamic symbols")
    return LibraryColumns(soname, 32 if hdr.elf_class == 1 else 64, machine, needed,
                          _versions(verdefs), symbols)


def require_regular_file(path: Path, what: str) -> int:
    """Size of path, which must be a regular file (a FIFO or device would
    block or never end); CapsuleError naming it otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(path, "does not exist") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, f"is a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, f"is not a regular file, so not {what}")
    return st.st_size


def _open_mapped(path: Path) -> mmap.mmap:
    if require_regular_file(path, "a library") == 0:
        raise _fail(path, "is empty, not an ELF file")
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since the stat
                raise _fail(path, "is not a regular file, so not a library")
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    except ValueError:  # mmap of a file emptied since the stat
        raise _fail(path, "is empty, not an ELF file") from None


def read_library(path: str | Path) -> LibrarySymbols:
    """Exported dynamic symbols, versions and dependencies of a shared library."""
    return read_library_columns(path).library()


def read_library_columns(path: str | Path) -> LibraryColumns:
    """read_library's result with the symbols as columns, for a caller that
    only writes them out (symbolsfile.dump takes either)."""
    path = Path(path)
    data = _open_mapped(path)
    try:
        with without_gc():
            return _read_mapped(path, data)
    finally:
        data.close()


@contextlib.contextmanager
def without_gc() -> Iterator[None]:
    """No cycle collection while a big library's symbols are built or
    rendered: they form no cycles, and full collections, each over every
    object of the process (a whole Meson run's), were a third of the time
    for libLLVM's 46k symbol tuples."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
