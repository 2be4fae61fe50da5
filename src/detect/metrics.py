"""Scoring of alarms against ground truth, as in metal-detector trials (CWA 14747 style).

Matching rules (see docs/evaluation.md for the reasoning):

* **Halo.** An alarm detects a target when it lies within the target's halo: along track
  ``|x_alarm - x_target| <= r``; with ``cross_track`` also across, ``hypot(dx, dy) <= r``.
  ``r = halo_m`` measured from the target's *edge* (``r = halo_m + size_m / 2``, CWA practice:
  the halo surrounds the object's outline) or from its centre (``halo_from="centre"``).
  The edge is inclusive (an alarm exactly on the halo boundary detects).
* **One alarm, one target.** An alarm detects at most one target; targets and alarms are
  paired by a maximum-cardinality matching that, among all maximum matchings, minimises the
  summed distance. So an alarm between two targets detects one of them, and the other one is
  detected only if another alarm lies in its halo.
* **Two alarms on one target** count as one detection and *no* false alarm (CWA practice: a
  deminer who excavates there finds the target). Such alarms are reported as ``duplicate``.
* Only threat targets (``ap_mine``, ``at_mine``, ``uxo``) count for Pd. An alarm not used
  by a threat target and outside every threat halo is a **false alarm**, including alarms on
  clutter: the ground holds no mine there, so the excavation was wasted. Clutter rejection is
  the fraction of clutter items with no false alarm in their halo.
* A threat target in ground that the detector reported as *not covered* (sensor FAULT)
  counts as missed for Pd (never a silent clear) and is listed separately.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import beta, rankdata

from detect.blocks import CLASSES, THREAT_CLASSES

TARGET_KEYS = ("id", "class", "kind", "x_m", "depth_m", "size_m", "metal_mass_g")

#: Default depth bins (m, to the target's top) and metal-content bins (g) for Pd breakdowns.
DEPTH_BINS_M: tuple[float, ...] = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, math.inf)
METAL_BINS_G: tuple[float, ...] = (0.0, 1.0, 10.0, 100.0, math.inf)

ALARM_TP = "detection"
ALARM_DUP = "duplicate"
ALARM_FA = "false_alarm"


class ScoringError(ValueError):
    """Ground truth or alarms cannot be scored; the message names what and where."""


# --------------------------------------------------------------------------- intervals


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a binomial proportion ``k / n``.

    ``n == 0`` gives ``(0, 1)``: no trials, no knowledge.
    """
    if n < 0 or k < 0 or k > n:
        raise ScoringError(f"clopper_pearson needs 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ScoringError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2.0, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - alpha / 2.0, k + 1, n - k))
    return lo, hi


def min_trials_for_lower_bound(target: float, confidence: float = 0.95) -> int:
    """Smallest n such that n out of n detections gives a Clopper-Pearson lower bound >= target.

    With all detected the lower bound is ``(alpha/2) ** (1/n)``; e.g. 367 mines for 0.99.
    """
    if not 0.0 < target < 1.0:
        raise ScoringError(f"target must be in (0, 1), got {target}")
    alpha = 1.0 - confidence
    return math.ceil(math.log(alpha / 2.0) / math.log(target))


def proportion(k: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n, confidence)
    return {"k": int(k), "n": int(n), "p": (k / n) if n else None, "ci": [lo, hi]}


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class Target:
    id: str
    cls: str
    kind: str
    x_m: float
    y_m: float
    depth_m: float
    size_m: float
    metal_mass_g: float
    soil: str

    @property
    def is_threat(self) -> bool:
        return self.cls in THREAT_CLASSES

    @property
    def is_clutter(self) -> bool:
        return self.cls in ("metal_clutter", "nonmetal_clutter")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "truth") -> Target:
        missing = [k for k in ("class", "x_m") if k not in d or d[k] is None]
        if missing:
            raise ScoringError(f"{where}: target {d.get('id', '?')} lacks {', '.join(missing)}")
        name = str(d["class"])
        if name not in CLASSES or name == "background":
            raise ScoringError(
                f"{where}: target {d.get('id', '?')} has class {name!r}, expected one of "
                f"{', '.join(c for c in CLASSES if c != 'background')}"
            )

        def num(key: str, default: float) -> float:
            v = d.get(key)
            if v is None or v == "":
                return default
            try:
                out = float(v)
            except (TypeError, ValueError):
                raise ScoringError(
                    f"{where}: target {d.get('id', '?')} has {key}={v!r}, not a number"
                ) from None
            return out

        x = num("x_m", math.nan)
        if not math.isfinite(x):
            raise ScoringError(f"{where}: target {d.get('id', '?')} has no finite x_m")
        return cls(
            id=str(d.get("id", "")),
            cls=name,
            kind=str(d.get("kind") or name),
            x_m=x,
            y_m=num("y_m", 0.0),
            depth_m=num("depth_m", math.nan),
            size_m=max(num("size_m", 0.0), 0.0),
            metal_mass_g=num("metal_mass_g", math.nan),
            soil=str(d.get("soil") or ""),
        )


