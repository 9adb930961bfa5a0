"""libcapsule at run time: a program linked against a real library runs with
a shim of it first on LD_LIBRARY_PATH and must reach the real library loaded
from the prefix, in every relocation mode, with clear one-line failures."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from programs import parse, run

from build import (
    CC,
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    LIBCAPSULE,
    MULTIARCH,
    SANITIZE,
    Built,
    Sym,
    build_demo,
    build_lib,
    build_program,
    build_shim,
    make_prefix,
    sh,
)
from testarch import ARCH, COPY_FLAGS, CROSS, FIRST_LIB_DIR, OTHER_CLASS, RELOC, REPO

MODES = {
    "lazy": ["-Wl,-z,lazy", "-Wl,-z,relro"],
    "now-relro": ["-Wl,-z,now", "-Wl,-z,relro"],
    "fno-plt": ["-fno-plt", "-Wl,-z,now", "-Wl,-z,relro"],
    "norelro-lazy": ["-Wl,-z,norelro", "-Wl,-z,lazy"],
}
PROGRAM_KINDS = {"pie": ["-fPIE", "-pie"], "nopie": ["-fno-pie", "-no-pie"]}


@pytest.fixture(scope="module")
def program(built: Built) -> Path:
    return build_program(built, built.root / "prog-default", MODES["lazy"], [])


def shim_env(b: Built, **extra: str) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": str(b.shim_dir), **extra}


def assert_capsule_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 127, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule: libdemo.so.1: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("kind", PROGRAM_KINDS)
@pytest.mark.parametrize("mode", MODES)
def test_calls_reach_the_real_library(built: Built, mode: str, kind: str) -> None:
    out = built.root / f"prog-{mode}-{kind}"
    prog = build_program(built, out, MODES[mode], PROGRAM_KINDS[kind])
    proc = run([prog], shim_env(built, CAPSULE_DEBUG="reloc"))
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    real = str(built.prefix / MULTIARCH / "libdemo.so.1")
    assert got["where"] == "real"
    assert got["add"] == "5" and got["add_old"] == "1005"
    assert got["dep"] == "42"
    assert got["counter"] == "8" and got["user_counter"] == "8"
    assert got["user_add"] == "9"
    assert got["counter_same"] == "1"
    assert got["user_counter_object"] == real
    assert got["add_object"] == real or (kind == "nopie" and got["add_object"].endswith("prog"))
    assert got["where_object"] in (real, str(prog))
    assert got["user_where_object"] in (real, str(prog))
    # The program and libuser.so were redirected (not left to the stubs).
    for obj in ("(main program)", str(out / "libuser.so"), str(out / "libolduser.so")):
        lines = [ln for ln in proc.stderr.splitlines()
                 if ln.startswith(f"capsule[reloc]: {obj}: ") and "redirected" in ln]
        assert lines and not lines[0].split(": ")[2].startswith("0 "), proc.stderr


def test_without_shim_the_real_library_is_used(built: Built, program: Path) -> None:
    proc = run([program], {"LD_LIBRARY_PATH": str(built.real_dir)})
    assert parse(proc.stdout)["where_object"] == str(built.real_dir / "libdemo.so.1")


def test_debug_topics(built: Built, program: Path) -> None:
    proc = run([program], shim_env(built, CAPSULE_DEBUG="all"))
    assert proc.returncode == 0
    for topic in ("path", "search", "ldcache", "reloc", "ns", "cache"):
        assert f"capsule[{topic}]: " in proc.stderr, topic
    # Without kept resolutions, so that the ld.so.cache is read.
    proc = run([program], shim_env(built, CAPSULE_DEBUG="ldcache,,bogus,ns",
                                   CAPSULE_CACHE_DIR="off"))
    topics = {ln.split("]")[0] for ln in proc.stderr.splitlines()}
    assert topics == {"capsule[ldcache", "capsule[ns"}, proc.stderr
    assert run([program], shim_env(built)).stderr == ""


def test_prefix_environment_overrides(built: Built, program: Path, tmp_path: Path) -> None:
    shim_dir = tmp_path / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libdemo.so.1", "/nonexistent/built-in",
               DEMO_SYMBOLS, DEMO_VERSIONS)
    env = {"LD_LIBRARY_PATH": str(shim_dir)}
    assert_capsule_failure(run([program], env), "prefix /nonexistent/built-in: ")
    proc = run([program], {**env, "CAPSULE_PREFIX": str(built.prefix)})
    assert proc.returncode == 0 and parse(proc.stdout)["add"] == "5", proc
    proc = run([program], {**env, "CAPSULE_PREFIX": "/nonexistent/global",
                           "CAPSULE_LIBDEMO_SO_1_PREFIX": str(built.prefix)})
    assert proc.returncode == 0 and parse(proc.stdout)["add"] == "5", proc


def test_prefix_missing(built: Built, program: Path) -> None:
    proc = run([program], shim_env(built, CAPSULE_PREFIX="/nonexistent/tree"))
    assert_capsule_failure(proc, "prefix /nonexistent/tree: prefix does not exist")


def test_target_missing(built: Built, program: Path, tmp_path: Path) -> None:
    proc = run([program], shim_env(built, CAPSULE_PREFIX=str(tmp_path)))
    assert_capsule_failure(proc, f"prefix {tmp_path}: libdemo.so.1 not found under the prefix")


def test_dependency_missing(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "p", [built.demo])
    proc = run([program], shim_env(built, CAPSULE_PREFIX=str(prefix)))
    assert_capsule_failure(proc, "libdemodep.so.1 (needed by ", "not found under the prefix")


def test_dependency_lacking_a_symbol(built: Built, program: Path, tmp_path: Path) -> None:
    # libdemodep.so.1 in the prefix lacks demodep_value, which libdemo.so.1
    # needs: init fails with one line naming it, not ld.so's "symbol lookup
    # error" later, at the first call.
    src = tmp_path / "dep.c"
    src.write_text("int demodep_other(void) { return 1; }\n")
    dep = build_lib(tmp_path / "lib", "libdemodep.so.1", [src])
    prefix = make_prefix(tmp_path / "p", [built.demo, dep])
    proc = run([program], shim_env(built, CAPSULE_PREFIX=str(prefix)))
    assert_capsule_failure(proc, f"{prefix / MULTIARCH / 'libdemo.so.1'}: ",
                           "undefined symbol: demodep_value")
    assert "where=" not in proc.stdout


@pytest.mark.skipif(SANITIZE == "valgrind", reason="valgrind 3.19 itself fails an assertion "
                    "(get_elf_symbol_info: in_rx) reading objects linked at a non-zero address "
                    "and mapped elsewhere; the plain and ASan runs cover it")
def test_target_mapped_away_from_its_load_base(built: Built, program: Path,
                                              tmp_path: Path) -> None:
    # Both linked at 1 GiB: the second one loaded cannot be mapped there, and
    # its l_addr is then 1 GiB below its first mapping, where no ELF header
    # is mapped. libcapsule asks ld.so for the program headers instead.
    at = "-Wl,-Ttext-segment=0x40000000"
    demodep = build_lib(tmp_path / "lib", "libdemodep.so.1", [FIXTURES / "demodep.c"],
                        flags=[at])
    demo = build_lib(tmp_path / "lib", "libdemo.so.1", [FIXTURES / "demo.c"],
                     version_script=FIXTURES / "demo.map", flags=[at], libs=[demodep])
    prefix = make_prefix(tmp_path / "p", [demo, demodep])
    proc = run([program], shim_env(built, CAPSULE_PREFIX=str(prefix)))
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["where"] == "real" and got["add"] == "5", got
    assert got["counter"] == "8" and got["user_counter"] == "8", got
    assert got["counter_same"] == "1", got
    # A COPY of demo_counter in the program: the target's own slot for it is
    # rewritten too, which needs its program headers (RELRO, segments).
    src = tmp_path / "copy.c"
    src.write_text('#include <stdio.h>\n#include "demo.h"\nint main(void) {\n'
                   '  demo_bump();\n  printf("counter=%d\\nsame=%d\\n", demo_counter,\n'
                   '         &demo_counter == demo_counter_address());\n  return 0;\n}\n')
    prog = tmp_path / "copy_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", *COPY_FLAGS, f"-I{FIXTURES}", src,
        "-o", prog, built.demo, f"-Wl,-rpath-link,{built.real_dir}"])
    assert RELOC["COPY"] in sh(["readelf", "-rW", prog]).stdout
    proc = run([prog], shim_env(built, CAPSULE_PREFIX=str(prefix)))
    assert parse(proc.stdout) == {"counter": "8", "same": "1"}, proc


def test_unresolved_symbol_aborts_with_its_name(built: Built, program: Path,
                                                tmp_path: Path) -> None:
    demo, demodep = build_demo(tmp_path / "lib", "-DDEMO_NO_MISSING")
    prefix = make_prefix(tmp_path / "p", [demo, demodep])
    proc = run([program, "missing"], shim_env(built, CAPSULE_PREFIX=str(prefix)))
    assert proc.returncode == -signal.SIGABRT, proc
    assert proc.stderr.splitlines()[0] == \
        "capsule: libdemo.so.1: demo_missing@DEMO_2 called but not resolved"


def test_stubs_forward_to_the_real_definitions(built: Built, tmp_path: Path) -> None:
    """A stub reached directly (a pointer taken from the shim) jumps to its
    symbol's real definition, each version to its own."""
    with (built.shim_dir / "libdemo.so.1").open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        stubs = {s.name: s["st_value"] for s in symtab.iter_symbols()
                 if s.name.startswith("__capsule_stub_")}
    assert DEMO_SYMBOLS[0] == Sym("demo_add", "DEMO_2")
    assert DEMO_SYMBOLS[1] == Sym("demo_add", "DEMO_1", hidden=True)
    prog = tmp_path / "stubcall"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}",
        FIXTURES / "stubcall_prog.c", "-o", prog, built.demo, f"-Wl,-rpath,{built.demo.parent}"])
    proc = run([prog, f"{stubs['__capsule_stub_0']:x}", f"{stubs['__capsule_stub_1']:x}"],
               shim_env(built))
    assert proc.returncode == 0, proc
    assert parse(proc.stdout) == {"v2": "5", "v1": "1005"}, proc


