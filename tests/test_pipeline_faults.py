"""The whole pipeline on a fake sensor head: detection, GPR unplugged, GPS loss, failing sinks."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detect.blocks import SensorState
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.engine.pipeline import Pipeline
from detect.sinks.display import PlainDisplay
from detect.sinks.recorder import RecorderSink
from detect.windows import EDGE_CELLS
from pipeline_fakes import LAT0, M_PER_DEG_LAT, FakeClock, FakeHead, FullDisk

#: the interim (uncalibrated) detector these fault tests run on; the default threshold is the
#: trained model's calibrated operating point and does not apply to its scores
INTERIM_ALARM = ("alarm.threshold=0.5", "alarm.hysteresis=0.1")
TARGETS = (1.5, 3.0, 4.5)
#: ground is covered where a window was scored with the sensor's data. At the start the EMI
#: (no validity mask) needs its whole window: half a window (0.32 m) after its first reading,
#: 0.3 m ahead of the GPR; at the end the GPR's last EDGE_CELLS cells (its mask lets the
#: windows run to there) are never a centre, and the EMI reads 0.3 m further
HALF_M = 0.32
EDGE_M = EDGE_CELLS * 0.02
LANE_M = (0.0, 6.0)


def lane_ends_ok(nc: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Check the not-covered lane ends; return the interior not-covered intervals."""
    assert nc[0][0] <= LANE_M[0] + 1e-6 and nc[0][1] == pytest.approx(HALF_M + 0.3, abs=0.02)
    assert nc[-1][1] >= LANE_M[1] and nc[-1][0] == pytest.approx(LANE_M[1] - EDGE_M, abs=0.02)
    return nc[1:-1]


def run_fake(
    tmp: Path | None = None,
    display: Any = None,
    recorder: Any = None,
    emi_offset_m: float = 0.3,
    **kw: Any,
) -> tuple[Pipeline, FakeHead, dict]:
    cfg = compose(
        [
            "run.display=false",
            "model.name=__none__",
            "model.allow_interim=true",
            f"align.offsets_m.emi={emi_offset_m}",
            *INTERIM_ALARM,
        ]
    )
    clock = FakeClock()
    src = FakeHead(clock, targets_m=TARGETS, emi_offset_m=0.3, **kw)
    out = io.StringIO()
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        display or PlainDisplay(stream=out),
        tmp,
        source_info={"paced": False},
        clock=clock,
    )
    if recorder is not None:
        pipe.add_sink(recorder)
    src.open()
    drive(pipe, src, None)
    summary = close_out(pipe, tmp)
    return pipe, src, summary


def test_targets_give_alarms_at_their_positions_and_nowhere_else() -> None:
    pipe, _, _ = run_fake()
    pos = sorted(a.position_m for a in pipe.alarms)
    assert len(pos) == len(TARGETS)
    np.testing.assert_allclose(pos, TARGETS, atol=0.06)
    assert lane_ends_ok(pipe.coverage.not_covered()) == []
    # the GPS fix at the alarm time is the head over the target (meridian track)
    for a in pipe.alarms:
        assert a.lat_deg == pytest.approx(
            LAT0 + a.position_m / M_PER_DEG_LAT, abs=0.05 / M_PER_DEG_LAT
        )


def test_a_wrong_emi_offset_shows_as_split_detections() -> None:
    # the coil is 0.3 m ahead; telling the pipeline 0.0 puts EMI evidence 0.3 m late
    pipe, _, _ = run_fake(emi_offset_m=0.0)
    assert not np.allclose(sorted(a.position_m for a in pipe.alarms)[:3], TARGETS, atol=0.06)


