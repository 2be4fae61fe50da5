"""gprMax output reader: HDF5 ``.out`` (3.x) and ``.h5`` (4.x), A-scans and merged B-scans.

Recognised by content: an HDF5 file whose root carries the ``gprMax`` version
attribute (or an ``rxs`` group and a ``dt`` attribute). A receiver's field component
is ``(iterations,)`` for one A-scan or ``(iterations, n_traces)`` for a merged B-scan.
``dt`` is in seconds. The trace step comes from ``rxsteps`` x ``dx_dy_dz`` when the
file has them, otherwise from the user (``input.trace_spacing_m``).

The antenna centre frequency and time zero: from ``detect_centre_hz`` /
``detect_time_zero_ns`` (what :mod:`detect.sim.fdtd` writes), else from a 4.x A-scan's
source record (``srcs/src1/excitation``: a Ricker of centre fc peaks at sqrt(2)/fc), else
unknown (a warning says so).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from detect.blocks import GprBlock, GprHeader
from detect.io.base import (
    HDF5_MAGIC,
    GprFile,
    ReaderError,
    apply_spacing,
    check_finite,
    check_read_size,
)

COMPONENTS = ("Ez", "Ey", "Ex", "Hz", "Hy", "Hx")


def _is_gprmax(f: h5py.File) -> bool:
    return "gprMax" in f.attrs or ("rxs" in f and "dt" in f.attrs)


def sniff(path: Path, head: bytes) -> str | None:
    if not head.startswith(HDF5_MAGIC):
        return None
    try:
        with h5py.File(path, "r") as f:
            if not _is_gprmax(f):
                return None
            version = f.attrs.get("gprMax", b"?")
    except OSError:
        return None
    if isinstance(version, bytes):
        version = version.decode("latin-1", "replace")
    return f"HDF5 with gprMax attribute (version {version})"


def read_gprmax(
    path: Path, trace_spacing_m: float | None = None, component: str | None = None
) -> GprFile:
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ReaderError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        if not _is_gprmax(f):
            raise ReaderError(f"{path}: HDF5 file without gprMax attributes")
        if "rxs" not in f or len(f["rxs"]) == 0:
            raise ReaderError(f"{path}: gprMax file has no receivers (group 'rxs')")
        dt_s = float(np.asarray(f.attrs["dt"]).ravel()[0])
        if not (np.isfinite(dt_s) and dt_s > 0):
            raise ReaderError(f"{path}: gprMax attribute dt = {dt_s} s")
        rx_name = sorted(f["rxs"].keys())[0]
        rx = f["rxs"][rx_name]
        names = [component] if component else [c for c in COMPONENTS if c in rx]
        if not names or names[0] not in rx:
            raise ReaderError(
                f"{path}: receiver {rx_name} has no field component {names or COMPONENTS}"
            )
        comp = names[0]
        check_read_size(path, int(rx[comp].size), f"{rx_name}/{comp} {rx[comp].shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.asarray(rx[comp][()], dtype=np.float32)
        iterations = f.attrs.get("Iterations")
        steps = np.asarray(f.attrs.get("rxsteps", [0, 0, 0]), dtype=np.float64).ravel()
        cell = np.asarray(f.attrs.get("dx_dy_dz", [0, 0, 0]), dtype=np.float64).ravel()
        version = f.attrs.get("gprMax", b"")
        n_rx = len(f["rxs"])
        antenna_hz, time_zero_ns = _source_timing(f)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ReaderError(
            f"{path}: {rx_name}/{comp} has shape {arr.shape}, expected (iterations[, traces])"
        )
    out = GprFile(path=path, format="gprmax", format_reason="", blocks=[])
    if iterations is not None and int(iterations) != arr.shape[0]:
        out.warnings.append(f"attribute Iterations = {int(iterations)}, {comp} has {arr.shape[0]}")
    if n_rx > 1:
        out.warnings.append(f"{n_rx} receivers; reading {rx_name}")
    data = np.ascontiguousarray(arr.T)
    step_m = (
        float(np.linalg.norm(steps[:3] * cell[:3])) if steps.size >= 3 and cell.size >= 3 else 0.0
    )
    spacing = apply_spacing(out, step_m if step_m > 0 else None, trace_spacing_m)
    if data.shape[0] == 1 and spacing is None:
        out.warnings.pop()
    out.trace_spacing_m = spacing
    n = data.shape[0]
    pos = np.arange(n) * spacing if spacing else np.full(n, np.nan)
    hdr = GprHeader(dt_ns=dt_s * 1e9, time_zero_ns=time_zero_ns, antenna_hz=antenna_hz)
    out.blocks.append(GprBlock.build(data, hdr, host_time_s=np.full(n, np.nan), position_m=pos))
    if antenna_hz is None:
        out.warnings.append("simulated data (gprMax): antenna frequency not stored in the file")
    if isinstance(version, bytes):
        version = version.decode("latin-1", "replace")
    check_finite(out)
    out.meta = {"gprmax_version": str(version), "receiver": rx_name, "component": comp}
    return out


def _source_timing(f: h5py.File) -> tuple[float | None, float]:
    """(centre frequency in Hz or None, time zero in ns) as the file states them."""
    hz = _positive(f.attrs.get("detect_centre_hz"))
    t0 = _positive(f.attrs.get("detect_time_zero_ns"))
    if hz is not None:
        return hz, t0 or 0.0
    exc = f.get("srcs/src1/excitation")
    if exc is None:
        return None, 0.0
    hz = _positive(exc.attrs.get("WaveformFrequency"))
    kind = exc.attrs.get("WaveformType", b"")
    kind = kind.decode("latin-1", "replace") if isinstance(kind, bytes) else str(kind)
    if hz is not None and kind.lower() == "ricker":
        return hz, float(np.sqrt(2.0) / hz * 1e9)
    return hz, 0.0


def _positive(value: object) -> float | None:
    if value is None:
        return None
    try:
        v = float(np.asarray(value).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    return v if np.isfinite(v) and v > 0 else None
