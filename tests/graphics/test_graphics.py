"""Real graphics programs on an incompatible runtime (a libexpat.so.1 Mesa
cannot use first on LD_LIBRARY_PATH): without capsules each fails; with the
shims first, each works, and every object inside the capsule comes from the
host tree (glibc aside), including what the loaders dlopen() later: glvnd's
vendor libraries, Mesa's DRI driver, the Vulkan ICDs and layers. The
example's own programs also run 32-bit (ids i386-...): built -m32, on i386
Mesa from Debian's packages, and for aarch64 (ids aarch64-...): built
by clang, on arm64 Mesa from Debian's packages, under qemu-aarch64
(see graphics_world.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from graphics_world import Graphics, capsule_objects, namespace_leaks, world
from helpers import run, stop

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
FRAMES = 30
# When the program itself connects to the X server and hands the Display* /
# xcb_connection_t* to the capsule, the capsule must use the program's libX11
# and libxcb, not copies of its own: libxcb numbers extensions with a per-copy
# counter (xcb_extension_t.global_id) that indexes the connection's extension
# cache, so two copies read each other's entries (GLX requests with another
# extension's opcode, a crash in Vulkan's X11 WSI). The example's shims list
# them in `share:`; the capsule then holds placeholders bound to the program's
# copies and never a file of that name.
SHARED_X11 = ("libX11.so.6", "libxcb.so.1")


@dataclass(frozen=True)
class Outcome:
    returncode: int | None      # None: stopped by the test after its bounded run
    stdout: str
    stderr: str


def launch(argv: list[str], env: dict[str, str], *, bounded: float | None = None,
           timeout: float = 120) -> Outcome:
    """Run argv; with `bounded`, let it run that long, then interrupt it."""
    if bounded is None:
        proc = run(argv, env=env, check=False, timeout=timeout)
        return Outcome(proc.returncode, proc.stdout, proc.stderr)
    full = {**os.environ, **env}
    with subprocess.Popen(argv, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace") as p:
        try:
            out, err = p.communicate(timeout=bounded)
            return Outcome(p.returncode, out, err)
        except subprocess.TimeoutExpired:
            out, err = stop(p, signal.SIGINT, grace=10)
            return Outcome(None, out, err)


# Mesa's X11 platform sometimes fails its xcb_connect to Xvfb (EGL_BAD_ALLOC
# "xcb_connect failed": about 1 eglinfo run in 20 here, with or without
# capsules, and seen for vulkaninfo's own connection too; vulkaninfo connects
# several times a run, and failed twice in a row on the plain stack in one CI
# run): a run expected to work is tried up to twice more before it counts as
# not working.
ATTEMPTS = 3


@dataclass(frozen=True)
class Program:
    name: str
    argv: Callable[[Graphics, Path], list[str]]
    works: Callable[[Outcome], bool]        # the asserted success
    x11: bool = True
    bounded: float | None = None            # runs until stopped: seconds to let it run
    known_gap: str | None = None            # strict xfail reason for the capsule half

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 120) -> Outcome:
        """launch() for a run that should work (see ATTEMPTS)."""
        o = launch(argv, env, bounded=self.bounded, timeout=timeout)
        for _ in range(ATTEMPTS - 1):
            if self.works(o):
                break
            o = launch(argv, env, bounded=self.bounded, timeout=timeout)
        return o

    def env(self, base: dict[str, str], display: str | None) -> dict[str, str]:
        env = dict(base)
        if self.x11 and display:
            env["DISPLAY"] = display
        else:
            env["DISPLAY"] = ""
        return env


def _llvmpipe(line_start: str) -> Callable[[Outcome], bool]:
    def check(o: Outcome) -> bool:
        return o.returncode == 0 and any(
            line.strip().startswith(line_start) and "llvmpipe" in line
            for line in o.stdout.splitlines())
    return check


def _es2gears_works(o: Outcome) -> bool:
    return "EGL_VENDOR = Mesa Project" in o.stdout and " frames in " in o.stdout


def _eglinfo_works(o: Outcome) -> bool:
    """The X11 and surfaceless platforms initialise Mesa's swrast driver (its exit
    status counts the platforms that failed: GBM and Wayland have no device here)."""
    sections = o.stdout.split("\n\n")
    good = [s for s in sections if s.startswith(("X11 platform", "Surfaceless platform"))
            and "EGL driver name: swrast" in s]
    return len(good) == 2


def _vulkan_works(o: Outcome) -> bool:
    return o.returncode == 0 and any("deviceName" in line and "llvmpipe" in line
                                     for line in o.stdout.splitlines())


def _png_pixels(path: Path) -> list[bytes]:
    """Decode the 8-bit RGB, filter-0 PNG egl_png writes: rows of RGB bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length:pos + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            width = int.from_bytes(body[:4], "big")
            assert body[8:10] == b"\x08\x02"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    return [raw[i + 1:i + stride] for i in range(0, len(raw), stride)]


