"""The reason capsule exists: a library from the prefix needs its own libDEP,
while the program's search path holds an incompatible libDEP.so.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_world import World, segregation_program
from helpers import run


@pytest.fixture(scope="module")
def segprog(world: World) -> Path:
    return segregation_program(world)


def test_without_the_shim_the_program_cannot_start(world: World, segprog) -> None:
    result = run([segprog], env=world.env(world.runtime, world.host_libdir), check=False)
    assert result.returncode == 127
    assert "undefined symbol: dep_extra" in result.stderr


def test_with_the_shim_both_copies_work_side_by_side(world: World, segprog) -> None:
    result = run([segprog], env=world.env(world.shims, world.runtime))
    out = result.stdout.splitlines()
    assert "user_answer 40" in out           # dep_extra(1 + 3) from the prefix's libDEP
    assert "user sees dep_version 1" in out  # libuser's calls stay in the capsule
    assert "program sees dep_version 2" in out  # the program keeps its own libDEP
    where = dict(line.split(" from ", 1) for line in out if " from " in line)
    assert where["user_answer"].startswith(str(world.host))
    assert where["dep_version"].startswith(str(world.runtime))


def test_both_libdep_copies_are_mapped(world: World, segprog) -> None:
    out = run([segprog], env=world.env(world.shims, world.runtime)).stdout
    mapped = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("mapped ")}
    assert any(m.startswith(str(world.host)) for m in mapped), mapped
    assert any(m.startswith(str(world.runtime)) for m in mapped), mapped
