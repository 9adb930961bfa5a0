"""One libc in the process (issue 9): the capsule runs on the program's glibc.

libone.so.1 (fixtures/one.c) lives under a prefix with its own C++ runtime
(libstdc++, libgcc_s: the host's, private to the capsule) and a C++
dependency whose static object reports its destruction. Each test is a
symptom the second libc of every capsule namespace used to cause: a ctype
crash in threads the program made, output lost on pipes, exit handlers and
static destructors that never ran, two environments, two errnos, two
stdouts, fork handlers, the program's single-threaded flag, glibc services
(NSS, iconv, libresolv) inside, and interposed allocators."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import (
    CC,
    FIXTURES,
    SANITIZE,
    Built,
    Sym,
    build_lib,
    build_shim,
    make_prefix,
    program_prefix,
    sh,
)
from testarch import ARCH, EMULATED, GXX, system_library

FUNCTIONS = [
    "one_lower", "one_threads", "one_print", "one_atexit", "one_getenv", "one_locale",
    "one_errno", "one_stdout", "one_environ", "one_fopen", "one_fputs", "one_fclose",
    "one_atfork", "one_atfork_counts", "one_add", "one_fork", "one_glibc_services",
    "one_malloc", "one_free", "one_realloc", "one_malloc_address", "one_plugin",
]
# This machine's libraries of the architecture under test (testarch).
ALLOCATORS = {
    "jemalloc": "libjemalloc.so.2",
    "tcmalloc": "libtcmalloc_minimal.so.4",
    "mimalloc": "libmimalloc.so.2",
}


@dataclass
class One:
    prefix: Path
    shim_dir: Path
    program: Path
    own_malloc: Path
    lib: Path

    def run(self, *args: str, env: dict[str, str] | None = None,
            stdout: int | None = None) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("CAPSULE_", "LD_"))}
        full["LD_LIBRARY_PATH"] = str(self.shim_dir)
        if SANITIZE == "asan":
            full["ASAN_OPTIONS"] = "detect_leaks=0"  # leaks are memcheck's job (test_boundary)
        full.update(env or {})
        return subprocess.run([*program_prefix(full), *map(str, args)], env=full, text=True,
                              stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60, check=False)


def values(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 0, proc
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        for field in line.split(" "):
            if "=" in field:
                key, value = field.split("=", 1)
                out[key] = value
    return out


def _cxx_lib(out: Path, soname: str, *defines: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    target = out / soname
    sh([*GXX, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC",
        *[f"-D{d}" for d in defines], FIXTURES / "onexx.cc", "-o", target,
        f"-Wl,-soname,{soname}"])
    return target


@pytest.fixture(scope="module")
def one(built: Built, tmp_path_factory: pytest.TempPathFactory) -> One:
    root = tmp_path_factory.mktemp("onelibc")
    real = root / "real"
    onexx = _cxx_lib(real, "libonexx.so.1")
    plugin = _cxx_lib(real, "libonexxplug.so", "ONEXX_PLUGIN")
    # Packed relative relocations: it needs libc's GLIBC_ABI_DT_RELR, a
    # version no symbol has, which the placeholder must define all the same.
    lib = build_lib(real, "libone.so.1", [FIXTURES / "one.c"],
                    flags=["-std=gnu11", "-Wl,-z,pack-relative-relocs"],
                    libs=[onexx, "-ldl", "-lpthread"])
    # The host's C++ runtime comes with the prefix: private to the capsule.
    runtime = [system_library("libstdc++.so.6"), system_library("libgcc_s.so.1")]
    prefix = make_prefix(root / "prefix", [lib, onexx, plugin, *runtime])
    shim_dir = root / "shim"
    build_shim(shim_dir, built.libcapsule_dir, "libone.so.1", str(prefix),
               [Sym(n, None) for n in FUNCTIONS], [])
    programs = {}
    for name, flags in (("onelibc_prog", []), ("onelibc_own_malloc", ["-DOWN_MALLOC"])):
        programs[name] = root / name
        sh([*CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", "-O1", *flags,
            f"-I{FIXTURES}", FIXTURES / "onelibc_prog.c", "-o", programs[name], lib,
            f"-Wl,-rpath-link,{real}", "-ldl", "-lpthread"])
    return One(prefix, shim_dir, programs["onelibc_prog"], programs["onelibc_own_malloc"],
               lib)


def test_ctype_in_a_thread_the_program_created(one: One) -> None:
    """isalpha/tolower/strcasecmp inside, called from a pthread_create()d
    thread: a second libc never set up its ctype tables for that thread."""
    assert values(one.run(one.program, "ctype-thread"))["ctype"] == "10"


def test_threads_made_inside_are_the_programs(one: One) -> None:
    got = values(one.run(one.program, "threads"))
    assert got["threads"] == "40"
    # The program's libc created them: it knows the process is multi-threaded
    # (its malloc then takes its locks; libstdc++ its atomics).
    assert got["single_threaded"] == "0"
    # They ended cleanly: their allocator caches went back (a thread the
    # second libc made left its share of the program's tcache behind).
    if not SANITIZE:
        assert int(got["leftover"]) < 16384, got  # the caches held about 100 KiB


@pytest.mark.parametrize("sink", ["pipe", "file"])
def test_output_from_inside_shares_the_programs_stdout(one: One, sink: str,
                                                       tmp_path: Path) -> None:
    """Not lost when stdout is a pipe or a file, and in program order."""
    if sink == "pipe":
        out = one.run(one.program, "print").stdout
    else:
        with (tmp_path / "out").open("w") as f:
            assert one.run(one.program, "print", stdout=f.fileno()).returncode == 0
        out = (tmp_path / "out").read_text()
    assert out == "A\nB\nC\n"


def test_exit_handlers_and_static_destructors_inside_run_at_exit(one: One,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = one.run(one.program, f"atexit:{log}", "plugin",
                   env={"ONE_DTOR_FILE": str(log)})
    assert values(proc)["plugin"] == "11"
    # The plugin's at its dlclose, then at exit the capsule's atexit handler
    # and its library's static object (registered first, destroyed last).
    assert log.read_text().splitlines() == ["plugin-dtor", "atexit", "exit-dtor"]


def test_one_environment_locale_errno_stdout(one: One) -> None:
    got = values(one.run(one.program, "env"))
    assert got["env"] == "set-by-program"
    assert got["locale"] == got["program"] == "C.UTF-8"
    assert got["errno_same"] == got["stdout_same"] == got["environ_same"] == "1"


def test_a_file_opened_on_one_side_is_written_on_the_other(one: One, tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert values(one.run(one.program, f"file:{path}"))["fclose"] == "0"
    assert path.read_text() == "the program writes to the capsule's FILE\n"


def test_atfork_handlers_registered_inside_run_on_the_programs_fork(one: One) -> None:
    got = values(one.run(one.program, "atfork"))
    assert got["atfork_child"] == "101"   # prepare, then the child handler
    assert got["atfork_parent"] == "110"  # prepare, then the parent handler


def test_fork_inside_the_capsule_and_call_in_the_child(one: One) -> None:
    assert values(one.run(one.program, "fork"))["fork"] == "46"


def test_glibc_services_inside(one: One) -> None:
    """NSS (getpwuid, getaddrinfo), iconv and dlopen("libresolv.so.2")
    inside: the program's glibc serves them; libresolv is a placeholder of
    the program's copy, not a second one."""
    proc = one.run(one.program, "services", env={"CAPSULE_DEBUG": "ns"})
    got = values(proc)
    # The cross libc an emulated architecture runs on (Debian's
    # libc6-arm64-cross) ships no gconv modules: iconv_open fails there,
    # with or without capsules.
    iconv = "" if EMULATED else "café"
    assert (got["pw"], got["gai"], got["iconv"], got["resolv"]) == ("root", "1", iconv, "aGk=")
    assert got["alive"] == "9"
    assert "placeholder glibc: libresolv.so.2" in proc.stderr
    capsule = [line for line in proc.stderr.splitlines()
               if line.startswith("capsule[ns]: map at exit: 1 ")]
    assert capsule and not [line for line in capsule if "/libc.so.6" in line or
                            "/libresolv.so.2" in line or "/libm.so.6" in line], capsule


