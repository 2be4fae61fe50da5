"""GSSI ``.DZT`` reader (with the ``.DZX`` XML and ``.DZG`` GPS side files).

Layout learned from the files themselves and GSSI's published header description:
a header of 1024 bytes per channel (or ``1024 * rh_data`` bytes when ``rh_data`` is
below 1024, as SIR-4000 files do), then scans of ``rh_nchan`` traces of ``rh_nsamp``
samples each, little-endian, 8-bit and 16-bit unsigned (zero level at mid-scale) or
32-bit signed. Several units write the trace number and the mark word into samples 0
and 1 of each trace: those are detected from their content, reported and replaced.
Each channel's time zero comes from its header's ``rhf_position`` where that lies inside
the window (:func:`header_time_zero_ns`); ``rh_zero`` is the binary zero level (or, on a
SIR 30, repeats per sample), not a time zero.
"""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader, GpsFix
from detect.io.base import (
    GprFile,
    ReaderError,
    apply_spacing,
    check_antenna_nyquist,
    check_read_size,
    check_survey_speed,
    file_size,
    placeholder_block,
    plausible_rate,
    read_head,
    sibling,
    skip_samples,
)
from detect.io.nmea import NmeaStats, parse_gga

_HEADER_FIELDS = struct.Struct("<HHHHh5fH")
_DTYPES: dict[int, np.dtype[Any]] = {8: np.dtype("<u1"), 16: np.dtype("<u2"), 32: np.dtype("<i4")}
_ZERO_LEVEL = {8: 128.0, 16: 32768.0, 32: 0.0}
#: Data bytes at the start of the file judged for the sample size (the bits field).
_PREFIX_BYTES = 4 * 2**20
#: Smooth means a median |step| / std along the trace below this (GPR traces are sampled
#: many times per period: 0.05-0.2 in the real files; noise gives about 1.15).
_SMOOTH_MAX = 0.5
#: The header's sample size is overruled only when it makes the traces this much rougher.
_ROUGHER = 1.5
#: Plausible sample interval range (ns) and most samples per antenna period (physical
#: sense of the samples-per-trace field: 1 THz sampling, or 1000 samples a period, is a lie).
_DT_NS_RANGE = (1e-3, 50.0)
_MAX_SAMPLES_PER_PERIOD = 1000.0
#: Raw bytes read per chunk when converting the samples to float32.
_CHUNK_BYTES = 16 * 2**20

#: GSSI antenna model numbers -> nominal centre frequency (MHz), from GSSI product sheets
#: and manuals. A suffix (``5103A``, ``4105NR``, ``62000-003``) keeps the model's frequency.
ANTENNA_MODELS_MHZ: dict[str, float] = {
    "3101": 900.0,
    "3102": 500.0,
    "3207": 100.0,
    "350HS": 350.0,  # GSSI 350 HS (HyperStacking) antenna, named by its frequency
    "4105": 2000.0,  # GSSI 4105NR 2 GHz horn (readgssi issue #21, "GSSI 4105NR frequency 2GHz")
    "42000": 2000.0,  # GSSI 42000S 2 GHz horn (readgssi pull request #34, "2 GHz Horn antenna")
    "5100": 1500.0,
    "5103": 400.0,
    "5106": 200.0,
    "50270": 270.0,
    "50300": 300.0,
    "50400": 400.0,
    "51600": 1600.0,
    "52600": 2600.0,
    "62000": 2000.0,
}

_FREQ_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?\s*)?(MHz|GHz)", re.IGNORECASE)


def _parse_header(head: bytes) -> dict[str, Any]:
    (tag, rh_data, nsamp, bits, zero, sps, spm, mpm, position, range_ns, npass) = (
        _HEADER_FIELDS.unpack_from(head, 0)
    )
    nchan = struct.unpack_from("<H", head, 52)[0]
    epsr, top_m, depth_m = struct.unpack_from("<3f", head, 54)
    return {
        "tag": tag,
        "rh_data": rh_data,
        "nsamp": nsamp,
        "bits": bits,
        "zero": zero,
        "sps": sps,
        "spm": spm,
        "mpm": mpm,
        "position_ns": position,
        "range_ns": range_ns,
        "npass": npass,
        "nchan": nchan,
        "epsr": epsr,
        "top_m": top_m,
        "depth_m": depth_m,
        "created": _gssi_date(head[32:36]),
        "antenna": head[98:112].split(b"\x00")[0].decode("latin-1").strip(),
        "system_code": head[113] >> 3,
        "name": head[114:126].split(b"\x00")[0].decode("latin-1").strip(),
    }


