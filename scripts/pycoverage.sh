# Sourced by scripts/coverage.sh and scripts/test.sh --coverage: line coverage
# of the Python package (coverage.py) over every Python process of a pytest
# run, including the Meson runs (PyPI's Meson and Debian's 1.0.1, each in a
# fresh venv) that execute capsule_module.meson_module, and the capsule-shim
# subprocesses.
#
#   pycov_prepare OUT     # write OUT/coveragerc and OUT/hook; set PYCOV_ENV
#   env "${PYCOV_ENV[@]}" .venv/bin/python -m pytest ...
#   pycov_report OUT      # combine, print the per-file table and the total
#
# CAPSULE_COVERAGE_MIN=90 makes pycov_report fail on a total below 90%.

pycov_prepare() {
    local out=$1 repo=$PWD py=$PWD/.venv/bin/python installed f
    # The suites import the venv's installed copy: it must be this source, or
    # the report's line numbers belong to other code.
    installed=$("$py" -c 'import capsule_module, os; print(os.path.dirname(capsule_module.__file__))')
    for f in capsule_module/*.py; do
        if ! cmp -s "$f" "$installed/$(basename "$f")"; then
            "$py" -m pip install -q --force-reinstall --no-deps . >/dev/null
            break
        fi
    done
    rm -rf "$out"
    mkdir -p "$out/hook" "$out/data"
    cat > "$out/coveragerc" <<EOF
[run]
parallel = true
data_file = $out/data/.coverage
include = */capsule_module/*
disable_warnings = no-data-collected, module-not-imported, module-not-measured, couldnt-parse

[paths]
# The package runs from this checkout, the project venv (installed, not
# editable) and the test venvs' site-packages: all are this source.
source =
    $repo/capsule_module/
    */capsule_module/

[report]
show_missing = true
skip_empty = true
# Imports for type checkers only; never executed.
exclude_also =
    if T.TYPE_CHECKING:
    if TYPE_CHECKING:
EOF
    # Processes of the project venv start coverage from its own
    # a1_coverage.pth. The test venvs (PyPI's Meson, Debian's Meson on
    # /usr/bin/python3) have no coverage installed: PYTHONPATH gives them this
    # one and a sitecustomize that starts it. Both interpreters are CPython
    # 3.11, so its tracer loads in either.
    ln -s "$("$py" -c 'import coverage, os; print(os.path.dirname(coverage.__file__))')" \
        "$out/hook/coverage"
    cat > "$out/hook/sitecustomize.py" <<'EOF'
"""Written by scripts/pycoverage.sh: measure every Python process of the run."""
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
    PYCOV_ENV=("COVERAGE_PROCESS_START=$out/coveragerc"
               "PYTHONPATH=$out/hook${PYTHONPATH:+:$PYTHONPATH}")
}

pycov_report() {
    local out=$1 py=$PWD/.venv/bin/python total
    "$py" -m coverage combine -q --rcfile="$out/coveragerc"
    "$py" -m coverage report --rcfile="$out/coveragerc"
    total=$("$py" -m coverage report --rcfile="$out/coveragerc" --format=total --precision=1)
    echo "python line coverage (capsule_module): $total%"
    if [ -n "${CAPSULE_COVERAGE_MIN:-}" ] &&
            "$py" -c "import sys; sys.exit(float('$total') >= float('$CAPSULE_COVERAGE_MIN'))"; then
        echo "coverage: $total% is below CAPSULE_COVERAGE_MIN=$CAPSULE_COVERAGE_MIN" >&2
        return 1
    fi
}
