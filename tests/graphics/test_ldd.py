"""capsule-shim ldd and CAPSULE_DEBUG=ns: the namespace map of a real program."""

from __future__ import annotations

from pathlib import Path

from capsule_module import ldd
from graphics_world import Graphics
from helpers import run, venv_bin

SAMPLE = """\
capsule[ns]: map libEGL.so.1 ready: namespace 0 prefix (the program's)
capsule[ns]: map libEGL.so.1 ready: 0 /opt/game/bin/game
capsule[ns]: map libEGL.so.1 ready: 0 /opt/game/shims/libEGL.so.1
capsule[ns]: map libEGL.so.1 ready: namespace 1 prefix /run/host
capsule[ns]: map libEGL.so.1 ready: 1 /run/host/usr/lib/libEGL.so.1.1.0
noise from the program
capsule[ns]: map at exit: namespace 0 prefix (the program's)
capsule[ns]: map at exit: 0 /opt/game/bin/game
capsule[ns]: map at exit: 0 /opt/game/shims/libEGL.so.1
capsule[ns]: map at exit: namespace 1 prefix /run/host
capsule[ns]: map at exit: 1 /proc/self/fd/5
capsule[ns]: map at exit: 1 /proc/self/fd/6 (shared: libX11.so.6)
capsule[ns]: map at exit: 1 /run/host/usr/lib/libEGL.so.1.1.0
capsule[ns]: map at exit: 1 /proc/self/fd/7 (glibc: libc.so.6)
capsule[ns]: map at exit: 1 /lib64/ld-linux-x86-64.so.2
capsule[ns]: map at exit: 1 /opt/game/lib/libexpat.so.1
"""


def test_the_map_at_exit_wins_and_objects_are_classified() -> None:
    nsmap = ldd.parse(SAMPLE)
    assert nsmap is not None and nsmap.when == "at exit"
    assert nsmap.shims == {"libEGL.so.1"}
    assert ldd.outside(nsmap) == [(1, "/opt/game/lib/libexpat.so.1")]
    text = ldd.format_map(nsmap)
    assert "/opt/game/shims/libEGL.so.1    [capsule shim]" in text
    assert "/proc/self/fd/7 (glibc: libc.so.6)    [placeholder made in memory: the " \
           "capsule uses the program's glibc]" in text
    assert "/lib64/ld-linux-x86-64.so.2    [the process's dynamic linker" in text
    assert "/opt/game/lib/libexpat.so.1    [OUTSIDE THE PREFIX]" in text
    assert "/proc/self/fd/5    [libcapsule's bridge object" in text
    assert "/proc/self/fd/6 (shared: libX11.so.6)    [placeholder made in memory" in text


def test_in_memory_objects_named_by_process_id() -> None:
    """libcapsule names them /proc/PID/fd/N (a debugger opens them by it)."""
    nsmap = ldd.parse(SAMPLE.replace("/proc/self/", "/proc/4242/"))
    assert nsmap is not None
    assert ldd.outside(nsmap) == [(1, "/opt/game/lib/libexpat.so.1")]
    text = ldd.format_map(nsmap)
    assert "/proc/4242/fd/7 (glibc: libc.so.6)    [placeholder made in memory" in text
    assert "/proc/4242/fd/5    [libcapsule's bridge object" in text
    assert "/proc/4242/fd/6 (shared: libX11.so.6)    [placeholder made in memory" in text


def test_a_real_glibc_library_in_a_capsule_is_flagged() -> None:
    nsmap = ldd.parse(SAMPLE.replace("/proc/self/fd/7 (glibc: libc.so.6)",
                                     "/lib/x86_64-linux-gnu/libc.so.6"))
    assert nsmap is not None
    assert (1, "/lib/x86_64-linux-gnu/libc.so.6") in ldd.outside(nsmap)
    assert "libc.so.6    [A SECOND COPY OF GLIBC" in ldd.format_map(nsmap)


def test_no_map_without_capsule_lines() -> None:
    assert ldd.parse("just a program\n") is None


def test_ldd_of_a_real_program_lists_its_capsule(gfx: Graphics, tmp_path: Path) -> None:
    proc = run([venv_bin("capsule-shim"), "ldd", "--", gfx.build / "egl_png", tmp_path / "x.png"],
               env={**gfx.with_shims(), "DISPLAY": ""}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr   # nothing from outside the prefix
    out = proc.stdout
    assert f"{gfx.build}/libEGL.so.1    [capsule shim]" in out
    assert f"{gfx.build}/libGLESv2.so.2    [capsule shim]" in out
    assert f"namespace 1 (capsule, prefix {gfx.host}):" in out
    real_egl = gfx.host / "usr/lib/x86_64-linux-gnu/libEGL.so.1.1.0"
    assert f"{real_egl}    [from the prefix]" in out
    # dlopen()ed later, from inside the capsule, by absolute path: remapped.
    driver = gfx.host / "usr/lib/x86_64-linux-gnu/dri/swrast_dri.so"
    # (Mesa unloads it at eglTerminate, as without capsules: the map printed
    # after the inside dlopen still shows it.)
    assert f"{driver}    [from the prefix, unloaded before exit]" in out
    # A headless program opened no X connection: by default the capsule
    # keeps the host's own X client libraries, matching its Mesa.
    assert "(shared: libX11" not in out and "(shared: libxcb" not in out
    assert f"{gfx.host}/usr/lib/x86_64-linux-gnu/libxcb.so.1" in out
    # So is glibc: one libc in the process, placeholders in the capsule.
    for soname in ("libc.so.6", "libm.so.6"):
        assert f"(glibc: {soname})    [placeholder made in memory" in out
    assert "SECOND COPY OF GLIBC" not in out


def test_ldd_of_an_x11_program_shows_the_shared_client_libraries(
        gfx: Graphics, display: str) -> None:
    """glx_frames opened its X connection itself: the default share list
    makes the program's libX11 and libxcb the capsule's too."""
    proc = run([venv_bin("capsule-shim"), "ldd", "--", gfx.build / "glx_frames", "3"],
               env={**gfx.with_shims(), "DISPLAY": display}, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for soname in ("libX11.so.6", "libxcb.so.1"):
        assert f"(shared: {soname})    [placeholder made in memory" in proc.stdout


def test_ldd_of_a_program_without_shims_says_so(tmp_path: Path) -> None:
    proc = run([venv_bin("capsule-shim"), "ldd", "true"], check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("capsule-shim: program true exited with status 0 without "
                                  "initialising any capsule shim")
    assert len(proc.stderr.splitlines()) == 1
