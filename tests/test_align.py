"""Alignment: offsets, GPS interpolation and track distance, the along-track grid."""

from __future__ import annotations

import numpy as np
import pytest

from detect.align import Aligner, AlignError, GpsTrack, SpeedEstimator, TrackGrid
from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix, MdBlock, MdHeader
from test_gps_lever_arm import vincenty_direct, vincenty_distance_m  # the independent reference


def fixes_along(
    speed: float, n: int, lat0: float = 10.0, lon0: float = 20.0, rate: float = 5.0,
    azimuth_deg: float = 0.0,
) -> list[GpsFix]:  # fmt: skip
    """Fixes of a walk along a geodesic, placed by Vincenty's direct solution on WGS84."""
    out = []
    for t in np.arange(n) / rate:
        lat, lon = vincenty_direct(lat0, lon0, azimuth_deg, speed * t)
        out.append(GpsFix(t, lat, lon, quality=FixQuality.RTK_FIXED, h_acc_m=0.02))
    return out


def fixes_north(speed: float, n: int, lat0: float = 10.0, lon0: float = 20.0, rate: float = 5.0):
    return fixes_along(speed, n, lat0, lon0, rate)


def test_offsets_are_added_per_sensor() -> None:
    al = Aligner({"gpr": 0.1, "emi": -0.3})
    pos = np.linspace(0, 1, 11)
    g = al.apply(
        GprBlock.build(np.zeros((11, 4)), GprHeader(dt_ns=0.1), host_time_s=pos, position_m=pos)
    )
    e = al.apply(
        MdBlock.build(np.zeros((11, 1)), MdHeader(1000.0), host_time_s=pos, position_m=pos)
    )
    np.testing.assert_allclose(g.position_m, pos + 0.1)
    np.testing.assert_allclose(e.position_m, pos - 0.3)
    assert al.head_position_m == 1.0


def test_gps_track_interpolates_and_measures_distance() -> None:
    track = GpsTrack()
    for f in fixes_north(0.8, 50):
        track.add(f)
    lat, lon, acc = track.locate(2.1)  # type: ignore[misc]
    assert lat == pytest.approx(vincenty_direct(10.0, 20.0, 0.0, 0.8 * 2.1)[0], abs=1e-10)
    assert lon == pytest.approx(20.0, abs=1e-12) and acc == 0.02
    d = track.distance_at(np.array([0.0, 1.0, 4.5]))
    np.testing.assert_allclose(d, [0.0, 0.8, 3.6], atol=1e-6)


@pytest.mark.parametrize("lat0", [0.0, 45.0, 60.0])
@pytest.mark.parametrize("azimuth_deg", [0.0, 90.0, 30.0])
def test_gps_distance_is_the_ellipsoid_distance(lat0: float, azimuth_deg: float) -> None:
    """A sphere is 0.3 % off east-west at 45 degrees, as much as a survey wheel's error."""
    fixes = fixes_along(0.5, 101, lat0=lat0, azimuth_deg=azimuth_deg)  # 10 m in 20 s
    track = GpsTrack()
    for f in fixes:
        track.add(f)
    end = fixes[-1]
    walked = vincenty_distance_m(lat0, 20.0, end.lat_deg, end.lon_deg)
    assert walked == pytest.approx(10.0, abs=1e-6)
    assert track.distance_at(np.array([20.0]))[0] == pytest.approx(walked, rel=1e-5)


def test_gps_gap_or_loss_gives_none_not_a_stale_position() -> None:
    track = GpsTrack(max_gap_s=1.0, hold_s=0.3)
    fx = fixes_north(1.0, 30)
    for f in fx[:10] + fx[20:]:  # a 2.2 s hole between t=1.8 and t=4.0
        track.add(f)
    track.add(GpsFix(6.5, None, None))  # no-fix sentences are ignored
    assert track.locate(3.0) is None
    assert track.locate(1.0) is not None
    assert track.locate(5.9) is not None  # held just after the last fix
    assert track.locate(6.5) is None
    assert np.isnan(track.distance_at(np.array([3.0])))[0]


