"""The graphics tests' world: a host tree made from this machine's graphics
stack, a runtime directory with an incompatible libexpat.so.1, the example
project's shims and programs built by Meson, and an Xvfb server. The same
world for 32-bit programs (make_graphics(..., "i386")) and aarch64 ones
(make_graphics(..., "aarch64")): the host tree is Debian's i386 or arm64
Mesa stack unpacked, the programs are built through the architecture's
cross file, the runtime also holds their own non-graphics libraries, and
aarch64 programs run under qemu-aarch64 (Graphics.command)."""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from capsule_module import arch as arches
from capsule_module import ldd
from helpers import REPO, meson_command, run, stop

EXAMPLE = REPO / "examples" / "graphics"


def _load_trees() -> ModuleType:
    spec = importlib.util.spec_from_file_location("graphics_trees", EXAMPLE / "graphics_trees.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


graphics_trees = _load_trees()


@dataclass(frozen=True)
class Graphics:
    host: Path      # the host graphics stack the shims load from
    runtime: Path   # the program's runtime: an incompatible libexpat.so.1
    build: Path     # the example project's build directory: shims and programs
    arch: str = "x86_64"
    shims: bool = True  # built (not for an architecture without the shim runtime yet)
    runner: tuple[str, ...] = ()  # what runs its programs here: qemu-aarch64 -L ... for aarch64

    @property
    def emulated(self) -> bool:
        return bool(self.runner)

    @property
    def picture_size(self) -> int:
        """egl_png's picture: llvmpipe's shaders under an emulator are slow."""
        return 64 if self.emulated else 256

    @property
    def timeout(self) -> float:
        """Seconds a program may take (qemu-user translates Mesa and LLVM too)."""
        return 600 if self.emulated else 120

    def command(self, argv: list[str]) -> list[str]:
        """argv as this machine runs it: under the runner for an emulated
        architecture's own programs (the example's), directly otherwise."""
        if self.runner and Path(argv[0]).parent == self.build:
            return [*self.runner, *argv]
        return argv

    @property
    def multiarch(self) -> str:
        return graphics_trees.TARGETS[self.arch].multiarch

    def host_stack(self) -> dict[str, str]:
        """The graphics stack the programs use without capsules: this
        machine's, or for another architecture the host tree's (this
        machine has none): its libraries, DRI drivers and EGL vendors."""
        if self.arch == "x86_64":
            return {}
        dirs = graphics_trees.TARGETS[self.arch].lib_dirs
        return {"LD_LIBRARY_PATH": ":".join(str(self.host / d) for d in dirs),
                "LIBGL_DRIVERS_PATH": str(self.host / self.multiarch / "dri"),
                "__EGL_VENDOR_LIBRARY_DIRS": str(self.host / "usr/share/glvnd/egl_vendor.d")}

    def plain(self) -> dict[str, str]:
        """Plain run on the host stack."""
        return self.host_stack()

    def without(self) -> dict[str, str]:
        """Plain run on the incompatible runtime (before the host stack)."""
        stack = self.host_stack()
        path = ":".join(p for p in (str(self.runtime), stack.get("LD_LIBRARY_PATH")) if p)
        return {**stack, "LD_LIBRARY_PATH": path}

    def with_shims(self) -> dict[str, str]:
        """The same runtime, with the shims first."""
        return {"LD_LIBRARY_PATH": f"{self.build}:{self.runtime}"}


def make_graphics(root: Path, arch: str = "x86_64") -> Graphics:
    """The world for programs of `arch`; for an architecture whose shims
    cannot be built yet, only the programs (Graphics.shims False)."""
    host = graphics_trees.make_host(root / "host", arch)
    runtime = graphics_trees.make_runtime(root / "runtime", arch, host)
    build = root / "build"
    options = [f"-Dhost={host}"]
    shims = arches.get(arch).shim_runtime
    tools = graphics_trees._arch_tree().toolchain(arch)
    if tools.cross_file is not None:
        machine = graphics_trees.write_machine_file(host, root / f"{arch}-host.ini", arch)
        options += ["--cross-file", str(tools.cross_file), "--cross-file", str(machine),
                    f"-Dshims={'true' if shims else 'false'}"]
    run([*meson_command(), "setup", *options, str(build), str(EXAMPLE)])
    run([*meson_command(), "compile", "-C", str(build)])
    return Graphics(host, runtime, build, arch, shims, tuple(tools.runner))


def world(request: pytest.FixtureRequest, arch: str) -> Graphics:
    """The graphics world of an architecture (its session fixture: gfx,
    gfx_i386, gfx_aarch64)."""
    return request.getfixturevalue("gfx" if arch == "x86_64" else f"gfx_{arch}")


def start_xvfb() -> Iterator[str]:
    """Yield the DISPLAY of a fresh Xvfb server; skip when Xvfb cannot run."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        number = _display_number(read_fd, timeout=30)
        if not number:
            err = stop(proc, grace=10)[1].decode(errors="replace")
            pytest.skip(f"Xvfb cannot run here: {err.strip()[-300:]}")
        yield f":{number}"
    finally:
        stop(proc, grace=10)


def _display_number(read_fd: int, timeout: float) -> str:
    """The number Xvfb writes to its -displayfd pipe; "" if none comes in time."""
    with os.fdopen(read_fd) as pipe:
        ready, _, _ = select.select([pipe], [], [], timeout)
        return pipe.readline().strip() if ready else ""


def namespace_leaks(stderr: str) -> list[tuple[int, str]]:
    """Objects in a capsule from outside its prefix, and shimmed sonames' real
    libraries loaded outside the capsule (namespace 0), from a CAPSULE_DEBUG=ns run."""
    nsmap = ldd.parse(stderr)
    assert nsmap is not None, f"no namespace map in:\n{stderr[-2000:]}"
    return ldd.outside(nsmap) + [(ldd.PROGRAM_NS, path) for _, path in ldd.bypassed(nsmap)]


def capsule_objects(stderr: str) -> list[str]:
    """Every object loaded inside a capsule namespace (also those unloaded before exit)."""
    nsmap = ldd.parse(stderr)
    assert nsmap is not None, f"no namespace map in:\n{stderr[-2000:]}"
    return [p for s in nsmap.namespaces.values() if s.prefix for p in s.objects + s.unloaded]