def _png_works(o: Outcome) -> bool:
    line = next((x for x in o.stdout.splitlines() if x.startswith("wrote ")), None)
    if o.returncode != 0 or line is None or "llvmpipe" not in o.stdout:
        return False
    rows = _png_pixels(Path(line.split()[1]))
    centre = rows[len(rows) // 2][3 * (len(rows) // 2):3 * (len(rows) // 2) + 3]
    corner = rows[0][0:3]
    # The Mandelbrot set's inside colour at the centre, the blue ground in a corner.
    return tuple(centre) == (13, 13, 38) and corner[2] > corner[0] and corner[2] > 60


PROGRAMS = [
    Program("glxinfo", lambda g, t: ["glxinfo", "-B"], _llvmpipe("OpenGL renderer string")),
    Program("glx_frames", lambda g, t: [str(g.build / "glx_frames"), str(FRAMES)],
            lambda o: o.returncode == 0 and f"frames: {FRAMES} ok" in o.stdout),
    Program("eglinfo", lambda g, t: ["eglinfo"], _eglinfo_works),
    Program("es2gears_x11", lambda g, t: ["stdbuf", "-oL", "es2gears_x11", "-info"],
            _es2gears_works, bounded=6.5),
    Program("sdl2_pygame", lambda g, t: [sys.executable, str(FIXTURES / "sdl_gl.py")],
            lambda o: o.returncode == 0 and "pixels ok" in o.stdout and "llvmpipe" in o.stdout),
    # Debian's libSDL2 links libgbm.so.1: with every symbol bound at start-up,
    # Mesa's libgbm outside a capsule fails on the runtime's libexpat.
    Program("sdl2_debian_bind_now", lambda g, t: ["env", "LD_BIND_NOW=1", str(g.build / "sdl_gl")],
            lambda o: o.returncode == 0 and "pixels ok" in o.stdout and "llvmpipe" in o.stdout),
    Program("vulkaninfo", lambda g, t: ["vulkaninfo", "--summary"], _vulkan_works),
    Program("vulkaninfo_headless", lambda g, t: ["vulkaninfo", "--summary"], _vulkan_works,
            x11=False),
    Program("egl_png_surfaceless",
            lambda g, t: [str(g.build / "egl_png"), str(t / "out.png"), str(g.picture_size)],
            _png_works, x11=False),
]
# The other architectures' programs: the example's own (this machine has no
# i386 or aarch64 glxinfo, eglinfo ...), built -m32 on the i386 world
# (gfx_i386), built by clang on the aarch64 world (gfx_aarch64: under
# qemu-aarch64, glx_frames on the Xvfb server; egl_png renders a small
# picture there, llvmpipe's shaders under qemu being slow).
OTHER_ARCHES = {"i386": ("glx_frames", "egl_png_surfaceless"),
                "aarch64": ("glx_frames", "egl_png_surfaceless")}
CASES = [("x86_64", p) for p in PROGRAMS] + [
    (arch, p) for arch, names in OTHER_ARCHES.items() for p in PROGRAMS if p.name in names]
IDS = [p.name if arch == "x86_64" else f"{arch}-{p.name}" for arch, p in CASES]
WITH_CAPSULES = [
    pytest.param(arch, p, id=name,
                 marks=[pytest.mark.xfail(reason=p.known_gap, strict=True)] if p.known_gap else [])
    for (arch, p), name in zip(CASES, IDS, strict=True)
]


def _needs(program: Program, gfx: Graphics) -> None:
    if program.name == "sdl2_pygame":
        pytest.importorskip("pygame", reason="pygame (PyPI) is in requirements-test.txt")
    if program.name == "sdl2_debian_bind_now" and not (gfx.build / "sdl_gl").exists():
        pytest.skip("sdl_gl needs Debian's SDL2 (apt-get install libsdl2-dev)")


@pytest.mark.parametrize(("arch", "program"), CASES, ids=IDS)
def test_works_on_the_plain_host_stack(arch: str, program: Program, request: pytest.FixtureRequest,
                                       display: str, tmp_path: Path) -> None:
    """Sanity: the program itself works here, with the system's own stack
    (for i386: the host tree's, which this machine does not have)."""
    gfx = world(request, arch)
    _needs(program, gfx)
    o = program.run(gfx.command(program.argv(gfx, tmp_path)), program.env(gfx.plain(), display),
                    gfx.timeout)
    assert program.works(o), f"{o.returncode}\n{o.stdout[-2000:]}\n{o.stderr[-2000:]}"


@pytest.mark.parametrize(("arch", "program"), CASES, ids=IDS)
def test_fails_on_the_incompatible_runtime_without_capsules(
        arch: str, program: Program, request: pytest.FixtureRequest, display: str,
        tmp_path: Path) -> None:
    gfx = world(request, arch)
    _needs(program, gfx)
    o = launch(gfx.command(program.argv(gfx, tmp_path)), program.env(gfx.without(), display),
               bounded=program.bounded, timeout=gfx.timeout)
    assert not program.works(o), o.stdout[-2000:]
    assert "XML_ParserCreate" in o.stderr or "failed to" in o.stderr or o.returncode != 0


@pytest.mark.parametrize(("arch", "program"), WITH_CAPSULES)
def test_works_on_the_incompatible_runtime_through_capsules(
        arch: str, program: Program, request: pytest.FixtureRequest, display: str,
        tmp_path: Path) -> None:
    gfx = world(request, arch)
    _needs(program, gfx)
    if not gfx.shims:
        pytest.skip(f"shims for {arch} cannot be built yet: capsule_module.arch "
                    f"says {arch} has no shim runtime (libcapsule and the shim template "
                    "are not ported yet)")
    env = program.env({**gfx.with_shims(), "CAPSULE_DEBUG": "ns"}, display)
    o = program.run(gfx.command(program.argv(gfx, tmp_path)), env, gfx.timeout)
    assert program.works(o), f"{o.returncode}\n{o.stdout[-2000:]}\n{o.stderr[-3000:]}"
    assert namespace_leaks(o.stderr) == []
    objects = capsule_objects(o.stderr)
    inside = "\n".join(objects)
    assert [p for p in objects if Path(p).name in SHARED_X11] == []  # one copy: the program's
    assert str(gfx.host / gfx.multiarch / "libLLVM-15.so.1") in inside or \
        program.bounded, inside


# ---- the loaders' data files come from the host tree ----

HIDDEN_DATA = ("/usr/share/vulkan/icd.d", "/usr/share/glvnd/egl_vendor.d")


@pytest.fixture(scope="module")
def hide_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[str]], list[str]]:
    """A command prefix that runs argv in a private mount namespace where
    the process's own Vulkan ICD manifests and glvnd EGL vendor files are
    hidden under an empty directory (the host tree keeps its copies)."""
    empty = tmp_path_factory.mktemp("empty-data-dir")
    mounts = " && ".join(f'mount --bind "$0" {d}' for d in HIDDEN_DATA)
    script = f'{mounts} && exec "$@"'

    def wrap(argv: list[str]) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                str(empty), *argv]

    if not all(Path(d).is_dir() for d in HIDDEN_DATA):
        pytest.skip(f"this machine lacks one of {HIDDEN_DATA}")
    try:
        probe = subprocess.run(wrap(["ls", "-A", *HIDDEN_DATA]), capture_output=True,
                               text=True, timeout=30, check=False)
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed")
    if probe.returncode != 0 or sorted(probe.stdout.split()) != sorted(f"{d}:" for d in HIDDEN_DATA):
        pytest.skip(f"cannot bind-mount over {HIDDEN_DATA} in a private mount namespace "
                    f"(needs root or user namespaces): {probe.stderr.strip()[-300:]}")
    return wrap


