"""The survey package places the ground under the sensor, not the GPS antenna.

An analytic head walks a straight lane and an L (east, then north) with the GPS antenna on
the handle behind and to the right of the GPR (``align.gps_antenna_m``) and, on the straight
lane, the track's sensor ahead of the head reference (``align.offsets_m``). The fixes are the
antenna's true positions; the expected map position of along-track ground ``x`` is where the
sensor truly was over it (independent geometry, nothing of the package's code). Alarms
without their own lat/lon, the track and the not-covered strips must lie there to 1 cm; the
package read back with ``json`` and ``csv``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detect.geo import enu_to_lat_lon, lat_lon_to_enu
from detect.sinks.gis import Track, write_survey

LAT0, LON0 = 44.8, 18.6
SPEED_M_S = 0.5
#: GPS antenna on the handle: 0.8 m behind the head reference, 0.3 m to the operator's right
ANTENNA_M = (-0.8, 0.3)
WIDTH_M = 0.5


def _walk(path: str, sensor_offset_m: float, length_m: float = 10.0) -> tuple[Track, Any]:
    """Samples (epoch, t, ground x under the sensor) at 100 Hz and antenna fixes at 5 Hz of
    a head whose reference point walks ``path`` (unit speed along it); returns the track and
    ``where(x)`` -> the true (east, north) of the sensor over ground ``x``."""

    def ref(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Head reference (e, n) and heading (ue, un) at arc length s."""
        s = np.asarray(s, dtype=np.float64)
        if path == "straight":
            return s, np.zeros_like(s), np.ones_like(s), np.zeros_like(s)
        corner = length_m / 2  # L: east to the corner, then north
        leg2 = s > corner
        e = np.where(leg2, corner, s)
        n = np.where(leg2, s - corner, 0.0)
        return e, n, np.where(leg2, 0.0, 1.0), np.where(leg2, 1.0, 0.0)

    def where(x: Any) -> np.ndarray:
        e, n, ue, un = ref(np.asarray(x, dtype=np.float64) - sensor_offset_m)
        return np.c_[e + sensor_offset_m * ue, n + sensor_offset_m * un]

    t = np.arange(0.0, length_m / SPEED_M_S + 1e-9, 0.01)
    samples = np.stack([np.zeros(t.size), t, SPEED_M_S * t + sensor_offset_m])
    tf = np.arange(0.0, t[-1] + 1e-9, 0.2)
    e, n, ue, un = ref(SPEED_M_S * tf)
    fwd, right = ANTENNA_M  # the right of travel (ue, un) is (un, -ue)
    lat, lon = enu_to_lat_lon(LAT0, LON0, e + fwd * ue + right * un, n + fwd * un - right * ue)
    fixes = np.c_[tf, lat, lon, np.full(tf.size, math.nan)]
    return Track(fixes, samples, "gpr"), where


def _package(tmp: Path, track: Track, sensor_offset_m: float, alarm_x: list[float],
             gaps: list[tuple[float, float]]) -> dict[str, Any]:  # fmt: skip
    doc = {
        "alarms": [
            {"id": f"A{i}", "position_m": x, "confidence": 0.9, "epoch": 0, "time_s": None}
            for i, x in enumerate(alarm_x)
        ],
        "coverage": [
            {"start_m": a, "end_m": b, "status": "not_covered", "missing": ["gpr"], "epoch": 0}
            for a, b in gaps
        ],
        "source": {
            "source": "analytic walk",
            "swept_width_m": WIDTH_M,
            "gps_antenna_m": list(ANTENNA_M),
            "sensor_offsets_m": {"gpr": sensor_offset_m, "emi": 0.3},
        },
    }
    write_survey(tmp, doc, track)
    out = {name: json.loads((tmp / f"{name}.geojson").read_text()) for name in
           ("alarms", "track", "not_covered")}  # fmt: skip
    if (tmp / "track.csv").is_file():
        with (tmp / "track.csv").open(newline="") as fh:
            out["csv"] = list(csv.DictReader(fh))
    return out