def test_gpr_unplugged_mid_run_fault_not_covered_and_recovery(tmp_path: Path) -> None:
    off = (5.0, 7.0)  # s; head at 0.5 m/s -> 2.5 .. 3.5 m
    pipe, src, summary = run_fake(tmp_path, gpr_off_s=off)
    gpr_events = [e for e in pipe.health_events if e.sensor == "gpr"]
    fault = next(e for e in gpr_events if e.state == SensorState.FAULT)
    assert 0.0 < fault.host_time_s - (1000.0 + off[0]) <= 0.5
    recovered = [
        e for e in gpr_events if e.state == SensorState.OK and e.host_time_s > fault.host_time_s
    ]
    assert recovered and recovered[0].host_time_s - (1000.0 + off[1]) <= 0.1 + 1e-9
    (nc,) = lane_ends_ok(pipe.coverage.not_covered())
    # the windows ahead of the gap that reached into it were ready while the GPR was FAULT:
    # scored without it, from half a window before the last trace ahead of the gap; behind it
    # the GPR's data is back and its validity mask lets windows score from EDGE_CELLS cells
    # after its first trace
    pos = np.array(src.gpr_positions)
    k = int(np.argmax(np.diff(pos)))
    assert nc == pytest.approx((pos[k] - HALF_M, pos[k + 1] + EDGE_M), abs=0.03)
    assert 2.45 < pos[k] < 2.55 and 3.45 < pos[k + 1] < 3.55
    doc = json.loads((tmp_path / "alarms.json").read_text())
    inner = [c for c in doc["coverage"] if c["start_m"] > 0.7 and c["end_m"] < 5.6]
    assert [c["status"] for c in inner] == ["not_covered"] and inner[0]["missing"] == ["gpr"]
    assert doc["coverage"][0]["status"] == doc["coverage"][-1]["status"] == "not_covered"
    assert summary["n_faults"] >= 1 and summary["not_covered_m"] > 0.7
    # the EMI still alarms over the target inside the GPR gap
    assert any(abs(a.position_m - 3.0) < 0.06 for a in pipe.alarms)


def test_gps_loss_keeps_along_track_positions_with_null_lat_lon(tmp_path: Path) -> None:
    pipe, _, _ = run_fake(tmp_path, gps_off_after_s=4.0)  # head at 2.0 m when GPS is lost
    by_pos = {round(a.position_m, 1): a for a in pipe.alarms}
    assert by_pos[1.5].lat_deg is not None
    assert by_pos[3.0].lat_deg is None and by_pos[4.5].lon_deg is None
    gj = json.loads((tmp_path / "alarms.geojson").read_text())
    assert [f["geometry"] is None for f in gj["features"]] == [False, True, True]


def test_recording_write_error_stops_recording_loudly_and_alarming_goes_on(tmp_path: Path) -> None:
    out = io.StringIO()
    writer = FullDisk(ok_writes=50)
    rec = RecorderSink(writer, tmp_path / "s.h5")
    pipe, _, summary = run_fake(tmp_path, display=PlainDisplay(stream=out), recorder=rec)
    assert len(pipe.alarms) == len(TARGETS)
    assert not rec.ok and writer.closed
    stopped = [ln for ln in out.getvalue().splitlines() if "RECORDING STOPPED" in ln]
    assert stopped and "No space" in stopped[0]
    assert "STOPPED" in summary["recording"]
    assert len((tmp_path / "alarms.jsonl").read_text().splitlines()) == len(TARGETS)


class BrokenDisplay(PlainDisplay):
    def alarm(self, alarm: Any) -> None:
        raise RuntimeError("terminal gone")

    def update(self, status: Any) -> None:
        raise RuntimeError("terminal gone")


def test_a_failing_sink_never_stops_alarming(tmp_path: Path) -> None:
    pipe, _, summary = run_fake(tmp_path, display=BrokenDisplay(stream=io.StringIO()))
    assert len(pipe.alarms) == len(TARGETS)
    assert "display" in summary["sink_errors"]
    assert len((tmp_path / "alarms.jsonl").read_text().splitlines()) == len(TARGETS)


class FailingChain:
    """Fails on GPR blocks whose traces lie in [x0, x1) (a DSP bug on odd data, say)."""

    def __init__(self, x0: float, x1: float) -> None:
        self.x0, self.x1 = x0, x1

    def process(self, block: Any) -> Any:
        if ((block.position_m >= self.x0) & (block.position_m < self.x1)).any():
            raise ValueError("bad block")
        return block


