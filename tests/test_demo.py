"""The README's demo command works end to end and shows the host tree.
Under CAPSULE_TEST_GLIBC=trixie|sid (the glibc matrix) the demo's programs
run under that glibc (the script's DEMO_GLIBC)."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import REPO, run

GLIBC = os.environ.get("CAPSULE_TEST_GLIBC", "")


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
