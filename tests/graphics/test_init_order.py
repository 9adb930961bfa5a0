"""Order of initialisation (issue 10, item 4): one shim sets up the capsule
namespace first (a program that links libvulkan, or SDL dlopening libEGL
or libGL after another front end), then the program uses another. Every
order must give a working GL/EGL context and a working Vulkan instance:
the shims of one prefix share one namespace and, by default, the
program's X client libraries."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_graphics import PROGRAMS, Program

from graphics_world import Graphics

BY_NAME = {p.name: p for p in PROGRAMS}
# (the shim initialised first, preloaded ahead of everything, the program)
ORDERS = [
    ("libvulkan.so.1", "glxinfo"),
    ("libvulkan.so.1", "glx_frames"),
    ("libvulkan.so.1", "es2gears_x11"),
    ("libvulkan.so.1", "egl_png_surfaceless"),
    ("libEGL.so.1", "glx_frames"),
    ("libGL.so.1", "es2gears_x11"),
    ("libGL.so.1", "vulkaninfo"),
    ("libEGL.so.1", "vulkaninfo"),
]


@pytest.mark.parametrize(("first", "name"), ORDERS, ids=[f"{f}-then-{n}" for f, n in ORDERS])
def test_every_order_works(gfx: Graphics, display: str, tmp_path: Path, first: str,
                           name: str) -> None:
    program: Program = BY_NAME[name]
    env = program.env({**gfx.with_shims(), "LD_PRELOAD": str(gfx.build / first)}, display)
    o = program.run(program.argv(gfx, tmp_path), env)
    assert program.works(o), f"{o.returncode}\n{o.stdout[-2000:]}\n{o.stderr[-2000:]}"
