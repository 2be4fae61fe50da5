"""Any recorded file as the items a pipeline takes, in time order (``scan``, evaluation)."""

from __future__ import annotations

import logging
import math
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

#: Walking speed (m/s) assumed for a time-triggered file that gives no trace spacing: a
#: deminer sweeping a handheld head or pushing a cart (``input.walking_speed_m_s``).
DEFAULT_WALKING_SPEED_M_S = 0.5
#: Trace spacing (m) assumed when a file gives neither a spacing nor a trace rate: the
#: 2 cm step of landmine GPR (a few traces per wavelength at 1-3 GHz in soil).
DEFAULT_TRACE_SPACING_M = 0.02


def file_items(
    path: Path,
    fmt: str | None,
    trace_spacing_m: float | None,
    chunk_s: float = 5.0,
    channel: int = 0,
    walking_speed_m_s: float | None = None,
) -> tuple[list[Any], dict[str, Any], float | None]:
    """(items in time order, source info, trace spacing) of any recorded file.

    A radar file always gets a trace spacing (see :func:`resolve_spacing`), said in one
    log line and in the info (``trace_spacing_m``, ``trace_spacing_from``)."""
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
    from detect.io.base import NO_SPACING

    for w in f.warnings:
        if w != NO_SPACING:  # said below, with the spacing assumed instead
            log.warning("%s: %s", path.name, w)
    block = f.block
    spacing_m, spacing_from = resolve_spacing(f, trace_spacing_m, walking_speed_m_s)
    if not np.isfinite(block.position_m).any():
        block = replace(block, position_m=np.arange(block.n, dtype=np.float64) * spacing_m)
    if spacing_from != f.spacing_from:  # the file's own spacing needs no line of its own
        log.warning("%s: trace spacing %.4g m from %s", path.name, spacing_m, spacing_from)
    if not np.isfinite(block.host_time_s).all() or np.ptp(block.host_time_s) == 0:
        rate = f.trace_rate_hz or 100.0
        block = replace(block, host_time_s=np.arange(block.n, dtype=np.float64) / rate)
    info = {
        "source": str(path),
        **f.info(),
        "trace_spacing_m": spacing_m,
        "trace_spacing_from": spacing_from,
    }
    return _interleave([block], list(f.gps), chunk_s), info, spacing_m


def resolve_spacing(
    f: Any, user_spacing_m: float | None, walking_speed_m_s: float | None = None
) -> tuple[float, str]:
    """(trace spacing in m, where it came from) of a read radar file; never None.

    In order: ``--trace-spacing-m``; the file's own spacing (header field, marks,
    waypoints); the median step of the file's trace positions; the file's trace interval
    x the walking speed (``input.walking_speed_m_s``, default
    :data:`DEFAULT_WALKING_SPEED_M_S`) for a time-triggered file; else
    :data:`DEFAULT_TRACE_SPACING_M`.
    """
    from detect.io.base import USER_SPACING

    if user_spacing_m:
        return float(user_spacing_m), USER_SPACING
    if f.trace_spacing_m and math.isfinite(f.trace_spacing_m) and f.trace_spacing_m > 0:
        return float(f.trace_spacing_m), f.spacing_from or "the file"
    pos = np.asarray(f.block.position_m, dtype=np.float64)
    pos = pos[np.isfinite(pos)]
    step = float(np.median(np.abs(np.diff(pos)))) if pos.size > 1 else 0.0
    if step > 0:
        return step, "the median step of the file's trace positions"
    speed = walking_speed_m_s or DEFAULT_WALKING_SPEED_M_S
    rate = f.trace_rate_hz
    if rate and math.isfinite(rate) and rate > 0:
        return speed / rate, (
            f"default walking speed {speed:g} m/s x {1.0 / rate:.4g} s trace interval "
            f"({rate:g} traces/s in the {f.format} header; set --trace-spacing-m or "
            "input.walking_speed_m_s)"
        )
    return DEFAULT_TRACE_SPACING_M, (
        f"default trace spacing {DEFAULT_TRACE_SPACING_M:g} m (the file gives no spacing, "
        "positions or trace rate; set --trace-spacing-m)"
    )


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
