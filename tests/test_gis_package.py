"""The survey package for GIS, read back with independent readers (json + GDAL via pyogrio).

A simulated lane with a GPR fault in the middle: the track line is as long as the distance
walked, the not-covered polygons are the not-covered stretches of alarms.json (to 1 cm, by
their along-track ends and by their area over the swept width), and every alarm lies on the
track.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import detect.sim.source  # noqa: F401
from detect.app.live import run_task
from detect.config import compose
from detect.geo import lat_lon_to_enu
from detect.sinks.gis import LAYERS, LOCAL_NOTE, Track, survey_layers

LAT0, LON0 = 44.8, 18.6


#: what the operator's display printed during the ``lane`` run (its "detect.run" log lines)
DISPLAY: list[str] = []


class _Lines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        DISPLAY.append(record.getMessage())


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gis")
    cfg = compose(
        [
            "run.display=false",
            "run.bell=false",
            f"run.out_dir={out}",
            "source.realtime=false",
            "source.n_lanes=1",
            "sim.odometer.enabled=false",  # the walked distance is the true one...
            "sim.gps.h_acc_m=0.0",  # ...and so is the GPS track
            "sim.head.wobble_m=0.0",  # a straight lane (the strip-area check)
            "source.fault_gpr_after_s=8",
            "source.fault_gpr_for_s=3",
        ]
    )
    shown, handler = logging.getLogger("detect.run"), _Lines(logging.INFO)
    shown.addHandler(handler)
    level, shown.level = shown.level, logging.INFO
    try:
        run_task(cfg)
    finally:
        shown.removeHandler(handler)
        shown.setLevel(level)
    return out


def _enu(coords: Any) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64)
    e, n = lat_lon_to_enu(LAT0, LON0, c[:, 1], c[:, 0])
    return np.c_[e, n]


def _layer(d: Path, name: str) -> dict[str, Any]:
    fc = json.loads((d / f"{name}.geojson").read_text())
    # RFC 7946 shape: a FeatureCollection of Features with id, geometry and properties
    assert fc["type"] == "FeatureCollection"
    for f in fc["features"]:
        assert f["type"] == "Feature" and set(f) >= {"id", "geometry", "properties"}
        g = f["geometry"]
        assert g is not None, f"{name} {f['id']}: null geometry"
        flat = np.asarray(
            g["coordinates"] if g["type"] == "Point" else np.concatenate(
                [np.asarray(c).reshape(-1, 2) for c in _rings(g)]
            )
        ).reshape(-1, 2)  # fmt: skip
        assert (np.abs(flat[:, 0]) <= 180).all() and (np.abs(flat[:, 1]) <= 90).all()
        assert np.allclose(flat, np.round(flat, 7), atol=1e-12, rtol=0)  # 1e-7 degree
    return fc


def _rings(g: dict[str, Any]) -> list[Any]:
    if g["type"] == "LineString":
        return [g["coordinates"]]
    if g["type"] in ("MultiLineString", "Polygon"):
        return list(g["coordinates"])
    raise AssertionError(g["type"])


def _area_m2(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _dist_to_polyline_m(p: np.ndarray, line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    ab = b - a
    k = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0, 1)
    return float(np.min(np.hypot(*(a + k[:, None] * ab - p).T)))


def test_track_length_is_the_distance_walked(lane: Path) -> None:
    doc = json.loads((lane / "alarms.json").read_text())
    (track,) = _layer(lane, "track")["features"]
    xy = _enu(track["geometry"]["coordinates"])
    length = float(np.hypot(*np.diff(xy, axis=0).T).sum())
    assert length == pytest.approx(doc["summary"]["distance_m"], abs=0.02)
    assert track["properties"]["length_m"] == pytest.approx(length, abs=1e-3)


def test_not_covered_polygons_match_alarms_json(lane: Path) -> None:
    doc = json.loads((lane / "alarms.json").read_text())
    want = [s for s in doc["coverage"] if s["status"] == "not_covered"]
    got = _layer(lane, "not_covered")["features"]
    assert len(want) >= 2 and len(got) == len(want)  # lane ends and the GPR fault
    width = json.loads((lane / "not_covered.geojson").read_text())["properties"]["swept_width_m"]
    line = _enu(_layer(lane, "track")["features"][0]["geometry"]["coordinates"])
    u = (line[-1] - line[0]) / np.hypot(*(line[-1] - line[0]))  # a straight lane's direction
    v = np.array([-u[1], u[0]])
    for seg, f in zip(want, got, strict=True):
        p = f["properties"]
        assert p["epoch"] == seg["epoch"] and p["sensor"] == ",".join(seg["missing"])
        assert p["start_m"] == pytest.approx(seg["start_m"], abs=0.01)
        assert p["end_m"] == pytest.approx(seg["end_m"], abs=0.01)
        ring = _enu(f["geometry"]["coordinates"][0])
        # the strip on the map: as long as the stretch to 1 cm, as wide as the head's swath
        # (1e-7 degree of latitude is 1.1 cm: both edges rounded)
        along, across = ring @ u, ring @ v
        assert np.ptp(along) == pytest.approx(seg["end_m"] - seg["start_m"], abs=0.01)
        assert np.ptp(across) == pytest.approx(width, abs=0.012)
        assert _area_m2(ring) == pytest.approx(np.ptp(along) * np.ptp(across), rel=0.01)


def test_every_alarm_lies_on_the_track(lane: Path) -> None:
    doc = json.loads((lane / "alarms.json").read_text())
    alarms = _layer(lane, "alarms")["features"]
    assert len(alarms) == len(doc["alarms"]) > 0
    assert doc["utc_from"].startswith("unknown") and all(a["utc"] is None for a in doc["alarms"])
    assert len({f["id"] for f in alarms}) == len(alarms)
    line = _enu(_layer(lane, "track")["features"][0]["geometry"]["coordinates"])
    for f in alarms:
        p = _enu([f["geometry"]["coordinates"]])[0]
        assert _dist_to_polyline_m(p, line) < 0.01, f["id"]
        # a simulation faster than real time: its times have no UTC, and the files say so
        assert f["properties"]["utc"] is None
        assert f["properties"]["confidence"] == round(f["properties"]["confidence"], 3)


def test_no_made_up_utc_on_the_display(lane: Path) -> None:
    """A simulation faster than real time has no UTC: the operator's alarm lines say so,
    as alarms.json and alarms.jsonl do (before: the host clock's UTC shifted by the
    machine's uptime, e.g. 05:07Z at 14:36Z)."""
    doc = json.loads((lane / "alarms.json").read_text())
    lines = [x for x in DISPLAY if x.startswith(("ALARM ", "SUSPECT "))]
    assert len(lines) == len(doc["alarms"]) > 0
    assert all(x.endswith("  no UTC") for x in lines)
    assert all(a["utc"] is None for a in doc["alarms"])
    jsonl = [json.loads(x) for x in (lane / "alarms.jsonl").read_text().splitlines()]
    assert [a["utc"] for a in jsonl] == [None] * len(lines)


def test_utc_only_where_the_host_clock_dates_the_items() -> None:
    """One rule for the display's and the files' UTC: a paced source stamped by this host."""
    from detect.engine.build import build_pipeline
    from detect.sinks.gis import host_clock_dates

    cfg = compose(["run.display=false", "model.name=__none__", "model.allow_interim=true"])
    for info, dated in (
        ({"paced": True, "host_clock": True}, True),  # live hardware, real-time simulation
        ({"paced": False, "host_clock": True}, False),  # a simulation faster than real time
        ({"paced": True, "host_clock": False}, False),  # a file replayed at its pace
        ({"paced": False}, False),  # a scan
    ):
        assert host_clock_dates(info) is dated
        pipe = build_pipeline(cfg, ("gpr", "emi"), None, None, source_info=info)
        assert (pipe.utc_anchor is not None) is dated, info


def test_geopackage_holds_the_same_layers(lane: Path) -> None:
    pyogrio = pytest.importorskip("pyogrio")
    gpkg = lane / "survey.gpkg"
    names = {str(n) for n, _ in pyogrio.list_layers(gpkg)}
    assert names == set(LAYERS)
    for name in LAYERS:
        fc = _layer(lane, name)
        info = pyogrio.read_info(gpkg, layer=name)
        assert info["features"] == len(fc["features"])
        assert "4326" in str(info["crs"])
        _, _, _, fields = pyogrio.raw.read(gpkg, layer=name)
        assert len(fields) == len(info["fields"])
    _, _, _, fields = pyogrio.raw.read(gpkg, layer="not_covered", columns=["start_m", "end_m"])
    doc = json.loads((lane / "alarms.json").read_text())
    want = [(s["start_m"], s["end_m"]) for s in doc["coverage"] if s["status"] == "not_covered"]
    assert np.allclose(np.c_[fields[0], fields[1]], want, atol=0.01)


def test_geopackage_version_is_one_older_gis_reads(lane: Path) -> None:
    """GeoPackage 1.2, read by sqlite3 itself (the header fields of the OGC standard): a
    recent GDAL writes 1.4 by default, which the GDAL 3.6 under Debian 12's QGIS 3.22 reads
    only with a "may only be partially supported" warning on every layer opened."""
    import sqlite3

    pytest.importorskip("pyogrio")
    con = sqlite3.connect(f"file:{lane / 'survey.gpkg'}?mode=ro", uri=True)
    try:
        (app_id,) = con.execute("PRAGMA application_id").fetchone()
        (version,) = con.execute("PRAGMA user_version").fetchone()
    finally:
        con.close()
    assert app_id.to_bytes(4, "big") == b"GPKG"
    assert version == 10200  # 1.2.0


def _track(epochs: int, fixes: bool) -> Track:
    x = np.linspace(0.0, 4.0, 401)
    sm = np.concatenate(
        [np.stack([np.full(x.size, k), 100.0 * k + x / 0.5, x]) for k in range(epochs)], axis=1
    )
    fx = np.empty((0, 4))
    if fixes:
        t = np.arange(0.0, 100.0 * epochs, 0.2)
        lat = LAT0 + np.degrees((t % 100.0) * 0.5 / 6.37e6)  # walking north at 0.5 m/s
        fx = np.c_[t, lat, np.full(t.size, LON0), np.full(t.size, math.nan)]
    return Track(fx, sm, "gpr")


def test_without_gps_a_local_frame_is_written_and_said(caplog: pytest.LogCaptureFixture) -> None:
    alarms = [{"id": "A1", "position_m": 1.0, "confidence": 0.9, "epoch": 1, "time_s": 102.0}]
    cov = [{"start_m": 1.5, "end_m": 2.5, "status": "not_covered", "missing": ["gpr"], "epoch": 1}]
    layers = survey_layers(alarms, cov, _track(2, fixes=False), None, 0.5)
    for fc in layers.values():
        assert fc["properties"]["frame"] == LOCAL_NOTE
    (a,) = layers["alarms"]["features"]
    assert a["geometry"]["coordinates"] == [1.0, -2.0]  # epoch 1 drawn apart from epoch 0
    assert a["properties"]["located"] == "local frame"
    tracks = layers["track"]["features"]
    assert [t["properties"]["epoch"] for t in tracks] == [0, 1]
    (nc,) = layers["not_covered"]["features"]
    ring = np.asarray(nc["geometry"]["coordinates"][0])
    assert _area_m2(ring) == pytest.approx(0.5 * 1.0, abs=1e-3)
    assert set(np.round(ring[:, 1], 3)) == {-2.25, -1.75}


def test_epochs_are_placed_by_their_own_times() -> None:
    """Two epochs over the same along-track frame: each is placed by when it was walked."""
    cov = [
        {"start_m": 1.0, "end_m": 2.0, "status": "not_covered", "missing": ["gpr"], "epoch": e}
        for e in (0, 1)
    ]
    layers = survey_layers([], cov, _track(2, fixes=True), None, 0.5)
    assert len(layers["track"]["features"]) == 2
    polys = [np.asarray(f["geometry"]["coordinates"][0]) for f in layers["not_covered"]["features"]]
    for p in polys:
        north = _enu(p)[:, 1]
        assert north.min() == pytest.approx(1.0, abs=0.01)
        assert north.max() == pytest.approx(2.0, abs=0.01)


def test_an_alarm_without_any_position_says_so() -> None:
    alarms = [
        {"id": "A1", "position_m": 1.0, "confidence": 0.9, "lat": LAT0, "lon": LON0},
        {"id": "A2", "position_m": 9.0, "confidence": 0.5},
    ]
    layers = survey_layers(alarms, [], _track(1, fixes=True), None)
    a2 = layers["alarms"]["features"][1]
    assert a2["geometry"] is None and a2["properties"]["located"].startswith("unplaced")


def test_log_line_names_the_local_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from detect.sinks.gis import write_survey

    doc = {"alarms": [], "coverage": [], "source": {"source": "x.dzt"}}
    with caplog.at_level(logging.INFO):
        write_survey(tmp_path, doc, _track(1, fixes=False))
    assert any("local along-track frame" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "track.geojson").is_file()


def _union(segs: list[dict[str, Any]]) -> list[tuple[float, float]]:
    from detect.coverage import merge

    return merge((s["start_m"], s["end_m"]) for s in segs)


def same_strips(live: Path, exported: Path) -> list[dict[str, Any]]:
    """The covered and not-covered layers of two packages are the same features: ids,
    every property (sensor and reason included) and the strips on the map to 2 cm (the
    live track is the processed traces', the exported one the recorded traces'). Returns
    the not-covered properties."""
    for name in ("covered", "not_covered"):
        got, want = _layer(exported, name)["features"], _layer(live, name)["features"]
        assert [f["id"] for f in got] == [f["id"] for f in want]
        assert [f["properties"] for f in got] == [f["properties"] for f in want]
        for g, w in zip(got, want, strict=True):
            a, b = _enu(g["geometry"]["coordinates"][0]), _enu(w["geometry"]["coordinates"][0])
            assert a.shape == b.shape and np.abs(a - b).max() < 0.02, g["id"]
    return [f["properties"] for f in _layer(live, "not_covered")["features"]]


def test_export_gis_of_the_session_gives_the_same_layers(lane: Path, tmp_path: Path) -> None:
    """Issue 17: ``export-gis`` of the session writes the live package's polygons, one per
    stretch with every sensor missing there (not one overlapping polygon per sensor), with
    the same specific reasons."""
    from detect.app.export_gis import export_gis_task

    cfg = compose([f"input.path={lane / 'session.h5'}", f"output.dir={tmp_path}"])
    assert export_gis_task(cfg) == 0
    nc = same_strips(lane, tmp_path)
    # the simulated outage (8-11 s at 0.5 m/s): a FAULT on the simulation's own clock,
    # however busy the test machine; not covered from half a window (0.32 m) before the
    # last good trace, as windows reaching into the gap were scored without the GPR
    (gap,) = [p for p in nc if p["start_m"] > 1.0 and p["end_m"] < 9.0]
    assert gap["sensor"] == "gpr" and 8 * 0.5 - 0.32 - 0.1 < gap["start_m"] < 8 * 0.5 + 0.2
    assert 11 * 0.5 - 0.2 < gap["end_m"] < 11 * 0.5 + 0.32 + 0.1
    health = json.loads((lane / "alarms.json").read_text())["health"]
    stalled = [
        h for h in health
        if h["sensor"] == "gpr" and h["state"] != "OK"
        and gap["start_m"] - 0.5 < (h["position_m"] or -1.0) < gap["end_m"]
    ]  # fmt: skip
    assert [h["state"] for h in stalled] == ["FAULT"]
    assert gap["reason"] == f"gpr FAULT: {stalled[0]['reason']}"
    # the lane's ends: the EMI (0.3 m ahead) and the GPR did not both score the ground
    ends = [p for p in nc if p is not gap]
    assert "emi,gpr" in {p["sensor"] for p in ends}
    for p in ends:
        which = f"not scored: lane {'start' if p['end_m'] < 5 else 'end'}"
        named = [part.split(" ")[0] for part in p["reason"].split("; ")]
        assert which in p["reason"] and sorted(",".join(named).split(",")) == sorted(
            p["sensor"].split(",")
        ), p
    ids = [f["id"] for f in _layer(tmp_path, "alarms")["features"]]
    assert ids == [f["id"] for f in _layer(lane, "alarms")["features"]]
    (tr,) = _layer(tmp_path, "track")["features"]
    assert tr["properties"]["length_m"] == pytest.approx(10.0, abs=0.05)


def test_utc_from_session_start_and_from_gps_time_of_day() -> None:
    from detect.sinks.gis import utc_from_gps, utc_from_session

    attrs = {"created_utc": "2024-05-01T23:59:50.000+00:00", "start_host_time_s": 1000.0}
    s = utc_from_session(attrs, first_host_time_s=1000.5)
    assert s is not None and s.utc(1012.25) == "2024-05-02T00:00:02.250Z"
    assert utc_from_session(attrs, first_host_time_s=3.0) is None  # not this host's clock
    # fixes 0.3 s behind the host clock, across midnight: dated by the session start
    t = np.array([1005.0, 1010.0, 1015.0])
    tod = (t - 1000.0 + 86_390.0 - 0.3) % 86_400.0
    g = utc_from_gps(t, tod, s.offset_s + 1005.0)
    assert g is not None and g.utc(1015.0) == "2024-05-02T00:00:04.700Z"
    assert utc_from_gps(t, tod, None) is None  # a time of day without a date: no UTC