@dataclass(frozen=True)
class HaloRule:
    halo_m: float = 0.10
    from_edge: bool = True
    cross_track: bool = False

    def radius_m(self, targets: Sequence[Target]) -> np.ndarray:
        size = np.array([t.size_m for t in targets], dtype=np.float64)
        return self.halo_m + (size / 2.0 if self.from_edge else np.zeros_like(size))


@dataclass
class Lane:
    """One labelled lane and one detector's output on it."""

    lane_id: str
    length_m: float
    width_m: float
    targets: list[Target]
    alarm_x_m: np.ndarray
    alarm_conf: np.ndarray
    alarm_y_m: np.ndarray | None = None
    alarm_depth_m: np.ndarray | None = None
    alarm_class: list[str] | None = None
    track_x_m: np.ndarray | None = None
    track_p: np.ndarray | None = None
    not_covered_m: list[tuple[float, float]] = field(default_factory=list)
    soil: str = ""
    #: along-track position of the lane start (the lane is [start_m, start_m + length_m])
    start_m: float = 0.0

    def __post_init__(self) -> None:
        self.alarm_x_m = np.asarray(self.alarm_x_m, dtype=np.float64).reshape(-1)
        self.alarm_conf = np.asarray(self.alarm_conf, dtype=np.float64).reshape(-1)
        if self.alarm_x_m.shape != self.alarm_conf.shape:
            raise ScoringError(
                f"lane {self.lane_id}: {self.alarm_x_m.size} alarm positions but "
                f"{self.alarm_conf.size} confidences"
            )
        if not np.all(np.isfinite(self.alarm_x_m)):
            raise ScoringError(f"lane {self.lane_id}: an alarm has a non-finite position")
        if np.any((self.alarm_conf < 0) | (self.alarm_conf > 1)) or not np.all(
            np.isfinite(self.alarm_conf)
        ):
            raise ScoringError(f"lane {self.lane_id}: an alarm confidence is outside [0, 1]")
        if not (self.length_m > 0 and self.width_m > 0):
            raise ScoringError(
                f"lane {self.lane_id}: length_m={self.length_m} and width_m={self.width_m} "
                "must be > 0"
            )

    @property
    def covered_length_m(self) -> float:
        end = self.start_m + self.length_m
        gone = sum(max(0.0, min(b, end) - max(a, self.start_m)) for a, b in self.not_covered_m)
        return max(self.length_m - gone, 0.0)

    def target_not_covered(self) -> np.ndarray:
        x = np.array([t.x_m for t in self.targets], dtype=np.float64)
        out = np.zeros(x.size, dtype=bool)
        for a, b in self.not_covered_m:
            out |= (x >= a) & (x <= b)
        return out


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class LaneMatch:
    """Result of matching one lane's alarms (above a threshold) to its targets.

    ``target_alarm[j]`` is the index of the alarm that detected target j (-1: missed or not a
    threat); ``alarm_kind[i]`` is detection / duplicate / false_alarm; ``clutter_alarmed[j]``
    says whether a false alarm lies in clutter target j's halo.
    """

    target_alarm: np.ndarray
    alarm_kind: np.ndarray
    alarm_target: np.ndarray
    clutter_alarmed: np.ndarray

    @property
    def n_false_alarms(self) -> int:
        return int(np.count_nonzero(self.alarm_kind == ALARM_FA))


