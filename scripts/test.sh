#!/usr/bin/env bash
# Set up everything (scripts/setup.sh), then lint, type-check and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k eventlog -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> import-linter (the layers: cli -> jobs -> adapters | rules | state -> core)"
.venv/bin/lint-imports --no-cache
echo "==> pytest"
exec .venv/bin/pytest "$@"
