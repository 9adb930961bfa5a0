"""The loaders' data files from the prefix: a library in a capsule that
reads files by absolute path (fopen, open, openat, opendir + scandir, stat +
access, realpath) gets the prefix's copy of a path under CAPSULE_DATA_DIRS,
and the process's own file for any other path, for a path the prefix lacks,
and for a path too long to re-root; the program's own fopen is never
re-rooted. Built twice: plain, and with _FILE_OFFSET_BITS=64 and
_FORTIFY_SOURCE=2 (fopen64, open64, scandir64, stat64, __realpath_chk ...:
the names Mesa and the Vulkan loader import)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from build import (
    CC,
    FIXTURES,
    Built,
    Sym,
    build_lib,
    build_shim,
    glibc_prefix,
    make_prefix,
    sanitize_prefix,
    sh,
)
from testarch import require_unemulated

SYMBOLS = [Sym(n, None) for n in ("dd_fopen", "dd_open", "dd_openat", "dd_opendir", "dd_stat",
                                  "dd_realpath", "dd_lstat", "dd_create", "dd_errno", "dd_loop")]
VARIANTS = {"plain": [], "lfs_fortify": ["-O2", "-D_FILE_OFFSET_BITS=64", "-D_FORTIFY_SOURCE=2"]}
PATH_MAX = 4096


@dataclass
class World:
    prefix: Path
    shim: Path
    prog: Path
    data: Path       # the data directory (absolute, in the process's tree)
    other: Path      # a directory not in the list
    long_file: Path  # under data, too long to re-root (its prefix copy exists)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _deep(top: Path, length: int) -> Path:
    """A path under top about `length` bytes long (not created)."""
    parts: list[str] = []
    total = len(str(top))
    while total + 200 < length:
        parts.append("d" * 199)
        total += 200
    parts.append("f" * max(1, length - total - 1))
    return top.joinpath(*parts)


def _create_long(root: Path, path: Path, text: str) -> None:
    """Create root + path component by component (it may exceed PATH_MAX)."""
    fd = os.open(str(root), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in path.parts[1:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        os.write(out, (text + "\n").encode())
        os.close(out)
    finally:
        os.close(fd)


@pytest.fixture(scope="module", params=list(VARIANTS))
def world(request: pytest.FixtureRequest, built: Built,
          tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp(f"datadirs-{request.param}")
    lib = build_lib(root / "real", "libdd.so.1", [FIXTURES / "datadirs_lib.c"],
                    flags=VARIANTS[request.param])
    prefix = make_prefix(root / "prefix", [lib])
    shim = root / "shim"
    build_shim(shim, built.libcapsule_dir, "libdd.so.1", str(prefix), SYMBOLS, [])
    prog = root / "prog"
    sh([*CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", FIXTURES / "datadirs_prog.c",
        "-o", prog, lib])
    data, other = root / "share" / "loader", root / "share" / "other"
    for tree, word in ((None, "process"), (prefix, "prefix")):
        def at(path: Path, tree: Path | None = tree) -> Path:
            return Path(f"{tree}{path}") if tree else path
        _write(at(data / "both.json"), word)
        _write(at(data / "icd.d" / "a.json"), word)
        _write(at(other / "both.json"), word)
    _write(Path(f"{prefix}{data}/icd.d/b.json"), "prefix")   # only in the prefix
    _write(data / "only-process.json", "process")                          # only outside
    long_file = _deep(data, PATH_MAX - 8)  # the prefix is longer than 8 bytes
    assert len(str(long_file)) < PATH_MAX <= len(str(prefix)) + len(str(long_file))
    _create_long(Path("/"), long_file, "process")
    _create_long(prefix, long_file, "prefix")
    return World(prefix, shim, prog, data, other, long_file)


def run(w: World, args: list[str], data_dirs: str | None, debug: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env["LD_LIBRARY_PATH"] = str(w.shim)
    if data_dirs is not None:
        env["CAPSULE_DATA_DIRS"] = data_dirs
    if debug:
        env["CAPSULE_DEBUG"] = debug
    proc = subprocess.run([*sanitize_prefix(), *glibc_prefix(env), str(w.prog), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = {"stderr": proc.stderr}
    for line in proc.stdout.splitlines():
        what, path, result = line.split(" ", 2)
        out[f"{what} {path}"] = result
    return out


@pytest.mark.parametrize("op", ["fopen", "open", "openat"])
def test_a_data_file_comes_from_the_prefix(world: World, op: str) -> None:
    f = world.data / "both.json"
    assert run(world, [op, str(f)], str(world.data))[f"{op} {f}"] == "prefix"


def test_a_directory_is_listed_from_the_prefix(world: World) -> None:
    d = world.data / "icd.d"
    out = run(world, ["opendir", str(d)], f"/nonexistent:{world.data}/")
    assert out[f"scandir {d}"] == "a.json,b.json,"      # b.json exists only in the prefix
    out = run(world, ["fopen", str(d / "b.json")], str(world.data))
    assert out[f"fopen {d / 'b.json'}"] == "prefix"


def test_stat_access_and_realpath_see_the_prefix(world: World) -> None:
    f = world.data / "icd.d" / "b.json"
    out = run(world, ["stat", str(f)], str(world.data))
    assert out[f"stat {f}"] == str(len("prefix\n"))
    assert out[f"access {f}"] == "ok"
    out = run(world, ["realpath", str(f)], str(world.data))
    assert out[f"realpath {f}"] == str(world.prefix) + str(f)


def test_paths_outside_the_list_are_unchanged(world: World) -> None:
    f = world.other / "both.json"
    for op in ("fopen", "open", "openat"):
        assert run(world, [op, str(f)], str(world.data))[f"{op} {f}"] == "process"
    # a sibling whose name only starts like the data directory
    sibling = Path(str(world.data) + "x") / "f.json"
    _write(sibling, "process")
    _write(Path(str(world.prefix) + str(sibling)), "prefix")
    assert run(world, ["fopen", str(sibling)], str(world.data))[f"fopen {sibling}"] == "process"


def test_a_file_the_prefix_lacks_is_the_processs(world: World) -> None:
    f = world.data / "only-process.json"
    out = run(world, ["fopen", str(f)], str(world.data), debug="path")
    assert out[f"fopen {f}"] == "process"
    assert f"data file {f} -> (not in the prefix: unchanged)" in out["stderr"]
    missing = world.data / "nowhere.json"
    assert run(world, ["fopen", str(missing)], str(world.data))[f"fopen {missing}"] == \
        "errno=ENOENT"


def test_a_dangling_symlink_in_the_prefix_wins(world: World) -> None:
    """The prefix's entry wins even when it leads nowhere: open and stat fail
    as they would on the host, lstat sees the link, and the process's file
    of that name is not used."""
    f = world.data / "dangling.json"
    _write(f, "process")
    link = Path(f"{world.prefix}{f}")
    link.unlink(missing_ok=True)
    link.symlink_to("/nonexistent/capsule-target.json")
    out = run(world, ["fopen", str(f)], str(world.data), debug="path")
    assert out[f"fopen {f}"] == "errno=ENOENT"
    assert f"data file {f} -> {link}" in out["stderr"]
    assert run(world, ["stat", str(f)], str(world.data))[f"stat {f}"] == "errno=ENOENT"
    assert run(world, ["lstat", str(f)], str(world.data))[f"lstat {f}"] == "symlink"
    assert run(world, ["own", str(f)], str(world.data))[f"own {f}"] == "process"


def test_lstat_sees_which_tree_has_the_name(world: World) -> None:
    both, only = world.data / "both.json", world.data / "only-process.json"
    out = run(world, ["lstat", str(both), str(only), str(world.data / "nowhere")],
              str(world.data))
    assert out[f"lstat {both}"] == out[f"lstat {only}"] == "file"
    assert out[f"lstat {world.data / 'nowhere'}"] == "errno=ENOENT"


def test_a_created_file_goes_where_the_prefix_decides(world: World) -> None:
    """fopen "w" decides before it creates: a name the prefix lacks is
    created in the process's tree (never in the prefix), one it has is
    rewritten there."""
    new = world.data / "created-here.json"
    new.unlink(missing_ok=True)
    assert run(world, ["create", str(new)], str(world.data))[f"create {new}"] == "ok"
    assert new.read_text() == "created\n"
    assert not Path(f"{world.prefix}{new}").exists()
    kept = world.data / "rewritten.json"
    _write(kept, "process")
    _write(Path(f"{world.prefix}{kept}"), "prefix")
    assert run(world, ["create", str(kept)], str(world.data))[f"create {kept}"] == "ok"
    assert Path(f"{world.prefix}{kept}").read_text() == "created\n"
    assert kept.read_text() == "process\n"


def test_errno_is_the_callers_after_a_call_that_succeeds(world: World) -> None:
    """A file the prefix lacks is tried there first; the process's file then
    opens, and errno is as the caller left it (not the prefix's ENOENT)."""
    for f in (world.data / "only-process.json", world.data / "both.json"):
        assert run(world, ["errno", str(f)], str(world.data))[f"errno {f}"] == "kept"


def test_a_data_directory_the_prefix_lacks_is_asked_about_once(world: World,
                                                               tmp_path: Path) -> None:
    """A prefix without the data directory at all (a host without
    /etc/vulkan) is asked once per process, with one lstat of the directory:
    after that its names cost no system call above the caller's own."""
    require_unemulated("strace would count the emulator's own system calls")
    absent = world.other.parent / "absent-in-prefix"
    f = absent / "icd.json"
    _write(f, "process")
    assert not Path(f"{world.prefix}{absent}").exists()
    log = tmp_path / "strace.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    env.update(LD_LIBRARY_PATH=str(world.shim), CAPSULE_DATA_DIRS=f"{world.data}:{absent}",
               CAPSULE_DEBUG="path",
               ASAN_OPTIONS="detect_leaks=0")  # LeakSanitizer refuses to run under ptrace
    proc = subprocess.run(["strace", "-f", "-o", str(log), "-e", "trace=%file",
                           *glibc_prefix(env), str(world.prog), "fopen", str(f), str(f), str(f)],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.count(f"fopen {f} process") == 3
    assert f"data directory {world.prefix}{absent}: not in the prefix" in proc.stderr
    asked = [line for line in log.read_text().splitlines() if f"{world.prefix}{absent}" in line]
    assert len(asked) == 1, asked


def test_a_path_too_long_to_reroot_is_unchanged(world: World) -> None:
    f = str(world.long_file)
    assert run(world, ["fopen", f], str(world.data))[f"fopen {f}"] == "process"


def test_the_programs_own_fopen_is_never_rerooted(world: World) -> None:
    f = world.data / "both.json"
    assert run(world, ["own", str(f)], str(world.data))[f"own {f}"] == "process"


def test_the_remap_is_traced(world: World) -> None:
    f = world.data / "both.json"
    out = run(world, ["fopen", str(f)], str(world.data), debug="path")
    assert f"capsule[path]: data file {f} -> {world.prefix}{f}" in out["stderr"]


@pytest.mark.parametrize("value", ["", "relative/dir", "/", None])
def test_an_empty_or_unrelated_list_reroots_nothing(world: World, value: str | None) -> None:
    """Empty: none; relative entries and "/" are ignored; unset: the built-in
    list, which does not hold the test's directory."""
    f = world.data / "both.json"
    assert run(world, ["fopen", str(f)], value)[f"fopen {f}"] == "process"


def test_the_built_in_list_holds_the_vulkan_directory(world: World) -> None:
    """Unset: the built-in list; a manifest only the prefix has is found
    (nothing is written to the system's /usr/share)."""
    f = Path("/usr/share/vulkan/icd.d/capsule-test-only-in-prefix.json")
    _write(Path(str(world.prefix) + str(f)), "prefix")
    assert run(world, ["fopen", str(f)], None)[f"fopen {f}"] == "prefix"
    assert run(world, ["fopen", str(f)], "")[f"fopen {f}"] == "errno=ENOENT"


def test_overhead_is_printed(world: World) -> None:
    """Not a timed assertion: fopen+fclose of a path outside the list, inside
    the capsule and outside, printed for the report (pytest -s)."""
    f = world.other / "both.json"
    env = {**os.environ, "LD_LIBRARY_PATH": str(world.shim)}
    out = subprocess.run([*glibc_prefix(env), str(world.prog), "loop", "20000", str(f)],
                         text=True, capture_output=True, timeout=60, check=True, env=env).stdout
    print(out)
    assert "inside" in out and "outside" in out
