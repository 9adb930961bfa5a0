"""Fixtures for the Python-side tests: real system libraries, a fixture
library with every symbol kind, and readelf as the independent oracle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from py_support import HERE  # noqa: E402


@pytest.fixture(scope="session")
def kinds_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libkinds.so.1: one exported symbol of every kind, versioned."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("kinds") / "libkinds.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", str(HERE / "fixtures/kinds.c"),
                    f"-Wl,--version-script,{HERE / 'fixtures/kinds.map'}",
                    "-Wl,-soname,libkinds.so.1", "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def lib32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny i386 ELF32 shared library (built with as/ld, no multilib needed)."""
    d = tmp_path_factory.mktemp("lib32")
    (d / "t.s").write_text(".globl f\n.type f,@function\nf: ret\n.data\n.globl d\n"
                           ".type d,@object\n.size d,4\nd: .long 1\n")
    try:
        subprocess.run(["as", "--32", str(d / "t.s"), "-o", str(d / "t.o")], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-shared", "-soname", "libt32.so.1",
                        str(d / "t.o"), "-o", str(d / "libt32.so.1")], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot build an i386 library with as/ld")
    return d / "libt32.so.1"
