"""SEG-Y read and write (through segyio) so GPR profiles move to and from other tools.

SEG-Y stores the sample interval as an integer number of microseconds, too coarse for
GPR. We write it in picoseconds (the common GPR convention) and the exact value in the
textual header (``DT_NS=``); on reading, the textual header wins when present, else
an interval below 1000 is taken as picoseconds (GPR), otherwise as microseconds
(seismic, with a warning).

Along-track positions go to the shot-point number in millimetres (``ShotPointScalar
-1000``, bytes 197-202); files written before GPS export kept them in CDP_X (still read).
GPS: every trace between the first and the last fix carries its position in SourceX/Y,
GroupX/Y and CDP_X/Y (X = longitude, Y = latitude) in arc-seconds (``CoordinateUnits 2``)
with ``SourceGroupScalar -10000`` (1e-4 arcsec, 3 mm) where the values fit 32 bits
(|lat|, |lon| < 59.6 deg), else -1000 (1e-3 arcsec, 3 cm): linearly interpolated between
fixes, and on the trace nearest each fix the fix itself. Those traces are marked in the
rev 1 "unassigned" bytes 233-236 (fix number, 1-based) with the fix quality in 237-240
and the altitude in SourceSurfaceElevation (mm, ``ElevationScalar -1000``), so our reader
gives back the fixes (quality, altitude, trace); other tools read a position per trace.
A file from elsewhere with coordinates (arc-seconds or decimal degrees, units 2 or 3)
gives one fix per trace where the coordinate changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import segyio

from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix
from detect.io.base import (
    GprFile,
    ReaderError,
    apply_spacing,
    check_antenna_nyquist,
    check_finite,
    check_read_size,
    file_size,
)

_TEXT_BYTES = 3200
_BIN_BYTES = 400
_DT_NS = re.compile(r"DT_NS=([0-9.eE+-]+)")
_ANT = re.compile(r"ANTENNA_MHZ=([0-9.eE+-]+)")
_T0 = re.compile(r"TIME_ZERO_NS=([0-9.eE+-]+)")
_RATE = re.compile(r"TRACE_RATE_HZ=([0-9.eE+-]+)")
_INT32 = 2**31 - 1
#: file_items' trace rate for a file that states none: fixes get host times on that clock.
_DEFAULT_RATE_HZ = 100.0


def sniff(path: Path, head: bytes) -> str | None:
    if len(head) < _TEXT_BYTES + _BIN_BYTES:
        return None
    first = head[0]
    if first not in (ord("C"), 0xC3):
        return None
    fmt = int.from_bytes(head[3224:3226], "big")
    n_samp = int.from_bytes(head[3220:3222], "big")
    if fmt not in (1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 15, 16) or n_samp == 0:
        return None
    coding = "EBCDIC" if first == 0xC3 else "ASCII"
    return f"SEG-Y ({coding} textual header, format code {fmt}, {n_samp} samples)"


def read_segy(path: Path, trace_spacing_m: float | None = None) -> GprFile:
    if file_size(path) < _TEXT_BYTES + _BIN_BYTES + 240:
        raise ReaderError(f"{path}: truncated SEG-Y: shorter than its headers")
    try:
        with segyio.open(str(path), "r", ignore_geometry=True, strict=False) as f:
            n_tr, n_samp = int(f.tracecount), len(f.samples)
            check_read_size(path, n_tr * n_samp, f"{n_tr} traces x {n_samp} samples")
            data = np.asarray(f.trace.raw[:], dtype=np.float32)
            interval = int(f.bin[segyio.BinField.Interval])
            text = segyio.tools.wrap(f.text[0]) if f.text else ""
            x = np.asarray(f.attributes(segyio.TraceField.CDP_X)[:], dtype=np.float64)
            scalar = np.asarray(
                f.attributes(segyio.TraceField.SourceGroupScalar)[:], dtype=np.float64
            )
            seq = np.asarray(f.attributes(segyio.TraceField.TRACE_SEQUENCE_FILE)[:], dtype=np.int64)
            hdr = {
                k: np.asarray(f.attributes(getattr(segyio.TraceField, k))[:], dtype=np.float64)
                for k in (
                    "SourceX", "SourceY", "CoordinateUnits", "ShotPoint", "ShotPointScalar",
                    "UnassignedInt1", "UnassignedInt2", "SourceSurfaceElevation",
                    "ElevationScalar",
                )
            }  # fmt: skip
    except (RuntimeError, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReaderError(f"{path}: not a readable SEG-Y file ({msg})") from exc
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] < 2:
        raise ReaderError(f"{path}: SEG-Y holds no traces")
    out = GprFile(path=path, format="segy", format_reason="", blocks=[])
    m = _DT_NS.search(text)
    if m:
        dt_ns = float(m.group(1))
        if interval > 0 and not math.isclose(dt_ns * 1000.0, interval, abs_tol=1.0):
            out.warnings.append(
                f"textual header DT_NS={dt_ns} disagrees with binary interval {interval}"
            )
    elif 0 < interval < 1000:
        dt_ns = interval / 1000.0
        out.warnings.append(
            f"binary sample interval {interval} read as picoseconds (GPR convention)"
        )
    elif interval >= 1000:
        dt_ns = interval * 1000.0
        out.warnings.append(f"binary sample interval {interval} read as microseconds (seismic)")
    else:
        raise ReaderError(f"{path}: SEG-Y sample interval is {interval}")
    if not (math.isfinite(dt_ns) and dt_ns > 0):
        raise ReaderError(f"{path}: SEG-Y sample interval {dt_ns} ns")
    ant = _ANT.search(text)
    out.antenna_mhz = float(ant.group(1)) if ant else None
    if out.antenna_mhz is None:
        out.warnings.append("antenna frequency not stated in the SEG-Y textual header")
    t0 = _T0.search(text)
    n = data.shape[0]
    scale = _scale(scalar)
    if "POSITIONS=SHOTPOINT" in text:
        pos: np.ndarray = hdr["ShotPoint"] * _scale(hdr["ShotPointScalar"])
        has_pos = True
    else:
        pos = x * scale
        has_pos = "POSITIONS=CDP_X" in text
    file_spacing = None
    if has_pos and n > 1:
        file_spacing = float(np.median(np.diff(pos))) or None
    where = "shot-point" if "POSITIONS=SHOTPOINT" in text else "CDP_X"
    spacing = apply_spacing(out, file_spacing, trace_spacing_m, f"trace {where} positions")
    if not has_pos or trace_spacing_m is not None:
        pos = np.arange(n) * spacing if spacing else np.full(n, np.nan)
    out.trace_spacing_m = spacing
    header = GprHeader(
        dt_ns=dt_ns,
        time_zero_ns=float(t0.group(1)) if t0 else 0.0,
        antenna_hz=out.antenna_mhz * 1e6 if out.antenna_mhz else None,
    )
    out.blocks.append(
        GprBlock.build(data, header, seq=seq, host_time_s=np.full(n, np.nan), position_m=pos)
    )
    check_finite(out)
    check_antenna_nyquist(out)
    out.meta = {"interval": interval, "text": text[:800]}
    rate = _RATE.search(text)
    out.trace_rate_hz = float(rate.group(1)) if rate else None
    out.gps, out.gps_trace = _read_fixes(hdr, scale, "GPS_FIX_MARK=233" in text, out)
    return out


def _scale(scalar: np.ndarray) -> np.ndarray:
    """SEG-Y scalar field -> multiplier (negative: divisor; 0 means 1)."""
    s = np.asarray(scalar, dtype=np.float64)
    return np.where(s < 0, -1.0 / np.where(s == 0, 1, s), np.where(s > 0, s, 1.0))


def _read_fixes(
    hdr: dict[str, np.ndarray], scale: np.ndarray, marked: bool, out: GprFile
) -> tuple[list[GpsFix], np.ndarray]:
    """GPS fixes from the trace-header coordinates (see the module docstring)."""
    units = hdr["CoordinateUnits"]
    x, y = hdr["SourceX"] * scale, hdr["SourceY"] * scale
    per_deg = np.where(units == 2, 3600.0, np.where(units == 3, 1.0, np.nan))
    lon, lat = x / per_deg, y / per_deg
    located = np.isfinite(lon) & ((x != 0) | (y != 0))
    if marked:
        idx = np.flatnonzero(located & (hdr["UnassignedInt1"] > 0))
        idx = idx[np.argsort(hdr["UnassignedInt1"][idx], kind="stable")]
    else:
        moved = np.ones(len(x), dtype=bool)
        moved[1:] = (np.diff(x) != 0) | (np.diff(y) != 0)
        idx = np.flatnonzero(located & moved)
    bad = idx[(np.abs(lat[idx]) > 90) | (np.abs(lon[idx]) > 180)]
    if bad.size:
        out.warnings.append(f"{bad.size} trace coordinate(s) outside lat/lon range ignored")
        idx = np.setdiff1d(idx, bad)
    rate = out.trace_rate_hz or _DEFAULT_RATE_HZ
    alt = hdr["SourceSurfaceElevation"] * _scale(hdr["ElevationScalar"])
    fixes = [
        GpsFix(
            host_time_s=float(i) / rate,
            lat_deg=float(lat[i]),
            lon_deg=float(lon[i]),
            alt_m=float(alt[i]) if marked and alt[i] != 0 else None,
            quality=_quality(int(hdr["UnassignedInt2"][i])) if marked else FixQuality.GPS,
            source="segy",
        )
        for i in idx.tolist()
    ]
    return fixes, idx.astype(np.float64)


def _quality(code: int) -> FixQuality:
    try:
        return FixQuality(code)
    except ValueError:
        return FixQuality.GPS


def trace_coordinates(
    n: int, fixes: Sequence[GpsFix], fix_trace: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat_deg, lon_deg, fix number) per trace: NaN outside the first..last fix, linear
    between fixes, each fix's own position on its nearest trace (fix number 1-based there,
    0 elsewhere; of two fixes on one trace the later is kept)."""
    ft = np.asarray(fix_trace, dtype=np.float64)
    if len(fixes) != ft.size:
        raise ValueError(f"{len(fixes)} GPS fixes but {ft.size} fix trace indices")
    keep = np.array([f.lat_deg is not None and f.lon_deg is not None for f in fixes], bool)
    keep &= np.isfinite(ft)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    mark = np.zeros(n, dtype=np.int64)
    if not keep.any():
        return lat, lon, mark
    num = np.flatnonzero(keep)
    flat = np.array([fixes[i].lat_deg for i in num.tolist()], dtype=np.float64)
    flon = np.array([fixes[i].lon_deg for i in num.tolist()], dtype=np.float64)
    order = np.argsort(ft[num], kind="stable")
    num, flat, flon, t = num[order], flat[order], flon[order], ft[num][order]
    tr = np.arange(n, dtype=np.float64)
    inside = (tr >= np.floor(t[0] + 0.5)) & (tr <= np.floor(t[-1] + 0.5))
    lat[inside] = np.interp(tr[inside], t, flat)
    lon[inside] = np.interp(tr[inside], t, flon)
    at = np.clip(np.floor(t + 0.5).astype(np.int64), 0, n - 1)
    lat[at], lon[at], mark[at] = flat, flon, num + 1
    return lat, lon, mark