def _gssi_date(raw: bytes) -> str | None:
    """Packed date: sec/2 (5 bits), min (6), hour (5), day (5), month (4), year-1980 (7)."""
    v = struct.unpack("<I", raw)[0]
    sec, minute, hour = (v & 0x1F) * 2, (v >> 5) & 0x3F, (v >> 11) & 0x1F
    day, month, year = (v >> 16) & 0x1F, (v >> 21) & 0x0F, ((v >> 25) & 0x7F) + 1980
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 60):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}"


def header_bytes(hdr: dict[str, Any]) -> int:
    """Header length: ``1024 * rh_data`` when rh_data < 1024, else ``1024 * rh_nchan``."""
    if 0 < hdr["rh_data"] < 1024:
        return 1024 * int(hdr["rh_data"])
    return 1024 * int(hdr["nchan"])


def _plausible(hdr: dict[str, Any], check_bits: bool = True) -> str | None:
    """Why ``hdr`` is not a DZT header, or None. ``check_bits=False`` leaves the bits
    field to :func:`_sample_bits`, which judges it against the data."""
    if (hdr["tag"] & 0xFF) not in (0x00, 0xFF) or (hdr["tag"] >> 8) > 0x0F:
        return f"tag 0x{hdr['tag']:04x} is not a DZT tag"
    if check_bits and hdr["bits"] not in _DTYPES:
        return f"bits per sample = {hdr['bits']} (expected 8, 16 or 32)"
    if not (2 <= hdr["nsamp"] <= 65535):
        return f"samples per trace = {hdr['nsamp']}"
    if not (1 <= hdr["nchan"] <= 16):
        return f"channel count = {hdr['nchan']} (expected 1..16)"
    if not (math.isfinite(hdr["range_ns"]) and 0 < hdr["range_ns"] < 1e6):
        return f"time range = {hdr['range_ns']} ns"
    return None


def sniff(path: Path, head: bytes) -> str | None:
    if len(head) < 128:
        return None
    hdr = _parse_header(head)
    # a .DZT whose bits field alone is wrong is still ours: read_dzt judges it on the data
    if _plausible(hdr, check_bits=path.suffix.lower() != ".dzt") is not None:
        return None
    return (
        f"GSSI DZT header (tag 0x{hdr['tag']:04x}, {hdr['bits']}-bit, "
        f"{hdr['nsamp']} samples, {hdr['nchan']} channel(s))"
    )


def antenna_mhz(name: str) -> float | None:
    m = _FREQ_IN_NAME.search(name)
    if m:
        value = float(m.group(1))
        return value * 1000.0 if m.group(2).lower() == "ghz" else value
    key = name.strip().upper().replace(" ", "")
    for model in sorted(ANTENNA_MODELS_MHZ, key=len, reverse=True):
        if key == model or (key.startswith(model) and not key[len(model)].isdigit()):
            return ANTENNA_MODELS_MHZ[model]
    return None


def header_time_zero_ns(position_ns: float, range_ns: float) -> float | None:
    """Time zero within the trace from ``rhf_position`` (ns), or None where it gives none.

    SIR-4000 and StructureScan Mini files store minus the time of the direct wave in the
    window (``position = -t0``). SIR-3000 files store 0 whatever the direct wave's time, and
    a position outside ``(-range, 0)`` cannot be a time inside the trace: neither gives one.
    """
    if math.isfinite(position_ns) and -range_ns < position_ns < 0:
        return -float(position_ns)
    return None