def _in_halo(lane: Lane, keep: np.ndarray, rule: HaloRule) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n_alarms, n_targets) halo membership and the distance matrix."""
    tx = np.array([t.x_m for t in lane.targets], dtype=np.float64)
    dx = lane.alarm_x_m[keep][:, None] - tx[None, :]
    if rule.cross_track:
        if lane.alarm_y_m is None:
            raise ScoringError(f"lane {lane.lane_id}: cross_track scoring needs alarm y_m")
        ty = np.array([t.y_m for t in lane.targets], dtype=np.float64)
        dy = np.asarray(lane.alarm_y_m, dtype=np.float64)[keep][:, None] - ty[None, :]
        dist = np.hypot(dx, dy)
    else:
        dist = np.abs(dx)
    radius = rule.radius_m(lane.targets)
    return dist <= radius[None, :] + 1e-9, dist


def match_lane(lane: Lane, rule: HaloRule, threshold: float = 0.0) -> LaneMatch:
    """Match the alarms with confidence >= ``threshold`` to the lane's targets (module rules)."""
    n_t = len(lane.targets)
    keep = np.flatnonzero(lane.alarm_conf >= threshold)
    n_a = lane.alarm_x_m.size
    target_alarm = np.full(n_t, -1, dtype=np.int64)
    alarm_target = np.full(n_a, -1, dtype=np.int64)
    kind = np.full(n_a, "", dtype=object)
    kind[keep] = ALARM_FA
    clutter_alarmed = np.zeros(n_t, dtype=bool)
    if n_t == 0 or keep.size == 0:
        return LaneMatch(target_alarm, kind, alarm_target, clutter_alarmed)
    inside, dist = _in_halo(lane, keep, rule)
    threat = np.array([t.is_threat for t in lane.targets], dtype=bool)
    t_idx = np.flatnonzero(threat)
    if t_idx.size:
        ok = inside[:, t_idx]
        rows_any = np.flatnonzero(ok.any(axis=1))
        cols_any = np.flatnonzero(ok.any(axis=0))
        if rows_any.size and cols_any.size:
            sub_ok = ok[np.ix_(rows_any, cols_any)]
            sub_d = np.where(sub_ok, dist[np.ix_(rows_any, cols_any)], 0.0)
            # A forbidden pair costs more than all allowed pairs together, so the optimum
            # first maximises the number of allowed pairs, then minimises their distance.
            big = float(sub_d.sum()) + 1.0
            cost = np.where(sub_ok, sub_d, big * (1 + min(sub_ok.shape)))
            r, c = linear_sum_assignment(cost)
            good = sub_ok[r, c]
            a_sel = keep[rows_any[r[good]]]
            t_sel = t_idx[cols_any[c[good]]]
            target_alarm[t_sel] = a_sel
            alarm_target[a_sel] = t_sel
            kind[a_sel] = ALARM_TP
        in_threat_halo = ok.any(axis=1)
        dup = keep[in_threat_halo & (kind[keep] != ALARM_TP)]
        kind[dup] = ALARM_DUP
    fa_rows = kind[keep] == ALARM_FA
    clutter = np.array([t.is_clutter for t in lane.targets], dtype=bool)
    if fa_rows.any() and clutter.any():
        clutter_alarmed = inside[fa_rows].any(axis=0) & clutter
    return LaneMatch(target_alarm, kind, alarm_target, clutter_alarmed)


# --------------------------------------------------------------------------- sweeps


def area_m2(lanes: Sequence[Lane]) -> float:
    return float(sum(ln.covered_length_m * ln.width_m for ln in lanes))


def length_m(lanes: Sequence[Lane]) -> float:
    return float(sum(ln.covered_length_m for ln in lanes))


def _threat_count(lanes: Sequence[Lane]) -> int:
    return sum(t.is_threat for ln in lanes for t in ln.targets)


def counts_at(lanes: Sequence[Lane], rule: HaloRule, threshold: float) -> tuple[int, int, int]:
    """(detected threats, threat count, false alarms) at one threshold, not-covered = missed."""
    k = fa = 0
    for ln in lanes:
        m = match_lane(ln, rule, threshold)
        detected = m.target_alarm >= 0
        if ln.not_covered_m:
            detected &= ~ln.target_not_covered()
        k += int(np.count_nonzero(detected))
        fa += m.n_false_alarms
    return k, _threat_count(lanes), fa


