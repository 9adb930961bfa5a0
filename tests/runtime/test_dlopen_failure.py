"""A shim whose capsule cannot be set up, loaded by dlopen(): that dlopen
fails, with dlerror() giving exactly the text of the `capsule:` line, and
the program goes on (a probe falls back: SDL, Python's `try: CDLL(...)`,
Vulkan loaders). Loaded at start-up (DT_NEEDED), the same shim still ends
the process with that one line and status 127. The shim checks from an
IFUNC resolver, which ld.so runs while it relocates the shim, inside the
dlopen's error handler (capsule.h: capsule_shim_preflight)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from programs import parse, run

from build import (
    CC,
    DEMO_SYMBOLS,
    DEMO_VERSIONS,
    FIXTURES,
    GCC,
    LIBCAPSULE,
    MULTIARCH,
    SANITIZE,
    Built,
    Sym,
    build_lib,
    build_shim,
    make_prefix,
    program_prefix,
    render_shim,
    sh,
)
from testarch import ARCH, RELOC, require_native

# The shim's binding: lazy (its IRELATIVE in .rela.plt, after .rela.dyn),
# or -fno-plt -z now (in .rela.dyn: ld.so runs IRELATIVE last of a range).
SHIM_FLAGS = {"lazy": [], "fno-plt-now": ["-fno-plt", "-Wl,-z,now", "-Wl,-z,relro"]}
# How the program binds: its own dlopen mode, or LD_BIND_NOW for everything.
BINDINGS = {"lazy": ("lazy", {}), "now": ("now", {}), "bind-now": ("lazy", {"LD_BIND_NOW": "1"})}


def _probe(tmp_path: Path) -> Path:
    prog = tmp_path / "probe_prog"
    if not prog.exists():
        sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "probe_prog.c",
            "-o", prog, "-ldl", "-lm"])
    return prog


def _linked(tmp_path: Path, shim: Path) -> Path:
    """A program with the shim as a DT_NEEDED: its capsule starts with it."""
    main = tmp_path / "linked.c"
    main.write_text('#include <stdio.h>\n#include "demo.h"\n'
                    'int main(void) { printf("add=%d\\n", demo_add(2, 3)); return 0; }\n')
    prog = tmp_path / "linked"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}", main, "-o", prog,
        "-Wl,--no-as-needed", shim, f"-Wl,-rpath,{shim.parent}"])
    return prog


def _missing_target_shim(built: Built, tmp_path: Path, flags: list[str]) -> tuple[Path, Path]:
    """A demo shim whose built-in prefix has libdemodep.so.1 but no libdemo.so.1."""
    prefix = make_prefix(tmp_path / "prefix", [built.demodep])
    shim = build_shim(tmp_path / "shim", built.libcapsule_dir, "libdemo.so.1", str(prefix),
                      DEMO_SYMBOLS, DEMO_VERSIONS, flags=flags)
    return shim, prefix


def _startup_line(tmp_path: Path, shim: Path, env: dict[str, str]) -> str:
    """The capsule: line the shim prints when it is a DT_NEEDED."""
    proc = run([_linked(tmp_path, shim)], env)
    assert proc.returncode == 127, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule: libdemo.so.1: "), proc.stderr
    return lines[0]


def _assert_failed_and_fell_back(proc: subprocess.CompletedProcess[str], line: str) -> None:
    assert proc.returncode == 0, proc
    assert proc.stderr == "", proc.stderr  # nothing printed: the caller decides
    got = parse(proc.stdout)
    assert got["error"] == line, (got["error"], line)
    assert got["error_cleared"] == "1", got
    # Nothing half set up stays: the shim and libcapsule were unloaded.
    assert got["shim_loaded"] == "0" and got["libcapsule_loaded"] == "0", got
    assert got["again_same"] == "1", got
    assert got["fallback"] == "1", got


def _relocations(lib: Path) -> list[tuple[str, str, str]]:
    """(section, type, symbol) of every dynamic relocation, in file order."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for ln in sh(["readelf", "-rW", lib]).stdout.splitlines():
        if ln.startswith("Relocation section"):
            section = ln.split("'")[1]
        elif ln[:1] in "0123456789abcdef" and len(ln.split()) >= 3:
            fields = ln.split()
            out.append((section, fields[2], fields[4] if len(fields) > 4 else ""))
    return out


