"""Fuzz symbolsfile.loads/load: on any text, a valid LibrarySymbols (which
dumps and loads back unchanged) or one CapsuleError naming the source; never
another exception, never a hang. Inputs: arbitrary text, arbitrary JSON, and
real symbols files (libz, the every-kind fixture) with one part replaced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fuzz_support import FUZZ, Hang, SeedMap, check_result, time_limit
from hypothesis import example, given
from hypothesis import strategies as st

from capsule_module import symbolsfile
from capsule_module.elfreader import LibrarySymbols, read_library
from capsule_module.errors import CapsuleError

SOURCE = "fuzz.symbols.json"

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=True), st.text(max_size=12),
                     st.sampled_from(["", "\0", "func", "global", "GLIBC_2.2.5", 64, 32, 1,
                                      "capsule-symbols", 1.0, 64.0, -1, 10**400]))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["name", "kind", "size", "binding", "version", "default",
                                     "parents", "flags", "x"]) | st.text(max_size=5),
                    inner, max_size=6)), max_leaves=12)


def _loads(text: str) -> LibrarySymbols | CapsuleError:
    try:
        with time_limit():
            lib = symbolsfile.loads(text, SOURCE)
    except CapsuleError as exc:
        assert str(exc).startswith(SOURCE) and "\n" not in str(exc), str(exc)
        return exc
    except Hang:
        pytest.fail(f"symbolsfile.loads hung on {text[:200]!r}")
    check_result(lib)
    assert isinstance(lib.elf_class, int) and type(lib.elf_class) is int
    assert symbolsfile.loads(symbolsfile.dump(lib), SOURCE) == lib
    return lib


@FUZZ
@given(st.text())
@example("1" * 5000)
@example('{"format": 1' + "0" * 5000 + "}")
@example("[" * 100000)
@example("NaN")
def test_any_text(text: str) -> None:
    _loads(text)


@FUZZ
@given(_json)
def test_any_json(doc: Any) -> None:
    _loads(json.dumps(doc))


@pytest.fixture(scope="module")
def documents(seeds: dict[str, SeedMap], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = []
    for name in ("libz", "kinds"):
        path = tmp_path_factory.mktemp("sf") / f"{name}.so"
        path.write_bytes(seeds[name].data)
        out.append(json.loads(symbolsfile.dump(read_library(path))))
    return out


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) inside a document, first items of lists only."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list) and doc:
        out += _paths(doc[0], (*prefix, 0))
        out += _paths(doc[-1], (*prefix, len(doc) - 1))
    return out


def _replace(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    if len(path) == 1 and delete:
        del copy[path[0]]
    else:
        copy[path[0]] = _replace(copy[path[0]], path[1:], value, delete)
    return copy


def test_real_documents_load(documents: list[dict]) -> None:
    for doc in documents:
        assert not isinstance(_loads(json.dumps(doc)), CapsuleError)


def test_one_part_replaced(documents: list[dict]) -> None:
    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        doc = data.draw(st.sampled_from(documents))
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(_paths(doc)))
            delete = bool(path) and data.draw(st.booleans())
            doc = _replace(doc, path, data.draw(_json), delete)
        _loads(json.dumps(doc))

    run()


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("elf_class", 64.0, "elf_class is not 32 or 64"),
    ("format_version", 1.0, "format_version is not 1"),
    ("size", 1.5, "size is not an integer"),
    ("size", 2**64, "size is not an integer from 0 to 18446744073709551615"),
    ("flags", 0x10000, "flags is not an integer from 0 to 65535"),
])
def test_integers_are_exact(documents: list[dict], field: str, value: float,
                                 problem: str) -> None:
    # Found by the fuzzer: 64.0 == 64, so a float passed for an integer field;
    # and sizes past 64 bits only failed later, in the assembler.
    doc = dict(documents[1])
    if field == "size":
        doc["symbols"] = [dict(doc["symbols"][0], size=value)]
    elif field == "flags":
        doc["versions"] = [dict(v, flags=value) for v in doc["versions"]]
    else:
        doc[field] = value
    result = _loads(json.dumps(doc))
    assert isinstance(result, CapsuleError) and problem in str(result), result


def test_huge_integer_literal_is_a_clear_error() -> None:
    # Found by the fuzzer: json raises a bare ValueError past 4300 digits.
    result = _loads('{"format": 1' + "0" * 5000 + "}")
    assert isinstance(result, CapsuleError), result
    assert "not valid JSON" in str(result)


@FUZZ
@given(st.binary(max_size=200))
@example(b"\xff\xfe{}")
@example(b'{"soname": "\xc3"}')
def test_load_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-load.json"
    path.write_bytes(data)
    try:
        with time_limit():
            symbolsfile.load(path)
    except CapsuleError as exc:
        assert str(path) in str(exc)
