"""The early cue from the raw signals: over a simulated mine it comes while the head is
still over the mine, before the window-based alarm is declared; over empty simulated soil it
does not fire; it is never an alarm and never recorded."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import pytest

import detect
from detect.alarms import Cue, EarlyCue
from detect.blocks import MdBlock, MdHeader
from detect.sinks.base import Sink
from detect.sinks.display import DisplaySink, PlainDisplay

TARGET_M = 2.0


def _walk(targets: list[Any], soil: str, seed: int) -> tuple[list[tuple[Cue, float]], list[Any]]:
    """A 4 m simulated lane through the pipeline (shipped model, composed settings): the
    cues with the head's position when each fired, and the alarms with the head's
    position when each was declared."""
    from detect.engine.build import build_pipeline
    from detect.evaluate import stream_items
    from detect.sim.lane import simulate_lane
    from detect.sim.scene import canonical_scene
    from detect.sim.settings import settings_from

    cfg = detect.compose()
    scene = canonical_scene(targets, soil, length_m=4.0, seed=seed, scatterers=True, flat=False)
    lane = simulate_lane(seed, settings_from(dict(cfg.sim)), scene=scene)
    cue = EarlyCue()
    cues: list[tuple[Cue, float]] = []
    alarms: list[tuple[Any, float]] = []

    class Watch(Sink):
        name = "watch"

        def on_processed(self, block: Any) -> None:
            cues.extend((c, pipe.aligner.head_position_m) for c in cue.feed(block))

        def on_alarm(self, alarm: Any) -> None:
            alarms.append((alarm, pipe.aligner.head_position_m))

    display = PlainDisplay(period_s=math.inf, stream=io.StringIO())
    pipe = build_pipeline(cfg, ("gpr", "emi"), display, None)
    pipe.add_sink(Watch())
    for item in stream_items([lane.gpr, lane.emi], lane.gps, ("gpr", "emi"), chunk_s=0.1):
        pipe.handle([item])
    pipe.finish()
    assert all(a.tier in ("alarm", "suspect") for a in pipe.alarms)  # a cue is never one
    return cues, alarms


@pytest.mark.parametrize(("kind", "depth_m", "soil"), [("pmn", 0.05, "loam"),
                                                       ("type72", 0.05, "dry_sand")])  # fmt: skip
def test_the_cue_comes_before_the_alarm_over_a_mine(kind: str, depth_m: float, soil: str) -> None:
    from detect.sim.scene import place

    cues, alarms = _walk([place(kind, TARGET_M, depth_m)], soil, 1)
    hit = [(a, h) for a, h in alarms if a.tier == "alarm" and abs(a.position_m - TARGET_M) < 0.3]
    assert hit, "the model's alarm over the mine (the reference the cue must beat)"
    alarm_head_m = hit[0][1]
    near = [(c, h) for c, h in cues if abs(c.position_m - TARGET_M) < 0.3]
    assert near, f"no cue near the mine: {cues}"
    cue, cue_head_m = near[0]
    assert cue.sensor == "emi" and cue.ratio > EarlyCue().factors["emi"]
    # earlier in head position than the declared alarm, by more than the window lag the
    # issue measured (the alarm comes 0.57-0.61 m past the target)
    assert cue_head_m < alarm_head_m - 0.3, (cue_head_m, alarm_head_m)
    assert cue_head_m < TARGET_M + 0.3  # the head is still over (or just past) the mine
    assert len(near) == len(cues) == 1, cues  # and none over the soil either side of it


def test_no_cue_over_empty_magnetic_soil() -> None:
    """Laterite: the most magnetic simulated soil (the mine lanes above cover loam and dry
    sand either side of their mine)."""
    cues, _ = _walk([], "laterite", 2)
    assert cues == []


def _emi_block(t0: float, level: np.ndarray, rate_hz: float = 1000.0) -> MdBlock:
    n = level.size
    hdr = MdHeader(rate_hz, channel_names=tuple(f"g{i}" for i in range(4)), sensor="emi")
    data = np.repeat(level[:, None], 4, axis=1).astype(np.float32)
    t = t0 + np.arange(n) / rate_hz
    return MdBlock.build(data, hdr, seq=np.arange(n), host_time_s=t, position_m=0.5 * t)


def test_one_cue_per_object_whatever_the_block_size() -> None:
    """A bump over a flat noisy background: one cue at its rising edge, the same place for
    blocks of 1, 7 and 500 readings (the cue's state carries across blocks)."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 8.0, 1e-3)
    level = 0.002 * (1 + 0.2 * rng.standard_normal(t.size))
    level += 0.05 * np.exp(-0.5 * ((t - 4.0) / 0.1) ** 2)
    places = []
    for n in (1, 7, 500):
        cue = EarlyCue()
        got = [c for i in range(0, t.size, n) for c in cue.feed(_emi_block(t[i], level[i : i + n]))]
        assert len(got) == 1, (n, got)
        places.append(got[0].position_m)
    # the rising edge: where the bump reaches 5x the background, 0.5 m/s
    edge_s = 4.0 - 0.1 * math.sqrt(2 * math.log(0.05 / (4 * 0.002)))
    assert places == pytest.approx([0.5 * edge_s] * 3, abs=0.02)


def test_the_terminal_shows_the_cue_as_a_cue_not_an_alarm() -> None:
    buf = io.StringIO()
    sink = DisplaySink(PlainDisplay(stream=buf))
    t = np.arange(0.0, 4.0, 1e-3)
    level = 0.002 + 0.05 * np.exp(-0.5 * ((t - 3.0) / 0.1) ** 2)
    for i in range(0, t.size, 100):
        sink.on_processed(_emi_block(t[i], level[i : i + 100]))
    text = buf.getvalue()
    edge_m = 0.5 * (3.0 - 0.1 * math.sqrt(2 * math.log(0.05 / (4 * 0.002))))
    assert re.fullmatch(r"CUE emi at (\S+) m \(\d+x background\): check here\n", text), text
    assert float(text.split()[3]) == pytest.approx(edge_m, abs=0.02)
