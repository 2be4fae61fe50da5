"""GPS drivers: NMEA (real GSSI DZG lines, textbook sentences), UBX NAV-PVT, interpolation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from detect.drivers.emulate import Emulator, NmeaEncoder, PtyLink, TcpLink, UbxEncoder
from detect.drivers.feed import make_feed
from detect.drivers.gps import (
    NmeaGpsSource,
    NmeaParser,
    UbxDecoder,
    UbxGpsSource,
    interpolate_fixes,
    nav_pvt_fix,
    ubx_checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import real_file
from detect.blocks import FixQuality, GpsFix
from driver_contract import SourceContract


def test_real_gssi_dzg_gga_without_fix_gives_no_position() -> None:
    raw = real_file("dzt/impdar/test_gssi.DZG").read_bytes()
    p = NmeaParser()
    fixes = p.feed(raw, 0.0)
    assert len(fixes) == raw.count(b"$GPGGA") > 0
    assert all(f.quality == FixQuality.NONE and f.lat_deg is None and not f.has_fix for f in fixes)
    assert all(f.n_sats == 0 for f in fixes)
    # hhmmss 000320, 000321, ... one per second
    assert [f.utc_s for f in fixes[:3]] == [200.0, 201.0, 202.0]
    assert p.stats.crc_errors == 0 and p.stats.ignored == raw.count(b"$GSSIS")


def test_textbook_sentences_merge_into_one_fix() -> None:
    p = NmeaParser()
    text = (
        b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
        b"$GPGST,123519,0.006,0.023,0.020,273.6,0.030,0.040,0.031*74\r\n"
        b"$GPGGA,123519,4807.038,N,01131.000,E,4,08,0.9,545.4,M,46.9,M,1.5,0031*6A\r\n"
    )
    (fix,) = p.feed(text, 10.0)
    assert fix.lat_deg == pytest.approx(48 + 7.038 / 60)
    assert fix.lon_deg == pytest.approx(11 + 31.0 / 60)
    assert fix.quality == FixQuality.RTK_FIXED and fix.n_sats == 8 and fix.hdop == 0.9
    assert fix.alt_m == 545.4 and fix.correction_age_s == 1.5
    assert fix.h_acc_m == pytest.approx(math.hypot(0.030, 0.040))
    assert fix.speed_m_s == pytest.approx(22.4 * 1852 / 3600)
    assert fix.course_deg == 84.4
    assert fix.utc_s == pytest.approx(764426119.0)  # 1994-03-23 12:35:19 UTC


def test_bad_checksum_and_garbage_are_counted_not_raised() -> None:
    p = NmeaParser()
    good = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
    bad = good.replace(b"545.4", b"545.5")
    fixes = p.feed(b"\x00\xff junk\n" + bad + good + b"$GPGGA,1,2\r\n", 0.0)
    assert len(fixes) == 1 and p.stats.crc_errors == 1
    assert p.stats.bytes_in == p.stats.line_bytes + p.stats.garbage_bytes + p.splitter.pending


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=8))
def test_fuzz_nmea_parser(chunks: list[bytes]) -> None:
    p = NmeaParser(require_checksum=False)
    for c in chunks:
        for f in p.feed(c, 0.0):
            assert isinstance(f, GpsFix)
    s = p.stats
    assert s.bytes_in == s.line_bytes + s.garbage_bytes + p.splitter.pending


def test_ubx_checksum_matches_pyubx2_and_nav_pvt_fields() -> None:
    from pyubx2 import GET, UBXMessage, UBXReader

    m = UBXMessage(
        "NAV",
        "NAV-PVT",
        GET,
        iTOW=1000,
        year=2026,
        month=3,
        day=2,
        hour=1,
        min=2,
        second=3,
        validDate=1,
        validTime=1,
        lat=47.5,
        lon=-122.3,
        hAcc=15,
        fixType=3,
        numSV=12,
        gnssFixOk=1,
        diffSoln=1,
        carrSoln=1,
        lastCorrectionAge=4,
        height=100000,
        gSpeed=500,
        headMot=45.0,
    )
    raw = m.serialize()
    assert ubx_checksum(raw[2:-2]) == raw[-2:]
    fix = nav_pvt_fix(UBXReader.parse(raw), 3.0)
    assert fix.quality == FixQuality.RTK_FLOAT and fix.h_acc_m == pytest.approx(0.015)
    assert fix.correction_age_s == 10.0  # code 4: 5..10 s, reported as the upper bound
    assert fix.alt_m == 100.0 and fix.speed_m_s == 0.5 and fix.n_sats == 12


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=150), max_size=8))
def test_fuzz_ubx_decoder_accounts_every_byte(chunks: list[bytes]) -> None:
    d = UbxDecoder()
    for c in chunks:
        d.feed(b"\xb5b" + c)
    s = d.stats
    assert s.bytes_in == s.frame_bytes + s.garbage_bytes + d.pending


def _fix(t: float, lat: float, lon: float, q: FixQuality = FixQuality.RTK_FIXED, acc: float = 0.02):
    return GpsFix(host_time_s=t, lat_deg=lat, lon_deg=lon, quality=q, h_acc_m=acc)


def test_interpolation_is_linear_and_refuses_gaps_and_extrapolation() -> None:
    fixes = [
        _fix(0.0, 10.0, 20.0),
        _fix(1.0, 10.001, 20.002, FixQuality.DGPS, 0.5),
        _fix(5.0, 10.005, 20.01),
        GpsFix(host_time_s=0.5, lat_deg=None, lon_deg=None),
    ]
    tr = interpolate_fixes(fixes, np.array([-0.1, 0.0, 0.25, 1.0, 3.0, 5.1]))
    np.testing.assert_allclose(tr.lat_deg[1:4], [10.0, 10.00025, 10.001])
    np.testing.assert_allclose(tr.lon_deg[1:4], [20.0, 20.0005, 20.002])
    assert np.isnan(tr.lat_deg[[0, 4, 5]]).all()  # before, inside a 4 s gap, after
    assert tr.h_acc_m[2] == 0.5 and tr.quality[2] == FixQuality.DGPS


def test_interpolation_across_the_antimeridian() -> None:
    tr = interpolate_fixes([_fix(0.0, 0.0, 179.9), _fix(1.0, 0.0, -179.9)], np.array([0.5]))
    assert abs(abs(tr.lon_deg[0]) - 180.0) < 1e-9


class TestNmeaOverPty(SourceContract):
    expected_sensors = ("gps",)

    def start_device(self) -> Emulator:
        import tempfile

        path = tempfile.mktemp(prefix="detect-gps-", suffix=".pty")
        return Emulator(NmeaEncoder(), PtyLink(path), make_feed("synthetic", 30.0)).start()

    def make_source(self, device: Emulator, **kw: Any) -> NmeaGpsSource:
        kw.setdefault("stall_timeout_s", 0.5)
        return NmeaGpsSource(device.address, **kw)


class TestUbxOverTcp(SourceContract):
    expected_sensors = ("gps",)

    def start_device(self) -> Emulator:
        return Emulator(UbxEncoder(), TcpLink(), make_feed("synthetic", 30.0)).start()

    def make_source(self, device: Emulator, **kw: Any) -> UbxGpsSource:
        kw.setdefault("stall_timeout_s", 0.5)
        return UbxGpsSource(device.address, **kw)

    def test_emulated_fixes_round_trip(self, device: Emulator) -> None:
        from driver_contract import read_until

        with self.make_source(device) as src:
            items = read_until(src, lambda it: len(it) >= 3)
        assert all(f.quality == FixQuality.RTK_FIXED for f in items)
        assert all(f.h_acc_m == pytest.approx(0.02) for f in items)
        lat = np.array([f.lat_deg for f in items])
        assert np.all(np.abs(lat - 45.0) < 1e-3)
