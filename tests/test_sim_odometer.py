"""Survey-wheel error: scale, slip bursts and ticks, against analytic values; wiring into
lanes, the live source (any chunking) and the evaluation lanes; off means bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from detect.blocks import GprBlock, MdBlock
from detect.config import ConfigError, compose
from detect.sim.lane import simulate_lane
from detect.sim.odometer import Odometer
from detect.sim.settings import OdometerSettings, SimConfigError, SimSettings, settings_from
from detect.sim.source import SimSource
from detect.sources.base import SourceExhausted

NONE = {"scale_sigma": 0.0, "slip_per_m": 0.0, "tick_m": 0.0}
SHORT = {"lane_length_m": 3.0, "n_targets_min": 1, "n_targets_max": 2, "margin_m": 0.6}


def _lane_settings(**odometer: float | bool) -> dict:
    return {**SHORT, "odometer": odometer}


def _true_positions(lane, x0_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """True head positions of the GPR traces and EMI readings (lane started at t0 = 0)."""
    traj = lane.trajectory
    return x0_m + np.interp(lane.gpr.host_time_s, traj.time_s, traj.x_m), x0_m + traj.x_m


def _draws(s: OdometerSettings, n: int, length_m: float) -> list[Odometer]:
    return [Odometer.draw(s, np.random.default_rng([17, i]), length_m) for i in range(n)]


# --------------------------------------------------------------------------- scale


def test_scale_error_alone_stretches_every_reading_by_one_plus_scale() -> None:
    lane = simulate_lane(3, _lane_settings(**{**NONE, "scale_sigma": 0.02}), x0_m=5.0)
    scale = lane.odometer.scale
    assert scale != 0.0
    for block, x_true in zip((lane.gpr, lane.emi), _true_positions(lane, 5.0), strict=True):
        far = x_true > 5.5
        ratio = (block.position_m[far] - 5.0) / (x_true[far] - 5.0)
        np.testing.assert_allclose(ratio, 1.0 + scale, rtol=0, atol=1e-6)
    # the same over a long straight line (1 km)
    odo = Odometer.draw(
        OdometerSettings(**{**NONE, "scale_sigma": 0.02}), np.random.default_rng(1), 1e3
    )
    x = np.linspace(1.0, 1e3, 10_001)
    np.testing.assert_allclose(odo.reading_m(x) / x, 1.0 + odo.scale, rtol=0, atol=1e-6)
    assert lane.odometer_error_end_m == pytest.approx(scale * 3.0, abs=1e-12)


def test_scale_error_is_drawn_per_lane_with_the_configured_sigma() -> None:
    n, sigma = 2000, 0.01
    scales = np.array(
        [o.scale for o in _draws(OdometerSettings(**{**NONE, "scale_sigma": sigma}), n, 10.0)]
    )
    # mean within 4 standard errors of 0; sample sd within 4 of its standard errors
    # (sd of a normal sample's sd ~ sigma / sqrt(2 (n - 1)))
    assert abs(scales.mean()) < 4 * sigma / np.sqrt(n)
    assert abs(scales.std(ddof=1) - sigma) < 4 * sigma / np.sqrt(2 * (n - 1))


# --------------------------------------------------------------------------- ticks


def test_reported_positions_are_whole_ticks_within_one_tick_below_the_truth() -> None:
    tick_m = 0.003
    lane = simulate_lane(4, _lane_settings(**{**NONE, "tick_m": tick_m}), x0_m=12.0)
    for block, x_true in zip((lane.gpr, lane.emi), _true_positions(lane, 12.0), strict=True):
        k = block.position_m / tick_m
        np.testing.assert_allclose(k, np.round(k), rtol=0, atol=1e-6)
        err = x_true - block.position_m
        assert err.min() >= -1e-9 and err.max() < tick_m
        # the whole tick range is used: the floor's mean error is half a tick
        assert err.mean() == pytest.approx(tick_m / 2, abs=0.1 * tick_m)
    # with every effect on, still whole ticks
    lane = simulate_lane(4, _lane_settings(tick_m=tick_m, slip_per_m=2.0), x0_m=12.0)
    k = lane.emi.position_m / tick_m
    np.testing.assert_allclose(k, np.round(k), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- slip


def test_slip_bursts_lose_rate_times_length_times_fraction_of_the_distance() -> None:
    rate, length_m, frac, dist_m, n = 0.5, 0.1, 0.3, 50.0, 400
    s = OdometerSettings(scale_sigma=0.0, tick_m=0.0, slip_per_m=rate, slip_length_m=length_m,
                         slip_fraction=frac)  # fmt: skip
    lost = np.array([1.0 - float(o.counted_m(dist_m)) / dist_m for o in _draws(s, n, dist_m)])
    expected = rate * length_m * frac
    # Campbell's theorem for Poisson shot noise: the loss is frac * the sum over bursts of
    # their overlap with [0, dist]; Var = rate * integral of (frac * overlap(start))^2
    var = rate * frac**2 * (length_m**2 * (dist_m - length_m) + 2 * length_m**3 / 3) / dist_m**2
    assert abs(lost.mean() - expected) < 4 * np.sqrt(var / n)
    assert 0.7 < lost.var(ddof=1) / var < 1.3  # sd of a variance estimate ~ sqrt(2/n) = 0.07


def test_inside_a_burst_the_wheel_counts_the_unslipped_share_of_the_distance() -> None:
    odo = Odometer(scale=0.01, slip_start_m=np.array([1.0, 3.0, 3.05]), slip_length_m=0.1,
                   slip_fraction=0.3, perfect=False)  # fmt: skip
    x = np.array([0.5, 0.6, 1.02, 1.08, 3.06, 3.09, 3.12, 3.14])
    c = odo.counted_m(x)
    slope = np.diff(c)[::2] / np.diff(x)[::2]
    np.testing.assert_allclose(slope, 1.01 * np.array([1.0, 0.7, 0.4, 0.7]), rtol=1e-12)
    assert float(odo.counted_m(5.0)) == pytest.approx(1.01 * (5.0 - 3 * 0.1 * 0.3), abs=1e-12)
    # a negative fraction over-counts
    over = Odometer(slip_start_m=np.array([1.0]), slip_length_m=0.2, slip_fraction=-0.5,
                    perfect=False)  # fmt: skip
    assert float(over.counted_m(2.0)) == pytest.approx(2.1, abs=1e-12)


def test_a_burst_under_way_at_the_lane_start_counts_only_its_remainder() -> None:
    odo = Odometer(slip_start_m=np.array([-0.05]), slip_length_m=0.1, slip_fraction=0.5,
                   perfect=False)  # fmt: skip
    assert float(odo.counted_m(0.0)) == 0.0
    assert float(odo.counted_m(1.0)) == pytest.approx(1.0 - 0.05 * 0.5, abs=1e-12)


# --------------------------------------------------------------------------- forward motion


def test_reading_never_runs_backwards_while_the_head_moves_forwards() -> None:
    wild = OdometerSettings(scale_sigma=0.1, slip_per_m=20.0, slip_length_m=0.2,
                            slip_fraction=1.0, tick_m=0.005)  # fmt: skip
    x = np.sort(np.random.default_rng(0).uniform(0, 20, 50_000))
    for odo in _draws(wild, 20, 20.0):
        assert np.all(np.diff(odo.reading_m(x, 7.0)) >= 0)
        assert np.all(np.diff(odo.counted_m(x)) >= 0)  # overlapping full slips clip at zero
    lane = simulate_lane(5, _lane_settings(slip_per_m=5.0, slip_fraction=0.9))
    assert lane.odometer.slip_start_m.size > 5
    assert np.all(np.diff(lane.gpr.position_m) >= 0) and np.all(np.diff(lane.emi.position_m) >= 0)


@pytest.mark.parametrize("off", [{"enabled": False}, NONE])
def test_perfect_odometer_reports_the_true_positions_bit_for_bit(off: dict) -> None:
    perfect = simulate_lane(6, _lane_settings(**off), x0_m=3.0)
    gpr_true, emi_true = _true_positions(perfect, 3.0)
    np.testing.assert_array_equal(perfect.gpr.position_m, gpr_true)
    np.testing.assert_array_equal(perfect.emi.position_m, emi_true)
    assert perfect.odometer.perfect and perfect.odometer_error_end_m == 0.0
    # the wheel draws from its own generator: the sensor data do not change with it
    worn = simulate_lane(6, SHORT, x0_m=3.0)
    assert not np.array_equal(worn.gpr.position_m, perfect.gpr.position_m)
    np.testing.assert_array_equal(worn.gpr.data, perfect.gpr.data)
    np.testing.assert_array_equal(worn.emi.data, perfect.emi.data)
    assert worn.truth == perfect.truth
    assert [f.lat_deg for f in worn.gps] == [f.lat_deg for f in perfect.gps]


# --------------------------------------------------------------------------- streaming


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _positions(src: SimSource, clock: FakeClock | None = None) -> dict[str, np.ndarray]:
    """Every block position the source delivers; with a clock, read after irregular steps
    of 0.01-0.4 s of that clock (real-time pacing)."""
    got: dict[str, list[np.ndarray]] = {"gpr": [], "emi": []}
    steps = np.random.default_rng(3).uniform(0.01, 0.4, 10_000)
    with src:
        for step_s in steps:
            if clock is not None:
                clock.t += step_s
            try:
                items = src.read(0.0)
            except SourceExhausted:
                break
            got["gpr"] += [b.position_m for b in items if isinstance(b, GprBlock)]
            got["emi"] += [b.position_m for b in items if isinstance(b, MdBlock)]
    return {k: np.concatenate(v) for k, v in got.items()}


def test_source_positions_do_not_depend_on_how_the_stream_is_chunked() -> None:
    sim = {**SHORT, "lane_length_m": 2.0, "odometer": {"scale_sigma": 0.02, "slip_per_m": 1.0}}
    runs = [
        _positions(SimSource(sim=sim, seed=8, realtime=False, n_lanes=3, block_s=b))
        for b in (0.05, 0.1, 0.37)
    ]
    clock = FakeClock()
    runs.append(
        _positions(SimSource(sim=sim, seed=8, realtime=True, clock=clock, n_lanes=3), clock)
    )
    for other in runs[1:]:
        for sensor in ("gpr", "emi"):
            np.testing.assert_array_equal(other[sensor], runs[0][sensor], err_msg=sensor)
    # the lanes chained by hand: the wheel's error carries over from lane to lane
    err, expect = 0.0, []
    for i in range(3):
        lane = simulate_lane(8, sim, lane_index=i, x0_m=2.0 * i, odometer_error_m=err)
        expect.append(lane.gpr.position_m)
        err = lane.odometer_error_end_m
    np.testing.assert_array_equal(runs[0]["gpr"], np.concatenate(expect))
    pos = runs[0]["gpr"]
    assert np.all(np.diff(pos) >= 0) and np.max(np.diff(pos)) < 0.02
    assert abs(err) > 1e-3  # the reported frame has drifted from the truth frame


def test_source_truth_stays_in_true_lane_coordinates() -> None:
    sim = {**SHORT, "lane_length_m": 2.0, "odometer": {"scale_sigma": 0.05}}
    src = SimSource(sim=sim, seed=8, realtime=False, n_lanes=2)
    _positions(src)
    perfect = {**sim, "odometer": {"enabled": False}}
    ref = simulate_lane(8, perfect).truth + simulate_lane(8, perfect, lane_index=1, x0_m=2.0).truth
    assert src.truth == ref


# --------------------------------------------------------------------------- settings, evaluation


def test_config_defaults_match_the_settings_and_bad_values_are_refused() -> None:
    cfg = compose([])
    assert settings_from(cfg.sim).odometer == SimSettings().odometer == OdometerSettings()
    assert not OdometerSettings().perfect
    assert OdometerSettings(enabled=False).perfect and OdometerSettings(**NONE).perfect
    for bad in ("sim.odometer.slip_fraction=1.5", "sim.odometer.tick_m=-0.001",
                "sim.odometer.scale_sigma=0.5", "sim.odometer.enabled=3"):  # fmt: skip
        with pytest.raises(ConfigError, match=r"sim\.odometer"):
            compose([bad])
    with pytest.raises(SimConfigError, match=r"sim\.odometer\.slip_per_m"):
        settings_from({"odometer": {"slip_per_m": -1.0}})
    with pytest.raises(SimConfigError, match=r"unknown simulator key 'sim\.odometer\.wheel_m'"):
        settings_from({"odometer": {"wheel_m": 0.2}})


def test_evaluation_lanes_carry_the_reading_and_the_true_truth() -> None:
    from detect.evaluate import simulated_lanes

    sim = {**SHORT, "odometer": {"scale_sigma": 0.05, "tick_m": 0.0, "slip_per_m": 0.0}}
    (data,) = simulated_lanes(sim, 900_000, 1)
    lane = simulate_lane(900_000, sim, 0)
    emi = next(b for b in data.blocks if isinstance(b, MdBlock))
    np.testing.assert_array_equal(emi.position_m, lane.emi.position_m)
    np.testing.assert_allclose(emi.position_m, (1 + lane.odometer.scale) * lane.trajectory.x_m)
    assert data.truth == simulate_lane(900_000, {**sim, "odometer": {"enabled": False}}, 0).truth
