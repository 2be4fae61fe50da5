"""MALA ``.rd3`` (int16) / ``.rd7`` (int32) + ``.rad`` header (+ ``.cor`` GPS) reader.

The ``.rad`` is ``KEY:value`` text. ``FREQUENCY`` there is the *sampling* frequency
in MHz (dt = 1000 / FREQUENCY ns), not the antenna frequency; the antenna is named in
``ANTENNAS`` (e.g. ``500_shielded_egrip``). Traces carry no headers: the data file is
``n_traces x SAMPLES`` samples, read at once.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix
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
    sibling,
    skip_samples,
)

_ANT_MHZ = re.compile(r"(\d+(?:\.\d+)?)\s*(?:_|\s)*(MHz|GHz)?", re.IGNORECASE)


def parse_rad(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.replace("\r", "\n").split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip().upper()] = value.strip()
    return out


def sniff(path: Path, head: bytes) -> str | None:
    if b"SAMPLES:" in head and b"FREQUENCY:" in head:
        return "MALA .rad header text (SAMPLES:, FREQUENCY:)"
    if path.suffix.lower() in (".rd3", ".rd7") and sibling(path, ".rad") is not None:
        return f"MALA data file with a .rad header next to it ({path.suffix})"
    return None


def _rad_num(rad: dict[str, str], key: str, path: Path) -> float:
    if key not in rad:
        raise ReaderError(f"{path}: .rad has no '{key}'")
    try:
        value = float(rad[key].split()[0])
    except (ValueError, IndexError):
        raise ReaderError(f"{path}: .rad '{key}' = '{rad[key]}' is not a number") from None
    if not math.isfinite(value):
        raise ReaderError(f"{path}: .rad '{key}' = '{rad[key]}' is not finite")
    return value


def _rad_opt(rad: dict[str, str], key: str, path: Path) -> float:
    """An optional numeric .rad field: 0 when absent or empty, else as :func:`_rad_num`."""
    if not rad.get(key, "").strip():
        return 0.0
    return _rad_num(rad, key, path)


def _antenna_mhz(name: str) -> float | None:
    m = _ANT_MHZ.match(name.strip())
    if not m:
        return None
    value = float(m.group(1))
    return value * 1000.0 if (m.group(2) or "").lower() == "ghz" else value


def _read_cor(path: Path, out: GprFile) -> tuple[list[GpsFix], np.ndarray]:
    """Tab-separated: trace, date, time, lat, N/S, lon, E/W, alt, M, accuracy."""
    fixes: list[GpsFix] = []
    traces: list[float] = []
    bad = 0
    for line in path.read_bytes().decode("latin-1").splitlines():
        f = line.strip().split()
        if not f:
            continue
        try:
            trace = float(f[0]) - 1.0
            lat = float(f[3]) * (-1.0 if f[4].upper() == "S" else 1.0)
            lon = float(f[5]) * (-1.0 if f[6].upper() == "W" else 1.0)
            alt = float(f[7]) if len(f) > 7 else None
            acc = float(f[9]) if len(f) > 9 else None
            hh, mm, ss = (float(x) for x in f[2].split(":"))
            fixes.append(
                GpsFix(
                    host_time_s=math.nan,
                    lat_deg=lat,
                    lon_deg=lon,
                    alt_m=alt,
                    quality=FixQuality.GPS,
                    h_acc_m=acc,
                    utc_s=hh * 3600 + mm * 60 + ss,
                    source="cor",
                )
            )
            traces.append(trace)
        except (ValueError, IndexError):
            bad += 1
    if bad:
        out.warnings.append(f"{path.name}: {bad} unreadable line(s) skipped")
    return fixes, np.asarray(traces, dtype=np.float64)


def read_rd3(
    path: Path, trace_spacing_m: float | None = None, headers_only: bool = False
) -> GprFile:
    if path.suffix.lower() == ".rad":
        data_path = sibling(path, ".rd3") or sibling(path, ".rd7")
        if data_path is None:
            raise ReaderError(f"{path}: no .rd3/.rd7 data file next to this .rad file")
        rad_path = path
    else:
        data_path = path
        found = sibling(path, ".rad")
        if found is None:
            raise ReaderError(f"{path}: no .rad header file next to this data file")
        rad_path = found
    rad = parse_rad(rad_path.read_bytes().decode("latin-1"))
    samples = _rad_num(rad, "SAMPLES", rad_path)
    fs_mhz = _rad_num(rad, "FREQUENCY", rad_path)
    if samples < 2 or not samples.is_integer() or fs_mhz <= 0:
        raise ReaderError(f"{rad_path}: SAMPLES = {samples}, FREQUENCY = {fs_mhz} MHz")
    if fs_mhz > 1e6:  # sampling beyond 1 THz (dt < 1 ps): the field lies
        raise ReaderError(
            f"{rad_path}: .rad FREQUENCY = {fs_mhz:g} MHz (the sampling frequency; expected "
            "at most 1e6 MHz)"
        )
    n_samp = int(samples)
    dtype = np.dtype("<i4") if data_path.suffix.lower() == ".rd7" else np.dtype("<i2")
    size = file_size(data_path)
    trace_bytes = n_samp * dtype.itemsize
    n_traces, rest = divmod(size, trace_bytes)
    out = GprFile(path=data_path, format="rd3", format_reason="", blocks=[])
    if n_traces == 0:
        raise ReaderError(f"{data_path}: {size} bytes hold no complete trace of {n_samp} samples")
    if rest:
        out.warnings.append(
            f"file ends inside trace {n_traces}: {rest} bytes of an incomplete trace dropped"
        )
    if "LAST TRACE" in rad:
        last = _rad_num(rad, "LAST TRACE", rad_path)
        if int(last) != n_traces:
            out.warnings.append(f".rad LAST TRACE = {int(last)}, the data file holds {n_traces}")
    skip_data = skip_samples(headers_only, n_traces * trace_bytes, out)
    if not skip_data:
        check_read_size(data_path, n_traces * n_samp, f"{n_traces} traces x {n_samp} samples")
        data = np.fromfile(data_path, dtype=dtype, count=n_traces * n_samp)
        data = data.reshape(n_traces, n_samp)
    dt_ns = 1000.0 / fs_mhz
    if "TIMEWINDOW" in rad:
        tw = _rad_num(rad, "TIMEWINDOW", rad_path)
        if not math.isclose(tw, n_samp * dt_ns, rel_tol=0.01):
            out.warnings.append(
                f".rad TIMEWINDOW = {tw:g} ns differs from SAMPLES x dt = {n_samp * dt_ns:g} ns; "
                "dt taken from FREQUENCY (sampling MHz)"
            )
    dist = _rad_opt(rad, "DISTANCE INTERVAL", rad_path)
    time_mode = rad.get("TIME FLAG", "0").strip() == "1"
    t_int = _rad_opt(rad, "TIME INTERVAL", rad_path)
    rate = 1.0 / t_int if time_mode and t_int > 0 else 0.0
    out.trace_rate_hz = plausible_rate(out, rate, "1 / .rad TIME INTERVAL")
    file_spacing = dist if dist > 0 else None
    source = f".rad DISTANCE INTERVAL = {dist:g} m"
    spacing = apply_spacing(out, file_spacing, trace_spacing_m, source)
    if time_mode and rad.get("DISTANCE FLAG", "0").strip() != "1":
        # time-triggered: the head moved DISTANCE INTERVAL per TIME INTERVAL
        spacing = check_survey_speed(out, spacing, out.trace_rate_hz, source)
    out.trace_spacing_m = spacing
    n_arr = 0 if skip_data else n_traces  # per-trace arrays are O(1) for headers only
    pos = np.arange(n_arr) * spacing if spacing else np.full(n_arr, np.nan)
    host_time = (
        np.arange(n_arr) / out.trace_rate_hz if out.trace_rate_hz else np.full(n_arr, np.nan)
    )
    antenna = rad.get("ANTENNAS", "")
    out.antenna_mhz = _antenna_mhz(antenna)
    if out.antenna_mhz is None:
        out.warnings.append(f"unknown antenna '{antenna}': centre frequency not known")
    header = GprHeader(dt_ns=dt_ns, antenna_hz=out.antenna_mhz * 1e6 if out.antenna_mhz else None)
    if skip_data:
        out.blocks.append(placeholder_block(n_traces, n_samp, header))
    else:
        out.blocks.append(
            GprBlock.build(data.astype(np.float32), header, host_time_s=host_time, position_m=pos)
        )
    cor = sibling(data_path, ".cor")
    if cor is not None:
        out.gps, out.gps_trace = _read_cor(cor, out)
        beyond = int(np.sum(out.gps_trace >= n_traces))
        if beyond:
            out.warnings.append(f"{cor.name}: {beyond} fix(es) refer to traces beyond the data")
        if out.trace_rate_hz:
            out.gps = [
                GpsFix(**{**f.__dict__, "host_time_s": float(t) / out.trace_rate_hz})
                for f, t in zip(out.gps, out.gps_trace, strict=True)
            ]
    check_antenna_nyquist(out)
    out.meta = {"rad": rad, "rad_path": str(rad_path), "sampling_mhz": fs_mhz}
    return out
