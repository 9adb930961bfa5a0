"""glibc 2.40+'s x86-64 PLT rewrite (GLIBC_TUNABLES=glibc.cpu.plt_rewrite=1|2):
ld.so turns the PLT entries of objects linked `-z now -z mark-plt` into
direct jumps to what their JUMP_SLOT was bound to (the shim's stubs, glibc's
dlsym), so rewriting the GOT slot alone would leave calls on the stubs and
the program's dlsym/dlvsym/dlopen outside libcapsule's wrappers. Every run
must give what the run without the tunable gives. Those runs need the glibc
matrix (CAPSULE_TEST_GLIBC, 2.40 or later) and a linker that knows -z
mark-plt (Debian 13's binutils: `python3 scripts/glibc_tree.py trixie
--binutils`); the encodings themselves are checked everywhere, on a
made-up object (fixtures/plt_driver.c)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from programs import parse, run

from build import (
    ARCH,
    CC,
    FIXTURES,
    GLIBC_TREE,
    MULTIARCH,
    REPO,
    Built,
    build_driver,
    build_lib,
    sh,
)


def _binutils_bindir() -> Path | None:
    import glibc_tree  # build.py loaded it for CAPSULE_TEST_GLIBC

    tree = glibc_tree.find_binutils("trixie", REPO / "build-glibc")
    return tree.bindir if tree else None


def _skip_reason() -> str | None:
    if ARCH.name != "x86_64":
        return f"x86_64 only (glibc's PLT rewrite is x86-64's); CAPSULE_TEST_ARCH={ARCH.name}"
    if GLIBC_TREE is None:
        return ("CAPSULE_TEST_GLIBC is not set: this glibc (Debian 12's 2.36) has no PLT "
                "rewrite (2.40+); the glibc matrix runs these")
    m = re.match(r"(\d+)\.(\d+)", GLIBC_TREE.version)
    if not m or (int(m.group(1)), int(m.group(2))) < (2, 40):
        return f"glibc {GLIBC_TREE.version} has no PLT rewrite (2.40+)"
    if _binutils_bindir() is None:
        return ("no linker for -z mark-plt: run `python3 scripts/glibc_tree.py trixie "
                "--binutils` (Debian 13's binutils; the glibc matrix fetches it)")
    return None


# The rewrite and libcapsule's handling of it are x86-64 code: no other
# architecture has it (glibc's sysdeps/x86_64 alone implements the tunable).
pytestmark = pytest.mark.skipif(
    ARCH.name != "x86_64",
    reason=f"x86_64 only (glibc's PLT rewrite is x86-64's); CAPSULE_TEST_ARCH={ARCH.name}")
SKIP = _skip_reason()
needs_rewrite = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

MARK_PLT = ["-Wl,-z,now", "-Wl,-z,mark-plt", "-Wl,-z,relro"]
# Program flags, and flags for every object: -z ibtplt gives the IBT layout
# (ENDBR64 first; the branch ld.so rewrites is in .plt.sec).
KINDS: dict[str, tuple[list[str], list[str]]] = {
    "pie": (["-fPIE", "-pie"], []),
    "nopie": (["-fno-pie", "-no-pie"], []),
    "pie-ibtplt": (["-fPIE", "-pie"], ["-Wl,-z,ibtplt"]),
}
DT_X86_64_PLTENT = 0x70000003  # (pyelftools names DT_X86_64_PLT DT_LOPROC)
# Keys that say how an entry jumps, not where: they differ with the tunable.
FORM = re.compile(r"^plt\..*\.form$")


def _build(b: Built, out: Path, kind: str) -> tuple[Path, Path]:
    bindir = _binutils_bindir()
    assert bindir is not None
    prog_flags, all_flags = KINDS[kind]
    link = [f"-B{bindir}/", *MARK_PLT, *all_flags]
    user = build_lib(out, "libpltuser.so", [FIXTURES / "plt_user.c"], flags=link, libs=[b.demo])
    plug = build_lib(out, "libpltplug.so", [FIXTURES / "plt_user.c"], flags=link,
                     libs=[b.demo])
    prog = out / "plt_prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", *prog_flags, *link,
        f"-I{FIXTURES}", FIXTURES / "plt_prog.c", "-o", prog, user, b.demo,
        f"-Wl,-rpath,{out}", f"-Wl,-rpath-link,{b.real_dir}", "-ldl"])
    for obj in (prog, user, plug):  # the linker did mark them
        with obj.open("rb") as f:
            dynamic = ELFFile(f).get_section_by_name(".dynamic")
            tags = [t.entry.d_tag for t in dynamic.iter_tags()]
        assert DT_X86_64_PLTENT in tags, (obj, tags)
    return prog, plug


@pytest.fixture(scope="module", params=sorted(KINDS))
def programs(request: pytest.FixtureRequest, built: Built) -> tuple[Path, Path]:
    return _build(built, built.root / f"plt-{request.param}", request.param)


def _run(b: Built, prog: Path, plug: Path, tunable: str | None) -> dict[str, str]:
    env = {"LD_LIBRARY_PATH": str(b.shim_dir), "CAPSULE_DEBUG": "reloc"}
    if tunable is not None:
        env["GLIBC_TUNABLES"] = f"glibc.cpu.plt_rewrite={tunable}"
    proc = run([prog, plug], env)
    assert proc.returncode == 0, proc
    return parse(proc.stdout)


@needs_rewrite
@pytest.mark.parametrize("tunable", ["1", "2"])
def test_same_results_as_without_the_rewrite(built: Built, programs: tuple[Path, Path],
                                             tunable: str) -> None:
    prog, plug = programs
    plain = _run(built, prog, plug, None)
    real = str(built.prefix / MULTIARCH / "libdemo.so.1")
    wrappers = str(built.libcapsule_dir / "libcapsule.so.0")
    # Without the tunable: calls and the program's dl* go where the GOT says.
    assert plain["add"] == "5" and plain["user_add"] == "9" and plain["plug_add"] == "2"
    assert plain["dlsym_add_object"] == real, plain
    assert plain["dlsym_counter_is_real"] == "1", plain
    assert plain["dlvsym_add_old"] == "1005", plain
    assert plain["user_dlsym_object"] == real and plain["plug_dlsym_object"] == real, plain
    for label in ("main", "user", "plug"):
        assert plain[f"plt.{label}.demo_add.object"] == real, (label, plain)
        assert plain[f"plt.{label}.dlsym.object"] == wrappers, (label, plain)
    assert plain["plt.main.dlvsym.object"] == wrappers, plain
    assert plain["plt.main.dlopen.object"] == wrappers, plain
    assert plain["plt.main.dlmopen.object"] == wrappers, plain
    assert plain["dlmopen_same"] == "1", plain

    got = _run(built, prog, plug, tunable)
    assert {k: v for k, v in got.items() if not FORM.match(k)} == \
        {k: v for k, v in plain.items() if not FORM.match(k)}
    # ld.so did rewrite the PLT (else this test proves nothing): a PIE's
    # entries, all within a jmp rel32's reach, are direct jumps, now to the
    # real definitions and the wrappers. A non-PIE program's PLT lies below
    # 4 GiB, usually out of reach of the libraries (not under valgrind,
    # which maps them low): ld.so then leaves its entries (no APX here for
    # jmpabs); the libraries' it rewrites.
    forms = {k: v for k, v in got.items() if FORM.match(k)}
    for key, form in forms.items():
        far = prog.parent.name == "plt-nopie" and ".main." in key
        assert form in (("got", "direct") if far else ("direct",)), (key, forms)


def test_encodings_on_a_made_up_object(tmp_path: Path) -> None:
    """Every way an entry can be found: a jmp rel32 to the new definition
    when in reach; out of reach, jmpabs where ld.so wrote one (APX), else
    back through the slot, else left; the branch after ENDBR64 when ld.so
    wrote it there (IBT); entries jumping through their slot, and bytes not
    understood, untouched; another thread running code in the page while
    entries change never faults; the code page read-only again."""
    driver = tmp_path / "plt_driver"
    # The rewriting itself is libcapsule/arch/x86_64/pltrewrite.c, which
    # build_driver links from the arch directory's archive.
    build_driver(driver, FIXTURES / "plt_driver.c", ["dynobj.c", "debug.c", "error.c"])
    proc = subprocess.run([str(driver)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, proc
    got = parse(proc.stdout)
    cases = ("rel32", "far_through_slot", "far_jmpabs", "jmpabs_near", "ibt", "untouched",
             "unknown", "out_of_reach", "threaded")
    assert {c: got.get(c) for c in cases} == dict.fromkeys(cases, "ok"), proc.stdout
    assert got["code_page"] == "r-xp", got
    assert "not understood, left" in proc.stderr
    assert "cannot reach" in proc.stderr and "left on its old target" in proc.stderr
