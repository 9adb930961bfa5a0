#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs lint and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check capsule_module tests bench
exec .venv/bin/python -m pytest -ra "$@" tests
