"""The capsule boundary (issue 3): dlopen and dlsym on both sides, exported
data, one heap, threads. Real programs against a real target under a prefix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from boundary import MODES, Boundary
from build import CC, MULTIARCH, SANITIZE, Built, glibc_prefix, valgrind_unusable

# The boundary tests run their own memcheck variants below; under ASan
# (CAPSULE_TEST_SANITIZE=asan) those two tools cannot be combined, so the
# memcheck variants are skipped there (and for i386: no i386 libc6-dbg).
needs_memcheck = pytest.mark.skipif(valgrind_unusable() is not None,
                                    reason=valgrind_unusable() or "")
MEMCHECK = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "-q"]


def run(cmd: list[str | os.PathLike[str]], env: dict[str, str],
        timeout: float = 60, memcheck: bool = False) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    if SANITIZE == "asan":
        # LeakSanitizer finds live pointers in the globals of the objects
        # dl_iterate_phdr lists, and glibc lists only the caller's namespace:
        # a block only a capsule library's global holds (fixtures/bound.c's
        # constructor string) looks leaked. Leaks are memcheck's job here.
        full["ASAN_OPTIONS"] = "detect_leaks=0"
    full.update(env)
    tool = MEMCHECK if memcheck else []
    return subprocess.run([*tool, *glibc_prefix(full), *map(str, cmd)], env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)


def values(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 0, proc
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


# ---- dlopen inside the capsule ----

def test_inside_dlopen_resolves_under_the_prefix(boundary: Boundary) -> None:
    got = values(run([boundary.programs["inside"],
                      "libplugin.so", "now",
                      f"/{MULTIARCH}/libplugdeps.so", "lazy",
                      "/opt/capsule-test/libplugin2.so", "now",
                      str(boundary.prefix / "opt/capsule-test/libplugin2.so"), "now",
                      "libbound.so.1", "now",
                      "libnope.so.3", "now",
                      "libinrunpath.so", "now"], boundary.env()))
    assert got["open libplugin.so"] == f"77 {boundary.in_prefix('libplugin.so')}"
    assert got[f"open /{MULTIARCH}/libplugdeps.so"] == \
        f"100 {boundary.in_prefix('libplugdeps.so')}"
    plugin2 = str(boundary.prefix / "opt/capsule-test/libplugin2.so")
    assert got["open /opt/capsule-test/libplugin2.so"] == f"78 {plugin2}"
    assert got[f"open {plugin2}"] == f"78 {plugin2}"
    # A shimmed soname opened from inside is the real library, never the shim.
    assert got["open libbound.so.1"] == f"SELF {boundary.in_prefix('libbound.so.1')}"
    assert got["self_bound_add"] == boundary.in_prefix("libbound.so.1")
    assert got["open libnope.so.3"].startswith(f"ERR {boundary.prefix}/libnope.so.3 ")
    assert "not found under this prefix" in got["open libnope.so.3"]
    assert got["dep"] == "42"
    # The caller's DT_RUNPATH ($ORIGIN-relative) is searched inside the prefix.
    assert got["open libinrunpath.so"] == \
        f"79 {boundary.prefix / 'opt/capsule-rp/libinrunpath.so'}"


def test_inside_rtld_global_is_searched_from_inside(boundary: Boundary) -> None:
    got = values(run([boundary.programs["inside"], "libglobal.so", "global"], boundary.env()))
    assert got["open libglobal.so"] == f"5 {boundary.in_prefix('libglobal.so')}"
    assert got["global_id"] == "55"
    assert got["default_bound_add"] == "41"
    # dlopen(NULL) inside: the capsule's scope, whose allocator is the program's.
    assert got["self_malloc"] not in ("NULL", boundary.in_prefix("libbound.so.1"))


def test_inside_rtld_global_object_unloads_at_its_last_dlclose(boundary: Boundary) -> None:
    """As without capsules: being searchable from inside does not keep an
    RTLD_GLOBAL object loaded (Mesa unloads its DRI driver this way)."""
    got = values(run([boundary.programs["inside"], "libglobal.so", "globalcycle",
                      "libglobal.so", "global"], boundary.env()))
    assert got["cycle libglobal.so"] == "5 loaded=0 found=0"
    # Opened again, it is found again.
    assert got["global_id"] == "55"


def test_inside_without_rtld_global_stays_private(boundary: Boundary) -> None:
    got = values(run([boundary.programs["inside"], "libglobal.so", "now"], boundary.env()))
    assert got["open libglobal.so"].startswith("5 ")
    assert got["global_id"] == "-1"


# ---- dlopen and dlsym outside ----

@pytest.mark.parametrize("mode", MODES)
def test_program_dlopens_the_shim(boundary: Boundary, mode: str) -> None:
    """The first capsule of the process starts inside the program's dlopen;
    a library loaded later, built in each relocation mode, is redirected
    (its calls and its own dlsym), also after dlclose and a new dlopen."""
    user = boundary.user_dir / mode / "libbuser.so"
    proc = run([boundary.programs["dlshim"], user], boundary.env(CAPSULE_DEBUG="reloc"))
    got = values(proc)
    real = boundary.in_prefix("libbound.so.1")
    for mode in ("local", "global"):
        assert got[f"{mode}_handle_object"] == real
        assert got[f"{mode}_counter_object"] == real
        # The capsule's private dependency is never reachable from outside.
        assert got[f"{mode}_private_handle"] == "NULL"
        assert got[f"{mode}_private_default"] == "NULL"
        assert got[f"{mode}_bdep_value"] == str(boundary.own_dir / "libbdep.so.1")
    assert got["local_default"] == "NULL"   # as without capsules: RTLD_LOCAL
    assert got["global_default"] == "same"  # the real definition
    # A library dlopen()ed afterwards is redirected, also when loaded again.
    assert got["buser0_add_object"] == real
    assert got["buser9_add_object"] == real
    assert got["own_bdep"] == "-1"
    assert f"capsule[reloc]: {user}: " in proc.stderr


@pytest.mark.parametrize("tag", ["runpath", "rpath"])
def test_outside_dlopen_searches_the_callers_paths(boundary: Boundary, tag: str) -> None:
    got = values(run([boundary.programs[tag], "libbinplugin.so"], boundary.env()))
    assert got["add"] == "3"
    if SANITIZE == "asan" and tag == "runpath":
        # ASan's dlopen interceptor calls glibc's: glibc sees libasan as the
        # caller, without capsules too, and a RUNPATH serves only its own
        # object's lookups (test_dlopen_exact.py compares both).
        assert got["found"] == "libbinplugin.so: cannot open shared object file: " \
                               "No such file or directory"
        return
    assert got["found"] == str(boundary.programs[tag].parent / "plugins/libbinplugin.so")


def test_dlvsym_of_a_hidden_version_through_the_shim(built: Built, boundary: Boundary,
                                                     tmp_path: Path) -> None:
    """dlvsym on the demo shim's handle reaches the real name@VERSION."""
    src = tmp_path / "dlvsym.c"
    src.write_text(
        '#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdio.h>\n'
        'int main(void) {\n'
        '  void *h = dlopen("libdemo.so.1", RTLD_NOW);\n'
        '  int (*v1)(int, int) = (int (*)(int, int))dlvsym(h, "demo_add", "DEMO_1");\n'
        '  int (*v2)(int, int) = (int (*)(int, int))dlvsym(RTLD_DEFAULT, "demo_add", "DEMO_2");\n'
        '  int (*d)(int, int) = (int (*)(int, int))dlsym(h, "demo_add");\n'
        '  Dl_info i; dladdr((void *)v1, &i);\n'
        '  printf("v1=%d\\nv2=%s\\nd=%d\\nobject=%s\\n", v1 ? v1(2, 3) : -1,\n'
        '         v2 ? "found" : "NULL", d ? d(2, 3) : -1, i.dli_fname);\n'
        '  return 0;\n}\n')
    prog = tmp_path / "dlvsym"
    subprocess.run([*CC, src, "-o", prog, "-ldl"], check=True)
    got = values(run([prog], {"LD_LIBRARY_PATH": str(built.shim_dir)}))
    assert got["v1"] == "1005" and got["d"] == "5"
    assert got["v2"] == "NULL"  # the shim was opened RTLD_LOCAL: as without capsules
    assert got["object"].startswith(str(built.prefix))


