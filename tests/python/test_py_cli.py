"""capsule-shim command line, run as a real subprocess (and main() in-process)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from py_support import REPO, system_lib

from capsule_module import cli, symbolsfile
from capsule_module.elfreader import read_library
from helpers import compile_c, meson_command, run, stop


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capsule_module.cli", *args], cwd=cwd,
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO),
                                                               "PATH": "/usr/bin:/bin",
                                                               **_coverage_env()})


def _coverage_env() -> dict[str, str]:
    """scripts/coverage.sh's settings, so the subprocess is measured too."""
    return {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}


@pytest.mark.parametrize("args", [[], ["symbols"], ["init"]])
def test_help_on_every_level(args: list[str]) -> None:
    r = _run(*args, "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: capsule-shim")


def test_symbols_by_soname_and_by_path() -> None:
    r = _run("symbols", "libz.so.1")
    assert r.returncode == 0, r.stderr
    lib = symbolsfile.loads(r.stdout, "stdout")
    assert lib == read_library(system_lib("libz.so.1"))
    r2 = _run("symbols", str(system_lib("libz.so.1")))
    assert r2.stdout == r.stdout


def test_symbols_of_elf32_path_reports_class_32(lib32: Path) -> None:
    r = _run("symbols", str(lib32))
    assert r.returncode == 0 and json.loads(r.stdout)["elf_class"] == 32


@pytest.mark.parametrize("args, status, fragment", [
    (["symbols", "libnothere.so.9"], 1, "libnothere.so.9 not found under /"),
    (["symbols", "libz.so.1", "--prefix", "/nonexistent-tree"], 1, "/nonexistent-tree"),
    (["symbols", "./nothere/lib.so"], 1, "does not exist"),
    (["symbols", "/etc/passwd"], 1, "not an ELF file"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "required"),
    (["symbols"], 2, "required"),
    (["symbols", "libz.so.1", "--bogus"], 2, "unrecognized arguments"),
    (["init", "libz.so.1", "--prefix", "host"], 1, "must be an absolute path"),
    (["init", "libz.so.1", "--search-prefix", "/", "--share", "lib/X11.so.6"], 1,
     "must be a library soname"),
    (["init", "libz.so.1", "--search-prefix", "/", "--share", "libz.so.1"], 1,
     "the shim's own soname"),
    (["init", "libz.so.1", "--search-prefix", "/", "--share", "libX11.so.6", "--no-share"], 1,
     "exclude each other"),
])
def test_errors_are_one_line(args: list[str], status: int, fragment: str) -> None:
    r = _run(*args)
    assert r.returncode == status
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule-shim: "), r.stderr
    assert fragment in lines[0] and "Traceback" not in r.stderr