def _channel_headers(path: Path, hdr: dict[str, Any], offset: int) -> list[dict[str, Any]]:
    """Each channel's own 1024-byte header (at ``1024 * ch``), else channel 0's."""
    nchan = int(hdr["nchan"])
    head = read_head(path, min(offset, 1024 * nchan))
    out = [hdr]
    for ch in range(1, nchan):
        chunk = head[1024 * ch : 1024 * (ch + 1)]
        own = _parse_header(chunk) if len(chunk) == 1024 else None
        same_layout = (
            own is not None
            and _plausible(own) is None
            and all(own[k] == hdr[k] for k in ("nsamp", "bits", "nchan", "range_ns"))
        )
        out.append(own if same_layout and own is not None else hdr)
    return out


def _time_zero(ch: int, position_ns: float, range_ns: float, out: GprFile) -> float:
    """The header's time zero of channel ``ch`` (ns; 0 = unknown), warning when unusable."""
    t0_ns = header_time_zero_ns(position_ns, range_ns)
    if t0_ns is None and position_ns != 0:
        out.warnings.append(
            f"channel {ch}: header position {position_ns:g} ns is outside the "
            f"0-{range_ns:g} ns window: time zero not taken from the header"
        )
    return t0_ns or 0.0


def _antenna(name: str, out: GprFile) -> float | None:
    """Centre frequency (MHz) of antenna ``name``, warning once per unknown name."""
    mhz = antenna_mhz(name)
    warning = (
        f"unknown antenna '{name}': not a GSSI model number we know, and the DZT header has "
        "no frequency field, so no centre frequency is used (antenna frequency unknown)"
    )
    if mhz is None and warning not in out.warnings:
        out.warnings.append(warning)
    return mhz


def nonsignal_rows(raw: np.ndarray) -> int:
    """How many leading samples per trace are bookkeeping words, not signal (0 or 2).

    Sample 0 is then a trace counter (steps of +1) or a constant, and sample 1 the mark
    word, taking only a few distinct values. Judged on the data, never on the model.
    """
    n = raw.shape[0]
    if n < 3 or raw.shape[1] < 4:
        return 0
    r0 = raw[:, 0].astype(np.int64)
    steps = np.diff(r0)
    counter = float(np.mean(steps == 1)) > 0.95
    constant = bool(np.all(r0 == r0[0]))
    few_marks = np.unique(raw[:, 1]).size <= 4
    signal_varies = np.unique(raw[:, 2]).size > 4 or np.unique(raw[:, -1]).size > 4
    return 2 if (counter or constant) and few_marks and signal_varies else 0


def _read_dzx(path: Path, out: GprFile) -> dict[str, Any]:
    try:
        root = ET.fromstring(path.read_bytes())
    except (ET.ParseError, OSError) as exc:
        out.warnings.append(f"{path.name}: ignored, not readable XML ({exc})")
        return {}
    info: dict[str, Any] = {}

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    waypoints: list[tuple[int, float, float]] = []
    marks: list[int] = []
    for el in root.iter():
        name = local(el.tag)
        text = (el.text or "").strip()
        if name in ("unitsPerScan", "scanPerMeters", "horizontalUnit", "system"):
            info[name] = text
        elif name == "WayPt":
            scan = coords = None
            for child in el:
                if local(child.tag) == "scan":
                    scan = child.text
                elif local(child.tag) == "localCoords":
                    coords = child.text
            try:
                if scan is not None and coords is not None:
                    xy = [float(c) for c in coords.split(",")[:2]]
                    waypoints.append((int(scan), xy[0], xy[1]))
            except ValueError:
                out.warnings.append(f"{path.name}: waypoint with unreadable coordinates ignored")
        elif name == "mark":
            for child in el:
                if local(child.tag) == "scan" and (child.text or "").strip().isdigit():
                    marks.append(int((child.text or "").strip()))
    info["waypoints"] = waypoints
    info["marks"] = marks
    return info


_UNIT_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048, "in": 0.0254, "km": 1000.0}


