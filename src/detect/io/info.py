"""``detect info FILE [--json]``: what a recorded file holds and which reader read it."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from detect.errors import InputError
from detect.io.base import GprFile, ReaderError
from detect.io.formats import detect_format, read_gpr
from detect.io.session import SessionReader


def load_input(cfg: DictConfig, headers_only: bool = False) -> GprFile:
    """Read ``cfg.input.path`` with the configured format, trace step and channel
    (:class:`~detect.errors.InputError` on bad input); ``headers_only`` as in :func:`read_gpr`."""
    path = cfg.input.get("path")
    if not path:
        raise InputError("no input file given (input.path)")
    try:
        return read_gpr(
            path,
            format=cfg.input.get("format"),
            trace_spacing_m=cfg.input.get("trace_spacing_m"),
            channel=int(cfg.input.get("channel") or 0),
            headers_only=headers_only,
        )
    except ReaderError as exc:
        raise InputError(str(exc)) from exc


def _fmt(value: Any, unit: str = "", digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "unknown"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value}{unit}"


def _time_zero(t0_ns: float) -> str:
    return _fmt(t0_ns, " ns") if t0_ns else "0 ns (trace start, or not given)"


def _channel_lines(g: GprFile) -> list[str]:
    """One line per channel of a multi-channel file, the selected one marked."""
    if g.n_channels < 2:
        return []
    return [
        f"  channel {c['channel']:<7}antenna {_fmt(c['antenna_mhz'], ' MHz')}, "
        f"time zero {_time_zero(c['time_zero_ns'])}"
        + ("  <- input.channel" if c["channel"] == g.channel else "")
        for c in g.channels()
    ]


#: session keys for ``--json`` only: the ``coverage`` line already says them in words
_JSON_ONLY = frozenset({"coverage_record", "coverage_recorded_to_m"})


def describe(g: GprFile) -> str:
    i = g.info()
    lines = [
        f"file             {i['path']}",
        f"format           {i['format']} ({i['format_reason']})",
        f"channels         {i['n_channels']}"
        + (f" (showing channel {i['channel']})" if i["n_channels"] > 1 else ""),
        *_channel_lines(g),
        f"traces           {i['n_traces']}",
        f"samples/trace    {i['n_samples']}",
        f"sample interval  {_fmt(i['dt_ns'], ' ns')}",
        f"time window      {_fmt(i['window_ns'], ' ns')}",
        f"time zero        {_time_zero(i['time_zero_ns'])}",
        f"trace spacing    {_fmt(i['trace_spacing_m'], ' m')}",
        f"antenna          {_fmt(i['antenna_mhz'], ' MHz')}",
        f"trace rate       {_fmt(i['trace_rate_hz'], ' traces/s')}",
        f"duration         {_fmt(i['duration_s'], ' s')}",
        f"GPS              {'yes' if i['gps_present'] else 'no'} ({i['n_gps_fixes']} fixes)",
        f"marks            {i['n_marks']}",
    ]
    for key, value in g.meta.get("session", {}).items():
        if key not in _JSON_ONLY:
            lines.append(f"{key.replace('_', ' '):<17}{value}")
    lines += [f"warning          {w}" for w in i["warnings"]]
    return "\n".join(lines)


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item"):
        return _json_safe(obj.item())
    return obj


def _sensor_session(path: str) -> dict[str, Any] | None:
    """A session recording with no GPR stream (an EMI-only rig), described from its EMI."""
    try:
        if detect_format(path)[0] != "session":
            return None
        with SessionReader(path) as r:
            if r.gpr_headers():
                return None
            emi = r.emi()
            n_fixes = len(r.gps())
            tiers = [a.tier for a in r.alarms()]
            clean = r.closed_cleanly
            coverage = r.coverage_record().info()
    except (ReaderError, OSError):
        return None
    out: dict[str, Any] = {
        "path": str(path),
        "format": "session",
        "n_channels": 0,
        "n_traces": 0,
        "n_samples": 0,
        "dt_ns": None,
        "window_ns": None,
        "trace_spacing_m": None,
        "antenna_mhz": None,
        "gps_present": n_fixes > 0,
        "n_gps_fixes": n_fixes,
        "n_alarms": tiers.count("alarm"),  # at the operating point; suspects apart
        "n_suspects": tiers.count("suspect"),
        "closed_cleanly": clean,
        **coverage,
        "emi_readings": 0 if emi is None else emi.n,
        "emi_channels": [] if emi is None else list(emi.header.channel_names),
        "emi_rate_hz": None if emi is None else emi.header.sample_rate_hz,
        "duration_s": None,
    }
    if emi is not None and emi.n > 1:
        out["duration_s"] = float(emi.host_time_s[-1] - emi.host_time_s[0])
    return out
