"""The README's demo command works end to end and shows the host tree.
Under CAPSULE_TEST_GLIBC=trixie|sid (the glibc matrix) the demo's programs
run under that glibc (the script's DEMO_GLIBC). Its 32-bit parts (where
and egl_png built -m32, i386 libraries from Debian's packages) and its
aarch64 parts (built by clang with cross/aarch64-linux-gnu.ini, arm64
libraries from Debian's packages, run under qemu-aarch64) run when this
machine can build and run that architecture's shims (scripts/arch_tree.py
ARCH --why-not says nothing), and otherwise say why they are skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO, run

GLIBC = os.environ.get("CAPSULE_TEST_GLIBC", "")
# The other architectures' parts, in the order the scripts run them: each
# architecture and the label its lines carry. printf() comes from the libc
# its programs run on: gcc-multilib's for i386, the cross libc (the root
# qemu-aarch64 -L gives ld.so, which names it /lib/libc.so.6) for aarch64.
OTHER_ARCHES = {"i386": "32-bit", "aarch64": "aarch64"}
LIBC_DIRS = {"i386": ("/lib32/", "/usr/lib32/"),
             "aarch64": ("/lib/", "/usr/aarch64-linux-gnu/lib/")}


def arch_blocker(arch: str) -> str:
    """Why an architecture's parts are skipped ("" when they must run)."""
    if GLIBC:
        return f"DEMO_GLIBC={GLIBC} is an x86_64 glibc"
    return run(["python3", REPO / "scripts/arch_tree.py", arch, "--why-not"]).stdout.strip()


def split_parts(text: str) -> tuple[str, dict[str, str]]:
    """The x86_64 output and each other architecture's part of it."""
    parts = {}
    for arch, label in reversed(OTHER_ARCHES.items()):
        text, parts[arch] = text.split(f"== the {label} part", 1)
    return text, parts


def check_arch_part(arch: str, part: str, blocker: str) -> bool:
    """False when the part was skipped (as it must be when blocked)."""
    skipped = f"== the {OTHER_ARCHES[arch]} part skipped: "
    if blocker:
        assert f"{skipped}{blocker}" in part, part
        return False
    assert skipped not in part or f"no {arch} host tree" in part, part
    return skipped not in part


def check_where(arch: str, part: str, demo: Path) -> None:
    """The arch's where program: its own libraries without the shims, the
    host tree's through them, printf() from its libc either way."""
    plain, capsuled = part.split(f"== {OTHER_ARCHES[arch]}, with the shims", 1)
    host = str(demo / f"host-{arch}")
    where = {line.split()[0]: line.split()[-1] for line in capsuled.splitlines()
             if "lives in" in line}
    assert "compress()         lives in " in plain and host not in plain
    assert where["compress()"].startswith(host)
    assert where["XML_ParserCreate()"].startswith(host)
    assert where["printf()"].startswith(LIBC_DIRS[arch])
    assert "libz.so.1: ready" in capsuled


def check_picture(arch: str, part: str, demo: Path) -> None:
    """The arch's egl_png: fails on the runtime without capsules, renders
    through them with everything from the host tree."""
    without, through = part.split(f"== {OTHER_ARCHES[arch]}, with the shims first", 1)
    picture = demo / "graphics" / f"picture-{arch}.png"
    assert "egl_png: no EGL" in without
    assert f"wrote {picture}" in through and "centre pixel: 13,13,38" in through
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "swrast_dri.so    [from the prefix" in through and "OUTSIDE" not in through


def test_demo_runs_the_program_through_the_shims(tmp_path: Path) -> None:
    env = {"DEMO_DIR": str(tmp_path / "demo"), "CAPSULE_SKIP_BOOTSTRAP": "1", "DEMO_GLIBC": GLIBC}
    out = run(["bash", REPO / "examples/demo/run.sh"], env=env).stdout
    # printf() comes from the process's glibc: the system's, or the matrix's tree.
    libc_dir = "/lib/"
    if GLIBC:
        libdir = run(["python3", REPO / "scripts/glibc_tree.py", GLIBC, "--print", "libdir"])
        libc_dir = libdir.stdout.strip() + "/"
        assert "== every program runs under glibc " in out
    out, graphics = out.split("== the graphics example", 1)
    out, demo_parts = split_parts(out)
    graphics, graphics_parts = split_parts(graphics)
    plain, capsuled = out.split("== with the shims", 1)
    host = str(tmp_path / "demo" / "host")
    where = {line.split()[0]: line.split()[-1] for line in capsuled.splitlines() if "lives in" in line}
    assert "compress()         lives in /lib/" in plain and host not in plain
    assert f"printf()           lives in {libc_dir}" in plain
    assert where["compress()"].startswith(host)
    assert where["XML_ParserCreate()"].startswith(host)
    assert where["printf()"].startswith(libc_dir)
    assert "libz.so.1: ready" in capsuled
    # The graphics half: fails without capsule, renders through them.
    without, through = graphics.split("== with the shims first", 1)
    picture = tmp_path / "demo" / "graphics" / "picture.png"
    assert "egl_png: no EGL" in without
    assert f"wrote {picture}" in through and "centre pixel: 13,13,38" in through
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "swrast_dri.so    [from the prefix" in through and "OUTSIDE" not in through
    # The other architectures' parts: the same, for programs built -m32
    # and for aarch64 (run under qemu-aarch64).
    not_fetched = []
    for arch in OTHER_ARCHES:
        blocker = arch_blocker(arch)
        ran = [check_arch_part(arch, part, blocker)
               for part in (demo_parts[arch], graphics_parts[arch])]
        if ran[0]:
            check_where(arch, demo_parts[arch], tmp_path / "demo")
        if ran[1]:
            check_picture(arch, graphics_parts[arch], tmp_path / "demo")
        if blocker == "" and not all(ran):
            not_fetched.append(arch)
    if not_fetched:
        pytest.skip(f"the {', '.join(not_fetched)} parts could not fetch Debian's packages")
