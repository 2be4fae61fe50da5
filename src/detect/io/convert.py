"""``detect convert FILE OUT``: any readable GPR file to a session (.h5) or SEG-Y (.sgy)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from detect.io.base import GprFile
from detect.io.segy import write_segy
from detect.io.session import SessionWriter

log = logging.getLogger(__name__)

_SESSION_EXT = (".h5", ".hdf5")
_SEGY_EXT = (".sgy", ".segy")


def to_session(g: GprFile, out: Path) -> None:
    info = {
        "source": "convert",
        "input": str(g.path),
        "input_format": g.format,
        "format_reason": g.format_reason,
        "warnings": g.warnings,
        "meta": g.meta,
    }
    with SessionWriter(out, config={}, info=info) as w:
        for block in g.blocks:
            w.write(block)
        for fix in g.gps:
            w.write(fix)


def fix_traces(g: GprFile) -> np.ndarray:
    """The (fractional) trace index of each of ``g.gps``: the reader's, else from the fix's
    host time between the traces' host times (a session); NaN where neither is known."""
    n_fix = len(g.gps)
    if len(g.gps_trace) == n_fix:
        return np.asarray(g.gps_trace, dtype=np.float64)
    t = np.asarray(g.block.host_time_s, dtype=np.float64)
    ft = np.array([f.host_time_s for f in g.gps], dtype=np.float64)
    if n_fix == 0 or t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        return np.full(n_fix, np.nan)
    idx = np.interp(ft, t, np.arange(t.size, dtype=np.float64))
    # a fix outside the traces' time span belongs to no trace
    return np.where((ft >= t[0]) & (ft <= t[-1]), idx, np.nan)


def to_segy(g: GprFile, out: Path) -> list[Path]:
    """One SEG-Y per channel (``OUT``, then ``OUT_ch1.sgy``...), each with the GPS fixes."""
    ft = fix_traces(g)
    rate = g.trace_rate_hz
    if not rate:
        t = np.asarray(g.block.host_time_s, dtype=np.float64)
        step = np.diff(t[np.isfinite(t)])
        rate = 1.0 / float(np.median(step)) if step.size and np.median(step) > 0 else None
    paths = []
    for block in g.blocks:
        ch = block.header.channel
        p = (
            out
            if ch == g.blocks[0].header.channel
            else out.with_name(f"{out.stem}_ch{ch}{out.suffix}")
        )
        own_mhz = block.header.antenna_hz / 1e6 if block.header.antenna_hz else None
        write_segy(
            p, block, antenna_mhz=own_mhz or g.antenna_mhz, fixes=g.gps, fix_trace=ft,
            trace_rate_hz=rate,
        )  # fmt: skip
        paths.append(p)
    return paths
