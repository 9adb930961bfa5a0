"""Every kind of slot, in programs and libraries built every common way, is
redirected into the prefix's copy, and page protections stay as ld.so set them."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_world import FIXTURES, World, program
from helpers import compile_c, run

BINDING = {
    "lazy": ["-Wl,-z,lazy", "-Wl,-z,norelro"],
    "partial-relro": ["-Wl,-z,lazy", "-Wl,-z,relro"],
    "now-relro": ["-Wl,-z,now", "-Wl,-z,relro"],
    "no-plt": ["-fno-plt", "-Wl,-z,now", "-Wl,-z,relro"],
}
PIE = {"pie": ["-fPIE", "-pie"], "no-pie": ["-fno-pie", "-no-pie"]}


def zcaller(world: World, binding: str) -> Path:
    out = world.bin / binding / "libzcaller.so"
    if not out.exists():
        out.parent.mkdir(exist_ok=True)
        compile_c(out, [FIXTURES / "zcaller.c"],
                  shared_soname="libzcaller.so", flags=BINDING[binding], libs=["-lz"])
    return out


@pytest.mark.parametrize("pie", PIE)
@pytest.mark.parametrize("binding", BINDING)
def test_every_slot_is_redirected(world: World, binding: str, pie: str) -> None:
    lib = zcaller(world, binding)
    exe = program(
        world, f"relocprog-{binding}-{pie}", ["relocprog.c", "gotcheck.c"],
        flags=[*BINDING[binding], *PIE[pie]],
        libs=[str(lib), f"-Wl,-rpath,{lib.parent}", "-lz"],
    )
    out = run([exe], env=world.env(world.shims)).stdout.splitlines()
    crcs = next(line for line in out if line.startswith("crc ")).split()[1:]
    assert crcs[0] == crcs[1]
    slots = [line for line in out if line.startswith("slot ")]
    assert len(slots) >= 4, out  # calls from the program and from the library
    outside = [s for s in slots if not s.split(" -> ")[1].startswith(str(world.host))]
    assert not outside, "\n".join(outside)
    for line in out:
        if line.startswith(("lib compress", "lib table")):
            assert line.rsplit(" ", 1)[1].startswith(str(world.host)), line


@pytest.mark.parametrize("when", ["start-up", "dlopen"])
def test_no_mapping_gains_write_permission(world: World, when: str) -> None:
    lib = zcaller(world, "now-relro")
    startup = when == "start-up"
    exe = program(world, f"mapsprobe-{when}", ["mapsprobe.c"],
                  flags=[*BINDING["now-relro"], *(["-DUSE_ZLIB"] if startup else [])],
                  libs=["-lz"] if startup else [])
    result = run([exe, lib], env={**world.env(world.shims), "CAPSULE_DEBUG": "reloc"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 protection faults, 0 gained write" in result.stdout
    # The pass really wrote RELRO slots in this run, or the check proves nothing.
    assert " GLOB_DAT slot " in result.stderr or " JUMP_SLOT slot " in result.stderr
