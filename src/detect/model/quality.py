"""Model quality on the fixed held-out simulated test set, side by side with the baselines.

Window level: mine vs not-mine AUC and AP with lane-bootstrap 95% intervals, ECE of the
calibrated P(mine), and detection rate at P >= 0.5. Reported separately: minimum-metal AP
mines (< 1 g of metal) and mines with metal clutter within 0.5 m, each against all not-mine
windows. The fused model is also scored with one sensor missing (as in a sensor FAULT).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from detect.blocks import CLASSES
from detect.model.baselines import EmiThreshold, GprEnergyCfar
from detect.model.calibration import (
    average_precision,
    bootstrap_ci,
    expected_calibration_error,
    roc_auc,
)
from detect.model.classifier import Classifier
from detect.model.dataset import MIN_METAL_G, WindowSet

AP_MINE = CLASSES.index("ap_mine")


def _pd_at_half(p: np.ndarray, y: np.ndarray) -> float:
    t = y.astype(bool)
    return float((p[t] >= 0.5).mean()) if t.any() else float("nan")


def _far_at_half(p: np.ndarray, y: np.ndarray) -> float:
    f = ~y.astype(bool)
    return float((p[f] >= 0.5).mean()) if f.any() else float("nan")


def score_report(
    p: np.ndarray, test: WindowSet, n_boot: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Metrics of one detector's P(mine) over the test windows (NaN scores are misses)."""
    p = np.where(np.isfinite(p), p, 0.0).astype(np.float64)
    y = test.is_mine
    lanes = test.lane
    rep: dict[str, Any] = {
        "auc": list(bootstrap_ci(roc_auc, p, y, n_boot, seed=seed, groups=lanes)),
        "ap": list(bootstrap_ci(average_precision, p, y, n_boot, seed=seed, groups=lanes)),
        "ece": list(
            bootstrap_ci(expected_calibration_error, p, y, n_boot, seed=seed, groups=lanes)
        ),
        "pd_at_0.5": _pd_at_half(p, y),
        "false_alarm_rate_at_0.5": _far_at_half(p, y),
    }
    not_mine = ~y
    subsets = {
        "min_metal_ap": (test.cls == AP_MINE) & (test.metal_g < MIN_METAL_G),
        "mine_among_metal_clutter": y & test.clutter_near,
    }
    for name, sel in subsets.items():
        keep = sel | not_mine
        if sel.sum() == 0:
            continue
        rep[f"{name}_auc"] = list(
            bootstrap_ci(roc_auc, p[keep], y[keep], n_boot, seed=seed, groups=lanes[keep])
        )
        rep[f"{name}_pd_at_0.5"] = float((p[sel] >= 0.5).mean())
        rep[f"{name}_n_windows"] = int(sel.sum())
    return rep


def evaluate_all(
    models: Mapping[str, Classifier],
    test: WindowSet,
    cal: WindowSet,
    n_boot: int = 200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every shipped model (and the fused one with a sensor missing) plus both baselines."""
    out: dict[str, dict[str, Any]] = {}
    gpr = None if test.gpr is None else test.gpr.astype(np.float32)
    emi = test.emi
    for name, clf in models.items():
        runs = {name: (gpr if clf.has_gpr else None, emi if clf.has_emi else None)}
        if clf.has_gpr and clf.has_emi:
            runs[f"{name} (EMI missing)"] = (gpr, None)
            runs[f"{name} (GPR missing)"] = (None, emi)
        for label, (g, e) in runs.items():
            if progress:
                progress(label)
            pred = clf.predict(g, e)
            out[label] = score_report(pred.p_mine, test, n_boot)
            if label == name:
                for branch, s in pred.branch_scores.items():
                    if np.isfinite(s).any():
                        out[label][f"branch_{branch}_auc"] = roc_auc(s, test.is_mine)
    spec = next(iter(models.values())).spec if models else None
    if spec is not None and gpr is not None and cal.gpr is not None:
        cfar = GprEnergyCfar(spec).fit(cal.gpr.astype(np.float32), cal.is_mine)
        out[cfar.name] = score_report(cfar.predict(gpr, None).p_mine, test, n_boot)
    if spec is not None and emi is not None and cal.emi is not None:
        thr = EmiThreshold(spec).fit(cal.emi, cal.is_mine)
        out[thr.name] = score_report(thr.predict(None, emi).p_mine, test, n_boot)
    return out


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    cols = [
        ("auc", "AUC [95% CI]"),
        ("ece", "ECE"),
        ("ap", "AP"),
        ("pd_at_0.5", "Pd@0.5"),
        ("false_alarm_rate_at_0.5", "FA@0.5"),
        ("min_metal_ap_auc", "min-metal AUC"),
        ("mine_among_metal_clutter_auc", "in-clutter AUC"),
    ]
    head = f"{'detector':<26}" + "".join(f"{c[1]:>24}" for c in cols)
    lines = [head, "-" * len(head)]
    for det, rep in results.items():
        cells = []
        for key, _ in cols:
            v = rep.get(key)
            if isinstance(v, list | tuple):
                cells.append(f"{v[0]:.4f} [{v[1]:.3f},{v[2]:.3f}]")
            elif isinstance(v, float):
                cells.append(f"{v:.4f}")
            else:
                cells.append("-")
        lines.append(f"{det:<26}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)
