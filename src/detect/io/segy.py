"""SEG-Y read and write (through segyio) so GPR profiles move to and from other tools.

SEG-Y stores the sample interval as an integer number of microseconds, too coarse for
GPR. We write it in picoseconds (the common GPR convention) and the exact value in the
textual header (``DT_NS=``); on reading, the textual header wins when present, else
an interval below 1000 is taken as picoseconds (GPR), otherwise as microseconds
(seismic, with a warning). Along-track positions go to CDP_X in millimetres
(``SourceGroupScalar = -1000``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import segyio

from detect.blocks import GprBlock, GprHeader
from detect.io.base import (
    GprFile,
    ReaderError,
    apply_spacing,
    check_finite,
    check_read_size,
    file_size,
)

_TEXT_BYTES = 3200
_BIN_BYTES = 400
_DT_NS = re.compile(r"DT_NS=([0-9.eE+-]+)")
_ANT = re.compile(r"ANTENNA_MHZ=([0-9.eE+-]+)")
_T0 = re.compile(r"TIME_ZERO_NS=([0-9.eE+-]+)")


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
    scale = np.where(
        scalar < 0, -1.0 / np.where(scalar == 0, 1, scalar), np.where(scalar > 0, scalar, 1.0)
    )
    pos: np.ndarray = x * scale
    has_pos = "POSITIONS=CDP_X" in text
    file_spacing = None
    if has_pos and n > 1:
        file_spacing = float(np.median(np.diff(pos))) or None
    spacing = apply_spacing(out, file_spacing, trace_spacing_m)
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
    out.meta = {"interval": interval, "text": text[:800]}
    return out


def write_segy(path: str | Path, block: GprBlock, antenna_mhz: float | None = None) -> None:
    """Write one GPR block as SEG-Y rev 1, IEEE float32 samples."""
    n, ns = block.data.shape
    dt_ns = float(block.header.dt_ns)
    interval_ps = round(dt_ns * 1000.0)
    if not (1 <= interval_ps <= 32767):
        raise ValueError(f"sample interval {dt_ns} ns does not fit a SEG-Y interval field in ps")
    pos = np.asarray(block.position_m, dtype=np.float64)
    has_pos = bool(np.all(np.isfinite(pos)))
    ant = antenna_mhz or (block.header.antenna_hz / 1e6 if block.header.antenna_hz else None)
    lines = [
        "detect GPR export (SEG-Y rev 1, IEEE float samples)",
        f"DT_NS={dt_ns!r} (binary interval is in picoseconds)",
        f"TIME_ZERO_NS={float(block.header.time_zero_ns)!r}",
        f"ANTENNA_MHZ={ant!r}" if ant else "ANTENNA_MHZ unknown",
        "POSITIONS=CDP_X in mm (SourceGroupScalar -1000)" if has_pos else "POSITIONS=NONE",
        f"TRACES={n} SAMPLES={ns} CHANNEL={block.header.channel}",
    ]
    spec = segyio.spec()
    spec.format = 5
    spec.samples = list(range(ns))
    spec.tracecount = n
    text = "".join(f"C{i + 1:02d} {s}".ljust(80) for i, s in enumerate(lines)).ljust(3200)
    x_mm = np.where(np.isfinite(pos), np.round(pos * 1000.0), 0).astype(np.int64)
    if np.any(np.abs(x_mm) > 2**31 - 1):
        raise ValueError("positions beyond 2147 km do not fit SEG-Y CDP_X in mm")
    with segyio.create(str(path), spec) as f:
        f.text[0] = text.encode("ascii")
        f.bin.update(
            {
                segyio.BinField.Interval: interval_ps,
                segyio.BinField.Samples: ns,
                segyio.BinField.Format: 5,
                segyio.BinField.MeasurementSystem: 1,
            }
        )
        f.trace = np.ascontiguousarray(block.data, dtype=np.float32)
        seq = np.asarray(block.seq)
        for i in range(n):
            f.header[i] = {
                segyio.TraceField.TRACE_SEQUENCE_LINE: i + 1,
                segyio.TraceField.TRACE_SEQUENCE_FILE: int(seq[i]),
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_ps,
                segyio.TraceField.TRACE_SAMPLE_COUNT: ns,
                segyio.TraceField.SourceGroupScalar: -1000,
                segyio.TraceField.CDP_X: int(x_mm[i]),
            }
