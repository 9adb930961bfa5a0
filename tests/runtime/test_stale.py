"""Stale shims (issue 14, item 5): a shim built from today's libdemo.so.1
run against a prefix holding its first release (fixtures/demo_old.c), which
lacks most of what the shim exports. Each program must behave as ld.so makes
it behave with the old library alone: lookups give NULL, a data reference or
a non-weak address taken (GLOB_DAT) stops the start-up with one line, a weak
reference is NULL, a call through the PLT aborts naming the symbol."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from programs import parse, run

from build import (
    CC,
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    MULTIARCH,
    Built,
    build_lib,
    build_shim,
    make_prefix,
    sh,
)

VARIANTS = {
    "lookups": [],
    "own": ["-DUSE_OWN"],
    "weak": ["-DUSE_WEAK", "-fPIC", "-pie"],
    "data-copy": ["-DUSE_DATA", "-fPIE", "-pie"],
    "data-got": ["-DUSE_DATA", "-fPIC", "-pie"],
    "data-nopie": ["-DUSE_DATA", "-fno-pie", "-no-pie"],
    "address": ["-DUSE_ADDRESS", "-fPIE", "-pie", "-Wl,-z,lazy"],
}


@dataclass
class Stale:
    old_dir: Path   # the first release alone, for the runs without capsules
    prefix: Path    # the same, as the host tree
    shim_dir: Path  # a shim built from today's release
    programs: dict[str, Path]

    def old(self) -> str:
        return str(self.old_dir / "libdemo.so.1")

    def in_prefix(self) -> str:
        return str(self.prefix / MULTIARCH / "libdemo.so.1")


@pytest.fixture(scope="module")
def stale(built: Built) -> Stale:
    root = built.root / "stale"
    old = build_lib(root / "old", "libdemo.so.1", [FIXTURES / "demo_old.c"],
                    version_script=FIXTURES / "demo_old.map")
    prefix = make_prefix(root / "prefix", [old])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdemo.so.1", str(prefix), DEMO_SYMBOLS,
               DEMO_VERSIONS)
    own = build_lib(root / "own", "libstaleown.so", [FIXTURES / "stale_own.c"])
    programs = {}
    for name, flags in VARIANTS.items():
        # Programs that use what only today's release has are linked against it.
        libs = [old, own, f"-Wl,-rpath,{own.parent}"] if name == "own" else \
            [old] if name in ("lookups", "weak") else [built.demo]
        prog = root / f"stale_{name}"
        sh([*CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", *flags,
            FIXTURES / "stale_prog.c", "-o", prog, *libs, f"-Wl,-rpath-link,{built.real_dir}",
            "-ldl"])
        programs[name] = prog
    return Stale(old.parent, prefix, shim_dir, programs)


def both(stale: Stale, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The program's output with the old library alone and through the shim,
    the library's path written as LIB in each."""
    plain = run([stale.programs[name]], {"LD_LIBRARY_PATH": str(stale.old_dir)})
    capsule = run([stale.programs[name]], {"LD_LIBRARY_PATH": str(stale.shim_dir)})
    assert plain.returncode == 0, plain
    assert capsule.returncode == 0, capsule
    assert capsule.stderr == "", capsule.stderr
    return ({k: v.replace(stale.old(), "LIB") for k, v in parse(plain.stdout).items()},
            {k: v.replace(stale.in_prefix(), "LIB") for k, v in parse(capsule.stdout).items()})


def test_lookups_of_names_the_host_library_lacks_give_null(stale: Stale) -> None:
    plain, capsule = both(stale, "lookups")
    assert capsule == plain
    assert capsule["add"] == "1005"
    assert capsule["vdefault_add"] == capsule["handle_add"] == "LIB"
    for key in ("default_where", "default_counter", "vdefault_where", "handle_where",
                "next_where", "next_counter"):
        assert capsule[key] == "NULL", key


def test_a_later_definition_of_a_name_the_host_library_lacks_is_found(stale: Stale) -> None:
    """libstaleown.so, after the shim, defines demo_where: its own GOT slot,
    RTLD_DEFAULT and RTLD_NEXT all give that definition, as without capsules."""
    plain, capsule = both(stale, "own")
    assert capsule == plain
    own = str(stale.programs["own"].parent / "own" / "libstaleown.so")
    for key in ("own_where", "default_where", "next_where"):
        assert capsule[key] == own, key
    assert capsule["handle_where"] == capsule["default_counter"] == "NULL"


def test_weak_references_to_names_the_host_library_lacks_are_null(stale: Stale) -> None:
    plain, capsule = both(stale, "weak")
    assert capsule == plain
    assert capsule["weak_counter"] == capsule["weak_where"] == "NULL"


@pytest.mark.parametrize("name", ["data-copy", "data-got", "data-nopie", "address"])
def test_a_reference_the_host_library_cannot_satisfy_stops_the_start(stale: Stale,
                                                                      name: str) -> None:
    prog = stale.programs[name]
    # ld.so's own refusal, the reference, is run without valgrind: valgrind
    # 3.19 faults in its libc clean-up after ld.so's fatal error.
    plain = subprocess.run([prog], env={"LD_LIBRARY_PATH": str(stale.old_dir)},
                           capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode == 127 and "undefined symbol" in plain.stderr, plain
    proc = run([prog], {"LD_LIBRARY_PATH": str(stale.shim_dir)})
    assert proc.returncode == 127 and proc.stdout == "", proc
    lines = proc.stderr.splitlines()
    symbol = "function demo_where@DEMO_1" if name == "address" else "variable demo_counter@DEMO_1"
    assert lines == [f"capsule: libdemo.so.1: prefix {stale.prefix}: (main program) uses "
                     f"{symbol}, which libdemo.so.1 does not define in this prefix (the shim "
                     "was built from another version of it)"], proc.stderr


def test_a_call_the_host_library_cannot_satisfy_aborts_at_the_call(stale: Stale,
                                                                    built: Built) -> None:
    # fixtures/prog.c calls demo_missing (a JUMP_SLOT) only when asked: it
    # starts, as under lazy binding, and the call aborts naming the symbol.
    prog = stale.programs["lookups"].parent / "prog"
    sh([*CC, "-std=c11", "-g", f"-I{FIXTURES}", FIXTURES / "stale_call.c", "-o", prog,
        built.demo, f"-Wl,-rpath-link,{built.real_dir}", "-Wl,-z,lazy"])
    proc = run([prog], {"LD_LIBRARY_PATH": str(stale.shim_dir)})
    assert proc.stdout.startswith("started\n"), proc
    assert proc.returncode == -signal.SIGABRT, proc
    assert proc.stderr.splitlines()[0] == \
        "capsule: libdemo.so.1: demo_missing@DEMO_2 called but not resolved"
