"""Run-time failures end in one `capsule:` line and a non-zero exit, never a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2e_world import World, program, segregation_program
from helpers import MULTIARCH, make_prefix_tree, run
from testarch import system_library


def capsule_failure(world: World, exe: Path, env: dict[str, str]) -> str:
    result = run([exe], env={**world.env(world.shims, world.runtime), **env}, check=False)
    assert result.returncode == 127, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("capsule: "), result.stderr
    return lines[0]


def test_missing_prefix(world: World, tmp_path: Path) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    missing = tmp_path / "no such tree"
    line = capsule_failure(world, exe, {"CAPSULE_PREFIX": str(missing)})
    assert "libz.so.1" in line and str(missing) in line
    assert line.endswith(": prefix does not exist"), line


def test_target_missing_from_prefix(world: World, tmp_path: Path) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    tree = make_prefix_tree(tmp_path / "tree", [system_library("libexpat.so.1")])
    line = capsule_failure(world, exe, {"CAPSULE_LIBZ_SO_1_PREFIX": str(tree)})
    assert "libz.so.1" in line and str(tree) in line
    assert line.endswith(": libz.so.1 not found under the prefix"), line


def test_dependency_missing_from_prefix(world: World, tmp_path: Path) -> None:
    exe = segregation_program(world)
    tree = tmp_path / "tree"
    (tree / MULTIARCH).mkdir(parents=True)
    shutil.copy2(world.host_libdir / "libuser.so.1", tree / MULTIARCH)
    make_prefix_tree(tree, [])
    line = capsule_failure(world, exe, {"CAPSULE_PREFIX": str(tree)})
    assert "libuser.so.1" in line and "libDEP.so.1" in line
    needer = tree / MULTIARCH / "libuser.so.1"
    assert line.endswith(f": libDEP.so.1 (needed by {needer}) not found under the prefix"), line


def test_debug_trace_names_the_tree(world: World) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    result = run([exe], env={**world.env(world.shims), "CAPSULE_DEBUG": "all"})
    assert str(world.host) in result.stderr
    assert "roundtrip ok" in result.stdout
