"""Alarm logic against profiles whose right answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from detect.alarms import AlarmConfig, AlarmLogic, ScorePoint, pick_alarms


def profile(x: np.ndarray, p: np.ndarray, **kw: object) -> list[ScorePoint]:
    return [
        ScorePoint(position_m=float(a), p_mine=float(b), host_time_s=float(a))
        for a, b in zip(x, p, strict=True)
    ]


def bumps(
    x: np.ndarray, centres: list[float], heights: list[float], width: float = 0.05
) -> np.ndarray:
    p = np.full_like(x, 0.05)
    for c, h in zip(centres, heights, strict=True):
        p = np.maximum(p, h * np.exp(-0.5 * ((x - c) / width) ** 2))
    return p


X = np.arange(0, 10, 0.01)


def test_one_alarm_per_separated_bump_at_its_peak() -> None:
    centres = [1.0, 3.2, 6.55, 9.0]
    alarms = pick_alarms(profile(X, bumps(X, centres, [0.9, 0.7, 0.95, 0.6])))
    assert [round(a.position_m, 2) for a in alarms] == centres
    assert [round(a.confidence, 2) for a in alarms] == [0.9, 0.7, 0.95, 0.6]


def test_bumps_below_threshold_give_nothing() -> None:
    cfg = AlarmConfig(threshold=0.5, hysteresis=0.1, suspect_floor=None)  # no suspect tier
    assert pick_alarms(profile(X, bumps(X, [2.0, 5.0], [0.45, 0.49])), cfg) == []


def test_nms_keeps_the_stronger_of_two_close_peaks_whichever_comes_first() -> None:
    cfg = AlarmConfig(threshold=0.5, hysteresis=0.1, nms_radius_m=0.25)
    for order in ([0.7, 0.9], [0.9, 0.7]):
        # two peaks 0.2 m apart with a dip to 0.2 between them: two regions, one alarm
        p = bumps(X, [4.0, 4.2], order, width=0.03)
        alarms = pick_alarms(profile(X, p), cfg)
        strongest = 4.0 if order[0] > order[1] else 4.2
        assert len(alarms) == 1
        assert alarms[0].position_m == pytest.approx(strongest)


def test_peaks_farther_than_the_radius_are_both_declared() -> None:
    cfg = AlarmConfig(nms_radius_m=0.25)
    alarms = pick_alarms(profile(X, bumps(X, [4.0, 4.3], [0.7, 0.9], width=0.03)), cfg)
    assert [round(a.position_m, 2) for a in alarms] == [4.0, 4.3]


def test_hysteresis_a_score_hovering_at_the_threshold_is_one_alarm() -> None:
    rng = np.random.default_rng(1)
    p = np.full_like(X, 0.05)
    region = (X > 3) & (X < 3.6)
    p[region] = 0.5 + rng.uniform(-0.08, 0.08, region.sum())  # never below 0.4 inside
    p[np.argmin(np.abs(X - 3.3))] = 0.8
    cfg = AlarmConfig(threshold=0.5, hysteresis=0.1, nms_radius_m=0.0)
    alarms = pick_alarms(profile(X, p), cfg)
    assert len(alarms) == 1
    assert alarms[0].position_m == pytest.approx(3.3)
    # without hysteresis the same profile crosses the threshold many times
    flicker = pick_alarms(
        profile(X, p), AlarmConfig(threshold=0.5, hysteresis=0.0, nms_radius_m=0.0)
    )
    assert len(flicker) > 5


def test_a_saturated_flat_top_is_placed_at_its_middle() -> None:
    p = np.where((X >= 2.0) & (X <= 2.4), 1.0, 0.0)
    (alarm,) = pick_alarms(profile(X, p))
    assert alarm.position_m == pytest.approx(2.2, abs=0.006)


def test_two_saturated_objects_far_apart_are_each_an_alarm_even_without_a_deep_dip() -> None:
    """Equal (saturated) maxima 1 m apart with the score at 0.55 between: not a deep dip, so
    one flat top; its middle lies on neither object, so its ends are alarms too."""
    p = np.maximum(bumps(X, [3.0, 4.0], [1.0, 1.0], width=0.03), np.where(
        (X > 3.0) & (X < 4.0), 0.55, 0.0))  # fmt: skip
    p = np.round(p, 3)  # the tops are exactly 1.0, as a saturated float32 score is
    for x, q in ((X, p), (-X[::-1], p[::-1])):
        got = sorted(abs(round(a.position_m, 2)) for a in pick_alarms(profile(x, q)))
        assert got == [3.0, 3.5, 4.0]


def test_streaming_alarm_is_declared_once_the_head_is_past_the_radius() -> None:
    cfg = AlarmConfig(nms_radius_m=0.25)
    logic = AlarmLogic(cfg)
    p = bumps(X, [2.0], [0.9])
    when = None
    for pt in profile(X, p):
        if logic.feed(pt):
            when = pt.position_m
            break
    assert when is not None
    assert 2.25 < when <= 2.27


def test_alarm_takes_lat_lon_from_the_locator_and_none_without_fix() -> None:
    located = pick_alarms(
        profile(X, bumps(X, [1.0, 5.0], [0.9, 0.9])),
        locate=lambda t, _sensor: (45.0, t, 0.1) if t < 3 else None,
    )
    assert located[0].lon_deg == pytest.approx(1.0) and located[0].lat_deg == 45.0
    assert located[1].lat_deg is None and located[1].lon_deg is None
    assert located[1].position_m == pytest.approx(5.0)
    assert len({a.alarm_id for a in located}) == 2


def test_class_is_the_most_likely_non_background_class() -> None:
    pt = ScorePoint(1.0, 0.9, class_probs={"background": 0.1, "at_mine": 0.6, "uxo": 0.3})
    assert pt.class_name == "at_mine"


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        AlarmConfig(threshold=0.3, hysteresis=0.4)


PD_FIRST = AlarmConfig(threshold=0.1, hysteresis=0.05, nms_radius_m=0.25)


def test_two_peaks_in_one_region_with_a_deep_dip_are_two_alarms() -> None:
    # 0.98 and 0.88, 0.6 m apart; between them the score falls to ~0.11, never below re-arm
    p = np.maximum(bumps(X, [4.0, 4.6], [0.98, 0.88], width=0.08), 0.11)
    alarms = pick_alarms(profile(X, p), PD_FIRST)
    assert [round(a.position_m, 2) for a in alarms] == [4.0, 4.6]


def test_a_broad_response_stays_one_alarm() -> None:
    p = np.maximum(bumps(X, [5.0], [0.9], width=0.25), 0.11)  # wide, no dip
    (alarm,) = pick_alarms(profile(X, p), PD_FIRST)
    assert alarm.position_m == pytest.approx(5.0, abs=0.01)


def test_a_peak_is_declared_without_waiting_for_a_long_region_to_end() -> None:
    p = np.maximum(bumps(X, [1.0], [0.9], width=0.05), 0.07)  # stays above re-arm (0.05)
    logic = AlarmLogic(PD_FIRST)
    when = None
    for pt in profile(X, p):
        if logic.feed(pt):
            when = pt.position_m
            break
    assert when is not None and when <= 1.0 + 0.25 + 0.02


def test_a_flat_top_timed_by_two_sensors_keeps_one_sensors_clock() -> None:
    """The alarm's lat/lon is placed from one sensor's trace time: averaging the GPR's time
    with the EMI's (which passes the same ground earlier) would misplace it."""
    xs = np.round(np.arange(0, 3, 0.02), 2)

    def located(end_sensor: str) -> tuple[float, float, str | None]:
        pts = [
            ScorePoint(
                position_m=float(x),
                p_mine=0.9 if 1.0 <= x <= 1.1 else 0.01,
                host_time_s=10 + 2 * float(x),
                time_sensor="gpr" if x <= 1.04 else end_sensor,
            )
            for x in xs
        ]
        asked: list[tuple[float, str | None]] = []
        (alarm,) = pick_alarms(pts, None, locate=lambda t, s: asked.append((t, s)) or (0, 0, None))
        ((t, s),) = asked
        return alarm.position_m, t, s

    assert located("gpr") == (pytest.approx(1.05), pytest.approx(12.1), "gpr")  # the mean
    assert located("emi") == (pytest.approx(1.05), pytest.approx(12.0), "gpr")  # one clock


