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
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GpsFix, MdBlock

EARTH_RADIUS_M = 6_371_008.8
POSITION_SOURCES = ("odometer", "gps", "speed")


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
            d = self._dist[-1] + _ground_distance_m(
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
        self._arrays = None
        self.n_fixes += 1

    def _np(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            self._arrays = tuple(
                np.fromiter(q, dtype=np.float64, count=len(q))
                for q in (self._t, self._lat, self._lon, self._acc, self._dist)
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

    def locate(self, host_time_s: float) -> tuple[float, float, float | None] | None:
        """(lat_deg, lon_deg, h_acc_m) of the antenna at ``host_time_s``, None without a fix."""
        if not self._t or not math.isfinite(host_time_s):
            return None
        _, lat, lon, acc, _ = self._np()
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

    def distance_at(self, host_time_s: np.ndarray) -> np.ndarray:
        """Distance travelled along the track (m) at each time; NaN where unknown."""
        times = np.asarray(host_time_s, dtype=np.float64)
        if not self._t:
            return np.full(times.shape, np.nan)
        t, *_, dist = self._np()
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


def _ground_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance; exact to < 1 mm over the few metres between fixes."""
    phi = math.radians(0.5 * (lat1 + lat2))
    dx = math.radians(lon2 - lon1) * math.cos(phi)
    dy = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(dx, dy)


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
    ) -> None:
        if position_source not in POSITION_SOURCES:
            raise AlignError(
                f"align.position_source '{position_source}' is not one of {POSITION_SOURCES}"
            )
        if position_source == "speed" and not (speed_m_s and speed_m_s > 0):
            raise AlignError("align.position_source=speed needs align.speed_m_s > 0")
        self.offsets_m = {str(k): float(v) for k, v in (offsets_m or {}).items()}
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
        )

    def offset_m(self, sensor: str) -> float:
        return self.offsets_m.get(sensor, 0.0)

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


class TrackGrid:
    """One sensor's traces averaged into cells ``i * grid_m`` along the track, streaming.

    Cells sit on a grid common to every sensor (index 0 at position 0), so GPR and EMI
    windows line up cell by cell. A cell is *final* once the sensor has moved past it;
    empty final cells between data (the head moved faster than one trace per cell) are
    filled by linear interpolation when the gap is at most ``max_fill_cells``, otherwise
    they stay invalid (a short gap right below the open cell stays open with it, so the
    fill uses the cell's final mean). Data behind the final edge (the head backing up) is
    not re-gridded and is counted in ``n_behind``. Memory is a ring of ``capacity`` cells.
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

    def _reset_at(self, idx: int) -> None:
        self._cnt[:] = 0
        self._tsum[:] = 0.0
        self._valid[:] = False
        if self._sum is not None:
            self._sum[:] = 0.0
        self.final_end = idx
        self.max_seen = idx
        self.first_cell = idx

    def add(self, data: np.ndarray, position_m: np.ndarray, host_time_s: np.ndarray) -> None:
        pos = np.asarray(position_m, dtype=np.float64)
        ok = np.isfinite(pos)
        if not ok.any():
            return
        data = np.asarray(data)[ok]
        times = np.asarray(host_time_s, dtype=np.float64)[ok]
        idx = np.rint(pos[ok] / self.grid_m).astype(np.int64)
        if self._sum is None:
            self._sum = np.zeros((self.capacity, data.shape[1]), dtype=np.float64)
        if self.final_end is None:
            self._reset_at(int(idx[0]))
        assert self.final_end is not None and self.max_seen is not None
        if abs(int(idx.max()) - self.final_end) >= self.capacity // 2:
            self.n_jumps += 1
            self._reset_at(int(idx[-1]))
        keep = idx >= self.final_end
        self.n_behind += int((~keep).sum())
        if not keep.any():
            return
        idx, data, times = idx[keep], data[keep], times[keep]
        top = int(idx.max())
        if top > self.max_seen:
            fresh = np.arange(self.max_seen + 1, top + 1) % self.capacity
            self._sum[fresh] = 0.0
            self._cnt[fresh] = 0
            self._tsum[fresh] = 0.0
            self._valid[fresh] = False
            self.max_seen = top
        slot = idx % self.capacity
        np.add.at(self._sum, slot, data)
        np.add.at(self._cnt, slot, 1)
        np.add.at(self._tsum, slot, times)

    def finalize(self) -> tuple[int, int]:
        """Close the cells the sensor has passed; return the newly final [lo, hi) cell range."""
        if self.final_end is None or self.max_seen is None or self._sum is None:
            return (0, 0)
        lo, hi = self.final_end, self.max_seen  # cell max_seen may still get traces
        if hi <= lo:
            return (lo, lo)
        # Interpolate from the last final cell (if any) through to the open cell.
        ext_lo = lo - 1 if self._valid[(lo - 1) % self.capacity] else lo
        cells = np.arange(ext_lo, hi + 1)
        slots = cells % self.capacity
        cnt = self._cnt[slots]
        have = cnt > 0
        if ext_lo < lo:
            have[0] = True
            values = self._sum[slots].copy()
            values[1:][have[1:]] /= cnt[1:][have[1:], None]
        else:
            values = np.where(have[:, None], self._sum[slots] / np.maximum(cnt, 1)[:, None], 0.0)
        tvals = self._tsum[slots] / np.maximum(cnt, 1)
        if ext_lo < lo:
            tvals[0] = self._tsum[slots[0]]
        valid = have.copy()
        if have.sum() >= 2 and not have.all():
            known = np.flatnonzero(have)
            missing = np.flatnonzero(~have)
            right = np.searchsorted(known, missing)
            inner = (right > 0) & (right < len(known))
            gap = np.zeros(len(missing), dtype=np.int64)
            gap[inner] = known[right[inner]] - known[right[inner] - 1] - 1
            fill = inner & (gap <= self.max_fill_cells)
            for col in range(values.shape[1]):
                values[missing[fill], col] = np.interp(missing[fill], known, values[known, col])
            tvals[missing[fill]] = np.interp(missing[fill], known, tvals[known])
            valid[missing[fill]] = True
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
        out_slots = slots[out]
        self._sum[out_slots] = values[out]
        self._cnt[out_slots] = 1
        self._tsum[out_slots] = tvals[out]
        self._valid[out_slots] = valid[out]
        self.final_end = hi
        return (lo, hi)

    def rows(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final cells [lo, hi): values (hi-lo, m) float32, valid (hi-lo,), host times (s)."""
        if self._sum is None or self.final_end is None or hi > self.final_end:
            raise AlignError(f"cells [{lo}, {hi}) are not final yet")
        if hi - lo > self.capacity // 2 or lo < self.final_end - self.capacity // 2:
            raise AlignError(f"cells [{lo}, {hi}) are no longer held")
        slots = np.arange(lo, hi) % self.capacity
        return (
            self._sum[slots].astype(np.float32),
            self._valid[slots].copy(),
            self._tsum[slots].copy(),
        )

    def position_of(self, cell: int | np.ndarray) -> np.ndarray:
        return np.asarray(cell, dtype=np.float64) * self.grid_m
