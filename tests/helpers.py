"""Helpers shared by the test suites: running commands, making prefix trees."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import testarch

REPO = Path(__file__).resolve().parent.parent
# This machine's own libraries (x86_64), for the suites that read them.
SYSTEM_LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
# Prefix trees' library directory, and what compile_c builds: the
# architecture under test (CAPSULE_TEST_ARCH, tests/testarch.py; only
# tests/runtime and tests/e2e run for another one).
MULTIARCH = testarch.MULTIARCH


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; on an unexpected failure show it all.
    For another architecture than the machine's (CAPSULE_TEST_ARCH), its
    system libraries' directories follow LD_LIBRARY_PATH (testarch.run_libdirs)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if testarch.CROSS:
        full_env["LD_LIBRARY_PATH"] = testarch.with_run_libdirs(full_env.get("LD_LIBRARY_PATH"))
    proc = subprocess.run(
        [str(c) for c in cmd],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def ignores(pid: int, sig: int) -> bool:
    """Whether process pid has `sig` set to SIG_IGN (from /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next((line.split()[1] for line in status.splitlines()
                 if line.startswith("SigIgn:")), "0")
    return bool(int(mask, 16) >> (sig - 1) & 1)


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM,
         grace: float = 5.0) -> tuple[Any, Any]:
    """End proc, whatever signals it ignores or blocks, and collect what is
    left of its output (as `communicate()` does): `sig` first, unless proc
    ignores it (a program started from a background shell inherits SIGINT
    ignored: then SIGKILL at once), and SIGKILL if it has not ended `grace`
    seconds later. Never waits longer."""
    if proc.poll() is None:
        if ignores(proc.pid, sig):
            proc.kill()
        else:
            proc.send_signal(sig)
    try:
        return proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def venv_bin(name: str) -> Path:
    """A tool from the interpreter's own environment (the project venv in CI)."""
    return Path(sys.executable).parent / name


def meson_command() -> list[str]:
    """The meson the suite drives: the one installed beside this interpreter."""
    return [str(venv_bin("meson"))]


def make_prefix_tree(
    root: Path,
    libraries: Iterable[Path],
    *,
    ldcache: bool = True,
) -> Path:
    """A prefix tree holding hard links (or copies) of `libraries` in the
    multiarch directory, with the symlinks sonames need and an ld.so.cache."""
    libdir = root / MULTIARCH
    libdir.mkdir(parents=True, exist_ok=True)
    for lib in libraries:
        add_library(libdir, Path(lib))
    if ldcache:
        write_ldcache(root)
    return root


def add_library(libdir: Path, lib: Path) -> Path:
    """Link the real file behind `lib` into libdir, under its real file name
    and, when that differs, a symlink with the name `lib` was asked by."""
    real = lib.resolve()
    dest = libdir / real.name
    if not dest.exists():
        try:
            os.link(real, dest)
        except OSError:
            shutil.copy2(real, dest)
    if lib.name != real.name and not (libdir / lib.name).exists():
        (libdir / lib.name).symlink_to(real.name)
    return dest


def write_ldcache(root: Path) -> Path:
    """Run ldconfig on the tree as the tree's own root, as a distribution would."""
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "ld.so.conf").write_text(f"/{MULTIARCH}\n")
    run(["ldconfig", "-r", str(root)])
    return etc / "ld.so.cache"


def compile_c(
    output: Path,
    sources: Sequence[Path],
    *,
    shared_soname: str | None = None,
    flags: Sequence[str] = (),
    libs: Sequence[str] = (),
) -> Path:
    """Compile a fixture with gcc for the architecture under test (gcc -m32
    for i386, its system libraries linkable by -lNAME); shared when given a
    soname."""
    cmd: list[str] = [*testarch.GCC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g", "-o",
                      str(output)]
    if shared_soname:
        cmd += ["-shared", "-fPIC", f"-Wl,-soname,{shared_soname}"]
    cmd += list(flags) + [str(s) for s in sources] + testarch.link_flags() + list(libs)
    run(cmd)
    return output



HOST_TREE_PACKAGES = ("zlib1g", "libexpat1")
I386_PACKAGES = HOST_TREE_PACKAGES


def arch_host_tree(arch_name: str) -> Path:
    """A host tree of arch_name's zlib and expat, unpacked from Debian's
    packages by scripts/arch_tree.py (a private apt state: the system's apt
    and dpkg are not touched), kept in build-arch/ and reused; its
    ld.so.cache is the architecture's ldconfig's. The test is skipped, with
    the reason, when the packages cannot be fetched (no network, no Debian
    archive in apt's sources)."""
    import pytest
    module = testarch.arch_tree_module()
    try:
        return Path(module.ensure_tree(arch_name, HOST_TREE_PACKAGES))
    except module.TreeError as exc:
        pytest.skip(f"no {arch_name} host tree: {exc}")


def i386_host_tree() -> Path:
    """arch_host_tree("i386")."""
    return arch_host_tree("i386")
