"""Classical baselines: physics of the scores, and calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from _model_synth import SPEC, synthetic_set
from detect.model.baselines import EmiThreshold, GprEnergyCfar
from detect.model.calibration import expected_calibration_error, roc_auc
from detect.windows import WindowSpec

FULL = WindowSpec()  # the shipped geometry: 32 traces x 128 samples (20 ns record)


def _ricker(t: np.ndarray, width: float = 2.0) -> np.ndarray:
    a = np.square(t / width)
    return (1 - 2 * a) * np.exp(-a)


def _bscan(
    rng: np.random.Generator, ground_at: float, target_at: float | None, amp: float = 1.0
) -> np.ndarray:
    """One window after background removal: residue of a ground reflection that bobs with head
    height (per-trace shift and amplitude), white noise, and optionally a point target whose
    hyperbola has its apex at ``target_at`` samples on the centre trace."""
    x = (np.arange(FULL.n_pos) - FULL.half) * FULL.grid_m
    t = np.arange(FULL.gpr_samples, dtype=np.float64)
    shift = rng.normal(0, 0.4, FULL.n_pos)[:, None]
    gain = 1 + rng.normal(0, 0.1, FULL.n_pos)[:, None]
    w = 0.3 * gain * _ricker(t[None] - ground_at - shift) - 0.3 * _ricker(t[None] - ground_at)
    w = w + rng.normal(0, 0.02, (FULL.n_pos, FULL.gpr_samples))
    if target_at is not None:
        # two-way time to a point 0.1 m deep per 6 samples (v = 0.1 m/ns, 0.156 ns/sample)
        depth = target_at / 6 * 0.1
        tt = target_at * np.sqrt(1 + np.square(x / depth))[:, None]
        w = w + amp * 0.2 * _ricker(t[None] - tt)
    return w.astype(np.float32)


def _windows(seed: int, n: int, ground_at: float, target_at: float | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([_bscan(rng, ground_at, target_at) for _ in range(n)])


def test_cfar_detects_a_buried_hyperbola_and_is_gain_and_ground_shift_free() -> None:
    cfar = GprEnergyCfar(FULL)
    empty = cfar.score(_windows(0, 40, ground_at=10.0, target_at=None))
    deep = cfar.score(_windows(1, 40, ground_at=10.0, target_at=30.0))
    shallow = cfar.score(_windows(2, 40, ground_at=10.0, target_at=16.0))
    # every target window scores above every empty one (energy ratio of several x at the apex)
    assert deep.min() > empty.max() + 0.3
    assert shallow.min() > empty.max() + 0.3  # just below the ground: nothing is skipped
    # gain-free: a global factor changes nothing
    w = _windows(1, 5, ground_at=10.0, target_at=30.0)
    np.testing.assert_allclose(cfar.score(7.5 * w), cfar.score(w), rtol=1e-5)
    # the ground reflection moves with head height: same target, ground 5 samples later
    moved = cfar.score(_windows(1, 40, ground_at=15.0, target_at=30.0))
    assert abs(np.median(moved) - np.median(deep)) < 0.15
    empty_moved = cfar.score(_windows(0, 40, ground_at=15.0, target_at=None))
    assert abs(np.median(empty_moved) - np.median(empty)) < 0.15
    # the bobbing ground residue is not mistaken for a target
    assert np.median(empty) < 0.5


def test_cfar_ground_clean_removes_a_common_reflection_only() -> None:
    cfar = GprEnergyCfar(FULL)
    t = np.arange(FULL.gpr_samples, dtype=np.float64)
    w = np.tile(_ricker(t - 12.0), (1, FULL.n_pos, 1)).astype(np.float32)
    w *= np.linspace(0.5, 1.5, FULL.n_pos, dtype=np.float32)[None, :, None]
    assert np.abs(cfar.clean(w)).max() < 1e-4 * np.abs(w).max()
    w[0, FULL.half, 60] += 1.0  # a deep spike on the centre trace is left alone
    assert cfar.clean(w)[0, FULL.half, 60] == pytest.approx(w[0, FULL.half, 60], rel=1e-6)


def test_emi_threshold_scales_with_peak_over_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.01, (2, SPEC.n_pos, SPEC.emi_channels)).astype(np.float32)
    base[1, SPEC.half, :] += 1.0
    s = EmiThreshold(SPEC).score(base)
    assert s[1] > s[0] + 3


def test_baselines_detect_and_calibrate_on_synthetic_windows() -> None:
    cal, test = synthetic_set(1500, 20), synthetic_set(1500, 21)
    cfar = GprEnergyCfar(SPEC, test_m=0.06, guard_m=0.04, max_frac=1.0).fit(
        cal.gpr.astype(np.float32), cal.is_mine
    )
    p = cfar.predict(test.gpr.astype(np.float32), None)
    assert roc_auc(p.p_mine, test.is_mine) > 0.9
    assert expected_calibration_error(p.p_mine, test.is_mine) < 0.06
    assert np.isnan(p.branch_scores["emi"]).all() and np.isnan(p.depth_m).all()
    thr = EmiThreshold(SPEC).fit(cal.emi, cal.is_mine)
    q = thr.predict(None, test.emi)
    # EMI alone cannot tell a weak-metal mine from strong clutter: worse than chance ranking
    # of mine vs clutter, but it separates "metal" from background
    metal = test.cls != 0
    assert roc_auc(thr.score(test.emi), metal) > 0.85  # SNR about 4 at the centre
    assert q.p_mine.shape == (len(test),)
    with pytest.raises(ValueError, match="needs GPR"):
        cfar.predict(None, test.emi)