@pytest.mark.parametrize("shim_flags", SHIM_FLAGS)
def test_the_check_runs_after_the_shims_data_relocations(built: Built, tmp_path: Path,
                                                         shim_flags: str) -> None:
    """The resolver's IRELATIVE is the shim's last relocation ld.so applies:
    last of .rela.plt (lazy: after the whole .rela.dyn), or of .rela.dyn
    (-z now; ld.so also defers IRELATIVE to the end of its range); libcapsule
    is called through a GLOB_DAT slot, never a PLT entry."""
    shim, _ = _missing_target_shim(built, tmp_path, SHIM_FLAGS[shim_flags])
    relocs = _relocations(shim)
    irelative = [r for r in relocs if r[1] == RELOC["IRELATIVE"]]
    assert len(irelative) == 1, relocs
    # clang ignores -fno-plt for aarch64: the calls stay PLT calls there.
    plt_calls = shim_flags == "lazy" or ARCH.name == "aarch64"
    section = RELOC["plt"] if plt_calls else RELOC["dyn"]
    assert irelative[0][0] == section, relocs
    assert [r for r in relocs if r[0] == section][-1] == irelative[0], relocs
    slots = [r[:2] for r in relocs if r[2].startswith("capsule_shim_preflight@")]
    assert slots == [(RELOC["dyn"], RELOC["GLOB_DAT"])], relocs


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("shim_flags", SHIM_FLAGS)
def test_missing_target_fails_the_dlopen(built: Built, tmp_path: Path, shim_flags: str,
                                         binding: str) -> None:
    shim, prefix = _missing_target_shim(built, tmp_path, SHIM_FLAGS[shim_flags])
    mode, env = BINDINGS[binding]
    line = _startup_line(tmp_path, shim, env)
    assert line == (f"capsule: libdemo.so.1: prefix {prefix}: libdemo.so.1 not found under "
                    "the prefix"), line
    proc = run([_probe(tmp_path), shim, mode, built.prefix], env)
    _assert_failed_and_fell_back(proc, line)
    # A later dlopen of the same shim, with a prefix that has the target, works.
    assert parse(proc.stdout)["retry_add"] == "5", proc


SECOND = """\
#include <dlfcn.h>
#include <stdio.h>
#include "demo.h"
int main(int argc, char **argv) {
    (void)argc;
    int before = demo_add(2, 3);
    void *h = dlopen(argv[1], RTLD_NOW);
    printf("before=%d\\nloaded=%d\\n", before, h != NULL);
    if (!h)
        printf("error=%s\\n", dlerror());
    void *self = dlopen("libcapsule.so.0", RTLD_LAZY | RTLD_NOLOAD);
    printf("libcapsule_loaded=%d\\nafter=%d\\n", self != NULL, demo_add(4, 5));
    return 0;
}
"""


@pytest.mark.parametrize("binding", ["lazy", "bind-now"])
def test_failing_shim_beside_a_working_capsule(built: Built, tmp_path: Path, binding: str) -> None:
    """A capsule is set up already (libcapsule initialised, its dlopen wrapper
    installed, the prefix's namespace open) when the program dlopen()s a
    second shim of the same prefix whose target that prefix lacks."""
    other = build_shim(tmp_path / "other", built.libcapsule_dir, "libother.so.1",
                       str(built.prefix), [Sym("other_function", None)], [])
    src = tmp_path / "second.c"
    src.write_text(SECOND)
    prog = tmp_path / "second"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{FIXTURES}", src, "-o", prog,
        built.demo, f"-Wl,-rpath-link,{built.real_dir}", "-ldl"])
    env = {"LD_LIBRARY_PATH": str(built.shim_dir), **BINDINGS[binding][1]}
    proc = run([prog, other], env)
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert parse(proc.stdout) == {
        "before": "5", "loaded": "0", "libcapsule_loaded": "1", "after": "9",
        "error": f"capsule: libother.so.1: prefix {built.prefix}: libother.so.1 not found "
                 "under the prefix"}, proc.stdout


