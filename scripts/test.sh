#!/usr/bin/env bash
# Set up (scripts/setup-tests.sh) and run every check: ruff, mypy, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-tests.sh
python3 -m ruff check .
python3 -m mypy
python3 -m pytest "$@"
