"""Which windows can be scored now, and their patches.

Each model sensor's data lands on its own along-track grid (:class:`detect.align.TrackGrid`).
A window centre is ready once every working sensor's grid is final past the window's far
end: a working sensor that has not delivered yet is waited for, never skipped; a sensor in
FAULT is scored as absent. Centres are handed out once each, in track order.

The ends of a scan are scored too, as training taught the network (NaN beyond the data,
its validity mask): the first centre is :data:`EDGE_CELLS` cells into the data, and at the
end of the data (:meth:`WindowScheduler.tail`) the centres up to :data:`EDGE_CELLS` cells
before its end. So a sweep shorter than a window (a 0.4 m handheld pass) is scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from detect.align import TrackGrid
from detect.blocks import GprBlock, MdBlock, SensorState
from detect.windows import EDGE_CELLS, WindowSpec, cut, resample_time


class WindowScheduler:
    """The grids of the model's sensors and the next window centre to score."""

    def __init__(self, spec: WindowSpec, sensors: Sequence[str], stride_cells: int = 1) -> None:
        self.spec = spec
        self.sensors = tuple(sensors)
        self.stride = max(1, int(stride_cells))
        self.grids = {s: TrackGrid(spec.grid_m) for s in self.sensors}
        self.next_centre: int | None = None

    def add(self, block: GprBlock | MdBlock) -> bool:
        """Put an aligned block on its sensor's grid; False when it has no grid or no rows."""
        grid = self.grids.get(block.header.sensor)
        if grid is None or block.n == 0:
            return False
        data = block.data
        if isinstance(block, GprBlock) and data.shape[1] != self.spec.gpr_samples:
            data = resample_time(data, self.spec.gpr_samples)
        grid.add(data, block.position_m, block.host_time_s)
        grid.finalize()
        return True

    def ready(self, states: Mapping[str, SensorState]) -> tuple[np.ndarray, list[str]] | None:
        """The centres (grid cells) that can be scored now, with the sensors present."""
        if any(
            states.get(s) != SensorState.FAULT and self.grids[s].final_end is None
            for s in self.sensors
        ):
            return None  # a working sensor has not delivered yet: wait for it, never skip it
        present = [
            s
            for s in self.sensors
            if states.get(s) != SensorState.FAULT and self.grids[s].final_end is not None
        ]
        if not present:
            return None
        spec = self.spec
        ends = {s: int(self.grids[s].final_end) for s in present}  # type: ignore[arg-type]
        hi_centre = min(ends.values()) - (spec.n_pos - spec.half)
        self._start(present, ends)
        assert self.next_centre is not None
        if hi_centre < self.next_centre:
            return None
        centres = np.arange(self.next_centre, hi_centre + 1, self.stride, dtype=np.int64)
        self.next_centre = int(centres[-1]) + self.stride
        return centres, present

    def tail(self, states: Mapping[str, SensorState]) -> tuple[np.ndarray, list[str]] | None:
        """At the end of the data: the centres left, up to :data:`EDGE_CELLS` cells before
        the end of every present sensor's data (NaN beyond it)."""
        present = [
            s
            for s in self.sensors
            if states.get(s) != SensorState.FAULT and self.grids[s].final_end is not None
        ]
        if not present:
            return None
        ends = {s: int(self.grids[s].final_end) for s in present}  # type: ignore[arg-type]
        self._start(present, ends)
        assert self.next_centre is not None
        hi_centre = min(ends.values()) - EDGE_CELLS
        if hi_centre < self.next_centre:
            return None
        centres = np.arange(self.next_centre, hi_centre + 1, self.stride, dtype=np.int64)
        self.next_centre = int(centres[-1]) + self.stride
        return centres, present

    def _start(self, present: Sequence[str], ends: Mapping[str, int]) -> None:
        if self.next_centre is not None:
            return
        starts = [ends[s] - self.grids[s].capacity // 2 + self.spec.half for s in present]
        first = [self._first_cell(s) + EDGE_CELLS for s in present]
        self.next_centre = max(max(first), max(starts))

    def patches(
        self, centres: np.ndarray, present: Sequence[str]
    ) -> tuple[dict[str, np.ndarray | None], np.ndarray, np.ndarray]:
        """Per sensor the windows around ``centres`` (NaN where it has no valid data), the
        time of each centre, and the index in ``present`` of the sensor that timed it (-1)."""
        spec = self.spec
        lo = int(centres[0]) - spec.half
        hi = int(centres[-1]) - spec.half + spec.n_pos
        rel = centres - lo
        patches: dict[str, np.ndarray | None] = {"gpr": None, "emi": None}
        centre_time = np.full(len(centres), np.nan)
        time_sensor = np.full(len(centres), -1)
        for k, s in enumerate(present):
            rows, times = self._rows(s, lo, hi)
            patches[s] = cut(rows, rel, spec)
            take = ~np.isfinite(centre_time) & np.isfinite(times[rel])
            centre_time[take] = times[rel][take]
            time_sensor[take] = k
        return patches, centre_time, time_sensor

    def scored_to_m(self) -> float:
        """Every window centre below this has been scored or skipped for good: the end of
        the ground the centre before the next one stands for (half a step past it)."""
        if self.next_centre is None:
            return -math.inf
        step_m = self.stride * self.spec.grid_m
        return float(self.next_centre - self.stride) * self.spec.grid_m + step_m / 2

    def _first_cell(self, sensor: str) -> int:
        first = self.grids[sensor].first_cell
        return 0 if first is None else int(first)

    def _rows(self, sensor: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows [lo, hi) with NaN where the sensor has no valid data."""
        g = self.grids[sensor]
        m = self.spec.gpr_samples if sensor == "gpr" else self.spec.emi_channels
        out = np.full((hi - lo, m), np.nan, dtype=np.float32)
        times = np.full(hi - lo, np.nan)
        a = max(lo, self._first_cell(sensor), int(g.final_end) - g.capacity // 2)  # type: ignore[arg-type]
        b = min(hi, int(g.final_end))  # type: ignore[arg-type]
        if b > a:
            vals, valid, t = g.rows(a, b)
            if vals.shape[1] == m:
                vals[~valid] = np.nan
                out[a - lo : b - lo] = vals
                times[a - lo : b - lo] = t
        return out, times
