"""Alarm files: ``alarms.jsonl`` as alarms happen; ``alarms.json/.csv`` and the survey
package for GIS (:mod:`detect.sinks.gis`: ``alarms/track/covered/not_covered.geojson`` and
``survey.gpkg``) at the end.

Numbers as people read them: positions and depths to the mm, confidences and scores to 3
digits, lat/lon to 1e-7 degree; each alarm's ``utc`` (ISO 8601) beside its monotonic
``time_s``. GeoJSON follows RFC 7946; an alarm that cannot be placed on the map keeps its
along-track position and a null geometry with ``located`` saying why.

Every alarm says its ``tier``: ``alarm`` (at the operating point) or ``suspect`` (below it,
above ``alarm.suspect_floor``), and ``class_certain``: whether its class's probability
reached ``alarm.class_min_prob`` (else a reader shows "class uncertain").

Alarms of an uncalibrated detector (the interim stand-in, run only when asked for with
``model.allow_interim=true``) say ``"calibration": "UNCALIBRATED"`` in every file and carry
no class: their confidence is an anomaly score, not a probability, and no class was guessed.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import Alarm
from detect.sinks.base import Sink
from detect.sinks.gis import Track, TrackLog, UtcClock, iso_utc, r_deg, r_m, r_p, write_survey

log = logging.getLogger(__name__)
#: the head's track and GPS fixes of a run (what the survey package is built from)
TRACK_FILE = "track.npz"
#: a live alarm's trace time is at most this far behind the moment it is declared
LIVE_LAG_S = 30.0


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


UNCALIBRATED = "UNCALIBRATED"


def alarm_record(alarm: Alarm, calibrated: bool = True) -> dict[str, Any]:
    """The alarm as written to the files, numbers rounded as people read them (mm, 3 digits,
    1e-7 degree); an uncalibrated detector's has no class."""
    d = alarm.to_dict()
    d.update(
        position_m=r_m(d["position_m"]),
        depth_m=r_m(d["depth_m"]),
        h_acc_m=r_m(d["h_acc_m"]),
        confidence=r_p(d["confidence"]),
        lat=r_deg(d["lat"]),
        lon=r_deg(d["lon"]),
        time_s=None if not math.isfinite(d["time_s"]) else round(float(d["time_s"]), 6),
        class_probs={k: r_p(v) for k, v in d["class_probs"].items()},
        sensors={k: r_p(v) for k, v in d["sensors"].items()},
        # UTC only where its clock is known to be this host's (write_all, JsonlSink): the
        # pipeline's run-start anchor gives file and replay times a wrong one
        utc=None,
    )
    if not calibrated:
        d.update({"class": None, "class_probs": {}, "class_certain": False,
                  "calibration": UNCALIBRATED})  # fmt: skip
    return d


class AlarmJsonl:
    """Appends one JSON line per alarm and flushes it to disk at once."""

    def __init__(self, path: str | os.PathLike[str], calibrated: bool = True) -> None:
        self.path = Path(path)
        self.calibrated = calibrated
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, alarm: Alarm, utc: str | None = None) -> None:
        rec = alarm_record(alarm, self.calibrated)
        if utc is not None:
            rec["utc"] = utc
        self._fh.write(json.dumps(_clean(rec)) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def alarms_geojson(
    alarms: Sequence[Alarm],
    properties: Mapping[str, Any] | None = None,
    calibrated: bool = True,
    utc: UtcClock | None = None,
) -> dict:
    """The alarms layer alone (points where GPS placed them; see :mod:`detect.sinks.gis`)."""
    from detect.sinks.gis import survey_layers

    empty = Track(np.empty((0, 4)), np.empty((3, 0)))
    recs = [alarm_record(a, calibrated) for a in alarms]
    out = survey_layers(recs, [], empty, utc, meta=properties)["alarms"]
    if not calibrated:
        out["properties"]["calibration"] = UNCALIBRATED
    return _clean(out)  # type: ignore[no-any-return]


CSV_FIELDS = (
    "id",
    "tier",
    "utc",
    "epoch",
    "position_m",
    "confidence",
    "class",
    "class_certain",
    "depth_m",
    "lat",
    "lon",
    "h_acc_m",
    "time_s",
)


def write_csv(
    alarms: Sequence[Alarm],
    path: str | os.PathLike[str],
    calibrated: bool = True,
    utc: UtcClock | None = None,
) -> None:
    """One row per alarm; an uncalibrated detector's rows add ``calibration=UNCALIBRATED``."""
    sensors = sorted({k for a in alarms for k in a.sensor_scores})
    extra = [] if calibrated else ["calibration"]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*CSV_FIELDS, *extra, *(f"score_{s}" for s in sensors)])
        for a in alarms:
            d = _clean(alarm_record(a, calibrated))
            d["utc"] = utc.utc(a.host_time_s) if utc is not None else None
            w.writerow(
                [("" if d.get(k) is None else d[k]) for k in (*CSV_FIELDS, *extra)]
                + [_fmt(d["sensors"].get(s)) for s in sensors]
            )


