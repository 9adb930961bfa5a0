#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/bootstrap.sh), runs
# ruff and pytest, then libcapsule's runtime tests again under ASan+UBSan and
# under valgrind memcheck.
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh --coverage       # ... and print C (gcov) and Python coverage
#   bash scripts/test.sh -k e2e           # extra arguments go to the main pytest run
set -euo pipefail
cd "$(dirname "$0")/.."

coverage=0
if [ "${1:-}" = "--coverage" ]; then
    coverage=1
    shift
fi

bash scripts/bootstrap.sh
py=.venv/bin/python
.venv/bin/ruff check capsule_module tests bench fuzz examples

echo "== pytest: the whole suite"
$py -m pytest -ra "$@" tests

echo "== libcapsule runtime tests under ASan+UBSan"
CAPSULE_TEST_SANITIZE=asan $py -m pytest -q -ra tests/runtime -k "not fuzz"
echo "== libcapsule runtime tests under valgrind memcheck"
CAPSULE_TEST_SANITIZE=valgrind $py -m pytest -q -ra tests/runtime -k "not fuzz"

if [ "$coverage" = 1 ]; then
    echo "== coverage: libcapsule (gcov)"
    $py tests/runtime/coverage.py
    if [ -f scripts/coverage.sh ]; then
        echo "== coverage: the Python package (coverage.py)"
        bash scripts/coverage.sh
    fi
fi
