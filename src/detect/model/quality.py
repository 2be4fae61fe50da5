"""Model quality on the fixed held-out simulated test set, side by side with the baselines.

Two views of the same simulated windows:

* **Clean windows** (the headline ``auc`` / ``ap`` / ``ece``, comparable with earlier cards):
  windows are labelled as in training (mine: a threat within ``halo_m`` of the window centre)
  and the ambiguous edge band (nearest target between ``halo_m`` and ``guard_m``, 0.10-0.25 m)
  is left out. That band is the hardest ground, so these figures flatter the model.
* **All windows** (``*_all_windows``): nothing is left out; a window is a mine window when its
  centre lies within the evaluation halo of a threat, measured from the target's edge
  (``halo_m + size_m / 2``, :class:`detect.metrics.HaloRule`, the rule that decides whether
  an alarm detects a mine); every other window, edge band included, is a negative.

Also: ECE in equal-mass bins and over windows with P(mine) > 0.1 (the equal-width ECE is
dominated by the ~90 % of windows with P ~ 0), detection rate at P >= 0.5, and two hard
subsets, minimum-metal AP mines (< 1 g of metal) and mines with metal clutter within 0.5 m,
each scored against metal-clutter windows (the hard contrast) and against every not-mine
window. The fused model is also scored with one sensor missing (as in a sensor FAULT).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from detect.blocks import CLASSES
from detect.metrics import HaloRule, Target
from detect.model.baselines import EmiThreshold, GprEnergyCfar
from detect.model.calibration import (
    average_precision,
    bootstrap_ci,
    expected_calibration_error,
    roc_auc,
)
from detect.model.classifier import Classifier
from detect.model.dataset import (
    METAL_CLUTTER,
    MIN_METAL_G,
    LaneRecipe,
    WindowSet,
    lane_windows,
    simulate_recipe_lane,
    window_labels,
)
from detect.windows import label_windows

AP_MINE = CLASSES.index("ap_mine")
#: ECE restricted to windows the detector does not call clearly empty.
ECE_P_MIN = 0.1
ECE_EQUAL_MASS_BINS = 10

#: One line per reported metric, for the model card.
METRIC_NOTES: dict[str, str] = {
    "auc, ap, ece": "clean windows: edge band 0.10-0.25 m excluded; mine = threat within "
    "0.10 m of the window centre (training labels); ECE in 15 equal-width bins",
    "pd_at_0.5, false_alarm_rate_at_0.5": "clean windows: share of mine / not-mine windows "
    "with P(mine) >= 0.5",
    "ece_equal_mass": "clean windows: ECE in 10 bins of equal window count (not swamped by "
    "the P ~ 0 windows)",
    "ece_p_gt_0_1 (share_p_gt_0_1)": "clean windows: equal-width ECE over the windows with "
    "P(mine) > 0.1 only (their share of all clean windows)",
    "auc_all_windows, ap_all_windows, ece_all_windows, ece_equal_mass_all_windows": "every "
    "window, nothing dropped: mine = window centre within the evaluation halo (0.10 m from "
    "the target EDGE, i.e. halo + size/2, as for alarms); the edge band beyond that is negative",
    "min_metal_ap_vs_clutter_auc": "clean windows: AP mines with < 1 g metal vs metal-clutter "
    "windows only (the hard contrast)",
    "min_metal_ap_vs_all_auc": "clean windows: AP mines with < 1 g metal vs every not-mine "
    "window (mostly easy background; the old min_metal_ap_auc)",
    "mine_among_clutter_vs_clutter_auc": "clean windows: mines with metal clutter within 0.5 m "
    "vs metal-clutter windows only",
    "mine_among_clutter_vs_all_auc": "clean windows: mines with metal clutter within 0.5 m vs "
    "every not-mine window (the old mine_among_metal_clutter_auc)",
    "*_pd_at_0.5, *_n_windows": "subset detection rate at P >= 0.5 and its window count",
    "branch_*_auc": "clean windows: AUC of the fused model's per-sensor branch score",
}


@dataclass
class HeldOutSet:
    """Every test window (training labels in ``windows.cls``) and the two labellings scored."""

    windows: WindowSet
    clean: np.ndarray  # (n,) bool: outside the edge band (the training / headline set)
    mine_edge: np.ndarray  # (n,) bool: centre within the evaluation halo of a threat's edge

    def __len__(self) -> int:
        return len(self.windows)

    @classmethod
    def of(cls, ws: WindowSet) -> HeldOutSet:
        """A set already without edge band (no all-windows labels: they equal the clean ones)."""
        return cls(ws, np.ones(len(ws), dtype=bool), ws.is_mine.copy())

    @property
    def clean_windows(self) -> WindowSet:
        return self.windows.subset(np.flatnonzero(self.clean))


def edge_rule_mine(
    centre_m: np.ndarray, truth: Sequence[Mapping[str, Any]], rule: HaloRule
) -> np.ndarray:
    """True where a window centre lies within ``rule``'s halo of a threat (edge inclusive)."""
    c = np.asarray(centre_m, dtype=np.float64).reshape(-1)
    threats = [
        t
        for t in (Target.from_dict(d) for d in truth if d.get("class") != "background")
        if t.is_threat
    ]
    if not threats or c.size == 0:
        return np.zeros(c.size, dtype=bool)
    x = np.array([t.x_m for t in threats])
    d = np.abs(c[:, None] - x[None, :]) - rule.radius_m(threats)[None, :]
    return np.asarray((d <= 1e-9).any(axis=1))


