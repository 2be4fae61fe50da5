#!/usr/bin/env bash
# Create/refresh the project's virtual environment in .venv (idempotent, fast when current).
# torch is pinned first so that nothing later pulls a different (multi-GB CUDA) build:
#   DETECT_TORCH="torch==2.13.0"  (default; a CPU build where one is on disk)
#   DETECT_TORCH_ARGS="..."       extra pip arguments for that one install (e.g. a wheel index)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
venv="${DETECT_VENV:-$root/.venv}"
torch_req="${DETECT_TORCH:-torch==2.13.0}"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
"$vpy" - <<'PY' || { echo "setup: Python >= 3.11 is required" >&2; exit 2; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

stamp="$venv/.detect-installed"
want="$(cat pyproject.toml; echo "$torch_req ${DETECT_TORCH_ARGS:-}")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$vpy" -c "import detect, torch" 2>/dev/null; then
  exit 0
fi
log="$venv/setup.log"
echo "setup: installing into $venv (first run takes a few minutes; log: $log)" >&2
pip_install() {
  if ! "$vpy" -m pip install --disable-pip-version-check "$@" >>"$log" 2>&1; then
    tail -n 25 "$log" >&2
    echo "setup: 'pip install $*' failed (full log: $log)" >&2
    exit 1
  fi
}
: > "$log"
pip_install --upgrade "pip>=23"
if ! "$vpy" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  pip_install "$torch_req" ${DETECT_TORCH_ARGS:-}
fi
pip_install -e ".[dev,console,gis]"
printf '%s' "$want" > "$stamp"
echo "setup: done" >&2
