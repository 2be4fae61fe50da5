"""The pipeline on the real sensor-head driver talking to the device emulator over TCP:
garbage on the line and an unplugged cable, injected by the emulator's fault switches."""

from __future__ import annotations

import io
import threading
import time

import detect.drivers.emulate  # noqa: F401  (plain import: an import error fails, never skips)
import numpy as np

from detect.blocks import SensorState
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.sinks.display import PlainDisplay
from detect.sources.registry import create_source


def test_unplugged_head_and_garbage_fault_recover_and_leave_not_covered_ground() -> None:
    from detect.drivers.emulate import Emulator, Faults, HeadEncoder, TcpLink
    from detect.drivers.feed import make_feed

    faults = Faults(garbage_rate_hz=5.0, garbage_bytes=48, seed=1)
    emu = Emulator(HeadEncoder(), TcpLink(), make_feed("synthetic", 30.0), faults).start()
    try:
        src = create_source(
            {
                "kind": "sensor_head",
                "url": emu.address,
                "sensors": ["gpr", "emi"],
                "stall_timeout_s": 0.5,
            }
        )
        cfg = compose(["run.display=false", "model.name=__none__", "model.allow_interim=true"])
        out = io.StringIO()
        pipe = build_pipeline(
            cfg, ("gpr", "emi"), PlainDisplay(stream=out), None, source_info=src.info()
        )
        timer = threading.Timer(2.0, emu.unplug, args=(1.5,))
        src.open()
        timer.start()
        t0 = time.monotonic()
        drive(pipe, src, 6.0)
        src.close()
        close_out(pipe, None)
    finally:
        timer.cancel()
        emu.stop()
    gpr = [e for e in pipe.health_events if e.sensor == "gpr"]
    fault = [e for e in gpr if e.state == SensorState.FAULT and e.host_time_s > t0 + 1.5]
    assert fault, [str(e) for e in gpr]
    assert any(e.state != SensorState.FAULT and e.host_time_s > fault[0].host_time_s for e in gpr)
    counters = src.health["gpr"].counters
    assert counters.reconnects >= 1
    assert counters.resyncs + counters.crc_errors + counters.corrupt_frames > 0  # the garbage
    # scoring went on after the reconnection: the outage lies inside the scored track
    # (the half windows at the run's start and end are not covered either)
    pos = np.frombuffer(pipe.track_pos, dtype=np.float64)
    nc = pipe.coverage.not_covered("gpr")
    inner = [(a, b) for a, b in nc if pos.min() < a and b < pos.max()]
    assert pos.size and inner, nc
    assert max(b - a for a, b in inner) > 0.2
