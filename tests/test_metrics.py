"""Scoring rules on hand-made lanes with known answers, intervals against scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from detect.metrics import (
    ALARM_DUP,
    ALARM_FA,
    ALARM_TP,
    HaloRule,
    Lane,
    ScoringError,
    Target,
    auc,
    clopper_pearson,
    froc,
    match_lane,
    min_trials_for_lower_bound,
    operating_point,
    reliability,
    roc_curve,
    score_lanes,
)

POINT = HaloRule(halo_m=0.10, from_edge=True)


def tgt(x: float, cls: str = "ap_mine", size: float = 0.0, **kw: object) -> Target:
    d = {"id": f"t{x}", "class": cls, "kind": kw.pop("kind", cls), "x_m": x, "size_m": size}
    d.update(kw)
    return Target.from_dict(d)


def lane(
    targets: list[Target],
    ax: list[float],
    conf: list[float] | None = None,
    length: float = 10.0,
    width: float = 1.0,
    **kw: object,
) -> Lane:
    conf = [0.9] * len(ax) if conf is None else conf
    return Lane("L", length, width, targets, np.array(ax, float), np.array(conf, float), **kw)


# ----------------------------------------------------------------- intervals


@pytest.mark.parametrize(
    ("k", "n"),
    [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (97, 100), (1, 367), (367, 367), (50, 51)],
)
@pytest.mark.parametrize("conf", [0.95, 0.9])
def test_clopper_pearson_matches_scipy(k: int, n: int, conf: float) -> None:
    ref = binomtest(k, n).proportion_ci(confidence_level=conf, method="exact")
    lo, hi = clopper_pearson(k, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_clopper_pearson_no_trials_and_bad_input() -> None:
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ScoringError):
        clopper_pearson(3, 2)


def test_min_trials_for_lower_bound_is_tight() -> None:
    n = min_trials_for_lower_bound(0.99)
    assert n == 368  # 0.025 ** (1/n) >= 0.99: log(0.025) / log(0.99) = 367.04
    assert clopper_pearson(n, n)[0] >= 0.99
    assert clopper_pearson(n - 1, n - 1)[0] < 0.99


# ----------------------------------------------------------------- halo matching


def test_halo_edge_is_inclusive_and_measured_from_outline() -> None:
    # point target: halo 0.10 m from the centre
    inside = match_lane(lane([tgt(5.0)], [5.10]), POINT)
    outside = match_lane(lane([tgt(5.0)], [5.1001]), POINT)
    assert inside.target_alarm.tolist() == [0]
    assert outside.target_alarm.tolist() == [-1]
    assert outside.alarm_kind.tolist() == [ALARM_FA]
    # 0.30 m target: the halo is 0.10 m beyond its edge, so 0.25 m from its centre
    big = tgt(5.0, "at_mine", size=0.30)
    assert match_lane(lane([big], [4.75]), POINT).target_alarm.tolist() == [0]
    assert match_lane(lane([big], [4.7499]), POINT).target_alarm.tolist() == [-1]
    centre = HaloRule(0.10, from_edge=False)
    assert match_lane(lane([big], [4.85]), centre).target_alarm.tolist() == [-1]


def test_two_alarms_on_one_target_is_one_detection_no_false_alarm() -> None:
    m = match_lane(lane([tgt(3.0)], [2.95, 3.02]), POINT)
    assert m.target_alarm.tolist() == [1]  # the nearer alarm is the detection
    assert sorted(m.alarm_kind.tolist()) == sorted([ALARM_TP, ALARM_DUP])
    assert m.n_false_alarms == 0


def test_one_alarm_between_two_targets_detects_only_one() -> None:
    m = match_lane(lane([tgt(3.0), tgt(3.16)], [3.08]), POINT)
    assert int((m.target_alarm >= 0).sum()) == 1
    assert m.alarm_kind.tolist() == [ALARM_TP]


def test_matching_maximises_detections_not_greedy_nearest() -> None:
    # alarm 0 is nearest to target B but is the only alarm that can reach target A;
    # greedy nearest-first would give A missed. Maximum matching detects both.
    targets = [tgt(1.00), tgt(1.15)]
    m = match_lane(lane(targets, [1.09, 1.24]), POINT)
    assert m.target_alarm.tolist() == [0, 1]
    assert m.n_false_alarms == 0


def test_empty_lane_and_lane_without_targets() -> None:
    m = match_lane(lane([], []), POINT)
    assert m.target_alarm.size == 0 and m.alarm_kind.size == 0
    m = match_lane(lane([], [1.0, 2.0]), POINT)
    assert m.n_false_alarms == 2
    res = score_lanes([lane([], [1.0, 2.0], length=4.0, width=0.5)], POINT, 0.5)
    assert res["pd"]["n"] == 0 and res["pd"]["p"] is None
    assert res["pd"]["ci"] == [0.0, 1.0]
    assert res["far_m2"] == pytest.approx(2 / (4.0 * 0.5))
    assert res["far_m"] == pytest.approx(2 / 4.0)
    res = score_lanes([lane([tgt(1.0)], [])], POINT, 0.5)
    assert res["pd"]["k"] == 0 and res["pd"]["n"] == 1 and res["n_false_alarms"] == 0


def test_alarm_on_clutter_is_false_alarm_and_costs_clutter_rejection() -> None:
    targets = [tgt(2.0), tgt(5.0, "metal_clutter", kind="nail"), tgt(8.0, "metal_clutter")]
    res = score_lanes([lane(targets, [2.01, 5.03])], POINT, 0.5)
    assert res["pd"]["k"] == 1 and res["n_false_alarms"] == 1
    assert res["clutter_rejection"]["metal"]["k"] == 1  # the one at 8 m was not alarmed
    assert res["clutter_rejection"]["metal"]["n"] == 2


def test_threshold_drops_low_confidence_alarms() -> None:
    ln = lane([tgt(2.0), tgt(6.0)], [2.0, 6.0, 9.0], conf=[0.9, 0.3, 0.6])
    assert score_lanes([ln], POINT, 0.5)["pd"]["k"] == 1
    assert score_lanes([ln], POINT, 0.5)["n_false_alarms"] == 1
    assert score_lanes([ln], POINT, 0.2)["pd"]["k"] == 2


def test_not_covered_threat_counts_as_missed() -> None:
    ln = lane([tgt(2.0), tgt(6.0)], [2.0, 6.0], not_covered_m=[(5.5, 7.0)], length=10.0)
    res = score_lanes([ln], POINT, 0.5)
    assert res["pd"]["k"] == 1 and res["n_threats_not_covered"] == 1
    assert res["area_m2"] == pytest.approx(8.5)


def test_cross_track_halo() -> None:
    rule = HaloRule(0.10, from_edge=False, cross_track=True)
    t = tgt(1.0, y_m=0.3)
    near = lane([t], [1.06], alarm_y_m=np.array([0.38]))  # distance 0.1
    far = lane([t], [1.0], alarm_y_m=np.array([0.45]))
    assert match_lane(near, rule).target_alarm.tolist() == [0]
    assert match_lane(far, rule).target_alarm.tolist() == [-1]


def test_bad_truth_is_one_clear_error() -> None:
    with pytest.raises(ScoringError, match="class 'tank'"):
        Target.from_dict({"id": "a", "class": "tank", "x_m": 1.0})
    with pytest.raises(ScoringError, match="lacks x_m"):
        Target.from_dict({"id": "a", "class": "ap_mine"})


# ----------------------------------------------------------------- FROC and operating point


def test_froc_by_hand() -> None:
    # 2 mines, alarms at conf 0.9 (on mine A), 0.7 (false), 0.5 (on mine B), area 10 m2
    ln = lane([tgt(2.0), tgt(6.0)], [2.0, 4.0, 6.0], conf=[0.9, 0.7, 0.5])
    c = froc([ln], POINT)
    assert c["threshold"].tolist() == [math.inf, 0.9, 0.7, 0.5]
    assert c["k"].tolist() == [0, 1, 1, 2]
    assert c["n_false_alarms"].tolist() == [0, 0, 1, 1]
    assert c["far_m2"].tolist() == pytest.approx([0, 0, 0.1, 0.1])
    op = operating_point(c, target_pd=0.1)
    # CP lower bound of 1/2 is 0.0126 < 0.1, of 2/2 is 0.158 >= 0.1
    assert op["threshold"] == 0.5 and op["target_met"]
    op = operating_point(c, target_pd=0.99)
    assert not op["target_met"] and op["threshold"] == 0.5


def test_operating_point_with_many_mines() -> None:
    # 400 mines, each detected by an alarm of confidence rank-dependent; 3 missed
    n = 400
    xs = np.arange(n) * 1.0 + 0.5
    targets = [tgt(float(x)) for x in xs]
    conf = np.linspace(0.99, 0.2, n)
    ln = lane(targets, xs[: n - 3].tolist(), conf[: n - 3].tolist(), length=float(n))
    c = froc([ln], POINT)
    op = operating_point(c, target_pd=0.97)
    ref_lo = [binomtest(k, n).proportion_ci(method="exact").low for k in range(n + 1)]
    k_needed = next(k for k in range(n + 1) if ref_lo[k] >= 0.97)
    assert op["k"] == k_needed
    assert op["threshold"] == pytest.approx(conf[k_needed - 1])


# ----------------------------------------------------------------- ROC / AUC / ECE


def _auc_bruteforce(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
    return wins / (pos.size * neg.size)


def test_auc_against_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(3)
    s = rng.integers(0, 6, 80) / 5.0
    y = rng.random(80) < 0.4
    assert auc(s, y) == pytest.approx(_auc_bruteforce(s, y), abs=1e-12)
    fpr, tpr, _ = roc_curve(s, y)
    assert np.trapezoid(tpr, fpr) == pytest.approx(_auc_bruteforce(s, y), abs=1e-12)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1


def test_auc_perfect_and_undefined() -> None:
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1], bool)))


def test_ece_by_hand() -> None:
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 1.0])
    y = np.array([0, 1, 1, 1, 1, 1], bool)
    rel = reliability(p, y, n_bins=10)
    # bins: [0,0.1): p=.05, freq .5 -> |.5-.05|=.45, w 2/6; [0.5,0.6): .55 vs 1 -> .45, w 1/6;
    # [0.9,1]: p mean (0.95+0.95+1)/3, freq 1 -> 0.0333, w 3/6
    expect = 2 / 6 * 0.45 + 1 / 6 * 0.45 + 3 / 6 * (1 - (2.9 / 3))
    assert rel["ece"] == pytest.approx(expect, abs=1e-12)
    assert rel["count"].sum() == 6


def test_perfectly_calibrated_sample_has_small_ece() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = rng.random(p.size) < p
    assert reliability(p, y)["ece"] < 0.01
    assert reliability(np.full(1000, 0.9), np.zeros(1000, bool))["ece"] == pytest.approx(0.9)


def test_window_metrics_from_track() -> None:
    x = np.linspace(0, 10, 1001)
    t = [tgt(5.0)]
    p = np.where(np.abs(x - 5.0) <= 0.1 + 1e-9, 0.9, 0.1)
    ln = lane(t, [], track_x_m=x, track_p=p)
    w = score_lanes([ln], POINT, 0.5, guard_m=0.15)["windows"]
    assert w["auc"] == 1.0
    assert w["n_pos"] == 21  # 4.90 .. 5.10 step 0.01
    assert w["n"] == 1001 - 2 * 15  # guard band of 0.15 m each side is dropped


def test_not_covered_clipped_to_a_lane_that_does_not_start_at_zero() -> None:
    ln = Lane(
        "L",
        4.0,
        1.0,
        [tgt(11.0)],
        np.array([11.0]),
        np.array([0.9]),
        not_covered_m=[(9.0, 10.5), (13.5, 20.0)],
        start_m=10.0,
    )
    assert ln.covered_length_m == pytest.approx(4.0 - 0.5 - 0.5)
    assert score_lanes([ln], POINT, 0.5)["pd"]["k"] == 1


def test_operating_point_when_pd_falls_again_at_low_thresholds() -> None:
    # merged alarm regions at low thresholds: Pd 2/2 at 0.5 but 1/2 at 0.2
    curve = {
        "threshold": np.array([math.inf, 0.8, 0.5, 0.2]),
        "k": np.array([0, 1, 2, 1]),
        "n": 2,
        "pd": np.array([0, 0.5, 1.0, 0.5]),
        "pd_lo": np.array([clopper_pearson(k, 2)[0] for k in (0, 1, 2, 1)]),
        "pd_hi": np.array([clopper_pearson(k, 2)[1] for k in (0, 1, 2, 1)]),
        "far_m2": np.array([0, 0.1, 0.2, 0.05]),
        "far_m": np.array([0, 0.1, 0.2, 0.05]),
    }
    op = operating_point(curve, 0.99)
    assert not op["target_met"] and op["threshold"] == 0.5 and op["k"] == 2
