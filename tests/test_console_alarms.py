"""Alarms an operator can trust: STARTING is not FAULT (but not covered either), pending
ground is not shown as NOT COVERED, UTC on every alarm, hardware runs until stopped."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from detect.blocks import SensorState, utc_text
from detect.coverage import CoverageTracker, coverage_states
from detect.health import SensorHealth
from detect.sinks.display import RichDisplay, Status
from pipeline_fakes import FakeClock


def test_starting_until_first_data_then_ok() -> None:
    clock = FakeClock()
    h = SensorHealth("gpr", stall_timeout_s=0.4, startup_timeout_s=5.0, clock=clock)
    h.mark_connected(True)
    clock.t += 4.9  # a head that takes its time: no FAULT, no event
    assert h.update() == [] and h.state == SensorState.STARTING
    h.frames_received(3)
    assert [e.state for e in h.update()] == [SensorState.OK]


def test_a_sensor_that_never_starts_is_fault_exactly_at_the_startup_timeout() -> None:
    clock = FakeClock()
    h = SensorHealth("emi", stall_timeout_s=0.4, startup_timeout_s=5.0, clock=clock)
    h.mark_connected(True)
    clock.t += 5.0
    assert h.update() == [] and h.state == SensorState.STARTING
    clock.t += 0.001
    ev = h.update()
    assert [e.state for e in ev] == [SensorState.FAULT] and "within 5 s" in ev[0].reason
    h.frames_received(1)  # late data: OK, and never STARTING again
    assert [e.state for e in h.update()] == [SensorState.OK]
    clock.t += 1.0
    assert [e.state for e in h.update()] == [SensorState.FAULT]


def test_a_disconnect_while_starting_is_fault_at_once() -> None:
    clock = FakeClock()
    h = SensorHealth("gpr", startup_timeout_s=5.0, clock=clock)
    h.mark_connected(False, "port closed")
    assert [(e.state, e.reason) for e in h.update()] == [(SensorState.FAULT, "port closed")]


def test_ground_passed_while_a_sensor_is_starting_is_not_covered() -> None:
    cov = CoverageTracker(("gpr",))
    states = coverage_states({"gpr": SensorState.STARTING}, ())
    assert states == {"gpr": SensorState.FAULT}
    cov.update(0.0, states, 0.0)
    cov.update(1.0, states, 1.0)
    assert cov.not_covered() == [(0.0, 1.0)]  # never a silent clear


def test_pending_ground_is_not_shown_as_not_covered() -> None:
    st = Status(not_covered=[(0.0, 0.3), (4.0, 4.6)], not_covered_m=0.9, final_to_m=4.2,
                sensors=[{"sensor": "gpr", "state": "STARTING", "reason": "waiting"}])  # fmt: skip
    assert st.pending == [(4.2, 4.6)] and st.not_covered_final == [(0.0, 0.3), (4.0, 4.2)]
    assert st.not_covered_final_m == pytest.approx(0.5)
    assert st.faults == []  # STARTING is no fault banner
    buf = io.StringIO()
    disp = RichDisplay(bell=False, console=Console(file=buf, width=160, force_terminal=False))
    disp.update(st)
    disp.close()
    text = buf.getvalue()
    assert "SENSOR FAULT" not in text and "STARTING" in text
    assert "NOT COVERED 0.50 m" in text and "pending 0.40 m" in text


def test_utc_of_an_alarm_is_the_start_wall_clock_plus_monotonic_time() -> None:
    anchor = (100.0, 1_700_000_000.0)  # 2023-11-14T22:13:20Z at monotonic 100 s
    assert utc_text(101.5, anchor) == "2023-11-14T22:13:21.500Z"
    assert utc_text(float("nan"), anchor) is None


@pytest.mark.parametrize(("source", "expected_s"), [("sensor_head", None), ("sim", 30.0)])
def test_hardware_runs_until_stopped_the_simulator_demo_stops(
    monkeypatch: pytest.MonkeyPatch, source: str, expected_s: float | None
) -> None:
    import detect.app.live as live
    from detect.cli import main

    seen: dict[str, Any] = {}

    def fake_live(cfg: Any, src: Any, stem: str, duration_s: float | None, **kw: Any) -> int:
        seen["duration_s"] = duration_s
        return 0

    monkeypatch.setattr(live, "_live", fake_live)
    extra = ["source.url=/dev/null"] if source == "sensor_head" else []
    assert main(["run", f"source={source}", "run.display=false", *extra]) == 0
    assert seen["duration_s"] == expected_s


def test_an_acknowledged_outcome_is_written_to_the_session(tmp_path: Any) -> None:
    """Console (server thread) -> hub queue -> pipeline thread -> recorder -> /outcomes; the
    run's outcomes.jsonl and truth.csv get it too. Read back with SessionReader."""
    from detect.blocks import Alarm
    from detect.engine.sinks import SinkSet
    from detect.io.session import SessionReader, SessionWriter
    from detect.sinks.console import ConsoleSink, Hub
    from detect.sinks.recorder import RecorderSink

    sinks = SinkSet()
    hub = Hub(tmp_path)
    sinks.add(ConsoleSink(hub, emit=sinks.emit))
    path = tmp_path / "session.h5"
    sinks.add(RecorderSink(SessionWriter(path, {}, {}), path))
    alarm = Alarm("A-0003", 2.5, 0.8, "at_mine", {"emi": 0.8}, 0.12, 10.0, 45.0, 15.0, 0.02)
    suspect = Alarm("A-S0001", 4.0, 0.05, "ap_mine", {}, None, 11.0, tier="suspect")
    for a in (alarm, suspect):
        sinks.emit("on_alarm", a)
    hub.acknowledge("A-0003", "mine", "2026-01-01T00:00:01.000Z")
    with SessionReader(path) as r:  # not yet: only the pipeline thread writes the file
        r.refresh()
        assert r.outcomes() == []
    sinks.emit("flush")
    hub.acknowledge("A-S0001", "nothing_found", "2026-01-01T00:00:02.000Z")
    sinks.emit("close")  # the console hands over what is left before the recording closes
    assert sinks.errors == {}
    with SessionReader(path) as r:
        got = r.outcomes()
        assert [a.alarm_id for a in r.alarms()] == ["A-0003", "A-S0001"]
    assert [(o["id"], o["outcome"], o["tier"]) for o in got] == [
        ("A-0003", "mine", "alarm"), ("A-S0001", "nothing_found", "suspect")]  # fmt: skip
    first = got[0]
    assert first["position_m"] == 2.5 and first["lat"] == 45.0 and first["depth_m"] == 0.12
    assert first["alarm_class"] == "at_mine" and first["utc"] == "2026-01-01T00:00:01.000Z"
    assert got[1]["depth_m"] is None and got[1]["lat"] is None
    lines = (tmp_path / "outcomes.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_a_session_without_outcomes_reads_as_none(tmp_path: Any) -> None:
    import h5py

    from detect.io.session import SessionReader, SessionWriter

    with SessionWriter(tmp_path / "s.h5", {}, {}):
        pass
    with h5py.File(tmp_path / "s.h5", "r+") as f:  # as files written before /outcomes
        del f["outcomes"]
    with SessionReader(tmp_path / "s.h5") as r:
        assert r.outcomes() == [] and r.alarms() == []
