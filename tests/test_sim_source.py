"""SimSource: blocks like a driver's, pacing, lanes in sequence, fault injection."""

from __future__ import annotations

import numpy as np
import pytest

from detect.blocks import GprBlock, GpsFix, MdBlock, SensorState
from detect.config import compose, to_dict
from detect.sim.lane import simulate_lane
from detect.sim.source import SimSource
from detect.sources.base import SourceExhausted
from detect.sources.registry import create_source

SHORT = {"lane_length_m": 4.0, "n_targets_min": 1, "n_targets_max": 3, "margin_m": 0.6}


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _drain(src: SimSource) -> list:
    items = []
    with src:
        while True:
            try:
                items.extend(src.read(0.0))
            except SourceExhausted:
                break
    return items


def test_finite_run_delivers_every_lane_then_is_exhausted() -> None:
    src = SimSource(sim=SHORT, seed=7, realtime=False, n_lanes=2, block_s=0.1)
    items = _drain(src)
    gpr = [b for b in items if isinstance(b, GprBlock)]
    emi = [b for b in items if isinstance(b, MdBlock)]
    lane0 = simulate_lane(7, SHORT, lane_index=0)
    lanes = [lane0, simulate_lane(7, SHORT, lane_index=1, x0_m=4.0,
                                  odometer_error_m=lane0.odometer_error_end_m)]  # fmt: skip
    np.testing.assert_array_equal(
        np.concatenate([b.data for b in gpr]), np.concatenate([ln.gpr.data for ln in lanes])
    )
    assert sum(b.n for b in emi) == sum(ln.emi.n for ln in lanes)
    pos = np.concatenate([b.position_m for b in gpr])
    # the wheel counts on across the lane change: its error carries over, no jump
    np.testing.assert_array_equal(pos, np.concatenate([ln.gpr.position_m for ln in lanes]))
    assert np.all(np.diff(pos) >= 0) and np.max(np.diff(pos)) < 0.02
    assert pos[-1] == pytest.approx(8.0 + lanes[1].odometer_error_end_m, abs=0.01)
    seq = np.concatenate([b.seq for b in gpr])
    np.testing.assert_array_equal(seq, np.arange(seq.size))
    t = np.concatenate([b.host_time_s for b in gpr])
    assert np.all(np.diff(t) > 0)
    # blocks of ~0.1 s: 10 traces at 100 traces/s, 100 EMI readings
    assert max(b.n for b in gpr) <= 11 and max(b.n for b in emi) <= 101
    assert any(isinstance(i, GpsFix) for i in items)
    # truth in the same continuous position frame, lane 1 shifted by one lane length
    assert src.truth == lanes[0].truth + simulate_lane(7, SHORT, lane_index=1, x0_m=4.0).truth
    with pytest.raises(SourceExhausted):
        src.read(0.0)


def test_realtime_paces_to_the_clock() -> None:
    clock = FakeClock()
    src = SimSource(sim=SHORT, seed=1, realtime=True, clock=clock, block_s=0.1)
    with src:
        assert src.read(0.0) == []
        clock.t += 0.355
        items = src.read(0.0)
        n_gpr = sum(b.n for b in items if isinstance(b, GprBlock))
        assert n_gpr == 36  # traces at 0.00 ... 0.35 s
        assert src.read(0.0) == []
        clock.t += 0.05
        assert src.read(0.0) == []
        clock.t += 0.06
        items = src.read(0.0)
        assert sum(b.n for b in items if isinstance(b, GprBlock)) == 11  # 0.36 ... 0.46 s
        t = np.concatenate([b.host_time_s for b in items if isinstance(b, GprBlock)])
        assert t[-1] <= clock.t and t[0] >= 1000.0


def test_gpr_fault_window_turns_gpr_health_to_fault_and_back() -> None:
    clock = FakeClock()
    src = SimSource(
        sim=SHORT,
        seed=2,
        realtime=True,
        clock=clock,
        stall_timeout_s=0.3,
        fault_gpr_after_s=1.0,
        fault_gpr_for_s=1.0,
    )
    states: dict[str, list[tuple[float, SensorState]]] = {"gpr": [], "emi": []}
    with src:
        for _ in range(30):
            clock.t += 0.1
            src.read(0.0)
            for ev in src.poll_health():
                if ev.sensor in states:
                    states[ev.sensor].append((round(clock.t - 1000.0, 2), ev.state))
    gpr = states["gpr"]
    assert [s for _, s in gpr] == [SensorState.OK, SensorState.FAULT, SensorState.OK]
    assert 1.3 <= gpr[1][0] <= 1.5 and 2.0 <= gpr[2][0] <= 2.2
    assert [s for _, s in states["emi"]] == [SensorState.OK]


def test_built_from_the_composed_config_with_the_sim_group() -> None:
    cfg = compose(
        [
            "sim.lane_length_m=4.0",
            "sim.n_targets_min=1",
            "sim.n_targets_max=3",
            "source.realtime=false",
        ]
    )
    src = create_source(to_dict(cfg.source))
    assert isinstance(src, SimSource)
    assert src.settings.lane_length_m == 4.0 and not src.paced
    assert src.sensors == ("gpr", "emi", "gps")


