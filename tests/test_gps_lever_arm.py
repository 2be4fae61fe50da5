"""GPS lever arm: alarm lat/lon is the ground under the sensor, not the GPS antenna.

Expected positions come from Vincenty's direct and inverse solutions on the WGS84 ellipsoid,
written here independently of the flat-earth conversion in detect.align.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest

from detect.align import Aligner, AlignError, GpsTrack
from detect.blocks import FixQuality, GpsFix
from detect.config import ConfigError, compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.engine.pipeline import Pipeline
from detect.sinks.display import PlainDisplay
from pipeline_fakes import INTERIM_HEAD, LAT0, LON0, FakeClock, FakeHead

A_M = 6_378_137.0
F = 1 / 298.257223563
B_M = A_M * (1 - F)

#: the antenna 0.8 m behind and 0.2 m right of the head reference; the EMI coil 0.3 m ahead
ANTENNA_M = (-0.8, 0.2)
OFFSETS_M = {"gpr": 0.0, "emi": 0.3}
LAT_START, LON_START = 45.5, 10.0


def vincenty_direct(lat_deg: float, lon_deg: float, az_deg: float, s_m: float):
    """(lat, lon) s_m from a point along the geodesic leaving at azimuth az_deg."""
    alpha1 = math.radians(az_deg)
    u1 = math.atan((1 - F) * math.tan(math.radians(lat_deg)))
    sigma1 = math.atan2(math.tan(u1), math.cos(alpha1))
    sin_alpha = math.cos(u1) * math.sin(alpha1)
    cos2_alpha = 1 - sin_alpha**2
    u2 = cos2_alpha * (A_M**2 - B_M**2) / B_M**2
    big_a = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    big_b = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
    sigma = s_m / (B_M * big_a)
    for _ in range(100):
        c2m = math.cos(2 * sigma1 + sigma)
        d_sigma = (
            big_b
            * math.sin(sigma)
            * (
                c2m
                + big_b
                / 4
                * (
                    math.cos(sigma) * (-1 + 2 * c2m**2)
                    - big_b / 6 * c2m * (-3 + 4 * math.sin(sigma) ** 2) * (-3 + 4 * c2m**2)
                )
            )
        )
        new = s_m / (B_M * big_a) + d_sigma
        if abs(new - sigma) < 1e-14:
            sigma = new
            break
        sigma = new
    c2m = math.cos(2 * sigma1 + sigma)
    sin_s, cos_s = math.sin(sigma), math.cos(sigma)
    lat2 = math.atan2(
        math.sin(u1) * cos_s + math.cos(u1) * sin_s * math.cos(alpha1),
        (1 - F)
        * math.hypot(sin_alpha, math.sin(u1) * sin_s - math.cos(u1) * cos_s * math.cos(alpha1)),
    )
    lam = math.atan2(
        sin_s * math.sin(alpha1), math.cos(u1) * cos_s - math.sin(u1) * sin_s * math.cos(alpha1)
    )
    c = F / 16 * cos2_alpha * (4 + F * (4 - 3 * cos2_alpha))
    big_l = lam - (1 - c) * F * sin_alpha * (
        sigma + c * sin_s * (c2m + c * cos_s * (-1 + 2 * c2m**2))
    )
    return math.degrees(lat2), lon_deg + math.degrees(big_l)


def vincenty_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance between two points (Vincenty's inverse)."""
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    big_l = math.radians(lon2 - lon1)
    u1 = math.atan((1 - F) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - F) * math.tan(math.radians(lat2)))
    lam = big_l
    for _ in range(200):
        sin_l, cos_l = math.sin(lam), math.cos(lam)
        sin_s = math.hypot(
            math.cos(u2) * sin_l,
            math.cos(u1) * math.sin(u2) - math.sin(u1) * math.cos(u2) * cos_l,
        )
        cos_s = math.sin(u1) * math.sin(u2) + math.cos(u1) * math.cos(u2) * cos_l
        sigma = math.atan2(sin_s, cos_s)
        sin_alpha = math.cos(u1) * math.cos(u2) * sin_l / sin_s
        cos2_alpha = 1 - sin_alpha**2
        c2m = cos_s - 2 * math.sin(u1) * math.sin(u2) / cos2_alpha if cos2_alpha else 0.0
        c = F / 16 * cos2_alpha * (4 + F * (4 - 3 * cos2_alpha))
        new = big_l + (1 - c) * F * sin_alpha * (
            sigma + c * sin_s * (c2m + c * cos_s * (-1 + 2 * c2m**2))
        )
        if abs(new - lam) < 1e-14:
            lam = new
            break
        lam = new
    uu = cos2_alpha * (A_M**2 - B_M**2) / B_M**2
    big_a = 1 + uu / 16384 * (4096 + uu * (-768 + uu * (320 - 175 * uu)))
    big_b = uu / 1024 * (256 + uu * (-128 + uu * (74 - 47 * uu)))
    d_sigma = (
        big_b
        * sin_s
        * (
            c2m
            + big_b
            / 4
            * (
                cos_s * (-1 + 2 * c2m**2)
                - big_b / 6 * c2m * (-3 + 4 * sin_s**2) * (-3 + 4 * c2m**2)
            )
        )
    )
    return B_M * big_a * (sigma - d_sigma)


