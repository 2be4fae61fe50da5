"""Classical detectors in the classifier's ``predict`` interface, for comparison.

- :class:`GprEnergyCfar`: the classical GPR detector, a 2-D cell-averaging CFAR on gated
  energy of the (already background-removed, gained) B-scan window. First the air/ground
  coupling zone (the early part of every trace, where the residue of the direct wave and of the
  ground reflection moves with head height) is cleaned per window: the ``clutter_rank``
  strongest singular vectors of that zone over the *reference* traces (the ground reflection
  and its height-bobbing derivative, both nearly common to all traces) are projected out of
  every trace. Nothing is skipped, so a mine just below the surface still counts, wherever the
  ground reflection sits. Then energy in sliding depth gates; for each gate the test cell is the
  mean over the traces around the centre and the reference cell the mean over the traces beyond
  a guard band at the same gate, both plus a noise floor (median reference energy over gates).
  Score = max over gates of log(test / reference): gain-free, so a fixed threshold keeps a
  constant false-alarm rate whatever the soil's overall return.
- :class:`EmiThreshold`: the peak of the early-gate response near the centre, above the local
  baseline (median of the traces beyond a guard band), in units of a robust noise estimate
  (MAD of the same traces).

Both turn their score into a probability with a Platt fit on held-out windows, so their P(mine)
is comparable with the network's. They give no class or depth (NaN).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from detect.blocks import CLASSES
from detect.model.calibration import fit_platt
from detect.model.prediction import Prediction
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
    """CFAR on depth-gated energy after per-window removal of the ground-coupling subspace.

    Depths are fractions of the window's trace (``spec.gpr_samples`` samples): with the default
    DSP (20 ns record) ``coupling_frac`` 0.25 is the first 5 ns, ``max_frac`` 0.5 the first
    10 ns (about 0.5 m in moist soil), ``gate_frac`` about 1 ns.
    """

    spec: WindowSpec
    test_m: float = 0.18
    guard_m: float = 0.06
    clutter_rank: int = 2
    coupling_frac: float = 0.25
    max_frac: float = 0.5
    gate_frac: float = 6 / 128
    floor_q: float = 0.5
    platt: tuple[float, float] = field(default=(1.0, 0.0))
    name: str = "gpr_energy_cfar"

    def _cells(self) -> tuple[np.ndarray, np.ndarray]:
        offset = np.abs(np.arange(self.spec.n_pos) - self.spec.half) * self.spec.grid_m
        test = offset <= self.test_m / 2 + 1e-9
        ref = offset > self.test_m / 2 + self.guard_m + 1e-9
        if not ref.any():
            raise ValueError(f"{self.name}: no reference traces beyond test + guard")
        return test, ref

    def clean(self, gpr: np.ndarray) -> np.ndarray:
        """The window with the ground-coupling subspace of its reference traces removed."""
        _, ref = self._cells()
        g = np.nan_to_num(np.array(gpr, dtype=np.float32), nan=0.0)  # no data: no energy
        zone = max(2, round(self.coupling_frac * g.shape[2]))
        z = g[:, :, :zone]
        _, _, vt = np.linalg.svd(z[:, ref], full_matrices=False)
        v = vt[:, : self.clutter_rank]  # (n, k, zone), orthonormal rows
        g[:, :, :zone] = z - np.einsum("npz,nkz,nky->npy", z, v, v)
        return g

    def gate_energy(self, gpr: np.ndarray) -> np.ndarray:
        """(n, n_pos, n_gates) mean energy in sliding depth gates (third-gate steps)."""
        n_s = gpr.shape[2]
        gate = max(1, round(self.gate_frac * n_s))
        stop = max(gate, round(self.max_frac * n_s))
        e = np.square(gpr[:, :, :stop], dtype=np.float64)
        cs = np.concatenate([np.zeros_like(e[:, :, :1]), np.cumsum(e, axis=2)], axis=2)
        starts = np.arange(0, stop - gate + 1, max(1, gate // 3))
        return (cs[:, :, starts + gate] - cs[:, :, starts]) / gate

    def score(self, gpr: np.ndarray) -> np.ndarray:
        test, ref = self._cells()
        energy = self.gate_energy(self.clean(gpr))
        e_test = energy[:, test].mean(axis=1)
        e_ref = energy[:, ref].mean(axis=1)
        floor = np.quantile(e_ref, self.floor_q, axis=1, keepdims=True)
        floor = floor + 1e-12 * e_ref.mean(axis=1, keepdims=True) + 1e-30
        return np.log((e_test + floor) / (e_ref + floor)).max(axis=1)

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
        with warnings.catch_warnings():  # a scan's end: NaN beyond the data
            warnings.simplefilter("ignore", RuntimeWarning)
            baseline = np.nanmedian(early[:, ref], axis=1)
            resid = early - baseline[:, None]
            noise = 1.4826 * np.nanmedian(np.abs(resid[:, ref]), axis=1) + 1e-6
            peak = np.nanmax(np.abs(resid[:, test]), axis=1)
        return np.nan_to_num(np.log1p(peak / noise), nan=0.0)

    def fit(self, emi: np.ndarray, y: np.ndarray) -> EmiThreshold:
        self.platt = fit_platt(self.score(emi), y)
        return self

    def predict(self, gpr_patches: np.ndarray | None, emi_patches: np.ndarray | None) -> Prediction:
        if emi_patches is None:
            raise ValueError(f"{self.name} needs EMI windows")
        return _empty_prediction(_platt(self.score(emi_patches), self.platt), "emi")
