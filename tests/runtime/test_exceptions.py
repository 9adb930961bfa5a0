"""C++ exceptions across the capsule boundary (issue 14, item 2).

libexc.so.1 (fixtures/exc.cc) lives under a prefix with its own C++ runtime
(libstdc++ and libgcc_s, private to the capsule). Exceptions thrown inside
are caught in the program, and the program's callbacks throw through the
capsule's frames, to be caught in the program or inside: the capsule's own
class, standard classes (caught as a base), a non-class value (`catch
(...)`), a rethrow and an `std::exception_ptr`; every object on the unwound
frames is destroyed, and neither side is left counting an uncaught
exception. A thread's pthread_exit inside unwinds the capsule's frames too."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from programs import parse, run
from test_rodata import CXX, KINDS, NO_LSAN, RELRO_NOW, exported_symbols, libstdcxx_files

from build import FIXTURES, MULTIARCH, SAN_FLAGS, Built, build_shim, make_prefix, patched_copy, sh
from testarch import GCC


@dataclass
class Exc:
    real: Path
    prefix: Path
    shim_dir: Path
    programs: dict[str, Path]

    def run(self, kind: str, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return run([self.programs[kind], *args],
                   {"LD_LIBRARY_PATH": str(self.shim_dir), **NO_LSAN, **(env or {})})


@pytest.fixture(scope="module")
def exc(built: Built) -> Exc:
    if not shutil.which("g++"):
        pytest.skip("g++ is missing (scripts/bootstrap.sh installs it)")
    root = built.root / "exc"
    real = root / "real" / "libexc.so.1"
    real.parent.mkdir(parents=True)
    sh([*CXX, "-shared", "-fPIC", FIXTURES / "exc.cc", "-o", real, "-Wl,-soname,libexc.so.1"])
    prefix = make_prefix(root / "prefix", [real, *libstdcxx_files()])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libexc.so.1", str(prefix),
               exported_symbols(real), [])
    programs = {}
    for kind, flags in KINDS.items():
        prog = root / f"exc_prog_{kind}"
        sh([*CXX, *SAN_FLAGS, *flags, *RELRO_NOW, FIXTURES / "exc_prog.cc", "-o", prog, real])
        programs[kind] = prog
    return Exc(real, prefix, shim_dir, programs)


EXPECTED = {
    "inside": {"custom": "custom:7", "custom_as_base": "custom", "out_of_range": "1",
               "vector_at": "1", "catch_all": "1", "rethrown": "custom",
               "exception_ptr": "range", "destroyed": "7"},
    "callback": {"callback": "prog", "callback_as_base": "runtime",
                 "callback_catch_all": "1", "destroyed": "6"},
    "caught-inside": {"inside_std": "std::exception:prog", "inside_int": "int:9",
                      "inside_all": "...", "inside_none": "none", "destroyed": "8"},
    # Not an exception, a forced unwind: pthread_exit inside.
    "thread-exit": {"thread_exit": "1"},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", EXPECTED)
def test_exceptions_cross_the_boundary(exc: Exc, scenario: str, kind: str) -> None:
    plain = run([exc.programs[kind], scenario], {"LD_LIBRARY_PATH": str(exc.real.parent)})
    assert plain.returncode == 0, plain
    proc = exc.run(kind, scenario)
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got == parse(plain.stdout)
    assert got == {**EXPECTED[scenario], "uncaught": "0", "inside_uncaught": "0"}


def test_one_unwinder_and_one_exception_state(exc: Exc) -> None:
    """The capsule takes the program's libgcc_s (a placeholder), not the
    prefix's, and its libstdc++ stays private."""
    proc = exc.run("pie", "all", env={"CAPSULE_DEBUG": "ns"})
    assert proc.returncode == 0, proc
    assert "libgcc_s.so.1: the capsule uses the program's (one unwinder)" in proc.stderr
    assert "uses the program's exception state" in proc.stderr
    loaded = [line for line in proc.stderr.splitlines() if "loaded /" in line]
    assert any(line.endswith(f"{MULTIARCH}/libstdc++.so.6") for line in loaded), proc.stderr
    assert not any("libgcc_s" in line for line in loaded), proc.stderr
    assert f"{exc.prefix}/{MULTIARCH}/libgcc_s.so.1" not in proc.stderr


def test_a_newer_unwinder_in_the_prefix_is_kept_and_said(exc: Exc, tmp_path: Path) -> None:
    """A prefix whose libstdc++ needs a libgcc_s version the program's copy
    lacks keeps its own unwinder: one capsule: line says exceptions cannot
    cross, and one that does ends the process as it would without the line."""
    prefix = tmp_path / "prefix"
    shutil.copytree(exc.prefix, prefix, symlinks=True)
    libdir = prefix / MULTIARCH
    # Renamed on both sides of the prefix (the version hash is unchanged, so
    # ld.so still matches them): a version the program's libgcc_s lacks.
    for name in ("libstdc++.so.6", "libgcc_s.so.1"):
        patched_copy(libdir / name, libdir / name, {b"GCC_4.2.0": b"GCC_9.9.9"})
    proc = exc.run("pie", "caught-inside", env={"CAPSULE_PREFIX": str(prefix)})
    lines = [line for line in proc.stderr.splitlines() if line.startswith("capsule:")]
    assert lines == [f"capsule: prefix {prefix}: libgcc_s.so.1: libstdc++.so.6 needs version "
                     "GCC_9.9.9 of it, which the program's lacks; the capsule keeps its own "
                     "unwinder, and a C++ exception thrown across the boundary will abort the "
                     "process"], proc.stderr
    assert proc.returncode == -signal.SIGABRT, proc


def test_a_plugin_the_capsule_opens_later_gets_the_programs_unwinder(exc: Exc,
                                                                     built: Built) -> None:
    """A C library, whose namespace needs no libgcc_s at first, dlopen()s a
    C++ plugin from the prefix: its libgcc_s is the program's too, and its
    exceptions reach the program through the C library's frame."""
    root = built.root / "excc"
    real = root / "real" / "libexcc.so.1"
    real.parent.mkdir(parents=True)
    sh([*GCC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-shared", "-fPIC",
        FIXTURES / "excc.c", "-o", real, "-Wl,-soname,libexcc.so.1", "-ldl"])
    plugin = root / "real" / "libexcplug.so"
    sh([*CXX, "-shared", "-fPIC", FIXTURES / "exc.cc", "-o", plugin])
    prefix = make_prefix(root / "prefix", [real, plugin, *libstdcxx_files()])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libexcc.so.1", str(prefix),
               exported_symbols(real), [])
    prog = root / "excc_prog"
    sh([*CXX, *SAN_FLAGS, FIXTURES / "excc_prog.cc", "-o", prog, real])
    proc = run([prog], {"LD_LIBRARY_PATH": str(shim_dir), "CAPSULE_DEBUG": "ns", **NO_LSAN})
    assert proc.returncode == 0, proc
    assert parse(proc.stdout) == {"plugin": "custom", "plugin_catch_all": "1", "uncaught": "0"}
    assert "libgcc_s.so.1: the capsule uses the program's (one unwinder)" in proc.stderr
    # Never loaded (the namespace maps after each inside dlopen name every object).
    assert f"{prefix}/{MULTIARCH}/libgcc_s.so.1" not in proc.stderr
    assert f"{prefix}/{MULTIARCH}/libexcplug.so" in proc.stderr