def test_wrong_class_target_is_skipped(built: Built, program: Path, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "p", [built.demo, built.demodep], ldcache=False)
    bad = prefix / FIRST_LIB_DIR / "libdemo.so.1"  # searched first
    bad.parent.mkdir(parents=True)
    data = bytearray(built.demo.read_bytes())
    data[4] = OTHER_CLASS  # EI_CLASS of the other class
    bad.write_bytes(bytes(data))
    proc = run([program], shim_env(built, CAPSULE_PREFIX=str(prefix), CAPSULE_DEBUG="search"))
    assert proc.returncode == 0, proc
    assert "wrong ELF class" in proc.stderr
    assert parse(proc.stdout)["add_object"] == str(prefix / MULTIARCH / "libdemo.so.1")


def test_no_mapping_gains_write_permission(built: Built, tmp_path: Path) -> None:
    user = build_lib(tmp_path, "libuser.so", [FIXTURES / "user.c"],
                     flags=["-Wl,-z,now", "-Wl,-z,relro"], libs=[built.demo],
                     version_script=FIXTURES / "user.map")
    prog = tmp_path / "dlopen_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", FIXTURES / "dlopen_prog.c", "-o", prog,
        "-ldl"])
    capsuled = run([prog, user], shim_env(built, CAPSULE_DEBUG="reloc"))
    assert capsuled.returncode == 0, capsuled
    assert "user_add=9" in capsuled.stdout
    assert f"capsule[reloc]: {user}: " in capsuled.stderr
    plain = run([prog, user], {"LD_LIBRARY_PATH": str(built.real_dir)})
    maps = [ln for ln in capsuled.stdout.splitlines() if ln.startswith("map ")]
    assert maps == [ln for ln in plain.stdout.splitlines() if ln.startswith("map ")]
    assert "map r--p" in maps  # the RELRO range went back to read-only


