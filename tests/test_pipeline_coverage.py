"""Coverage: interval arithmetic against a brute-force sampling of the track."""

from __future__ import annotations

import numpy as np
import pytest

from detect.blocks import SensorState
from detect.coverage import CoverageTracker, merge, subtract

OK, FAULT = SensorState.OK, SensorState.FAULT


def test_interval_ops_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 11, 24001)
    for _ in range(30):
        base = [tuple(sorted(rng.uniform(0, 10, 2))) for _ in range(5)]
        cut = [tuple(sorted(rng.uniform(0, 10, 2))) for _ in range(4)]
        inside = lambda ivs: np.any([(x >= a) & (x <= b) for a, b in ivs], axis=0)  # noqa: E731
        want = inside(base) & ~inside(cut)
        got = inside(subtract(base, cut)) if subtract(base, cut) else np.zeros_like(want)
        assert np.mean(want != got) < 1e-3
        assert sum(b - a for a, b in merge(base)) == pytest.approx(
            inside(base).mean() * 12, abs=0.01
        )


def test_ground_passed_in_fault_is_not_covered_per_sensor_offset() -> None:
    cov = CoverageTracker(("gpr", "emi"), {"gpr": 0.0, "emi": -0.5})
    t = 0.0
    for x in np.arange(0, 6.001, 0.1):
        states = {"gpr": FAULT if 2.0 <= x < 3.0 else OK, "emi": OK}
        cov.update(float(x), states, t)
        t += 0.1
    # the stretch from 2.0 to 3.0 was passed with the GPR in FAULT
    (nc,) = cov.not_covered()
    assert nc[0] == pytest.approx(2.0) and nc[1] == pytest.approx(3.0)
    assert cov.not_covered_m() == pytest.approx(1.0)
    segs = cov.segments()
    assert [s["status"] for s in segs] == ["covered", "not_covered", "covered"]
    assert segs[1]["missing"] == ["gpr"]
    assert cov.distance_m == pytest.approx(6.0)
    # the EMI coil, 0.5 m behind, faulting over the same head stretch misses other ground
    cov2 = CoverageTracker(("emi",), {"emi": -0.5})
    for i, x in enumerate(np.arange(0, 6.001, 0.1)):
        cov2.update(float(x), {"emi": FAULT if 2.0 <= x < 3.0 else OK}, i * 0.1)
    (nc2,) = cov2.not_covered()
    assert nc2 == pytest.approx((1.5, 2.5))


def test_going_back_over_faulted_ground_covers_it() -> None:
    cov = CoverageTracker(("gpr",))
    path = [*np.arange(0, 4.01, 0.1), *np.arange(4.0, 1.49, -0.1), *np.arange(1.5, 5.01, 0.1)]
    fault = {"first": (2.0, 3.0)}
    passes = 0
    prev = None
    for i, x in enumerate(path):
        if prev is not None and x < prev:
            passes = 1
        in_fault = passes == 0 and fault["first"][0] <= x < fault["first"][1]
        cov.update(float(x), {"gpr": FAULT if in_fault else OK}, i * 0.1)
        prev = x
    assert cov.not_covered_m() == pytest.approx(0.0, abs=1e-9)


def test_time_without_position_while_faulted_is_blind_time() -> None:
    cov = CoverageTracker(("gpr",))
    cov.update(1.0, {"gpr": FAULT}, 0.0)
    cov.update(float("nan"), {"gpr": FAULT}, 2.5)
    assert cov.blind_s == pytest.approx(2.5)


def test_data_that_arrives_late_still_covers_its_ground() -> None:
    cov = CoverageTracker(("gpr",))
    cov.update(0.0, {"gpr": FAULT}, 0.0)  # no data yet when the head starts moving
    cov.update(0.5, {"gpr": OK}, 1.0)
    cov.add_data("gpr", np.arange(0.0, 0.51, 0.01))  # the first block covers 0 .. 0.5
    cov.update(1.0, {"gpr": FAULT}, 2.0)
    cov.update(2.0, {"gpr": OK}, 3.0)  # 1.0 .. 2.0 passed in FAULT
    cov.add_data("gpr", np.r_[np.arange(0.5, 1.2, 0.01), np.arange(1.8, 2.5, 0.01)])
    (nc,) = cov.not_covered()
    assert nc == pytest.approx((1.19 + 0.01, 1.8 - 0.01))  # each reading covers +-1 cm


def test_a_gap_in_the_data_is_not_covered_even_without_a_fault() -> None:
    cov = CoverageTracker(("gpr",))
    data = np.r_[np.arange(0.0, 1.0, 0.01), np.arange(1.3, 3.001, 0.01)]
    for i, x in enumerate(np.arange(0, 2.901, 0.1)):
        cov.add_data("gpr", data[(data > x - 0.1) & (data <= x + 0.1)])  # this turn's data
        cov.update(float(x), {"gpr": OK}, i * 0.1)
    (nc,) = cov.not_covered()
    assert nc == pytest.approx((0.99 + 0.01, 1.3 - 0.01))


def test_data_without_any_position_is_counted_as_not_scored() -> None:
    ok = {"emi": SensorState.OK}
    cov = CoverageTracker(("emi",))
    cov.update(float("nan"), ok, 0.0)
    assert cov.unplaced_s == 0.0  # nothing has arrived yet: not data left unscored
    for k in range(1, 11):
        cov.add_data("emi", np.full(100, np.nan))
        cov.update(float("nan"), ok, 0.1 * k)
    assert cov.unplaced_s == pytest.approx(1.0)
    assert cov.summary()["unplaced_s"] == pytest.approx(1.0)
    # once the head is placed, time no longer counts as unscored
    cov.add_data("emi", np.linspace(0.0, 0.1, 100))
    cov.update(0.1, ok, 1.1)
    cov.update(0.2, ok, 1.2)
    assert cov.unplaced_s == pytest.approx(1.0)


def test_summary_says_not_scored_loudly() -> None:
    from detect.sinks.display import summary_lines

    lines = summary_lines({"duration_s": 8.0, "unplaced_s": 7.8})
    assert any(line.startswith("NOT SCORED: 7.8 s") for line in lines)
    assert not any("NOT SCORED" in line for line in summary_lines({"unplaced_s": 0.0}))
