"""Sensor health state machine on a fake clock: exact FAULT latency, DEGRADED rate, events."""

from __future__ import annotations

import math

import pytest

from detect.blocks import SensorState
from detect.health import SensorHealth
from pipeline_fakes import FakeClock


def test_fault_exactly_after_the_stall_timeout_and_back_to_ok() -> None:
    clock = FakeClock()
    clock.t = 100.0
    h = SensorHealth("gpr", stall_timeout_s=0.5, clock=clock)
    assert h.state == SensorState.STARTING and h.reason == "waiting for first data"
    h.mark_connected(True)
    h.frames_received(10, 1000)
    ev = h.update()
    assert [e.state for e in ev] == [SensorState.OK] and ev[0].host_time_s == 100.0
    clock.t += 0.5  # age == timeout: still OK (strictly older is a stall)
    assert h.update() == [] and h.state == SensorState.OK
    clock.t += 0.001
    ev = h.update()
    assert [e.state for e in ev] == [SensorState.FAULT]
    assert ev[0].host_time_s == pytest.approx(100.501) and "no data for 0.50 s" in ev[0].reason
    clock.t += 5.0
    assert h.update() == []  # one event per change, not one per poll
    h.frames_received(1)
    assert [e.state for e in h.update()] == [SensorState.OK]


def test_degraded_above_the_error_rate_within_the_window_only() -> None:
    clock = FakeClock()
    clock.t = 100.0
    h = SensorHealth("emi", stall_timeout_s=1.0, degraded_error_rate=0.05, window_s=2.0,
                     clock=clock)  # fmt: skip
    h.mark_connected(True)
    h.frames_received(100)
    h.count("crc_errors", 5)  # 5 / 105 = 4.8 %: below the 5 % rate
    assert [e.state for e in h.update()] == [SensorState.OK]
    h.count("resyncs", 1)  # 6 / 106 = 5.7 %
    ev = h.update()
    assert [e.state for e in ev] == [SensorState.DEGRADED] and "6 errors" in ev[0].reason
    assert h.counters.crc_errors == 5 and h.counters.resyncs == 1
    for _ in range(4):  # errors age out of the 2 s window while frames keep coming
        clock.t += 0.6
        h.frames_received(10)
    assert [e.state for e in h.update()] == [SensorState.OK]
    h.count("garbage_bytes", 500)  # counted, but not an error rate by itself
    assert h.update() == [] and h.counters.garbage_bytes == 500


def test_disconnect_and_device_fault_are_faults_with_their_reason() -> None:
    clock = FakeClock()
    clock.t = 100.0
    h = SensorHealth("gps", clock=clock)
    h.mark_connected(True)
    h.frames_received(1)
    h.update()
    h.mark_connected(False, "port closed")
    ev = h.update()
    assert [(e.state, e.reason) for e in ev] == [(SensorState.FAULT, "port closed")]
    h.mark_connected(True)
    h.frames_received(1)
    h.device_fault = "antenna open"
    h.update()
    assert h.state == SensorState.FAULT and h.reason == "device reports: antenna open"


# --------------------------------------------------------------------------- data clock


def test_on_a_data_clock_nothing_passes_before_the_first_data() -> None:
    from detect.health import DataClock

    clock = DataClock()
    assert math.isnan(clock())
    h = SensorHealth("gpr", stall_timeout_s=0.5, startup_timeout_s=2.0, clock=clock)
    h.mark_connected(True)
    h.count("crc_errors")  # counted, in no window: it must not block the window's pruning
    for _ in range(3):  # however long the first data takes on the wall clock
        assert h.update() == [] and h.state == SensorState.STARTING
    clock.advance(5000.0)  # another sensor's first data: the start is here, not at 0
    assert h.update() == [] and h.state == SensorState.STARTING
    clock.advance(5001.9)
    assert h.update() == [] and h.state == SensorState.STARTING
    clock.advance(5002.1)
    (ev,) = h.update()
    assert ev.state == SensorState.FAULT and ev.host_time_s == 5002.1
    assert h.counters.crc_errors == 1


def test_a_data_clock_only_moves_forward() -> None:
    from detect.health import DataClock

    clock = DataClock()
    for t, want in ((3.0, 3.0), (2.0, 3.0), (math.nan, 3.0), (math.inf, 3.0), (3.5, 3.5)):
        clock.advance(t)
        assert clock() == want
