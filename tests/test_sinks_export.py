"""Alarm files: GeoJSON (RFC 7946), CSV and JSONL read back with independent parsers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from detect.blocks import Alarm
from detect.sinks.display import PlainDisplay, Status
from detect.sinks.export import AlarmJsonl, result_dict, write_all


def alarms() -> list[Alarm]:
    return [
        Alarm(
            "A-0001", 1.5, 0.93, "ap_mine", {"gpr": 0.9, "emi": 0.7}, 0.05, 10.0, 45.1, 15.2, 0.02
        ),
        Alarm("A-0002", 3.0, 0.61, "metal_clutter", {"emi": 0.6}, None, 12.0),
    ]


def test_geojson_csv_json(tmp_path: Path) -> None:
    res = result_dict(
        alarms(),
        np.array([0.0, 0.02]),
        np.array([0.1, math.nan]),
        [{"start_m": 0.0, "end_m": 3.0, "status": "covered", "missing": []}],
        {"source": "x"},
        {"name": "m"},
    )
    paths = write_all(tmp_path, res, alarms())
    gj = json.loads(paths["geojson"].read_text())
    assert gj["type"] == "FeatureCollection"
    f0, f1 = gj["features"]
    assert f0["geometry"] == {"type": "Point", "coordinates": [15.2, 45.1]}  # lon, lat order
    assert f1["geometry"] is None and f1["properties"]["position_m"] == 3.0
    assert f0["id"] != f1["id"]
    assert f0["properties"]["confidence"] == 0.93 and f0["properties"]["class"] == "ap_mine"
    rows = list(csv.DictReader(paths["csv"].open()))
    assert rows[0]["lat"] == "45.1" and rows[1]["lat"] == "" and rows[1]["score_gpr"] == ""
    doc = json.loads(paths["json"].read_text())
    assert doc["track"]["p_mine"] == [0.1, None]
    assert set(doc["alarms"][0]) >= {
        "position_m",
        "confidence",
        "class",
        "depth_m",
        "sensors",
        "lat",
        "lon",
    }
    assert doc["coverage"][0]["status"] == "covered"


def test_jsonl_is_on_disk_after_each_alarm(tmp_path: Path) -> None:
    j = AlarmJsonl(tmp_path / "alarms.jsonl")
    j.write(alarms()[0])
    lines = (tmp_path / "alarms.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["id"] == "A-0001"
    j.close()


def test_plain_display_puts_fault_and_alarm_in_the_log(capsys: object) -> None:
    import io

    from detect.blocks import HealthEvent, SensorState

    out = io.StringIO()
    d = PlainDisplay(stream=out, period_s=0.0)
    d.health(HealthEvent(1.0, "gpr", SensorState.FAULT, "no data for 0.50 s", 2.0))
    d.alarm(alarms()[1])
    d.update(Status(sensors=[{"sensor": "gpr", "state": "FAULT", "rate_hz": 0.0}]))
    text = out.getvalue()
    assert "SENSOR gpr FAULT" in text and "not covered" in text
    assert "ALARM A-0002" in text and "no GPS fix" in text
    d.needed = ("gpr", "emi")
    d.health(HealthEvent(2.0, "gps", SensorState.FAULT, "no data for 0.50 s", 2.5))
    assert "SENSOR gps FAULT: no data for 0.50 s\n" in out.getvalue()  # GPS: no coverage loss