def test_init_writes_a_standalone_project(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    r = _run("init", "libz.so.1", "--prefix", "/host", "--search-prefix", "/", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "libz.so.1.symbols.json", "meson.build"]
    meson = (out / "meson.build").read_text()
    assert "capsule = import('capsule')" in meson
    assert "capsule.shim('libz.so.1', prefix: '/host', symbols: 'libz.so.1.symbols.json')" in meson
    lib = symbolsfile.load(out / "libz.so.1.symbols.json")
    assert lib == read_library(system_lib("libz.so.1"))
    assert "/host" in (out / "README.md").read_text()
    again = _run("init", "libz.so.1", "--search-prefix", "/", "-o", str(out))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert _run("init", "libz.so.1", "--search-prefix", "/", "-o", str(out),
                "--force").returncode == 0


def test_init_prefix_defaults_to_shims(tmp_path: Path) -> None:
    """`init` without --prefix writes the prefix capsule.shim() defaults to
    (/host): the shim it renders and one from a bare shim() call agree."""
    r = _run("init", "libz.so.1", "--search-prefix", "/", "-o", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    assert "prefix: '/host'" in (tmp_path / "p/meson.build").read_text()
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "meson.build").write_text("project('b', 'c')\ncapsule = import('capsule')\n"
                                      "capsule.shim('libz.so.1', search_prefix: '/')\n")
    prefixes = []
    for src in (tmp_path / "p", bare):
        run([*meson_command(), "setup", str(src / "build"), str(src)])
        shim_c = src / "build" / "capsule-shims" / "libz.so.1.c"
        prefixes += [line.strip() for line in shim_c.read_text().splitlines()
                     if line.strip().startswith(".prefix =")]
    assert prefixes == ['.prefix = "/host",'] * 2


def test_init_without_the_prefix_here_names_search_prefix(tmp_path: Path) -> None:
    r = _run("init", "libz.so.1", "--prefix", str(tmp_path / "absent"), "-o", str(tmp_path / "p"))
    assert r.returncode == 1
    assert r.stderr == (f"capsule-shim: --prefix {tmp_path / 'absent'} is not a directory on this "
                        "machine: give --search-prefix DIR, the tree to read libz.so.1 from now "
                        "(--search-prefix / for this machine's own)\n")
    assert not (tmp_path / "p").exists()


def test_init_share_default_and_none(tmp_path: Path) -> None:
    """No --share: no share keyword (libcapsule's default list); --no-share: share: []."""
    for flags, expected in (([], "symbols: 'libz.so.1.symbols.json')"),
                            (["--no-share"], "share: [])")):
        out = tmp_path / ("p" + "".join(flags))
        assert _run("init", "libz.so.1", "--search-prefix", "/", "-o", str(out),
                    *flags).returncode == 0
        assert expected in (out / "meson.build").read_text()


def test_init_project_builds_without_the_prefix(tmp_path: Path) -> None:
    """The project `init` writes builds from its symbols file alone: the run-time
    prefix need not exist on the build machine. Its README's commands work as
    written, even with the system's Meson (no capsule hook) first on PATH."""
    out = tmp_path / "proj"
    r = _run("init", "libz.so.1", "--prefix", "/nonexistent/host", "--search-prefix", "/",
             "--share", "libX11.so.6", "--share", "libxcb.so.1", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "share: ['libX11.so.6', 'libxcb.so.1'])" in (out / "meson.build").read_text()
    readme = (out / "README.md").read_text()
    commands = readme.split("```sh\n")[1].split("```")[0]
    assert commands == f"{meson_command()[0]} setup build\n{meson_command()[0]} compile -C build\n"
    run(["bash", "-ec", commands], cwd=out, env={"PATH": "/usr/bin:/bin"})
    build = out / "build"
    def interface(path: Path) -> set[tuple[str, str | None, bool]]:
        return {(s.name, s.version, s.default) for s in read_library(path).symbols}
    assert interface(build / "libz.so.1") == interface(system_lib("libz.so.1"))
    assert os.readlink(build / "libz.so") == "libz.so.1"   # the development name


def test_symbols_of_a_fifo_is_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "libz.so.1"
    os.mkfifo(fifo)
    r = _run("symbols", str(fifo))
    assert r.returncode == 1
    assert r.stderr == f"capsule-shim: {fifo}: is not a regular file, so not a library\n"


def test_init_refuses_elf32(lib32: Path, tmp_path: Path) -> None:
    r = _run("init", str(lib32), "--search-prefix", "/", "-o", str(tmp_path / "p"))
    assert r.returncode == 1 and "only x86_64 ELF64" in r.stderr
    assert not (tmp_path / "p").exists()


def test_init_default_directory_and_quoting(tmp_path: Path) -> None:
    r = _run("init", "libexpat.so.1", "--prefix", "/it's here", "--search-prefix", "/",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    meson = (tmp_path / "libexpat.so.1-shim/meson.build").read_text()
    assert "prefix: '/it\\'s here'" in meson


@pytest.mark.parametrize("argv", [
    ["symbols", "libz.so.1"],
    ["symbols", "libz.so.1", "--prefix", "/tree", "--arch", "i386"],
    ["symbols", "--arch=aarch64", "--prefix=/a=b", "libz.so.1"],
    ["symbols", "--prefix=", "lib=z.so.1"],
    ["symbols", ""],
])
def test_plain_symbols_arguments_mean_what_argparse_says(argv: list[str]) -> None:
    """`capsule-shim symbols` reads its plain arguments without argparse (a
    fifth of its start-up): the same Namespace as argparse's."""
    fast = cli._symbols_args(argv)
    assert fast is not None and vars(fast) == vars(cli._parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["init", "libz.so.1"], ["symbols"], ["symbols", "--help"], ["symbols", "a", "b"],
    ["symbols", "libz.so.1", "--prefix"], ["symbols", "libz.so.1", "--pre", "/"],
    ["symbols", "libz.so.1", "--prefix", "/a", "--prefix", "/b"],
    ["symbols", "libz.so.1", "--prefix", "-x"], ["symbols", "libz.so.1", "--arch", "mips"],
    ["symbols", "--", "libz.so.1"], ["symbols", "-5"],
])
def test_other_symbols_arguments_are_left_to_argparse(argv: list[str]) -> None:
    assert cli._symbols_args(argv) is None


def test_symbols_imports_no_argparse_dataclasses_or_pyelftools() -> None:
    code = ("import io, sys\nfrom capsule_module import cli\nsys.stdout = io.StringIO()\n"
            "status = cli.main(['symbols', 'libz.so.1'])\nsys.stdout = sys.__stdout__\n"
            "print(status, sorted({m.split('.')[0] for m in sys.modules}\n"
            "                     & {'argparse', 'dataclasses', 'elftools'}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.stdout == "0 []\n", r.stderr


def test_symbols_to_a_text_only_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["symbols", "libz.so.1"]) == 0
    assert symbolsfile.loads(out.getvalue(), "out") == read_library(system_lib("libz.so.1"))


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["symbols", "libexpat.so.1"]) == 0
    assert json.loads(capsys.readouterr().out)["soname"] == "libexpat.so.1"
    assert cli.main(["symbols", "libnothere.so.1"]) == 1
    assert capsys.readouterr().err.startswith("capsule-shim: library libnothere.so.1")


def test_init_refuses_a_soname_that_is_a_path(tmp_path: Path) -> None:
    src = tmp_path / "a.c"
    src.write_text("int f(void) { return 1; }\n")
    lib = tmp_path / "libodd.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-Wl,-soname,../odd.so.1",
                    "-o", str(lib)], check=True)
    for command in (["symbols"], ["init", "--search-prefix", "/", "-o", str(tmp_path / "p")]):
        r = _run(*command[:1], str(lib), *command[1:])
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == (f"capsule-shim: library {lib} ({lib}) has DT_SONAME '../odd.so.1', "
                            "which is not a file name such as libz.so.1, so no shim can carry "
                            "it\n")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("command", ["symbols", "init"])
