"""The graphics set covers every glvnd, Mesa and Vulkan-loader library that
programs link: a host-stack library linked by a program or by a library
programs use (Debian's libSDL2 links libgbm.so.1) and left without a shim
loads in the program's namespace, against the runtime's libraries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from graphics_world import Graphics, namespace_leaks
from helpers import run

# Debian 12's packages of glvnd, Mesa and the Vulkan loader: the host's stack.
STACK_PACKAGES = ("libglvnd0", "libgl1", "libglx0", "libegl1", "libgles1", "libgles2",
                  "libopengl0", "libglx-mesa0", "libegl-mesa0", "libgbm1", "libglapi-mesa",
                  "libgl1-mesa-dri", "mesa-vulkan-drivers", "libvulkan1", "libosmesa6",
                  "libxatracker2")
# Programs and libraries programs link, from this machine.
LINKERS = ("/usr/bin/glxinfo", "/usr/bin/glxgears", "/usr/bin/eglinfo", "/usr/bin/es2gears_x11",
           "/usr/bin/es2_info", "/usr/bin/vulkaninfo",
           "/usr/lib/x86_64-linux-gnu/libSDL2-2.0.so.0")


def _stack_sonames() -> set[str]:
    if shutil.which("dpkg-query") is None:
        pytest.skip("needs Debian's dpkg-query to list the stack's packages")
    proc = subprocess.run(["dpkg-query", "-L", *STACK_PACKAGES], capture_output=True,
                          text=True, check=False)
    return {Path(line).name for line in proc.stdout.splitlines() if ".so." in Path(line).name}


def _needed(path: Path) -> list[str]:
    out = run(["readelf", "-d", str(path)]).stdout
    return [line.rsplit("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def test_every_stack_library_programs_link_is_shimmed(gfx: Graphics) -> None:
    stack = _stack_sonames()
    assert {"libGL.so.1", "libgbm.so.1", "libvulkan.so.1"} <= stack
    linkers = [Path(p) for p in LINKERS if Path(p).exists()]
    linkers += [p for p in (gfx.build / n for n in ("glx_frames", "egl_png", "sdl_gl")) if p.exists()]
    linked = {(soname, str(path)) for path in linkers for soname in _needed(path)
              if soname in stack}
    missing = sorted(f"{soname} (linked by {path})" for soname, path in linked
                     if not (gfx.build / soname).is_file())
    assert missing == []


@pytest.fixture()
def shims_but_libgbm(gfx: Graphics, tmp_path: Path) -> Path:
    """A directory with every shim of the example except libgbm's."""
    out = tmp_path / "shims-but-libgbm"
    out.mkdir()
    for path in gfx.build.glob("lib*.so*"):
        if not path.name.startswith("libgbm") and not path.name.endswith(".p"):
            (out / path.name).symlink_to(path)
    return out


def test_sdl2_without_the_libgbm_shim_fails_with_bind_now(
        gfx: Graphics, display: str, shims_but_libgbm: Path) -> None:
    program = gfx.build / "sdl_gl"
    if not program.exists():
        pytest.skip("sdl_gl needs Debian's SDL2 (apt-get install libsdl2-dev)")
    env = {"LD_LIBRARY_PATH": f"{shims_but_libgbm}:{gfx.runtime}", "DISPLAY": display,
           "LD_BIND_NOW": "1"}
    proc = run([str(program)], env=env, check=False)
    assert proc.returncode == 127, proc.stdout + proc.stderr
    assert "libgbm.so.1: undefined symbol: XML_ParserCreate" in proc.stderr

    proc = run([str(program)], env={**env, **gfx.with_shims(), "CAPSULE_DEBUG": "ns"},
               check=False)
    assert proc.returncode == 0 and "pixels ok" in proc.stdout, proc.stderr[-3000:]
    assert namespace_leaks(proc.stderr) == []
    assert f"{gfx.host}/usr/lib/x86_64-linux-gnu/libgbm.so.1.0.0" in proc.stderr