def lane_test_windows(r: LaneRecipe, rule: HaloRule) -> HeldOutSet:
    """One held-out lane with every window kept (see the module doc for the labels).

    The lane is made exactly as :func:`detect.model.dataset.simulate_lane_windows` makes it
    (``tests/test_model_quality.py`` checks that the clean part is identical). To keep the
    edge band without a second copy of the windowing code, :func:`lane_windows` is handed
    position markers instead of the truth: one marker per grid cell, each within its own
    halo only, carrying the cell position as ``metal_mass_g``; so every window is kept and
    its ``metal_g`` is its centre position. The labels are then made from the real truth.
    """
    if r.bg_keep < 1.0:
        raise ValueError("the quality test set keeps every background window (bg_keep=1)")
    rl = simulate_recipe_lane(r)
    lane, truth, soil, stretch, group = rl.lane, rl.truth, rl.soil, rl.stretch, rl.group

    grid = r.spec.grid_m
    pos = np.concatenate(
        [b.position_m[np.isfinite(b.position_m)] for b in (lane.gpr, lane.emi) if b is not None]
    )
    margin = 10.0 + sum(abs(float(v)) for v in r.offsets_m.values())
    k = np.arange(
        int(np.floor((pos.min() * stretch - margin) / grid)),
        int(np.ceil((pos.max() * stretch + margin) / grid)) + 1,
    )
    markers = [
        {"id": f"m{i}", "class": "background", "x_m": i * grid / stretch, "metal_mass_g": i * grid}
        for i in k.tolist()
    ]
    marker_spec = replace(r.spec, halo_m=0.49 * grid, guard_m=0.49 * grid)
    ws = lane_windows(
        lane.gpr, lane.emi, markers, r.dsp, r.offsets_m, marker_spec, r.stride, group, soil,
        stretch,
    )  # fmt: skip
    if np.isnan(ws.metal_g).any():
        raise RuntimeError("a window centre fell outside the position markers")
    centre_m = np.round(ws.metal_g.astype(np.float64) / grid).astype(np.int64) * grid

    # labels exactly as lane_windows makes them (same calls, same order)
    t_scaled = [dict(t, x_m=float(t["x_m"]) * stretch) for t in truth]
    clean = ~label_windows(centre_m, t_scaled, r.spec.halo_m, r.spec.guard_m).ambiguous
    labels, metal, near = window_labels(centre_m, t_scaled, r.spec.halo_m)
    ws = replace(ws, cls=labels.class_index, depth_m=labels.depth_m, metal_g=metal,
                 clutter_near=near)  # fmt: skip
    return HeldOutSet(ws, clean, edge_rule_mine(centre_m, t_scaled, rule))


def _full(p: HeldOutSet) -> HeldOutSet:
    """Full windows only: the figures compare detectors on the same windows; the scan's-end
    windows (masked GPR, no EMI) are checked by the short-sweep tests and benchmark."""
    from detect.model.dataset import full_windows

    keep = full_windows(p.windows)
    idx = np.flatnonzero(keep)
    return HeldOutSet(p.windows.subset(idx), p.clean[keep], p.mine_edge[keep])


