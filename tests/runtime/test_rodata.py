"""Exported read-only data (issue 14, item 1): a program that uses a
library's const scalars and tables, or instantiates a C++ class whose vtable
and typeinfo the library exports, holds COPY relocations placed in its RELRO
area. libcapsule fills them under the relocation pass's mprotect discipline;
the program sees the real library's values and starts."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from programs import parse, run

from build import FIXTURES, MULTIARCH, SAN_FLAGS, SANITIZE, Built, Sym, build_shim, make_prefix, sh
from testarch import GXX, PIE_COPIES, RELOC

CXX = [*GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-g", "-O1", f"-I{FIXTURES}"]
KINDS = {"pie": ["-fPIE", "-pie"], "nopie": ["-fno-pie", "-no-pie"]}
RELRO_NOW = ["-Wl,-z,relro", "-Wl,-z,now"]
# LeakSanitizer scans only the globals of the caller's namespace: the
# capsule's libstdc++ keeps its exception pool (allocated from the one heap)
# in a global it cannot see. Leaks are memcheck's job here (as in
# test_boundary.py).
NO_LSAN = {"ASAN_OPTIONS": "detect_leaks=0"} if SANITIZE == "asan" else {}


@dataclass
class Rodata:
    real: Path           # librodata.so.1, as linked against
    prefix: Path
    shim_dir: Path
    programs: dict[str, Path]


def exported_symbols(lib: Path) -> list[Sym]:
    """The library's defined dynamic symbols, as the shim exports them."""
    symbols = []
    for line in sh(["nm", "-D", "--defined-only", "-S", lib]).stdout.splitlines():
        fields = line.split()
        if len(fields) != 4:
            continue
        _, size, kind, name = fields
        if kind in "TWi":
            symbols.append(Sym(name, None))
        elif kind in "VRDBGS":
            symbols.append(Sym(name, None, kind="object", size=int(size, 16)))
    return symbols


def libstdcxx_files() -> list[Path]:
    """The C++ runtime the real library needs, for the prefix."""
    found = sh([*GXX, "-print-file-name=libstdc++.so.6"]).stdout.strip()
    gcc_s = sh([*GXX, "-print-file-name=libgcc_s.so.1"]).stdout.strip()
    return [Path(found).resolve().with_name("libstdc++.so.6"), Path(gcc_s).resolve()]


@pytest.fixture(scope="module")
def rodata(built: Built) -> Rodata:
    if not shutil.which("g++"):
        pytest.skip("g++ is missing (scripts/bootstrap.sh installs it)")
    root = built.root / "rodata"
    real = root / "real" / "librodata.so.1"
    real.parent.mkdir(parents=True)
    sh([*CXX, "-shared", "-fPIC", FIXTURES / "rodata.cc", "-o", real,
        "-Wl,-soname,librodata.so.1"])
    prefix = make_prefix(root / "prefix", [real, *libstdcxx_files()])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "librodata.so.1", str(prefix),
               exported_symbols(real), [])
    programs = {}
    for kind, flags in KINDS.items():
        prog = root / f"rodata_prog_{kind}"
        sh([*CXX, *SAN_FLAGS, *flags, *RELRO_NOW, FIXTURES / "rodata_prog.cc", "-o", prog, real])
        programs[kind] = prog
    return Rodata(real, prefix, shim_dir, programs)


def copies_in_relro(prog: Path) -> set[str]:
    """The symbols whose COPY relocation lies in the program's PT_GNU_RELRO."""
    relro = re.search(r"GNU_RELRO\s+0x\w+\s+(0x\w+)\s+0x\w+\s+0x\w+\s+(0x\w+)",
                      sh(["readelf", "-lW", prog]).stdout)
    assert relro, "no PT_GNU_RELRO"
    start, size = int(relro[1], 16), int(relro[2], 16)
    names = set()
    for line in sh(["readelf", "-rW", prog]).stdout.splitlines():
        fields = line.split()
        if (len(fields) >= 5 and fields[2] == RELOC["COPY"]
                and start <= int(fields[0], 16) < start + size):
            names.add(fields[4])
    return names


@pytest.mark.parametrize("kind", KINDS)
def test_read_only_copies_get_the_real_values(rodata: Rodata, kind: str) -> None:
    prog = rodata.programs[kind]
    # The premise: gcc put the copies of read-only data, the vtable and the
    # typeinfo in the program's RELRO area (-z relro -z now: read-only when
    # the shim initialises). An i386 PIE program has none: it reads them
    # through its GOT (the values must still be the real library's).
    copies = kind != "pie" or PIE_COPIES
    names = {"rodata_answer", "rodata_table", "rodata_entries", "_ZTV6Square", "_ZTI6Square"}
    if copies:
        assert names <= copies_in_relro(prog)
    else:
        assert not names & copies_in_relro(prog)
    plain = run([prog], {"LD_LIBRARY_PATH": str(rodata.real.parent)})
    assert plain.returncode == 0, plain
    proc = run([prog], {"LD_LIBRARY_PATH": str(rodata.shim_dir), "CAPSULE_DEBUG": "reloc",
                        **NO_LSAN})
    assert proc.returncode == 0, proc
    got, expected = parse(proc.stdout), parse(plain.stdout)
    in_prefix = str(rodata.prefix / MULTIARCH / "librodata.so.1")
    # Every value equals what the real library gives without capsules.
    assert got.pop("where") == in_prefix and expected.pop("where") == str(rodata.real)
    assert got.pop("sides_object") == in_prefix
    assert expected.pop("sides_object") == str(rodata.real)
    assert got == expected
    assert got["answer"] == "42" and got["name"] == "real rodata"
    assert got["table"] == "7,2654435776,4020696206"
    assert got["entries"] == "one:1,two:2,three:3"
    # One variable on both sides, typeinfo included; the virtual calls, the
    # casts and typeid work on both sides of the boundary.
    for key in ("answer_same", "table_same", "entries_same", "typeid_same", "typeid_identical",
                "typeinfo_same",
                "cast", "lib_cast"):
        assert got[key] == "1", key
    assert got["sides"] == "4" and got["shape_name"] == "square"
    assert got["typeid_name"] == got["lib_type_name"] == "6Square"
    if copies:
        assert "_ZTV6Square: the program's copy at" in proc.stderr
        assert "(256 bytes, RELRO)" in proc.stderr  # rodata_table
