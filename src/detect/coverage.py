"""Coverage along the track: which ground a working sensor actually passed over.

Fail-safe rule: ground the head passed while a *needed* sensor was in FAULT is
**not covered**, never "clear". Each needed sensor's ground position is the head
position plus that sensor's offset, so a GPR ahead of the coil and an EMI coil
behind it miss different strips of ground when each fails.

Ground later passed again by a working sensor counts as covered (the operator went
back over it). Everything is in along-track metres, in the same frame as alarms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from detect.blocks import SensorState

Interval = tuple[float, float]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of closed intervals, sorted, touching ones joined."""
    out: list[list[float]] = []
    for a, b in sorted((min(a, b), max(a, b)) for a, b in intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract(base: Iterable[Interval], cut: Iterable[Interval]) -> list[Interval]:
    """``base`` minus ``cut`` (both any intervals), as merged intervals of positive length."""
    result = merge(base)
    for c0, c1 in merge(cut):
        nxt: list[Interval] = []
        for a, b in result:
            if c1 <= a or c0 >= b:
                nxt.append((a, b))
                continue
            if a < c0:
                nxt.append((a, c0))
            if c1 < b:
                nxt.append((c1, b))
        result = nxt
    return [(a, b) for a, b in result if b > a]


def total_m(intervals: Iterable[Interval]) -> float:
    return float(sum(b - a for a, b in merge(intervals)))


class CoverageTracker:
    """Ground passed with / without each needed sensor working.

    Call :meth:`update` with the head position and the sensors' states as often as
    the loop runs; the stretch from the previous head position to this one is
    attributed to the states at the previous call (what was true while moving).
    Time with a needed sensor in FAULT and no head position at all is counted in
    ``blind_s``: ground may have been passed that nobody can place.
    """

    def __init__(self, needed: Sequence[str], offsets_m: Mapping[str, float] | None = None) -> None:
        self.needed = tuple(needed)
        self.offsets_m = {s: float((offsets_m or {}).get(s, 0.0)) for s in self.needed}
        self._covered: dict[str, list[Interval]] = {s: [] for s in self.needed}
        self._missed: dict[str, list[Interval]] = {s: [] for s in self.needed}
        self._last_pos = math.nan
        self._last_time = math.nan
        self._last_states: dict[str, SensorState] = {}
        self.blind_s = 0.0
        #: time during which sensor data arrived but the head had no position: not scored
        self.unplaced_s = 0.0
        self._polled_distance_m = 0.0
        self._data_driven: set[str] = set()
        self._last_data: dict[str, float] = {}
        self._last_head_seen = math.nan
        #: distance walked, per sensor, on the head positions its own blocks carry
        self._dist_m: dict[str, float] = {}
        self._dist_last: dict[str, float] = {}

    def add_data(
        self,
        sensor: str,
        position_m: np.ndarray,
        max_gap_m: float = 0.05,
        footprint_m: float = 0.01,
    ) -> None:
        """Ground positions where ``sensor`` delivered data: covered by it, whatever the state.

        Once a sensor's data is tracked this way, the ground the head passed counts as
        covered by it only where its data lies: a block that arrives late still covers the
        ground it was measured on, and a gap in its data is not covered whatever the
        declared state (a recording replayed without health, a stall shorter than the
        FAULT timeout). Gaps up to ``max_gap_m`` between readings count as covered, and
        each reading covers ``footprint_m`` either side of its position (a sensor sees a
        patch of ground, not a point; 1 cm is well inside a GPR or coil footprint).
        """
        if sensor not in self._covered:
            return
        pos = np.asarray(position_m, dtype=np.float64)
        pos = pos[np.isfinite(pos)]
        self._data_driven.add(sensor)
        if pos.size == 0:
            return
        last = self._last_data.get(sensor)
        self._last_data[sensor] = float(pos[-1])
        if last is not None:
            pos = np.concatenate([[last], pos])  # join consecutive blocks
        breaks = np.flatnonzero(np.abs(np.diff(pos)) > max_gap_m) + 1
        for run in np.split(pos, breaks):
            self._covered[sensor].append(
                (float(run.min()) - footprint_m, float(run.max()) + footprint_m)
            )
        self._compact()

    def head_passed(self, head_position_m: np.ndarray, sensor: str | None = None) -> None:
        """The head went over these positions (one block's worth): passed by every sensor
        whose coverage follows its data (the rest is decided by :meth:`update`).

        The first ``sensor`` named here also measures the distance walked (the path length
        of its head positions), so a file scanned in one block still reports its length.
        """
        pos = np.asarray(head_position_m, dtype=np.float64)
        pos = pos[np.isfinite(pos)]
        if pos.size == 0:
            return
        if sensor is not None:
            last = self._dist_last.get(sensor)
            path = pos if last is None else np.concatenate([[last], pos])
            self._dist_m[sensor] = self._dist_m.get(sensor, 0.0) + float(
                np.abs(np.diff(path)).sum()
            )
            self._dist_last[sensor] = float(pos[-1])
        lo, hi = float(pos.min()), float(pos.max())
        if math.isfinite(self._last_head_seen):
            lo, hi = min(lo, self._last_head_seen), max(hi, self._last_head_seen)
        self._last_head_seen = float(pos[-1])
        for s in self._data_driven:
            off = self.offsets_m[s]
            self._missed[s].append((lo + off, hi + off))
        self._compact()

    def update(
        self, head_position_m: float, states: Mapping[str, SensorState], time_s: float
    ) -> None:
        prev_states = self._last_states or dict(states)
        if math.isfinite(head_position_m) and math.isfinite(self._last_pos):
            a, b = self._last_pos, head_position_m
            if b == a and any(
                prev_states.get(s, SensorState.FAULT) == SensorState.FAULT for s in self.needed
            ):
                # the position froze with a sensor down (e.g. the odometer is in the dead
                # head): ground may be passed that nobody can place
                self.blind_s += max(0.0, time_s - self._last_time)
            if b != a:
                self._polled_distance_m += abs(b - a)
                for s in self.needed:
                    off = self.offsets_m[s]
                    seg = (a + off, b + off)
                    if s in self._data_driven:
                        # Passed: covered only where its data lies (a gap in the data is
                        # not covered even if no FAULT was declared, e.g. in a recording).
                        self._missed[s].append(seg)
                    elif prev_states.get(s, SensorState.FAULT) == SensorState.FAULT:
                        self._missed[s].append(seg)
                    else:
                        self._covered[s].append(seg)
                self._compact()
        elif not math.isfinite(head_position_m) and math.isfinite(self._last_time):
            dt = max(0.0, time_s - self._last_time)
            if any(prev_states.get(s, SensorState.FAULT) == SensorState.FAULT for s in self.needed):
                self.blind_s += dt
            if self._data_driven:
                self.unplaced_s += dt
        if math.isfinite(head_position_m):
            for s in self.needed:
                last = self._last_data.get(s)
                if states.get(s) == SensorState.FAULT and last is not None:
                    # A stall is declared only after a timeout: the ground from the
                    # sensor's last data up to here was passed without it, too.
                    here = head_position_m + self.offsets_m[s]
                    self._missed[s].append((min(last, here), max(last, here)))
            self._last_pos = head_position_m
        self._last_time = time_s
        self._last_states = dict(states)

    @property
    def distance_m(self) -> float:
        """Distance walked: the longest path any sensor's own positions describe (one
        sensor down still leaves the other's), else the head position polled each loop."""
        return max(self._dist_m.values(), default=self._polled_distance_m)

    def _compact(self) -> None:
        for d in (self._covered, self._missed):
            for s, lst in d.items():
                if len(lst) > 64:
                    d[s] = merge(lst)

    def not_covered(self, sensor: str | None = None) -> list[Interval]:
        """Ground not covered by ``sensor`` (or by any needed sensor when None)."""
        sensors = self.needed if sensor is None else (sensor,)
        out: list[Interval] = []
        for s in sensors:
            out.extend(subtract(self._missed[s], self._covered[s]))
        return merge(out)

    def not_covered_m(self) -> float:
        return total_m(self.not_covered())

    def segments(self) -> list[dict[str, Any]]:
        """The track as consecutive segments ``{start_m, end_m, status, missing}``.

        ``status`` is ``covered`` or ``not_covered``; ``missing`` names the needed
        sensors that did not cover that stretch.
        """
        passed = merge([iv for s in self.needed for iv in (*self._covered[s], *self._missed[s])])
        per_sensor = {s: self.not_covered(s) for s in self.needed}
        cuts = sorted(
            {x for iv in passed for x in iv}
            | {x for ivs in per_sensor.values() for iv in ivs for x in iv}
        )
        out: list[dict[str, Any]] = []
        for a, b in pairwise(cuts):
            mid = 0.5 * (a + b)
            if not any(p0 <= mid <= p1 for p0, p1 in passed):
                continue
            missing = sorted(
                s for s, ivs in per_sensor.items() if any(p0 <= mid <= p1 for p0, p1 in ivs)
            )
            status = "not_covered" if missing else "covered"
            if (
                out
                and out[-1]["status"] == status
                and out[-1]["missing"] == missing
                and (math.isclose(out[-1]["end_m"], a))
            ):
                out[-1]["end_m"] = b
            else:
                out.append({"start_m": a, "end_m": b, "status": status, "missing": missing})
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "distance_m": self.distance_m,
            "not_covered_m": self.not_covered_m(),
            "blind_s": self.blind_s,
            "unplaced_s": self.unplaced_s,
            "needed": list(self.needed),
        }
