"""The simulator as an ordinary :class:`~detect.sources.base.Source` (kind ``sim``).

Lanes are simulated whole (vectorised) and then delivered in blocks of ``block_s``:
paced to the wall clock when ``realtime`` is true, as fast as the reader asks otherwise.
Lane after lane follows on, each a new seeded scene, with host time and along-track
position continuous across lanes; ``truth`` lists the objects of every lane generated so
far in that lane frame (true positions; the blocks carry what the odometer reports, see
:mod:`detect.sim.odometer`). Host times are simulated seconds from 0 when not
real-time, and the source's monotonic clock when real-time; the sensors' health runs on
simulated time when not real-time (:class:`~detect.health.DataClock`). Fault knobs stop a
sensor's stream for a while (sim time) so the health machinery can be tested end to end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from detect.blocks import GprBlock, MdBlock
from detect.sim.lane import Lane, simulate_lane
from detect.sim.settings import SimConfigError, SimSettings, settings_from
from detect.sources.base import Item, Source, SourceExhausted
from detect.sources.registry import UnknownSourceError

log = logging.getLogger(__name__)


class SimSource(Source):
    sensors = ("gpr", "emi", "gps")

    def __init__(
        self,
        sim: Mapping[str, Any] | SimSettings | None = None,
        seed: int = 0,
        realtime: bool = True,
        n_lanes: int | None = None,
        block_s: float = 0.1,
        fault_gpr_after_s: float | None = None,
        fault_gpr_for_s: float | None = None,
        fault_emi_after_s: float | None = None,
        fault_emi_for_s: float | None = None,
        **base_kwargs: Any,
    ) -> None:
        if not (block_s > 0):
            raise ValueError(f"source.block_s must be > 0, got {block_s}")
        if n_lanes is not None and n_lanes < 1:
            raise ValueError(f"source.n_lanes must be >= 1 or null, got {n_lanes}")
        try:
            self.settings = settings_from(sim)
        except SimConfigError as exc:
            raise UnknownSourceError(f"source 'sim': {exc}") from None
        self.seed = int(seed)
        self.realtime = bool(realtime)
        self.paced = self.realtime
        self.n_lanes = n_lanes
        self.block_s = float(block_s)
        self.faults = {
            "gpr": _window(fault_gpr_after_s, fault_gpr_for_s),
            "emi": _window(fault_emi_after_s, fault_emi_for_s),
        }
        super().__init__(**base_kwargs)
        self.truth: list[dict[str, Any]] = []
        self.lanes_started = 0
        self._lane: Lane | None = None
        self._lane_t0_s = 0.0
        self._sim_t_s = 0.0
        self._wall0_s = math.nan
        self._seq = {"gpr": 0, "emi": 0}
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[int, Future[Lane]] | None = None

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(
            {
                "seed": self.seed,
                "realtime": self.realtime,
                "n_lanes": self.n_lanes,
                "lane_length_m": self.settings.lane_length_m,
                "emi_offset_m": self.settings.head.emi_offset_m,
            }
        )
        return out

    @property
    def sim_time_s(self) -> float:
        """Simulated time delivered so far (s)."""
        return self._sim_t_s

    @property
    def current_lane(self) -> Lane | None:
        return self._lane

    def _open(self) -> None:
        if self.realtime and self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-lane")
        if self._lane is None:
            self._next_lane()
        self._wall0_s = self.clock() - self._sim_t_s

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool, self._pending = None, None

    def _lane_args(self, i: int) -> dict[str, Any]:
        """Where lane ``i`` starts: right after the current lane in time, position, sequence.

        One wheel counts on from lane to lane, so its error carries over: the reported
        position runs on without a jump while it drifts from the true (truth) frame.
        """
        prev = self._lane
        return {
            "lane_index": i,
            "t0_s": self._lane_t0_s + (prev.duration_s if prev is not None else 0.0),
            "x0_m": i * self.settings.lane_length_m,
            "seq0_gpr": self._seq["gpr"],
            "seq0_emi": self._seq["emi"],
            "odometer_error_m": prev.odometer_error_end_m if prev is not None else 0.0,
        }

    def _next_lane(self) -> bool:
        """Make the next lane current; in real time the one after is simulated meanwhile in a
        worker thread, so a lane change never stalls the stream (or trips a health FAULT)."""
        if self.n_lanes is not None and self.lanes_started >= self.n_lanes:
            return False
        i = self.lanes_started
        pending, self._pending = self._pending, None
        args = self._lane_args(i)
        if pending is not None and pending[0] == i:
            lane = pending[1].result()
        else:
            lane = simulate_lane(self.seed, self.settings, **args)
        self._seq["gpr"] += lane.gpr.n
        self._seq["emi"] += lane.emi.n
        self._lane, self._lane_t0_s = lane, float(args["t0_s"])
        self.truth.extend(lane.truth)
        self.lanes_started += 1
        log.debug("sim lane %d: %d objects, soil %s", i, len(lane.truth), lane.scene.soil.name)
        more = self.n_lanes is None or self.lanes_started < self.n_lanes
        if self._pool is not None and more:
            nxt = self._lane_args(i + 1)
            self._pending = (
                i + 1,
                self._pool.submit(simulate_lane, self.seed, self.settings, **nxt),
            )
        return True

    def _read(self, timeout_s: float) -> list[Item]:
        if self.realtime:
            due = self.clock() - self._wall0_s
            wait = self._sim_t_s + self.block_s - due
            if wait > 0:
                time.sleep(min(wait, max(timeout_s, 0.0)))
                due = self.clock() - self._wall0_s
                if due < self._sim_t_s + self.block_s:
                    return []
            t_end = due
        else:
            t_end = self._sim_t_s + self.block_s
        items: list[Item] = []
        while True:
            lane = self._lane
            assert lane is not None
            lane_end = self._lane_t0_s + lane.duration_s
            items.extend(self._slice(lane, self._sim_t_s, min(t_end, lane_end)))
            if t_end < lane_end:
                self._sim_t_s = t_end
                break
            self._sim_t_s = lane_end
            if not self._next_lane():
                if items:
                    return items
                raise SourceExhausted(self.name)
        return items

    def _slice(self, lane: Lane, t_a: float, t_b: float) -> list[Item]:
        out: list[Item] = []
        shift = self._wall0_s if self.realtime else 0.0
        if self.data_clock is not None:  # faster than real time: simulated time has reached t_b
            self.data_clock.advance(t_b)
        for sensor, block in (("gpr", lane.gpr), ("emi", lane.emi)):
            t = block.host_time_s
            i, j = np.searchsorted(t, [t_a, t_b])
            if j <= i:
                continue
            lo, hi = self.faults[sensor]
            keep = ~((t[i:j] >= lo) & (t[i:j] < hi))
            if not keep.any():
                continue
            sel = np.arange(i, j)[keep]
            part = _take(block, sel, shift)
            out.append(part)
            self.health[sensor].frames_received(part.n, part.data.nbytes)
        fixes = [
            replace(f, host_time_s=f.host_time_s + shift)
            for f in lane.gps
            if t_a <= f.host_time_s < t_b
        ]
        if fixes:
            out.extend(fixes)
            self.health["gps"].frames_received(len(fixes))
        return out


def _window(after_s: float | None, for_s: float | None) -> tuple[float, float]:
    if after_s is None:
        return (math.inf, math.inf)
    return (float(after_s), float(after_s) + (math.inf if for_s is None else float(for_s)))


def _take(block: GprBlock | MdBlock, sel: np.ndarray, shift_s: float) -> GprBlock | MdBlock:
    return type(block)(
        data=block.data[sel],
        seq=block.seq[sel],
        host_time_s=block.host_time_s[sel] + shift_s,
        position_m=block.position_m[sel],
        header=block.header,  # type: ignore[arg-type]
    )
