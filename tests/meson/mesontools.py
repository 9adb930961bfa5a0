"""The Meson releases the tests drive and the consumer project they build."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from helpers import run

HERE = Path(__file__).resolve().parent
CONSUMER = HERE / "consumer"


@dataclass(frozen=True)
class Meson:
    """One Meson release with capsule installed beside it."""

    name: str
    python: Path                  # the interpreter that runs this Meson
    command: tuple[str, ...]      # how to run meson
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str | os.PathLike[str], check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run([*self.command, *map(str, args)], env=self.env, check=check, cwd=cwd)

    def ninja(self, build: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["ninja", "-C", str(build), *args], env=self.env, check=check)

    def site_packages(self) -> Path:
        out = run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        return Path(out.stdout.strip())



def copy_consumer(dest: Path) -> Path:
    shutil.copytree(CONSUMER, dest)
    return dest