def write_segy(
    path: str | Path,
    block: GprBlock,
    antenna_mhz: float | None = None,
    fixes: Sequence[GpsFix] = (),
    fix_trace: Sequence[float] | np.ndarray = (),
    trace_rate_hz: float | None = None,
) -> None:
    """Write one GPR block as SEG-Y rev 1, IEEE float32 samples, with the GPS ``fixes``
    (at fractional trace indices ``fix_trace``) in the trace headers."""
    n, ns = block.data.shape
    dt_ns = float(block.header.dt_ns)
    interval_ps = round(dt_ns * 1000.0)
    if not (1 <= interval_ps <= 32767):
        raise ValueError(f"sample interval {dt_ns} ns does not fit a SEG-Y interval field in ps")
    pos = np.asarray(block.position_m, dtype=np.float64)
    has_pos = bool(np.all(np.isfinite(pos)))
    ant = antenna_mhz or (block.header.antenna_hz / 1e6 if block.header.antenna_hz else None)
    lat, lon, mark = trace_coordinates(n, fixes, fix_trace)
    has_gps = bool(np.isfinite(lat).any())
    x_mm = np.where(np.isfinite(pos), np.round(pos * 1000.0), 0).astype(np.int64)
    if np.any(np.abs(x_mm) > _INT32):
        raise ValueError("positions beyond 2147 km do not fit SEG-Y shot-point numbers in mm")
    arcsec_x, arcsec_y = np.nan_to_num(lon * 3600.0), np.nan_to_num(lat * 3600.0)
    biggest = max(float(np.abs(arcsec_x).max(initial=0)), float(np.abs(arcsec_y).max(initial=0)))
    coord_scalar = -10000 if biggest * 1e4 <= _INT32 else -1000
    cx = np.round(arcsec_x * -coord_scalar).astype(np.int64)
    cy = np.round(arcsec_y * -coord_scalar).astype(np.int64)
    alt_mm = np.zeros(n, dtype=np.int64)
    quality = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(mark).tolist():  # once per fix, not per trace
        fix = fixes[int(mark[i]) - 1]
        quality[i] = int(fix.quality)
        if fix.alt_m is not None and math.isfinite(fix.alt_m):
            alt_mm[i] = round(fix.alt_m * 1000.0)
    lines = [
        "detect GPR export (SEG-Y rev 1, IEEE float samples)",
        f"DT_NS={dt_ns!r} (binary interval is in picoseconds)",
        f"TIME_ZERO_NS={float(block.header.time_zero_ns)!r}",
        f"ANTENNA_MHZ={ant!r}" if ant else "ANTENNA_MHZ unknown",
        "POSITIONS=SHOTPOINT along-track in mm (ShotPointScalar -1000)"
        if has_pos
        else "POSITIONS=NONE",
        f"TRACES={n} SAMPLES={ns} CHANNEL={block.header.channel}",
    ]
    if trace_rate_hz and math.isfinite(trace_rate_hz) and trace_rate_hz > 0:
        lines.append(f"TRACE_RATE_HZ={float(trace_rate_hz)!r}")
    if has_gps:
        lines += [
            f"GPS=SourceX/Y GroupX/Y CDP_X/Y lon/lat arc-seconds, scalar {coord_scalar}, units 2",
            "GPS_FIX_MARK=233 fix number (1-based) in bytes 233-236, quality in 237-240",
            f"GPS fixes {int(np.count_nonzero(mark))}, altitude mm in bytes 45-48 (scalar -1000)",
        ]
    elif has_pos:
        lines.append("CDP_X=along-track mm (SourceGroupScalar -1000, units 1)")
    spec = segyio.spec()
    spec.format = 5
    spec.samples = list(range(ns))
    spec.tracecount = n
    text = "".join(f"C{i + 1:02d} {s}".ljust(80) for i, s in enumerate(lines)).ljust(3200)
    F = segyio.TraceField
    seq = np.asarray(block.seq)
    if has_gps:
        coords = {F.SourceX: cx, F.SourceY: cy, F.GroupX: cx, F.GroupY: cy, F.CDP_X: cx,
                  F.CDP_Y: cy}  # fmt: skip
        units, scalar = 2, coord_scalar
    else:
        coords, units, scalar = {F.CDP_X: x_mm}, 1, -1000
    with segyio.create(str(path), spec) as f:
        f.text[0] = text.encode("ascii")
        f.bin.update(
            {
                segyio.BinField.Interval: interval_ps,
                segyio.BinField.Samples: ns,
                segyio.BinField.Format: 5,
                segyio.BinField.MeasurementSystem: 1,
                segyio.BinField.SEGYRevision: 1,
            }
        )
        f.trace = np.ascontiguousarray(block.data, dtype=np.float32)
        for i in range(n):
            h: dict[int, int] = {
                F.TRACE_SEQUENCE_LINE: i + 1,
                F.TRACE_SEQUENCE_FILE: int(seq[i]),
                F.TRACE_SAMPLE_INTERVAL: interval_ps,
                F.TRACE_SAMPLE_COUNT: ns,
                F.SourceGroupScalar: scalar,
                F.CoordinateUnits: units,
                F.ShotPoint: int(x_mm[i]),
                F.ShotPointScalar: -1000,
                F.ElevationScalar: -1000,
            }
            for k, v in coords.items():
                h[k] = int(v[i])
            if mark[i]:
                h[F.UnassignedInt1] = int(mark[i])
                h[F.UnassignedInt2] = int(quality[i])
                h[F.SourceSurfaceElevation] = int(alt_mm[i])
            f.header[i] = h