def _waypoint_positions(
    waypoints: list[tuple[int, float, float]], traces: np.ndarray, unit_m: float
) -> np.ndarray | None:
    """Positions of trace indices ``traces`` by piecewise-linear interpolation between
    waypoints (extrapolated at the ends)."""
    wp = sorted(set(waypoints))
    if len(wp) < 2:
        return None
    scans = np.array([w[0] for w in wp], dtype=np.float64)
    xy = np.array([[w[1], w[2]] for w in wp]) * unit_m
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    if np.any(np.diff(scans) <= 0) or dist[-1] <= 0:
        return None
    idx = np.asarray(traces, dtype=np.float64)
    pos = np.interp(idx, scans, dist)
    lo_slope = (dist[1] - dist[0]) / (scans[1] - scans[0])
    hi_slope = (dist[-1] - dist[-2]) / (scans[-1] - scans[-2])
    pos = np.where(idx < scans[0], dist[0] + (idx - scans[0]) * lo_slope, pos)
    return np.where(idx > scans[-1], dist[-1] + (idx - scans[-1]) * hi_slope, pos)


def _read_dzg(path: Path, sps: float, out: GprFile) -> tuple[list[GpsFix], np.ndarray]:
    try:
        text = path.read_bytes().decode("ascii", "replace")
    except OSError as exc:
        out.warnings.append(f"{path.name}: ignored ({exc})")
        return [], np.zeros(0)
    stats = NmeaStats()
    fixes: list[GpsFix] = []
    scans: list[float] = []
    scan: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$GSSIS"):
            parts = line.split(",")
            try:
                scan = float(parts[1])
            except (IndexError, ValueError):
                scan = None
        elif line[3:6] == "GGA" and line.startswith("$") and scan is not None:
            t = scan / sps if sps > 0 else math.nan
            fix = parse_gga(line, t, stats, source="dzg")
            if fix is not None:
                fixes.append(fix)
                scans.append(scan)
            scan = None
    if stats.bad_checksum or stats.malformed:
        out.warnings.append(
            f"{path.name}: {stats.bad_checksum} GGA sentence(s) with a bad checksum and "
            f"{stats.malformed} malformed sentence(s) skipped"
        )
    if stats.no_fix:
        out.warnings.append(
            f"{path.name}: {stats.no_fix} of {len(fixes)} GGA fixes have no position"
        )
    return fixes, np.asarray(scans, dtype=np.float64)


def _roughness(buf: bytes, nsamp: int, nchan: int, bits: int) -> float | None:
    """Median over traces of mean |step| / std along the trace, ``buf`` read as
    ``bits``-bit samples; None when it holds fewer than two scans or no trace varies.

    The first 4 samples (bookkeeping words in several units) are left out."""
    dtype = _DTYPES[bits]
    n = len(buf) // (nsamp * nchan * dtype.itemsize)
    if n < 2 or nsamp < 8:
        return None
    words = np.frombuffer(buf, dtype=dtype, count=n * nchan * nsamp)
    x = words.reshape(n * nchan, nsamp)[:, 4:].astype(np.float64)
    step = np.abs(np.diff(x, axis=1)).mean(axis=1)
    std = x.std(axis=1)
    ok = std > 0
    return float(np.median(step[ok] / std[ok])) if ok.any() else None


def _sample_bits(path: Path, hdr: dict[str, Any], prefix: bytes, out: GprFile) -> int:
    """The sample size in bits, from the header's bits field checked against the data.

    GPR traces are smooth along the samples; read with the wrong word size they are not
    (16-bit data read as 32-bit pairs two samples into one word, 32-bit data read as
    16-bit alternate low and high halves). The field is overruled, with a warning naming
    it, only when another size is clearly smoother; a field that is not 8/16/32 and data
    that do not show the size are a ReaderError.
    """
    bits, nsamp, nchan = int(hdr["bits"]), int(hdr["nsamp"]), int(hdr["nchan"])
    rough = {b: r for b in _DTYPES if (r := _roughness(prefix, nsamp, nchan, b)) is not None}
    best = min(rough, key=rough.__getitem__) if rough else None
    smooth = best is not None and rough[best] < _SMOOTH_MAX
    if bits not in _DTYPES:
        others = [r for b, r in rough.items() if b != best]
        if best is None or not smooth or not all(r > _ROUGHER * rough[best] for r in others):
            raise ReaderError(
                f"{path}: header bits per sample = {bits} (expected 8, 16 or 32), and the "
                "data do not show the sample size"
            )
        out.warnings.append(
            f"header bits per sample = {bits} (expected 8, 16 or 32): read as {best}-bit, "
            f"the only sample size that gives smooth traces (step/std {rough[best]:.2f})"
        )
        return best
    if best is None or best == bits or not smooth:
        return bits
    mine = rough.get(bits, math.inf)
    if mine <= _ROUGHER * rough[best]:
        return bits
    out.warnings.append(
        f"header bits per sample = {bits} contradicts the data: read as {best}-bit, under "
        f"which the traces are smooth (step/std {rough[best]:.2f}, as {bits}-bit {mine:.2f})"
    )
    return best