def test_bad_source_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="block_s"):
        SimSource(block_s=0.0)
    with pytest.raises(ValueError, match="n_lanes"):
        SimSource(n_lanes=0)
    with pytest.raises(ValueError, match=r"source 'sim': .*n_targets_max") as info:
        create_source({"kind": "sim", "sim": {"n_targets_min": 5, "n_targets_max": 2}})
    assert "\n" not in str(info.value)


def test_realtime_lane_changes_keep_the_stream_continuous_and_healthy() -> None:
    clock = FakeClock()
    tiny = {"lane_length_m": 2.0, "margin_m": 0.6, "n_targets_min": 1, "n_targets_max": 1}
    src = SimSource(sim=tiny, seed=9, realtime=True, clock=clock, stall_timeout_s=0.3)
    blocks: list[GprBlock] = []
    faults = []
    with src:
        for _ in range(100):  # 10 s: two lane changes (a 2 m lane takes ~4 s)
            clock.t += 0.1
            blocks += [b for b in src.read(0.0) if isinstance(b, GprBlock)]
            faults += [e for e in src.poll_health() if e.state != SensorState.OK]
    assert src.lanes_started >= 3
    seq = np.concatenate([b.seq for b in blocks])
    np.testing.assert_array_equal(seq, np.arange(seq.size))
    pos = np.concatenate([b.position_m for b in blocks])
    assert np.all(np.diff(pos) >= 0) and np.max(np.diff(pos)) < 0.02
    assert faults == []


class JumpyClock:
    """A wall clock that jumps 0-3 s between reads: a busy or slow machine."""

    def __init__(self, seed: int) -> None:
        self.t = 50.0
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> float:
        self.t += float(self.rng.uniform(0.0, 3.0))
        return self.t


def _unpaced_events(seed: int, faults: dict, clock) -> tuple[list, dict[str, np.ndarray]]:
    src = SimSource(sim=SHORT, seed=seed, realtime=False, n_lanes=1, block_s=0.1,
                    stall_timeout_s=0.3, clock=clock, **faults)  # fmt: skip
    events, times = [], {"gpr": [], "emi": []}
    with src:
        while True:
            try:
                items = src.read(0.0)
            except SourceExhausted:
                break
            for b in items:
                if isinstance(b, GprBlock | MdBlock):
                    times[b.header.sensor].append(b.host_time_s)
            events += [(e.sensor, e.state, round(e.host_time_s, 9)) for e in src.poll_health()]
    return events, {k: np.concatenate(v) for k, v in times.items()}


@pytest.mark.parametrize("seed", range(10))
def test_unpaced_health_follows_the_data_whatever_the_machine_speed(seed: int) -> None:
    """Faster than real time, a sensor is FAULT exactly where its data has a gap longer than
    the stall timeout (in simulated time), and nowhere else: no start-up stall while the first
    lane is simulated, no outage passing unseen in milliseconds; the same events on a wall
    clock that jumps seconds between reads."""
    rng = np.random.default_rng(1000 + seed)
    faults = {}
    for sensor in ("gpr", "emi"):
        if rng.random() < 0.8:
            faults[f"fault_{sensor}_after_s"] = float(rng.uniform(0.3, 5.0))
            short_or_long = [rng.uniform(0.0, 0.3), rng.uniform(0.3, 2.0)]
            faults[f"fault_{sensor}_for_s"] = float(rng.choice(short_or_long))
    steady, times = _unpaced_events(seed, faults, FakeClock())
    jumpy, _ = _unpaced_events(seed, faults, JumpyClock(seed))
    assert jumpy == steady
    stall, block = 0.3, 0.1
    assert [e[1] for e in steady if e[0] == "gps"] == [SensorState.OK]
    for sensor in ("gpr", "emi"):
        mine = [(state, t) for s, state, t in steady if s == sensor]
        assert mine[0][0] == SensorState.OK  # first data: OK, never a start-up FAULT
        t = times[sensor]
        gaps = np.flatnonzero(np.diff(t) > stall)
        faults_at = [t_ev for state, t_ev in mine if state == SensorState.FAULT]
        back_at = [t_ev for state, t_ev in mine[1:] if state == SensorState.OK]
        assert len(faults_at) == len(back_at) <= len(gaps)
        for i in gaps:
            last, first = t[i], t[i + 1]
            # frames count at the end of their block (up to one block late), and the health is
            # polled once a block: a gap longer than that must be seen, at most 2 blocks late
            if first - last > stall + 2 * block:
                assert any(abs(f - (last + stall + block)) <= block + 1e-9 for f in faults_at)
        for f, b in zip(faults_at, back_at, strict=True):  # each FAULT lies in a real gap
            eps = 1e-9
            assert any(t[i] + stall - eps < f <= t[i + 1] <= b <= t[i + 1] + block + eps
                       for i in gaps)  # fmt: skip