def test_missing_prefix_from_the_environment(built: Built, tmp_path: Path) -> None:
    shim = built.shim_dir / "libdemo.so.1"
    env = {"CAPSULE_PREFIX": str(tmp_path / "none")}
    line = _startup_line(tmp_path, shim, env)
    assert line == f"capsule: libdemo.so.1: prefix {tmp_path / 'none'}: prefix does not exist"
    proc = run([_probe(tmp_path), shim, "now", built.prefix], env)
    _assert_failed_and_fell_back(proc, line)
    assert parse(proc.stdout)["retry_add"] == "5", proc


def test_missing_dependency_under_a_symlinked_prefix(built: Built, tmp_path: Path) -> None:
    """The prefix in the line is the canonical one, as the set-up's."""
    prefix = make_prefix(tmp_path / "prefix", [built.demo])
    (tmp_path / "link").symlink_to(prefix)
    env = {"CAPSULE_LIBDEMO_SO_1_PREFIX": str(tmp_path / "link")}
    shim = built.shim_dir / "libdemo.so.1"
    line = _startup_line(tmp_path, shim, env)
    assert line == (f"capsule: libdemo.so.1: prefix {prefix}: libdemodep.so.1 (needed by "
                    f"{prefix / MULTIARCH / 'libdemo.so.1'}) not found under the prefix"), line
    _assert_failed_and_fell_back(run([_probe(tmp_path), shim, "lazy"], env), line)


# A "newer glibc" as test_glibc_versions.py builds it: a libc.so.6 stub
# defining GLIBC_2.98 and GLIBC_2.99, which the prefix's library needs.
NEWER_GLIBC_STUB = "int newer_glibc_function(void) { return 1; }\n"
NEWER_GLIBC_MAP = ("GLIBC_2.98 { local: *; };\n"
                   "GLIBC_2.99 { global: newer_glibc_function; } GLIBC_2.98;\n")
NEWER = ("extern int newer_glibc_function(void);\n"
         "int newer(void) { return newer_glibc_function(); }\n")


@pytest.mark.parametrize("binding", ["lazy", "bind-now"])
def test_newer_glibc_fails_the_dlopen(built: Built, tmp_path: Path, binding: str) -> None:
    (tmp_path / "stub.map").write_text(NEWER_GLIBC_MAP)
    (tmp_path / "stub.c").write_text(NEWER_GLIBC_STUB)
    stub = build_lib(tmp_path / "newer-glibc", "libc.so.6", [tmp_path / "stub.c"],
                     version_script=tmp_path / "stub.map", flags=["-nostdlib"])
    (tmp_path / "newer.c").write_text(NEWER)
    newer = build_lib(tmp_path / "real", "libnewer.so.1", [tmp_path / "newer.c"],
                      flags=["-nostdlib"], libs=[stub])
    prefix = make_prefix(tmp_path / "prefix", [newer])
    shim = build_shim(tmp_path / "shim", built.libcapsule_dir, "libnewer.so.1", str(prefix),
                      [Sym("newer", None)], [])
    mode, env = BINDINGS[binding]
    proc = run([_probe(tmp_path), shim, mode], env)
    assert proc.returncode == 0 and proc.stderr == "", proc
    got = parse(proc.stdout)
    error = re.sub(r"\(glibc \d+\.\d+\)", "(glibc N)", got["error"])
    assert error == (
        f"capsule: libnewer.so.1: prefix {prefix}: the prefix's libraries need a newer glibc "
        f"than this process has (glibc N): {prefix / MULTIARCH / 'libnewer.so.1'} needs "
        "GLIBC_2.99 (libc.so.6); run the program with a glibc at least as new as the "
        "prefix's, as container runtimes do when the host's is newer"), got["error"]
    assert got["shim_loaded"] == "0" and got["libcapsule_loaded"] == "0", got
    assert got["again_same"] == "1" and got["fallback"] == "1", got


