#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the test suite.
# Extra arguments go to pytest (e.g. -m slow, -k dzt).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
# The console's browser tests drive Debian's chromium + chromium-driver (never a downloaded
# browser). Installed here when missing and apt-get can (root, as in CI); elsewhere those
# tests skip with the reason.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing chromium + chromium-driver for the console's browser tests" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        chromium chromium-driver; } >/tmp/detect-apt.log 2>&1 \
      || echo "test: apt-get could not install chromium (see /tmp/detect-apt.log): browser tests skip" >&2
  fi
fi
bin="${DETECT_VENV:-$root/.venv}/bin"
"$bin/ruff" check src drivers tests scripts
"$bin/ruff" format --check src drivers tests scripts
"$bin/mypy" src/detect drivers
"$bin/python" -m pytest -q "$@"
