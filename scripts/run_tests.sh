#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }
# style and lint first (configuration in pyproject.toml): a failure here fails CI like a test
.venv/bin/ruff check . && .venv/bin/ruff format --check . >/dev/null || { echo "ruff: run '.venv/bin/ruff check --fix . && .venv/bin/ruff format .'" >&2; exit 1; }
# the import rules declared in pyproject.toml ([tool.importlinter]): layers, front ends, no cycles
lint_log=$(mktemp); .venv/bin/lint-imports --no-cache >"$lint_log" 2>&1 || { sed -n '/Contracts/,$p' "$lint_log" >&2; echo "lint-imports: an import breaks a declared rule (above)" >&2; exit 1; }
.venv/bin/python -m pytest -q --durations=15 Testing/Python "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
[ "$rc" = 0 ] || exit "$rc"
# Slicer 5.12 compatibility run: Python 3.12 with Slicer's bundled package versions, no torch
if [ -z "${MREFIBROSIS_SKIP_COMPAT:-}" ] && [ "$#" = 0 ]; then
  echo "== Slicer 5.12 compatibility run (Python 3.12, Slicer's bundled packages) =="
  bash scripts/compat_slicer512.sh
  rc=$?
fi
exit "$rc"
