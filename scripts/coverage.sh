#!/usr/bin/env bash
# Line coverage of the Python package (coverage.py) over the Python-side suites:
# tests/python, tests/fuzz_py, tests/meson, tests/e2e, tests/graphics and
# tests/test_demo.py.
# Every Python process of the run is measured, including the Meson runs (PyPI's
# Meson and Debian's 1.0.1, each in a fresh venv) that execute
# capsule_module.meson_module, and the capsule-shim subprocesses. Prints the
# per-file report and the total; extra arguments go to pytest.
#   bash scripts/coverage.sh             # whole Python side (about 4 minutes)
#   bash scripts/coverage.sh -k cli      # a subset
# CAPSULE_COVERAGE_MIN=90 makes a total below 90% fail the command.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/build-coverage/python
[ "${CAPSULE_SKIP_BOOTSTRAP:-}" = 1 ] || bash scripts/bootstrap.sh
PY=$REPO/.venv/bin/python
# The suites import the venv's installed copy: it must be this source, or the
# report's line numbers belong to other code.
installed=$("$PY" -c 'import capsule_module, os; print(os.path.dirname(capsule_module.__file__))')
for f in capsule_module/*.py; do
    if ! cmp -s "$f" "$installed/$(basename "$f")"; then
        "$PY" -m pip install -q --force-reinstall --no-deps . >/dev/null
        break
    fi
done

rm -rf "$OUT"
mkdir -p "$OUT/hook" "$OUT/data"
cat > "$OUT/coveragerc" <<EOF
[run]
parallel = true
data_file = $OUT/data/.coverage
include = */capsule_module/*
disable_warnings = no-data-collected, module-not-imported, module-not-measured, couldnt-parse

[paths]
# The package runs from this checkout, the project venv (installed, not
# editable) and the test venvs' site-packages: all are this source.
source =
    $REPO/capsule_module/
    */capsule_module/

[report]
show_missing = true
skip_empty = true
# Imports for type checkers only; never executed.
exclude_also =
    if T.TYPE_CHECKING:
    if TYPE_CHECKING:
EOF

# Processes of the project venv start coverage from its own a1_coverage.pth.
# The test venvs (PyPI's Meson, Debian's Meson on /usr/bin/python3) have no
# coverage installed: PYTHONPATH gives them this one and a sitecustomize that
# starts it. Both interpreters are CPython 3.11, so its tracer loads in either.
ln -s "$("$PY" -c 'import coverage, os; print(os.path.dirname(coverage.__file__))')" "$OUT/hook/coverage"
cat > "$OUT/hook/sitecustomize.py" <<'EOF'
"""Written by scripts/coverage.sh: measure every Python process of the run."""
import importlib
import sys

try:
    import coverage
except ImportError:
    coverage = None

if coverage is not None and coverage.process_startup() is not None:
    # capsule-meson.pth imported these before sitecustomize runs: run them
    # again, now measured (both are idempotent).
    for _name in ("capsule_module", "capsule_module.meson_hook"):
        if _name in sys.modules:
            importlib.reload(sys.modules[_name])
EOF

status=0
COVERAGE_PROCESS_START=$OUT/coveragerc PYTHONPATH=$OUT/hook${PYTHONPATH:+:$PYTHONPATH} \
    "$PY" -m pytest -q -ra tests/python tests/fuzz_py tests/meson tests/e2e tests/graphics \
    tests/test_demo.py "$@" \
    || status=$?

"$PY" -m coverage combine -q --rcfile="$OUT/coveragerc"
"$PY" -m coverage report --rcfile="$OUT/coveragerc"
total=$("$PY" -m coverage report --rcfile="$OUT/coveragerc" --format=total --precision=1)
echo "python line coverage (capsule_module): $total%"
if [ "$status" -eq 0 ] && [ -n "${CAPSULE_COVERAGE_MIN:-}" ] &&
        "$PY" -c "import sys; sys.exit(float('$total') >= float('$CAPSULE_COVERAGE_MIN'))"; then
    echo "coverage: $total% is below CAPSULE_COVERAGE_MIN=$CAPSULE_COVERAGE_MIN" >&2
    status=1
fi
exit "$status"
