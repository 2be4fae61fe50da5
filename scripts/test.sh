#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the test suite.
# Extra arguments go to pytest (e.g. -m slow, -k dzt).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
bin="${DETECT_VENV:-$root/.venv}/bin"
"$bin/ruff" check src drivers tests scripts
"$bin/ruff" format --check src drivers tests scripts
"$bin/mypy" src/detect
"$bin/python" -m pytest -q "$@"
