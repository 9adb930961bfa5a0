#!/usr/bin/env bash
# Line coverage of the Python package (coverage.py) over the Python-side suites
# alone: tests/python, tests/fuzz_py, tests/meson, tests/e2e, tests/graphics and
# tests/test_demo.py, Meson's own subprocesses and the capsule-shim ones
# included (scripts/pycoverage.sh). Prints the per-file report and the total;
# extra arguments go to pytest. `scripts/test.sh --coverage` measures the same
# during its one main run instead.
#   bash scripts/coverage.sh             # whole Python side (about 4 minutes)
#   bash scripts/coverage.sh -k cli      # a subset
# CAPSULE_COVERAGE_MIN=90 makes a total below 90% fail the command.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${CAPSULE_SKIP_BOOTSTRAP:-}" = 1 ] || bash scripts/bootstrap.sh
source scripts/pycoverage.sh
OUT=$PWD/build-coverage/python
pycov_prepare "$OUT"

status=0
env "${PYCOV_ENV[@]}" .venv/bin/python -m pytest -q -ra tests/python tests/fuzz_py \
    tests/meson tests/e2e tests/graphics tests/test_demo.py "$@" || status=$?
pycov_report "$OUT" || [ "$status" -ne 0 ] || status=1
exit "$status"
