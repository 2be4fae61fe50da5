"""Alarm files: ``alarms.jsonl`` as alarms happen; ``alarms.json/.geojson/.csv`` at the end.

GeoJSON follows RFC 7946 (WGS84 lon/lat order, one Feature per alarm with a unique
``id``) so that GIS and mine-action information systems import it directly. Alarms
without a GPS fix keep their along-track position and get a null geometry, which
RFC 7946 allows: they are not dropped.

Alarms of an uncalibrated detector (the interim stand-in, run only when asked for with
``model.allow_interim=true``) say ``"calibration": "UNCALIBRATED"`` in every file and carry
no class: their confidence is an anomaly score, not a probability, and no class was guessed.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import Alarm
from detect.sinks.base import Sink


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
    """The alarm as written to the files; an uncalibrated detector's has no class."""
    d = alarm.to_dict()
    if not calibrated:
        d.update({"class": None, "class_probs": {}, "calibration": UNCALIBRATED})
    return d


class AlarmJsonl:
    """Appends one JSON line per alarm and flushes it to disk at once."""

    def __init__(self, path: str | os.PathLike[str], calibrated: bool = True) -> None:
        self.path = Path(path)
        self.calibrated = calibrated
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, alarm: Alarm) -> None:
        self._fh.write(json.dumps(_clean(alarm_record(alarm, self.calibrated))) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def alarms_geojson(
    alarms: Sequence[Alarm],
    properties: Mapping[str, Any] | None = None,
    calibrated: bool = True,
) -> dict:
    features = []
    uncal = {} if calibrated else {"calibration": UNCALIBRATED}
    for a in alarms:
        geom = None
        if a.lat_deg is not None and a.lon_deg is not None:
            geom = {"type": "Point", "coordinates": [a.lon_deg, a.lat_deg]}
        features.append(
            {
                "type": "Feature",
                "id": a.alarm_id,
                "geometry": geom,
                "properties": _clean(
                    {
                        "id": a.alarm_id,
                        "confidence": a.confidence,
                        "class": a.class_name if calibrated else None,
                        **uncal,
                        "depth_m": a.depth_m,
                        "position_m": a.position_m,
                        "h_acc_m": a.h_acc_m,
                        "time_s": a.host_time_s,
                        **{f"score_{k}": v for k, v in a.sensor_scores.items()},
                    }
                ),
            }
        )
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if properties or not calibrated:
        out["properties"] = _clean({**dict(properties or {}), **uncal})
    return out


CSV_FIELDS = (
    "id",
    "position_m",
    "confidence",
    "class",
    "depth_m",
    "lat",
    "lon",
    "h_acc_m",
    "time_s",
)


def write_csv(
    alarms: Sequence[Alarm], path: str | os.PathLike[str], calibrated: bool = True
) -> None:
    """One row per alarm; an uncalibrated detector's rows add ``calibration=UNCALIBRATED``."""
    sensors = sorted({k for a in alarms for k in a.sensor_scores})
    extra = [] if calibrated else ["calibration"]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*CSV_FIELDS, *extra, *(f"score_{s}" for s in sensors)])
        for a in alarms:
            d = _clean(alarm_record(a, calibrated))
            w.writerow(
                [("" if d[k] is None else d[k]) for k in (*CSV_FIELDS, *extra)]
                + [_fmt(a.sensor_scores.get(s)) for s in sensors]
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
            "position_m": np.round(np.asarray(track_position_m, dtype=np.float64), 4).tolist(),
            "p_mine": np.round(np.asarray(track_p_mine, dtype=np.float64), 5).tolist(),
        },
        "coverage": list(coverage),
        "source": dict(source),
        "model": dict(model),
    }
    if summary is not None:
        out["summary"] = dict(summary)
    if not calibrated:
        out["calibration"] = str(model.get("note") or UNCALIBRATED)
    return out


def write_all(
    out_dir: str | os.PathLike[str], result: Mapping[str, Any], alarms: Sequence[Alarm]
) -> dict[str, Path]:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": d / "alarms.json",
        "geojson": d / "alarms.geojson",
        "csv": d / "alarms.csv",
    }
    calibrated = bool((result.get("model") or {}).get("calibrated", True))
    write_json(result, paths["json"])
    write_json(
        alarms_geojson(
            alarms, {"source": result.get("source"), "model": result.get("model")}, calibrated
        ),
        paths["geojson"],
    )
    write_csv(alarms, paths["csv"], calibrated)
    return paths


class JsonlSink(Sink):
    """``alarms.jsonl`` as a sink: one synced line per alarm as it is declared."""

    name = "alarms.jsonl"

    def __init__(self, jsonl: AlarmJsonl) -> None:
        self.jsonl = jsonl

    def on_alarm(self, alarm: Any) -> None:
        self.jsonl.write(alarm)

    def close(self) -> None:
        self.jsonl.close()
