"""``detect export-gis SESSION [--out DIR]``: the survey package for GIS from a recording.

The same layers as ``run``/``replay``/``scan`` write (:mod:`detect.sinks.gis`): the alarms the
session recorded, the track of its GPR (else EMI) traces per position epoch (the GPS antenna
moved onto that sensor by the recorded ``align`` settings), ``track.csv``, and its coverage
record: each not-covered row with its sensor and reason; ground past the end of the record
of a session that was not closed cleanly is reported not covered, never clear.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from detect.app.common import command
from detect.errors import EXIT_USAGE, TaskError
from detect.sinks.export import alarm_record
from detect.sinks.gis import Track, head_geometry, utc_from_gps, utc_from_session, write_survey
from detect.sinks.gis_reasons import health_records, segments_from_rows


@command
def export_gis_task(cfg: Any) -> int:
    """Read SESSION, write the package in ``output.dir`` (default: beside the session)."""
    from detect.io.base import ReaderError
    from detect.io.session import SessionReader

    path = cfg.input.get("path")
    if not path:
        raise TaskError("export-gis needs a SESSION (.h5)", EXIT_USAGE)
    path = Path(str(path))
    out = Path(str(cfg.output.get("dir") or path.parent))
    try:
        with SessionReader(path) as rd:
            doc, track, attrs = _read(rd)
    except (ReaderError, OSError, KeyError) as exc:
        raise TaskError(f"{path}: not a readable session: {exc}", EXIT_USAGE) from exc
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(f"cannot write to {out}: {exc.strerror or exc}", EXIT_USAGE) from exc
    utc = utc_from_session(attrs, float(track.samples[1].min()) if track.samples.size else None)
    if utc is not None and len(track.fixes):
        utc = utc_from_gps(track.fixes[:, 0], track.fixes[:, 3], utc.offset_s) or utc
    for a in doc["alarms"]:
        a["utc"] = utc.utc(a["time_s"]) if utc else None
    paths, utc, local = write_survey(out, doc, track, utc=utc)
    where = "a local along-track frame (no GPS)" if local else "WGS84"
    print(
        f"wrote {', '.join(sorted(p.name for p in paths.values()))} in {out} ({where}; "
        f"UTC from {utc.source if utc else 'nowhere: the session has no time reference'})",
        flush=True,
    )
    return 0


def _read(rd: Any) -> tuple[dict[str, Any], Track, dict[str, Any]]:
    attrs = dict(rd.attrs)
    config = json.loads(str(attrs.get("config_json") or "{}"))
    align = config.get("align") or {}
    offsets = align.get("offsets_m") or {}
    block, sensor, rows_col = rd.gpr(), "gpr", 1
    if block is None:
        block, sensor, rows_col = rd.emi(), "emi", 2
    samples = np.empty((3, 0))
    if block is not None:
        starts = np.array([e[rows_col] for e in rd.epochs()], dtype=np.int64)
        epoch = np.searchsorted(starts, np.arange(block.n), side="right")
        x = block.position_m + float(offsets.get(sensor, 0.0) or 0.0)
        samples = np.stack([epoch.astype(np.float64), block.host_time_s, x])
        samples = samples[:, np.isfinite(samples[1]) & np.isfinite(samples[2])]
    fixes = np.array(
        [
            (f.host_time_s, f.lat_deg, f.lon_deg, math.nan if f.utc_s is None else f.utc_s)
            for f in rd.gps()
            if f.has_fix
        ],
        dtype=np.float64,
    ).reshape(-1, 4)
    record = rd.coverage_record()
    # one segment per stretch with every sensor missing there, as the live run writes it
    coverage = segments_from_rows(record.rows)
    coverage += _covered_and_unrecorded(samples, coverage, record.recorded_to_m)
    coverage.sort(key=lambda s: (s["epoch"], s["start_m"], s["end_m"]))
    epoch_starts_s = [float(e[0].host_time_s) for e in rd.epochs()]
    doc = {
        "alarms": [alarm_record(a) for a in rd.alarms()],
        "coverage": coverage,
        # the reasons of the not-covered stretches (detect.sinks.gis_reasons)
        "health": health_records(_health(rd), epoch_starts_s),
        # the head's geometry as recorded (the GPS antenna's lever arm moves the centre line)
        "source": {
            "source": str(rd.path) if hasattr(rd, "path") else "",
            **dict(rd.info),
            **head_geometry(align),
        },
    }
    return doc, Track(fixes, samples, sensor), attrs


def _health(rd: Any) -> list[Any]:
    """The session's health events; none in a file without them (no reasons from them)."""
    try:
        return list(rd.health())
    except KeyError:
        return []


def _covered_and_unrecorded(
    samples: np.ndarray, gaps: list[dict[str, Any]], recorded_to_m: float | None
) -> list[dict[str, Any]]:
    """Per epoch: the passed ground minus the not-covered rows is covered, up to where the
    record reaches; past it (a session not closed cleanly) not covered."""
    from detect.coverage import subtract

    out: list[dict[str, Any]] = []
    for ep in np.unique(samples[0]).astype(int) if samples.size else []:
        x = samples[2, samples[0] == ep]
        lo, hi = float(x.min()), float(x.max())
        last = ep == int(samples[0].max())
        to = hi if recorded_to_m is None or not last else min(hi, float(recorded_to_m))
        if last and recorded_to_m is None:
            to = lo  # nothing recorded as final: no ground is reported covered
        cut = [(g["start_m"], g["end_m"]) for g in gaps if g["epoch"] == ep]
        for a, b in subtract([(lo, to)], cut):
            out.append({"start_m": a, "end_m": b, "status": "covered", "missing": [], "epoch": ep})
        if to < hi:
            out.append(
                {
                    "start_m": to,
                    "end_m": hi,
                    "status": "not_covered",
                    "missing": [],
                    "reason": "coverage not recorded past here (the session did not close)",
                    "epoch": ep,
                }
            )
    return out
