"""Sensors & Software pulseEKKO ``.DT1`` + ``.HD`` reader.

The ``.HD`` is ``KEY = value`` text (lines end ``\\r\\r\\n`` on pE PRO units). Each trace
in the ``.DT1`` is 25 float32 header values and a 28-byte comment (128 bytes), then
``points`` samples (int16, or int32 when header value 5, bytes per point, says 4).
Header value 1 is the position (HD ``POSITION UNITS``: m or ft), 6 the sample
interval in ps on pE PRO (checked against the HD window), 7 the stack count.
The whole file is read at once and viewed through a structured dtype.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader
from detect.io.base import (
    GprFile,
    ReaderError,
    apply_spacing,
    check_antenna_nyquist,
    check_read_size,
    file_size,
    placeholder_block,
    read_head,
    sibling,
    skip_samples,
)

_TRACE_HEADER_BYTES = 128
_FT_M = 0.3048


def parse_hd(text: str) -> dict[str, str]:
    """``KEY = value`` pairs of an HD file (blank and free-text lines ignored)."""
    out: dict[str, str] = {}
    for line in text.replace("\r", "\n").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip().upper()] = value.strip()
    return out


def _num(hd: dict[str, str], key: str, path: Path, required: bool = True) -> float | None:
    raw = hd.get(key)
    if raw is None:
        if required:
            raise ReaderError(f"{path}: HD has no '{key}'")
        return None
    try:
        value = float(raw.split()[0])
    except (ValueError, IndexError):
        raise ReaderError(f"{path}: HD '{key}' = '{raw}' is not a number") from None
    if not math.isfinite(value):
        raise ReaderError(f"{path}: HD '{key}' = '{raw}' is not finite")
    return value


def sniff(path: Path, head: bytes) -> str | None:
    if path.suffix.lower() == ".hd" and b"NUMBER OF TRACES" in head:
        return "pulseEKKO HD header text (NUMBER OF TRACES)"
    if len(head) < _TRACE_HEADER_BYTES:
        return None
    h = np.frombuffer(head[:100], dtype="<f4")
    points, bpp = h[2], h[5]
    if not (np.all(np.isfinite(h[:8])) and h[0] >= 0 and 2 <= points <= 65535):
        return None
    if float(points).is_integer() and bpp in (2.0, 4.0) and sibling(path, ".hd") is not None:
        return f"pulseEKKO DT1 trace header ({int(points)} points, {int(bpp)} bytes/point) + HD"
    return None


def read_dt1(
    path: Path, trace_spacing_m: float | None = None, headers_only: bool = False
) -> GprFile:
    if path.suffix.lower() == ".hd":
        dt1 = sibling(path, ".dt1")
        if dt1 is None:
            raise ReaderError(f"{path}: no .DT1 data file next to this HD file")
        path, hd_path = dt1, path
    else:
        found = sibling(path, ".hd")
        if found is None:
            raise ReaderError(f"{path}: no .HD header file next to this DT1 file")
        hd_path = found
    try:
        hd = parse_hd(hd_path.read_bytes().decode("latin-1"))
    except OSError as exc:
        raise ReaderError(f"{hd_path}: cannot read ({exc})") from exc
    n_hd = _num(hd, "NUMBER OF TRACES", hd_path)
    pts_hd = _num(hd, "NUMBER OF PTS/TRC", hd_path)
    window_hd = _num(hd, "TOTAL TIME WINDOW", hd_path)
    assert n_hd is not None and pts_hd is not None and window_hd is not None
    if pts_hd < 2 or not pts_hd.is_integer() or window_hd <= 0:
        raise ReaderError(f"{hd_path}: HD gives {pts_hd} points per trace, window {window_hd} ns")

    size = file_size(path)
    head = read_head(path, _TRACE_HEADER_BYTES)
    if len(head) < _TRACE_HEADER_BYTES:
        raise ReaderError(f"{path}: truncated DT1: {size} bytes, a trace header alone is 128")
    h0 = np.frombuffer(head[:100], dtype="<f4")
    points = int(pts_hd)
    if not (np.isfinite(h0[2]) and int(h0[2]) == points):
        raise ReaderError(
            f"{path}: first trace header says {h0[2]} points per trace, HD says {points}"
        )
    bpp = int(h0[5]) if h0[5] in (2.0, 4.0) else 2
    rec = np.dtype(
        [("h", "<f4", (25,)), ("comment", "S28"), ("d", "<i2" if bpp == 2 else "<i4", (points,))]
    )
    n_traces, rest = divmod(size, rec.itemsize)
    out = GprFile(path=path, format="dt1", format_reason="", blocks=[])
    if n_traces == 0:
        raise ReaderError(f"{path}: {size} bytes hold no complete trace of {rec.itemsize} bytes")
    if rest:
        out.warnings.append(
            f"file ends inside trace {n_traces}: {rest} bytes of an incomplete trace dropped"
        )
    if n_traces != int(n_hd):
        out.warnings.append(f"HD says {int(n_hd)} traces, the DT1 holds {n_traces}")
    skip_data = skip_samples(headers_only, n_traces * rec.itemsize, out)
    if skip_data:  # the first and the last trace header only: O(1) memory
        last = np.fromfile(path, dtype=rec, count=1, offset=(n_traces - 1) * rec.itemsize)
        recs = np.concatenate([np.fromfile(path, dtype=rec, count=1), last])
    else:
        check_read_size(path, n_traces * points, f"{n_traces} traces x {points} points")
        recs = np.fromfile(path, dtype=rec, count=n_traces)
    th = recs["h"]
    bad_pts = np.flatnonzero(th[:, 2] != points)
    if bad_pts.size:
        raise ReaderError(
            f"{path}: trace {int(bad_pts[0])} header says {th[bad_pts[0], 2]} points, HD says "
            f"{points}: the file is misaligned or corrupt"
        )

    dt_ns = window_hd / points
    if dt_ns < 1e-3:  # 1 THz sampling: the points or window field lies
        raise ReaderError(
            f"{hd_path}: HD NUMBER OF PTS/TRC = {points} over TOTAL TIME WINDOW = {window_hd:g} "
            f"ns gives a sample interval of {dt_ns:.3g} ns (expected at least 0.001 ns)"
        )
    dt_ns = _sample_interval_ns(th[:, 6], dt_ns, window_hd, points, out)

    units = hd.get("POSITION UNITS", "m").strip().lower()
    if units in ("m", "metres", "meters", "meter", "metre"):
        scale = 1.0
    elif units in ("ft", "feet", "foot"):
        scale = _FT_M
    else:
        raise ReaderError(f"{hd_path}: unknown POSITION UNITS '{units}' (expected m or ft)")
    pos: np.ndarray = th[:, 1].astype(np.float64) * scale
    start_hd = _num(hd, "STARTING POSITION", hd_path, required=False)
    final_hd = _num(hd, "FINAL POSITION", hd_path, required=False)
    for label, hd_value, trace_value in (
        ("STARTING", start_hd, pos[0]),
        ("FINAL", final_hd, pos[-1]),
    ):
        if hd_value is not None and not math.isclose(hd_value * scale, trace_value, abs_tol=1e-3):
            out.warnings.append(
                f"HD {label} POSITION {hd_value:g} {units} disagrees with the trace headers "
                f"({trace_value / scale:g} {units}); trace header positions used"
            )
    step_hd = _num(hd, "STEP SIZE USED", hd_path, required=False)
    file_spacing = step_hd * scale if step_hd and step_hd > 0 else None
    source = "HD STEP SIZE USED" + (f" = {step_hd:g} {units}" if step_hd is not None else "")
    pos_ok = not skip_data and _positions_usable(pos, file_spacing, source, out)
    if pos_ok and n_traces > 1:
        step_m = abs(float(np.median(np.diff(pos))))  # a profile may run backwards
        if file_spacing is None or not math.isclose(step_m, file_spacing, rel_tol=0.02):
            if file_spacing is not None:
                out.warnings.append(
                    f"{source} disagrees with the trace header positions (median step "
                    f"{step_m / scale:.4g} {units}): trace header positions used"
                )
            file_spacing, source = step_m, "trace header positions (median step)"
    spacing = apply_spacing(out, file_spacing, trace_spacing_m, source)
    if not skip_data and (trace_spacing_m is not None or not pos_ok):
        pos = np.arange(n_traces) * spacing if spacing else np.full(n_traces, np.nan)
    out.trace_spacing_m = spacing

    tz_point = _num(hd, "TIMEZERO AT POINT", hd_path, required=False)
    time_zero_ns = (tz_point - 1.0) * dt_ns if tz_point and tz_point >= 1 else 0.0
    if tz_point is not None and not (0 <= tz_point <= points):
        out.warnings.append(
            f"HD TIMEZERO AT POINT = {tz_point:g} is outside the {points} points of a trace: "
            "time zero 0 ns used (trace start)"
        )
        time_zero_ns = 0.0
    freq = _num(hd, "NOMINAL FREQUENCY", hd_path, required=False)
    out.antenna_mhz = freq if freq and freq > 0 else None
    if out.antenna_mhz is None:
        out.warnings.append("HD gives no NOMINAL FREQUENCY: antenna frequency unknown")
    tod = th[:, 23].astype(np.float64)
    host_time = (
        tod if np.all(np.isfinite(tod)) and np.all(np.diff(tod) >= 0) else np.full(n_traces, np.nan)
    )
    header = GprHeader(
        dt_ns=dt_ns,
        time_zero_ns=time_zero_ns,
        antenna_hz=out.antenna_mhz * 1e6 if out.antenna_mhz else None,
    )
    if skip_data:
        out.blocks.append(placeholder_block(n_traces, points, header))
    else:
        out.blocks.append(
            GprBlock.build(
                recs["d"].astype(np.float32),
                header,
                seq=th[:, 0].astype(np.int64),
                host_time_s=host_time,
                position_m=pos,
            )
        )
    if n_traces > 1 and np.all(np.isfinite(host_time)) and host_time[-1] > host_time[0]:
        out.trace_rate_hz = (n_traces - 1) / (host_time[-1] - host_time[0])
    check_antenna_nyquist(out)
    meta: dict[str, Any] = {"hd": dict(hd), "hd_path": str(hd_path), "bytes_per_point": bpp}
    meta["stacks"] = float(th[0, 7])
    out.meta = meta
    return out


def _sample_interval_ns(
    value6: np.ndarray, dt_ns: float, window_ns: float, points: int, out: GprFile
) -> float:
    """The sample interval: HD window / points, refined by trace header value 6 where
    that holds the interval in ps (pE PRO) in every trace; value 6 holding the window
    (older units) agrees too. Traces whose value 6 says otherwise are named in a warning.
    """
    v6 = value6.astype(np.float64)
    as_dt = np.isfinite(v6) & np.isclose(v6 / 1000.0, dt_ns, rtol=1e-3)
    as_window = np.isfinite(v6) & np.isclose(v6, window_ns, rtol=1e-3)
    if as_dt.all():
        return float(v6[0] / 1000.0)
    if as_window.all():
        return dt_ns
    main = as_dt if as_dt.sum() >= as_window.sum() else as_window
    bad = np.flatnonzero(~main)
    first = int(bad[0])
    out.warnings.append(
        f"trace header value 6 (sample interval in ps, or the window in ns) of {bad.size} of "
        f"{v6.size} traces (first: trace {first}, {v6[first]:g}) matches neither the HD "
        f"TOTAL TIME WINDOW {window_ns:g} ns / {points} points = {dt_ns * 1000:g} ps nor the "
        "window: the HD sample interval is used"
    )
    return dt_ns


def _positions_usable(pos: np.ndarray, spacing_m: float | None, source: str, out: GprFile) -> bool:
    """Whether the trace header positions can place the traces: finite and not all the
    same (a recording without an odometer may leave them all at one value). Warns when not."""
    if pos.size < 2:
        return bool(np.isfinite(pos).all())
    if not np.isfinite(pos).all():
        why = f"{int(np.count_nonzero(~np.isfinite(pos)))} are not finite"
    elif np.ptp(pos) == 0:
        why = f"all are {pos[0]:g}"
    else:
        return True
    used = f"positions from {source}" if spacing_m else "positions unknown"
    out.warnings.append(f"trace header positions (value 1) unusable, {why}: {used}")
    return False
