"""A consumer project with `import('capsule')`, driven by real meson and ninja
runs, under PyPI's Meson (fresh venv) and Debian's Meson 1.0.1 (system-site
venv): configure, build, regenerate, test, install."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from elfinfo import dynamic
from mesontools import Meson, copy_consumer

from capsule_module import elfreader, symbolsfile
from helpers import MULTIARCH, SYSTEM_LIBDIR, add_library, compile_c, run

HERE = Path(__file__).resolve().parent
REGENERATED = "The Meson build system"   # printed by each run of meson, so by ninja's regeneration


def exported(path: Path) -> set[tuple[str, str | None, bool]]:
    return {(s.name, s.version, s.default) for s in elfreader.read_library(path).symbols}


def setup(meson: Meson, tree: Path, tmp_path: Path, *options: str) -> tuple[Path, Path]:
    src = copy_consumer(tmp_path / "src")
    build = tmp_path / "build"
    meson.run("setup", build, src, f"-Dtree={tree}", *options)
    return src, build


@pytest.fixture(scope="session")
def zround_system(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zround linked the ordinary way, against the system's libz."""
    out = tmp_path_factory.mktemp("zround") / "zround"
    return compile_c(out, [HERE / "consumer" / "zround.c"], libs=["-lz"])


def test_pth_lands_in_site_packages(meson: Meson) -> None:
    site = meson.site_packages()
    assert (site / "capsule-meson.pth").is_file()
    assert (site / "capsule_module" / "_data" / "libcapsule" / "include" / "capsule.h").is_file()
    assert (site / "capsule_module" / "_data" / "shim-templates" / "shim.c.in").is_file()


def test_shim_is_named_and_linked_as_promised(meson: Meson, tree: Path, tmp_path: Path) -> None:
    _, build = setup(meson, tree, tmp_path)
    meson.run("compile", "-C", build)
    shim = build / "libz.so.1"
    info = dynamic(shim)
    assert info.soname == "libz.so.1"
    assert "libcapsule.so.0" in info.needed
    assert info.runpath is not None and "$ORIGIN" in info.runpath
    assert exported(shim) == exported(tree / MULTIARCH / "libz.so.1")
    assert (build / "capsule-shims" / "libz.so.1.c").is_file()
    # The development name a program may dlopen answers with the shim too.
    assert os.readlink(build / "libz.so") == "libz.so.1"


def test_shim_runs_from_the_build_dir(meson: Meson, tree: Path, tmp_path: Path,
                                      zround_system: Path) -> None:
    _, build = setup(meson, tree, tmp_path)
    meson.run("compile", "-C", build)
    meson.run("test", "-C", build, "--print-errorlogs")
    # Only the shim's own directory on the path: libcapsule comes from its RUNPATH.
    out = run([zround_system], env={"LD_LIBRARY_PATH": str(build)})
    assert "zround: ok" in out.stdout


def test_meson_build_edit_regenerates(meson: Meson, tree: Path, tmp_path: Path) -> None:
    src, build = setup(meson, tree, tmp_path)
    meson.ninja(build)
    with open(src / "meson.build", "a") as f:
        f.write("message('capsule-test edited')\n")
    out = meson.ninja(build)
    assert REGENERATED in out.stdout
    assert "capsule-test edited" in out.stdout


def test_symbols_file_change_regenerates(meson: Meson, tree: Path, tmp_path: Path) -> None:
    symbols = tmp_path / "libz.symbols.json"
    lib = elfreader.read_library(tree / MULTIARCH / "libz.so.1")
    symbols.write_text(symbolsfile.dump(lib))
    _, build = setup(meson, tree, tmp_path, f"-Dsymbols={symbols}")
    meson.ninja(build)
    shim = build / "fromsymbols" / "libz.so.1"
    assert exported(shim) == exported(tree / MULTIARCH / "libz.so.1")
    generated = build / "fromsymbols" / "capsule-shims" / "libz.so.1.c"
    assert '"crc32\\0"' in generated.read_text()

    lib.symbols[:] = [s for s in lib.symbols if s.name != "crc32"]
    symbols.write_text(symbolsfile.dump(lib))
    out = meson.ninja(build)
    assert REGENERATED in out.stdout
    assert '"crc32\\0"' not in generated.read_text()
    assert "crc32" not in {name for name, _, _ in exported(shim)}


