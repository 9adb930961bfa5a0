"""Other architectures through Meson (issues 11 and 12): each shipped cross
file (cross/i386-linux-gnu.ini, cross/aarch64-linux-gnu.ini), capsule.shim()
reading the host machine's library from the tree, and the shim and
libcapsule it builds running a program of that architecture through the
capsule (aarch64's under qemu-user)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mesontools import Meson

from capsule_module import symbolsfile
from capsule_module.elfreader import read_library
from helpers import MULTIARCH, REPO, SYSTEM_LIBDIR, arch_host_tree, run


@dataclass(frozen=True)
class Target:
    name: str                  # capsule's name
    describe: str              # cpu_family(), cpu(), endian() as Meson prints them
    elf: tuple[int, int]       # EI_CLASS, e_machine
    bits: int
    runner: tuple[str, ...]    # what runs its programs here
    toolchain_hint: str        # what to install when its compiler cannot link

    @property
    def cross_file(self) -> Path:
        return REPO / "cross" / f"{self.triplet}.ini"

    @property
    def triplet(self) -> str:
        return f"{self.name}-linux-gnu"


I386 = Target("i386", "x86 i686 little", (1, 3), 32, (),
              "gcc -m32 cannot link: gcc-multilib is not installed (scripts/bootstrap.sh "
              "installs it)")
AARCH64 = Target("aarch64", "aarch64 aarch64 little", (2, 183), 64,
                 ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"),
                 "clang cannot link for aarch64 or qemu-aarch64 is missing: "
                 "scripts/bootstrap.sh installs clang, binutils-aarch64-linux-gnu, "
                 "libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross and qemu-user")
TARGETS = [pytest.param(t, id=t.name) for t in (I386, AARCH64)]


def _compiler(target: Target) -> list[str]:
    """The C compiler command of the target's cross file."""
    for line in target.cross_file.read_text().splitlines():
        if line.startswith("c = ["):
            return [w.strip(" '") for w in line[len("c = ["):-1].split(",")]
    raise AssertionError(f"{target.cross_file} names no C compiler")


def _require_toolchain(target: Target, tmp_path: Path) -> None:
    """Skip, saying what to install, unless the cross file's compiler links
    a program and it runs here."""
    (tmp_path / "probe.c").write_text("int main(void) { return 0; }\n")
    probe = tmp_path / "probe"
    proc = subprocess.run([*_compiler(target), str(tmp_path / "probe.c"), "-o", str(probe)],
                          capture_output=True, check=False)
    if proc.returncode != 0 or (target.runner and not shutil.which(target.runner[0])):
        pytest.skip(target.toolchain_hint)
    run([*target.runner, probe])


@pytest.fixture(scope="session", params=TARGETS)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param


@pytest.fixture(scope="session")
def host_tree(target: Target) -> Path:
    return arch_host_tree(target.name)


def _project(tmp_path: Path, text: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "meson.build").write_text(text)
    return src


def test_cross_file_describes_the_machine(meson: Meson, tmp_path: Path, target: Target) -> None:
    """Parsed by each Meson without a compiler (a project with no language)."""
    src = _project(tmp_path, "project('t')\nmessage('host', host_machine.cpu_family(), "
                             "host_machine.cpu(), host_machine.endian(), "
                             "meson.is_cross_build())\n")
    out = meson.run("setup", "--cross-file", target.cross_file, tmp_path / "build", src).stdout
    assert f"Message: host {target.describe} true" in out


def test_cross_file_builds_code_for_the_machine(pypi_meson: Meson, tmp_path: Path,
                                                target: Target) -> None:
    _require_toolchain(target, tmp_path)
    src = _project(tmp_path, "project('t', 'c')\nexecutable('t', 't.c')\n")
    (src / "t.c").write_text(f"int main(void) {{ return sizeof(void *) * 8 == {target.bits} "
                             "? 0 : 1; }\n")
    build = tmp_path / "build"
    pypi_meson.run("setup", "--cross-file", target.cross_file, build, src)
    pypi_meson.ninja(build)
    assert _elf_class_machine(build / "t") == target.elf
    run([*target.runner, build / "t"])