# ---- exported data ----

@pytest.mark.parametrize("kind", ["nopie", "pie", "pie-got"])
def test_exported_data_is_one_variable(boundary: Boundary, kind: str) -> None:
    got = values(run([boundary.programs[f"data-{kind}"]], boundary.env()))
    assert got["initial"] == "41"    # the real library's value
    assert got["lib_sees"] == "100"  # the program's write
    assert got["prog_sees"] == "7"   # the library's write
    assert got["plugin_sees"] == f"1234 {boundary.in_prefix('libcounter.so')}"
    assert got["same"] == "1" and got["dlsym_same"] == "1" and got["next_counter_same"] == "1"
    assert got["next_add"] == boundary.in_prefix("libbound.so.1")


# ---- one heap ----

def test_heap_both_ways(boundary: Boundary) -> None:
    proc = run([boundary.programs["heap"]], boundary.env())
    assert proc.returncode == 0, proc
    assert proc.stdout.count("ok ") == 13, proc.stdout
    assert "ctor=made by a capsule constructor" in proc.stdout


@needs_memcheck
def test_heap_both_ways_under_memcheck(boundary: Boundary) -> None:
    # memcheck aborts on pvalloc by design: every other allocator is checked.
    proc = run([boundary.programs["heap"], "skip", "pvalloc"], boundary.env(), memcheck=True,
               timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok ") == 12, proc.stdout
    assert "Invalid free" not in proc.stderr and "definitely lost" not in proc.stderr


def test_heap_stress_from_four_threads(boundary: Boundary) -> None:
    proc = run([boundary.programs["heap"], "stress", "1000000"], boundary.env(), timeout=120)
    assert proc.returncode == 0 and "stress done" in proc.stdout, proc


# ---- threads ----

def test_threads_dlopen_dlsym_dlclose_while_calling(boundary: Boundary) -> None:
    for i in range(100):
        proc = run([boundary.programs["threads"], "10"], boundary.env(), timeout=30)
        assert proc.returncode == 0 and "failures=0" in proc.stdout, (i, proc)


@needs_memcheck
@pytest.mark.parametrize("which", ["inside", "dlshim"])
def test_wrappers_under_memcheck(boundary: Boundary, which: str) -> None:
    args = {"inside": ["libplugin.so", "now", "libglobal.so", "global", "libnope.so.3", "now"],
            "dlshim": [str(boundary.user_dir / "fno-plt" / "libbuser.so")]}[which]
    proc = run([boundary.programs[which], *args], boundary.env(), timeout=120, memcheck=True)
    assert proc.returncode == 0, proc.stderr
