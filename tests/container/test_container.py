"""The deployment capsule is for, for real: a bubblewrap sandbox whose root
is a runtime unpacked from Debian packages (no Mesa, glvnd or Vulkan loader;
a zlib and an expat Mesa cannot use), the host's root read-only at
/run/host, and the graphics shims (prefix /run/host, built from symbols
files) installed in the runtime's libdir (examples/container/)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from capsule_module import ldd
from helpers import REPO, run, venv_bin

sys.path.insert(0, str(REPO / "tests" / "graphics"))
from test_graphics import ATTEMPTS, Outcome, _eglinfo_works, _png_works, _vulkan_works

from graphics_world import start_xvfb

EXAMPLE = REPO / "examples" / "container"
LIBDIR = "usr/lib/x86_64-linux-gnu"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("container", EXAMPLE / "container.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


container = _load()


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "true"], capture_output=True,
                           text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"bwrap cannot make a sandbox here: {probe.stderr.strip()[-300:]}")
    path = tmp_path_factory.mktemp("container")
    container.setup(path)
    return path


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    yield from start_xvfb()


def inside(work: Path, argv: list[str], display: str, *options: str) -> Outcome:
    """argv in the sandbox with CAPSULE_DEBUG=ns; options go to bwrap."""
    proc = run([*container.sandbox(work), "--setenv", "CAPSULE_DEBUG", "ns", *options, *argv],
               env={"DISPLAY": display}, check=False, timeout=120)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def test_the_runtime_has_no_host_graphics_stack(work: Path) -> None:
    root = work / "root"
    names = {p.name for p in root.rglob("*")}
    for real in ("libGLX_mesa.so.0", "libEGL_mesa.so.0", "libGLdispatch.so.0", "swrast_dri.so",
                 "libvulkan_lvp.so", "libglapi.so.0", "libLLVM-15.so.1"):
        assert real not in names
    for soname in container.runtime.SHIMMED:
        shim = root / LIBDIR / soname
        assert "libcapsule.so.0" in run(["readelf", "-d", str(shim)]).stdout, soname
        assert (root / LIBDIR / soname.rsplit(".", 1)[0]).is_symlink()   # the development name


def test_the_hosts_mesa_without_capsules_fails_on_the_runtime(work: Path, display: str) -> None:
    """The naive way: the host's libraries on the library path, after the runtime's."""
    o = inside(work, ["glxinfo", "-B"], display,
               "--setenv", "LD_LIBRARY_PATH", f"/lib/x86_64-linux-gnu:/run/host/{LIBDIR}",
               "--setenv", "LIBGL_DRIVERS_PATH", f"/run/host/{LIBDIR}/dri")
    assert "libLLVM-15.so.1: undefined symbol: uncompress" in o.stderr, o.stderr[-2000:]
    assert "llvmpipe" not in o.stdout


PROGRAMS = {
    "glxinfo": (["glxinfo", "-B"], lambda o: o.returncode == 0 and any(
        line.startswith("OpenGL renderer string: llvmpipe") for line in o.stdout.splitlines())),
    "eglinfo": (["eglinfo"], _eglinfo_works),
    "vulkaninfo": (["vulkaninfo", "--summary"], _vulkan_works),
    "egl_png": (["egl_png", "/out/picture.png"], None),
    "sdl_gl_bind_now": (["sdl_gl"], lambda o: o.returncode == 0 and "pixels ok" in o.stdout),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_programs_work_in_the_container_through_the_shims(work: Path, display: str,
                                                          name: str) -> None:
    argv, works = PROGRAMS[name]
    options = ["--setenv", "LD_BIND_NOW", "1"] if name.endswith("bind_now") else []
    o = inside(work, argv, "" if name == "egl_png" else display, *options)
    for _ in range(ATTEMPTS - 1):  # Xvfb's flaky connect (see ATTEMPTS)
        if works is None or works(o):
            break
        o = inside(work, argv, display, *options)
    if works is None:   # egl_png: the picture, read outside
        o = Outcome(o.returncode, o.stdout.replace("/out/", f"{work}/out/"), o.stderr)
        works = _png_works
    assert works(o), f"{o.returncode}\n{o.stdout[-2000:]}\n{o.stderr[-3000:]}"
    nsmap = ldd.parse(o.stderr)
    assert nsmap is not None, o.stderr[-2000:]
    nsmap.root = str(work / "root")
    assert ldd.outside(nsmap) == [] and ldd.bypassed(nsmap) == []
    capsule = [p for s in nsmap.namespaces.values() if s.prefix for p in s.objects + s.unloaded]
    assert all(s.prefix == "/run/host" for s in nsmap.namespaces.values() if s.prefix)
    assert f"/run/host/{LIBDIR}/libLLVM-15.so.1" in capsule


def test_capsule_shim_ldd_with_root_shows_nothing_from_outside(work: Path, display: str) -> None:
    proc = run([venv_bin("capsule-shim"), "ldd", "--root", str(work / "root"), "--",
                *container.sandbox(work), "glxinfo", "-B"], env={"DISPLAY": display}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"/{LIBDIR}/libGL.so.1    [capsule shim]" in proc.stdout
    assert "namespace 1 (capsule, prefix /run/host):" in proc.stdout
    assert f"/run/host/{LIBDIR}/libGLX_mesa.so.0.0.0    [from the prefix]" in proc.stdout
    assert "OUTSIDE" not in proc.stdout
