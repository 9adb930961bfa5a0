"""Running the runtime tests' programs: a clean environment (no CAPSULE_*
from the caller's shell), the sanitizer's wrapper in front (valgrind under
CAPSULE_TEST_SANITIZE=valgrind), another glibc's ld.so under
CAPSULE_TEST_GLIBC, and their key=value output."""

from __future__ import annotations

import os
import subprocess

from build import program_prefix


def run(cmd: list[str | os.PathLike[str]], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CAPSULE_")}
    full.update(env)
    return subprocess.run([*program_prefix(full), *map(str, cmd)], env=full, capture_output=True,
                          text=True, timeout=60, check=False)


def parse(stdout: str) -> dict[str, str]:
    """The program's key=value lines."""
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
