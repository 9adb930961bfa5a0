"""i386 through Meson (issue 11): cross/i386-linux-gnu.ini, capsule.shim()
reading the host machine's library from the tree, and the 32-bit shim and
libcapsule it builds running a 32-bit program through the capsule."""

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


SHIM = "project('s', 'c')\ncapsule = import('capsule')\nshim = capsule.shim({args})\n"
# A 32-bit program using zlib through the shim (linked to it, as a program
# built against the runtime's libz would be).
PROGRAM = """
executable('zprog', 'zprog.c', link_with: shim)
"""
ZPROG = r"""
#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    const char *text = "capsule i386 capsule i386 capsule i386";
    unsigned char packed[128], unpacked[128];
    uLongf n = sizeof packed, m = sizeof unpacked;
    if (compress(packed, &n, (const Bytef *)text, strlen(text) + 1) != Z_OK ||
        uncompress(unpacked, &m, packed, n) != Z_OK || strcmp((char *)unpacked, text) != 0)
        return 1;
    printf("%zu-bit zlib %s\n", sizeof(void *) * 8, zlibVersion());
    return 0;
}
"""


def _elf_class_machine(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:20]
    return head[4], int.from_bytes(head[18:20], "little")


def test_shim_reads_the_host_machines_library(pypi_meson: Meson, tmp_path: Path,
                                              i386_tree: Path) -> None:
    """One mixed tree: natively the x86_64 zlib makes an x86_64 shim; with the
    i386 cross file the i386 zlib is read and the shim, libcapsule and the
    program are i386, and the program runs through the capsule."""
    if not _multilib_gcc(tmp_path):
        pytest.skip("gcc -m32 cannot link: gcc-multilib is not installed "
                    "(scripts/bootstrap.sh installs it)")
    tree = _mixed_tree(tmp_path, i386_tree)
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{tree}', prefix: '{tree}'")
    native = _setup(pypi_meson, tmp_path, text)
    assert native.returncode == 0, native.stdout + native.stderr
    pypi_meson.ninja(tmp_path / "build")
    assert _elf_class_machine(tmp_path / "build/libz.so.1") == (2, 62)   # ELF64, EM_X86_64
    (tmp_path / "src/zprog.c").write_text(ZPROG)
    cross = _setup(pypi_meson, tmp_path, text + PROGRAM, "--cross-file", CROSS_FILE)
    assert cross.returncode == 0, cross.stdout + cross.stderr
    build = tmp_path / "build"
    pypi_meson.ninja(build)
    assert _elf_class_machine(build / "libz.so.1") == (1, 3)             # ELF32, EM_386
    assert _elf_class_machine(build / "libcapsule.so.0") == (1, 3)
    env = dict(os.environ, CAPSULE_DEBUG="ns")
    proc = subprocess.run([str(build / "zprog")], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "32-bit zlib 1.2.13\n"
    # The real zlib came from the tree's i386 directory, not the system's.
    assert f"{tree}/lib/i386-linux-gnu/libz.so.1" in proc.stderr


def test_i386_only_tree(pypi_meson: Meson, tmp_path: Path, i386_tree: Path) -> None:
    """The tree of i386 packages: nothing for x86_64 in it, the i386 zlib
    found (through its ld.so.cache) for an i386 host."""
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{i386_tree}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text))
    assert "library libz.so.1 not found under" in line
    proc = _setup(pypi_meson, tmp_path, text, "--cross-file", _cross_file_with_this_gcc(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    source = (tmp_path / "build/capsule-shims/libz.so.1.c").read_text()
    assert "this shim was rendered for i386" in source


def test_x86_64_symbols_file_on_an_i386_host(pypi_meson: Meson, tmp_path: Path) -> None:
    symbols = tmp_path / "libz.json"
    symbols.write_text(symbolsfile.dump(read_library(SYSTEM_LIBDIR / "libz.so.1")))
    text = SHIM.format(args=f"'libz.so.1', symbols: '{symbols}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text, "--cross-file",
                              _cross_file_with_this_gcc(tmp_path)))
    assert ("capsule.shim('libz.so.1'): library libz.so.1 is ELF64 for EM_X86_64: capsule "
            "shims for i386 support only i386 ELF32 (EM_386) libraries") in line