def _fmt(v: float | None) -> Any:
    return "" if v is None or not math.isfinite(v) else v


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(_clean(obj), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def result_dict(
    alarms: Iterable[Alarm],
    track_position_m: np.ndarray,
    track_p_mine: np.ndarray,
    coverage: Sequence[Mapping[str, Any]],
    source: Mapping[str, Any],
    model: Mapping[str, Any],
    summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``alarms.json`` document (schema in issue #8); ``model["calibrated"]`` false
    marks the document and every alarm UNCALIBRATED."""
    calibrated = bool(model.get("calibrated", True))
    out: dict[str, Any] = {
        "alarms": [alarm_record(a, calibrated) for a in alarms],
        "track": {
            "position_m": np.round(np.asarray(track_position_m, dtype=np.float64), 3).tolist(),
            "p_mine": np.round(np.asarray(track_p_mine, dtype=np.float64), 3).tolist(),
        },
        # to the micrometre: no float noise, and the exact ends tests compare against
        "coverage": [
            {**seg, **{k: round(float(seg[k]), 6) for k in ("start_m", "end_m") if k in seg}}
            for seg in coverage
        ],
        "source": dict(source),
        "model": dict(model),
    }
    if summary is not None:
        out["summary"] = dict(summary)
    if not calibrated:
        out["calibration"] = str(model.get("note") or UNCALIBRATED)
    return out


def write_all(
    out_dir: str | os.PathLike[str],
    result: Mapping[str, Any],
    alarms: Sequence[Alarm],
    track: Track | None = None,
    utc: UtcClock | None = None,
) -> dict[str, Path]:
    """``alarms.json``, ``alarms.csv`` and the survey package (GeoJSON layers, GeoPackage).

    The track is ``track`` or the run's ``track.npz`` (written by :class:`JsonlSink`); each
    alarm gets its ``utc`` (from ``utc`` or found as :func:`detect.sinks.gis.source_utc` says)
    and the document says where it came from (``utc_from``)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"json": d / "alarms.json", "geojson": d / "alarms.geojson", "csv": d / "alarms.csv"}
    calibrated = bool((result.get("model") or {}).get("calibrated", True))
    wall = None
    if track is None and (d / TRACK_FILE).is_file():
        try:
            track, wall = Track.load(d / TRACK_FILE)
        except Exception as exc:  # a damaged track file: the alarm files still come
            log.error("%s unreadable (%s): survey layers without the track", d / TRACK_FILE, exc)
    if track is None:
        track = Track(np.empty((0, 4)), np.empty((3, 0)))
    from detect.sinks.gis import source_utc

    if utc is None:
        utc = source_utc(dict(result.get("source") or {}), d, track, wall)
    doc = dict(result)
    doc["alarms"] = [
        {**rec, "utc": utc.utc(a.host_time_s) if utc else None}
        for rec, a in zip(result.get("alarms") or [], alarms, strict=False)
    ] + list((result.get("alarms") or [])[len(alarms) :])
    # the alarm's own utc (the pipeline's run-start anchor) is not used: for file and
    # replayed times that anchor is another clock, and a wrong time is worse than none
    doc["utc_from"] = utc.source if utc else "unknown: no GPS time nor run start known"
    write_json(doc, paths["json"])
    write_csv(alarms, paths["csv"], calibrated, utc)
    try:
        survey, _, _ = write_survey(d, _clean(doc), track, wall, utc)
    except Exception as exc:  # the alarm files are written; the package is one loud line
        log.error("survey package not written in %s: %s: %s", d, type(exc).__name__, exc)
        log.debug("survey package failed", exc_info=True)
    else:
        paths.update({k: v for k, v in survey.items() if k != "alarms.geojson"})
    return paths


class JsonlSink(Sink):
    """``alarms.jsonl`` as a sink: one synced line per alarm as it is declared.

    It also keeps the head's track (GPS fixes, one sensor's ground positions per position
    epoch) and writes it to ``track.npz`` beside it at the end, for the survey package. A
    failure there drops the track (one log line), never the alarm lines."""

    name = "alarms.jsonl"

    def __init__(self, jsonl: AlarmJsonl) -> None:
        self.jsonl = jsonl
        self.track: TrackLog | None = TrackLog()

    def on_block(self, item: Any) -> None:
        self._track("on_item", item)

    def on_processed(self, block: Any) -> None:
        self._track("on_processed", block)

    def _track(self, method: str, arg: Any) -> None:
        if self.track is None:
            return
        try:
            getattr(self.track, method)(arg)
        except Exception as exc:  # the track is a convenience; alarms go on
            log.error("track for the survey package dropped: %s: %s", type(exc).__name__, exc)
            self.track = None

    def on_alarm(self, alarm: Any) -> None:
        self.jsonl.write(alarm, self._live_utc(alarm.host_time_s))

    def _live_utc(self, host_time_s: float) -> str | None:
        """UTC of a trace stamped by this process's monotonic clock during this run (a live
        run); None for replayed or file times, whose UTC alarms.json gives at the end."""
        if self.track is None:
            return None
        posix0, mono0 = self.track.wall
        now = time.monotonic()
        if mono0 <= host_time_s <= now and now - host_time_s <= LIVE_LAG_S:
            return iso_utc(posix0 + (host_time_s - mono0))
        return None

    def close(self) -> None:
        self.jsonl.close()
        if self.track is not None:
            self.track.save(self.jsonl.path.with_name(TRACK_FILE))
