"""Scores and calibration against brute-force definitions and known generating models."""

from __future__ import annotations

import numpy as np
import pytest

from detect.model.calibration import (
    average_precision,
    bootstrap_ci,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    roc_auc,
)


def test_auc_equals_pair_count() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.standard_normal(300), 1)  # ties on purpose
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(s, y) == pytest.approx(pairs, abs=1e-12)
    assert np.isnan(roc_auc(s, np.zeros(300, bool)))


def test_average_precision_by_hand() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.array([1, 0, 1, 0, 1])
    # precision at each hit: 1/1, 2/3, 3/5
    assert average_precision(s, y) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_ece_small_for_calibrated_and_large_for_overconfident() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(200_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(p, y) < 0.005
    # report 0.9 where the truth is 0.6: ECE = 0.3
    q = np.full(10_000, 0.9)
    y2 = rng.random(q.size) < 0.6
    assert expected_calibration_error(q, y2) == pytest.approx(0.3, abs=0.02)


def test_platt_recovers_the_generating_logistic() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 100_000)
    y = rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.5, abs=0.03) and b == pytest.approx(-1.0, abs=0.05)


def test_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (50_000, 4))
    p = np.exp(logits / 2.0)
    p /= p.sum(1, keepdims=True)
    y = (rng.random(len(p))[:, None] > p.cumsum(1)).sum(1)
    assert fit_temperature(logits, y) == pytest.approx(2.0, rel=0.05)


def _mean(score: np.ndarray, _y: np.ndarray) -> float:
    return float(score.mean())


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval() -> None:
    """For the mean of n independent draws the percentile bootstrap interval is
    mean +- 1.96 sd / sqrt(n) (central limit theorem; sd with ddof=0, as the bootstrap
    resamples the empirical distribution): an independent check of the quantile levels.
    Not "contains the point estimate": a percentile interval of a biased metric (ECE) need
    not, as the gpr_only card shows."""
    x = np.random.default_rng(4).normal(0.0, 1.0, 400)
    v, lo, hi = bootstrap_ci(_mean, x, np.zeros(x.size), n_boot=4000)
    half = 1.96 * x.std() / np.sqrt(x.size)
    assert v == pytest.approx(x.mean(), abs=1e-15)
    # quantile noise with 4000 resamples: ~2 % of the half width; 6 % allowed
    assert v - lo == pytest.approx(half, rel=0.06)
    assert hi - v == pytest.approx(half, rel=0.06)


def test_bootstrap_resamples_whole_groups() -> None:
    """Windows of one lane move together: resampling lanes gives the interval of the mean
    of 40 lane means (1.96 sd(lane means) / sqrt(40)), about three times wider than
    treating the 400 windows as independent."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(40), 10)
    x = rng.normal(0.0, 1.0, 40)[groups] + rng.normal(0.0, 0.1, groups.size)
    _, lo, hi = bootstrap_ci(_mean, x, np.zeros(x.size), n_boot=4000, groups=groups)
    lane_means = x.reshape(40, 10).mean(axis=1)
    half = 1.96 * lane_means.std() / np.sqrt(40)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.08)
    _, lo_w, hi_w = bootstrap_ci(_mean, x, np.zeros(x.size), n_boot=4000)
    assert (hi_w - lo_w) < 0.5 * (hi - lo)


def test_bootstrap_interval_narrows_with_data() -> None:
    rng = np.random.default_rng(4)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        return y + rng.normal(0, 1, n), y

    s1, y1 = make(200)
    _, lo, hi = bootstrap_ci(roc_auc, s1, y1, n_boot=200)
    s2, y2 = make(5000)
    _, lo2, hi2 = bootstrap_ci(roc_auc, s2, y2, n_boot=200, groups=np.arange(5000) % 50)
    assert hi2 - lo2 < hi - lo
