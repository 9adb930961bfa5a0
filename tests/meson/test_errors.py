"""Bad input at configure time: `meson setup` fails with one clear message
naming the file and the problem, never a Python traceback, and leaves no
generated shim source behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mesontools import Meson

from helpers import MULTIARCH, SYSTEM_LIBDIR, compile_c, run

PROJECT = """project('bad', 'c')
capsule = import('capsule')
capsule.shim({args})
"""


def make_tree(root: Path) -> Path:
    libdir = root / MULTIARCH
    libdir.mkdir(parents=True)
    return libdir


def configure(meson: Meson, tmp_path: Path, args: str) -> str:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "meson.build").write_text(PROJECT.format(args=args))
    build = tmp_path / "build"
    proc = meson.run("setup", build, src, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output and "Unhandled python exception" not in output, output
    generated = build / "capsule-shims"
    assert not generated.exists() or not any(generated.iterdir()), output
    return output


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "ERROR:" in line]
    assert len(lines) == 1, output
    return lines[0]


def shim_of(tree: Path, soname: str, extra: str = "") -> str:
    return f"'{soname}', prefix: '/host', search_prefix: '{tree}'{extra}"


def test_missing_library(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libnothere.so.1")))
    assert "libnothere.so.1" in line and "not found" in line and str(tree) in line


def test_missing_search_prefix(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "no-such-tree"
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libz.so.1")))
    assert str(tree) in line and "not a directory" in line


def test_missing_prefix_names_prefix(pypi_meson: Meson, tmp_path: Path) -> None:
    """Without search_prefix the tree is prefix: the message says so."""
    tree = tmp_path / "no-such-tree"
    line = error_line(configure(pypi_meson, tmp_path, f"'libz.so.1', prefix: '{tree}'"))
    assert (f"prefix (the search tree when search_prefix is not given) '{tree}' "
            "is not a directory") in line


def test_symbols_file_with_export_still_needs_the_tree(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "no-such-tree"
    line = error_line(configure(pypi_meson, tmp_path, shim_of(
        tree, "libz.so.1", ", symbols: 'libz.json', export: ['libexpat.so.1']")))
    assert f"search_prefix '{tree}' is not a directory" in line


@pytest.mark.parametrize("kind, problem", [
    ("fifo", "is not a regular file, so not a symbols file"),
    ("directory", "is a directory, not a symbols file"),
])
def test_symbols_file_not_a_file(pypi_meson: Meson, tmp_path: Path, kind: str, problem: str) -> None:
    """A FIFO must not hang configure; a directory is named as such."""
    symbols = tmp_path / "src" / "libz.json"
    symbols.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(symbols)
    else:
        symbols.mkdir()
    line = error_line(configure(pypi_meson, tmp_path, "'libz.so.1', symbols: 'libz.json'"))
    assert f"{symbols}: {problem}" in line


def test_fifo_library(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    os.mkfifo(make_tree(tree) / "libz.so.1")
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libz.so.1")))
    assert "libz.so.1 not found" in line   # skipped as the runtime skips it


def test_not_elf(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (make_tree(tree) / "libbad.so.1").write_text("INPUT(-lbad)\n")
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libbad.so.1")))
    assert "libbad.so.1" in line and "not an ELF file" in line


def test_truncated_elf(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    data = (SYSTEM_LIBDIR / "libz.so.1").read_bytes()
    (make_tree(tree) / "libz.so.1").write_bytes(data[: len(data) // 3])
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libz.so.1")))
    assert f"{tree}/{MULTIARCH}/libz.so.1" in line and "truncated" in line


def test_flipped_elf_class(pypi_meson: Meson, tmp_path: Path) -> None:
    """A 64-bit file claiming to be ELFCLASS32: malformed, and said so."""
    tree = tmp_path / "tree"
    data = bytearray((SYSTEM_LIBDIR / "libz.so.1").read_bytes())
    data[4] = 1   # EI_CLASS = ELFCLASS32
    (make_tree(tree) / "libz.so.1").write_bytes(bytes(data))
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libz.so.1")))
    assert f"{tree}/{MULTIARCH}/libz.so.1: has a bad section header size" in line


def test_32_bit_library(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    source = tmp_path / "f.c"
    source.write_text("int f(void) { return 1; }\n")
    obj = tmp_path / "f.o"
    run(["gcc", "-m32", "-fPIC", "-c", "-o", obj, source])
    lib = make_tree(tree) / "libf.so.1"
    run(["ld", "-m", "elf_i386", "-shared", "-soname", "libf.so.1", "-o", lib, obj])
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libf.so.1")))
    assert str(lib) in line and "ELF32" in line and "EM_386" in line


def test_no_soname(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    source = tmp_path / "f.c"
    source.write_text("int f(void) { return 1; }\n")
    compile_c(make_tree(tree) / "libnosoname.so.1", [source], flags=["-shared", "-fPIC"])
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libnosoname.so.1")))
    assert "libnosoname.so.1" in line and "SONAME" in line


def test_no_exported_symbols(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    source = tmp_path / "f.c"
    source.write_text("__attribute__((visibility(\"hidden\"))) int f(void) { return 1; }\n")
    compile_c(make_tree(tree) / "libempty.so.1", [source], shared_soname="libempty.so.1")
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libempty.so.1")))
    assert "libempty.so.1" in line and "exports no" in line


def test_malformed_symbols_file(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    symbols = tmp_path / "src" / "libz.json"
    symbols.parent.mkdir()
    symbols.write_text('{"format": "capsule-symbols", "format_version": 1, "soname": ')
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libz.so.1", ", symbols: 'libz.json'")))
    assert "libz.json" in line and "JSON" in line


@pytest.mark.parametrize("option", ["", "export"])
def test_a_library_that_calls_itself_otherwise(pypi_meson: Meson, tmp_path: Path,
                                               option: str) -> None:
    """The tree's libfoo.so.1 is a copy of libfoo.so.2 (as the shim itself,
    or as an export): one sentence naming both names."""
    tree = tmp_path / "tree"
    source = tmp_path / "f.c"
    source.write_text("int f(void) { return 1; }\n")
    lib = compile_c(make_tree(tree) / "libfoo.so.1", [source], shared_soname="libfoo.so.2")
    if option:
        shutil.copy2(SYSTEM_LIBDIR / "libz.so.1", lib.parent / "libz.so.1")
    args = shim_of(tree, "libz.so.1", ", export: ['libfoo.so.1']") if option else \
        shim_of(tree, "libfoo.so.1")
    line = error_line(configure(pypi_meson, tmp_path, args))
    assert (f"library libfoo.so.1 ({lib}) has DT_SONAME 'libfoo.so.2', not 'libfoo.so.1': it "
            "is another library, and a shim named libfoo.so.1 would not be it") in line


def test_a_library_whose_soname_is_a_path(pypi_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    source = tmp_path / "f.c"
    source.write_text("int f(void) { return 1; }\n")
    lib = compile_c(make_tree(tree) / "libodd.so.1", [source], shared_soname="../libodd.so.1")
    line = error_line(configure(pypi_meson, tmp_path, shim_of(tree, "libodd.so.1")))
    assert (f"library libodd.so.1 ({lib}) has DT_SONAME '../libodd.so.1', which is not a file "
            "name such as libz.so.1") in line


@pytest.mark.parametrize("args, expected", [
    ("'lib/z.so.1'", "must be a library file name such as libz.so.1, not a path (the soname "
                     "'z.so.1', found in search_prefix)"),
    ("'libz.so.1', prefix: 'host'", "must be an absolute path"),
    ("'libz.so.1', exclude: ['a b']", "must be a library file name"),
    ("'libz.so.1', share: ['lib/X11.so.6']", "must be a library file name"),
    ("'libz.so.1', share: ['libz.so.1']", "cannot be both the shim and in share"),
    ("'libz.so.1', frobnicate: true", "frobnicate"),
])
def test_bad_arguments(pypi_meson: Meson, tmp_path: Path, args: str, expected: str) -> None:
    line = error_line(configure(pypi_meson, tmp_path, args))
    assert expected in line


def test_error_under_debian_meson(debian_meson: Meson, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (make_tree(tree) / "libbad.so.1").write_text("not a library\n")
    line = error_line(configure(debian_meson, tmp_path, shim_of(tree, "libbad.so.1")))
    assert "libbad.so.1" in line and "not an ELF file" in line


def test_failed_reconfigure_keeps_the_good_shim(pypi_meson: Meson, tmp_path: Path) -> None:
    """A later bad input fails the configure but leaves the last good
    generated source whole."""
    tree = tmp_path / "tree"
    libdir = make_tree(tree)
    shutil.copy2(SYSTEM_LIBDIR / "libz.so.1", libdir / "libz.so.1")
    src = tmp_path / "src"
    src.mkdir()
    (src / "meson.build").write_text(PROJECT.format(args=shim_of(tree, "libz.so.1")))
    build = tmp_path / "build"
    pypi_meson.run("setup", build, src)
    generated = build / "capsule-shims" / "libz.so.1.c"
    good = generated.read_text()
    (libdir / "libz.so.1").write_text("garbage\n")
    proc = pypi_meson.run("setup", "--reconfigure", build, src, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "not an ELF file" in proc.stdout + proc.stderr
    assert generated.read_text() == good