def test_other_abi_fails_the_dlopen(built: Built, tmp_path: Path) -> None:
    src = tmp_path / "libdemo.so.1.shim.c"
    text = render_shim("libdemo.so.1", str(built.prefix), DEMO_SYMBOLS)
    src.write_text(text.replace(".abi = CAPSULE_ABI_VERSION", ".abi = 99"))
    vmap = tmp_path / "shim.map"
    vmap.write_text("DEMO_1 { };\nDEMO_2 { } DEMO_1;\n")
    shim = build_lib(tmp_path / "shim", "libdemo.so.1", [src], version_script=vmap,
                     sanitize=True, flags=[f"-I{LIBCAPSULE / 'include'}"],
                     libs=[f"-L{built.libcapsule_dir}", "-lcapsule",
                           f"-Wl,-rpath,{built.libcapsule_dir}"])
    line = "capsule: libdemo.so.1: shim built for capsule ABI 99, this libcapsule has ABI 4"
    assert _startup_line(tmp_path, shim, {}) == line
    _assert_failed_and_fell_back(run([_probe(tmp_path), shim, "now"], {}), line)


def test_debug_traces_the_failed_dlopen(built: Built, tmp_path: Path) -> None:
    shim = built.shim_dir / "libdemo.so.1"
    env = {"CAPSULE_PREFIX": str(tmp_path / "none"), "CAPSULE_DEBUG": "path"}
    proc = run([_probe(tmp_path), shim, "now"], env)
    assert proc.returncode == 0, proc
    line = parse(proc.stdout)["error"]
    assert f"capsule[path]: preflight: the dlopen fails: {line}\n" in proc.stderr, proc.stderr


def test_cleared_environment_keeps_the_exit(built: Built, tmp_path: Path) -> None:
    """Without `environ` (clearenv()) a dlopen is not told from the start-up:
    the constructor reports, as before."""
    src = tmp_path / "cleared.c"
    src.write_text('#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdio.h>\n'
                   '#include <stdlib.h>\nint main(int argc, char **argv) {\n'
                   '  (void)argc;\n  clearenv();\n  void *h = dlopen(argv[1], RTLD_NOW);\n'
                   '  printf("returned=%d\\n", h != NULL);\n  return 0;\n}\n')
    prog = tmp_path / "cleared"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", src, "-o", prog, "-ldl"])
    shim, prefix = _missing_target_shim(built, tmp_path, [])
    proc = run([prog, shim], {})
    assert proc.returncode == 127, proc
    assert proc.stderr == (f"capsule: libdemo.so.1: prefix {prefix}: libdemo.so.1 not found "
                           "under the prefix\n"), proc.stderr


def test_python_ctypes_probe_gets_oserror(built: Built, tmp_path: Path) -> None:
    require_native("the Python interpreter is the machine's: it cannot load the shim")
    shim, _ = _missing_target_shim(built, tmp_path, [])
    line = _startup_line(tmp_path, shim, {})
    script = ("import ctypes, sys\ntry:\n    ctypes.CDLL(sys.argv[1])\n"
              "except OSError as e:\n    print('oserror=' + str(e))\nelse:\n"
              "    print('loaded')\nprint('fallback=' + str(ctypes.CDLL('libm.so.6').abs(-3)))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    if SANITIZE == "asan":
        # The shim is built with ASan, whose run time must come first.
        libasan = sh([*GCC, "-print-file-name=libasan.so"]).stdout.strip()
        env.update(LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0")
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    proc = subprocess.run([*program_prefix(env), python, "-c", script, str(shim)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc
    assert proc.stderr == "", proc.stderr
    assert parse(proc.stdout) == {"oserror": line, "fallback": "3"}, proc.stdout