def test_unchanged_reconfigure_rebuilds_nothing(meson: Meson, tree: Path, tmp_path: Path) -> None:
    src, build = setup(meson, tree, tmp_path)
    meson.ninja(build)
    generated = build / "capsule-shims" / "libz.so.1.c"
    before = generated.stat().st_mtime_ns
    meson.run("setup", "--reconfigure", build, src)
    assert generated.stat().st_mtime_ns == before
    assert "no work to do" in meson.ninja(build).stdout


@pytest.mark.parametrize("shim_dir", ["", "lib/capsule-shims"])
def test_install(meson: Meson, tree: Path, tmp_path: Path, shim_dir: str,
                 zround_system: Path) -> None:
    _, build = setup(meson, tree, tmp_path, "--prefix=/opt/consumer", "--libdir=lib",
                     f"-Dshim_dir={shim_dir}")
    meson.ninja(build)
    destdir = tmp_path / "dest"
    meson.run("install", "-C", build, "--destdir", destdir)
    libdir = destdir / "opt" / "consumer" / "lib"
    shim_dir_path = destdir / "opt" / "consumer" / (shim_dir or "lib")
    shim = shim_dir_path / "libz.so.1"
    assert (libdir / "libcapsule.so.0").is_file()
    info = dynamic(shim)
    assert info.soname == "libz.so.1"
    assert info.runpath == ("$ORIGIN" if not shim_dir else "$ORIGIN/..")
    assert dynamic(libdir / "libcapsule.so.0").soname == "libcapsule.so.0"
    assert os.readlink(shim_dir_path / "libz.so") == "libz.so.1"
    # The installed shim finds the installed libcapsule by itself.
    out = run([zround_system], env={"LD_LIBRARY_PATH": str(shim_dir_path)})
    assert "zround: ok" in out.stdout


def test_development_name_can_be_left_out(meson: Meson, tree: Path, tmp_path: Path) -> None:
    """For a libdir where a -dev package owns libz.so: install tags, or devel_link: false."""
    _, build = setup(meson, tree, tmp_path, "--prefix=/opt/consumer", "--libdir=lib")
    meson.ninja(build)
    runtime = tmp_path / "runtime"
    meson.run("install", "-C", build, "--destdir", runtime, "--tags", "runtime")
    assert (runtime / "opt/consumer/lib/libz.so.1").is_file()
    assert not (runtime / "opt/consumer/lib/libz.so").is_symlink()

    _, build = setup(meson, tree, tmp_path / "off", "--prefix=/opt/consumer", "--libdir=lib",
                     "-Ddevel_link=false")
    meson.ninja(build)
    assert dynamic(build / "libz.so.1").soname == "libz.so.1"
    assert not (build / "libz.so").is_symlink()
    dest = tmp_path / "dest"
    meson.run("install", "-C", build, "--destdir", dest)
    assert (dest / "opt/consumer/lib/libz.so.1").is_file()
    assert not (dest / "opt/consumer/lib/libz.so").is_symlink()


def test_uninstalled_shims_install_no_libcapsule(meson: Meson, tree: Path, tmp_path: Path) -> None:
    _, build = setup(meson, tree, tmp_path, "--prefix=/opt/consumer", "--libdir=lib",
                     "-Dinstall_shim=false")
    meson.ninja(build)
    assert (build / "libcapsule.so.0").is_file()   # built for the shims all the same
    destdir = tmp_path / "dest"
    meson.run("install", "-C", build, "--destdir", destdir)
    installed = [p for p in destdir.rglob("*") if not p.is_dir()] if destdir.exists() else []
    assert installed == []


