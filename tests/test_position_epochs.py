"""A sensor head that restarts starts a new position epoch: its positions are never taken
from the old connection's odometer, and every target of every walk is either alarmed in its
own epoch's frame or lies on ground reported not covered there."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import detect.drivers.sensor_head as sh
import numpy as np
import pytest

from detect.blocks import GprBlock, MdBlock, PositionEpoch
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.engine.items import file_items
from detect.engine.pipeline import Pipeline
from detect.io.session import SessionReader
from detect.sinks.display import PlainDisplay
from detect.sources.replay import ReplaySource
from pipeline_fakes import FakeClock, FakeHead

INTERIM = ("model.allow_interim=true", "alarm.threshold=0.5", "alarm.hysteresis=0.1")
HALO_M = 0.15


# ----------------------------------------------------------------------------- driver


def _head_bytes(t0_s: float, t1_s: float, x0_m: float, speed_m_s: float, seq0: int) -> bytes:
    """GPR traces at 50 Hz with 100 Hz odometer frames, device clock from ``t0_s``."""
    frames: list[tuple[int, int, int, bytes]] = []
    seq = seq0
    for t in np.arange(t0_s, t1_s, 0.01):
        ticks = round((x0_m + speed_m_s * (t - t0_s)) / 0.001)
        frames.append((sh.Msg.ODOMETER, seq, round(t * 1e6), sh.odometer_payload(ticks)))
        seq += 1
        if round(t * 100) % 2 == 0:
            counts = np.zeros((1, 64), dtype=np.int16)
            pay = sh.gpr_payloads(counts, 0.1, 0.0, 1e-3, 0)[0]
            frames.append((sh.Msg.GPR_TRACE, seq, round(t * 1e6), pay))
            seq += 1
    return sh.frames_to_bytes(frames)


def _decode_all(src: sh.SensorHeadSource, data: bytes, rx_s: float) -> list[Any]:
    out: list[Any] = []
    for k in range(0, len(data), 4096):
        out += src._decode(data[k : k + 4096], rx_s)
    return out + src._release(rx_s + 10.0)


@pytest.mark.parametrize("reconnect", [True, False])
def test_a_restarted_head_is_a_new_epoch_placed_on_its_own_odometer(reconnect: bool) -> None:
    """The old connection walked to 9.5 m over 30 s of device time; the head restarts
    (clock and odometer from zero) and walks 1.5 m. Before the fix every new trace was
    stamped from the old track (a constant 9.5 m); now a PositionEpoch comes first and the
    new traces lie on the new odometer, 0..1.5 m. With or without a dropped link."""
    src = sh.SensorHeadSource("loop://", sensors=("gpr",), start_on_open=False)
    first = _decode_all(src, _head_bytes(0.5, 30.0, 0.0, 9.5 / 29.5, 0), 100.0)
    assert not any(isinstance(i, PositionEpoch) for i in first)
    old = np.concatenate([b.position_m for b in first if isinstance(b, GprBlock)])
    assert old.max() == pytest.approx(9.5, abs=0.02)
    if reconnect:
        src._reset_decoder()
    second = _decode_all(src, _head_bytes(0.2, 5.0, 0.0, 1.5 / 4.8, 0), 140.0)
    kinds = [type(i).__name__ for i in second]
    assert kinds[0] == "PositionEpoch" or (not reconnect and "PositionEpoch" in kinds), kinds
    k = kinds.index("PositionEpoch")
    new = np.concatenate([b.position_m for b in second[k + 1 :] if isinstance(b, GprBlock)])
    assert np.isfinite(new).mean() > 0.99
    assert np.nanmax(new) == pytest.approx(1.5, abs=0.02)
    assert np.nanmin(new) < 0.05
    assert src.epoch == 1


def test_a_running_head_reconnecting_keeps_its_epoch() -> None:
    """A dropped cable on a head that kept running: its clock goes on, so the odometer
    frame is the same: no new epoch, positions continue."""
    src = sh.SensorHeadSource("loop://", sensors=("gpr",), start_on_open=False)
    _decode_all(src, _head_bytes(0.5, 10.0, 0.0, 0.3, 0), 100.0)
    src._reset_decoder()
    after = _decode_all(src, _head_bytes(12.0, 14.0, 3.45, 0.3, 5000), 120.0)
    assert not any(isinstance(i, PositionEpoch) for i in after)
    pos = np.concatenate([b.position_m for b in after if isinstance(b, GprBlock)])
    assert np.nanmin(pos) == pytest.approx(3.45, abs=0.02)
    assert src.epoch == 0


def test_a_clock_step_back_with_the_odometer_going_on_is_not_a_new_epoch() -> None:
    """Found by the chaos soak (seed 700003): the device clock stepped back 4 s while the
    odometer kept counting; taking it for a restart left the ground between the epochs in
    neither epoch's report. The odometer's next reading decides: it goes on, same frame."""
    src = sh.SensorHeadSource("loop://", sensors=("gpr",), start_on_open=False)
    _decode_all(src, _head_bytes(0.5, 10.0, 0.0, 0.3, 0), 100.0)
    after = _decode_all(src, _head_bytes(2.0, 4.0, 2.85, 0.3, 5000), 110.0)
    assert not any(isinstance(i, PositionEpoch) for i in after)
    pos = np.concatenate([b.position_m for b in after if isinstance(b, GprBlock)])
    assert np.nanmin(pos) == pytest.approx(2.85, abs=0.02)
    assert np.nanmax(pos) == pytest.approx(3.45, abs=0.02)
    assert src.epoch == 0


def test_an_odometer_step_no_head_can_walk_is_a_new_epoch() -> None:
    """Found by the chaos soak (seed 700010): the odometer count stepped back 0.86 m in one
    10 ms reading; the new ground under the old positions was taken for backing up over
    scored ground and stayed reported covered. Such a step breaks the position frame."""
    src = sh.SensorHeadSource("loop://", sensors=("gpr",), start_on_open=False)
    _decode_all(src, _head_bytes(0.5, 10.0, 0.0, 0.3, 0), 100.0)
    after = _decode_all(src, _head_bytes(10.0, 12.0, 2.85 - 0.86, 0.3, 5000), 102.0)
    kinds = [type(i).__name__ for i in after]
    assert "PositionEpoch" in kinds and "jumped" in after[kinds.index("PositionEpoch")].reason
    k = kinds.index("PositionEpoch")
    new = np.concatenate([b.position_m for b in after[k + 1 :] if isinstance(b, GprBlock)])
    assert np.nanmin(new) == pytest.approx(1.99, abs=0.02)
    assert src.epoch == 1
    # a head walking briskly (2 m/s) is no jump
    src2 = sh.SensorHeadSource("loop://", sensors=("gpr",), start_on_open=False)
    items = _decode_all(src2, _head_bytes(0.5, 5.0, 0.0, 2.0, 0), 100.0)
    assert not any(isinstance(i, PositionEpoch) for i in items)


# ----------------------------------------------------------------------------- pipeline


class RestartingHead(FakeHead):
    """Walks ``targets_m`` until ``restart_s``, then restarts: positions begin again at 0
    over ``targets2_m`` and a PositionEpoch marks the change (as the driver emits it)."""

    def __init__(self, clock: FakeClock, restart_s: float, targets2_m: tuple, **kw: Any):
        super().__init__(clock, **kw)
        self.restart_s = restart_s
        self.targets1 = self.targets
        self.targets2 = np.asarray(targets2_m, dtype=np.float64)
        self.marked = False

    def head_m(self, t_rel: Any) -> Any:
        t = np.asarray(t_rel, dtype=np.float64)
        return self.speed * np.where(t < self.restart_s, t, t - self.restart_s)

    def _read(self, timeout_s: float) -> list[Any]:
        if self.t_rel >= self.restart_s and not self.marked:
            self.marked = True
            self.targets = self.targets2
            return [PositionEpoch(1000.0 + self.t_rel, self.name, "restart"), *super()._read(0)]
        return super()._read(timeout_s)


def _run(tmp: Path | None, **kw: Any) -> tuple[Pipeline, RestartingHead, dict]:
    cfg = compose(["run.display=false", "model.name=__none__", *INTERIM])
    clock = FakeClock()
    src = RestartingHead(clock, emi_offset_m=0.3, **kw)
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        PlainDisplay(stream=io.StringIO()),
        tmp,
        record=tmp is not None,
        source_info={"paced": False},
        clock=clock,
    )
    src.open()
    drive(pipe, src, None)
    summary = close_out(pipe, tmp)
    return pipe, src, summary


def _verdicts(pipe: Pipeline, targets: dict[int, np.ndarray]) -> dict[str, list]:
    """Per epoch and target: alarmed (same epoch, within the halo) / not covered / SILENT."""
    segs = pipe.coverage_segments()
    out: dict[str, list] = {"alarmed": [], "not_covered": [], "silent": []}
    for epoch, xs in targets.items():
        for x in xs:
            hit = [a for a in pipe.alarms if a.epoch == epoch and abs(a.position_m - x) <= HALO_M]
            nc = [
                s
                for s in segs
                if s["epoch"] == epoch
                and s["status"] == "not_covered"
                and s["start_m"] - HALO_M <= x <= s["end_m"] + HALO_M
            ]
            key = "alarmed" if hit else "not_covered" if nc else "silent"
            out[key].append((epoch, float(x)))
    return out


def test_pipeline_closes_the_epoch_and_scores_the_new_walk_in_its_own_frame() -> None:
    """Walk 1 (0-5 m, targets 1.5 and 3.0 m), restart, walk 2 (0-3.5 m, target 2.2 m):
    walk 2's target is alarmed at 2.2 m in epoch 1 (before: traces of the new walk were
    placed in the old frame and the target got no alarm)."""
    pipe, _, summary = _run(
        None,
        duration_s=17.0,
        restart_s=10.0,
        targets_m=(1.5, 3.0),
        targets2_m=(2.2,),
    )
    v = _verdicts(pipe, {0: np.array([1.5, 3.0]), 1: np.array([2.2])})
    assert v["silent"] == [], v
    assert (1, 2.2) in v["alarmed"], [(a.epoch, a.position_m) for a in pipe.alarms]
    assert all(a.epoch in (0, 1) for a in pipe.alarms)
    assert summary["position_epochs"] == 2
    segs = pipe.coverage_segments()
    for epoch, end_m in ((0, 5.0), (1, 3.5)):
        mine = [s for s in segs if s["epoch"] == epoch]
        assert mine, segs
        # each epoch's own lane ends are not covered (half a window + the coil's lead)
        assert mine[0]["status"] == "not_covered" and mine[0]["start_m"] <= 0.01
        assert mine[-1]["status"] == "not_covered" and mine[-1]["end_m"] >= end_m - 0.05
    per_epoch = sum(
        sum(s["end_m"] - s["start_m"] for s in segs if s["epoch"] == k and s["status"] != "covered")
        for k in (0, 1)
    )
    assert summary["not_covered_m"] == pytest.approx(per_epoch, abs=0.05)


def test_epochs_are_recorded_and_a_replay_gives_the_same_alarms(tmp_path: Path) -> None:
    live, _, _ = _run(
        tmp_path / "live", duration_s=15.0, restart_s=8.0, targets_m=(1.5, 3.0), targets2_m=(2.2,)
    )
    with SessionReader(tmp_path / "live" / "session.h5") as rd:
        epochs = rd.epochs()
        record = rd.coverage_record()
        recorded_alarms = rd.alarms()
        items = list(rd.iter_items())
    assert len(epochs) == 1
    assert record.state == "complete"
    assert {r["epoch"] for r in record.rows} == {0, 1}
    assert [(a.epoch, a.alarm_id) for a in recorded_alarms] == [
        (a.epoch, a.alarm_id) for a in live.alarms
    ]
    # the marker sits between the last block of walk 1 and the first of walk 2
    k = next(i for i, it in enumerate(items) if isinstance(it, PositionEpoch))
    before = [it for it in items[:k] if isinstance(it, (GprBlock, MdBlock))]
    after = [it for it in items[k + 1 :] if isinstance(it, (GprBlock, MdBlock))]
    assert max(b.host_time_s[-1] for b in before) < min(b.host_time_s[0] for b in after)

    cfg = compose(["run.display=false", "model.name=__none__", *INTERIM])
    src = ReplaySource(tmp_path / "live" / "session.h5", speed=None)
    pipe = build_pipeline(
        cfg, ("gpr", "emi"), PlainDisplay(stream=io.StringIO()), None, source_info={}
    )
    src.open()
    for item in src.iter_items():
        pipe.handle([item])
    close_out(pipe, None)
    want = [(a.epoch, round(a.position_m, 3)) for a in live.alarms]
    assert [(a.epoch, round(a.position_m, 3)) for a in pipe.alarms] == want
    assert pipe.epoch == 1
    live_nc = live.coverage_summary()["not_covered_m"]
    assert pipe.coverage_summary()["not_covered_m"] == pytest.approx(live_nc, abs=0.1)

    # scan reads the same session with its epochs
    items, _, _ = file_items(tmp_path / "live" / "session.h5", None, None)
    scan = build_pipeline(
        cfg, ("gpr", "emi"), PlainDisplay(stream=io.StringIO()), None, source_info={}
    )
    for item in items:
        scan.handle([item])
    scan.finish()
    assert [(a.epoch, round(a.position_m, 3)) for a in scan.alarms] == want


# ----------------------------------------------------------------------------- degraded link


class NoisyLinkHead(FakeHead):
    """The GPR link loses 40 % of its frames (sequence gaps) while ``bad_s`` lasts."""

    def __init__(self, clock: FakeClock, bad_s: tuple[float, float], **kw: Any) -> None:
        super().__init__(clock, **kw)
        self.bad_s = bad_s

    def _read(self, timeout_s: float) -> list[Any]:
        items = super()._read(timeout_s)
        if self.bad_s[0] <= self.t_rel < self.bad_s[1]:
            self.health["gpr"].count("gaps", 1)
            self.health["gpr"].count("dropped_frames", 2)
        return items


def test_ground_passed_on_a_degraded_link_is_not_covered_but_still_alarmed() -> None:
    """Before: a sensor losing frames (DEGRADED, above the health bar) covered its ground
    like a healthy one, so a degraded run reported only its lane ends not covered."""
    cfg = compose(["run.display=false", "model.name=__none__", *INTERIM])
    clock = FakeClock()
    src = NoisyLinkHead(clock, bad_s=(5.0, 7.0), targets_m=(1.5, 3.0, 4.5), emi_offset_m=0.3)
    pipe = build_pipeline(
        cfg, ("gpr", "emi"), PlainDisplay(stream=io.StringIO()), None, source_info={}, clock=clock
    )
    src.open()
    drive(pipe, src, None)
    summary = close_out(pipe, None)
    assert any(e.state.name == "DEGRADED" for e in pipe.health_events)
    inner = [(a, b) for a, b in pipe.coverage.not_covered("gpr") if a > 1.0 and b < 5.5]
    assert inner, pipe.coverage.not_covered("gpr")
    # the head passed 2.5 .. 3.5 m while the link lost frames: the loss rate over the 2 s
    # window crosses the 5 % bar within 0.3 s (0.15 m) and stays above it until the losses
    # age out of the window
    lo, hi = inner[0][0], inner[-1][1]
    assert 2.5 <= lo <= 2.7 and hi >= 3.5
    assert summary["not_covered_m"] > 1.0
    # detection goes on over the degraded stretch: the target at 3.0 m is alarmed
    assert any(abs(a.position_m - 3.0) <= HALO_M for a in pipe.alarms)
