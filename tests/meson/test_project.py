"""capsule's own top-level project: a distribution's `meson install` delivers
libcapsule and the Meson module; a consumer can use capsule as a subproject."""

from __future__ import annotations

import shutil
from pathlib import Path

from elfinfo import dynamic
from mesontools import CONSUMER, Meson

from helpers import REPO


def _installed(meson: Meson, tmp_path: Path, *options: str) -> Path:
    build = tmp_path / "build"
    meson.run("setup", build, REPO, "--prefix=/usr", *options)
    meson.ninja(build)
    destdir = tmp_path / "dest"
    meson.run("install", "-C", build, "--destdir", destdir)
    return destdir


def test_install_delivers_runtime_and_module(meson: Meson, tmp_path: Path) -> None:
    destdir = _installed(meson, tmp_path)
    (pth,) = destdir.rglob("capsule-meson.pth")
    purelib = pth.parent
    package = purelib / "capsule_module"
    assert (package / "meson_module.py").is_file()
    assert (package / "meson_hook.py").is_file()
    assert (package / "_data" / "shim-templates" / "shim.c.in").is_file()
    assert (package / "_data" / "libcapsule" / "include" / "capsule.h").is_file()
    (lib,) = destdir.rglob("libcapsule.so.0")
    assert dynamic(lib).soname == "libcapsule.so.0"
    assert list(destdir.rglob("capsule.pc"))


def test_install_without_python_module(pypi_meson: Meson, tmp_path: Path) -> None:
    destdir = _installed(pypi_meson, tmp_path, "-Dpython_module=false")
    assert not list(destdir.rglob("capsule-meson.pth"))
    assert not list(destdir.rglob("meson_module.py"))
    assert list(destdir.rglob("libcapsule.so.0"))


def test_subproject_provides_libcapsule(meson: Meson, tree: Path, tmp_path: Path) -> None:
    """With capsule as a subproject, shims link to the subproject's libcapsule
    (found through its override of the `capsule` dependency)."""
    src = tmp_path / "src"
    shutil.copytree(CONSUMER, src)
    (src / "subprojects").mkdir()
    (src / "subprojects" / "capsule").symlink_to(REPO)
    text = (src / "meson.build").read_text()
    text = text.replace("capsule = import('capsule')",
                        "dependency('capsule', fallback: ['capsule', 'capsule_dep'])\n"
                        "capsule = import('capsule')")
    (src / "meson.build").write_text(text)
    build = tmp_path / "build"
    meson.run("setup", build, src, f"-Dtree={tree}", "-Dcapsule:python_module=false")
    meson.ninja(build)
    assert not (build / "libcapsule.so.0").exists()   # not built a second time
    assert (build / "subprojects" / "capsule" / "libcapsule" / "libcapsule.so.0").exists()
    assert "libcapsule.so.0" in dynamic(build / "libz.so.1").needed
    meson.run("test", "-C", build, "--print-errorlogs")


def test_share_keyword_given_or_not(meson: Meson, tmp_path: Path) -> None:
    """Without `share:` the shim leaves the choice to libcapsule's default
    list (`.share = NULL`); `share: []` opts out; a list replaces it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "meson.build").write_text(
        "project('s', 'c')\ncapsule = import('capsule')\n"
        "capsule.shim('libz.so.1', prefix: '/')\n"
        "capsule.shim('libexpat.so.1', prefix: '/', share: [])\n")
    build = tmp_path / "build"
    meson.run("setup", build, src)
    sources = {p.name: p.read_text() for p in (build / "capsule-shims").glob("*.c")}
    (z,) = [text for name, text in sources.items() if name.startswith("libz")]
    (expat,) = [text for name, text in sources.items() if name.startswith("libexpat")]
    assert ".share = NULL," in z
    assert ".share = __capsule_shim_share," in expat and "{ NULL };" in expat