def test_no_second_glibc_is_loaded(one: One) -> None:
    proc = one.run(one.program, "threads", env={"CAPSULE_DEBUG": "ns"})
    mapped = [line for line in proc.stderr.splitlines() if "(glibc: " in line]
    assert any("(glibc: libc.so.6)" in line for line in mapped), proc.stderr
    assert values(proc)["threads"] == "40"


def test_every_version_glibc_defines_is_there(one: One) -> None:
    """libone.so.1 needs libc.so.6's GLIBC_ABI_DT_RELR, which no symbol
    carries: ld.so checks it against the placeholder's version definitions."""
    needs = sh(["readelf", "-V", one.lib]).stdout
    if ARCH.name == "aarch64":
        # binutils 2.40's aarch64 ld packs no relative relocations (its
        # -z pack-relative-relocs is x86's): nothing needs the version.
        assert "GLIBC_ABI_DT_RELR" not in needs
    else:
        assert "GLIBC_ABI_DT_RELR" in needs
    assert values(one.run(one.program, "ctype-thread"))["ctype"] == "10"


def test_libc_start_up_is_not_run_again(one: One) -> None:
    """ld.so calls __libc_early_init for a namespace's libc: the program's
    would mark its libc as not the initial one (sbrk then fails)."""
    assert values(one.run(one.program, "sbrk", "threads"))["sbrk"] == "1"


def test_memory_crosses_both_ways(one: One) -> None:
    got = values(one.run(one.program, "heap"))
    assert got["heap"] == "1" and got["malloc_same"] == "1"
    # The program's allocator: libc's, or under ASan the ASan runtime's.
    want = "libasan.so" if SANITIZE == "asan" else "libc.so.6"
    assert os.path.basename(got["malloc_in"]).startswith(want), got


def test_the_executables_own_allocator_serves_the_capsule(one: One) -> None:
    if SANITIZE:
        pytest.skip(f"{SANITIZE} replaces the allocator, the executable's own included")
    got = values(one.run(one.own_malloc, "heap", "threads"))
    assert got["heap"] == "1" and got["malloc_same"] == "1"
    assert got["own_malloc_calls"] == "1" and int(got["own_free_calls"]) >= 1
    assert got["malloc_in"] == str(one.own_malloc)


@pytest.mark.parametrize("allocator", sorted(ALLOCATORS))
def test_a_preloaded_allocator_serves_the_capsule(one: One, allocator: str) -> None:
    lib = system_library(ALLOCATORS[allocator])
    if not lib.exists():
        pytest.skip(f"{lib} is not installed (scripts/bootstrap.sh installs it)")
    if SANITIZE:
        pytest.skip(f"{SANITIZE} replaces the allocator itself")
    got = values(one.run(one.program, "heap", "threads", "services",
                         env={"LD_PRELOAD": str(lib)}))
    assert got["heap"] == "1" and got["malloc_same"] == "1", got
    assert os.path.realpath(got["malloc_in"]) == os.path.realpath(lib)
    assert got["threads"] == "40"
    if allocator == "jemalloc":
        assert got["jemalloc_counted"] == "1"