def test_a_processing_error_is_a_loud_fault_with_ground_not_covered_not_a_crash() -> None:
    cfg = compose(
        [
            "run.display=false",
            "model.name=__none__",
            "model.allow_interim=true",
            "align.offsets_m.emi=0.3",
            *INTERIM_ALARM,
        ]
    )
    clock = FakeClock()
    src = FakeHead(clock, targets_m=TARGETS)
    out = io.StringIO()
    pipe = build_pipeline(
        cfg, ("gpr", "emi"), PlainDisplay(stream=out), None,
        source_info={"paced": False}, clock=clock,
    )  # fmt: skip
    pipe.chains["gpr"] = FailingChain(2.0, 2.6)
    src.open()
    drive(pipe, src, None)
    summary = close_out(pipe, None)
    assert summary["processing_errors"] > 0
    assert "SENSOR gpr FAULT: processing: ValueError: bad block" in out.getvalue()
    assert "gpr processing recovered" in out.getvalue()
    (nc,) = lane_ends_ok(pipe.coverage.not_covered())
    # the blocks that failed, widened by the half windows that reached into them ahead, and
    # by EDGE_CELLS behind (the GPR's validity mask: see the unplug test)
    assert nc[0] == pytest.approx(2.0 - HALF_M, abs=0.06)
    assert nc[1] == pytest.approx(2.6 + EDGE_M, abs=0.06)
    assert sorted(round(a.position_m, 1) for a in pipe.alarms) == [1.5, 3.0, 4.5]


def _interior_not_covered(pipe: Pipeline) -> list[tuple[float, float]]:
    """The not-covered ground between the lane's two ends (whatever the lane's length)."""
    nc = pipe.coverage.not_covered()
    assert nc[0][0] <= 0.0 and nc[-1][1] >= max(b for a, b in nc)
    return nc[1:-1]


@pytest.mark.parametrize("slip_m", [-1.2, -0.8])
def test_an_odometer_slip_hidden_in_a_link_outage_is_never_counted_clear(slip_m: float) -> None:
    """The link is down 5.0-6.6 s (the head walks 2.5 -> 3.3 m, no data) and the odometer
    slips back meanwhile (chaos soak seed 2500006: -1.2 m), or the head stood still (-0.8 m:
    it resumes where it stopped). The data after the outage is then placed from 2.1 (2.5) m
    on and scored there, but the ground the head was reckoned over stays not covered:
    positions alone cannot tell a stop from a slip, and a target passed during the outage
    must not lie on ground called clear (it was, before)."""
    off = (5.0, 6.6)
    pipe, _, _ = run_fake(all_off_s=off, odometer_slip_m=slip_m, duration_s=13.0)
    last_known_m, reckoned_to_m = 0.5 * off[0], 0.5 * off[1]
    (nc,) = _interior_not_covered(pipe)
    assert nc[0] <= last_known_m + 0.05 and nc[1] >= reckoned_to_m, nc
    assert nc[1] <= reckoned_to_m + 0.3 + 0.05  # the EMI coil is 0.3 m ahead
    assert pipe.n_faults >= 1


def test_a_head_that_walked_on_through_a_link_outage_keeps_its_coverage(monkeypatch) -> None:
    """The same outage without a slip: the odometer resumes ahead of the reckoned head, so
    the coverage is exactly what it is without the doubt rule."""
    from detect.engine import watch

    off = (5.0, 6.6)
    pipe, _, _ = run_fake(all_off_s=off, duration_s=13.0)
    monkeypatch.setattr(watch.Reckoning, "step", lambda *a, **k: None)
    ref, _, _ = run_fake(all_off_s=off, duration_s=13.0)
    assert pipe.coverage.segments() == ref.coverage.segments()
    (nc,) = _interior_not_covered(pipe)
    assert nc[0] <= 0.5 * off[0] and nc[1] >= 0.5 * off[1]
