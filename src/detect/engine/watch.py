"""The pipeline's view of its sensors, once per loop turn: the sources' health events and
states (a sensor whose blocks cannot be processed, or a radar outside the model's
envelope, counts as FAULT), the snapshots the
display shows, the sensors losing frames, and where the head is for coverage."""

from __future__ import annotations

import math
from typing import Any

from detect.blocks import SensorState


def poll_sources(pipe: Any, sources: Any, now: float) -> set[str]:
    """Take the sources' health events and states into ``pipe``; return the sensors losing
    more of their frames than their health's ``lossy_rate`` (their ground is not covered)."""
    lossy: set[str] = set()
    for src in sources:
        for ev in src.poll_health():
            pipe.record_health(ev)
        for name, h in src.health.items():
            if getattr(h, "lossy", False):
                lossy.add(name)
            failing = pipe.processing_errors.get(name)
            if failing is not None:
                failing = f"processing: {failing}"
            else:
                failing = pipe.input_check.refused.get(name)
            pipe.states[name] = SensorState.FAULT if failing is not None else h.state
            snap = h.snapshot()
            snap["rate_hz"] = rate_hz(pipe, name, now)
            if failing is not None:
                snap["state"] = SensorState.FAULT.name
                snap["reason"] = failing
            pipe.health_snapshots[name] = snap
    return lossy


def rate_hz(pipe: Any, sensor: str, now: float) -> float:
    """Items per second a sensor delivered, over about the last second."""
    n = pipe.n_items.get(sensor, 0)
    t0, n0, rate = pipe.rates.get(sensor, (now, n, 0.0))
    if now - t0 >= 1.0:
        rate = (n - n0) / (now - t0)
        pipe.rates[sensor] = (now, n, rate)
    elif sensor not in pipe.rates:
        pipe.rates[sensor] = (now, n, 0.0)
    return rate


def head_for_coverage(aligner: Any, faulted: bool, now: float) -> float:
    """The head position coverage is updated to. With a needed sensor down and every
    position stream stalled, the head is dead-reckoned for up to 2 s (host times on our
    clock only) so the ground passed meanwhile is not lost."""
    head = float(aligner.head_position_m)
    lag = now - aligner.head_time_s
    speed = aligner.speed.speed_m_s
    if faulted and math.isfinite(speed) and 0.0 < lag < 2.0:
        head += speed * lag
    return head


def losses(sources: Any, needed: Any) -> int:
    """Data the needed sensors lost so far: frames missing from their sequence, plus links
    lost (a reconnect starts a new sequence, so its missing frames are not counted)."""
    return sum(
        h.counters.dropped_frames + h.counters.reconnects
        for src in sources
        for name, h in src.health.items()
        if name in needed
    )


#: the position streams count as silent (the head dead-reckoned, not tracked) after this
SILENT_POSITIONS_S = 0.2


class Reckoning:
    """Ground the head was dead-reckoned over during one silence of every position stream.

    While a needed sensor is down and no position has come for :data:`SILENT_POSITIONS_S`,
    the head is dead-reckoned (:func:`head_for_coverage`). When positions come again, data
    was lost meanwhile (frames missing from the sequence, or the link lost and reconnected:
    not a pipeline that fell behind and reads its backlog now), and the odometer resumes
    behind the farthest reckoned position, :meth:`step` returns the stretch from the last
    position before the silence to that one: its position is in doubt
    (:meth:`~detect.coverage.CoverageTracker.position_in_doubt`). A head that walked on
    resumes at or beyond it, and nothing changes.
    """

    def __init__(self) -> None:
        self.from_m = math.nan
        self.to_m = math.nan
        self.lost_at_start = 0

    def step(
        self, aligner: Any, head_m: float, faulted: bool, now: float, losses: int
    ) -> tuple[float, float] | None:
        """``losses``: the needed sensors' lost frames plus lost links so far (a count that
        only grows); returns the stretch in doubt when a silence ends, else None."""
        known = float(aligner.head_position_m)
        if now - float(aligner.head_time_s) > SILENT_POSITIONS_S:
            if faulted and math.isfinite(known) and head_m > known:
                if math.isnan(self.from_m):
                    self.from_m, self.lost_at_start = known, losses
                self.to_m = head_m if math.isnan(self.to_m) else max(self.to_m, head_m)
            return None
        if math.isnan(self.to_m):
            return None
        lost = losses > self.lost_at_start
        out = (self.from_m, self.to_m) if lost and known < self.to_m else None
        self.from_m = self.to_m = math.nan
        return out
