"""The end-to-end tests' world: a prefix tree made from this machine's
libraries, the fixture libraries of the segregation scenario, and the shims
built by a real consumer Meson project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import MULTIARCH, REPO, compile_c, make_prefix_tree, meson_command, run
from testarch import ARCH, CROSS, system_library

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"


@dataclass(frozen=True)
class World:
    host: Path          # the prefix tree the shims load from
    host_libdir: Path
    runtime: Path       # the program's own library directory (incompatible libDEP)
    shims: Path         # build directory holding the shims
    bin: Path           # test programs

    def env(self, *dirs: Path) -> dict[str, str]:
        return {"LD_LIBRARY_PATH": ":".join(str(d) for d in dirs)}


def build_segregation_libs(host_libdir: Path, runtime: Path) -> None:
    compile_c(host_libdir / "libDEP.so.1", [FIXTURES / "dep_host.c"], shared_soname="libDEP.so.1")
    compile_c(
        host_libdir / "libuser.so.1",
        [FIXTURES / "user.c"],
        shared_soname="libuser.so.1",
        libs=[f"-L{host_libdir}", "-l:libDEP.so.1"],
    )
    compile_c(runtime / "libDEP.so.1", [FIXTURES / "dep_runtime.c"], shared_soname="libDEP.so.1")


def build_shims(host: Path, build: Path) -> Path:
    # For another architecture than the machine's, the repository's cross file.
    cross = ["--cross-file", str(REPO / "cross" / f"{ARCH.triplet}.ini")] if CROSS else []
    run([*meson_command(), "setup", *cross, str(build), str(HERE / "project"), f"-Dhost={host}"])
    run([*meson_command(), "compile", "-C", str(build)])
    return build


def make_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("e2e")
    host = root / "host"
    host_libdir = host / MULTIARCH
    runtime = root / "runtime"
    runtime.mkdir()
    make_prefix_tree(host, [system_library("libz.so.1"), system_library("libexpat.so.1")],
                     ldcache=False)
    build_segregation_libs(host_libdir, runtime)
    make_prefix_tree(host, [])  # writes the tree's ld.so.cache over everything above
    shims = build_shims(host, root / "shims")
    binaries = root / "bin"
    binaries.mkdir()
    return World(host, host_libdir, runtime, shims, binaries)


def program(world: World, name: str, sources: list[str], *, flags: list[str] | None = None,
            libs: list[str] | None = None) -> Path:
    """Build a fixture program once per session (cached by name)."""
    out = world.bin / name
    if not out.exists():
        compile_c(out, [FIXTURES / s for s in sources], flags=[f"-I{FIXTURES}", *(flags or [])],
                  libs=[*(libs or []), "-ldl"])
    return out


def segregation_program(world: World) -> Path:
    """The program that uses libuser (through its shim) and its own libDEP."""
    return program(
        world,
        "segprog",
        ["segprog.c"],
        flags=["-Wl,--allow-shlib-undefined"],
        libs=[f"-L{world.host_libdir}", "-l:libuser.so.1", f"-L{world.runtime}", "-l:libDEP.so.1"],
    )
