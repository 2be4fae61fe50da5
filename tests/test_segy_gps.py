"""SEG-Y keeps the GPS: DZT + DZG (and a session with GPS) -> ``detect convert`` -> SEG-Y ->
read gives back the fixes and the along-track positions; segyio, as an independent reader,
finds the coordinates in the standard trace-header fields with their scalar and units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segyio

from conftest import real_file
from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix
from detect.cli import main
from detect.io.dzt import write_dzt
from detect.io.formats import read_gpr
from detect.io.segy import write_segy

TOL_DEG = 1e-7
F = segyio.TraceField


def _gga(body: str) -> str:
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return f"${body}*{cs:02X}"


def _nmea(deg: float, width: int, pos: str, neg: str) -> tuple[str, str]:
    a = abs(deg)
    d = int(a)
    return f"{d:0{width}d}{(a - d) * 60:010.7f}", pos if deg >= 0 else neg


#: (scan, lat, lon, quality, alt): southern and western hemisphere, RTK and DGPS fixes.
FIXES = [
    (5, -12.3456789, -45.6789012, 4, 812.25),
    (17, -12.3456701, -45.6788899, 4, 812.5),
    (29, -12.3456612, -45.6788781, 2, 812.75),
    (52, -12.3456438, -45.6788547, 4, 813.0),
]


def _dzt_with_dzg(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    raw = (rng.normal(0, 300, (60, 1, 64)) + 32768).astype(np.uint16)
    write_dzt(folder / "g.DZT", raw, range_ns=16.0, sps=20.0, spm=10.0)
    lines = []
    for scan, lat, lon, q, alt in FIXES:
        la, ns = _nmea(lat, 2, "N", "S")
        lo, ew = _nmea(lon, 3, "E", "W")
        lines += [
            f"$GSSIS,{scan},-1",
            _gga(f"GPGGA,120000.00,{la},{ns},{lo},{ew},{q},12,0.7,{alt},M,47.0,M,1.0,0001"),
            "",
        ]
    lines += ["$GSSIS,58,-1", _gga("GPGGA,120009.00,,,,,0,00,,,M,,M,,")]  # no position
    (folder / "g.DZG").write_text("\n".join(lines) + "\n")
    return folder / "g.DZT"


def test_dzt_dzg_to_segy_keeps_fixes_and_positions(tmp_path: Path) -> None:
    src = _dzt_with_dzg(tmp_path)
    g = read_gpr(src)
    with_pos = [(f, t) for f, t in zip(g.gps, g.gps_trace, strict=True) if f.lat_deg is not None]
    assert len(with_pos) == len(FIXES)  # the reader's fixes are what we compare against
    out = tmp_path / "g.sgy"
    assert main(["convert", str(src), str(out)]) == 0

    back = read_gpr(out)
    assert len(back.gps) == len(FIXES)
    for (f, t), b, bt in zip(with_pos, back.gps, back.gps_trace, strict=True):
        assert abs(b.lat_deg - f.lat_deg) < TOL_DEG and abs(b.lon_deg - f.lon_deg) < TOL_DEG
        assert bt == t and b.quality == f.quality and b.alt_m == pytest.approx(f.alt_m, abs=1e-3)
        assert b.host_time_s == pytest.approx(f.host_time_s)  # scan / 20 scans per s
    np.testing.assert_allclose(back.block.position_m, g.block.position_m, atol=5e-4)
    assert back.trace_rate_hz == pytest.approx(20.0)

    # segyio as the independent reader: standard fields, scalar and units
    with segyio.open(str(out), "r", ignore_geometry=True) as f:
        units = f.attributes(F.CoordinateUnits)[:]
        scalar = f.attributes(F.SourceGroupScalar)[:]
        sx = f.attributes(F.SourceX)[:].astype(np.float64)
        sy = f.attributes(F.SourceY)[:].astype(np.float64)
        cdp_y = f.attributes(F.CDP_Y)[:]
    assert set(units.tolist()) == {2} and set(scalar.tolist()) == {-10000}  # arc-seconds
    lat = sy / 10000 / 3600
    lon = sx / 10000 / 3600
    first, last = FIXES[0][0], FIXES[-1][0]
    for scan, la, lo, *_ in FIXES:
        assert abs(lat[scan] - la) < TOL_DEG and abs(lon[scan] - lo) < TOL_DEG
    # every trace from the first to the last fix is located, linearly between fixes
    inside = np.arange(first, last + 1)
    want = np.interp(inside, [x[0] for x in FIXES], [x[1] for x in FIXES])
    assert np.max(np.abs(lat[inside] - want)) < TOL_DEG
    assert np.all(sx[:first] == 0) and np.all(sx[last + 1 :] == 0)  # no invented positions
    np.testing.assert_array_equal(cdp_y, sy.astype(cdp_y.dtype))


def test_session_with_gps_round_trip(tmp_path: Path) -> None:
    from detect.config import compose
    from detect.sim.lane import simulate_lane
    from detect.sim.settings import settings_from
    from detect.sim.task import write_lane

    s = settings_from({"lane_length_m": 3.0, "n_targets_max": 1, "n_targets_min": 0})
    lane = simulate_lane(0, s, lane_index=0)
    session = tmp_path / "lane.h5"
    write_lane(session, lane, dict(compose([]).sim), s)
    g = read_gpr(session)
    fixes = [f for f in g.gps if f.lat_deg is not None]
    assert len(fixes) > 10
    out = tmp_path / "lane.sgy"
    assert main(["convert", str(session), str(out)]) == 0
    back = read_gpr(out)
    # fixes within the traces' time span (all of them in a simulated lane) come back
    t = g.block.host_time_s
    inside = [f for f in fixes if t[0] <= f.host_time_s <= t[-1]]
    assert len(back.gps) == len(inside) > 10
    lat = np.array([f.lat_deg for f in inside])
    lon = np.array([f.lon_deg for f in inside])
    assert np.max(np.abs(np.array([b.lat_deg for b in back.gps]) - lat)) < TOL_DEG
    assert np.max(np.abs(np.array([b.lon_deg for b in back.gps]) - lon)) < TOL_DEG
    assert [b.quality for b in back.gps] == [f.quality for f in inside]
    # each fix sits on the trace nearest its time
    want = np.interp([f.host_time_s for f in inside], t, np.arange(t.size))
    assert np.max(np.abs(back.gps_trace - want)) <= 0.5
    np.testing.assert_allclose(back.block.position_m, g.block.position_m, atol=5e-4)


def _block(n: int) -> GprBlock:
    data = np.zeros((n, 8), dtype=np.float32)
    return GprBlock.build(
        data, GprHeader(dt_ns=0.1, antenna_hz=1e9), seq=np.arange(n),
        host_time_s=np.arange(n) / 10.0, position_m=np.arange(n) * 0.05,
    )  # fmt: skip


def test_high_latitude_uses_the_coarser_scalar(tmp_path: Path) -> None:
    """Beyond 59.6 deg arc-seconds x 1e4 overflow 32 bits: scalar -1000 (1e-3 arcsec)."""
    fixes = [
        GpsFix(0.0, 69.6491234, 18.9553217, quality=FixQuality.RTK_FIXED),
        GpsFix(1.0, 69.6491301, 18.9553388, quality=FixQuality.RTK_FIXED),
    ]
    out = tmp_path / "n.sgy"
    write_segy(out, _block(20), fixes=fixes, fix_trace=[0.0, 10.0])
    with segyio.open(str(out), "r", ignore_geometry=True) as f:
        assert set(f.attributes(F.SourceGroupScalar)[:].tolist()) == {-1000}
    back = read_gpr(out)
    half_step_deg = 0.5e-3 / 3600  # 1.4e-7 deg: the resolution of this scalar
    for f, b in zip(fixes, back.gps, strict=True):
        assert abs(b.lat_deg - f.lat_deg) <= half_step_deg
        assert abs(b.lon_deg - f.lon_deg) <= half_step_deg


def test_other_tools_degrees_give_one_fix_per_change(tmp_path: Path) -> None:
    """A file from elsewhere: decimal degrees (units 3), the last fix repeated on each trace."""
    n = 12
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 5, list(range(8)), n
    lat = np.repeat([45.1234, 45.1236, 45.1239], 4)
    with segyio.create(str(tmp_path / "o.sgy"), spec) as f:
        f.bin.update({segyio.BinField.Interval: 100, segyio.BinField.Format: 5})
        f.trace = np.zeros((n, 8), dtype=np.float32)
        for i in range(n):
            f.header[i] = {
                F.SourceGroupScalar: -10000, F.CoordinateUnits: 3,
                F.SourceX: round(18.5 * 1e4), F.SourceY: round(lat[i] * 1e4),
            }  # fmt: skip
    back = read_gpr(tmp_path / "o.sgy")
    assert back.gps_trace.tolist() == [0.0, 4.0, 8.0]
    assert [b.lat_deg for b in back.gps] == pytest.approx([45.1234, 45.1236, 45.1239])
    assert all(b.lon_deg == pytest.approx(18.5) for b in back.gps)


def test_no_gps_keeps_the_old_layout(tmp_path: Path) -> None:
    out = tmp_path / "p.sgy"
    write_segy(out, _block(5))
    with segyio.open(str(out), "r", ignore_geometry=True) as f:
        assert f.attributes(F.CDP_X)[:].tolist() == [0, 50, 100, 150, 200]  # mm
        assert set(f.attributes(F.SourceX)[:].tolist()) == {0}
    back = read_gpr(out)
    assert back.gps == [] and back.block.position_m.tolist() == pytest.approx(
        [0, 0.05, 0.1, 0.15, 0.2]
    )


def test_real_sir4000_sample_with_its_dzg(tmp_path: Path) -> None:
    """The GSSI sample with a DZG whose 14 GGA sentences hold no position: positions (from
    its DZX waypoints) survive the round trip, and no coordinate is invented."""
    src = real_file("dzt/impdar/test_gssi.DZT")
    g = read_gpr(src)
    assert g.gps and not any(f.has_fix for f in g.gps)
    out = tmp_path / "s.sgy"
    assert main(["convert", str(src), str(out)]) == 0
    back = read_gpr(out)
    np.testing.assert_allclose(back.block.position_m, g.block.position_m, atol=5e-4)
    np.testing.assert_array_equal(back.block.data, g.block.data)
    assert back.gps == []
    with segyio.open(str(out), "r", ignore_geometry=True) as f:
        assert not f.attributes(F.SourceX)[:].any() and not f.attributes(F.SourceY)[:].any()