def build_test_set(
    recipes: Sequence[LaneRecipe],
    rule: HaloRule,
    progress: Callable[[int], None] | None = None,
) -> HeldOutSet:
    """:func:`lane_test_windows` over the held-out lanes (about 0.5 s a lane)."""
    parts = []
    for r in recipes:
        parts.append(lane_test_windows(r, rule))
        if progress:
            progress(1)
    parts = [_full(p) for p in parts if len(p)]
    return HeldOutSet(
        WindowSet.concat([p.windows for p in parts]),
        np.concatenate([p.clean for p in parts]),
        np.concatenate([p.mine_edge for p in parts]),
    )


def ece_equal_mass(p: np.ndarray, y: np.ndarray, n_bins: int = ECE_EQUAL_MASS_BINS) -> float:
    """ECE over ``n_bins`` bins of (as near as possible) equal window count, sorted by p."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    bins = np.empty(p.size, dtype=np.int64)
    bins[order] = np.arange(p.size) * n_bins // p.size
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / p.size)


def ece_p_gt(p: np.ndarray, y: np.ndarray, p_min: float = ECE_P_MIN) -> float:
    """Equal-width ECE over the windows with ``p > p_min`` only."""
    sel = np.asarray(p) > p_min
    return expected_calibration_error(np.asarray(p)[sel], np.asarray(y)[sel])


def _pd_at_half(p: np.ndarray, y: np.ndarray) -> float:
    t = y.astype(bool)
    return float((p[t] >= 0.5).mean()) if t.any() else float("nan")


def _far_at_half(p: np.ndarray, y: np.ndarray) -> float:
    f = ~y.astype(bool)
    return float((p[f] >= 0.5).mean()) if f.any() else float("nan")


def score_report(
    p: np.ndarray, test: HeldOutSet | WindowSet, n_boot: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Metrics of one detector's P(mine) over the test windows (NaN scores are misses)."""
    ts = test if isinstance(test, HeldOutSet) else HeldOutSet.of(test)
    p_all = np.where(np.isfinite(p), p, 0.0).astype(np.float64)

    def ci(metric: Callable[[np.ndarray, np.ndarray], float], sel: np.ndarray, y: np.ndarray):
        return list(bootstrap_ci(metric, p_all[sel], y[sel], n_boot, seed=seed, groups=lanes[sel]))

    lanes = ts.windows.lane
    c = ts.clean
    y = ts.windows.is_mine  # training labels; scored on the clean windows only
    p = p_all[c]
    rep: dict[str, Any] = {
        "auc": ci(roc_auc, c, y),
        "ap": ci(average_precision, c, y),
        "ece": ci(expected_calibration_error, c, y),
        "ece_equal_mass": ci(ece_equal_mass, c, y),
        "ece_p_gt_0_1": ci(ece_p_gt, c, y),
        "share_p_gt_0_1": float((p > ECE_P_MIN).mean()),
        "pd_at_0.5": _pd_at_half(p, y[c]),
        "false_alarm_rate_at_0.5": _far_at_half(p, y[c]),
    }
    if not c.all():
        every = np.ones(len(ts), dtype=bool)
        ye = ts.mine_edge
        rep |= {
            "auc_all_windows": ci(roc_auc, every, ye),
            "ap_all_windows": ci(average_precision, every, ye),
            "ece_all_windows": ci(expected_calibration_error, every, ye),
            "ece_equal_mass_all_windows": ci(ece_equal_mass, every, ye),
            "pd_at_0.5_all_windows": _pd_at_half(p_all, ye),
            "false_alarm_rate_at_0.5_all_windows": _far_at_half(p_all, ye),
            "n_windows_all": len(ts),
            "n_mine_windows_all": int(ye.sum()),
        }
    w = ts.windows
    clutter = c & (w.cls == METAL_CLUTTER)
    subsets = {
        "min_metal_ap": c & (w.cls == AP_MINE) & (w.metal_g < MIN_METAL_G),
        "mine_among_clutter": c & y & w.clutter_near,
    }
    for name, sel in subsets.items():
        if sel.sum() == 0:
            continue
        rep[f"{name}_vs_clutter_auc"] = ci(roc_auc, sel | clutter, y)
        rep[f"{name}_vs_all_auc"] = ci(roc_auc, sel | (c & ~y), y)
        rep[f"{name}_pd_at_0.5"] = float((p_all[sel] >= 0.5).mean())
        rep[f"{name}_n_windows"] = int(sel.sum())
    rep["metal_clutter_n_windows"] = int(clutter.sum())
    return rep