def candidate_thresholds(lanes: Sequence[Lane], max_points: int = 400) -> np.ndarray:
    """Descending thresholds: every distinct alarm confidence (thinned to ``max_points``)."""
    conf = np.unique(np.concatenate([ln.alarm_conf for ln in lanes] + [np.empty(0)]))
    if conf.size > max_points:
        idx = np.unique(np.linspace(0, conf.size - 1, max_points).round().astype(int))
        conf = conf[idx]
    return np.concatenate([[math.inf], conf[::-1]])


def curve_from_counts(
    threshold: Sequence[float] | np.ndarray,
    k: Sequence[int],
    n: int,
    n_false_alarms: Sequence[int],
    area: float,
    length: float,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """FROC points from detections / false alarms counted at each threshold (descending)."""
    k_arr = np.asarray(k, dtype=np.int64)
    fa_arr = np.asarray(n_false_alarms, dtype=np.float64)
    ci = np.array([clopper_pearson(int(v), n, confidence) for v in k_arr]).reshape(-1, 2)
    return {
        "threshold": np.asarray(threshold, dtype=np.float64),
        "k": k_arr,
        "n": int(n),
        "pd": k_arr / n if n else np.full(k_arr.shape, np.nan),
        "pd_lo": ci[:, 0],
        "pd_hi": ci[:, 1],
        "n_false_alarms": fa_arr.astype(np.int64),
        "far_m2": fa_arr / area if area > 0 else np.full(fa_arr.shape, np.nan),
        "far_m": fa_arr / length if length > 0 else np.full(fa_arr.shape, np.nan),
    }


def froc(
    lanes: Sequence[Lane], rule: HaloRule, confidence: float = 0.95, max_points: int = 400
) -> dict[str, Any]:
    """FROC of a fixed alarm list: keep the alarms with confidence >= each threshold.

    The first point (threshold ``inf``) is "no alarm at all": Pd 0, FAR 0.
    """
    thr = candidate_thresholds(lanes, max_points)
    ks, fas = [], []
    for t in thr:
        k, _, fa = counts_at(lanes, rule, float(t))
        ks.append(k)
        fas.append(fa)
    return curve_from_counts(
        thr, ks, _threat_count(lanes), fas, area_m2(lanes), length_m(lanes), confidence
    )


def operating_point(curve: Mapping[str, Any], target_pd: float = 0.99) -> dict[str, Any]:
    """Highest threshold whose Pd lower confidence bound (CP) stays >= ``target_pd``.

    When no threshold reaches it (too few mines to prove it, or too many misses) the threshold
    with the highest lower bound is returned (the highest such threshold, so the fewest false
    alarms among equals) with ``target_met = False``: the caller must say so. Pd need not grow
    monotonically as the threshold falls (the alarm logic merges regions at low thresholds),
    so this is a search over the whole curve, not a walk down it.
    """
    lo = np.asarray(curve["pd_lo"])
    thr = np.asarray(curve["threshold"])
    ok = np.flatnonzero(lo >= target_pd)
    met = ok.size > 0
    i = int(ok[0]) if met else int(np.argmax(lo))
    return {
        "threshold": float(thr[i]),
        "target_pd": target_pd,
        "target_met": bool(met),
        "pd": float(curve["pd"][i]) if curve["n"] else None,
        "pd_ci": [float(curve["pd_lo"][i]), float(curve["pd_hi"][i])],
        "k": int(curve["k"][i]),
        "n": int(curve["n"]),
        "far_m2": float(curve["far_m2"][i]),
        "far_m": float(curve["far_m"][i]),
    }


# --------------------------------------------------------------------------- ROC / calibration


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate, thresholds descending); ties are grouped."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    if s.shape != y.shape:
        raise ScoringError(f"roc: {s.size} scores but {y.size} labels")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.empty(0, int)
    tp = np.cumsum(y)[last] if s.size else np.empty(0)
    fp = np.cumsum(~y)[last] if s.size else np.empty(0)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.r_[0.0, np.full(tp.shape, np.nan)]
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.r_[0.0, np.full(fp.shape, np.nan)]
    return fpr, tpr, np.r_[math.inf, s[last]]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney U)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Equal-width reliability diagram and expected calibration error.

    ECE = sum_b (n_b / N) |mean(label in b) - mean(prob in b)|. Bin b holds p in
    [b/n, (b+1)/n), the last bin is closed at 1.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ScoringError(f"reliability: {p.size} probabilities but {y.size} labels")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ScoringError("reliability: probabilities must be finite and in [0, 1]")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(count > 0, sum_p / count, np.nan)
        freq = np.where(count > 0, sum_y / count, np.nan)
    n = p.size
    ece = float(np.nansum(count / n * np.abs(freq - conf))) if n else math.nan
    return {
        "bin_edges": np.linspace(0.0, 1.0, n_bins + 1),
        "count": count.astype(np.int64),
        "mean_p": conf,
        "frac_pos": freq,
        "ece": ece,
    }


