"""Development names: programs and bindings that dlopen libGL.so, libEGL.so,
libGLESv2.so, libOpenGL.so or libvulkan.so get the shims (each shim's build
directory links the name to it), never the system's library beside the
capsule; `capsule-shim ldd` flags a run where that happened."""

from __future__ import annotations

import sys
from pathlib import Path

from capsule_module import ldd
from graphics_world import Graphics, capsule_objects, namespace_leaks
from helpers import run, venv_bin

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEV_NAMES = [sys.executable, str(FIXTURES / "dev_names.py")]
SHIMMED = ("libGL.so.1", "libEGL.so.1", "libGLESv2.so.2", "libOpenGL.so.0", "libvulkan.so.1")


def test_the_build_directory_answers_to_the_development_names(gfx: Graphics) -> None:
    for soname in SHIMMED:
        link = gfx.build / soname.rsplit(".", 1)[0]
        assert link.is_symlink() and (gfx.build / link.readlink()).name == soname


def test_dlopen_of_development_names_fails_on_the_runtime_without_capsules(gfx: Graphics) -> None:
    proc = run(DEV_NAMES, env={**gfx.without(), "DISPLAY": ""}, check=False)
    assert proc.returncode != 0 and "all ok" not in proc.stdout, proc.stdout


def test_dlopen_of_development_names_goes_through_the_capsule(gfx: Graphics) -> None:
    proc = run(DEV_NAMES, env={**gfx.with_shims(), "DISPLAY": "", "CAPSULE_DEBUG": "ns"},
               check=False)
    assert proc.returncode == 0 and "all ok" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    for name in ("libOpenGL.so", "libGL.so", "libGLESv2.so"):
        assert f"{name}: renderer llvmpipe" in proc.stdout
    assert namespace_leaks(proc.stderr) == []
    nsmap = ldd.parse(proc.stderr)
    assert nsmap is not None and ldd.bypassed(nsmap) == []
    inside = "\n".join(capsule_objects(proc.stderr))
    for real in ("libGL.so.1.7.0", "libEGL.so.1.1.0", "libGLESv2.so.2.1.0", "libOpenGL.so.0.0.0"):
        assert f"{gfx.host}/usr/lib/x86_64-linux-gnu/{real}" in inside


def test_ldd_flags_the_real_library_loaded_beside_its_shim(gfx: Graphics) -> None:
    """A binding that dlopens the system's libGL by path while the shims are in use."""
    real = "/usr/lib/x86_64-linux-gnu/libGL.so.1"
    script = ("import ctypes; ctypes.CDLL('libEGL.so.1'); ctypes.CDLL('libGL.so.1'); "
              f"ctypes.CDLL({real!r})")
    proc = run([venv_bin("capsule-shim"), "ldd", "--", sys.executable, "-c", script],
               env={"LD_LIBRARY_PATH": str(gfx.build), "DISPLAY": ""}, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{gfx.build}/libGL.so.1    [capsule shim]" in proc.stdout
    assert f"{real}    [THE REAL LIBRARY, OUTSIDE THE CAPSULE, beside its shim]" in proc.stdout
    assert (f"libGL.so.1 was also loaded outside the capsule, in the program's namespace: "
            f"{real} (") in proc.stdout