def _enu(coords: Any) -> np.ndarray:
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    e, n = lat_lon_to_enu(LAT0, LON0, c[:, 1], c[:, 0])
    return np.c_[e, n]


def _track_xy(fc: dict[str, Any]) -> np.ndarray:
    (f,) = fc["features"]
    g = f["geometry"]
    parts = [g["coordinates"]] if g["type"] == "LineString" else g["coordinates"]
    return np.concatenate([_enu(p) for p in parts])


@pytest.mark.parametrize("sensor_offset_m", [0.0, 0.3])
def test_straight_walk_places_the_ground_under_the_sensor(
    tmp_path: Path, sensor_offset_m: float
) -> None:
    track, where = _walk("straight", sensor_offset_m)
    xs = [1.0, 4.0, 7.5]
    got = _package(tmp_path, track, sensor_offset_m, xs, [(3.0, 5.0)])
    # alarms without their own lat/lon are placed along the track
    pts = np.concatenate([_enu(f["geometry"]["coordinates"]) for f in got["alarms"]["features"]])
    assert np.abs(pts - where(xs)).max() < 0.01, pts - where(xs)
    # the track: the sensor's line y = 0, from its first to its last ground position
    line = _track_xy(got["track"])
    assert np.abs(line[:, 1]).max() < 0.01
    assert line[0, 0] == pytest.approx(sensor_offset_m, abs=0.01)
    assert line[-1, 0] == pytest.approx(10.0 + sensor_offset_m, abs=0.01)
    # the not-covered strip: x in [3, 5], the swept width about the sensor's line
    (nc,) = got["not_covered"]["features"]
    ring = _enu(nc["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(3.0, abs=0.01)
    assert ring[:, 0].max() == pytest.approx(5.0, abs=0.01)
    assert sorted({round(v, 2) for v in ring[:, 1]}) == pytest.approx([-0.25, 0.25], abs=0.011)
    assert got["track"]["properties"]["lever_arm_m"] == [sensor_offset_m + 0.8, -0.3]


def test_l_shaped_walk_places_both_legs_under_the_sensor(tmp_path: Path) -> None:
    """Turning the lever arm with the heading: on the north leg the antenna is 0.3 m east
    of the line and 0.8 m south of the sensor; on the east leg 0.3 m south and 0.8 m west."""
    track, where = _walk("L", 0.0)
    xs = [1.0, 4.0, 6.0, 9.0]
    got = _package(tmp_path, track, 0.0, xs, [(1.5, 3.5), (6.5, 8.5)])
    pts = np.concatenate([_enu(f["geometry"]["coordinates"]) for f in got["alarms"]["features"]])
    assert np.abs(pts - where(xs)).max() < 0.01, pts - where(xs)
    # track vertices away from the corner (where the head turned on the spot) lie on the L
    rows = got["csv"]
    x = np.array([float(r["position_m"]) for r in rows])
    xy = _enu(np.array([[float(r["lon"]), float(r["lat"])] for r in rows]))
    far = np.abs(x - 5.0) > 0.5
    assert far.sum() > 30
    assert np.abs(xy[far] - where(x[far])).max() < 0.01
    # the strips: east leg along y = 0 (x 1.5..3.5), north leg along x = 5 (y 1.5..3.5)
    (east, north) = (_enu(f["geometry"]["coordinates"][0]) for f in
                     got["not_covered"]["features"])  # fmt: skip
    assert east[:, 0].min() == pytest.approx(1.5, abs=0.01)
    assert east[:, 0].max() == pytest.approx(3.5, abs=0.01)
    assert np.abs(np.abs(east[:, 1]) - WIDTH_M / 2).max() < 0.011
    assert north[:, 1].min() == pytest.approx(1.5, abs=0.01)
    assert north[:, 1].max() == pytest.approx(3.5, abs=0.01)
    assert np.abs(np.abs(north[:, 0] - 5.0) - WIDTH_M / 2).max() < 0.011


def test_track_csv_has_utc_and_the_monotonic_time_side_by_side(tmp_path: Path) -> None:
    from detect.sinks.gis import UtcClock, iso_utc

    track, _ = _walk("straight", 0.0)
    doc = {"alarms": [], "coverage": [], "source": {"source": "analytic walk"}}
    utc = UtcClock(1.7e9, "test clock")
    write_survey(tmp_path, doc, track, utc=utc)
    with (tmp_path / "track.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "time_s", "utc", "position_m", "lon", "lat"]
    t = np.array([float(r["time_s"]) for r in rows])
    assert t[0] == 0.0 and t[-1] == pytest.approx(20.0) and (np.diff(t) > 0).all()
    assert [r["utc"] for r in rows[:3]] == [iso_utc(1.7e9 + v) for v in t[:3]]
    # the time and the place agree: the sensor walked 0.5 m/s along x
    x = np.array([float(r["position_m"]) for r in rows])
    assert np.allclose(x, SPEED_M_S * t, atol=1e-3)
    # without a clock the UTC column is empty, never a guessed time
    write_survey(tmp_path, doc, track)
    with (tmp_path / "track.csv").open(newline="") as fh:
        assert {r["utc"] for r in csv.DictReader(fh)} == {""}


def _dist_to_polyline_m(p: np.ndarray, line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    ab = b - a
    k = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-18), 0, 1)
    return float(np.min(np.hypot(*(a + k[:, None] * ab - p).T)))


def test_a_run_with_a_handle_antenna_puts_its_alarms_on_its_track(tmp_path: Path) -> None:
    """``detect run`` with the antenna 0.8 m behind and 0.3 m right of the head: the pipeline
    places each alarm (:meth:`detect.align.Aligner.locate`) and the package places the
    track, two separate codes; every alarm lies on the track (they were 0.3 m apart when the
    track stayed on the antenna), and ``export-gis`` of the recording draws the same track.
    The interim detector (no trained model needed): any alarms will do."""
    from detect.app.export_gis import export_gis_task
    from detect.app.live import run_task
    from detect.config import compose

    run = tmp_path / "run"
    cfg = compose(["run.display=false", "run.bell=false", f"run.out_dir={run}",
                   "source.realtime=false", "source.n_lanes=1", "console.enabled=false",
                   "model.allow_interim=true", "sim.odometer.enabled=false",
                   "sim.gps.h_acc_m=0.0", "sim.head.wobble_m=0.0",
                   f"align.gps_antenna_m=[{ANTENNA_M[0]},{ANTENNA_M[1]}]"])  # fmt: skip
    run_task(cfg)
    doc = json.loads((run / "alarms.json").read_text())
    sim = cfg.sim.gps
    lat0, lon0 = float(sim.lat0_deg), float(sim.lon0_deg)

    def enu(coords: Any) -> np.ndarray:
        c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        return np.c_[lat_lon_to_enu(lat0, lon0, c[:, 1], c[:, 0])]

    line = enu(json.loads((run / "track.geojson").read_text())["features"][0]["geometry"]
               ["coordinates"])  # fmt: skip
    alarms = [a for a in doc["alarms"] if a["lat"] is not None]
    assert alarms
    for a in alarms:
        assert _dist_to_polyline_m(enu([[a["lon"], a["lat"]]])[0], line) < 0.01, a["id"]
    assert doc["source"].get("gps_antenna_m") == list(ANTENNA_M)
    out = tmp_path / "export"
    assert export_gis_task(compose([f"input.path={run / 'session.h5'}", f"output.dir={out}"])) == 0
    again = json.loads((out / "track.geojson").read_text())["features"][0]["geometry"]
    assert np.abs(enu(again["coordinates"]) - line).max() < 0.01
