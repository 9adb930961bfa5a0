"""scripts/glibc_tree.py's reading of apt sources (the mirror it fetches the
glibc matrix's packages from) and its private apt options; the fetch itself
runs in the glibc matrix (scripts/test.sh --glibc-matrix)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from helpers import REPO


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("glibc_tree", REPO / "scripts/glibc_tree.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("glibc_tree", module)
    spec.loader.exec_module(module)
    return module


gt = _load()


def test_deb822_skips_security_disabled_and_third_party(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "a.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: https://third.example/apt\nSuites: stable\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n\n"
        "# a comment\nTypes: deb-src deb\n"
        "URIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/k.gpg\n")
    (d / "b.list.disabled").write_text("deb http://never.example/debian bookworm main\n")
    got = gt.system_mirror((tmp_path / "sources.list", d))
    assert got == gt.Mirror("http://mirror.example/debian", "/usr/share/keyrings/k.gpg")


def test_one_line_sources(tmp_path: Path) -> None:
    f = tmp_path / "sources.list"
    f.write_text("# deb http://commented.example/debian bookworm main\n"
                 "deb http://security.example/debian-security bookworm-security main\n"
                 "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n")
    assert gt.system_mirror((f,)) == gt.Mirror("http://m.example/debian/", "/k.gpg")


def test_no_debian_archive_is_one_error(tmp_path: Path) -> None:
    f = tmp_path / "sources.list"
    f.write_text("deb https://third.example/apt stable main\n")
    with pytest.raises(gt.TreeError, match="no Debian archive"):
        gt.system_mirror((f, tmp_path / "missing.d"))


def test_apt_state_is_private(tmp_path: Path) -> None:
    opts = gt._apt_options(tmp_path)
    values = dict(o.split("=", 1) for o in opts[1::2])
    for key in ("Dir::State", "Dir::State::status", "Dir::Etc::SourceList",
                "Dir::Etc::SourceParts", "Dir::Etc::Preferences", "Dir::Etc::PreferencesParts",
                "Dir::Cache"):
        assert values[key].startswith(f"{tmp_path}/"), key


def test_unknown_release(tmp_path: Path) -> None:
    with pytest.raises(gt.TreeError, match="unknown release"):
        gt.ensure_tree("bookworm", tmp_path)


def test_ld_wrappers_run_the_linker_through_that_glibc(tmp_path: Path) -> None:
    glibc = gt.GlibcTree("trixie", tmp_path / "g l" / "root", "2.41-12")
    tree = gt.BinutilsTree("trixie", tmp_path / "binutils-trixie" / "root", "2.44-3", glibc)
    gt._write_ld_wrappers(tree)
    for name in ("ld", "ld.bfd"):
        text = (tree.bindir / name).read_text()
        assert (tree.bindir / name).stat().st_mode & 0o111
        assert f"exec '{glibc.ldso}' --library-path" in text, text
        assert text.rstrip().endswith(f'{tree.root}/usr/bin/{gt.LD_NAME} "$@"'), text


def test_print_bindir_needs_binutils() -> None:
    with pytest.raises(SystemExit):
        gt.main(["trixie", "--print", "bindir"])
