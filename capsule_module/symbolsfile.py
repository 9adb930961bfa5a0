"""The symbols file: a library's exported interface as JSON, so a shim can be
built without the library present. One symbol per line keeps diffs readable."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from .elfreader import (
    BINDINGS,
    KINDS,
    LibraryColumns,
    LibrarySymbols,
    Symbol,
    SymbolColumns,
    VersionDef,
    require_regular_file,
    without_gc,
)
from .errors import CapsuleError

FORMAT = "capsule-symbols"
FORMAT_VERSION = 1

_TOP_KEYS = ("format", "format_version", "soname", "elf_class", "machine", "needed",
             "versions", "symbols")
_VERSION_KEYS = ("name", "parents", "flags")
_SYMBOL_KEYS = ("name", "kind", "size", "binding", "version", "default")
_MAX_SIZE = 2**64 - 1  # st_size of ELF64 (vd_flags, 16 bits, bounds "flags")


def _line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def _quoted(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


# What follows a symbol's name up to its size, and what follows its size up
# to the next symbol's name (or the end of the list: _LAST).
_NEXT = ',\n    {"name": "'
_LAST = "\n  ]\n}\n"


class _Texts(dict[Any, str]):
    """value -> its text, written on first use by `text` (values repeat)."""

    def __init__(self, text: Callable[[Any], str]) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, value: Any) -> str:
        text = self[value] = self.text(value)
        return text


def _kind_text(kind: str) -> str:
    return f'", "kind": {_quoted(kind)}, "size": '


def _size_text(size: int) -> str:
    return f"{size:d}"


def _tail_text(tail: tuple[str, str | None, bool]) -> str:
    binding, version, default = tail
    return (f', "binding": {_quoted(binding)}, "version": {_quoted(version)}, '
            f'"default": {"true" if default else "false"}}}{_NEXT}')


def _symbol_pieces(columns: SymbolColumns) -> list[str]:
    """`_line` of each symbol's dict, joined by ",\n" and followed by _NEXT, as
    four pieces per symbol: its name, _kind_text, its size, _tail_text.
    json.dumps per symbol, then an f-string per symbol, dominated
    `capsule-shim symbols` on libLLVM (46k symbols). Here each distinct kind,
    size and (binding, version, default) is written once and looked up per
    symbol in C; names are used as they are when none needs an escape (the
    usual case)."""
    names, kinds, sizes, bindings, versions, defaults = columns
    if not _plain(names):
        names = tuple(map(_escaped, names))
    tails = zip(bindings, versions, defaults, strict=True)
    return list(itertools.chain.from_iterable(zip(
        names, map(_Texts(_kind_text).__getitem__, kinds),
        map(_Texts(_size_text).__getitem__, sizes),
        map(_Texts(_tail_text).__getitem__, tails), strict=True)))


def _escaped(name: str) -> str:
    return encode_basestring_ascii(name)[1:-1]


# Printable ASCII but the quote and the backslash: what JSON keeps as it is.
_NO_ESCAPE = bytes(c for c in range(0x20, 0x7F) if chr(c) not in '"\\')


def _plain(names: Sequence[str]) -> bool:
    """Whether no name needs a JSON escape: checked once for all names, in C
    (DEL, which JSON keeps, counts as needing one: escaping is then a no-op)."""
    text = "".join(names)
    return text.isascii() and not text.encode("ascii").translate(None, _NO_ESCAPE)


def dump(lib: LibrarySymbols | LibraryColumns) -> str:
    """JSON text of a LibrarySymbols (ends with a newline)."""
    head = [f'  "format": {_line(FORMAT)}', f'  "format_version": {FORMAT_VERSION}',
            f'  "soname": {_line(lib.soname)}', f'  "elf_class": {lib.elf_class}',
            f'  "machine": {_line(lib.machine)}', f'  "needed": {_line(lib.needed)}']
    versions = [{"name": v.name, "parents": v.parents, "flags": v.flags}
                for v in lib.versions]
    head.append(f'  "versions": {_list(["    " + _line(v) for v in versions])}')
    columns = lib.symbol_columns()
    if not columns.name:
        return "{\n" + ",\n".join([*head, '  "symbols": []']) + "\n}\n"
    # The symbols' lines are 8 MB for libLLVM: joined once, with the rest.
    with without_gc():
        pieces = _symbol_pieces(columns)
        pieces.insert(0, "{\n" + ",\n".join(head) + ',\n  "symbols": [\n    {"name": "')
        pieces[-1] = pieces[-1][:-len(_NEXT)] + _LAST
        return "".join(pieces)


def _list(lines: list[str]) -> str:
    if not lines:
        return "[]"
    return "[\n" + ",\n".join(lines) + "\n  ]"


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> CapsuleError:
        return CapsuleError(f"{self.source}: {where} {problem}")

    def obj(self, value: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "is not a JSON object")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(where, f"lacks the field {missing[0]!r}")
        extra = sorted(set(value) - set(keys))
        if extra:
            raise self.fail(where, f"has an unknown field {extra[0]!r}")
        return value

    def string(self, value: Any, where: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(where, "is not a non-empty string")
        if "\0" in value:
            raise self.fail(where, "contains a NUL character")
        return value

    def integer(self, value: Any, where: str, *, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
            raise self.fail(where, f"is not an integer from 0 to {hi}")
        return value

    def strings(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(where, "is not a list")
        return [self.string(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "is not a list")
        return value

    def choice(self, value: Any, options: tuple[str, ...], where: str) -> str:
        if value not in options:
            raise self.fail(where, f"is not one of {', '.join(options)}")
        return value


def _version(c: _Checker, value: Any, where: str) -> VersionDef:
    v = c.obj(value, _VERSION_KEYS, where)
    return VersionDef(c.string(v["name"], f"{where}.name"),
                      c.strings(v["parents"], f"{where}.parents"),
                      c.integer(v["flags"], f"{where}.flags", hi=0xFFFF))


def _symbol(c: _Checker, value: Any, where: str, versions: set[str]) -> Symbol:
    s = c.obj(value, _SYMBOL_KEYS, where)
    version = s["version"]
    if version is not None:
        c.string(version, f"{where}.version")
        if version not in versions:
            raise c.fail(f"{where}.version", f"{version!r} is not in 'versions'")
    if not isinstance(s["default"], bool):
        raise c.fail(f"{where}.default", "is not true or false")
    return Symbol(c.string(s["name"], f"{where}.name"),
                  c.choice(s["kind"], KINDS, f"{where}.kind"),
                  c.integer(s["size"], f"{where}.size", hi=_MAX_SIZE),
                  c.choice(s["binding"], BINDINGS, f"{where}.binding"),
                  version, s["default"])


def _exact_int(value: Any) -> bool:
    """An int, not a bool and not a float equal to one (64.0 == 64)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _library(c: _Checker, doc: Any) -> LibrarySymbols:
    d = c.obj(doc, _TOP_KEYS, "the top level")
    if d["format"] != FORMAT:
        raise c.fail("format", f"is not {FORMAT!r} (not a capsule symbols file)")
    if not _exact_int(d["format_version"]) or d["format_version"] != FORMAT_VERSION:
        raise c.fail("format_version", f"is not {FORMAT_VERSION} (unsupported version)")
    if not _exact_int(d["elf_class"]) or d["elf_class"] not in (32, 64):
        raise c.fail("elf_class", "is not 32 or 64")
    versions = [_version(c, v, f"versions[{i}]")
                for i, v in enumerate(c.items(d["versions"], "versions"))]
    names = {v.name for v in versions}
    symbols = [_symbol(c, s, f"symbols[{i}]", names)
               for i, s in enumerate(c.items(d["symbols"], "symbols"))]
    if not symbols:
        raise c.fail("symbols", "is empty")
    return LibrarySymbols(c.string(d["soname"], "soname"), d["elf_class"],
                          c.string(d["machine"], "machine"),
                          c.strings(d["needed"], "needed"), versions, symbols)


def loads(text: str, source_name: str) -> LibrarySymbols:
    """Parse and validate symbols-file text; errors name source_name."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CapsuleError(f"{source_name}: is not valid JSON ({exc.msg} at line "
                           f"{exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise CapsuleError(f"{source_name}: is not valid JSON (nested too deeply)") from None
    except ValueError:  # an integer literal past Python's 4300-digit conversion limit
        raise CapsuleError(f"{source_name}: is not valid JSON (a number is too long)") from None
    return _library(_Checker(source_name), doc)


def load(path: str | Path) -> LibrarySymbols:
    """Read and validate a symbols file."""
    if not os.path.lexists(path):
        raise CapsuleError(f"symbols file {path} does not exist")
    require_regular_file(Path(path), "a symbols file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CapsuleError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise CapsuleError(f"symbols file {path} cannot be read ({exc.strerror})") from None
    return loads(text, str(path))