def body_to_geodesic(forward_m: float, right_m: float, heading_deg: float) -> tuple[float, float]:
    """(azimuth_deg, distance_m) of a head-frame offset for a head travelling at heading_deg."""
    return heading_deg + math.degrees(math.atan2(right_m, forward_m)), math.hypot(
        forward_m, right_m
    )


def head_at(x_m: float, heading_deg: float) -> tuple[float, float]:
    return vincenty_direct(LAT_START, LON_START, heading_deg, x_m)


def ground_under(
    x_m: float, heading_deg: float, forward_m: float, right_m: float = 0.0
) -> tuple[float, float]:
    """The point (forward_m, right_m) in the head frame from the head reference at x_m."""
    lat, lon = head_at(x_m, heading_deg)
    if forward_m == 0.0 and right_m == 0.0:
        return lat, lon
    return vincenty_direct(lat, lon, *body_to_geodesic(forward_m, right_m, heading_deg))


def walk(
    heading_deg: float,
    speed_m_s: float = 0.5,
    duration_s: float = 8.0,
    rate_hz: float = 5.0,
    noise_m: float = 0.0,
    seed: int = 0,
) -> list[GpsFix]:
    """Antenna fixes of a head walking straight at heading_deg from (LAT_START, LON_START)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in np.arange(0.0, duration_s, 1.0 / rate_hz):
        lat, lon = ground_under(speed_m_s * t, heading_deg, *ANTENNA_M)
        if noise_m:
            az, d = rng.uniform(0, 360), abs(rng.normal(0.0, noise_m))
            lat, lon = vincenty_direct(lat, lon, az, d)
        fix = GpsFix(float(t), lat, lon, quality=FixQuality.RTK_FIXED, h_acc_m=0.02)
        out.append(fix)
    return out


def aligner_with(fixes: list[GpsFix], antenna_m: Any = ANTENNA_M) -> Aligner:
    al = Aligner(OFFSETS_M, gps_antenna_m=antenna_m)
    for f in fixes:
        al.add_fix(f)
    return al


# ---------------------------------------------------------------------------- geometry


def test_vincenty_reference_is_sane() -> None:
    lat, lon = vincenty_direct(LAT_START, LON_START, 30.0, 1000.0)
    assert vincenty_distance_m(LAT_START, LON_START, lat, lon) == pytest.approx(1000.0, abs=1e-6)
    # one metre north at 45.5 deg is 1 / M, with M = a(1-e2)/(1-e2 sin2)^1.5 = 6367.8 km
    lat1, _ = vincenty_direct(LAT_START, LON_START, 0.0, 1.0)
    assert math.radians(lat1 - LAT_START) * 6_367_800 == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("heading_deg", [0.0, 90.0, 30.0, 210.0])
@pytest.mark.parametrize("sensor", ["gpr", "emi", None])
def test_located_point_is_the_ground_under_the_sensor(
    heading_deg: float, sensor: str | None
) -> None:
    al = aligner_with(walk(heading_deg))
    forward_m = 0.0 if sensor is None else OFFSETS_M[sensor]
    for t in (0.3, 2.1, 4.0, 7.8):  # near the start, inside, and at the end of the track
        lat, lon, acc = al.locate(t, sensor)  # type: ignore[misc]
        want = ground_under(0.5 * t, heading_deg, forward_m)
        assert vincenty_distance_m(lat, lon, *want) < 0.01
        assert acc == 0.02
        # the antenna itself is 0.8 m behind and 0.2 m right: without the lever arm the
        # point would be off by the whole offset
        antenna = ground_under(0.5 * t, heading_deg, *ANTENNA_M)
        off_m = math.hypot(forward_m - ANTENNA_M[0], ANTENNA_M[1])
        assert vincenty_distance_m(lat, lon, *antenna) == pytest.approx(off_m, abs=0.01)


def test_heading_from_the_track_and_from_course_over_ground() -> None:
    for heading in (0.0, 30.0, 90.0, 300.0):
        al = aligner_with(walk(heading))
        assert al.gps.heading_deg(4.0) == pytest.approx(heading, abs=0.01)
    # two fixes 0.1 m apart: too short a baseline, so the receiver's course is used
    two = [
        GpsFix(float(t), *head_at(0.5 * t, 0.0), quality=FixQuality.RTK_FIXED, h_acc_m=0.02)
        for t in (0.0, 0.2)
    ]
    moving = [GpsFix(**{**f.__dict__, "speed_m_s": 0.5, "course_deg": 42.0}) for f in two]
    crawling = [GpsFix(**{**f.__dict__, "speed_m_s": 0.1, "course_deg": 42.0}) for f in two]
    assert aligner_with(moving).gps.heading_deg(0.1) == pytest.approx(42.0)
    assert aligner_with(crawling).gps.heading_deg(0.1) is None
    assert aligner_with(two).gps.heading_deg(0.1) is None


def test_a_slow_walker_with_gps_noise_keeps_a_steady_heading() -> None:
    # 5 cm/s with 1 cm position noise: fix-to-fix steps (1 cm) are all noise; the 0.5 m
    # baseline keeps the heading within a few degrees and the point within a few cm
    fixes = walk(30.0, speed_m_s=0.05, duration_s=60.0, noise_m=0.01, seed=3)
    al = aligner_with(fixes)
    for t in (20.0, 30.0, 40.0):
        assert al.gps.heading_deg(t) == pytest.approx(30.0, abs=6.0)
        lat, lon, _ = al.locate(t, "emi")  # type: ignore[misc]
        assert vincenty_distance_m(lat, lon, *ground_under(0.05 * t, 30.0, 0.3)) < 0.1


def test_default_antenna_gives_exactly_the_interpolated_fix() -> None:
    fixes = walk(30.0)
    al = aligner_with(fixes, antenna_m=(0.0, 0.0))
    track = al.gps
    for t in (0.0, 1.3, 2.1, 7.8, 7.9):
        k = int(np.searchsorted([f.host_time_s for f in fixes], t, side="right")) - 1
        b, a = fixes[k], fixes[min(k + 1, len(fixes) - 1)]
        span = a.host_time_s - b.host_time_s
        f = (t - b.host_time_s) / span if span > 0 else 0.0
        assert b.lat_deg is not None and a.lat_deg is not None
        assert b.lon_deg is not None and a.lon_deg is not None
        want = (b.lat_deg + f * (a.lat_deg - b.lat_deg), b.lon_deg + f * (a.lon_deg - b.lon_deg))
        assert al.locate(t, "gpr") == (*want, 0.02)
        assert al.locate(t, None) == track.locate(t) == (*want, 0.02)
    assert Aligner.from_cfg(compose([]).align).gps_antenna_m == (0.0, 0.0)


def test_unknown_heading_gives_the_antenna_with_a_wider_accuracy() -> None:
    lat0, lon0 = ground_under(0.0, 0.0, *ANTENNA_M)
    still = [
        GpsFix(float(t), lat0, lon0, quality=FixQuality.RTK_FIXED, h_acc_m=0.02)
        for t in np.arange(0.0, 5.0, 0.2)
    ]
    al = aligner_with(still)
    assert al.gps.heading_deg(2.0) is None
    lat, lon, acc = al.locate(2.0, "emi")  # type: ignore[misc]
    assert (lat, lon) == pytest.approx((lat0, lon0), abs=1e-12)
    assert acc == pytest.approx(0.02 + math.hypot(0.3 + 0.8, 0.2))
    # a single fix: no direction either
    one = aligner_with(still[:1])
    lat, lon, acc = one.locate(0.1, "gpr")  # type: ignore[misc]
    assert (lat, lon) == (lat0, lon0) and acc == pytest.approx(0.02 + math.hypot(0.8, 0.2))
    # no accuracy from the receiver: still unknown, never made up
    bare = aligner_with([GpsFix(0.0, lat0, lon0, quality=FixQuality.GPS)])
    assert bare.locate(0.0, "gpr") == (lat0, lon0, None)


def test_bad_antenna_offsets_are_one_line_config_errors() -> None:
    for override in (
        "align.gps_antenna_m=[0.1,0.2,0.3]",
        "align.gps_antenna_m=behind",
        "align.gps_antenna_m=[a,0.2]",
        "align.gps_antenna_m=[7,0]",
        "align.gps_antenna_m=null",
    ):
        with pytest.raises(ConfigError) as e:
            compose([override])
        msg = str(e.value)
        assert "align.gps_antenna_m" in msg and "\n" not in msg
    assert compose(["align.gps_antenna_m=[-0.8,0.2]"]).align.gps_antenna_m == [-0.8, 0.2]
    with pytest.raises(AlignError, match="gps_antenna_m"):
        Aligner(gps_antenna_m=(1.0, math.nan))
    with pytest.raises(AlignError, match="gps_antenna_m"):
        Aligner(gps_antenna_m=(1.0,))


def test_gps_track_alone_still_locates_the_antenna() -> None:
    track = GpsTrack()
    for f in walk(0.0):
        track.add(f)
    lat, lon, _ = track.locate(2.0)  # type: ignore[misc]
    assert vincenty_distance_m(lat, lon, *ground_under(1.0, 0.0, *ANTENNA_M)) < 1e-3


# ---------------------------------------------------------------------------- pipeline


class AntennaBehindHead(FakeHead):
    """FakeHead (walking north from LAT0, LON0) whose GPS antenna is at ANTENNA_M."""

    def _read(self, timeout_s: float) -> list[Any]:
        out = super()._read(timeout_s)
        return [self._move(x) if isinstance(x, GpsFix) else x for x in out]

    def _move(self, fix: GpsFix) -> GpsFix:
        if fix.lat_deg is None:
            return fix
        x_m = float(self.head_m(fix.host_time_s - 1000.0))
        head = vincenty_direct(LAT0, LON0, 0.0, x_m)
        lat, lon = vincenty_direct(*head, *body_to_geodesic(*ANTENNA_M, 0.0))
        return GpsFix(**{**fix.__dict__, "lat_deg": lat, "lon_deg": lon})


def run_head(*overrides: str, **kw: Any) -> Pipeline:
    cfg = compose([*INTERIM_HEAD, *overrides])
    clock = FakeClock()
    src = AntennaBehindHead(clock, targets_m=(1.5, 3.0, 4.5), emi_offset_m=0.3, **kw)
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        PlainDisplay(stream=io.StringIO()),
        None,
        source_info={"paced": False},
        clock=clock,
    )
    src.open()
    drive(pipe, src, None)
    close_out(pipe, None)
    return pipe


def miss_m(pipe: Pipeline) -> list[float]:
    """Distance of each alarm's lat/lon from the ground at its along-track position."""
    out = []
    for a in pipe.alarms:
        assert a.lat_deg is not None and a.lon_deg is not None
        out.append(
            vincenty_distance_m(
                a.lat_deg, a.lon_deg, *vincenty_direct(LAT0, LON0, 0.0, a.position_m)
            )
        )
    return out


