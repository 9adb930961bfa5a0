"""Symbols file: round trip and every malformed variant -> CapsuleError."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from py_support import system_lib

from capsule_module import symbolsfile
from capsule_module.elfreader import read_library
from capsule_module.errors import CapsuleError


@pytest.mark.parametrize("soname", ["libz.so.1", "libexpat.so.1", "libGL.so.1"])
def test_round_trip(soname: str, tmp_path: Path) -> None:
    lib = read_library(system_lib(soname))
    text = symbolsfile.dump(lib)
    path = tmp_path / f"{soname}.symbols.json"
    path.write_text(text)
    assert symbolsfile.load(path) == lib
    assert symbolsfile.dump(symbolsfile.loads(text, "x")) == text
    doc = json.loads(text)
    assert doc["format"] == "capsule-symbols" and doc["format_version"] == 1


def test_round_trip_every_kind(kinds_lib: Path) -> None:
    lib = read_library(kinds_lib)
    assert symbolsfile.loads(symbolsfile.dump(lib), "kinds") == lib


def _base() -> dict[str, Any]:
    return json.loads(symbolsfile.dump(read_library(system_lib("libz.so.1"))))


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return apply


MUTATIONS = {
    "format": (_set(["format"], "other"), "capsule symbols file"),
    "format_version": (_set(["format_version"], 2), "unsupported version"),
    "format_version_bool": (_set(["format_version"], True), "format_version"),
    "missing_soname": (_delete(["soname"]), "'soname'"),
    "soname_type": (_set(["soname"], 3), "soname"),
    "soname_empty": (_set(["soname"], ""), "soname"),
    "elf_class": (_set(["elf_class"], 16), "elf_class"),
    "machine": (_set(["machine"], None), "machine"),
    "needed_type": (_set(["needed"], "libc.so.6"), "needed"),
    "needed_item": (_set(["needed", 0], 5), "needed[0]"),
    "unknown_top": (_set(["extra"], 1), "unknown field 'extra'"),
    "versions_type": (_set(["versions"], {}), "versions"),
    "version_name": (_set(["versions", 0, "name"], None), "versions[0].name"),
    "version_parents": (_set(["versions", 1, "parents"], [1]), "versions[1].parents[0]"),
    "version_flags": (_set(["versions", 0, "flags"], -1), "versions[0].flags"),
    "version_extra": (_set(["versions", 0, "x"], 0), "unknown field 'x'"),
    "symbols_empty": (_set(["symbols"], []), "empty"),
    "symbol_not_object": (_set(["symbols", 0], "inflate"), "symbols[0]"),
    "symbol_name_nul": (_set(["symbols", 0, "name"], "a\0b"), "NUL"),
    "symbol_kind": (_set(["symbols", 0, "kind"], "function"), "symbols[0].kind"),
    "symbol_size": (_set(["symbols", 0, "size"], 1.5), "symbols[0].size"),
    "symbol_size_negative": (_set(["symbols", 0, "size"], -1), "symbols[0].size"),
    "symbol_binding": (_set(["symbols", 0, "binding"], "local"), "symbols[0].binding"),
    "symbol_version_unknown": (_set(["symbols", 0, "version"], "NOPE_1"), "not in 'versions'"),
    "symbol_version_type": (_set(["symbols", 0, "version"], 1), "symbols[0].version"),
    "symbol_default": (_set(["symbols", 0, "default"], 1), "symbols[0].default"),
    "symbol_missing": (_delete(["symbols", 0, "default"]), "'default'"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_malformed(name: str, tmp_path: Path) -> None:
    mutate, fragment = MUTATIONS[name]
    doc = copy.deepcopy(_base())
    mutate(doc)
    path = tmp_path / "bad.symbols.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CapsuleError) as info:
        symbolsfile.load(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("", "not valid JSON"),
    ("{", "not valid JSON"),
    ("[]", "not a JSON object"),
    ("[" * 100000, "not valid JSON"),
    ("null", "not a JSON object"),
])
def test_not_a_symbols_document(text: str, fragment: str) -> None:
    with pytest.raises(CapsuleError) as info:
        symbolsfile.loads(text, "my.symbols.json")
    assert "my.symbols.json" in str(info.value) and fragment in str(info.value)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CapsuleError, match=r"does not exist"):
        symbolsfile.load(tmp_path / "nothere.json")
    (tmp_path / "latin1.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(CapsuleError, match=r"not UTF-8"):
        symbolsfile.load(tmp_path / "latin1.json")
    with pytest.raises(CapsuleError, match=r"is a directory, not a symbols file"):
        symbolsfile.load(tmp_path)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "libz.json"
    os.mkfifo(fifo)
    with pytest.raises(CapsuleError) as info:
        symbolsfile.load(fifo)  # an open() would wait for a writer forever
    assert str(info.value) == f"{fifo}: is not a regular file, so not a symbols file"


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode (the directory case covers it)")
    path = tmp_path / "libz.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(CapsuleError, match=r"libz.json cannot be read \(Permission denied\)"):
        symbolsfile.load(path)