def evaluate_all(
    models: Mapping[str, Classifier],
    test: HeldOutSet | WindowSet,
    cal: WindowSet,
    n_boot: int = 200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every shipped model (and the fused one with a sensor missing) plus both baselines."""
    ts = test if isinstance(test, HeldOutSet) else HeldOutSet.of(test)
    out: dict[str, dict[str, Any]] = {}
    gpr = None if ts.windows.gpr is None else ts.windows.gpr.astype(np.float32)
    emi = ts.windows.emi
    y_clean = ts.windows.is_mine[ts.clean]
    for name, clf in models.items():
        runs = {name: (gpr if clf.has_gpr else None, emi if clf.has_emi else None)}
        if clf.has_gpr and clf.has_emi:
            runs[f"{name} (EMI missing)"] = (gpr, None)
            runs[f"{name} (GPR missing)"] = (None, emi)
        for label, (g, e) in runs.items():
            if progress:
                progress(label)
            pred = clf.predict(g, e)
            out[label] = score_report(pred.p_mine, ts, n_boot)
            if label == name:
                for branch, s in pred.branch_scores.items():
                    if np.isfinite(s).any():
                        out[label][f"branch_{branch}_auc"] = roc_auc(s[ts.clean], y_clean)
    spec = next(iter(models.values())).spec if models else None
    if spec is not None and gpr is not None and cal.gpr is not None:
        cfar = GprEnergyCfar(spec).fit(cal.gpr.astype(np.float32), cal.is_mine)
        out[cfar.name] = score_report(cfar.predict(gpr, None).p_mine, ts, n_boot)
    if spec is not None and emi is not None and cal.emi is not None:
        thr = EmiThreshold(spec).fit(cal.emi, cal.is_mine)
        out[thr.name] = score_report(thr.predict(None, emi).p_mine, ts, n_boot)
    return out


TABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "clean windows (edge band 0.10-0.25 m excluded; headline, as in earlier cards)",
        (
            ("auc", "AUC [95% CI]"),
            ("ece", "ECE"),
            ("ece_equal_mass", "ECE equal-mass"),
            ("ece_p_gt_0_1", "ECE p>0.1"),
            ("ap", "AP"),
            ("pd_at_0.5", "Pd@0.5"),
            ("false_alarm_rate_at_0.5", "FA@0.5"),
        ),
    ),
    (
        "all windows (mine = centre within 0.10 m of a threat's edge; edge band kept)",
        (
            ("auc_all_windows", "AUC [95% CI]"),
            ("ece_all_windows", "ECE"),
            ("ece_equal_mass_all_windows", "ECE equal-mass"),
            ("ap_all_windows", "AP"),
            ("pd_at_0.5_all_windows", "Pd@0.5"),
            ("false_alarm_rate_at_0.5_all_windows", "FA@0.5"),
        ),
    ),
    (
        "hard subsets (clean windows): mines in subset vs metal-clutter windows / vs all not-mine",
        (
            ("min_metal_ap_vs_clutter_auc", "min-metal vs clutter"),
            ("min_metal_ap_vs_all_auc", "min-metal vs all"),
            ("mine_among_clutter_vs_clutter_auc", "in-clutter vs clutter"),
            ("mine_among_clutter_vs_all_auc", "in-clutter vs all"),
        ),
    ),
)


def _cell(v: Any) -> str:
    if isinstance(v, list | tuple):
        return f"{v[0]:.4f} [{v[1]:.3f},{v[2]:.3f}]"
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-"


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    out = []
    for title, cols in TABLES:
        head = f"{'detector':<26}" + "".join(f"{c[1]:>24}" for c in cols)
        out += [title, head, "-" * len(head)]
        for det, rep in results.items():
            out.append(f"{det:<26}" + "".join(f"{_cell(rep.get(k)):>24}" for k, _ in cols))
        out.append("")
    return "\n".join(out).rstrip()
