"""Slots that point inside an exported variable (`&array[i]`): one absolute
relocation with an addend each, which RELA architectures keep in the
relocation entry and REL ones (i386's R_386_32) in the slot itself, where
only the offset from the definition ld.so bound tells it. Through a shim
each must end up at the same element of the one array, the real
library's."""

from __future__ import annotations

from pathlib import Path

import pytest
from programs import parse, run

from build import CC, FIXTURES, Built, Sym, build_lib, build_shim, make_prefix, sh
from testarch import RELOC


@pytest.fixture(scope="module")
def arr(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("addends")
    real = build_lib(root / "real", "libarr.so.1", [FIXTURES / "arr.c"])
    prefix = make_prefix(root / "prefix", [real])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libarr.so.1", str(prefix),
               [Sym("arr_values", None, kind="object", size=16), Sym("arr_address", None)], [])
    user = build_lib(root / "user", "libarruser.so", [FIXTURES / "arr_user.c"],
                     flags=["-Wl,-z,relro", "-Wl,-z,now"], libs=[real])
    prog = root / "arr_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "arr_prog.c", "-o", prog,
        user, real, f"-Wl,-rpath-link,{real.parent}"])
    return prog, shim_dir, user


def test_the_pointers_are_absolute_relocations_with_addends(arr: tuple[Path, Path, Path]) -> None:
    _prog, _shim, user = arr
    lines = sh(["readelf", "-rW", user]).stdout.splitlines()
    relocs = [line for line in lines if RELOC["ADDRESS"] in line and " arr_values" in line]
    assert len(relocs) == 3, lines


def test_pointers_into_an_array_reach_the_one_array(arr: tuple[Path, Path, Path]) -> None:
    prog, shim_dir, user = arr
    env = {"LD_LIBRARY_PATH": f"{shim_dir}:{user.parent}"}
    got = parse(run([prog], env).stdout)
    assert got == {"third_same": "1", "last_same": "1", "first_same": "1",
                   "third_value": "33"}, got
