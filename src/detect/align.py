"""Along-track alignment: where on the ground each trace / reading was taken.

Sources put the *head reference* position in ``block.position_m`` (odometer or
simulator truth; NaN when unknown). :class:`Aligner` turns that into each sensor's
ground position by adding the sensor's offset from the reference point
(``align.offsets_m``), taking the head position from one of

- ``odometer``: what the source delivered (falls back to trace counting with
  ``trace_spacing_m`` for files that carry no positions);
- ``gps``: distance travelled along the GPS track, interpolated onto host times;
- ``speed``: a constant configured speed from the first sample (a rig without an
  odometer or GPS).

:class:`GpsTrack` also answers "where on Earth was the head at host time t" for
alarms, and returns None (never a stale guess) when the fixes around t are too far apart.
With ``align.gps_antenna_m`` (the antenna's place on the head, see :meth:`Aligner.locate`)
that answer is moved from the antenna to the sensor that measured the alarm.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse

from detect.blocks import GprBlock, GpsFix, MdBlock
from detect.geo import enu_to_lat_lon, ground_distance_m, lat_lon_to_enu

POSITION_SOURCES = ("odometer", "gps", "speed")
#: Straight-line travel a track heading must span, so GPS noise of a slow walker cannot spin it.
MIN_HEADING_BASELINE_M = 0.5
#: Fixes further than this from the time asked about never give its heading.
HEADING_SPAN_S = 10.0
#: Below this receiver speed a course over ground is noise (and often frozen).
MIN_COURSE_SPEED_M_S = 0.3


class GpsTrack:
    """Recent GPS fixes with interpolation onto host times.

    Only fixes with a position count. ``max_gap_s`` is the longest gap between two
    fixes that is still interpolated across; beyond the last fix a position is held
    for at most ``hold_s``. ``max_fixes`` bounds memory over a long session.
    """

    def __init__(self, max_gap_s: float = 2.0, hold_s: float = 0.5, max_fixes: int = 6000) -> None:
        self.max_gap_s = max_gap_s
        self.hold_s = hold_s
        self._t: deque[float] = deque(maxlen=max_fixes)
        self._lat: deque[float] = deque(maxlen=max_fixes)
        self._lon: deque[float] = deque(maxlen=max_fixes)
        self._acc: deque[float] = deque(maxlen=max_fixes)
        self._dist: deque[float] = deque(maxlen=max_fixes)
        self._course: deque[float] = deque(maxlen=max_fixes)
        self._origin: tuple[float, float] | None = None
        self._arrays: tuple[np.ndarray, ...] | None = None
        self.last_fix: GpsFix | None = None
        self.n_fixes = 0

    def __len__(self) -> int:
        return len(self._t)

    @property
    def origin(self) -> tuple[float, float] | None:
        return self._origin

    def add(self, fix: GpsFix) -> None:
        self.last_fix = fix
        if not fix.has_fix or fix.lat_deg is None or fix.lon_deg is None:
            return
        if self._t and fix.host_time_s <= self._t[-1]:
            return
        if self._origin is None:
            self._origin = (fix.lat_deg, fix.lon_deg)
        d = 0.0
        if self._t:
            d = self._dist[-1] + ground_distance_m(
                self._lat[-1], self._lon[-1], fix.lat_deg, fix.lon_deg
            )
        acc = fix.h_acc_m
        if acc is None and fix.hdop is not None:
            acc = 2.5 * fix.hdop  # typical UERE of a code receiver, as a rough 1-sigma
        self._t.append(fix.host_time_s)
        self._lat.append(fix.lat_deg)
        self._lon.append(fix.lon_deg)
        self._acc.append(math.nan if acc is None else float(acc))
        self._dist.append(d)
        self._course.append(_course_or_nan(fix))
        self._arrays = None
        self.n_fixes += 1

    def _np(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            self._arrays = tuple(
                np.fromiter(q, dtype=np.float64, count=len(q))
                for q in (self._t, self._lat, self._lon, self._acc, self._dist, self._course)
            )
        return self._arrays

    def _valid(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index of the fix before, fraction to the next, usable mask) for each time."""
        t = self._np()[0]
        i = np.searchsorted(t, times, side="right") - 1
        n = len(t)
        before = np.clip(i, 0, n - 1)
        after = np.clip(i + 1, 0, n - 1)
        span = t[after] - t[before]
        inside = (i >= 0) & (i < n - 1) & (span <= self.max_gap_s)
        frac = np.where(inside & (span > 0), (times - t[before]) / np.where(span > 0, span, 1), 0.0)
        held = (i == n - 1) & (times - t[n - 1] <= self.hold_s)
        exact = (i >= 0) & (times == t[before])
        return before, frac, inside | held | exact

    def locate(
        self, host_time_s: float, forward_m: float = 0.0, right_m: float = 0.0
    ) -> tuple[float, float, float | None] | None:
        """(lat_deg, lon_deg, h_acc_m) at ``host_time_s``, None without a fix.

        The point is the antenna moved by (``forward_m``, ``right_m``) in the head frame
        (+forward = direction of travel, +right = to the operator's right), turned by the
        heading of :meth:`heading_deg`. When the heading is unknown (standing still, a single
        fix) no direction is invented: the antenna position itself is returned with
        ``h_acc_m`` widened by the offset's length, the radius of the circle the point lies on
        (``h_acc_m`` stays None when the receiver gave no accuracy). A zero offset returns the
        interpolated antenna fix unchanged.
        """
        where = self._antenna_at(host_time_s)
        lever_m = math.hypot(forward_m, right_m)
        if where is None or lever_m == 0.0:
            return where
        lat, lon, acc = where
        heading = self._heading_at(host_time_s, where)
        if heading is None:
            return lat, lon, None if acc is None else acc + lever_m
        h = math.radians(heading)
        east_m = forward_m * math.sin(h) + right_m * math.cos(h)
        north_m = forward_m * math.cos(h) - right_m * math.sin(h)
        lat2, lon2 = enu_to_lat_lon(lat, lon, east_m, north_m)
        return lat2, lon2, acc

    def _antenna_at(self, host_time_s: float) -> tuple[float, float, float | None] | None:
        if not self._t or not math.isfinite(host_time_s):
            return None
        _, lat, lon, acc, _, _ = self._np()
        before, frac, ok = self._valid(np.array([host_time_s]))
        if not ok[0]:
            return None
        b = int(before[0])
        a = min(b + 1, len(lat) - 1)
        f = float(frac[0])
        acc_v = float(np.nanmax([acc[b], acc[a]])) if np.isfinite([acc[b], acc[a]]).any() else None
        return (
            float(lat[b] + f * (lat[a] - lat[b])),
            float(lon[b] + f * (lon[a] - lon[b])),
            acc_v,
        )

    def heading_deg(self, host_time_s: float) -> float | None:
        """Direction of travel at ``host_time_s`` (degrees clockwise from north), or None.

        From the track: the bearing between the last fix at least half the baseline behind
        the position at that time and the first fix at least half of it ahead (or, at an end
        of the track, a whole baseline from it on one side), with the baseline
        ``MIN_HEADING_BASELINE_M`` of straight-line travel, or twice the fixes' accuracy when
        that is larger, so position noise cannot turn it far. Without such fixes within
        ``HEADING_SPAN_S``: the receiver's course over ground of the nearest fix, when it
        moved at least ``MIN_COURSE_SPEED_M_S``. The head is taken to move forwards (an
        operator backing up gets the reverse heading).
        """
        where = self._antenna_at(host_time_s)
        return None if where is None else self._heading_at(host_time_s, where)

    def _heading_at(
        self, host_time_s: float, where: tuple[float, float, float | None]
    ) -> float | None:
        track = self._track_heading_deg(host_time_s, where)
        return track if track is not None else self._course_heading_deg(host_time_s)

    def _track_heading_deg(
        self, host_time_s: float, where: tuple[float, float, float | None]
    ) -> float | None:
        t, lat, lon, _, _, _ = self._np()
        lo = int(np.searchsorted(t, host_time_s - HEADING_SPAN_S, side="left"))
        hi = int(np.searchsorted(t, host_time_s + HEADING_SPAN_S, side="right"))
        lat0, lon0, acc0 = where
        east, north = lat_lon_to_enu(lat0, lon0, lat[lo:hi], lon[lo:hi])
        dist = np.hypot(east, north)
        need = MIN_HEADING_BASELINE_M
        if acc0 is not None and math.isfinite(acc0):
            need = max(need, 2.0 * acc0)
        behind = t[lo:hi] <= host_time_s
        half_behind = np.flatnonzero(behind & (dist >= 0.5 * need))
        if half_behind.size:
            a = int(half_behind[-1])
            chord = np.hypot(east - east[a], north - north[a])
            pair = np.flatnonzero(~behind & (dist >= 0.5 * need) & (chord >= need))
            if pair.size:
                b = int(pair[0])
                return _bearing_deg(east[b] - east[a], north[b] - north[a])
        full_behind = np.flatnonzero(behind & (dist >= need))
        if full_behind.size:
            a = int(full_behind[-1])
            return _bearing_deg(-east[a], -north[a])
        full_ahead = np.flatnonzero(~behind & (dist >= need))
        if full_ahead.size:
            b = int(full_ahead[0])
            return _bearing_deg(east[b], north[b])
        return None

    def _course_heading_deg(self, host_time_s: float) -> float | None:
        t, *_, course = self._np()
        before, _, _ = self._valid(np.array([host_time_s]))
        b = int(before[0])
        near = sorted({b, min(b + 1, len(t) - 1)}, key=lambda k: abs(t[k] - host_time_s))
        for k in near:
            if math.isfinite(course[k]):
                return float(course[k])
        return None

    def distance_at(self, host_time_s: np.ndarray) -> np.ndarray:
        """Distance travelled along the track (m) at each time; NaN where unknown."""
        times = np.asarray(host_time_s, dtype=np.float64)
        if not self._t:
            return np.full(times.shape, np.nan)
        t, _, _, _, dist, _ = self._np()
        before, frac, ok = self._valid(times)
        after = np.minimum(before + 1, len(t) - 1)
        out = dist[before] + frac * (dist[after] - dist[before])
        if len(t) >= 2 and t[-1] > t[-2]:
            # Past the last fix: dead-reckon at the last fix-to-fix speed (for hold_s at
            # most) rather than hold, so traces keep their spacing until the next fix.
            speed = (dist[-1] - dist[-2]) / (t[-1] - t[-2])
            ahead = (before == len(t) - 1) & ok
            out = np.where(ahead, dist[-1] + speed * (times - t[-1]), out)
        return np.where(ok, out, np.nan)


