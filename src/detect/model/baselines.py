"""Classical detectors in the classifier's ``predict`` interface, for comparison.

- :class:`GprEnergyCfar`: cell-averaging CFAR on trace energy. The test cell is the energy of
  the traces around the window centre (below the first ``skip_samples`` samples, where the
  direct wave and ground reflection live); the reference is the mean energy of the outer traces
  beyond a guard band. Score = log(test / reference), so a fixed threshold keeps a constant
  false-alarm rate whatever the soil's overall return.
- :class:`EmiThreshold`: the peak of the early-gate response near the centre, above the local
  baseline (median of the traces beyond a guard band), in units of a robust noise estimate
  (MAD of the same traces).

Both turn their score into a probability with a Platt fit on held-out windows, so their P(mine)
is comparable with the network's. They give no class or depth (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detect.blocks import CLASSES
from detect.model.calibration import fit_platt
from detect.model.classifier import Prediction
from detect.windows import WindowSpec


def _platt(score: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-(ab[0] * score + ab[1])))).astype(np.float32)


def _empty_prediction(p: np.ndarray, sensor: str) -> Prediction:
    n = p.shape[0]
    nan = np.full(n, np.nan, dtype=np.float32)
    probs = np.full((n, len(CLASSES)), np.nan, dtype=np.float32)
    scores = {"gpr": nan.copy(), "emi": nan.copy()}
    scores[sensor] = p
    present = np.zeros((n, 2), dtype=bool)
    present[:, 0 if sensor == "gpr" else 1] = True
    return Prediction(
        p_mine=p, class_probs=probs, depth_m=nan, branch_scores=scores, present=present
    )


@dataclass
class GprEnergyCfar:
    spec: WindowSpec
    test_m: float = 0.12
    guard_m: float = 0.08
    skip_samples: int = 12
    platt: tuple[float, float] = field(default=(1.0, 0.0))
    name: str = "gpr_energy_cfar"

    def score(self, gpr: np.ndarray) -> np.ndarray:
        gpr = np.asarray(gpr, dtype=np.float32)
        energy = np.square(gpr[:, :, self.skip_samples :], dtype=np.float64).mean(axis=2)
        centre = self.spec.half
        offset = np.abs(np.arange(self.spec.n_pos) - centre) * self.spec.grid_m
        test = offset <= self.test_m / 2
        ref = offset > self.test_m / 2 + self.guard_m
        e_test = energy[:, test].mean(axis=1)
        e_ref = energy[:, ref].mean(axis=1)
        return np.log((e_test + 1e-12) / (e_ref + 1e-12))

    def fit(self, gpr: np.ndarray, y: np.ndarray) -> GprEnergyCfar:
        self.platt = fit_platt(self.score(gpr), y)
        return self

    def predict(self, gpr_patches: np.ndarray | None, emi_patches: np.ndarray | None) -> Prediction:
        if gpr_patches is None:
            raise ValueError(f"{self.name} needs GPR windows")
        return _empty_prediction(_platt(self.score(gpr_patches), self.platt), "gpr")


@dataclass
class EmiThreshold:
    spec: WindowSpec
    test_m: float = 0.12
    guard_m: float = 0.04
    n_gates: int = 3
    platt: tuple[float, float] = field(default=(1.0, 0.0))
    name: str = "emi_threshold"

    def score(self, emi: np.ndarray) -> np.ndarray:
        emi = np.asarray(emi, dtype=np.float64)
        early = emi[:, :, : self.n_gates].sum(axis=2)
        centre = self.spec.half
        offset = np.abs(np.arange(self.spec.n_pos) - centre) * self.spec.grid_m
        test = offset <= self.test_m / 2
        ref = offset > self.test_m / 2 + self.guard_m
        baseline = np.median(early[:, ref], axis=1)
        resid = early - baseline[:, None]
        noise = 1.4826 * np.median(np.abs(resid[:, ref]), axis=1) + 1e-6
        peak = np.abs(resid[:, test]).max(axis=1)
        return np.log1p(peak / noise)

    def fit(self, emi: np.ndarray, y: np.ndarray) -> EmiThreshold:
        self.platt = fit_platt(self.score(emi), y)
        return self

    def predict(self, gpr_patches: np.ndarray | None, emi_patches: np.ndarray | None) -> Prediction:
        if emi_patches is None:
            raise ValueError(f"{self.name} needs EMI windows")
        return _empty_prediction(_platt(self.score(emi_patches), self.platt), "emi")