def test_two_objects_farther_apart_than_the_radius_with_a_dip_between_are_always_two_alarms() -> (
    None
):
    """Generated pairs (a mine beside a clutter object): whenever the shipped settings' rule
    says two (peaks more than ``nms_radius_m`` apart, the score between them below
    ``split_fraction`` of the lower, whether or not it falls below re-arm), both are
    declared, each at its own peak, in batch and streaming alike."""
    cfg = AlarmConfig()
    assert cfg.nms_radius_m <= 0.2  # a mine 20-25 cm from clutter is its own alarm
    rng = np.random.default_rng(15)
    x = np.round(np.arange(0, 3, 0.01), 2)
    tried = 0
    for _ in range(400):
        d = rng.uniform(cfg.nms_radius_m + 0.015, 0.8)
        c = (1.0, round(1.0 + d, 2))
        h = rng.uniform(cfg.threshold + 0.05, 1.0, size=2)
        w = rng.uniform(0.02, 0.08, size=2)
        floor = rng.uniform(0.0, cfg.threshold)
        p = np.full_like(x, floor)
        for ci, hi, wi in zip(c, h, w, strict=True):
            p = np.maximum(p, hi * np.exp(-0.5 * ((x - ci) / wi) ** 2))
        between = (x > c[0]) & (x < c[1])
        if p[between].min() >= cfg.split_fraction * h.min():
            continue  # the rule itself says one alarm: not this test's case
        tried += 1
        alarms = pick_alarms(profile(x, p), cfg)
        logic = AlarmLogic(cfg)
        live = [a for pt in profile(x, p) for a in logic.feed(pt)] + logic.finish()
        for got in (alarms, live):
            main = [a for a in got if a.tier == "alarm"]
            assert [round(a.position_m, 2) for a in main] == list(c), (d, h, w, floor)
    assert tried > 200