def test_symbols_file_needs_no_tree(meson: Meson, tree: Path, tmp_path: Path) -> None:
    """With symbols:, the library is not read: prefix need not exist here."""
    src = tmp_path / "src"
    src.mkdir()
    lib = elfreader.read_library(tree / MULTIARCH / "libz.so.1")
    (src / "libz.json").write_text(symbolsfile.dump(lib))
    (src / "meson.build").write_text(
        "project('symbols-only', 'c')\n"
        "import('capsule').shim('libz.so.1', prefix: '/nonexistent/host', symbols: 'libz.json')\n")
    build = tmp_path / "build"
    meson.run("setup", build, src)
    meson.ninja(build)
    assert exported(build / "libz.so.1") == exported(tree / MULTIARCH / "libz.so.1")


def build_files(build: Path) -> set[str]:
    return set(json.loads((build / "meson-info" / "intro-buildsystem_files.json").read_text()))


def test_library_found_through_the_cache_is_a_build_file(pypi_meson: Meson, tmp_path: Path) -> None:
    """libz only in /opt/z/lib, known to the tree's ld.so.cache, as a symlink
    libz.so.1 -> libz.so.1.2.x; the cache itself an absolute symlink to
    /var/cache/ldconfig/ld.so.cache, which means the tree's copy. The files the
    lookup read are build-definition files (Meson records a symlink as the file
    it leads to), and touching each re-runs Meson."""
    tree = tmp_path / "tree"
    libdir = tree / "opt" / "z" / "lib"
    libdir.mkdir(parents=True)
    real = add_library(libdir, SYSTEM_LIBDIR / "libz.so.1")
    (tree / "etc").mkdir()
    (tree / "etc" / "ld.so.conf").write_text("/opt/z/lib\n")
    run(["ldconfig", "-r", str(tree)])
    assert (libdir / "libz.so.1").is_symlink()
    cache = tree / "var" / "cache" / "ldconfig" / "ld.so.cache"
    cache.parent.mkdir(parents=True)
    (tree / "etc" / "ld.so.cache").rename(cache)
    (tree / "etc" / "ld.so.cache").symlink_to("/var/cache/ldconfig/ld.so.cache")
    src = tmp_path / "src"
    src.mkdir()
    (src / "meson.build").write_text(
        f"project('cached', 'c')\nimport('capsule').shim('libz.so.1', search_prefix: '{tree}')\n")
    build = tmp_path / "build"
    pypi_meson.run("setup", build, src)
    pypi_meson.ninja(build)
    files = build_files(build)
    assert {str(cache), str(real)} <= files, files
    for path in (cache, real):
        assert "no work to do" in pypi_meson.ninja(build).stdout
        os.utime(path)
        assert REGENERATED in pypi_meson.ninja(build).stdout, path


def test_regeneration_uses_the_same_interpreter(meson: Meson, tree: Path, tmp_path: Path) -> None:
    """ninja re-runs meson with the interpreter that configured: the one that
    has the .pth (for Debian's meson, the system-site venv's python)."""
    _, build = setup(meson, tree, tmp_path)
    regen = (build / "build.ninja").read_text()
    line = next(line for line in regen.splitlines() if "--internal regenerate" in line)
    assert str(meson.python) in line or os.path.realpath(meson.python) in line or \
        str(meson.command[0]) in line


def test_c_is_added_when_missing(meson: Meson, tree: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "meson.build").write_text(
        "project('no-c')\n"
        f"import('capsule').shim('libz.so.1', search_prefix: '{tree}')\n")
    meson.run("setup", tmp_path / "build", src)
    meson.ninja(tmp_path / "build")
    assert dynamic(tmp_path / "build" / "libz.so.1").soname == "libz.so.1"