def test_pipeline_alarms_land_on_the_ground_with_the_lever_arm_set() -> None:
    plain = run_head()
    fixed = run_head("align.gps_antenna_m=[-0.8,0.2]")
    assert len(plain.alarms) == len(fixed.alarms) == 3
    assert [a.position_m for a in plain.alarms] == [a.position_m for a in fixed.alarms]
    # without the lever arm every alarm is marked at the antenna, 0.82 m from the mine
    np.testing.assert_allclose(miss_m(plain), math.hypot(0.8, 0.2), atol=0.03)
    assert max(miss_m(fixed)) < 0.03
    for p, f in zip(plain.alarms, fixed.alarms, strict=True):
        assert p.lat_deg is not None and f.lat_deg is not None
        assert p.lon_deg is not None and f.lon_deg is not None
        assert vincenty_distance_m(p.lat_deg, p.lon_deg, f.lat_deg, f.lon_deg) == pytest.approx(
            math.hypot(0.8, 0.2), abs=0.005
        )
        assert f.lat_deg > p.lat_deg and f.lon_deg < p.lon_deg  # north, and west (left)
        assert f.h_acc_m == p.h_acc_m == 0.02


def test_pipeline_uses_the_offset_of_the_sensor_that_timed_the_window() -> None:
    # GPR unplugged over the middle target: that window's centre time is the EMI coil's,
    # taken when the coil (0.3 m ahead) was over the target and the head 0.3 m short of it
    pipe = run_head("align.gps_antenna_m=[-0.8,0.2]", gpr_off_s=(5.0, 7.0))
    middle = [a for a in pipe.alarms if abs(a.position_m - 3.0) < 0.1]
    assert len(middle) == 1
    assert max(miss_m(pipe)) < 0.03
