"""Real system libraries (zlib, expat) used through shims by unchanged programs."""

from __future__ import annotations

from pathlib import Path

from e2e_world import World, program
from elforacle import readelf
from helpers import run
from testarch import system_library


def lines_of(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


def test_zlib_round_trip_runs_in_the_prefix_copy(world: World) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    out = lines_of(run([exe], env=world.env(world.shims)).stdout)
    assert out["roundtrip"].startswith("ok")
    assert out["compress"].startswith(str(world.host)), out


def test_zlib_without_the_shim_uses_the_system_copy(world: World) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    out = lines_of(run([exe]).stdout)
    assert not out["compress"].startswith(str(world.host))


def test_expat_parses_in_the_prefix_copy(world: World) -> None:
    exe = program(world, "xmlparse", ["xmlparse.c"], libs=["-lexpat"])
    out = lines_of(run([exe], env=world.env(world.shims)).stdout)
    assert out["elements"] == "4"
    assert out["XML_ParserCreate"].startswith(str(world.host)), out


def test_program_loads_the_shim_not_the_real_library(world: World) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    trace = run([exe], env={**world.env(world.shims), "LD_DEBUG": "libs"}).stderr
    assert f"{world.shims}/libz.so.1" in trace


def comparable(path: Path) -> tuple[set[tuple[object, ...]], list[tuple[str, tuple[str, ...]]]]:
    """What a caller links against, as readelf (not capsule's reader) sees it:
    name, version, @@/@, kind, data size and binding."""
    oracle = readelf(path)
    kinds = {"ifunc": "func"}
    symbols = {
        (name, version, default, kinds.get(kind, kind), size if kind in ("object", "tls") else 0,
         binding)
        for name, kind, size, binding, version, default in oracle.symbols
    }
    versions = [(name, tuple(parents)) for name, parents, _flags in oracle.versions]
    return symbols, versions


def test_shim_exports_equal_the_targets(world: World) -> None:
    for soname in ("libz.so.1", "libexpat.so.1"):
        shim = comparable(world.shims / soname)
        real = comparable(system_library(soname))
        assert shim[0] == real[0], soname
        assert shim[1] == real[1], soname
        assert readelf(world.shims / soname).soname == soname


def test_versioned_references_bind_to_the_shim(world: World) -> None:
    exe = program(world, "zround", ["zround.c"], libs=["-lz"])
    needs = run(["readelf", "-V", exe]).stdout
    assert "ZLIB_" in needs  # the program really asks for versioned zlib symbols
    result = run([exe], env={**world.env(world.shims), "LD_BIND_NOW": "1"})
    assert "roundtrip ok" in result.stdout