def test_position_from_gps_and_from_speed() -> None:
    al = Aligner({"gpr": 0.0}, position_source="gps")
    for f in fixes_north(0.5, 20):
        al.add_fix(f)
    t = np.array([0.5, 1.0, 2.0])
    b = GprBlock.build(np.zeros((3, 4)), GprHeader(dt_ns=0.1), host_time_s=t)
    np.testing.assert_allclose(al.apply(b).position_m, 0.5 * t, atol=1e-6)
    sp = Aligner({}, position_source="speed", speed_m_s=0.4)
    b2 = GprBlock.build(np.zeros((3, 4)), GprHeader(dt_ns=0.1), host_time_s=t + 10)
    np.testing.assert_allclose(sp.apply(b2).position_m, 0.4 * (t - 0.5))
    with pytest.raises(AlignError):
        Aligner({}, position_source="speed")


def test_trace_counting_when_the_file_has_no_positions() -> None:
    al = Aligner({}, trace_spacing_m=0.05)
    b = GprBlock.build(np.zeros((4, 4)), GprHeader(dt_ns=0.1))
    np.testing.assert_allclose(al.apply(b).position_m, [0, 0.05, 0.1, 0.15])
    np.testing.assert_allclose(al.apply(b).position_m, [0.2, 0.25, 0.3, 0.35])


def test_speed_estimate_matches_the_slope() -> None:
    est = SpeedEstimator(window_s=2.0)
    t = np.arange(0, 5, 0.01)
    for a in range(0, len(t), 7):
        est.add(t[a : a + 7], 0.73 * t[a : a + 7] + 2)
    assert est.speed_m_s == pytest.approx(0.73, rel=1e-6)


def _grid_reference(data: np.ndarray, pos: np.ndarray, grid_m: float) -> dict[int, np.ndarray]:
    cells: dict[int, list[np.ndarray]] = {}
    for row, p in zip(data, pos, strict=True):
        cells.setdefault(round(p / grid_m), []).append(row)
    return {k: np.mean(v, axis=0) for k, v in cells.items()}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_track_grid_is_the_bin_mean_in_any_chunking(chunk: int) -> None:
    rng = np.random.default_rng(3)
    n = 600
    pos = np.cumsum(rng.uniform(0.004, 0.012, n))  # irregular forward motion, ~2-5 traces/cell
    data = rng.standard_normal((n, 3))
    g = TrackGrid(0.02)
    for a in range(0, n, chunk):
        g.add(data[a : a + chunk], pos[a : a + chunk], pos[a : a + chunk])
        g.finalize()
    ref = _grid_reference(data, pos, 0.02)
    lo = min(ref)
    hi = g.final_end
    assert hi is not None and hi >= max(ref) - 1
    vals, valid, times = g.rows(lo, hi)
    assert valid.all()
    np.testing.assert_allclose(
        vals, np.array([ref[k] for k in range(lo, hi)]), rtol=1e-5, atol=1e-6
    )
    assert np.all(np.abs(times - np.arange(lo, hi) * 0.02) < 0.011)


def test_track_grid_fills_small_gaps_and_flags_big_ones() -> None:
    g = TrackGrid(0.02, max_fill_cells=2)
    pos = np.array([0.0, 0.02, 0.08, 0.10, 0.30, 0.32, 0.34])  # gap of 2 cells, then 9
    data = pos[:, None] * 10
    g.add(data, pos, pos)
    g.finalize()
    vals, valid, _ = g.rows(0, 17)
    assert valid[:6].all() and not valid[6:15].any() and valid[15:].all()
    np.testing.assert_allclose(vals[2:4, 0], [0.4, 0.6], atol=1e-6)  # linear between 0.2 and 0.8


def test_track_grid_ignores_data_behind_the_final_edge() -> None:
    g = TrackGrid(0.02)
    g.add(np.ones((3, 1)), np.array([0.0, 0.1, 0.2]), np.zeros(3))
    g.finalize()
    g.add(np.full((1, 1), 9.0), np.array([0.04]), np.zeros(1))
    assert g.n_behind == 1
    assert g.final_end == 6  # cells 6-9 are filled towards open cell 10: final with it
    vals, _, _ = g.rows(0, 6)
    assert (vals == 1).all()


def test_distance_past_the_last_fix_is_dead_reckoned_not_held() -> None:
    track = GpsTrack(hold_s=0.5)
    for f in fixes_north(0.6, 10):  # fixes every 0.2 s up to t = 1.8 s
        track.add(f)
    d = track.distance_at(np.array([1.9, 2.1, 2.4]))
    np.testing.assert_allclose(d[:2], [0.6 * 1.9, 0.6 * 2.1], atol=1e-6)
    assert np.isnan(d[2])  # beyond hold_s
