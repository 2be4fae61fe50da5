"""What a scorer returns for a batch of windows: one type for every model (the trained
classifier, the interim energy detector, the baselines)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detect.blocks import CLASSES


@dataclass(frozen=True)
class Prediction:
    """Scores for ``n`` windows. Branch scores are NaN where the sensor was absent."""

    p_mine: np.ndarray  # (n,)
    class_probs: np.ndarray  # (n, len(CLASSES))
    depth_m: np.ndarray  # (n,)
    branch_scores: dict[str, np.ndarray] = field(default_factory=dict)  # gpr, emi -> (n,)
    present: np.ndarray | None = None  # (n, 2) bool: GPR, EMI used

    def __len__(self) -> int:
        return int(self.p_mine.shape[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASSES

    def top_class(self) -> list[str]:
        return [CLASSES[i] for i in np.argmax(self.class_probs, axis=1)]
