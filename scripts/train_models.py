"""Train the shipped models (fused, gpr_only, emi_only) into models/, then score them.

    .venv/bin/python scripts/train_models.py [key=value ...]
    .venv/bin/python scripts/train_models.py --no-fullwave [key=value ...]

Runs ``detect train experiment=ship`` (the three variants; overrides pass through), then
``scripts/model_quality.py --write-cards`` so each card carries its held-out metrics.

The training mix: simulated lanes (half of them domain-randomised, ``train.domain_jitter``)
plus full-wave gprMax scenes, which ``scripts/fullwave_set.py`` builds first (cached; needs
``pip install -e .[fdtd]``; seeds far from the validation set's 500000 on):

* 24 scenes, seeds 600000-600023, 3 mm cells: training windows, each used
  ``train.session_repeat`` (20) times an epoch;
* 8 scenes, seeds 600100-600107, 2 mm cells: added to the calibration set only.

``--no-fullwave`` trains on simulated lanes alone. About 25 min on 2 shared CPU cores once
the scenes are built (the scenes: about 25 min more on one core).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from detect.app.train import train_task
from detect.config import ConfigError, compose

HERE = Path(__file__).resolve().parent

#: (name, fullwave_set.py arguments, train key): the full-wave part of the training mix
FULLWAVE_SETS = (
    ("train3mm", ["--n", "24", "--seed", "600000", "--set", "dx_m=0.003"], "sessions"),
    ("train_b", ["--n", "8", "--seed", "600100"], "cal_sessions"),
)
SESSION_REPEAT = 20


def fullwave_overrides() -> list[str]:
    """Build (or find in the cache) the full-wave training scenes; the train overrides."""
    from detect.sim.fdtd.settings import fdtd_settings_from

    root = fdtd_settings_from({}).cache_path()
    out = [f"train.session_repeat={SESSION_REPEAT}"]
    for name, args, key in FULLWAVE_SETS:
        folder = root / name
        cmd = [sys.executable, str(HERE / "fullwave_set.py"), *args, "--out", str(folder)]
        if subprocess.call(cmd) != 0:
            raise SystemExit(f"train_models: building {name} failed (or pass --no-fullwave)")
        out.append(f"train.{key}=[{folder}]")
    return out


def main() -> int:
    args = sys.argv[1:]
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    extra = [] if "--no-fullwave" in args else fullwave_overrides()
    args = [a for a in args if a != "--no-fullwave"]
    models = HERE.parent / "models"
    overrides = ["experiment=ship", f"train.models_dir={models}", *extra, *args]
    try:
        cfg = compose(overrides)
    except ConfigError as exc:
        print(f"train_models: {exc}", file=sys.stderr)
        return 2
    rc = train_task(cfg)
    if rc:
        return rc
    return subprocess.call(
        [sys.executable, str(HERE / "model_quality.py"), "--write-cards", *overrides]
    )


if __name__ == "__main__":
    sys.exit(main())
