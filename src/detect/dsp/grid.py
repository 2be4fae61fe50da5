"""Distance normalisation: resample GPR traces or EMI readings onto a regular along-track grid.

The head moves irregularly (a hand sweep, a stop, a step back, odometer jitter), so the
model sees data per centimetre, not per trace. Grid points sit at ``origin_m + k * dx_m``;
each is emitted once, when the head first passes it going forward, by linear interpolation
between the two consecutive traces on either side. Ground covered again after a step
back is not emitted twice. Nothing is interpolated across a NaN position, a jump longer
than ``max_gap_m`` or a time gap longer than ``max_gap_s``: those grid points are skipped
(the caller sees a hole in ``position_m``, i.e. ground not covered), and counted.

Streaming and exact: the last trace of a block is kept for the next one, so any chunking
gives the same grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from detect.blocks import GprBlock, MdBlock
from detect.dsp.base import DspError

_NEVER = np.iinfo(np.int64).min // 4


class GridResampler:
    """Streaming resampler onto a regular along-track grid (for GprBlock and MdBlock)."""

    def __init__(
        self,
        dx_m: float = 0.01,
        origin_m: float = 0.0,
        max_gap_m: float | None = 0.05,
        max_gap_s: float | None = 0.25,
    ) -> None:
        if not (math.isfinite(dx_m) and dx_m > 0):
            raise DspError(f"dsp grid: dx_m must be a positive number, got {dx_m}")
        if not math.isfinite(origin_m):
            raise DspError(f"dsp grid: origin_m must be finite, got {origin_m}")
        for name, v in (("max_gap_m", max_gap_m), ("max_gap_s", max_gap_s)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise DspError(f"dsp grid: {name} must be a positive number or null, got {v}")
        self.dx_m = float(dx_m)
        self.origin_m = float(origin_m)
        self.max_gap_m = math.inf if max_gap_m is None else float(max_gap_m)
        self.max_gap_s = math.inf if max_gap_s is None else float(max_gap_s)
        self.reset()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> GridResampler:
        allowed = {"dx_m", "origin_m", "max_gap_m", "max_gap_s"}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise DspError(
                f"dsp grid: unknown parameter '{unknown[0]}' (allowed: {sorted(allowed)})"
            )
        return cls(**{k: cfg[k] for k in cfg})

    def reset(self) -> None:
        self._last: Any = None
        self._next_k = _NEVER
        self.gaps = 0
        self.nan_breaks = 0
        self.back_steps = 0

    def _k_of(self, p: np.ndarray) -> np.ndarray:
        return (p - self.origin_m) / self.dx_m

    def process(self, block: Any) -> Any:
        """Grid points passed by this block (possibly none), as a block of the same type."""
        if not isinstance(block, (GprBlock, MdBlock)):
            raise DspError(f"dsp grid: expected a GprBlock or MdBlock, got {type(block).__name__}")
        last = self._last
        if last is not None and (
            type(last) is not type(block) or last.data.shape[1] != block.data.shape[1]
        ):
            raise DspError("dsp grid: block type or width changed mid-stream; reset() first")
        if block.n == 0:
            return block
        if last is not None:
            data = np.concatenate([last.data[-1:], block.data])
            pos = np.concatenate([last.position_m[-1:], block.position_m])
            tim = np.concatenate([last.host_time_s[-1:], block.host_time_s])
            seq = np.concatenate([last.seq[-1:], block.seq])
        else:
            data, pos, tim, seq = block.data, block.position_m, block.host_time_s, block.seq
        self._last = block
        p0, p1 = pos[:-1], pos[1:]
        finite = np.isfinite(p0) & np.isfinite(p1)
        step = np.where(finite, p1 - p0, np.nan)
        dt = np.abs(np.diff(tim))
        jump = finite & ((np.abs(step) > self.max_gap_m) | (dt > self.max_gap_s))
        forward = finite & ~jump & (step > 0)
        self.gaps += int(jump.sum())
        self.nan_breaks += int((~finite & (np.isfinite(p0) | np.isfinite(p1))).sum())
        self.back_steps += int((finite & ~jump & (step < 0)).sum())

        with np.errstate(invalid="ignore"):
            k1 = self._k_of(p1)
            k0 = self._k_of(p0)
            end_incl = np.where(forward, np.floor(k1), _NEVER).astype(np.int64)
            mark = np.where(
                forward, end_incl + 1, np.where(jump, np.ceil(np.where(jump, k1, 0)), _NEVER)
            ).astype(np.int64)
            start = np.where(forward, np.ceil(np.where(forward, k0, 0)), _NEVER).astype(np.int64)
        before = np.maximum.accumulate(np.concatenate([[self._next_k], mark]))
        self._next_k = int(before[-1])
        start = np.maximum(start, before[:-1])
        counts = np.where(forward, np.maximum(end_incl - start + 1, 0), 0)
        total = int(counts.sum())
        seg = np.repeat(np.arange(counts.size), counts)
        offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        k = start[seg] + offs
        x = self.origin_m + k * self.dx_m
        w = (x - p0[seg]) / step[seg]
        w = np.clip(w, 0.0, 1.0)
        w32 = w.astype(np.float32)[:, None]
        out = data[seg] * (1 - w32) + data[seg + 1] * w32
        t_out = tim[seg] * (1 - w) + tim[seg + 1] * w
        s_out = np.where(w < 0.5, seq[seg], seq[seg + 1])
        return replace(
            block, data=out.astype(np.float32), seq=s_out, host_time_s=t_out, position_m=x
        )
