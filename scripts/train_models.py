"""Train the shipped models (fused, gpr_only, emi_only) into models/, then score them.

    .venv/bin/python scripts/train_models.py [key=value ...]

Runs ``detect train experiment=ship`` (the three variants; overrides pass through), then
``scripts/model_quality.py --write-cards`` so each card carries its held-out metrics.
About 15-20 min on 2 shared CPU cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from detect.app.train import train_task
from detect.config import ConfigError, compose

HERE = Path(__file__).resolve().parent


def main() -> int:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        return 0
    models = HERE.parent / "models"
    overrides = ["experiment=ship", f"train.models_dir={models}", *sys.argv[1:]]
    try:
        cfg = compose(overrides)
    except ConfigError as exc:
        print(f"train_models: {exc}", file=sys.stderr)
        return 2
    rc = train_task(cfg)
    if rc:
        return rc
    passthrough = ["experiment=ship", f"train.models_dir={models}", *sys.argv[1:]]
    return subprocess.call(
        [sys.executable, str(HERE / "model_quality.py"), "--write-cards", *passthrough]
    )


if __name__ == "__main__":
    sys.exit(main())