def test_meson_builds_libcapsule(tmp_path: Path) -> None:
    meson = Path(os.environ.get("MESON", "")) if os.environ.get("MESON") else None
    venv_meson = Path(__file__).resolve().parents[2] / ".venv/bin/meson"
    cmd = str(meson or (venv_meson if venv_meson.exists() else "meson"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "libcapsule").symlink_to(LIBCAPSULE)
    (src / "meson.build").write_text(
        "project('scratch', 'c')\nsubdir('libcapsule')\n"
        "assert(dependency('capsule').found())\n")
    # For another architecture, the repository's cross file for it.
    cross = ["--cross-file", REPO / "cross" / f"{ARCH.triplet}.ini"] if CROSS else []
    sh([cmd, "setup", *cross, tmp_path / "b", src, "-Dwerror=true", "-Dwarning_level=2"])
    proc = sh(["ninja", "-C", tmp_path / "b"])
    assert "warning" not in proc.stdout.lower()
    lib = tmp_path / "b/libcapsule/libcapsule.so.0"
    syms = sh(["nm", "-D", "--defined-only", lib]).stdout.split()
    exported = sorted(s.split("@")[0] for s in syms if s.startswith("capsule_"))
    assert exported == ["capsule_shim_init", "capsule_shim_preflight", "capsule_shim_unresolved",
                        "capsule_shim_wait"]
    assert "libcapsule.so.0" in sh(["readelf", "-d", lib]).stdout
    assert (tmp_path / "b/meson-private/capsule.pc").exists()
