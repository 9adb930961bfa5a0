"""The glibc matrix itself (CAPSULE_TEST_GLIBC=trixie|sid): the test programs
really run under that glibc, both ways the suite starts them (through its
ld.so, and with it as their interpreter for the setuid tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from programs import parse, run

from build import (
    CC,
    FIXTURES,
    GLIBC_TREE,
    Built,
    World,
    as_other_user,
    build_lib,
    glibc_link_flags,
    sh,
)

pytestmark = pytest.mark.skipif(GLIBC_TREE is None,
                                reason="CAPSULE_TEST_GLIBC is not set: only the glibc matrix "
                                       "runs these")

SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include "demo.h"
int main(void) {
    Dl_info info;
    dladdr((const void *)&printf, &info);
    printf("version=%s\nlibc=%s\nadd=%d\n", gnu_get_libc_version(), info.dli_fname,
           demo_add(2, 3));
    dladdr((const void *)&demo_add, &info);
    printf("add_object=%s\n", info.dli_fname);
    return 0;
}
"""


def _build(b: Built, out: Path, flags: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    src = out / "version.c"
    src.write_text(SOURCE)
    prog = out / "version"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}", src, "-o", prog,
        b.demo, f"-Wl,-rpath-link,{b.real_dir}", *flags])
    return prog


def _upstream(version: str) -> str:
    """2.41 from Debian's 2.41-12+deb13u5."""
    return version.split("-", 1)[0]


def _check(got: dict[str, str], b: Built) -> None:
    assert GLIBC_TREE is not None
    assert got["version"] == _upstream(GLIBC_TREE.version), got
    assert Path(got["libc"]).resolve() == (GLIBC_TREE.libdir / "libc.so.6").resolve(), got
    assert got["add"] == "5"
    # The call went through the capsule: the demo came from the prefix.
    assert got["add_object"].startswith(f"{b.prefix}/"), got


def test_programs_run_under_that_glibc(built: Built, tmp_path: Path) -> None:
    prog = _build(built, tmp_path, [])
    proc = run([prog], {"LD_LIBRARY_PATH": str(built.shim_dir)})
    assert proc.returncode == 0, proc
    _check(parse(proc.stdout), built)


def test_programs_with_that_interpreter(world: World) -> None:
    """As the setuid tests build theirs: no ld.so in front, run as nobody."""
    prog = _build(world, world.root / "glibc-interp",
                  [f"-Wl,-rpath,{world.shim_dir}", *glibc_link_flags()])
    proc = subprocess.run([*as_other_user(), str(prog)], capture_output=True, text=True,
                          timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc
    _check(parse(proc.stdout), world)


def test_ld_preload_still_works(built: Built, tmp_path: Path) -> None:
    """An explicitly started ld.so reads LD_PRELOAD from the environment."""
    src = tmp_path / "pre.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void hello(void)'
                   ' { printf("preloaded=1\\n"); }\n')
    pre = build_lib(tmp_path / "pre", "libpre.so", [src])
    prog = _build(built, tmp_path, [])
    proc = run([prog], {"LD_LIBRARY_PATH": str(built.shim_dir), "LD_PRELOAD": str(pre)})
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["preloaded"] == "1", got
    _check(got, built)
