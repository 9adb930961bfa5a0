"""The configure-time side of i386 (issue 11): cross/i386-linux-gnu.ini, and
capsule.shim() reading the host machine's library. The shim itself cannot be
built for i386 yet (no i386 libcapsule): configuring one stops with the one
clear error, after the i386 library was found."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mesontools import Meson

from capsule_module import symbolsfile
from capsule_module.elfreader import read_library
from helpers import MULTIARCH, REPO, SYSTEM_LIBDIR, i386_host_tree, run

CROSS_FILE = REPO / "cross/i386-linux-gnu.ini"
NOT_YET = ("shims for i386 (ELF32, EM_386) cannot be built yet: the i386 runtime "
           "(libcapsule and the shim template) is not available")


@pytest.fixture(scope="session")
def i386_tree() -> Path:
    return i386_host_tree()


def _project(tmp_path: Path, text: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "meson.build").write_text(text)
    return src


def _multilib_gcc(tmp_path: Path) -> bool:
    """Whether gcc -m32 links a program (Debian: gcc-multilib installed)."""
    (tmp_path / "m32.c").write_text("int main(void) { return 0; }\n")
    proc = subprocess.run(["gcc", "-m32", str(tmp_path / "m32.c"), "-o", str(tmp_path / "m32")],
                          capture_output=True, check=False)
    return proc.returncode == 0


def test_cross_file_describes_i386(meson: Meson, tmp_path: Path) -> None:
    """Parsed by each Meson without a compiler (a project with no language)."""
    src = _project(tmp_path, "project('t')\nmessage('host', host_machine.cpu_family(), "
                             "host_machine.cpu(), host_machine.endian(), "
                             "meson.is_cross_build())\n")
    out = meson.run("setup", "--cross-file", CROSS_FILE, tmp_path / "build", src).stdout
    assert "Message: host x86 i686 little true" in out


def test_cross_file_builds_32_bit_code(pypi_meson: Meson, tmp_path: Path) -> None:
    if not _multilib_gcc(tmp_path):
        pytest.skip("gcc -m32 cannot link: gcc-multilib is not installed "
                    "(scripts/bootstrap.sh installs it)")
    src = _project(tmp_path, "project('t', 'c')\nexecutable('t', 't.c')\n")
    (src / "t.c").write_text("int main(void) { return sizeof(void *) == 4 ? 0 : 1; }\n")
    build = tmp_path / "build"
    pypi_meson.run("setup", "--cross-file", CROSS_FILE, build, src)
    pypi_meson.ninja(build)
    assert (build / "t").read_bytes()[4] == 1   # ELFCLASS32
    run([build / "t"])


def _cross_file_with_this_gcc(tmp_path: Path) -> Path:
    """The shipped cross file with plain gcc as the C compiler: the host
    machine stays i386 (what capsule.shim() reads), and Meson's compiler
    check passes without gcc-multilib. Nothing is compiled for i386."""
    text = CROSS_FILE.read_text().replace("c = ['gcc', '-m32']", "c = ['gcc']")
    assert "c = ['gcc']" in text
    path = tmp_path / "i386-this-gcc.ini"
    path.write_text(text)
    return path


def _setup(meson: Meson, tmp_path: Path, text: str, *options: str) -> subprocess.CompletedProcess[str]:
    src = _project(tmp_path, text)
    build = tmp_path / "build"
    shutil.rmtree(build, ignore_errors=True)
    return meson.run("setup", *options, build, src, check=False)


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "ERROR:" in line]
    assert len(lines) == 1, output
    return lines[0]


def _mixed_tree(tmp_path: Path, i386_tree: Path) -> Path:
    root = tmp_path / "mixed"
    for soname in ("libz.so.1",):
        for src, libdir in ((SYSTEM_LIBDIR / soname, root / MULTIARCH),
                            (i386_tree / "lib/i386-linux-gnu" / soname,
                             root / "lib/i386-linux-gnu")):
            libdir.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(src), libdir / soname)
    return root


SHIM = "project('s', 'c')\ncapsule = import('capsule')\ncapsule.shim({args})\n"


def test_shim_reads_the_host_machines_library(pypi_meson: Meson, tmp_path: Path,
                                              i386_tree: Path) -> None:
    """One mixed tree: natively the x86_64 zlib makes a shim; with an i386
    host machine the i386 zlib is read, and the i386 shim is refused."""
    tree = _mixed_tree(tmp_path, i386_tree)
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{tree}'")
    native = _setup(pypi_meson, tmp_path, text)
    assert native.returncode == 0, native.stdout + native.stderr
    assert (tmp_path / "build/capsule-shims/libz.so.1.c").is_file()
    cross = _setup(pypi_meson, tmp_path, text, "--cross-file", _cross_file_with_this_gcc(tmp_path))
    line = _error_line(cross)
    assert f"capsule.shim('libz.so.1'): {NOT_YET}" in line
    assert not (tmp_path / "build/capsule-shims/libz.so.1.c").exists()


def test_i386_only_tree(pypi_meson: Meson, tmp_path: Path, i386_tree: Path) -> None:
    """The tree of i386 packages: nothing for x86_64 in it, the i386 zlib
    found (through its ld.so.cache) for an i386 host."""
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{i386_tree}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text))
    assert "library libz.so.1 not found under" in line
    line = _error_line(_setup(pypi_meson, tmp_path, text, "--cross-file",
                              _cross_file_with_this_gcc(tmp_path)))
    assert NOT_YET in line


def test_x86_64_symbols_file_on_an_i386_host(pypi_meson: Meson, tmp_path: Path) -> None:
    symbols = tmp_path / "libz.json"
    symbols.write_text(symbolsfile.dump(read_library(SYSTEM_LIBDIR / "libz.so.1")))
    text = SHIM.format(args=f"'libz.so.1', symbols: '{symbols}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text, "--cross-file",
                              _cross_file_with_this_gcc(tmp_path)))
    assert ("capsule.shim('libz.so.1'): library libz.so.1 is ELF64 for EM_X86_64: capsule "
            "shims for i386 support only i386 ELF32 (EM_386) libraries") in line
