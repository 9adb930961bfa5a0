"""The program's own dlopen behaves exactly as without capsules.

libcapsule points every dlopen, dlmopen, dlsym and dlvsym slot of the
default namespace at its own entries. glibc finds the caller of those
functions from their return address: the caller's namespace, its $ORIGIN
(in the name and in its paths), the RPATH of the caller and of the objects
that loaded it and of the executable, its RUNPATH, and RTLD_NEXT all depend
on it. A differential test: the same matrix of calls, made from the
program and from libraries it loaded, once with the real libdemo.so.1 and
once with its shim (libcapsule in the process, every slot redirected), must
give the same results and load the same files."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from programs import parse, run

from boundary import Boundary
from build import ARCH, CC, FIXTURES, GCC, SANITIZE, Built, build_lib, program_prefix, sh

VARIANTS = {
    "rpath": ["-Wl,--disable-new-dtags,-rpath,$ORIGIN/program-libs"],
    "runpath": ["-Wl,--enable-new-dtags,-rpath,$ORIGIN/program-libs"],
    "none": [],
}


@dataclass
class Exact:
    root: Path
    programs: dict[str, Path]
    ldlp: Path       # in LD_LIBRARY_PATH at start-up
    decoy: Path      # put into LD_LIBRARY_PATH by the program (setenv)
    lib_token: str                 # $LIB
    platform_token: str | None     # $PLATFORM (None: not expanded)

    def path(self, rel: str) -> str:
        return str(self.root / rel)


def _expansions(root: Path) -> tuple[str, str | None]:
    """$LIB and $PLATFORM as ld.so expands them in the programs' runs
    ($PLATFORM None: not expanded, as under valgrind, which hides
    AT_PLATFORM)."""
    src = root / "probe.c"
    src.write_text('#include <dlfcn.h>\n'
                   'int main(void) { return dlopen("libexact-probe-none.so", RTLD_NOW) != 0; }\n')
    probe = root / "probe"
    sh([*GCC, src, "-o", probe, "-Wl,--disable-new-dtags,-rpath,/@L/$LIB:/@P/$PLATFORM"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_DEBUG"] = "libs"
    proc = subprocess.run([*program_prefix(env), str(probe)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    line = next(line for line in proc.stderr.splitlines() if "RPATH from file" in line)
    entries = line.split("search path=", 1)[1].split()[0].split(":")
    lib = min((e for e in entries if e.startswith("/@L/")), key=len)[len("/@L/"):]
    platform = [e for e in entries if e.startswith("/@P/")]
    return lib, min(platform, key=len)[len("/@P/"):] if platform else None


@pytest.fixture(scope="module")
def exact(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Exact:
    root = tmp_path_factory.mktemp("exact")
    src = [FIXTURES / "exact_lib.c"]
    lib_token, platform_token = _expansions(root)

    def lib(rel: str, *flags: str | Path, next_: bool = False) -> Path:
        where = root / rel
        return build_lib(where.parent, where.name, src,
                         flags=["-DEXACT_NEXT"] if next_ else [], libs=list(flags))

    ldlp = root / "ldlp"
    n1 = lib("ldlp/libN1.so", next_=True)
    n2 = lib("ldlp/libN2.so", next_=True)
    lib("ldlp/libL0.so")
    lib("bin/program-libs/libP.so")
    lib("bin/program-libs/libE.so")             # only the executable's RPATH finds it
    lib("bin/tok/libT.so")
    lib(f"bin/tok/{lib_token}/libTlib.so")
    lib(f"bin/tok/{platform_token or ARCH.platform}/libTplat.so")
    n3 = lib("chain/private-libs/libN3.so", next_=True)
    # (Paths with a $ORIGIN are at least 17 bytes long: ld.so's strncmp
    # reads 8 bytes at offset 9 of a DT_RPATH copy, which memcheck reports
    # for shorter ones, with or without capsules.)
    # A (RPATH $ORIGIN/private-libs) needs B from there; B (no paths) dlopens C,
    # which only the RPATH of its loader A finds (glibc searches the RPATH
    # of the objects whose DT_NEEDED loaded the caller, then the
    # executable's).
    b = lib("chain/private-libs/libB.so")
    lib("chain/libA.so", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/private-libs",
        "-Wl,--no-as-needed", b, n3)
    lib("chain/private-libs/libA2.so")
    lib("chain/private-libs/libC.so")
    lib("chain/private-libs/libC2.so")
    lib("chain/libRun.so", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/runpath-libs")
    lib("chain/runpath-libs/libR2.so")
    decoy = root / "decoy"
    lib("decoy/libR2.so")               # before RUNPATH, if LD_LIBRARY_PATH were read late
    lib("decoy/libL.so")
    programs = {}
    for variant, flags in VARIANTS.items():
        prog = root / "bin" / f"prog-{variant}"
        sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", f"-I{FIXTURES}",
            FIXTURES / "exact_prog.c", "-o", prog, *flags, "-Wl,--no-as-needed", built.demo, n1,
            n2, f"-Wl,-rpath-link,{built.real_dir}", "-ldl"])
        programs[variant] = prog
    return Exact(root, programs, ldlp, decoy, lib_token, platform_token)


def _steps(e: Exact) -> list[str]:
    a, b = e.path("chain/libA.so"), e.path("chain/private-libs/libB.so")
    run_ = e.path("chain/libRun.so")
    return [
        "open:libP.so",                            # 1: the program's RPATH / RUNPATH
        "open:$ORIGIN/tok/libT.so",                # 2: tokens in the name
        "open:$ORIGIN/tok/$LIB/libTlib.so",        # 3
        "open:$ORIGIN/tok/$PLATFORM/libTplat.so",  # 4
        "open:libL0.so",                           # 5: LD_LIBRARY_PATH
        f"open:{a}",                               # 6
        f"@{a}:open:libA2.so",                     # 7: A's own RPATH
        f"@{b}:open:libC.so",                      # 8: the loader's (A's) RPATH
        f"@{b}:open:libE.so",                      # 9: the executable's RPATH
        f"@{a}:open:$ORIGIN/private-libs/libC2.so",  # 10: a library's $ORIGIN
        f"@{a}:mopen:libB.so",                     # 11: dlmopen, A's RPATH
        "mopen:$ORIGIN/tok/libT.so",               # 12: dlmopen, the program's $ORIGIN
        "mopen:libP.so",                           # 13: dlmopen, the program's paths
        "next:exact_next",                         # 14: RTLD_NEXT from the program
        f"@{a}:next:exact_next",                   # 15: from a library dlopen()ed
        f"@{b}:next:exact_next",                   # 16
        f"open:{run_}",                            # 17
        f"setenv:{e.decoy}",                       # 18: read at start-up only
        "open:libL.so",                            # 19
        f"@{run_}:open:libR2.so",                  # 20: RUNPATH after LD_LIBRARY_PATH
        f"@{a}:open:libL.so",                      # 21
        "open:libE.so",                            # 22: libE is loaded: by soname
    ]


def _run(built: Built, e: Exact, variant: str, shim: bool) -> dict[str, str]:
    demo_dir = built.shim_dir if shim else built.real_dir
    env = {"LD_LIBRARY_PATH": f"{demo_dir}:{e.ldlp}", "EXACT_WORLD": str(e.root)}
    proc = run([e.programs[variant], *_steps(e)], env)
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    got["loaded"] = ",".join(line.split("=", 1)[1] for line in proc.stdout.splitlines()
                             if line.startswith("loaded="))
    assert got["demo"] == "5"
    return got


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dlopen_matrix_same_with_a_shim(built: Built, exact: Exact, variant: str) -> None:
    plain = _run(built, exact, variant, shim=False)
    with_shim = _run(built, exact, variant, shim=True)
    differ = {key: (plain.get(key), with_shim.get(key))
              for key in sorted(plain.keys() | with_shim.keys(), key=lambda k: (len(k), k))
              if plain.get(key) != with_shim.get(key)}
    assert not differ, "\n".join(f"{k}: {v[0]!r} without, {v[1]!r} with the shim"
                                  for k, v in differ.items())
    if SANITIZE == "asan":
        return  # ASan's dlopen interceptor is the caller glibc sees, in both runs
    # The matrix means something: what glibc gives without capsules.
    p = exact.path
    own = variant != "none"
    missing = "NULL {}: cannot open shared object file: No such file or directory".format
    assert plain["1"] == (p("bin/program-libs/libP.so") if own else missing("libP.so"))
    assert plain["2"] == p("bin/tok/libT.so")
    assert plain["3"] == p(f"bin/tok/{exact.lib_token}/libTlib.so")
    if exact.platform_token:
        assert plain["4"] == p(f"bin/tok/{exact.platform_token}/libTplat.so")
    assert plain["7"] == p("chain/private-libs/libA2.so")
    assert plain["8"] == p("chain/private-libs/libC.so")
    assert plain["9"] == (p("bin/program-libs/libE.so") if variant == "rpath" else
                          missing("libE.so"))
    assert plain["10"] == p("chain/private-libs/libC2.so")
    assert plain["11"] == "new " + p("chain/private-libs/libB.so")
    assert plain["12"] == "new " + p("bin/tok/libT.so")
    assert plain["13"] == ("new " + p("bin/program-libs/libP.so") if own else
                           missing("libP.so"))
    assert plain["14"] == p("ldlp/libN1.so")
    assert plain["19"] == missing("libL.so")
    assert plain["20"] == p("chain/runpath-libs/libR2.so")
    assert plain["21"] == missing("libL.so")


def test_pass_over_a_dlopen_runs_at_the_next_dl_call(boundary: Boundary,
                                                     tmp_path: Path) -> None:
    """The relocation pass over what the program's dlopen loaded runs at
    the next outside dl* call, not on return (glibc returns straight to the
    caller). In between, the new object's calls into the shim go through
    its stubs (right result), but its own slot for a variable the shim
    exports still names the shim's placeholder: the window README.md's
    Limits describe. A change that closes it should change `before`."""
    lib = build_lib(tmp_path, "libwindow.so", [FIXTURES / "window_lib.c"],
                    libs=[boundary.real_dir / "libbound.so.1"])
    prog = tmp_path / "window_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", f"-I{FIXTURES}", "-rdynamic",
        FIXTURES / "window_prog.c", "-o", prog, boundary.real_dir / "libbound.so.1",
        f"-Wl,-rpath-link,{boundary.real_dir}", "-ldl"])
    # LeakSanitizer misses what only a capsule library's global holds (see
    # test_boundary.run): the boundary world's leaks are memcheck's job.
    no_lsan = {"ASAN_OPTIONS": "detect_leaks=0"} if SANITIZE == "asan" else {}
    proc = run([prog, lib], boundary.env(**no_lsan))
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    assert got["add"] == "3"
    assert got["before"] == "41000"  # bound_get_counter() right, bound_counter the placeholder's
    assert got["after"] == "41041"   # the one variable once a dlsym ran the pass
