"""Shared pieces of the Python fuzz tests: the run mode (short in CI, long with
CAPSULE_FUZZ_LONG=1), a per-example time limit, seed libraries, and a map of
every header and table field of a seed library for structured mutations."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

from capsule_module.elfreader import LibrarySymbols

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LONG = os.environ.get("CAPSULE_FUZZ_LONG", "") not in ("", "0")
# Examples per test: CI keeps the whole directory well under a minute.
EXAMPLES = int(os.environ.get("CAPSULE_FUZZ_EXAMPLES", "20000" if LONG else "400"))
TIME_LIMIT = 10.0  # seconds per example; the reader needs milliseconds

settings.register_profile(
    "capsule-fuzz", max_examples=EXAMPLES, deadline=None, database=None,
    derandomize=not LONG, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
FUZZ = settings.get_profile("capsule-fuzz")


class Hang(BaseException):
    """An example ran past TIME_LIMIT (a BaseException, so no `except
    Exception` in the code under test can turn it into an error message)."""


@contextmanager
def time_limit(seconds: float = TIME_LIMIT) -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise Hang(f"example ran longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---- seed libraries ----

def build_seeds(out: Path) -> dict[str, bytes]:
    """Small real libraries: this machine's libz, a fixture with every symbol
    kind and nested versions, and an i386 ELF32 library (when as/ld can)."""
    seeds = {"libz": Path("/usr/lib/x86_64-linux-gnu/libz.so.1").read_bytes()}
    fixtures = REPO / "tests" / "python" / "fixtures"
    kinds = out / "libkinds.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", str(fixtures / "kinds.c"),
                    f"-Wl,--version-script,{fixtures / 'kinds.map'}",
                    "-Wl,-soname,libkinds.so.1", "-o", str(kinds)], check=True)
    seeds["kinds"] = kinds.read_bytes()
    (out / "t.s").write_text(".globl f\n.type f,@function\nf: ret\n.data\n.globl d\n"
                             ".type d,@object\n.size d,4\nd: .long 1\n")
    try:
        subprocess.run(["as", "--32", str(out / "t.s"), "-o", str(out / "t.o")], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-shared", "-soname", "libt32.so.1",
                        str(out / "t.o"), "-o", str(out / "libt32.so.1")], check=True)
        seeds["elf32"] = (out / "libt32.so.1").read_bytes()
    except (OSError, subprocess.CalledProcessError):
        pass
    return seeds


# ---- field maps ----

@dataclass(frozen=True)
class Field:
    name: str       # e.g. "shdr[5:.dynsym].sh_link"
    offset: int
    size: int       # 1, 2, 4 or 8 bytes


_EHDR = {1: [("e_type", 16, 2), ("e_machine", 18, 2), ("e_shoff", 32, 4),
             ("e_shentsize", 46, 2), ("e_shnum", 48, 2), ("e_shstrndx", 50, 2)],
         2: [("e_type", 16, 2), ("e_machine", 18, 2), ("e_shoff", 40, 8),
             ("e_shentsize", 58, 2), ("e_shnum", 60, 2), ("e_shstrndx", 62, 2)]}
_IDENT = [("ei_class", 4, 1), ("ei_data", 5, 1)]
_SHDR = {1: ("IIIIIIIIII", 40), 2: ("IIQQQQIIQQ", 64)}
_SHDR_NAMES = ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size",
               "sh_link", "sh_info", "sh_addralign", "sh_entsize")
_SYM = {1: [("st_name", 0, 4), ("st_size", 8, 4), ("st_info", 12, 1), ("st_other", 13, 1),
            ("st_shndx", 14, 2)],
        2: [("st_name", 0, 4), ("st_info", 4, 1), ("st_other", 5, 1), ("st_shndx", 6, 2),
            ("st_size", 16, 8)]}
_SHT_DYNAMIC, _SHT_DYNSYM = 6, 11
_SHT_VERDEF, _SHT_VERSYM = 0x6FFFFFFD, 0x6FFFFFFF


@dataclass(frozen=True)
class Section:
    index: int
    type: int
    offset: int
    size: int
    link: int


class SeedMap:
    """A seed's bytes, its fields, and the byte ranges the reader never needs
    (a plain class: its short repr keeps Hypothesis' reports readable)."""

    def __init__(self, data: bytes, endian: str, fields: tuple[Field, ...],
                 unread: tuple[tuple[int, int], ...]) -> None:
        self.data, self.endian, self.fields = data, endian, fields
        self.unread = unread  # (offset, size) of .text-like section contents

    def __repr__(self) -> str:
        return f"SeedMap(<{len(self.data)} bytes, {len(self.fields)} fields>)"


def _sections(data: bytes, cls: int, e: str) -> list[Section]:
    (shoff,) = struct.unpack_from(e + ("I" if cls == 1 else "Q"), data, 32 if cls == 1 else 40)
    (shnum,) = struct.unpack_from(e + "H", data, 48 if cls == 1 else 60)
    fmt, size = _SHDR[cls]
    out = []
    for i in range(shnum):
        sh = struct.unpack_from(e + fmt, data, shoff + i * size)
        out.append(Section(i, sh[1], sh[4], sh[5], sh[6]))
    return out


def _shdr_fields(data: bytes, cls: int, e: str) -> list[Field]:
    (shoff,) = struct.unpack_from(e + ("I" if cls == 1 else "Q"), data, 32 if cls == 1 else 40)
    fmt, size = _SHDR[cls]
    out = []
    for sec in _sections(data, cls, e):
        pos = shoff + sec.index * size
        for k, name in enumerate(_SHDR_NAMES):
            width = struct.calcsize(e + fmt[k])
            out.append(Field(f"shdr[{sec.index}:{sec.type:#x}].{name}", pos, width))
            pos += width
    return out


def _table_fields(data: bytes, cls: int, e: str, sections: list[Section]) -> list[Field]:
    out: list[Field] = []
    for sec in sections:
        if sec.type == _SHT_DYNSYM:
            entsize = 16 if cls == 1 else 24
            for i in range(min(sec.size // entsize, 40)):
                out += [Field(f"dynsym[{i}].{n}", sec.offset + i * entsize + o, w)
                        for n, o, w in _SYM[cls]]
        elif sec.type == _SHT_DYNAMIC:
            word = 4 if cls == 1 else 8
            for i in range(sec.size // (2 * word)):
                out += [Field(f"dynamic[{i}].d_tag", sec.offset + 2 * i * word, word),
                        Field(f"dynamic[{i}].d_val", sec.offset + (2 * i + 1) * word, word)]
        elif sec.type == _SHT_VERSYM:
            out += [Field(f"versym[{i}]", sec.offset + 2 * i, 2) for i in range(min(sec.size // 2, 40))]
        elif sec.type == _SHT_VERDEF:
            out += _verdef_fields(data, e, sec)
    return out


def _verdef_fields(data: bytes, e: str, sec: Section) -> list[Field]:
    out: list[Field] = []
    off, n = sec.offset, 0
    while n < 64:
        names = ("vd_version", "vd_flags", "vd_ndx", "vd_cnt", "vd_hash", "vd_aux", "vd_next")
        widths = (2, 2, 2, 2, 4, 4, 4)
        pos = off
        for name, w in zip(names, widths, strict=True):
            out.append(Field(f"verdef[{n}].{name}", pos, w))
            pos += w
        _v, _f, _x, cnt, _h, aux, nxt = struct.unpack_from(e + "HHHHIII", data, off)
        apos = off + aux
        for k in range(cnt):
            out += [Field(f"verdef[{n}].aux[{k}].vda_name", apos, 4),
                    Field(f"verdef[{n}].aux[{k}].vda_next", apos + 4, 4)]
            (_name, anext) = struct.unpack_from(e + "II", data, apos)
            if not anext:
                break
            apos += anext
        if not nxt:
            break
        off, n = off + nxt, n + 1
    return out


def seed_map(data: bytes) -> SeedMap:
    cls, e = data[4], "<" if data[5] == 1 else ">"
    sections = _sections(data, cls, e)
    fields = [Field(n, o, w) for n, o, w in _IDENT + _EHDR[cls]]
    fields += _shdr_fields(data, cls, e) + _table_fields(data, cls, e, sections)
    # Contents of allocated PROGBITS sections other than the ones the reader
    # looks at (.text, .rodata, .data, ...): changing them changes nothing.
    unread = tuple((s.offset, s.size) for s in sections if s.type == 1 and s.size)
    return SeedMap(data, e, tuple(fields), unread)


def put(data: bytearray, f: Field, value: int, endian: str) -> None:
    if f.offset + f.size > len(data):  # truncated away by an earlier mutation
        return
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[f.size]
    struct.pack_into(endian + fmt, data, f.offset, value % (1 << (8 * f.size)))


def check_result(lib: LibrarySymbols) -> None:
    """Invariants of every LibrarySymbols the reader returns."""
    from capsule_module.elfreader import BINDINGS, KINDS
    assert isinstance(lib.soname, str) and lib.soname and "\0" not in lib.soname
    assert lib.elf_class in (32, 64) and isinstance(lib.machine, str) and lib.machine
    assert all(isinstance(n, str) and n and "\0" not in n for n in lib.needed)
    names = {v.name for v in lib.versions}
    assert all(v.name and isinstance(v.flags, int) and v.flags >= 0 for v in lib.versions)
    assert lib.symbols
    for s in lib.symbols:
        assert isinstance(s.name, str) and s.name and "\0" not in s.name, s
        assert s.kind in KINDS and s.binding in BINDINGS, s
        assert isinstance(s.size, int) and s.size >= 0, s
        assert s.version is None or s.version in names, s
        assert isinstance(s.default, bool), s
