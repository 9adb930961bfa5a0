"""Shared sonames: with `share`, a library the program uses (libstate.so.1,
holding a counter) has one copy, the program's, which the capsule's prefix
library uses too; without it the capsule loads its own copy from the prefix."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
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
    program_prefix,
    sh,
)
from capsule_module import ldd
from testarch import link_flags, system_library, with_run_libdirs

SUSER_SYMBOLS = [Sym("suser_bump", None), Sym("suser_counter_address", None),
                 Sym("suser_state_address", None), Sym("suser_kind", None),
                 Sym("suser_dlopen_counter", None), Sym("suser_bump_function", None)]


@dataclass
class Share:
    prefix: Path
    program_side: Path   # the program's libstate.so.1
    shared: Path         # shim dir, share: libstate.so.1
    plain: Path          # shim dir, no share
    linked: Path         # program linked against libstate and libsuser
    bare: Path           # program linked against libsuser only


@pytest.fixture(scope="module")
def share(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Share:
    root = tmp_path_factory.mktemp("share")
    real = root / "real"
    state = build_lib(real, "libstate.so.1", [FIXTURES / "state.c"],
                      version_script=FIXTURES / "state.map")
    suser = build_lib(real, "libsuser.so.1", [FIXTURES / "suser.c"], libs=[state])
    prefix = make_prefix(root / "prefix", [suser, state])
    program_side = root / "program"
    program_side.mkdir()
    shutil.copy2(state, program_side)
    shared = root / "shim-shared"
    plain = root / "shim-plain"
    build_shim(shared, built.libcapsule_dir, "libsuser.so.1", str(prefix), SUSER_SYMBOLS, [],
               share=["libstate.so.1"])
    build_shim(plain, built.libcapsule_dir, "libsuser.so.1", str(prefix), SUSER_SYMBOLS, [])
    progs = []
    for name, extra in (("linked", [state]), ("bare", ["-DSHARE_BARE"])):
        prog = root / name
        sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", f"-I{FIXTURES}",
            FIXTURES / "share_prog.c", "-o", prog, suser,
            *[e for e in extra if isinstance(e, Path)],
            *[e for e in extra if isinstance(e, str)], f"-Wl,-rpath-link,{real}", "-ldl"])
        progs.append(prog)
    return Share(prefix, program_side, shared, plain, *progs)


def run(prog: Path, path: list[Path], debug: str = "") -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = ":".join(map(str, path))
    if debug:
        env["CAPSULE_DEBUG"] = debug
    proc = subprocess.run([*program_prefix(env), str(prog), "dlopen"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, list[str]] = {"stderr": [proc.stderr]}
    for line in proc.stdout.splitlines():
        key, _, value = line.rpartition(" ")
        out.setdefault(key, []).append(value)
    return out


def test_shared_is_the_programs_copy(share: Share) -> None:
    out = run(share.linked, [share.shared, share.program_side], debug="ns")
    assert out["program bump"] == ["1", "2"]
    assert out["capsule bump"] == ["3", "4"]          # one counter
    assert out["capsule address"] == out["program address"]
    assert out["capsule counter"] == out["program counter"]  # data symbol aliased
    assert out["capsule kind"] == ["1"]                   # IFUNC resolved
    assert out["capsule state in"] == [str(share.program_side / "libstate.so.1")]
    # dlopen inside the capsule, by soname or by path, gives the same copy.
    assert out["capsule dlopen counter"] == out["program counter"]
    assert out["capsule dlopen path counter"] == out["program counter"]
    assert "(shared: libstate.so.1)" in out["stderr"][0]       # the namespace map says so
    nsmap = ldd.parse(out["stderr"][0])
    assert nsmap is not None
    inside = [p for space in nsmap.namespaces.values() if space.prefix for p in space.objects]
    assert not [p for p in inside if p.endswith("/libstate.so.1")], inside  # no second copy


@pytest.mark.parametrize("make", ["sysv-hash", "other-soname"])
def test_shared_copy_whatever_its_tables(share: Share, tmp_path: Path, make: str) -> None:
    """The placeholder copies the program's library's own tables: a copy with
    only a SysV hash table (--hash-style=sysv), or one whose DT_SONAME is not
    the name it was loaded by, is shared all the same (the placeholder has
    the name the capsule's libraries need)."""
    sysv = make == "sysv-hash"
    lib = build_lib(tmp_path / "build", "libstate.so.1" if sysv else "libstate-other.so.1",
                    [FIXTURES / "state.c"], version_script=FIXTURES / "state.map",
                    flags=["-Wl,--hash-style=sysv"] if sysv else [])
    sections = sh(["readelf", "-SW", lib]).stdout
    assert (".gnu.hash" in sections) is not sysv, sections  # the make this case is about
    side = tmp_path / "program"
    side.mkdir()
    shutil.copy2(lib, side / "libstate.so.1")
    out = run(share.linked, [share.shared, side])
    assert out["program bump"] == ["1", "2"]
    assert out["capsule bump"] == ["3", "4"]          # one counter: the program's copy
    assert out["capsule counter"] == out["program counter"]
    assert out["capsule kind"] == ["1"]                   # IFUNC resolved
    assert out["capsule dlopen counter"] == out["program counter"]
    assert out["capsule state in"] == [str(side / "libstate.so.1")]


def test_without_share_the_capsule_has_its_own_copy(share: Share) -> None:
    out = run(share.linked, [share.plain, share.program_side])
    assert out["program bump"] == ["1", "2"]
    assert out["capsule bump"] == ["1", "2"]
    assert out["capsule address"] != out["program address"]
    assert out["capsule state in"] == [str(share.prefix / MULTIARCH / "libstate.so.1")]


def test_shared_soname_the_program_has_not_loaded(share: Share) -> None:
    """The program's copy is loaded into the program's namespace for the capsule."""
    out = run(share.bare, [share.shared, share.program_side])
    assert out["capsule bump"] == ["1", "2"]
    assert out["capsule state in"] == [str(share.program_side / "libstate.so.1")]
    assert out["program has libstate"] == ["yes"]


def test_shared_soname_the_program_cannot_load(share: Share) -> None:
    """No copy on the program's side: the capsule takes its own from the prefix."""
    out = run(share.bare, [share.shared], debug="ns")
    assert out["capsule bump"] == ["1", "2"]
    assert out["capsule state in"] == [str(share.prefix / MULTIARCH / "libstate.so.1")]
    assert out["program has libstate"] == ["no"]
    assert "share libstate.so.1: the program has no copy" in out["stderr"][0]


def test_rtld_default_miss_from_a_library_never_dlopened(share: Share, tmp_path: Path) -> None:
    """dlsym(RTLD_DEFAULT) of a missing name from a library that was never
    dlopen()ed by name (a start-up dependency; a dependency of a dlopen()ed
    library) returns NULL. Its link map is no dlsym handle: glibc gives such
    a map no search list, and dlsym on it read list[0] of an empty one (a
    SEGV in do_lookup_x; under ASan, libubsan's own lookup of
    `swift_demangle` did it in every program of this file)."""
    miss = build_lib(tmp_path, "libmiss.so", [FIXTURES / "miss.c"], sanitize=True)
    dep = build_lib(tmp_path, "libmissdep.so", [FIXTURES / "miss.c"], sanitize=True,
                    flags=["-Dmiss_lookup=missdep_lookup"])
    root = build_lib(tmp_path, "libmissroot.so", [FIXTURES / "missroot.c"], sanitize=True,
                     libs=[dep, f"-Wl,-rpath,{tmp_path}"])
    prog = tmp_path / "miss_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "miss_prog.c", "-o", prog,
        share.prefix / MULTIARCH / "libsuser.so.1", miss, f"-Wl,-rpath,{tmp_path}",
        f"-Wl,-rpath-link,{share.prefix / MULTIARCH}", "-ldl"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = str(share.plain)
    proc = subprocess.run([*program_prefix(env), str(prog), str(root)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "capsule bump 1" in proc.stdout
    assert "startup dependency miss null" in proc.stdout
    assert "loaded dependency miss null" in proc.stdout


# ---- the default list (a shim built without `share`) ----

X11_CLOSURE = ["libX11.so.6", "libxcb.so.1", "libXau.so.6", "libXdmcp.so.6", "libbsd.so.0",
               "libmd.so.0"]


@pytest.fixture(scope="module")
def x11(built: Built,
        tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    root = tmp_path_factory.mktemp("share-default")
    real = root / "real"
    xuser = build_lib(real, "libxuser.so.1", [FIXTURES / "xuser.c"],
                      libs=[*link_flags(), "-lX11"])
    prefix = make_prefix(root / "prefix", [xuser, *(system_library(n) for n in X11_CLOSURE)])
    shim = root / "shim"
    build_shim(shim, built.libcapsule_dir, "libxuser.so.1", str(prefix),
               [Sym("xuser_xopen", None)], [], share=None)
    progs = []
    for name, flags in (("with_x11", ["-DWITH_X11", "-lX11"]), ("without_x11", [])):
        prog = root / name
        sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "xuser_prog.c",
            "-o", prog, xuser, *link_flags(), *flags, "-ldl"])
        progs.append(prog)
    return prefix, shim, *progs


def _x11_run(prog: Path, shim: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = with_run_libdirs(str(shim))  # then the system's libX11
    proc = subprocess.run([*program_prefix(env), str(prog)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def test_default_share_uses_the_programs_x11(x11: tuple[Path, Path, Path, Path]) -> None:
    """No `share` given: libX11 the program loaded is the capsule's too."""
    prefix, shim, with_x11, _ = x11
    got = _x11_run(with_x11, shim)
    assert got["same"] == "1" and not got["inside"].startswith(str(prefix)), got


def test_default_share_loads_nothing_into_a_program_without_x11(
        x11: tuple[Path, Path, Path, Path]) -> None:
    """A program that never loaded libX11: the capsule keeps the prefix's,
    and nothing is loaded into the program for it."""
    prefix, shim, _, without_x11 = x11
    got = _x11_run(without_x11, shim)
    assert got["inside"].startswith(str(prefix)), got
    assert got["program_has_x11"] == "0"