def test_a_suppressed_candidate_suppresses_nothing() -> None:
    """Three peaks in a row: the middle one is suppressed by the stronger last one, so the
    first (0.30 m from the last) is still an alarm."""
    x = np.array([0.0, 0.05, 0.15, 0.22, 0.30, 0.60])
    cfg = AlarmConfig(nms_radius_m=0.2, suspect_floor=None)
    for dip in (0.20, 0.0):  # the last two peaks in one region, and in two
        p = np.array([0.50, 0.0, 0.60, dip, 0.90, 0.0])
        alarms = pick_alarms(profile(x, p), cfg)
        assert [round(a.position_m, 2) for a in alarms] == [0.0, 0.3]  # in track order


def test_nms_on_generated_noisy_profiles_keeps_every_peak_no_stronger_alarm_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Greedy non-maximum suppression, checked on every candidate peak of random noisy
    profiles against a second, offline implementation (strongest first, the earlier of
    equals); live, no alarm is declared before the head is the radius past it."""
    seen: list[ScorePoint] = []
    add = AlarmLogic._add_candidate

    def record(self: AlarmLogic, cand: ScorePoint) -> None:
        n = len(self._pending)
        add(self, cand)
        if self.tier == "alarm" and len(self._pending) > n:
            seen.append(self._pending[-1])

    monkeypatch.setattr(AlarmLogic, "_add_candidate", record)
    rng = np.random.default_rng(22)
    x = np.round(np.arange(0, 4, 0.01), 2)
    for cfg in (AlarmConfig(), AlarmConfig(threshold=0.3, hysteresis=0.1, nms_radius_m=0.3)):
        r = cfg.nms_radius_m
        for _ in range(300):
            k = int(rng.integers(1, 7))
            p = bumps(x, list(rng.uniform(0.3, 3.7, k)), list(rng.uniform(0.1, 1, k)), 0.04)
            p = np.clip(p + rng.normal(0, rng.choice([0.0, 0.03, 0.08]), x.size), 0, 1)
            seen.clear()
            logic = AlarmLogic(cfg)
            alarms = []
            for pt in profile(x, p):
                new = [a for a in logic.feed(pt) if a.tier == "alarm"]
                assert all(pt.position_m - a.position_m > r for a in new)
                alarms += new
            alarms += [a for a in logic.finish() if a.tier == "alarm"]
            kept: list[float] = []
            order = sorted(range(len(seen)), key=lambda i: (-seen[i].p_mine, i))
            for i in order:
                if all(abs(seen[i].position_m - y) > r for y in kept):
                    kept.append(seen[i].position_m)
            assert sorted(a.position_m for a in alarms) == sorted(kept)


def _generated_profile(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Random bumps (some close together, some with a deep dip between) plus noise, with no
    two points equal above the floor."""
    k = int(rng.integers(1, 8))
    centres = list(rng.uniform(0.2, x[-1] - 0.2, k))
    if rng.uniform() < 0.5:  # a tight chain of peaks, the case a one-way rule gets wrong
        c0 = rng.uniform(0.5, x[-1] - 1.0)
        centres += list(c0 + np.cumsum(rng.uniform(0.08, 0.25, int(rng.integers(2, 5)))))
    heights = list(rng.uniform(0.1, 1.0, len(centres)))
    p = bumps(x, centres, heights, float(rng.uniform(0.02, 0.06)))
    return np.clip(p + rng.normal(0, rng.choice([0.0, 0.01, 0.04]), x.size), 0.0, None)


