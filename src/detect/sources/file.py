"""Any supported GPR file (DZT, DT1, RD3, gprMax, SEG-Y, session) as a GPR source.

The file is read once at open; traces are delivered in blocks of ``block_traces``
with the file's along-track positions as head-reference positions; ``channel`` picks
one channel of a multi-channel file (``input.channel``). With ``speed``
set and a known trace rate the blocks are paced like the instrument; by default
they come as fast as the pipeline takes them. A file without trace positions is
refused at open: along-track processing and alarms need them.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GpsFix
from detect.io.formats import GprFile, ReaderError, read_gpr
from detect.sources.base import Item, Source, SourceError, SourceExhausted


class GprFileSource(Source):
    sensors = ("gpr",)

    host_clock = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        format: str | None = None,
        trace_spacing_m: float | None = None,
        block_traces: int = 64,
        speed: float | None = None,
        channel: int = 0,
        stall_timeout_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        if block_traces < 1:
            raise ValueError(f"block_traces must be >= 1, got {block_traces}")
        if speed is not None and not (speed > 0):
            raise ValueError(f"speed must be > 0 or None, got {speed}")
        if channel < 0:
            raise ValueError(f"channel must be >= 0, got {channel}")
        self.path = Path(path)
        self.format = format
        self.trace_spacing_m = trace_spacing_m
        self.block_traces = int(block_traces)
        self.speed = speed
        self.channel = int(channel)
        self.paced = speed is not None
        kwargs.setdefault("reconnect", False)
        super().__init__(
            name=kwargs.pop("name", f"file:{self.path.name}"),
            stall_timeout_s=stall_timeout_s,
            **kwargs,
        )
        self.file: GprFile | None = None
        self._block: GprBlock | None = None
        self._fix_trace = np.zeros(0)
        self._fixes: list[GpsFix] = []
        self._next_trace = 0
        self._next_fix = 0
        self._t0_wall = math.nan

    def info(self) -> dict[str, Any]:
        out = {**super().info(), "path": str(self.path)}
        if self.file is not None:
            out.update({k: v for k, v in self.file.info().items() if k != "warnings"})
        return out

    def _open(self) -> None:
        try:
            g = read_gpr(
                self.path,
                format=self.format,
                trace_spacing_m=self.trace_spacing_m,
                channel=self.channel,
            )
        except ReaderError as exc:
            raise SourceError(str(exc)) from exc
        block = g.block
        if not np.all(np.isfinite(block.position_m)):
            raise SourceError(
                f"{self.path}: traces have no along-track positions; set input.trace_spacing_m"
            )
        self.file = g
        self._block = block
        order = np.argsort(g.gps_trace, kind="stable") if len(g.gps) else np.zeros(0, int)
        self._fixes = [g.gps[int(i)] for i in order]
        self._fix_trace = np.asarray(g.gps_trace, dtype=np.float64)[order]
        self._next_trace = 0
        self._next_fix = 0
        self._t0_wall = self.clock()

    def _due_traces(self, timeout_s: float) -> int:
        """How many traces may go out now under the pacing."""
        assert self.file is not None
        rate = self.file.trace_rate_hz
        if self.speed is None or not rate:
            return self.block_traces
        pace = rate * self.speed
        due = int((self.clock() - self._t0_wall) * pace + 1e-9) + 1 - self._next_trace
        if due <= 0:
            wait_s = self._next_trace / pace - (self.clock() - self._t0_wall)
            time.sleep(min(timeout_s, max(wait_s, 0.0)))
            due = int((self.clock() - self._t0_wall) * pace + 1e-9) + 1 - self._next_trace
        return max(0, min(due, self.block_traces))

    def _read(self, timeout_s: float) -> list[Item]:
        if self._block is None:
            raise SourceError(f"{self.path}: not open")
        b = self._block
        if self._next_trace >= b.n:
            raise SourceExhausted(self.name)
        k = self._due_traces(timeout_s)
        if k == 0:
            return []
        lo, hi = self._next_trace, min(self._next_trace + k, b.n)
        t = b.host_time_s[lo:hi]
        if not np.all(np.isfinite(t)):
            t = np.where(np.isfinite(t), t, self.clock())
        out: list[Item] = [
            GprBlock(
                data=b.data[lo:hi],
                seq=b.seq[lo:hi],
                host_time_s=t,
                position_m=b.position_m[lo:hi],
                header=b.header,
            )
        ]
        n_fix = int(np.searchsorted(self._fix_trace, hi, side="left"))
        out.extend(self._fixes[self._next_fix : n_fix])
        self._next_fix = max(self._next_fix, n_fix)
        self._next_trace = hi
        if self.data_clock is not None:
            self.data_clock.advance(float(np.max(t)))
        self.health["gpr"].frames_received(hi - lo, b.data[lo:hi].nbytes)
        return out
