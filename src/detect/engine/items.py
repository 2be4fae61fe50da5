"""Any recorded file as the items a pipeline takes, in time order (``scan``, evaluation)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import (
    GprBlock,
    GpsFix,
    MdBlock,
)
from detect.errors import (
    InputError,
)

log = logging.getLogger(__name__)


def file_items(
    path: Path,
    fmt: str | None,
    trace_spacing_m: float | None,
    chunk_s: float = 5.0,
    channel: int = 0,
) -> tuple[list[Any], dict[str, Any], float | None]:
    """(items in time order, source info, trace spacing) of any recorded file."""
    from detect.io.formats import ReaderError, detect_format, read_gpr

    try:
        kind = fmt or detect_format(path)[0]
    except (ReaderError, OSError) as exc:
        raise InputError(str(exc).splitlines()[0]) from exc
    if kind == "session":
        try:
            from detect.io.session import SessionReader
        except ImportError:
            SessionReader = None  # type: ignore[assignment,misc]
        if SessionReader is not None:
            try:
                with SessionReader(path) as rd:
                    info = {"source": str(path), "format": "session", **dict(rd.info)}
                    if rd.epochs():  # a head restarted: blocks as recorded, markers between
                        return list(rd.iter_items()), info, trace_spacing_m
                    blocks = [b for b in (rd.gpr(), rd.emi()) if b is not None]
                    fixes = list(rd.gps())
            except ReaderError as exc:
                raise InputError(str(exc).splitlines()[0]) from exc
            return _interleave(blocks, fixes, chunk_s), info, trace_spacing_m
    try:
        f = read_gpr(path, fmt, trace_spacing_m, channel=channel)
    except ReaderError as exc:
        raise InputError(str(exc).splitlines()[0]) from exc
    for w in f.warnings:
        log.warning("%s: %s", path.name, w)
    block = f.block
    if not np.isfinite(block.position_m).any() and not trace_spacing_m:
        raise InputError(
            f"{path}: the file gives no trace positions or spacing; pass --trace-spacing-m"
        )
    if not np.isfinite(block.host_time_s).all() or np.ptp(block.host_time_s) == 0:
        rate = f.trace_rate_hz or 100.0
        block = replace(block, host_time_s=np.arange(block.n, dtype=np.float64) / rate)
    info = {"source": str(path), **f.info()}
    return _interleave([block], list(f.gps), chunk_s), info, f.trace_spacing_m or trace_spacing_m


def _interleave(
    blocks: Sequence[Any], fixes: Sequence[GpsFix], chunk_s: float, chunk_m: float = 5.0
) -> list[Any]:
    """Whole-file blocks cut into pieces of at most ``chunk_s`` and ``chunk_m``, all streams
    merged in time order."""
    pieces: list[tuple[float, int, Any]] = []
    for b in blocks:
        t = b.host_time_s
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + chunk_s, chunk_s), side="left")
        pos = b.position_m
        if np.isfinite(pos).all() and len(pos) > 1:
            # also at most chunk_m of track per piece (coarse trace steps, fast heads)
            bins = np.floor((pos - pos[0]) / chunk_m)
            edges = np.append(edges, np.flatnonzero(np.diff(bins)) + 1)
        edges = np.unique(np.append(edges, [0, len(t)]))
        for a, c in pairwise(edges):
            if c > a:
                pieces.append((float(t[c - 1]), 1, _slice(b, int(a), int(c))))
    pieces.extend((f.host_time_s, 0, f) for f in fixes)
    pieces.sort(key=lambda x: (x[0], x[1]))
    return [p[2] for p in pieces]


def _slice(block: Any, a: int, b: int) -> Any:
    return replace(
        block,
        data=block.data[a:b],
        seq=block.seq[a:b],
        host_time_s=block.host_time_s[a:b],
        position_m=block.position_m[a:b],
    )


def data_span_s(items: Sequence[Any]) -> float:
    """Seconds of data the blocks among ``items`` span (host time, first to last row)."""
    blocks = [b for b in items if isinstance(b, (GprBlock, MdBlock)) and b.n]
    if not blocks:
        return 0.0
    return max(float(b.host_time_s[-1]) for b in blocks) - min(
        float(b.host_time_s[0]) for b in blocks
    )