def _reference_alarms(x: np.ndarray, p: np.ndarray, cfg: AlarmConfig) -> list[float]:
    """A second implementation from the rule's definition, with scipy's peak prominence:
    inside a region (hysteresis, computed forwards), a local maximum at or above the
    threshold is a candidate where, on each side, the score falls below ``split_fraction``
    of it before it reaches a higher point or the region's end (the higher of scipy's two
    bases below that share); then greedy non-maximum suppression, strongest first."""
    from scipy.signal import find_peaks, peak_prominences

    inside = np.zeros(p.size, dtype=bool)
    active = False
    for i, v in enumerate(p):
        active = v >= cfg.threshold or (active and v >= cfg.threshold - cfg.hysteresis)
        inside[i] = active
    masked = np.where(inside, p, -1.0)
    padded = np.concatenate([[-1.0], masked, [-1.0]])
    peaks, _ = find_peaks(padded)
    prominence, _, _ = peak_prominences(padded, peaks)
    base = padded[peaks] - prominence
    keep = (padded[peaks] >= cfg.threshold) & (base < cfg.split_fraction * padded[peaks])
    cands = peaks[keep] - 1
    kept: list[int] = []
    for i in sorted(cands, key=lambda i: (-p[i], i)):
        if all(abs(x[i] - x[j]) > cfg.nms_radius_m for j in kept):
            kept.append(i)
    return sorted(float(x[i]) for i in kept)


CONFIGS = (
    AlarmConfig(suspect_floor=None),
    AlarmConfig(threshold=0.3, hysteresis=0.1, nms_radius_m=0.3, suspect_floor=None),
    AlarmConfig(threshold=0.2, hysteresis=0.02, nms_radius_m=0.15, split_fraction=0.7),
)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_alarms_match_a_second_implementation_of_the_rule_on_generated_profiles(
    cfg: AlarmConfig,
) -> None:
    rng = np.random.default_rng(1515)
    x = np.round(np.arange(0, 4, 0.01), 2)
    for _ in range(400):
        p = _generated_profile(rng, x)
        got = [a.position_m for a in pick_alarms(profile(x, p), cfg) if a.tier == "alarm"]
        assert got == _reference_alarms(x, p, cfg), p.round(3).tolist()


def _assert_same_both_ways(x: np.ndarray, p: np.ndarray, cfg: AlarmConfig) -> None:
    """The profile walked end to end the other way (positions mirrored) gives the same
    alarms and suspects, at the same places."""
    ahead = pick_alarms(profile(x, p), cfg)
    back = pick_alarms(profile(-x[::-1], p[::-1]), cfg)
    for tier in ("alarm", "suspect"):
        a = sorted(round(a.position_m, 6) for a in ahead if a.tier == tier)
        b = sorted(round(-a.position_m, 6) for a in back if a.tier == tier)
        assert a == b, (tier, p.round(3).tolist())


@pytest.mark.parametrize("cfg", [*CONFIGS, AlarmConfig()])
def test_walking_a_lane_the_other_way_gives_the_same_alarms(cfg: AlarmConfig) -> None:
    """The rule has no direction: the same score profile walked end to end the other way
    (positions mirrored) gives the same alarms and suspects, at the same places."""
    rng = np.random.default_rng(2626)
    x = np.round(np.arange(0, 4, 0.01), 2)
    for _ in range(500):
        _assert_same_both_ways(x, _generated_profile(rng, x), cfg)


@pytest.mark.parametrize(
    "p", [[1.0, 0.5, 0.4, 0.5, 0.9], [1.0, 0.6, 0.4, 0.6, 1.0], [0.9, 0.5, 0.4, 0.5, 1.0]]
)
def test_a_flat_top_keeps_its_inner_dip_for_a_higher_point_after_it(p: list[float]) -> None:
    """Two equal points with a shallow dip between merge into one flat top; the dip inside
    it still lies between the peak before it and a higher (or equal) one after it."""
    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    alarms = pick_alarms(profile(x, np.array(p)), AlarmConfig(suspect_floor=None))
    assert [a.position_m for a in alarms] == [0.0, 1.0]


def test_walking_a_quantized_lane_the_other_way_gives_the_same_alarms() -> None:
    """Scores rounded (exported to 3 decimals, or coarser) have equal points; with no
    suppression radius (no ties to break there) the rule must still have no direction."""
    rng = np.random.default_rng(3737)
    x = np.round(np.arange(0, 4, 0.01), 2)
    cfg = AlarmConfig(nms_radius_m=0.0)
    for _ in range(300):
        q = float(rng.choice([0.001, 0.01, 0.05]))
        p = np.round(np.clip(_generated_profile(rng, x) * rng.choice([1.0, 1.3]), 0, 1) / q) * q
        _assert_same_both_ways(x, p, cfg)
