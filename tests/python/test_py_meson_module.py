"""capsule.shim() paths the Meson suite does not reach, driven through the
project venv's own Meson (capsule installed there with its import hook):
a soname without ".so", a symbols file given as files() or describing another
library, a library the renderer refuses, and an unwritable output directory.
Each ends in one `ERROR:` line naming the input, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from py_support import system_lib

from capsule_module import symbolsfile
from capsule_module.elfreader import read_library
from helpers import MULTIARCH, compile_c, meson_command, run

PROJECT = "project('t', 'c')\ncapsule = import('capsule')\n{body}\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / MULTIARCH).mkdir(parents=True)
    shutil.copy(system_lib("libz.so.1").resolve(), root / MULTIARCH / "libz.so.1")
    return root


def _setup(tmp_path: Path, body: str, *, ok: bool,
           prepare_build: bool = False) -> tuple[str, Path]:
    src, build = tmp_path / "src", tmp_path / "build"
    src.mkdir(exist_ok=True)
    (src / "meson.build").write_text(PROJECT.format(body=body))
    if prepare_build:  # a file where the module writes its sources
        build.mkdir()
        (build / "capsule-shims").write_text("")
    proc = run([*meson_command(), "setup", str(build), str(src)], check=False)
    output = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == ok, output
    assert "Traceback" not in output and "Unhandled python exception" not in output, output
    return output, build


def _error(output: str) -> str:
    lines = [line for line in output.splitlines() if "ERROR:" in line]
    assert len(lines) == 1, output
    return lines[0]


def test_soname_without_so_is_refused(tmp_path: Path, tree: Path) -> None:
    output, _ = _setup(tmp_path, f"capsule.shim('libz', search_prefix: '{tree}')", ok=False)
    assert "soname 'libz' does not look like a shared library name" in _error(output)


def test_symbols_file_given_as_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "z.json").write_text(symbolsfile.dump(read_library(system_lib("libz.so.1"))))
    _, build = _setup(tmp_path, "capsule.shim('libz.so.1', symbols: files('z.json')[0])", ok=True)
    shim_c = build / "capsule-shims" / "libz.so.1.c"
    assert shim_c.is_file() and '"deflate\\0"' in shim_c.read_text()
    # The symbols file is a build-definition file: editing it re-runs Meson.
    assert str(src / "z.json") in run([*meson_command(), "introspect", "--buildsystem-files",
                                       str(build)]).stdout


def test_symbols_file_of_another_library(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "z.json").write_text(symbolsfile.dump(read_library(system_lib("libz.so.1"))))
    output, _ = _setup(tmp_path, "capsule.shim('libexpat.so.1', symbols: 'z.json')", ok=False)
    line = _error(output)
    assert "z.json" in line and "describes 'libz.so.1', not 'libexpat.so.1'" in line


def test_library_the_renderer_refuses(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / MULTIARCH).mkdir(parents=True)
    c = tmp_path / "reserved.c"
    c.write_text("int __capsule_stub_0(void) { return 1; }\n")
    compile_c(root / MULTIARCH / "libreserved.so.1", [c], shared_soname="libreserved.so.1")
    output, build = _setup(tmp_path, f"capsule.shim('libreserved.so.1', search_prefix: '{root}')",
                           ok=False)
    line = _error(output)
    assert "capsule.shim('libreserved.so.1')" in line and "'__capsule_stub_0'" in line
    assert "reserved for the shim itself" in line
    assert not (build / "capsule-shims").exists()


def test_unwritable_output_directory(tmp_path: Path, tree: Path) -> None:
    output, _ = _setup(tmp_path, f"capsule.shim('libz.so.1', search_prefix: '{tree}')",
                       ok=False, prepare_build=True)
    line = _error(output)
    assert "capsule.shim('libz.so.1'): cannot write" in line and "capsule-shims" in line