def _cross_file_with_this_gcc(tmp_path: Path) -> Path:
    """The i386 cross file with plain gcc as the C compiler: the host machine
    stays i386 (what capsule.shim() reads), and Meson's compiler check passes
    without gcc-multilib. Nothing is compiled for i386."""
    text = I386.cross_file.read_text().replace("c = ['gcc', '-m32']", "c = ['gcc']")
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


def _mixed_tree(tmp_path: Path, host_tree: Path, target: Target) -> Path:
    """This machine's zlib and the target's, each in its multiarch directory."""
    root = tmp_path / "mixed"
    for soname in ("libz.so.1",):
        for src, libdir in ((SYSTEM_LIBDIR / soname, root / MULTIARCH),
                            (host_tree / f"lib/{target.triplet}" / soname,
                             root / f"lib/{target.triplet}")):
            libdir.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(src), libdir / soname)
    return root


SHIM = "project('s', 'c')\ncapsule = import('capsule')\nshim = capsule.shim({args})\n"
# A program using zlib through the shim (linked to it, as a program built
# against the runtime's libz would be).
PROGRAM = """
executable('zprog', 'zprog.c', link_with: shim)
"""
ZPROG = r"""
#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    const char *text = "capsule capsule capsule capsule";
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
                                              host_tree: Path, target: Target) -> None:
    """One mixed tree: natively this machine's zlib makes an x86_64 shim;
    with the target's cross file its zlib is read and the shim, libcapsule
    and the program are the target's, and the program runs through the
    capsule."""
    _require_toolchain(target, tmp_path)
    tree = _mixed_tree(tmp_path, host_tree, target)
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{tree}', prefix: '{tree}'")
    native = _setup(pypi_meson, tmp_path, text)
    assert native.returncode == 0, native.stdout + native.stderr
    pypi_meson.ninja(tmp_path / "build")
    assert _elf_class_machine(tmp_path / "build/libz.so.1") == (2, 62)   # ELF64, EM_X86_64
    (tmp_path / "src/zprog.c").write_text(ZPROG)
    cross = _setup(pypi_meson, tmp_path, text + PROGRAM, "--cross-file", target.cross_file)
    assert cross.returncode == 0, cross.stdout + cross.stderr
    build = tmp_path / "build"
    pypi_meson.ninja(build)
    for built in ("libz.so.1", "libcapsule.so.0", "zprog"):
        assert _elf_class_machine(build / built) == target.elf, built
    env = dict(os.environ, CAPSULE_DEBUG="ns")
    proc = subprocess.run([*target.runner, str(build / "zprog")], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{target.bits}-bit zlib 1.2.13\n"
    # The real zlib came from the tree's directory for the target.
    assert f"{tree}/lib/{target.triplet}/libz.so.1" in proc.stderr


def test_only_tree_of_the_target(pypi_meson: Meson, tmp_path: Path, host_tree: Path,
                                 target: Target) -> None:
    """The tree of the target's packages: nothing for x86_64 in it, its zlib
    found (through its ld.so.cache) for a host machine of the target."""
    text = SHIM.format(args=f"'libz.so.1', search_prefix: '{host_tree}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text))
    assert "library libz.so.1 not found under" in line
    if target is I386:
        cross_file = _cross_file_with_this_gcc(tmp_path)
    else:
        _require_toolchain(target, tmp_path)
        cross_file = target.cross_file
    proc = _setup(pypi_meson, tmp_path, text, "--cross-file", cross_file)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    source = (tmp_path / "build/capsule-shims/libz.so.1.c").read_text()
    assert f"this shim was rendered for {target.name}" in source


def test_x86_64_symbols_file_on_an_i386_host(pypi_meson: Meson, tmp_path: Path) -> None:
    symbols = tmp_path / "libz.json"
    symbols.write_text(symbolsfile.dump(read_library(SYSTEM_LIBDIR / "libz.so.1")))
    text = SHIM.format(args=f"'libz.so.1', symbols: '{symbols}'")
    line = _error_line(_setup(pypi_meson, tmp_path, text, "--cross-file",
                              _cross_file_with_this_gcc(tmp_path)))
    assert ("capsule.shim('libz.so.1'): library libz.so.1 is ELF64 for EM_X86_64: capsule "
            "shims for i386 support only i386 ELF32 (EM_386) libraries") in line
