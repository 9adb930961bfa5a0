"""A short run of each libFuzzer harness (fuzz/): the seeds, then fresh inputs
for a few seconds, under ASan + UBSan. Long runs are fuzz/run.sh's job; their
figures are in fuzz/README.md."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from build import CROSS, NATIVE, REPO

HARNESSES = ["ldcache", "elffile", "resolve"]
SECONDS = int(os.environ.get("CAPSULE_FUZZ_SECONDS", "10"))


def libfuzzer_missing() -> str | None:
    if CROSS:
        return (f"{NATIVE.name} only: fuzz/run.sh builds the harnesses with clang for this "
                "machine (CAPSULE_TEST_ARCH does not apply to them)")
    clang = shutil.which("clang")
    if not clang:
        return "clang is not installed (Debian 12: apt-get install clang libclang-rt-14-dev)"
    probe = subprocess.run([clang, "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                           capture_output=True, text=True, check=False).stdout.strip()
    if not Path(probe).is_file():
        return "clang's libFuzzer runtime is missing (apt-get install libclang-rt-14-dev)"
    return None


@pytest.fixture(scope="module")
def fuzzers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = libfuzzer_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("fuzz")
    subprocess.run(["bash", str(REPO / "fuzz/run.sh"), "build", str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("name", HARNESSES)
def test_fuzz_briefly(fuzzers: Path, name: str) -> None:
    env = {**os.environ, "TMPDIR": "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp"}
    proc = subprocess.run(["bash", str(REPO / "fuzz/run.sh"), "run", name, str(fuzzers),
                           f"-max_total_time={SECONDS}"], env=env, capture_output=True,
                          text=True, timeout=SECONDS + 120, check=False)
    tail = "\n".join(proc.stderr.splitlines()[-30:])
    assert proc.returncode == 0, tail
    assert "stat::number_of_executed_units" in proc.stderr, tail
    runs = int(proc.stderr.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 1000, tail