def test_a_library_that_calls_itself_otherwise_is_refused(tmp_path: Path, command: str) -> None:
    """libfoo.so.1 in the tree is a copy of libfoo.so.2: its shim would be
    another library than the one programs asked for."""
    src = tmp_path / "a.c"
    src.write_text("int f(void) { return 1; }\n")
    found = tmp_path / "tree" / "usr/lib/x86_64-linux-gnu" / "libfoo.so.1"
    found.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-Wl,-soname,libfoo.so.2",
                    "-o", str(found)], check=True)
    out = tmp_path / "p"
    extra = ["-o", str(out)] if command == "init" else []
    r = _run(command, "libfoo.so.1", "--prefix", str(tmp_path / "tree"), *extra)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (f"capsule-shim: library libfoo.so.1 ({found.resolve()}) has DT_SONAME "
                        "'libfoo.so.2', not 'libfoo.so.1': it is another library, and a shim "
                        "named libfoo.so.1 would not be it\n")
    assert not out.exists()
    # Given as a path, the file is what was asked for: its soname is used.
    r = _run("symbols", str(found))
    assert r.returncode == 0 and json.loads(r.stdout)["soname"] == "libfoo.so.2"


def test_init_output_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("mine\n")
    r = _run("init", "libz.so.1", "--search-prefix", "/", "-o", str(tmp_path / "p"))
    assert r.returncode == 1
    assert r.stderr == f"capsule-shim: output {tmp_path / 'p'} exists and is not a directory\n"
    assert (tmp_path / "p").read_text() == "mine\n"