DATA_PROGRAMS = [p for p in PROGRAMS if p.name in ("eglinfo", "vulkaninfo_headless")]


@pytest.mark.parametrize("program", DATA_PROGRAMS, ids=[p.name for p in DATA_PROGRAMS])
def test_loader_data_files_come_from_the_host_tree(
        program: Program, gfx: Graphics, display: str, tmp_path: Path,
        hide_data: Callable[[list[str]], list[str]]) -> None:
    """With the process's own manifests hidden, glvnd still finds Mesa and the
    Vulkan loader lavapipe: they read the host tree's files inside the capsule.
    With an unrelated CAPSULE_DATA_DIRS they read the hidden directories and
    find nothing: the remap is what makes the difference."""
    argv = hide_data(program.argv(gfx, tmp_path))
    env = program.env({**gfx.with_shims(), "CAPSULE_DEBUG": "path"}, display)
    o = program.run(argv, env)
    assert program.works(o), f"{o.returncode}\n{o.stdout[-2000:]}\n{o.stderr[-3000:]}"
    assert f"-> {gfx.host}/usr/share/" in o.stderr
    o = launch(argv, {**env, "CAPSULE_DATA_DIRS": "/nonexistent"}, bounded=program.bounded)
    assert not program.works(o), o.stdout[-2000:]