def _check_samples(path: Path, hdr: dict[str, Any], antenna_mhz: float | None) -> None:
    """The samples-per-trace field against physical sense (ReaderError naming it)."""
    nsamp, range_ns = int(hdr["nsamp"]), float(hdr["range_ns"])
    dt_ns = range_ns / nsamp
    lo, hi = _DT_NS_RANGE
    if not (lo <= dt_ns <= hi):
        raise ReaderError(
            f"{path}: header samples per trace = {nsamp} over a {range_ns:g} ns range gives "
            f"a sample interval of {dt_ns:.3g} ns (expected {lo:g} to {hi:g} ns)"
        )
    if antenna_mhz:
        per_period = 1000.0 / antenna_mhz / dt_ns
        if per_period > _MAX_SAMPLES_PER_PERIOD:
            raise ReaderError(
                f"{path}: header samples per trace = {nsamp} over a {range_ns:g} ns range "
                f"gives {per_period:.3g} samples per period of the {antenna_mhz:g} MHz antenna "
                f"(expected at most {_MAX_SAMPLES_PER_PERIOD:g})"
            )


def _read_samples(
    path: Path, offset: int, n_scans: int, nchan: int, nsamp: int, bits: int
) -> np.ndarray:
    """``(nchan, n_scans, nsamp)`` float32 samples less the zero level, read in chunks.

    Plain reads, not a memmap (a file cut short under us is then an error, not a
    SIGBUS), and in chunks, so the only full-size array is the float32 result."""
    dtype = _DTYPES[bits]
    zero = np.float32(_ZERO_LEVEL[bits])
    out = np.empty((nchan, n_scans, nsamp), dtype=np.float32)
    per_chunk = max(1, _CHUNK_BYTES // (nchan * nsamp * dtype.itemsize))
    with open(path, "rb") as f:
        f.seek(offset)
        for lo in range(0, n_scans, per_chunk):
            k = min(per_chunk, n_scans - lo)
            words = np.fromfile(f, dtype=dtype, count=k * nchan * nsamp)
            if words.size != k * nchan * nsamp:
                raise ReaderError(f"{path}: file shrank while being read (at scan {lo + k})")
            dest = out[:, lo : lo + k, :]
            dest[...] = words.reshape(k, nchan, nsamp).transpose(1, 0, 2)
            dest -= zero
    return out


def read_dzt(
    path: Path, trace_spacing_m: float | None = None, headers_only: bool = False
) -> GprFile:
    size = file_size(path)
    head = read_head(path, 1024)
    if len(head) < 1024:
        raise ReaderError(f"{path}: truncated DZT: {len(head)} bytes, header needs 1024")
    hdr = _parse_header(head)
    bad = _plausible(hdr, check_bits=False)
    if bad is not None:
        raise ReaderError(f"{path}: not a valid DZT header: {bad}")
    offset = header_bytes(hdr)
    nsamp, nchan = int(hdr["nsamp"]), int(hdr["nchan"])
    if size <= offset:
        raise ReaderError(f"{path}: truncated DZT: {size} bytes, header alone is {offset}")
    out = GprFile(path=path, format="dzt", format_reason="", blocks=[])
    prefix = read_head(path, offset + _PREFIX_BYTES)[offset:]
    bits = _sample_bits(path, hdr, prefix, out)
    dtype = _DTYPES[bits]
    scan_bytes = nsamp * nchan * dtype.itemsize
    n_scans, rest = divmod(size - offset, scan_bytes)
    if n_scans == 0:
        raise ReaderError(
            f"{path}: header says {nsamp} samples x {nchan} channel(s) x {bits} bit per scan "
            f"({scan_bytes} bytes) but only {size - offset} data bytes follow"
        )
    if rest:
        out.warnings.append(
            f"file ends inside scan {n_scans}: {rest} trailing bytes of an incomplete scan dropped"
        )
    out.antenna_mhz = _antenna(hdr["antenna"], out)
    _check_samples(path, hdr, out.antenna_mhz)
    skip_data = skip_samples(headers_only, n_scans * scan_bytes, out)
    if skip_data:
        n_pre = min(n_scans, len(prefix) // scan_bytes)
        words = np.frombuffer(prefix, dtype=dtype, count=n_pre * nchan * nsamp)
        pre = words.reshape(n_pre, nchan, nsamp).transpose(1, 0, 2).astype(np.float32)
        samples = pre - np.float32(_ZERO_LEVEL[bits])
    else:
        check_read_size(path, n_scans * nchan * nsamp, f"{n_scans} scans x {nchan} x {nsamp}")
        samples = _read_samples(path, offset, n_scans, nchan, nsamp, bits)

    sps, spm = float(hdr["sps"]), float(hdr["spm"])
    out.trace_rate_hz = plausible_rate(out, sps, "header rhf_sps")
    if not (math.isfinite(hdr["epsr"]) and hdr["epsr"] > 0):
        out.warnings.append(
            f"header dielectric epsr = {hdr['epsr']} (unset): depths need a velocity from elsewhere"
        )
    headers = _channel_headers(path, hdr, offset)

    file_spacing, source = _header_spacing(spm, out)
    positions: np.ndarray | None = None
    dzx_path = sibling(path, ".dzx")
    dzx: dict[str, Any] = {}
    if dzx_path is not None:
        dzx = _read_dzx(dzx_path, out)
        if file_spacing is None:
            unit = _UNIT_M.get(str(dzx.get("horizontalUnit", "m")).lower(), 1.0)
            ends = np.array([0, n_scans - 1]) if skip_data else np.arange(n_scans)
            positions = _waypoint_positions(dzx.get("waypoints", []), ends, unit)
            if positions is not None and n_scans > 1:
                file_spacing = float((positions[-1] - positions[0]) / (n_scans - 1))
                source = f"the {len(dzx['waypoints'])} waypoints of {dzx_path.name}"
                out.warnings.append(f"trace positions from {source}")
            else:
                try:
                    per_scan = float(dzx.get("unitsPerScan", "nan")) * unit
                except ValueError:
                    per_scan = math.nan
                if math.isfinite(per_scan) and per_scan > 0:
                    file_spacing = per_scan
                    source = f"{dzx_path.name} unitsPerScan"
    spacing = apply_spacing(out, file_spacing, trace_spacing_m, source)
    # rhf_spm > 0: distance-triggered, rhf_sps is only the radar's top scan rate
    spacing = check_survey_speed(out, spacing, out.trace_rate_hz, source, at_most=spm > 0)
    if spacing is None:
        positions = None
    out.trace_spacing_m = spacing
    n_arr = 0 if skip_data else n_scans  # per-trace arrays too are O(1) for headers only
    if positions is None or trace_spacing_m is not None or skip_data:
        positions = np.arange(n_arr, dtype=np.float64) * spacing if spacing else None

    dt_ns = float(hdr["range_ns"]) / nsamp
    rate = out.trace_rate_hz
    host_time = np.arange(n_arr) / rate if rate else np.full(n_arr, np.nan)
    marks: list[int] = [int(m) for m in dzx.get("marks", [])]
    for ch in range(nchan):
        data = samples[ch]
        skip = nonsignal_rows(data)
        if skip:
            mark_word = data[:, 1]
            values, counts = np.unique(mark_word, return_counts=True)
            usual = values[np.argmax(counts)]
            if ch == 0 and not skip_data:
                marks.extend(np.flatnonzero(mark_word != usual).tolist())
            data[:, :skip] = data[:, skip : skip + 1]
            out.warnings.append(
                f"channel {ch}: samples 0-1 hold the trace number and mark word, not signal; "
                "replaced by sample 2"
            )
        ch_mhz = _antenna(headers[ch]["antenna"], out) if ch else out.antenna_mhz
        header = GprHeader(
            dt_ns=dt_ns,
            time_zero_ns=_time_zero(ch, float(headers[ch]["position_ns"]), nsamp * dt_ns, out),
            antenna_hz=ch_mhz * 1e6 if ch_mhz else None,
            channel=ch,
        )
        if skip_data:
            out.blocks.append(placeholder_block(n_scans, nsamp, header))
            continue
        out.blocks.append(
            GprBlock.build(
                data,
                header,
                seq=np.arange(n_scans, dtype=np.int64),
                host_time_s=host_time,
                position_m=positions,
            )
        )
    out.marks = np.unique(np.asarray(marks, dtype=np.int64))
    check_antenna_nyquist(out)

    dzg_path = sibling(path, ".dzg")
    if dzg_path is not None:
        out.gps, out.gps_trace = _read_dzg(dzg_path, out.trace_rate_hz or 0.0, out)
    out.meta = {
        k: hdr[k]
        for k in (
            "tag",
            "rh_data",
            "bits",
            "zero",
            "sps",
            "spm",
            "mpm",
            "position_ns",
            "range_ns",
            "epsr",
            "antenna",
            "name",
            "created",
            "system_code",
        )
    }
    out.meta["header_bytes"] = offset
    if "system" in dzx:
        out.meta["system"] = dzx["system"]
    return out


def _header_spacing(spm: float, out: GprFile) -> tuple[float | None, str]:
    """(trace spacing in m, where from) of the ``rhf_spm`` field; None where it gives none
    (0: time-triggered) or cannot (not a finite positive number: warned)."""
    if spm == 0:
        return None, "header rhf_spm"
    if not (math.isfinite(spm) and spm > 0):
        out.warnings.append(
            f"header rhf_spm = {spm:g} scans/m is not a positive number: spacing not taken from it"
        )
        return None, "header rhf_spm"
    return 1.0 / spm, f"header rhf_spm = {spm:g} scans/m"


def _per_channel(value: Any, nchan: int) -> list[Any]:
    if isinstance(value, (str, int, float)):
        return [value] * nchan
    values = list(value)
    if len(values) != nchan:
        raise ValueError(f"{len(values)} per-channel values for {nchan} channel(s)")
    return values


def write_dzt(
    path: str | Path,
    raw: np.ndarray,
    range_ns: float,
    bits: int = 16,
    sps: float = 100.0,
    spm: float = 0.0,
    epsr: float = 6.0,
    antenna: str | Sequence[str] = "400MHz",
    rh_data: int = 1024,
    tag: int = 0x00FF,
    position_ns: float | Sequence[float] = 0.0,
) -> None:
    """Write raw on-disk sample words ``(n_scans, n_channels, n_samples)`` as a DZT.

    Meant for synthetic test and benchmark files: only the fields this reader uses
    are filled in. ``antenna`` and ``position_ns`` may differ per channel; each channel
    gets its own 1024-byte header where the header has room for it.
    """
    if raw.ndim != 3:
        raise ValueError(f"raw must be (n_scans, n_channels, n_samples), got {raw.shape}")
    _, nchan, nsamp = raw.shape
    head_len = 1024 * rh_data if rh_data < 1024 else 1024 * nchan
    head = bytearray(head_len)
    zero = {8: 128, 16: 32768, 32: 0}[bits]
    names = _per_channel(antenna, nchan)
    positions_ns = _per_channel(position_ns, nchan)
    for ch in range(min(nchan, head_len // 1024)):
        base = 1024 * ch
        struct.pack_into(
            "<HHHHh5fH",
            head,
            base,
            tag,
            rh_data,
            nsamp,
            bits,
            zero - 65536 if zero > 32767 else zero,
            sps,
            spm,
            0.0,
            float(positions_ns[ch]),
            range_ns,
            0,
        )
        struct.pack_into("<H", head, base + 52, nchan)
        struct.pack_into("<3f", head, base + 54, epsr, 0.0, 0.0)
        name = str(names[ch]).encode("latin-1")[:14]
        head[base + 98 : base + 98 + len(name)] = name
    with open(path, "wb") as f:
        f.write(bytes(head))
        f.write(np.ascontiguousarray(raw, dtype=_DTYPES[bits]).tobytes())
