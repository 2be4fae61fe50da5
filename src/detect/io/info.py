"""``detect info FILE [--json]``: what a recorded file holds and which reader read it."""

from __future__ import annotations

import json
import math
from typing import Any

from omegaconf import DictConfig

from detect.errors import EXIT_USAGE, TaskError
from detect.io.formats import GprFile, ReaderError, read_gpr


def load_input(cfg: DictConfig) -> GprFile:
    """Read ``cfg.input.path`` with the configured format / trace step (TaskError on bad input)."""
    path = cfg.input.get("path")
    if not path:
        raise TaskError("no input file given (input.path)", EXIT_USAGE)
    try:
        return read_gpr(
            path,
            format=cfg.input.get("format"),
            trace_spacing_m=cfg.input.get("trace_spacing_m"),
        )
    except ReaderError as exc:
        raise TaskError(str(exc), EXIT_USAGE) from exc


def _fmt(value: Any, unit: str = "", digits: int = 6) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "unknown"
    if isinstance(value, float):
        return f"{value:.{digits}g}{unit}"
    return f"{value}{unit}"


def describe(g: GprFile) -> str:
    i = g.info()
    lines = [
        f"file             {i['path']}",
        f"format           {i['format']} ({i['format_reason']})",
        f"channels         {i['n_channels']}",
        f"traces           {i['n_traces']}",
        f"samples/trace    {i['n_samples']}",
        f"sample interval  {_fmt(i['dt_ns'], ' ns')}",
        f"time window      {_fmt(i['window_ns'], ' ns')}",
        f"trace spacing    {_fmt(i['trace_spacing_m'], ' m')}",
        f"antenna          {_fmt(i['antenna_mhz'], ' MHz')}",
        f"trace rate       {_fmt(i['trace_rate_hz'], ' traces/s')}",
        f"duration         {_fmt(i['duration_s'], ' s')}",
        f"GPS              {'yes' if i['gps_present'] else 'no'} ({i['n_gps_fixes']} fixes)",
        f"marks            {i['n_marks']}",
    ]
    for key, value in g.meta.get("session", {}).items():
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


def info_task(cfg: DictConfig) -> int:
    g = load_input(cfg)
    if cfg.get("info") is not None and cfg.info.get("json"):
        out = g.info()
        if "session" in g.meta:
            out["session"] = g.meta["session"]
        print(json.dumps(_json_safe(out)))
    else:
        print(describe(g))
    return 0