def _course_or_nan(fix: GpsFix) -> float:
    """The receiver's course over ground when it is moving fast enough to mean anything."""
    course, speed = fix.course_deg, fix.speed_m_s
    if course is None or speed is None or not speed >= MIN_COURSE_SPEED_M_S:
        return math.nan
    return float(course) % 360.0 if math.isfinite(course) else math.nan


def _bearing_deg(east_m: float, north_m: float) -> float:
    return math.degrees(math.atan2(east_m, north_m)) % 360.0


class SpeedEstimator:
    """Head speed (m/s) from a least-squares fit of position on time over ``window_s``."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._tp: deque[tuple[float, float]] = deque()

    def add(self, host_time_s: np.ndarray, position_m: np.ndarray) -> None:
        ok = np.isfinite(host_time_s) & np.isfinite(position_m)
        if not ok.any():
            return
        t = np.asarray(host_time_s)[ok]
        p = np.asarray(position_m)[ok]
        # One point per block end and middle is plenty for a speed estimate.
        for k in {0, len(t) // 2, len(t) - 1}:
            self._tp.append((float(t[k]), float(p[k])))
        t_end = self._tp[-1][0]
        while self._tp and self._tp[0][0] < t_end - self.window_s:
            self._tp.popleft()

    @property
    def speed_m_s(self) -> float:
        if len(self._tp) < 2:
            return math.nan
        arr = np.array(self._tp)
        t = arr[:, 0] - arr[-1, 0]
        if np.ptp(t) <= 0:
            return math.nan
        return float(np.polyfit(t, arr[:, 1], 1)[0])


class AlignError(ValueError):
    pass


class Aligner:
    """Head position -> each sensor's ground position, per block (vectorised)."""

    def __init__(
        self,
        offsets_m: Mapping[str, float] | None = None,
        position_source: str = "odometer",
        speed_m_s: float | None = None,
        trace_spacing_m: float | None = None,
        gps: GpsTrack | None = None,
        gps_antenna_m: Sequence[float] = (0.0, 0.0),
    ) -> None:
        if position_source not in POSITION_SOURCES:
            raise AlignError(
                f"align.position_source '{position_source}' is not one of {POSITION_SOURCES}"
            )
        if position_source == "speed" and not (speed_m_s and speed_m_s > 0):
            raise AlignError("align.position_source=speed needs align.speed_m_s > 0")
        self.offsets_m = {str(k): float(v) for k, v in (offsets_m or {}).items()}
        self.gps_antenna_m = _antenna_offset_m(gps_antenna_m)
        self.position_source = position_source
        self.speed_m_s = speed_m_s
        self.trace_spacing_m = trace_spacing_m
        self.gps = gps if gps is not None else GpsTrack()
        self.speed = SpeedEstimator()
        self.head_position_m = math.nan
        self.head_time_s = math.nan
        self._t0_s: float | None = None
        self._count: dict[str, int] = {}

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any], trace_spacing_m: float | None = None) -> Aligner:
        return cls(
            offsets_m=dict(node.get("offsets_m") or {}),
            position_source=str(node.get("position_source", "odometer")),
            speed_m_s=node.get("speed_m_s"),
            trace_spacing_m=trace_spacing_m,
            gps_antenna_m=node.get("gps_antenna_m") or (0.0, 0.0),
        )

    def restarted(self) -> Aligner:
        """The same settings with no position history (a new position epoch); the GPS
        track is kept, since fixes place alarms by time whatever the along-track frame."""
        return Aligner(
            offsets_m=self.offsets_m,
            position_source=self.position_source,
            speed_m_s=self.speed_m_s,
            trace_spacing_m=self.trace_spacing_m,
            gps=self.gps,
            gps_antenna_m=self.gps_antenna_m,
        )

    def offset_m(self, sensor: str) -> float:
        return self.offsets_m.get(sensor, 0.0)

    def locate(
        self, host_time_s: float, sensor: str | None = None
    ) -> tuple[float, float, float | None] | None:
        """(lat_deg, lon_deg, h_acc_m) of the ground under ``sensor`` at ``host_time_s``.

        ``sensor`` is the one whose trace time ``host_time_s`` is (None: the head reference
        point). The GPS antenna sits at ``gps_antenna_m`` = (forward, right) from the
        reference and the sensor ``offset_m(sensor)`` ahead of it, so the ground point is the
        antenna moved by (sensor forward - antenna forward, -antenna right) in the head frame;
        see :meth:`GpsTrack.locate` for the heading and an unknown one.
        """
        ant_forward_m, ant_right_m = self.gps_antenna_m
        forward_m = (0.0 if sensor is None else self.offset_m(sensor)) - ant_forward_m
        return self.gps.locate(host_time_s, forward_m, -ant_right_m)

    def add_fix(self, fix: GpsFix) -> None:
        self.gps.add(fix)

    def head_positions(self, block: GprBlock | MdBlock) -> np.ndarray:
        t = block.host_time_s
        if self.position_source == "gps":
            return self.gps.distance_at(t)
        if self.position_source == "speed":
            if self._t0_s is None:
                self._t0_s = float(t[0])
            assert self.speed_m_s is not None
            return (t - self._t0_s) * float(self.speed_m_s)
        pos = block.position_m
        if self.trace_spacing_m and not np.isfinite(pos).any():
            sensor = block.header.sensor
            start = self._count.get(sensor, 0)
            self._count[sensor] = start + block.n
            return (start + np.arange(block.n, dtype=np.float64)) * float(self.trace_spacing_m)
        return pos

    def apply(self, block: GprBlock | MdBlock) -> GprBlock | MdBlock:
        """The block with each trace's ground position (head + sensor offset)."""
        head = self.head_positions(block)
        finite = np.isfinite(head)
        if finite.any():
            last = int(np.flatnonzero(finite)[-1])
            if not (block.host_time_s[last] < self.head_time_s):
                self.head_position_m = float(head[last])
                self.head_time_s = float(block.host_time_s[last])
            self.speed.add(block.host_time_s, head)
        return block.with_positions(head + self.offset_m(block.header.sensor))