def track_labels(lane: Lane, rule: HaloRule, guard_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Window labels along the track: 1 inside a threat halo, 0 farther than ``guard_m``
    beyond every threat halo, and dropped in between (ambiguous ground).

    Returns (mask of kept track samples, labels of kept samples).
    """
    if lane.track_x_m is None:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    x = np.asarray(lane.track_x_m, dtype=np.float64)
    threats = [t for t in lane.targets if t.is_threat]
    if not threats:
        keep = np.isfinite(x)
        return keep, np.zeros(int(keep.sum()), dtype=bool)
    tx = np.array([t.x_m for t in threats])
    r = rule.radius_m(threats)
    d = np.abs(x[:, None] - tx[None, :]) - r[None, :]
    dmin = d.min(axis=1)
    pos = dmin <= 1e-9
    neg = dmin > guard_m
    keep = (pos | neg) & np.isfinite(x)
    if lane.not_covered_m:
        for a, b in lane.not_covered_m:
            keep &= ~((x >= a) & (x <= b))
    return keep, pos[keep]


# --------------------------------------------------------------------------- breakdowns


def bin_label(value: float, edges: Sequence[float], unit: str, scale: float = 1.0) -> str:
    if not math.isfinite(value):
        return "unknown"
    for lo, hi in itertools.pairwise(edges):
        if lo <= value < hi:
            if math.isinf(hi):
                return f">={lo * scale:g} {unit}"
            return f"{lo * scale:g}-{hi * scale:g} {unit}"
    return "out of range"


def grouped_pd(
    items: Iterable[tuple[Target, bool]],
    key: Callable[[Target], str],
    confidence: float = 0.95,
) -> dict[str, dict[str, Any]]:
    """Pd with CP interval for each group of threat targets."""
    k: dict[str, int] = {}
    n: dict[str, int] = {}
    for t, det in items:
        g = key(t)
        n[g] = n.get(g, 0) + 1
        k[g] = k.get(g, 0) + int(det)
    return {g: proportion(k[g], n[g], confidence) for g in sorted(n, key=group_order)}


def group_order(label: str) -> tuple[int, float, str]:
    """Sort key: numeric bins ("5-10 cm", ">=30 cm") by their lower edge, then names."""
    head = label.lstrip(">=").split("-")[0].split(" ")[0]
    try:
        return (0, float(head), label)
    except ValueError:
        return (1, 0.0, label)


def score_lanes(
    lanes: Sequence[Lane],
    rule: HaloRule,
    threshold: float,
    *,
    confidence: float = 0.95,
    depth_bins_m: Sequence[float] = DEPTH_BINS_M,
    metal_bins_g: Sequence[float] = METAL_BINS_G,
    guard_m: float = 0.15,
    ece_bins: int = 10,
) -> dict[str, Any]:
    """Every trial figure at one alarm threshold (plus threshold-free ROC/AUC/ECE on the track)."""
    threats: list[tuple[Target, bool]] = []
    not_covered_threats = 0
    clutter: list[tuple[Target, bool]] = []
    loc_dx: list[float] = []
    loc_dd: list[float] = []
    n_fa = n_dup = n_tp = 0
    alarm_p: list[float] = []
    alarm_y: list[bool] = []
    for ln in lanes:
        m = match_lane(ln, rule, threshold)
        nc = ln.target_not_covered() if ln.not_covered_m else np.zeros(len(ln.targets), bool)
        for j, t in enumerate(ln.targets):
            if t.is_threat:
                det = bool(m.target_alarm[j] >= 0 and not nc[j])
                not_covered_threats += int(nc[j])
                threats.append((t, det))
                if det:
                    i = int(m.target_alarm[j])
                    loc_dx.append(float(ln.alarm_x_m[i] - t.x_m))
                    if ln.alarm_depth_m is not None and math.isfinite(t.depth_m):
                        d = float(ln.alarm_depth_m[i])
                        if math.isfinite(d):
                            loc_dd.append(d - t.depth_m)
            elif t.is_clutter:
                clutter.append((t, not bool(m.clutter_alarmed[j])))
        n_fa += m.n_false_alarms
        n_dup += int(np.count_nonzero(m.alarm_kind == ALARM_DUP))
        n_tp += int(np.count_nonzero(m.alarm_kind == ALARM_TP))
        used = m.alarm_kind != ""
        alarm_p.extend(ln.alarm_conf[used].tolist())
        alarm_y.extend((m.alarm_kind[used] != ALARM_FA).tolist())

    k = sum(d for _, d in threats)
    area = area_m2(lanes)
    length = length_m(lanes)
    out: dict[str, Any] = {
        "threshold": threshold,
        "pd": proportion(k, len(threats), confidence),
        "n_threats_not_covered": not_covered_threats,
        "n_alarms": n_tp + n_dup + n_fa,
        "n_detection_alarms": n_tp,
        "n_duplicate_alarms": n_dup,
        "n_false_alarms": n_fa,
        "area_m2": area,
        "length_m": length,
        "far_m2": n_fa / area if area > 0 else None,
        "far_m": n_fa / length if length > 0 else None,
        "pd_by_class": grouped_pd(threats, lambda t: t.cls, confidence),
        "pd_by_kind": grouped_pd(threats, lambda t: t.kind, confidence),
        "pd_by_metal": grouped_pd(
            threats, lambda t: bin_label(t.metal_mass_g, metal_bins_g, "g"), confidence
        ),
        "pd_by_depth": grouped_pd(
            threats, lambda t: bin_label(t.depth_m, depth_bins_m, "cm", 100.0), confidence
        ),
        "pd_by_soil": grouped_pd(threats, lambda t: t.soil or "unknown", confidence),
    }
    metal_clutter = [(t, r) for t, r in clutter if t.cls == "metal_clutter"]
    out["clutter_rejection"] = {
        "all": proportion(sum(r for _, r in clutter), len(clutter), confidence),
        "metal": proportion(sum(r for _, r in metal_clutter), len(metal_clutter), confidence),
        "by_kind": grouped_pd(clutter, lambda t: t.kind, confidence),
    }
    out["localisation"] = _error_stats(loc_dx)
    out["depth_error"] = _error_stats(loc_dd)
    if alarm_p:
        rel = reliability(np.array(alarm_p), np.array(alarm_y), ece_bins)
        out["alarm_calibration"] = {"ece": rel["ece"], "n": len(alarm_p)}
    out["windows"] = window_metrics(lanes, rule, guard_m, ece_bins)
    return out


def _error_stats(err: Sequence[float]) -> dict[str, Any]:
    if not err:
        return {"n": 0}
    e = np.asarray(err, dtype=np.float64)
    return {
        "n": int(e.size),
        "bias_m": float(e.mean()),
        "rms_m": float(np.sqrt(np.mean(e**2))),
        "median_abs_m": float(np.median(np.abs(e))),
        "p95_abs_m": float(np.percentile(np.abs(e), 95)),
    }


def window_metrics(
    lanes: Sequence[Lane], rule: HaloRule, guard_m: float, ece_bins: int = 10
) -> dict[str, Any]:
    """ROC / AUC / reliability over the track score profile (one window per track sample)."""
    ps, ys = [], []
    for ln in lanes:
        if ln.track_p is None or ln.track_x_m is None:
            continue
        keep, y = track_labels(ln, rule, guard_m)
        p = np.asarray(ln.track_p, dtype=np.float64)[keep]
        finite = np.isfinite(p)
        ps.append(np.clip(p[finite], 0.0, 1.0))
        ys.append(y[finite])
    if not ps or sum(p.size for p in ps) == 0:
        return {"n": 0}
    p = np.concatenate(ps)
    y = np.concatenate(ys)
    fpr, tpr, _ = roc_curve(p, y)
    rel = reliability(p, y, ece_bins)
    return {
        "n": int(p.size),
        "n_pos": int(y.sum()),
        "auc": auc(p, y),
        "ece": rel["ece"],
        "roc": {"fpr": fpr, "tpr": tpr},
        "reliability": rel,
    }
