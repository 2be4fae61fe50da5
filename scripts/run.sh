#!/usr/bin/env bash
# Main job: set up (if needed) and run the live pipeline on the built-in simulated sensors.
# Extra arguments go to `detect run` (e.g. run.duration_s=60 alarm.threshold=0.6).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec "${DETECT_VENV:-$root/.venv}/bin/detect" run "$@"