def _antenna_offset_m(value: Sequence[float]) -> tuple[float, float]:
    vals = list(value)
    if len(vals) != 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals
    ):
        raise AlignError(f"align.gps_antenna_m must be [forward_m, right_m], got {value!r}")
    return float(vals[0]), float(vals[1])


#: Traces per sparse product in :meth:`TrackGrid.add`: bounds the float64 copy that a
#: whole-lane call makes (rows x (samples + 1) x 8 bytes) and keeps it in cache.
_GRID_SLICE = 2048


def _ring(ring: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows of cells [lo, hi) of a ring buffer: a view unless the range wraps."""
    a, n = lo % len(ring), max(hi - lo, 0)
    if a + n <= len(ring):
        return ring[a : a + n]
    return ring[np.arange(lo, hi) % len(ring)]


def _ring_put(ring: np.ndarray, lo: int, hi: int, value: np.ndarray | int) -> None:
    """``_ring(ring, lo, hi)[:] = value``, also when the range wraps."""
    a, n = lo % len(ring), max(hi - lo, 0)
    if a + n <= len(ring):
        ring[a : a + n] = value
    else:
        ring[np.arange(lo, hi) % len(ring)] = value


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, run_keys, bounds)``: ``keys[order]`` in runs of equal key, ``run_keys[j]``
    filling ``order[bounds[j]:bounds[j + 1]]``; the input order is kept within a run."""
    if keys.size > 1 and bool((keys[1:] < keys[:-1]).any()):
        order = np.argsort(keys, kind="stable")
    else:
        order = np.arange(keys.size)
    ordered = keys[order]
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    bounds = np.concatenate(([0], starts, [keys.size]))
    return order, ordered[bounds[:-1]], bounds


def _scatter_add(
    sums: np.ndarray, tsum: np.ndarray, cnt: np.ndarray,
    cells: np.ndarray, rows: np.ndarray, data: np.ndarray, times: np.ndarray,
) -> None:  # fmt: skip
    """Trace ``rows[i]`` into the ring slot of ``cells[i]``, in order, as np.add.at would.

    One sparse 0/1 product: matrix row j takes slot j's running sums, then its traces in
    input order, so each slot gets the same float64 additions in the same order as the
    trace-by-trace loop, bit for bit (``s += a; s += b`` is not ``s += a + b``). Cells a
    ring apart (only after a jump) share a slot, as they do in the loop. Rows of ``data``
    not in ``rows`` are never read.
    """
    order, slots, bounds = _runs(cells % cnt.size)
    k = slots.size
    stack = np.empty((k + len(data), sums.shape[1] + 1))
    stack[:k, :-1] = sums[slots]
    stack[:k, -1] = tsum[slots]
    stack[k:, :-1] = data
    stack[k:, -1] = times
    indices = np.insert(k + rows[order], bounds[:-1], np.arange(k))
    indptr = bounds + np.arange(k + 1)
    pick = scipy.sparse.csr_array(
        (np.ones(indices.size), indices, indptr), shape=(k, stack.shape[0])
    )
    out = pick @ stack
    sums[slots] = out[:, :-1]
    tsum[slots] = out[:, -1]
    cnt[slots] += np.diff(bounds)


def _interp_rows(values: np.ndarray, known: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Rows ``at`` of ``values`` linear between the nearest ``known`` rows either side (each
    ``at`` strictly inside), with np.interp's formula and NaN fallback per column, so the
    result is bitwise that of np.interp column by column."""
    right = np.searchsorted(known, at)
    x0, x1 = known[right - 1], known[right]
    y0, slope = values[x0], values[x1]
    with np.errstate(invalid="ignore"):  # inf data: NaN handled below, as np.interp does
        slope -= y0
        slope /= (x1 - x0)[:, None]
        out = slope * (at - x0)[:, None]
        out += y0
        nan = np.isnan(out)
        if nan.any():
            y1 = values[x1]
            out = np.where(nan, slope * (at - x1)[:, None] + y1, out)
            out = np.where(np.isnan(out) & (y0 == y1), y0, out)
    return out


class TrackGrid:
    """One sensor's traces averaged into cells ``i * grid_m`` along the track, streaming.

    Cells sit on a grid common to every sensor (index 0 at position 0), so GPR and EMI
    windows line up cell by cell. A cell is *final* once the sensor has moved past it;
    empty final cells between data (the head moved faster than one trace per cell) are
    filled by linear interpolation when the gap is at most ``max_fill_cells``, otherwise
    they stay invalid (a short gap right below the open cell stays open with it, so the
    fill uses the cell's final mean). Data behind the final edge (the head backing up) is
    not re-gridded and is counted in ``n_behind``. Memory is a ring of ``capacity`` cells.
    Sums are float64, added trace by trace in arrival order whatever the chunking.
    """

    def __init__(self, grid_m: float, capacity: int = 2048, max_fill_cells: int = 5) -> None:
        if not grid_m > 0:
            raise AlignError(f"grid_m must be > 0, got {grid_m}")
        self.grid_m = float(grid_m)
        self.capacity = int(capacity)
        self.max_fill_cells = int(max_fill_cells)
        self._sum: np.ndarray | None = None
        self._cnt = np.zeros(self.capacity, dtype=np.int64)
        self._tsum = np.zeros(self.capacity, dtype=np.float64)
        self._valid = np.zeros(self.capacity, dtype=bool)
        self.final_end: int | None = None
        self.max_seen: int | None = None
        #: First cell of the current run of data (after the start or a jump).
        self.first_cell: int | None = None
        self.n_behind = 0
        self.n_jumps = 0

    def _reset_at(self, idx: int, width: int) -> None:
        """Start over at cell ``idx`` with empty rings; new ``np.zeros`` (not zeroing in place)
        touch only the pages used, which matters for the whole-lane rings of training."""
        self._sum = np.zeros((self.capacity, width), dtype=np.float64)
        self._cnt = np.zeros(self.capacity, dtype=np.int64)
        self._tsum = np.zeros(self.capacity, dtype=np.float64)
        self._valid = np.zeros(self.capacity, dtype=bool)
        self.final_end = idx
        self.max_seen = idx
        self.first_cell = idx

    def add(self, data: np.ndarray, position_m: np.ndarray, host_time_s: np.ndarray) -> None:
        """Sum traces (rows of ``data``) into their cells; NaN positions are skipped."""
        pos = np.asarray(position_m, dtype=np.float64)
        data = np.asarray(data)
        times = np.asarray(host_time_s, dtype=np.float64)
        if not len(data) == len(times) == len(pos):
            raise AlignError(f"{len(data)} traces, {len(pos)} positions, {len(times)} times")
        ok = np.isfinite(pos)
        if not ok.any():
            return
        cell = np.rint(np.where(ok, pos, 0.0) / self.grid_m).astype(np.int64)
        idx = cell[ok]
        if self._sum is None or self.final_end is None:
            self._reset_at(int(idx[0]), data.shape[1])
        assert self._sum is not None
        assert self.final_end is not None and self.max_seen is not None
        if abs(int(idx.max()) - self.final_end) >= self.capacity // 2:
            self.n_jumps += 1
            self._reset_at(int(idx[-1]), self._sum.shape[1])
        keep = idx >= self.final_end
        self.n_behind += int((~keep).sum())
        if not keep.any():
            return
        top = int(idx[keep].max())
        if top > self.max_seen:
            for ring in (self._sum, self._cnt, self._tsum, self._valid):
                _ring_put(ring, self.max_seen + 1, top + 1, 0)
            self.max_seen = top
        use = ok.copy()
        use[ok] = keep
        for a in range(0, len(pos), _GRID_SLICE):
            part = slice(a, a + _GRID_SLICE)
            rows = np.flatnonzero(use[part])
            if rows.size:
                rings = (self._sum, self._tsum, self._cnt)
                _scatter_add(*rings, cell[part][rows], rows, data[part], times[part])

    def finalize(self) -> tuple[int, int]:
        """Close the cells the sensor has passed; return the newly final [lo, hi) cell range."""
        if self.final_end is None or self.max_seen is None or self._sum is None:
            return (0, 0)
        lo, hi = self.final_end, self.max_seen  # cell max_seen may still get traces
        if hi <= lo:
            return (lo, lo)
        # Interpolate from the last final cell (if any) through to the open cell. A final
        # cell holds its mean with count 1 and an empty cell zeros, so every cell's value is
        # sum / max(count, 1).
        ext_lo = lo - 1 if self._valid[(lo - 1) % self.capacity] else lo
        cnt = _ring(self._cnt, ext_lo, hi + 1)
        have = cnt > 0
        div = np.maximum(cnt, 1)
        values = _ring(self._sum, ext_lo, hi + 1) / div[:, None]
        tvals = _ring(self._tsum, ext_lo, hi + 1) / div
        valid = have.copy()
        if have.sum() >= 2 and not have.all():
            known = np.flatnonzero(have)
            missing = np.flatnonzero(~have)
            right = np.searchsorted(known, missing)
            inner = (right > 0) & (right < len(known))
            gap = np.zeros(len(missing), dtype=np.int64)
            gap[inner] = known[right[inner]] - known[right[inner] - 1] - 1
            fill = inner & (gap <= self.max_fill_cells)
            at = missing[fill]
            values[at] = _interp_rows(values, known, at)
            tvals[at] = np.interp(at, known, tvals[known])
            valid[at] = True
        tvals[~valid] = np.nan
        # Empty cells just below the open cell are filled towards its mean, which changes
        # while traces still land there: keep them open until it is final (so any chunking
        # gives the cells of one call), unless the gap is too long to be filled anyway.
        data_cells = np.flatnonzero(have[:-1])
        if data_cells.size:
            trailing = len(have) - 2 - int(data_cells[-1])
            if trailing <= self.max_fill_cells:
                hi -= trailing
        out = slice(lo - ext_lo, hi - ext_lo)
        _ring_put(self._sum, lo, hi, values[out])
        _ring_put(self._cnt, lo, hi, 1)
        _ring_put(self._tsum, lo, hi, tvals[out])
        _ring_put(self._valid, lo, hi, valid[out])
        self.final_end = hi
        return (lo, hi)

    def rows(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final cells [lo, hi): values (hi-lo, m) float32, valid (hi-lo,), host times (s)."""
        if self._sum is None or self.final_end is None or hi > self.final_end:
            raise AlignError(f"cells [{lo}, {hi}) are not final yet")
        if hi - lo > self.capacity // 2 or lo < self.final_end - self.capacity // 2:
            raise AlignError(f"cells [{lo}, {hi}) are no longer held")
        return (
            _ring(self._sum, lo, hi).astype(np.float32),
            _ring(self._valid, lo, hi).copy(),
            _ring(self._tsum, lo, hi).copy(),
        )

    def position_of(self, cell: int | np.ndarray) -> np.ndarray:
        return np.asarray(cell, dtype=np.float64) * self.grid_m
