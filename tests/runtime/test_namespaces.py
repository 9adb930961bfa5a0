"""Namespace limits: 20 shims with 20 different prefixes in one process.
glibc has 16 link-map namespaces in all (DL_NNS). A capsule namespace holds
no second libc (its glibc libraries are placeholders without TLS), so the
static TLS glibc reserves for namespaces (the glibc.rtld.nns tunable, 4 by
default) never runs out first: all 15 open with or without the tunable. The
first shim that does not fit ends the process with one capsule: line naming
the limit and the tunable. Shims with one prefix share a namespace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from build import (
    CC,
    FIXTURES,
    MULTIARCH,
    Built,
    Sym,
    build_lib,
    build_shim,
    make_prefix,
    patched_copy,
    program_prefix,
    sh,
)

N_PREFIXES = 20


@pytest.fixture(scope="module")
def setup(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("namespaces")
    template = build_lib(root / "t", "libnsAA.so.1", [FIXTURES / "nslib.c"])
    shims = []
    # libns00 and libns20 share prefix p00; every other shim has its own.
    for i in [0, 20, *range(1, N_PREFIXES)]:
        soname = f"libns{i:02d}.so.1"
        prefix = root / f"p{i % 20:02d}"
        lib = patched_copy(template, root / "l" / soname, {b"libnsAA": b"libns%02d" % i})
        make_prefix(prefix, [lib], ldcache=False)
        shims.append(build_shim(root / "shim" / soname.split(".")[0], built.libcapsule_dir,
                                soname, str(prefix), [Sym("ns_where", None)], []))
    prog = root / "nsprog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", FIXTURES / "nsprog.c", "-o", prog,
        "-ldl"])
    return prog, shims


def run(prog: Path, shims: list[Path], tunables: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAPSULE_") and k != "GLIBC_TUNABLES"}
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    return subprocess.run([*program_prefix(env), str(prog), *map(str, shims)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def loaded(proc: subprocess.CompletedProcess[str]) -> list[tuple[int, str, str]]:
    rows = []
    for line in proc.stdout.splitlines():
        _, index, lmid, path = line.split(" ", 3)
        rows.append((int(index), lmid, path))
    return rows


@pytest.mark.parametrize("tunables", [None, "glibc.rtld.nns=16"])
def test_twenty_prefixes(setup: tuple[Path, list[Path]], tunables: str | None) -> None:
    prog, shims = setup
    proc = run(prog, shims, tunables)
    rows = loaded(proc)
    # Each working shim reached the copy in its own prefix.
    for index, _, path in rows:
        i = [0, 20, *range(1, N_PREFIXES)][index - 1]
        assert path.endswith(f"/p{i % 20:02d}/{MULTIARCH}/libns{i:02d}.so.1"), path
    # The two shims of prefix p00 share its namespace; every other prefix has its own.
    lmids = [lmid for _, lmid, _ in rows]
    assert lmids[0] == lmids[1] and len(set(lmids)) == len(lmids) - 1
    assert proc.returncode == 127, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule: libns"), proc.stderr
    assert "glibc.rtld.nns" in lines[0], lines[0]
    # Namespaces, not static TLS, run out: 15 besides the program's.
    assert len(set(lmids)) == 15, rows
    assert "no more namespaces" in lines[0], lines[0]
    assert "glibc allows 16 namespaces in all, one of them the program's, and 15 are " \
           "capsules" in lines[0], lines[0]


def test_one_namespace_per_directory(built: Built, tmp_path: Path) -> None:
    # One prefix directory spelled three ways: plainly, with a trailing
    # slash, through a symlink. Each shim's library lands in one namespace.
    template = build_lib(tmp_path / "t", "libnsAA.so.1", [FIXTURES / "nslib.c"])
    prefix = tmp_path / "prefix"
    (tmp_path / "link").symlink_to(prefix)
    spellings = [str(prefix), f"{prefix}/", str(tmp_path / "link")]
    shims = []
    for i, spelling in enumerate(spellings):
        soname = f"libns{i:02d}.so.1"
        lib = patched_copy(template, tmp_path / "l" / soname, {b"libnsAA": b"libns%02d" % i})
        make_prefix(prefix, [lib], ldcache=False)
        shims.append(build_shim(tmp_path / "shim" / str(i), built.libcapsule_dir, soname,
                                spelling, [Sym("ns_where", None)], []))
    prog = tmp_path / "nsprog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", FIXTURES / "nsprog.c", "-o", prog,
        "-ldl"])
    proc = run(prog, shims, None)
    assert proc.returncode == 0, proc
    rows = loaded(proc)
    assert len(rows) == 3 and len({lmid for _, lmid, _ in rows}) == 1, rows
    for i, (_, _, path) in enumerate(rows):
        assert path == str(prefix / MULTIARCH / f"libns{i:02d}.so.1"), rows
