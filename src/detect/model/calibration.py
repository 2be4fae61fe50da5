"""Calibration fits and the metrics that judge scores: AUC, AP, ECE, bootstrap intervals.

Platt scaling (``p = sigmoid(a z + b)``) and temperature scaling are fitted by minimising the
negative log-likelihood on a held-out split (scipy, convex in both cases).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax
from scipy.stats import rankdata


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the binary NLL of ``sigmoid(a * logits + b)`` against ``y`` in {0,1}."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if z.size == 0 or t.min() == t.max():
        return 1.0, 0.0

    def nll(ab: np.ndarray) -> tuple[float, np.ndarray]:
        s = ab[0] * z + ab[1]
        # log(1 + exp(s)) - t s, stable
        loss = np.logaddexp(0.0, s) - t * s
        g = expit(s) - t
        return float(loss.mean()), np.array([np.mean(g * z), np.mean(g)])

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T > 0 minimising the multi-class NLL of ``softmax(logits / T)``."""
    z = np.asarray(logits, dtype=np.float64)
    idx = np.asarray(y, dtype=np.int64).reshape(-1)
    if z.shape[0] == 0:
        return 1.0

    def nll(log_t: np.ndarray) -> float:
        lp = log_softmax(z / np.exp(log_t[0]), axis=1)
        return float(-lp[np.arange(len(idx)), idx].mean())

    res = minimize(nll, np.array([0.0]), method="L-BFGS-B", bounds=[(-3.0, 3.0)])
    return float(np.exp(res.x[0]))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Binary ECE: sum over equal-width bins of |mean(y) - mean(p)| weighted by bin share."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / p.size)


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    t = np.asarray(y).reshape(-1).astype(bool)
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(score: np.ndarray, y: np.ndarray) -> float:
    """Average precision (area under the precision-recall step curve)."""
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    t = np.asarray(y).reshape(-1).astype(bool)
    n_pos = int(t.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    hits = t[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, t.size + 1)
    return float(precision[hits].sum() / n_pos)


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    score: np.ndarray,
    y: np.ndarray,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """(value, lo, hi): the metric and its percentile bootstrap interval.

    ``groups`` (e.g. lane ids) resamples whole groups, since neighbouring windows of one lane
    are not independent.
    """
    score = np.asarray(score).reshape(-1)
    y = np.asarray(y).reshape(-1)
    value = metric(score, y)
    rng = np.random.default_rng(seed)
    vals = []
    if groups is None:
        for _ in range(n_boot):
            i = rng.integers(0, score.size, score.size)
            vals.append(metric(score[i], y[i]))
    else:
        uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
        members = [np.flatnonzero(inv == g) for g in range(uniq.size)]
        for _ in range(n_boot):
            pick = rng.integers(0, uniq.size, uniq.size)
            i = np.concatenate([members[g] for g in pick])
            vals.append(metric(score[i], y[i]))
    arr = np.array(vals, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return value, float("nan"), float("nan")
    lo, hi = np.quantile(arr, [alpha / 2, 1 - alpha / 2])
    return value, float(lo), float(hi)
