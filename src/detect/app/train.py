"""``detect train``: train a classifier (``experiment=`` configs; torchrun for DDP)."""

from __future__ import annotations

from typing import Any

from detect.app.common import command
from detect.model.workflow import (
    run_training,
)


@command
def train_task(cfg: Any) -> int:
    """``detect train``: simulate/load lanes, train, calibrate, write ``models/<name>``."""
    return run_training(cfg)
