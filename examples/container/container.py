#!/usr/bin/env python3
"""The container example: a bubblewrap sandbox whose root is a runtime made
from unpacked Debian packages (runtime.py), with the host's root bound
read-only at /run/host and the graphics shims (prefix /run/host, built from
symbols files) installed in the runtime's libdir.

    container.py setup WORK              make WORK/root (the runtime), WORK/symbols,
                                         build WORK/build and install it into WORK/root
    container.py run WORK -- PROG ARG..  run PROG in the sandbox (DISPLAY passed in;
                                         WORK/out is /out inside)
    container.py argv WORK               print the sandbox command line, for
                                         `capsule-shim ldd --root WORK/root ...`

Needs bubblewrap (Debian's `bubblewrap`), meson and capsule-shim beside this
Python (a checkout's .venv), and what runtime.py needs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import runtime  # noqa: E402

BIN = Path(sys.executable).parent


class ContainerError(Exception):
    """The container cannot be set up or run; str() says why."""


def _tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if found is None:
        raise ContainerError(f"{name} is not installed")
    return str(found)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ContainerError(f"{' '.join(argv[:3])} ... failed: {proc.stderr.strip()[-800:]}")


def write_symbols(symbols: Path) -> None:
    """Each shim's symbols file, from this machine (the host) as it is now."""
    symbols.mkdir(parents=True, exist_ok=True)
    for soname in runtime.SHIMMED:
        proc = subprocess.run([_tool("capsule-shim"), "symbols", soname, "--prefix", "/"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ContainerError(proc.stderr.strip())
        (symbols / f"{soname}.symbols.json").write_text(proc.stdout)


def build_and_install(work: Path) -> None:
    build, root = work / "build", work / "root"
    if not (build / "build.ninja").exists():
        _run([_tool("meson"), "setup", str(build), str(HERE), f"-Dsymbols={work / 'symbols'}",
              "--prefix=/usr", "--libdir=lib/x86_64-linux-gnu"])
    _run([_tool("meson"), "compile", "-C", str(build)])
    _run([_tool("meson"), "install", "-C", str(build), "--destdir", str(root)])


def setup(work: Path) -> Path:
    root = work / "root"
    runtime.make_runtime(root, work / "debs")
    write_symbols(work / "symbols")
    build_and_install(work)
    runtime.trees.write_ldcache(root)   # now with the shims and libcapsule
    (work / "out").mkdir(exist_ok=True)
    return root


def sandbox(work: Path) -> list[str]:
    """bwrap: the runtime as /, the host's / read-only at /run/host, the X
    server's sockets, WORK/out at /out; the caller's environment minus the
    library path."""
    root = work / "root"
    if not (root / "usr/lib/x86_64-linux-gnu/libcapsule.so.0").exists():
        raise ContainerError(f"{root} is not set up (container.py setup {work})")
    x11 = ["--ro-bind", "/tmp/.X11-unix", "/tmp/.X11-unix"] if Path("/tmp/.X11-unix").is_dir() else []
    return [_tool("bwrap"), "--ro-bind", str(root), "/", "--ro-bind", "/", "/run/host",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", *x11,
            "--bind", str(work / "out"), "/out",
            "--unsetenv", "LD_LIBRARY_PATH", "--unsetenv", "LD_PRELOAD",
            "--die-with-parent", "--chdir", "/"]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("setup", "run", "argv"):
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(argv[1]).resolve()
    try:
        if argv[0] == "setup":
            print(f"container.py: runtime with shims in {setup(work)}")
            return 0
        box = sandbox(work)
        if argv[0] == "argv":
            print(" ".join(box))
            return 0
        program = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        return subprocess.run(box + program, check=False).returncode
    except (ContainerError, runtime.RuntimeError_, runtime.trees.TreeError) as exc:
        print(f"container.py: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