def test_closed_stdout_is_a_quiet_failure() -> None:
    """`capsule-shim symbols ... | head -0`: no traceback, status 1."""
    proc = subprocess.Popen([sys.executable, "-m", "capsule_module.cli", "symbols", "libz.so.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                 **_coverage_env()})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the library is read: the write hits a closed pipe
    try:
        err = proc.communicate(timeout=60)[1]
    finally:
        stop(proc)
    assert proc.returncode == 1
    assert err == b""


@pytest.mark.parametrize("args, message", [
    (["ldd"], "capsule-shim: ldd needs a PROGRAM to run\n"),
    (["ldd", "--", "/nonexistent/game"],
     "capsule-shim: program /nonexistent/game cannot be run (No such file or directory)\n"),
    (["ldd", "--root", "/nonexistent", "true"],
     "capsule-shim: --root '/nonexistent' is not a directory\n"),
    (["ldd", "--timeout", "0.3", "sleep", "30"],
     "capsule-shim: program sleep stopped after 0.3 s without initialising any capsule shim "
     "(are the shims first on LD_LIBRARY_PATH?)\n"),
])
def test_ldd_errors_are_one_line(args: list[str], message: str) -> None:
    r = _run(*args)
    assert (r.returncode, r.stderr) == (1, message)


def test_ldd_reports_a_failing_program_after_its_map() -> None:
    # A program that prints a namespace map the way libcapsule does
    # (CAPSULE_DEBUG=ns), then fails.
    script = ("echo \"capsule[ns]: map at exit: namespace 0 prefix (the program's)\" >&2; "
              "echo 'capsule[ns]: map at exit: 0 /opt/game/bin/game' >&2; "
              "echo 'GL init failed' >&2; exit 3")
    r = _run("ldd", "sh", "-c", script)
    assert r.returncode == 0  # nothing came from outside a prefix
    assert r.stdout.splitlines() == ["namespace map at exit:", "namespace 0 (the program's):",
                                     "    /opt/game/bin/game"]
    assert r.stderr == "capsule-shim: sh exited with status 3; its last words:\nGL init failed\n"


def test_ldd_names_a_failed_dlopen_of_a_shim() -> None:
    # libcapsule's trace of a dlopen of a shim that failed (the preflight):
    # the program went on, without any capsule.
    line = "capsule: libGL.so.1: prefix /host: libGL.so.1 not found under the prefix"
    script = (f"echo 'capsule[ns]: preflight: the dlopen fails: {line}' >&2; "
              "echo 'falling back to software' >&2; exit 0")
    r = _run("ldd", "sh", "-c", script)
    assert (r.returncode, r.stderr) == (1, f"capsule-shim: program sh exited with status 0: {line}\n")


def test_ldd_keeps_objects_unloaded_before_exit() -> None:
    # A driver dlopen()ed inside and dlclose()d again is gone from the map at
    # exit; the map printed after the inside dlopen still tells where it came
    # from, and one from outside the prefix is flagged.
    lines = [
        "map after inside dlopen 1: namespace 1 prefix /host",
        "map after inside dlopen 1: 1 /host/usr/lib/libGL.so.1",
        "map after inside dlopen 1: 1 /host/usr/lib/dri/swrast_dri.so",
        "map after inside dlopen 1: 1 /usr/lib/libLLVM.so.1",
        "map at exit: namespace 1 prefix /host",
        "map at exit: 1 /host/usr/lib/libGL.so.1",
    ]
    script = "; ".join(f"echo 'capsule[ns]: {line}' >&2" for line in lines)
    r = _run("ldd", "sh", "-c", script)
    assert r.returncode == 1, r
    assert r.stdout.splitlines()[:5] == [
        "namespace map at exit:", "namespace 1 (capsule, prefix /host):",
        "    /host/usr/lib/libGL.so.1    [from the prefix]",
        "    /host/usr/lib/dri/swrast_dri.so    [from the prefix, unloaded before exit]",
        "    /usr/lib/libLLVM.so.1    [OUTSIDE THE PREFIX, unloaded before exit]"]


def _map_script(ns0: list[str]) -> str:
    """A program printing the map of a libz shim's run: ns0's objects as given."""
    lines = ["map libz.so.1 ready: namespace 0 prefix -",
             *(f"map libz.so.1 ready: 0 {path}" for path in ns0),
             "map libz.so.1 ready: namespace 1 prefix /"]
    return "; ".join(f"echo 'capsule[ns]: {line}' >&2" for line in lines)


def test_ldd_flags_a_shimmed_sonames_real_library_beside_the_shim(tmp_path: Path) -> None:
    """The file of the program's namespace with the shim's soname that does not
    link libcapsule is the real library: flagged, exit 1; with --root the
    sandbox's files are read (there the same path is a shim)."""
    src = tmp_path / "empty.c"
    src.write_text("int capsule_fixture;\n")
    capsule = compile_c(tmp_path / "libcapsule.so.0", [src], shared_soname="libcapsule.so.0")
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    compile_c(root / "usr/lib/libz.so.1", [src], shared_soname="libz.so.1",
              libs=["-Wl,--no-as-needed", str(capsule)])
    real = str(system_lib("libz.so.1"))
    r = _run("ldd", "sh", "-c", _map_script(["/opt/game/bin/game", real]))
    assert r.returncode == 1, r
    assert f"    {real}    [THE REAL LIBRARY, OUTSIDE THE CAPSULE, beside its shim]" in r.stdout
    assert f"libz.so.1 was also loaded outside the capsule, in the program's namespace: {real} (" \
        in r.stdout
    r = _run("ldd", "--root", str(root), "sh", "-c", _map_script(["/usr/lib/libz.so.1"]))
    assert r.returncode == 0, r
    assert "    /usr/lib/libz.so.1    [capsule shim]" in r.stdout
