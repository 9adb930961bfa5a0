#!/usr/bin/env python3
"""gcov line coverage of libcapsule driven by the runtime tests.

    python tests/runtime/coverage.py [--fail-under PCT] [pytest args...]
    python tests/runtime/coverage.py --from BASETEMP [--fail-under PCT]

Runs tests/runtime with CAPSULE_TEST_SANITIZE=coverage (libcapsule and the
resolver drivers built with --coverage), then merges every .gcda the runs left
(libcapsule.so in all the test programs, the drivers) per source line and
prints a table per libcapsule/*.c file and the total. With --from, runs
nothing: reports what an earlier `pytest --basetemp=BASETEMP` run with
CAPSULE_TEST_SANITIZE=coverage left (scripts/test.sh --coverage's main run)."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBCAPSULE = REPO / "libcapsule"


def run_tests(basetemp: Path, pytest_args: list[str]) -> int:
    env = {**os.environ, "CAPSULE_TEST_SANITIZE": "coverage"}
    cmd = [sys.executable, "-m", "pytest", "-q", f"--basetemp={basetemp}",
           str(REPO / "tests/runtime"), *pytest_args]
    return subprocess.run(cmd, env=env, cwd=REPO, check=False).returncode


def gcda_files(basetemp: Path) -> list[Path]:
    """Every .gcda under basetemp. os.walk skips what it cannot list (the
    tests leave paths longer than PATH_MAX behind), where rglob raises."""
    return [Path(top) / name for top, _, names in os.walk(basetemp)
            for name in names if name.endswith(".gcda")]


def line_counts(basetemp: Path) -> dict[Path, dict[int, int]]:
    """source -> line -> executions, summed over every .gcda under basetemp."""
    counts: dict[Path, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for gcda in gcda_files(basetemp):
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(["gcov", "--json-format", "--object-directory", str(gcda.parent),
                            str(gcda)], cwd=out, capture_output=True, check=True)
            for report in Path(out).glob("*.gcov.json.gz"):
                data = json.loads(gzip.decompress(report.read_bytes()))
                for f in data["files"]:
                    source = Path(f["file"])
                    if not source.is_absolute():
                        source = (Path(data.get("current_working_directory", out)) /
                                  source).resolve()
                    for line in f["lines"]:
                        counts[source][line["line_number"]] += line["count"]
    return counts


def report(counts: dict[Path, dict[int, int]]) -> float:
    total = hit = 0
    print(f"{'file':<16} {'lines':>6} {'hit':>6} {'cover':>7}  never run")
    for source in [*sorted(LIBCAPSULE.glob("*.c")), *sorted(LIBCAPSULE.glob("arch/*/*.c"))]:
        lines = counts.get(source.resolve(), {})
        if source.parent.parent.name == "arch" and not lines:
            continue  # another architecture's, not built here
        n, h = len(lines), sum(1 for c in lines.values() if c)
        missed = sorted(ln for ln, c in lines.items() if not c)
        total, hit = total + n, hit + h
        pct = 100.0 * h / n if n else 0.0
        name = source.relative_to(LIBCAPSULE).as_posix()
        print(f"{name:<16} {n:>6} {h:>6} {pct:>6.1f}%  {compress(missed)}")
    pct = 100.0 * hit / total if total else 0.0
    print(f"{'TOTAL':<16} {total:>6} {hit:>6} {pct:>6.1f}%")
    return pct


def compress(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5,9'."""
    parts: list[str] = []
    for ln in lines:
        if parts and parts[-1].split("-")[-1] == str(ln - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{ln}"
        else:
            parts.append(str(ln))
    return ",".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fail-under", type=float, default=0.0)
    parser.add_argument("--from", dest="basetemp", type=Path, metavar="BASETEMP",
                        help="report the counters an earlier run left under BASETEMP")
    args, pytest_args = parser.parse_known_args()
    if args.basetemp is not None:
        return verdict(0, report_from(args.basetemp), args.fail_under)
    with tempfile.TemporaryDirectory(prefix="capsule-cov-") as tmp:
        basetemp = Path(tmp) / "t"
        rc = run_tests(basetemp, pytest_args)
        pct = report(line_counts(basetemp))
    return verdict(rc, pct, args.fail_under)


def report_from(basetemp: Path) -> float:
    if not gcda_files(basetemp):
        raise SystemExit(f"coverage: no .gcda files under {basetemp}: was it the --basetemp "
                         "of a run with CAPSULE_TEST_SANITIZE=coverage?")
    return report(line_counts(basetemp))


def verdict(rc: int, pct: float, fail_under: float) -> int:
    if rc != 0:
        print(f"coverage: the tests failed (pytest exit status {rc})", file=sys.stderr)
        return rc
    if pct < fail_under:
        print(f"coverage: {pct:.1f}% is under {fail_under}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
