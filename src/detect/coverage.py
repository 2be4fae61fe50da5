"""Coverage along the track: which ground a working sensor actually passed over.

Fail-safe rule: ground the head passed while a *needed* sensor was in FAULT is
**not covered**, never "clear". Each needed sensor's ground position is the head
position plus that sensor's offset, so a GPR ahead of the coil and an EMI coil
behind it miss different strips of ground when each fails.

Ground later passed again by a working sensor counts as covered (the operator went
back over it). Everything is in along-track metres, in the same frame as alarms.

Coverage behind the head becomes *final* once nothing can change it any more
(:meth:`CoverageTracker.take_final`): the recorder appends it to the session as the run
goes, so a killed session still holds its coverage up to nearly the last flush.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


def clip_below(intervals: Iterable[Interval], floor_m: float) -> list[Interval]:
    """``intervals`` restricted to ``[floor_m, inf)``, merged."""
    return [(max(a, floor_m), b) for a, b in merge(intervals) if b > floor_m]


def _append_in_order(merged: list[Interval], iv: Interval) -> None:
    """Append ``iv`` to sorted, merged ``merged`` (``iv`` starts at or after its last start)."""
    if merged and iv[0] <= merged[-1][1]:
        merged[-1] = (merged[-1][0], max(merged[-1][1], iv[1]))
    else:
        merged.append(iv)


def coverage_states(
    states: Mapping[str, SensorState], lossy: Iterable[str]
) -> dict[str, SensorState]:
    """Sensor states as coverage sees them: DEGRADED only for a sensor losing more of its
    frames than its health's ``lossy_rate`` (holes in its data: its ground is not covered);
    link noise that loses nothing (resyncs, garbage between frames) leaves it OK. A sensor
    still STARTING has delivered nothing: its ground counts as under a FAULT (not covered)."""
    bad = set(lossy)
    down = (SensorState.FAULT, SensorState.STARTING)
    return {
        s: SensorState.FAULT if st in down else SensorState.DEGRADED if s in bad else SensorState.OK
        for s, st in states.items()
    }


@dataclass(frozen=True)
class FinalCoverage:
    """Coverage that became final since the previous :meth:`CoverageTracker.take_final`.

    ``segments`` are whole segments (as :meth:`CoverageTracker.segments` gives them) that
    will not change any more, in track order. ``final_to_m``: nothing below it changes any
    more (``inf`` at the end of the run). ``open_segment`` is the segment that reaches
    ``final_to_m`` and may still grow beyond it: its ``status`` and ``missing`` are final over
    ``[start_m, end_m)`` with ``end_m = final_to_m``; None when no passed ground is open.
    """

    segments: list[dict[str, Any]]
    final_to_m: float
    open_segment: dict[str, Any] | None


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
        #: ground not covered even where a window was scored with the sensor's data (alarms
        #: still come): passed while it was DEGRADED (its link below the health bar), or
        #: ground whose position is in doubt (:meth:`position_in_doubt`)
        self._doubtful: dict[str, list[Interval]] = {s: [] for s in self.needed}
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
        #: segments handed out by take_final, and per sensor the not-covered ground in them
        self._final: list[dict[str, Any]] = []
        self._final_nc: dict[str, list[Interval]] = {s: [] for s in self.needed}
        #: ground below this has been handed out as final: later additions there are dropped,
        #: except ground passed there for the first time without a sensor (see _add)
        self.floor_m = -math.inf
        #: passed ground handed out as final (segments plus the open segment's final part)
        self._handed: list[Interval] = []
        #: not-covered ground first passed below the floor, per sensor, not yet handed out
        self._late_missed: dict[str, list[Interval]] = {s: [] for s in self.needed}
        self._final_late_nc: dict[str, list[Interval]] = {s: [] for s in self.needed}

    def _add(self, kind: dict[str, list[Interval]], sensor: str, a: float, b: float) -> None:
        """Record ground as covered or missed. Below :attr:`floor_m` the record is final:
        covering it late is not credited, but ground passed there without the sensor for the
        first time (backing up behind the track's start) is kept, never dropped as clear."""
        lo, hi = min(a, b), max(a, b)
        if hi > self.floor_m:
            kind[sensor].append((max(lo, self.floor_m), hi))
        if lo < self.floor_m and kind is not self._covered:
            self._late_missed[sensor].append((lo, min(hi, self.floor_m)))

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
            lo, hi = float(run.min()) - footprint_m, float(run.max()) + footprint_m
            self._add(self._covered, sensor, lo, hi)
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
            self._add(self._missed, s, lo + off, hi + off)
        self._compact()

    def position_in_doubt(self, lo_m: float, hi_m: float) -> None:
        """Head positions ``lo_m``..``hi_m`` stay not covered in this epoch, for every needed
        sensor, whatever data is later placed there: ground the head was dead-reckoned
        over while every position stream was silent, where the odometer then came back
        behind that position. Either the head stopped meanwhile (and is scanning that ground
        now) or its odometer slipped while the link was down (and the data now placed there
        lies elsewhere); positions alone cannot tell, so it is never counted clear."""
        if not (math.isfinite(lo_m) and math.isfinite(hi_m) and hi_m > lo_m):
            return
        for s in self.needed:
            off = self.offsets_m[s]
            self._add(self._doubtful, s, lo_m + off, hi_m + off)
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
                    if prev_states.get(s) == SensorState.DEGRADED:
                        self._add(self._doubtful, s, a + off, b + off)
                    if s in self._data_driven:
                        # Passed: covered only where its data lies (a gap in the data is
                        # not covered even if no FAULT was declared, e.g. in a recording).
                        self._add(self._missed, s, a + off, b + off)
                    elif prev_states.get(s, SensorState.FAULT) == SensorState.FAULT:
                        self._add(self._missed, s, a + off, b + off)
                    else:
                        self._add(self._covered, s, a + off, b + off)
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
                    self._add(self._missed, s, last, here)
            self._last_pos = head_position_m
        self._last_time = time_s
        self._last_states = dict(states)

    @property
    def distance_m(self) -> float:
        """Distance walked: the longest path any sensor's own positions describe (one
        sensor down still leaves the other's), else the head position polled each loop."""
        return max(self._dist_m.values(), default=self._polled_distance_m)

    def _compact(self) -> None:
        for d in (self._covered, self._missed, self._doubtful):
            for s, lst in d.items():
                if len(lst) > 64:
                    d[s] = merge(lst)

    def _open_not_covered(self, sensor: str) -> list[Interval]:
        missed = subtract(self._missed[sensor], self._covered[sensor])
        return merge(missed + self._doubtful[sensor]) if self._doubtful[sensor] else missed

    def not_covered(self, sensor: str | None = None) -> list[Interval]:
        """Ground not covered by ``sensor`` (or by any needed sensor when None)."""
        sensors = self.needed if sensor is None else (sensor,)
        out: list[Interval] = []
        for s in sensors:
            out.extend(self._final_nc[s])
            out.extend(self._final_late_nc[s])
            out.extend(subtract(merge(self._late_missed[s]), self._handed))
            out.extend(self._open_not_covered(s))
        return merge(out)

    def not_covered_m(self) -> float:
        return total_m(self.not_covered())

    def segments(self) -> list[dict[str, Any]]:
        """The track as consecutive segments ``{start_m, end_m, status, missing}``.

        ``status`` is ``covered`` or ``not_covered``; ``missing`` names the needed
        sensors that did not cover that stretch. The segments already handed out as final
        come first, unchanged; the rest is computed from the ground still open.
        """
        final = [{**seg, "missing": list(seg["missing"])} for seg in self._final]
        return final + self._open_segments()

    def _open_segments(self) -> list[dict[str, Any]]:
        passed = merge(
            [
                iv
                for s in self.needed
                for iv in (*self._covered[s], *self._missed[s], *self._doubtful[s])
            ]
        )
        per_sensor = {s: self._open_not_covered(s) for s in self.needed}
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

    # -- final coverage ---------------------------------------------------------------
    def _head_frontier_m(self) -> float:
        """Lowest head position from which ground can still be passed for the first time.

        The polled head position and the newest head position of each sensor's blocks,
        leaving out sensors in FAULT (a stalled stream must not hold coverage back; data it
        delivers late lands on ground already passed). Ground first reached by backing up
        behind :attr:`floor_m` is recorded as not covered (:meth:`_add`), never as clear."""
        heads = [self._last_pos] + [
            x
            for s, x in self._dist_last.items()
            if self._last_states.get(s, SensorState.OK) != SensorState.FAULT
        ]
        finite = [x for x in heads if math.isfinite(x)]
        return min(finite) if finite else -math.inf

    def final_m(self, scored_to_m: float) -> float:
        """Position below which coverage cannot change any more.

        ``scored_to_m``: every window centre below it has been scored or skipped for good
        (the end of the ground the newest scored centre stands for), so no scored window
        adds covered ground below it. No sensor's footprint reaches new ground below the
        head frontier plus the smallest sensor offset.
        """
        offset_m = min(self.offsets_m.values(), default=0.0)
        return max(self.floor_m, min(scored_to_m, self._head_frontier_m() + offset_m))

    def take_final(self, scored_to_m: float) -> FinalCoverage | None:
        """Hand out the coverage that became final since the last call (None: nothing new).

        The whole segments that end below :meth:`final_m` are moved out of the open
        intervals (so each call works on the open ground only), and later additions below
        ``final_m`` are dropped: what was handed out is never contradicted, and
        :meth:`segments` at the end starts with exactly these segments.
        """
        final_m = self.final_m(scored_to_m)
        if not final_m > self.floor_m:
            return None
        return self._settle(final_m)

    def take_rest(self) -> FinalCoverage:
        """End of the run: everything still open becomes final (``final_to_m`` = inf)."""
        return self._settle(math.inf)

    def _late_segments(self) -> list[dict[str, Any]]:
        """Ground first passed below the floor without a sensor: one segment per sensor and
        stretch (outside the track order), so backing up never reads as clear."""
        out = []
        for s, lst in self._late_missed.items():
            for a, b in subtract(merge(lst), self._handed):
                if b > a:
                    out.append({"start_m": a, "end_m": b, "status": "not_covered", "missing": [s]})
                    self._final_late_nc[s].append((a, b))
            lst.clear()
        return sorted(out, key=lambda seg: (seg["start_m"], seg["missing"]))

    def _settle(self, final_m: float) -> FinalCoverage:
        late = self._late_segments()
        segs = self._open_segments()
        n = 0
        while n < len(segs) and self._ends_before(segs[n]["end_m"], final_m):
            n += 1
        done, rest = segs[:n], segs[n:]
        opened = rest[0] if rest and rest[0]["start_m"] < final_m else None
        self._handed = merge(
            [*self._handed, *((seg["start_m"], seg["end_m"]) for seg in done)]
            + ([(opened["start_m"], final_m)] if opened is not None else [])
        )
        self._final.extend(late + done)
        for seg in done:
            for s in seg["missing"]:
                _append_in_order(self._final_nc[s], (seg["start_m"], seg["end_m"]))
        cut_m = opened["start_m"] if opened is not None else final_m
        for d in (self._covered, self._missed, self._doubtful):
            for s, lst in d.items():
                d[s] = clip_below(lst, cut_m)
        self.floor_m = final_m
        if opened is not None:
            opened = {**opened, "end_m": final_m}
        handed = [{**seg, "missing": list(seg["missing"])} for seg in late + done]
        return FinalCoverage(handed, final_m, opened)

    @staticmethod
    def _ends_before(end_m: float, final_m: float) -> bool:
        """A segment ending this far below ``final_m`` cannot be joined by later ground
        (:meth:`segments` joins segments whose ends are within ``math.isclose``)."""
        return end_m < final_m and not math.isclose(end_m, final_m, rel_tol=1e-6, abs_tol=1e-6)

    def summary(self) -> dict[str, Any]:
        return {
            "distance_m": self.distance_m,
            "not_covered_m": self.not_covered_m(),
            "blind_s": self.blind_s,
            "unplaced_s": self.unplaced_s,
            "needed": list(self.needed),
        }
