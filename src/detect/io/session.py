"""Session recordings: one HDF5 file per session, appended as data arrives.

Layout (field by field in ``docs/recording-format.md``): a group per stream (``gpr``,
``emi``) with ``data`` and per-row ``seq``/``host_time_s``/``position_m``/``header``
datasets, a ``headers`` table (dt, antenna... stored once per distinct header) and a
``blocks`` table (row ranges, so replay delivers the blocks as recorded); tables
``gps``, ``alarms``, ``health``, ``coverage``; ``truth`` as JSON lines.

Every object is created before the file switches to SWMR mode (HDF5 forbids creating
objects afterwards), so widths unknown at the start (samples per trace, EMI channels)
are resizable too. A reader in another process opens with ``swmr=True`` while the
recording runs. The writer flushes at least every ``flush_interval_s``; a process
killed with SIGKILL leaves a file that holds everything up to the last flush. A write
error raises :class:`RecordingError` once, closes the file (keeping what was flushed)
and turns every later call into a no-op, so the pipeline can report it and go on
alarming.

One format, one module (over 800 lines on purpose): the table layouts, the writer and
the reader change together (a field added to a table is written and read in the same
commit, and old files without it still read), and keeping them side by side is what
makes that reviewable.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from detect._version import __version__
from detect.blocks import (
    Alarm,
    FixQuality,
    GprBlock,
    GprHeader,
    GpsFix,
    HealthEvent,
    MdBlock,
    MdHeader,
    PositionEpoch,
    SensorState,
)
from detect.coverage import total_m
from detect.io.base import HDF5_MAGIC, GprFile, ReaderError, hdf5_damage, trace_positions

try:
    import resource
except ImportError:  # pragma: no cover - Windows has no RLIMIT_FSIZE
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Space a write may need beyond its payload: new chunks of several datasets + metadata.
WRITE_ALLOWANCE_BYTES = 512 * 1024

SCHEMA = "detect-session"
SCHEMA_VERSION = 1


class RecordingError(OSError):
    """Writing the session failed (disk full, I/O error); what was flushed is kept."""


_GPR_HEADER = np.dtype(
    [
        ("dt_ns", "<f8"),
        ("time_zero_ns", "<f8"),
        ("antenna_hz", "<f8"),
        ("channel", "<i4"),
        ("n_samples", "<i4"),
        ("sensor", "S32"),
    ]
)
_EMI_HEADER = np.dtype(
    [
        ("sample_rate_hz", "<f8"),
        ("n_channels", "<i4"),
        ("kind", "S32"),
        ("sensor", "S32"),
        ("channels_json", "S4096"),
    ]
)
_BLOCKS = np.dtype([("start", "<i8"), ("stop", "<i8"), ("header", "<i4"), ("host_time_s", "<f8")])
_GPS = np.dtype(
    [
        ("host_time_s", "<f8"),
        ("lat_deg", "<f8"),
        ("lon_deg", "<f8"),
        ("alt_m", "<f8"),
        ("quality", "<i1"),
        ("n_sats", "<i4"),
        ("hdop", "<f8"),
        ("h_acc_m", "<f8"),
        ("correction_age_s", "<f8"),
        ("utc_s", "<f8"),
        ("speed_m_s", "<f8"),
        ("course_deg", "<f8"),
        ("source", "S32"),
    ]
)
_ALARM = np.dtype(
    [
        ("alarm_id", "S64"),
        ("position_m", "<f8"),
        ("confidence", "<f8"),
        ("class_name", "S32"),
        ("depth_m", "<f8"),
        ("host_time_s", "<f8"),
        ("lat_deg", "<f8"),
        ("lon_deg", "<f8"),
        ("h_acc_m", "<f8"),
        ("scores_json", "S2048"),
        ("epoch", "<i4"),
        ("tier", "S16"),
    ]
)
#: an operator's outcome after checking an alarm (``/outcomes``; absent from older files)
OUTCOME_DTYPE = np.dtype(
    [
        ("alarm_id", "S64"),
        ("outcome", "S16"),
        ("utc", "S32"),
        ("position_m", "<f8"),
        ("epoch", "<i4"),
        ("lat_deg", "<f8"),
        ("lon_deg", "<f8"),
        ("alarm_class", "S32"),
        ("confidence", "<f8"),
        ("depth_m", "<f8"),
        ("tier", "S16"),
    ]
)
_HEALTH = np.dtype(
    [
        ("host_time_s", "<f8"),
        ("sensor", "S32"),
        ("state", "<i1"),
        ("reason", "S256"),
        ("position_m", "<f8"),
    ]
)
_COVERAGE = np.dtype(
    [
        ("start_m", "<f8"),
        ("end_m", "<f8"),
        ("state", "<i1"),
        ("sensor", "S32"),
        ("reason", "S256"),
        ("host_time_s", "<f8"),
        ("epoch", "<i4"),
    ]
)
#: A new position epoch began (``PositionEpoch``) after ``gpr_rows`` / ``emi_rows`` rows.
_EPOCH = np.dtype(
    [
        ("host_time_s", "<f8"),
        ("source", "S64"),
        ("reason", "S256"),
        ("gpr_rows", "<i8"),
        ("emi_rows", "<i8"),
    ]
)
#: One row each time coverage became final (docs/recording-format.md, "/coverage_final").
_COVERAGE_FINAL = np.dtype(
    [
        ("host_time_s", "<f8"),
        ("n_rows", "<i8"),
        ("final_to_m", "<f8"),
        ("open_start_m", "<f8"),
        ("open_missing", "S256"),
        ("epoch", "<i4"),
    ]
)


def _coverage_final_fill() -> np.ndarray:
    """Fill value of ``/coverage_final``: a row a kill left unwritten reads as invalid."""
    fill = np.zeros((), _COVERAGE_FINAL)
    fill["host_time_s"] = fill["final_to_m"] = fill["open_start_m"] = math.nan
    fill["n_rows"] = -1
    return fill


def _s(text: str, width: int) -> bytes:
    raw = text.encode("utf-8", "replace")
    return raw if len(raw) <= width else raw[: width - 3] + b"..."


def _u(raw: bytes) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _f(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _opt(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.dumps(obj, default=default, sort_keys=True)


def _plain(config: Any) -> Any:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            return OmegaConf.to_container(config, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return dict(config) if isinstance(config, Mapping) else config


class SessionWriter:
    """Append blocks, fixes, alarms and health events to a session file as they come."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: Mapping[str, Any] | None = None,
        info: Mapping[str, Any] | None = None,
        flush_interval_s: float = 0.5,
        clock: Any = time.monotonic,
        min_free_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if not (flush_interval_s > 0):
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.path = Path(path)
        self.flush_interval_s = float(flush_interval_s)
        self.min_free_bytes = int(min_free_bytes)
        self._clock = clock
        self.error: str | None = None
        self.rows: dict[str, int] = {}
        self.flushed_rows: dict[str, int] = {}
        self._gpr_headers: dict[GprHeader, int] = {}
        self._emi_headers: dict[MdHeader, int] = {}
        self._widths: dict[tuple[str, int], int] = {}
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = h5py.File(self.path, "w", libver="latest")
            self._create(dict(_plain(config) or {}), dict(info or {}))
            self._f.swmr_mode = True
        except (OSError, ValueError, RuntimeError) as exc:
            raise RecordingError(f"cannot create session file {self.path}: {exc}") from exc
        self._last_flush_s = self._clock()

    # ----------------------------------------------------------------- layout
    def _create(self, config: dict[str, Any], info: dict[str, Any]) -> None:
        f = self._f
        f.attrs["schema"] = SCHEMA
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["software_version"] = __version__
        f.attrs["created_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
        f.attrs["start_host_time_s"] = float(self._clock())
        f.attrs["config_json"] = _json(config)
        f.attrs["info_json"] = _json(info)
        f.attrs["closed_cleanly"] = False
        for name, hdr_dtype, chunk_cols in (("gpr", _GPR_HEADER, 512), ("emi", _EMI_HEADER, 8)):
            g = f.create_group(name)
            chunk_rows = 32 if name == "gpr" else 1024
            g.create_dataset(
                "data", (0, 0), np.float32, maxshape=(None, None), chunks=(chunk_rows, chunk_cols)
            )
            for col, dt in (("seq", "<i8"), ("host_time_s", "<f8"), ("position_m", "<f8")):
                g.create_dataset(col, (0,), dt, maxshape=(None,), chunks=(4096,))
            g.create_dataset("header", (0,), "<i4", maxshape=(None,), chunks=(4096,))
            g.create_dataset("headers", (0,), hdr_dtype, maxshape=(None,), chunks=(8,))
            g.create_dataset("blocks", (0,), _BLOCKS, maxshape=(None,), chunks=(1024,))
            self.rows[name] = 0
        for name, table, chunk in (
            ("gps", _GPS, 256),
            ("alarms", _ALARM, 64),
            ("health", _HEALTH, 64),
            ("coverage", _COVERAGE, 64),
            ("epochs", _EPOCH, 16),
            ("outcomes", OUTCOME_DTYPE, 16),
        ):
            f.create_dataset(name, (0,), table, maxshape=(None,), chunks=(chunk,))
            self.rows[name] = 0
        f.create_dataset(
            "coverage_final",
            (0,),
            _COVERAGE_FINAL,
            maxshape=(None,),
            chunks=(256,),
            fillvalue=_coverage_final_fill(),
        )
        self.rows["coverage_final"] = 0
        f.create_dataset("truth", (0,), "u1", maxshape=(None,), chunks=(65536,))
        self.rows["truth"] = 0
        self.flushed_rows = dict(self.rows)

    # ----------------------------------------------------------------- error handling
    @property
    def failed(self) -> bool:
        return self.error is not None

    def _fail(self, what: str, exc: BaseException) -> None:
        kept = ", ".join(f"{k} {v}" for k, v in self.flushed_rows.items() if v)
        self.error = (
            f"recording to {self.path} stopped while writing {what}: {exc}; "
            f"kept up to the last flush ({kept or 'nothing yet'})"
        )
        log.error("%s", self.error)
        self._abandon()
        self._closed = True
        raise RecordingError(self.error) from exc

    def _abandon(self) -> None:
        """Close a file whose writes fail without crashing the process.

        HDF5 keeps retrying the failed metadata writes at close and at interpreter exit,
        which ends in a segmentation fault; pointing its descriptor at /dev/null lets it
        finish. What is on disk is left exactly as the last write left it.
        """
        try:
            fd = self._f.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, int(fd))
            finally:
                os.close(null)
        except Exception:
            log.debug("could not detach the failed session file", exc_info=True)
        try:
            self._f.close()
        except Exception:
            log.debug("closing the failed session file raised", exc_info=True)

    def _headroom_problem(self, payload: int) -> str | None:
        """Why the next write could fill the disk or hit the file size limit (None: fine)."""
        need = 2 * payload + WRITE_ALLOWANCE_BYTES
        size = int(self._f.id.get_filesize())
        if resource is not None:
            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if soft != resource.RLIM_INFINITY and size + need > soft:
                return f"file size limit of {soft} bytes reached ({size} bytes written)"
        if hasattr(os, "statvfs"):
            st = os.statvfs(self.path.parent)
            free = st.f_bavail * st.f_frsize
            if free < need + self.min_free_bytes:
                return f"disk full: {free // 1024} KiB free on {self.path.parent}"
        return None

    def _ensure_headroom(self, payload: int, what: str) -> None:
        """Stop *before* the disk is full: flush and close while the file can still be
        written whole (a flush that fails half way leaves a file HDF5 will not open)."""
        try:
            why = self._headroom_problem(payload)
        except OSError as exc:
            why = None
            log.debug("free-space check failed: %s", exc)
        if why is None:
            return
        self.close()
        kept = ", ".join(f"{k} {v}" for k, v in self.rows.items() if v)
        self.error = (
            f"recording to {self.path} stopped before writing {what}: {why}; "
            f"the file is closed and holds {kept or 'nothing yet'}"
        )
        log.error("%s", self.error)
        raise RecordingError(self.error)

    def _append(self, ds: h5py.Dataset, values: np.ndarray) -> None:
        n0 = ds.shape[0]
        k = values.shape[0]
        if values.ndim == 2 and ds.shape[1] < values.shape[1]:
            ds.resize((n0 + k, values.shape[1]))
        elif values.ndim == 2:
            ds.resize((n0 + k, ds.shape[1]))
        else:
            ds.resize((n0 + k,))
        if values.ndim == 2 and ds.shape[1] > values.shape[1]:
            ds[n0 : n0 + k, : values.shape[1]] = values
        else:
            ds[n0 : n0 + k] = values

    # ----------------------------------------------------------------- writing
    def write(self, item: Any) -> None:
        """Append one block, fix, alarm or health event (no-op after a failure)."""
        if self._closed:
            if self.error is None:
                raise RecordingError(f"session {self.path} is closed")
            return
        payload = item.data.nbytes * 3 if isinstance(item, GprBlock | MdBlock) else 4096
        self._ensure_headroom(payload, type(item).__name__)
        try:
            if isinstance(item, GprBlock):
                self._write_block("gpr", item, self._gpr_header_row(item.header))
            elif isinstance(item, MdBlock):
                self._write_block("emi", item, self._emi_header_row(item.header))
            elif isinstance(item, GpsFix):
                self._write_row("gps", _gps_row(item))
            elif isinstance(item, Alarm):
                self._write_row("alarms", _alarm_row(item))
            elif isinstance(item, HealthEvent):
                self._write_row("health", _health_row(item))
            elif isinstance(item, PositionEpoch):
                row = np.zeros(1, _EPOCH)
                row["host_time_s"], row["source"] = item.host_time_s, _s(item.source, 64)
                row["reason"] = _s(item.reason, 256)
                row["gpr_rows"], row["emi_rows"] = self.rows["gpr"], self.rows["emi"]
                self._write_row("epochs", row)
            else:
                raise TypeError(f"cannot record a {type(item).__name__}")
            self._maybe_flush()
        except TypeError:
            raise
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            self._fail(type(item).__name__, exc)

    def write_coverage(
        self,
        start_m: float,
        end_m: float,
        state: SensorState | int,
        reason: str = "",
        sensor: str = "",
        host_time_s: float = math.nan,
        epoch: int = 0,
    ) -> None:
        """Record an along-track interval a sensor did not cover (or covered degraded), in
        position epoch ``epoch``'s frame."""
        if self._closed:
            if self.error is None:
                raise RecordingError(f"session {self.path} is closed")
            return
        row = np.zeros(1, _COVERAGE)
        row["start_m"], row["end_m"], row["state"] = start_m, end_m, int(state)
        row["sensor"], row["reason"] = _s(sensor, 32), _s(reason, 256)
        row["host_time_s"], row["epoch"] = host_time_s, epoch
        self._ensure_headroom(row.nbytes, "coverage")
        try:
            self._write_row("coverage", row)
            self._maybe_flush()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail("coverage", exc)

    def write_coverage_final(
        self,
        final_to_m: float,
        open_start_m: float = math.nan,
        open_missing: Sequence[str] = (),
        host_time_s: float = math.nan,
        epoch: int = 0,
    ) -> None:
        """Mark the ``/coverage`` rows written so far as the complete record of the ground
        below ``final_to_m`` (``inf``: of the whole run), with the still open segment's
        final part ``[open_start_m, final_to_m)`` and the sensors missing there."""
        if self._closed:
            if self.error is None:
                raise RecordingError(f"session {self.path} is closed")
            return
        missing = _fit_json_list(sorted(open_missing), 256)
        row = np.zeros(1, _COVERAGE_FINAL)
        row["host_time_s"], row["n_rows"] = host_time_s, self.rows["coverage"]
        row["final_to_m"], row["open_start_m"] = final_to_m, open_start_m
        row["open_missing"], row["epoch"] = missing.encode(), epoch
        self._ensure_headroom(row.nbytes, "coverage_final")
        try:
            self._write_row("coverage_final", row)
            self._maybe_flush()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail("coverage_final", exc)

    def write_truth(self, truth: list[dict[str, Any]]) -> None:
        """Ground-truth targets of the lane (appended; the reader joins every call)."""
        if self._closed:
            if self.error is None:
                raise RecordingError(f"session {self.path} is closed")
            return
        raw = np.frombuffer((_json(list(truth)) + "\n").encode("utf-8"), dtype=np.uint8)
        self._ensure_headroom(raw.size, "truth")
        try:
            self._append(self._f["truth"], raw)
            self.rows["truth"] += raw.size
            self._maybe_flush()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail("truth", exc)

    def write_outcome(self, rec: Mapping[str, Any]) -> None:
        """An operator's outcome for an alarm (the console's record: ``id``, ``outcome``,
        ``utc``, ``position_m``, ``epoch``, ``lat``, ``lon``, ``alarm_class``, ``confidence``,
        ``depth_m``, ``tier``); a later row for the same alarm supersedes an earlier one."""
        if self._closed:
            if self.error is None:
                raise RecordingError(f"session {self.path} is closed")
            return
        r = np.zeros(1, OUTCOME_DTYPE)
        r["alarm_id"], r["outcome"] = _s(str(rec["id"]), 64), _s(str(rec["outcome"]), 16)
        r["utc"], r["alarm_class"] = (
            _s(str(rec.get("utc") or ""), 32),
            _s(str(rec.get("alarm_class") or ""), 32),
        )
        r["tier"] = _s(str(rec.get("tier") or "alarm"), 16)
        r["epoch"] = int(rec.get("epoch") or 0)
        for col, key in (("position_m", "position_m"), ("lat_deg", "lat"), ("lon_deg", "lon"),
                         ("confidence", "confidence"), ("depth_m", "depth_m")):  # fmt: skip
            v = rec.get(key)
            r[col] = _f(None if v is None else float(v))
        self._ensure_headroom(4096, "outcome")
        try:
            self._write_row("outcomes", r)
            self._flush()  # an operator's word is rare and precious: durable at once
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            self._fail("outcome", exc)

    def _gpr_header_row(self, h: GprHeader) -> int:
        idx = self._gpr_headers.get(h)
        if idx is None:
            row = np.zeros(1, _GPR_HEADER)
            row["dt_ns"], row["time_zero_ns"] = h.dt_ns, h.time_zero_ns
            row["antenna_hz"] = _f(h.antenna_hz)
            row["channel"], row["sensor"] = h.channel, _s(h.sensor, 32)
            row["n_samples"] = -1
            idx = len(self._gpr_headers)
            self._append(self._f["gpr/headers"], row)
            self._gpr_headers[h] = idx
        return idx

    def _emi_header_row(self, h: MdHeader) -> int:
        idx = self._emi_headers.get(h)
        if idx is None:
            row = np.zeros(1, _EMI_HEADER)
            row["sample_rate_hz"], row["n_channels"] = h.sample_rate_hz, h.n_channels
            row["kind"], row["sensor"] = _s(h.kind, 32), _s(h.sensor, 32)
            names = {"channel_names": list(h.channel_names), "gate_times_s": h.gate_times_s}
            text = _json(names)
            if len(text) > 4096:
                raise ValueError("EMI channel description longer than 4096 bytes")
            row["channels_json"] = text.encode()
            idx = len(self._emi_headers)
            self._append(self._f["emi/headers"], row)
            self._emi_headers[h] = idx
        return idx

    def _write_block(self, name: str, block: GprBlock | MdBlock, header_idx: int) -> None:
        g = self._f[name]
        n = block.n
        if n == 0:
            return
        width = block.data.shape[1]
        known = self._widths.get((name, header_idx))
        if known is None and name == "gpr":
            hdrs = g["headers"]
            row = hdrs[header_idx]
            row["n_samples"] = width
            hdrs[header_idx] = row
        elif known is not None and known != width:
            raise ValueError(
                f"{name} block has {width} columns, its header was recorded with {known}"
            )
        self._widths[(name, header_idx)] = width
        start = self.rows[name]
        self._append(g["data"], block.data)
        self._append(g["seq"], np.asarray(block.seq, dtype=np.int64))
        self._append(g["host_time_s"], np.asarray(block.host_time_s, dtype=np.float64))
        self._append(g["position_m"], np.asarray(block.position_m, dtype=np.float64))
        self._append(g["header"], np.full(n, header_idx, dtype=np.int32))
        b = np.zeros(1, _BLOCKS)
        b["start"], b["stop"], b["header"] = start, start + n, header_idx
        b["host_time_s"] = block.host_time_s[0]
        self._append(g["blocks"], b)
        self.rows[name] = start + n

    def _write_row(self, name: str, row: np.ndarray) -> None:
        self._append(self._f[name], row)
        self.rows[name] += row.shape[0]

    # ----------------------------------------------------------------- flushing / closing
    def _maybe_flush(self) -> None:
        if self._clock() - self._last_flush_s >= self.flush_interval_s:
            self._flush()

    def _flush(self) -> None:
        self._f.flush()
        self._last_flush_s = self._clock()
        self.flushed_rows = dict(self.rows)

    def flush(self) -> None:
        if self._closed:
            return
        try:
            self._flush()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail("flush", exc)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._flush()
            self._f.close()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail("close", exc)
        self._closed = True
        try:  # summary attributes need a non-SWMR handle
            with h5py.File(self.path, "r+") as f:
                f.attrs["closed_cleanly"] = True
                f.attrs["closed_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
                for name in ("gpr", "emi"):
                    f[name].attrs["n_rows"] = self.rows[name]
                hdrs = f["gpr/headers"]
                if hdrs.shape[0]:
                    h0 = hdrs[0]
                    for key in ("dt_ns", "time_zero_ns", "antenna_hz", "channel", "n_samples"):
                        f["gpr"].attrs[key] = h0[key]
        except (OSError, RuntimeError) as exc:
            log.warning("session %s: could not write closing attributes: %s", self.path, exc)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gps_row(fix: GpsFix) -> np.ndarray:
    r = np.zeros(1, _GPS)
    r["host_time_s"] = fix.host_time_s
    r["lat_deg"], r["lon_deg"], r["alt_m"] = _f(fix.lat_deg), _f(fix.lon_deg), _f(fix.alt_m)
    r["quality"] = int(fix.quality)
    r["n_sats"] = -1 if fix.n_sats is None else fix.n_sats
    for key in ("hdop", "h_acc_m", "correction_age_s", "utc_s", "speed_m_s", "course_deg"):
        r[key] = _f(getattr(fix, key))
    r["source"] = _s(fix.source, 32)
    return r


def _alarm_row(a: Alarm) -> np.ndarray:
    r = np.zeros(1, _ALARM)
    r["alarm_id"], r["class_name"] = _s(a.alarm_id, 64), _s(a.class_name, 32)
    r["position_m"], r["confidence"], r["depth_m"] = a.position_m, a.confidence, _f(a.depth_m)
    r["host_time_s"], r["h_acc_m"] = a.host_time_s, _f(a.h_acc_m)
    r["lat_deg"], r["lon_deg"] = _f(a.lat_deg), _f(a.lon_deg)
    r["epoch"], r["tier"] = a.epoch, _s(a.tier, 16)
    text = _json({"sensor_scores": dict(a.sensor_scores), "class_probs": dict(a.class_probs),
                  "class_certain": a.class_certain})  # fmt: skip
    if len(text) > 2048:
        raise ValueError("alarm scores longer than 2048 bytes")
    r["scores_json"] = text.encode()
    return r


def _health_row(e: HealthEvent) -> np.ndarray:
    r = np.zeros(1, _HEALTH)
    r["host_time_s"], r["sensor"], r["state"] = e.host_time_s, _s(e.sensor, 32), int(e.state)
    r["reason"], r["position_m"] = _s(e.reason, 256), e.position_m
    return r


# =========================================================================== reading


def sniff(path: Path, head: bytes) -> str | None:
    if not head.startswith(HDF5_MAGIC):
        return None
    try:
        with _open(path) as f:
            if f.attrs.get("schema") != SCHEMA:
                return None
            version = int(f.attrs.get("schema_version", -1))
    except OSError:
        return None
    return f"HDF5 with attribute schema={SCHEMA} (version {version})"


def _open(path: Path) -> h5py.File:
    """Plain read first: a damaged file then fails at once. SWMR read only for a file still
    being recorded (or left open by a killed recorder), since in SWMR mode HDF5 retries
    failed metadata reads with sleeps, which turns a corrupt file into a long wait."""
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        msg = str(exc)
        if "already open for write" not in msg and "consistency flag" not in msg:
            raise
    return h5py.File(path, "r", swmr=True)


class SessionReader:
    """Read a session file (also while another process is still recording it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._f = _open(self.path)
        except Exception as exc:
            if "truncated file" in str(exc):
                raise ReaderError(
                    hdf5_damage(self.path)
                    or f"{self.path}: session file is truncated, its recording stopped on a "
                    f"write error ({exc})"
                ) from exc
            raise ReaderError(f"{self.path}: not a readable HDF5 session file ({exc})") from exc
        try:
            schema = self._f.attrs.get("schema")
            version = int(self._f.attrs.get("schema_version", -1))
            config = self._f.attrs.get("config_json", "{}")
            info = self._f.attrs.get("info_json", "{}")
        except Exception as exc:
            self._f.close()
            raise ReaderError(f"{self.path}: damaged session file ({exc})") from exc
        if schema != SCHEMA:
            self._f.close()
            raise ReaderError(
                f"{self.path}: HDF5 file is not a detect session (no schema attribute)"
            )
        if version > SCHEMA_VERSION:
            self._f.close()
            raise ReaderError(
                f"{self.path}: session schema version {version} is newer than this reader "
                f"({SCHEMA_VERSION})"
            )
        self.config: dict[str, Any] = json.loads(config)
        self.info: dict[str, Any] = json.loads(info)
        self.schema_version = version

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """See rows the writer has flushed since the last call (SWMR)."""
        self._f.attrs.get("schema")
        for obj in self._datasets():
            obj.refresh()

    def _datasets(self) -> Iterator[h5py.Dataset]:
        for name in ("gps", "alarms", "health", "coverage", "coverage_final", "truth", "outcomes"):
            if name in self._f:  # coverage_final, outcomes: absent from older files
                yield self._f[name]
        for g in ("gpr", "emi"):
            for name in ("data", "seq", "host_time_s", "position_m", "header", "headers", "blocks"):
                yield self._f[g][name]

    @property
    def closed_cleanly(self) -> bool:
        """False for a recording whose process died (data up to the last flush is there)."""
        return bool(self._f.attrs.get("closed_cleanly", False))

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._f.attrs)

    # ----------------------------------------------------------------- headers
    def _n_rows(self, name: str) -> int:
        """Rows fully written: the shortest of the per-row datasets (a kill may tear them)."""
        g = self._f[name]
        return int(
            min(g[k].shape[0] for k in ("data", "seq", "host_time_s", "position_m", "header"))
        )

    def gpr_headers(self) -> list[GprHeader]:
        out = []
        for r in self._f["gpr/headers"][()]:
            ant = float(r["antenna_hz"])
            out.append(
                GprHeader(
                    dt_ns=float(r["dt_ns"]),
                    time_zero_ns=float(r["time_zero_ns"]),
                    antenna_hz=None if math.isnan(ant) else ant,
                    channel=int(r["channel"]),
                    sensor=_u(r["sensor"]),
                )
            )
        return out

    def emi_headers(self) -> list[MdHeader]:
        out = []
        for r in self._f["emi/headers"][()]:
            ch = json.loads(_u(r["channels_json"]))
            gates = ch.get("gate_times_s")
            out.append(
                MdHeader(
                    sample_rate_hz=float(r["sample_rate_hz"]),
                    channel_names=tuple(ch["channel_names"]),
                    gate_times_s=None if gates is None else tuple(gates),
                    kind=_u(r["kind"]),
                    sensor=_u(r["sensor"]),
                )
            )
        return out

    def _rows(self, name: str, rows: np.ndarray, width: int) -> dict[str, np.ndarray]:
        g = self._f[name]
        span = slice(int(rows[0]), int(rows[-1]) + 1)
        pick = rows - rows[0]
        return {
            "data": np.asarray(g["data"][span, :width])[pick],
            "seq": np.asarray(g["seq"][span])[pick],
            "host_time_s": np.asarray(g["host_time_s"][span])[pick],
            "position_m": np.asarray(g["position_m"][span])[pick],
        }

    def _stream(
        self, name: str, header_idx: int | None
    ) -> tuple[dict[str, np.ndarray], int] | None:
        n = self._n_rows(name)
        if n == 0:
            return None
        hdr_of_row = self._f[name]["header"][:n]
        headers = self._f[name]["headers"][()]
        idx = int(hdr_of_row[0]) if header_idx is None else header_idx
        width = int(headers[idx]["n_samples" if name == "gpr" else "n_channels"])
        rows = np.flatnonzero(hdr_of_row == idx)
        if rows.size == 0:
            return None
        return self._rows(name, rows, width), idx

    def gpr(self, header_idx: int | None = None) -> GprBlock | None:
        """Every GPR trace recorded with one header (default: the first), concatenated."""
        got = self._stream("gpr", header_idx)
        if got is None:
            return None
        rows, idx = got
        return GprBlock(header=self.gpr_headers()[idx], **rows)

    def emi(self, header_idx: int | None = None) -> MdBlock | None:
        got = self._stream("emi", header_idx)
        if got is None:
            return None
        rows, idx = got
        return MdBlock(header=self.emi_headers()[idx], **rows)

    def gps(self) -> list[GpsFix]:
        out = []
        for r in self._f["gps"][()]:
            lat, lon = _opt(r["lat_deg"]), _opt(r["lon_deg"])
            out.append(
                GpsFix(
                    host_time_s=float(r["host_time_s"]),
                    lat_deg=lat,
                    lon_deg=lon,
                    alt_m=_opt(r["alt_m"]),
                    quality=FixQuality(int(r["quality"])),
                    n_sats=None if int(r["n_sats"]) < 0 else int(r["n_sats"]),
                    hdop=_opt(r["hdop"]),
                    h_acc_m=_opt(r["h_acc_m"]),
                    correction_age_s=_opt(r["correction_age_s"]),
                    utc_s=_opt(r["utc_s"]),
                    speed_m_s=_opt(r["speed_m_s"]),
                    course_deg=_opt(r["course_deg"]),
                    source=_u(r["source"]),
                )
            )
        return out

    def alarms(self) -> list[Alarm]:
        out = []
        for r in self._f["alarms"][()]:
            extra = json.loads(_u(r["scores_json"]) or "{}")
            out.append(
                Alarm(
                    alarm_id=_u(r["alarm_id"]),
                    position_m=float(r["position_m"]),
                    confidence=float(r["confidence"]),
                    class_name=_u(r["class_name"]),
                    sensor_scores=extra.get("sensor_scores", {}),
                    depth_m=_opt(r["depth_m"]),
                    host_time_s=float(r["host_time_s"]),
                    lat_deg=_opt(r["lat_deg"]),
                    lon_deg=_opt(r["lon_deg"]),
                    h_acc_m=_opt(r["h_acc_m"]),
                    class_probs=extra.get("class_probs", {}),
                    epoch=_epoch_of(r),
                    # files written before the tiers: every row was an alarm
                    tier=_u(r["tier"]) if "tier" in (r.dtype.names or ()) else "alarm",
                    class_certain=bool(extra.get("class_certain", True)),
                )
            )
        return out

    def outcomes(self) -> list[dict[str, Any]]:
        """Operators' outcomes in the order recorded (none in files written before them)."""
        if "outcomes" not in self._f:
            return []
        return [
            {
                "id": _u(r["alarm_id"]),
                "outcome": _u(r["outcome"]),
                "utc": _u(r["utc"]) or None,
                "position_m": _opt(r["position_m"]),
                "epoch": int(r["epoch"]),
                "lat": _opt(r["lat_deg"]),
                "lon": _opt(r["lon_deg"]),
                "alarm_class": _u(r["alarm_class"]) or None,
                "confidence": _opt(r["confidence"]),
                "depth_m": _opt(r["depth_m"]),
                "tier": _u(r["tier"]),
            }
            for r in self._f["outcomes"][()]
        ]

    def epochs(self) -> list[tuple[PositionEpoch, int, int]]:
        """Position epochs begun during the session: (marker, GPR rows, EMI rows before it)."""
        if "epochs" not in self._f:
            return []
        return [
            (
                PositionEpoch(float(r["host_time_s"]), _u(r["source"]), _u(r["reason"])),
                int(r["gpr_rows"]),
                int(r["emi_rows"]),
            )
            for r in self._f["epochs"][()]
        ]

    def health(self) -> list[HealthEvent]:
        return [
            HealthEvent(
                host_time_s=float(r["host_time_s"]),
                sensor=_u(r["sensor"]),
                state=SensorState(int(r["state"])),
                reason=_u(r["reason"]),
                position_m=float(r["position_m"]),
            )
            for r in self._f["health"][()]
        ]

    def coverage(self) -> list[dict[str, Any]]:
        """The not-covered rows of :meth:`coverage_record` (see there for how far they reach)."""
        return self.coverage_record().rows

    def coverage_record(self) -> CoverageRecord:
        """The coverage rows and how far they describe the track.

        The last valid ``/coverage_final`` row says how many ``/coverage`` rows are final
        and up to where; a killed session also gets the final part of its open segment
        (rows with ``open`` True). Files written before ``/coverage_final`` existed hold
        their coverage only after a clean close.
        """
        rows = [_coverage_dict(r) for r in self._f["coverage"][()]]
        if "coverage_final" not in self._f:
            return CoverageRecord(rows, math.inf if self.closed_cleanly else None)
        mark = self._last_coverage_mark(len(rows))
        if mark is None:
            # rows written through the writer alone (no pipeline): whole after a clean close
            return CoverageRecord(rows, math.inf if rows and self.closed_cleanly else None)
        final_to_m = float(mark["final_to_m"])
        kept = rows[: int(mark["n_rows"])]
        if math.isfinite(final_to_m):
            kept += _open_rows(mark)
        return CoverageRecord(kept, final_to_m)

    def _last_coverage_mark(self, n_rows: int) -> np.void | None:
        """The newest ``/coverage_final`` row a kill left whole (read from the end)."""
        ds = self._f["coverage_final"]
        stop = int(ds.shape[0])
        while stop > 0:
            start = max(0, stop - 256)
            for r in ds[start:stop][::-1]:
                if _valid_mark(r, n_rows):
                    return r
            stop = start
        return None

    def truth(self) -> list[dict[str, Any]]:
        raw = bytes(self._f["truth"][()])
        out: list[dict[str, Any]] = []
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    out.extend(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s: an incomplete truth record was skipped", self.path)
        return out

    # ----------------------------------------------------------------- block-wise replay
    def iter_items(self) -> Iterator[GprBlock | MdBlock | GpsFix | PositionEpoch]:
        """Blocks, fixes and position epochs as recorded, in host-time order (per-stream
        order kept; an epoch marker comes just before the first block recorded after it)."""
        events: list[tuple[float, int, int, int]] = []
        epochs = self.epochs()
        for i, (_, g_rows, e_rows) in enumerate(epochs):
            firsts = [
                float(b["host_time_s"])
                for name, rows in (("gpr", g_rows), ("emi", e_rows))
                for b in self._f[name]["blocks"][()]
                if int(b["start"]) >= rows
            ]
            events.append((min(firsts, default=math.inf), 3, i, 0))
        limits = {}
        for k, name in enumerate(("gpr", "emi")):
            n = self._n_rows(name)
            limits[name] = n
            blocks = self._f[name]["blocks"][()]
            blocks = blocks[blocks["stop"] <= n]
            events.extend((float(b["host_time_s"]), k, i, 0) for i, b in enumerate(blocks))
        fixes = self.gps()
        events.extend((f.host_time_s, 2, i, 0) for i, f in enumerate(fixes))
        times = np.array([e[0] for e in events], dtype=np.float64)
        times = np.where(np.isnan(times), -np.inf, times)
        order = np.lexsort((np.arange(len(events)), times)) if events else np.zeros(0, int)
        gpr_h, emi_h = self.gpr_headers(), self.emi_headers()
        blocks_of = {name: self._f[name]["blocks"][()] for name in ("gpr", "emi")}
        for j in order:
            _, kind, i, _ = events[int(j)]
            if kind == 2:
                yield fixes[i]
                continue
            if kind == 3:
                yield epochs[i][0]
                continue
            name = "gpr" if kind == 0 else "emi"
            b = blocks_of[name][i]
            hdr = gpr_h[int(b["header"])] if kind == 0 else emi_h[int(b["header"])]
            width = int(
                self._f[name]["headers"][int(b["header"])][
                    "n_samples" if kind == 0 else "n_channels"
                ]
            )
            sl = slice(int(b["start"]), int(b["stop"]))
            g = self._f[name]
            rows = {
                "data": np.asarray(g["data"][sl, :width]),
                "seq": g["seq"][sl],
                "host_time_s": g["host_time_s"][sl],
                "position_m": g["position_m"][sl],
            }
            if kind == 0:
                yield GprBlock(header=hdr, **rows)  # type: ignore[arg-type]
            else:
                yield MdBlock(header=hdr, **rows)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CoverageRecord:
    """A session's coverage record (:meth:`SessionReader.coverage_record`).

    ``rows``: ground not covered, one dict per missing sensor and stretch (``start_m``,
    ``end_m``, ``state``, ``sensor``, ``reason``, ``host_time_s``, ``open``: True for the
    final part of a segment that was still open when the recording stopped).
    ``recorded_to_m``: ``inf`` when the rows describe the whole run; a finite position when
    they describe only the ground before it (killed session): beyond it coverage is
    *unknown*, never clear; None when no coverage was recorded at all.
    """

    rows: list[dict[str, Any]]
    recorded_to_m: float | None

    @property
    def state(self) -> str:
        """``complete``, ``partial`` or ``none``."""
        if self.recorded_to_m is None:
            return "none"
        return "complete" if math.isinf(self.recorded_to_m) else "partial"

    @property
    def not_covered_m(self) -> float:
        """Summed over position epochs (each has its own along-track frame)."""
        epochs = {r.get("epoch", 0) for r in self.rows}
        return sum(
            total_m((r["start_m"], r["end_m"]) for r in self.rows if r.get("epoch", 0) == k)
            for k in epochs
        )

    def summary(self) -> str:
        """One line for ``detect info``."""
        nc = f"{self.not_covered_m:.2f} m not covered"
        if self.state == "complete":
            return f"complete, {nc}"
        rerun = "`detect scan` recomputes it from the data"
        if self.state == "partial":
            return (
                f"recorded to {self.recorded_to_m:.2f} m only ({nc} before it): ground beyond "
                f"is UNKNOWN, not clear; {rerun}"
            )
        return f"not recorded: UNKNOWN, not clear; {rerun}"

    def info(self) -> dict[str, Any]:
        """The keys ``detect info`` shows (``coverage_recorded_to_m`` finite or None)."""
        to_m = self.recorded_to_m
        return {
            "n_coverage_gaps": len(self.rows),
            "coverage": self.summary(),
            "coverage_record": self.state,
            "coverage_recorded_to_m": to_m if to_m is not None and math.isfinite(to_m) else None,
        }


def _coverage_dict(r: np.void) -> dict[str, Any]:
    return {
        "start_m": float(r["start_m"]),
        "end_m": float(r["end_m"]),
        "state": SensorState(int(r["state"])),
        "sensor": _u(r["sensor"]),
        "reason": _u(r["reason"]),
        "host_time_s": float(r["host_time_s"]),
        "open": False,
        "epoch": _epoch_of(r),
    }


def _epoch_of(r: np.void) -> int:
    """The row's position epoch (0 in files written before epochs existed)."""
    names = r.dtype.names or ()
    return int(r["epoch"]) if "epoch" in names else 0


def _open_missing(r: np.void) -> list[str] | None:
    try:
        missing = json.loads(_u(r["open_missing"]) or "[]")
    except json.JSONDecodeError:
        return None
    return [str(m) for m in missing] if isinstance(missing, list) else None


def _valid_mark(r: np.void, n_rows: int) -> bool:
    """A ``/coverage_final`` row written whole, whose rows a kill left in ``/coverage``."""
    return (
        not math.isnan(float(r["final_to_m"]))
        and 0 <= int(r["n_rows"]) <= n_rows
        and _open_missing(r) is not None
    )


def _open_rows(mark: np.void) -> list[dict[str, Any]]:
    """The final part of the segment still open at ``mark``: one row per missing sensor."""
    start_m, end_m = float(mark["open_start_m"]), float(mark["final_to_m"])
    if not start_m < end_m:
        return []
    return [
        {
            "start_m": start_m,
            "end_m": end_m,
            "state": SensorState.FAULT,
            "sensor": sensor,
            "reason": "not covered",
            "host_time_s": float(mark["host_time_s"]),
            "open": True,
            "epoch": _epoch_of(mark),
        }
        for sensor in _open_missing(mark) or []
    ]


def read_session_gpr(path: Path, trace_spacing_m: float | None = None) -> GprFile:
    """A session's GPR stream as a :class:`GprFile` (for ``detect info`` / ``convert``)."""
    with SessionReader(path) as r:
        block = r.gpr()
        gps = r.gps()
        clean = r.closed_cleanly
        n_headers = len(r.gpr_headers())
        emi_headers = r.emi_headers()
        tiers = [a.tier for a in r.alarms()]
        session = {
            "closed_cleanly": clean,
            "created_utc": str(r.attrs.get("created_utc", "")),
            "software_version": str(r.attrs.get("software_version", "")),
            "emi_readings": r._n_rows("emi"),
            "emi_channels": list(emi_headers[0].channel_names) if emi_headers else [],
            "n_alarms": tiers.count("alarm"),  # at the operating point; suspects apart
            "n_suspects": tiers.count("suspect"),
            "n_health_events": int(r._f["health"].shape[0]),
            **r.coverage_record().info(),
            "n_truth_targets": len(r.truth()),
        }
    if block is None:
        raise ReaderError(f"{path}: session holds no GPR traces")
    out = GprFile(path=path, format="session", format_reason="", blocks=[block], gps=gps)
    out.meta = {"session": session}
    if not clean:
        out.warnings.append("recording was not closed cleanly: data up to its last flush")
    if n_headers > 1:
        out.warnings.append(f"{n_headers} GPR headers recorded; showing the first")
    pos = block.position_m
    if trace_spacing_m is not None:
        out.trace_spacing_m = float(trace_spacing_m)
        out.blocks = [block.with_positions(trace_positions(block.n, trace_spacing_m))]
    elif block.n > 1 and np.all(np.isfinite(pos)):
        step = np.diff(pos)
        out.trace_spacing_m = float(np.median(step))
        if not np.allclose(step, out.trace_spacing_m, rtol=0.05, atol=1e-6):
            out.warnings.append("trace positions are not evenly spaced (median step shown)")
    else:
        out.warnings.append("traces carry no positions")
    t = block.host_time_s
    if block.n > 1 and np.all(np.isfinite(t)) and t[-1] > t[0]:
        out.trace_rate_hz = (block.n - 1) / float(t[-1] - t[0])
    ant = block.header.antenna_hz
    out.antenna_mhz = ant / 1e6 if ant else None
    return out


def _fit_json_list(names: list[str], max_bytes: int) -> str:
    """JSON list of ``names`` in at most ``max_bytes``; the names that do not fit are
    counted in a last item ``"+N more"`` rather than failing the recording."""
    for keep in range(len(names), -1, -1):
        items = names[:keep] + ([f"+{len(names) - keep} more"] if keep < len(names) else [])
        text = _json(items)
        if len(text.encode()) <= max_bytes:
            return text
    return "[]"
