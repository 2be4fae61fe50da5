"""Line-ASCII EMI driver: PI-detector lines with # metadata, $value,signal records, regex."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from detect.drivers.ascii_emi import AsciiEmiParser, AsciiEmiSource
from detect.drivers.emulate import AsciiEmiEncoder, Emulator, PtyLink, TcpLink
from detect.drivers.feed import gate_times_s, make_feed
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.blocks import MdBlock
from driver_contract import SourceContract, read_until


def test_pi_lines_with_metadata() -> None:
    p = AsciiEmiParser("pi_lines")
    vals, t = p.feed(
        b"# rate_hz: 500\r\n# names: early, late\n# gates_us=10,100\n1.5,2.5\n3 ; 4\n\n-1e-3\t2E2\n"
    )
    np.testing.assert_array_equal(vals, [[1.5, 2.5], [3, 4], [-1e-3, 200.0]])
    assert t is None
    assert p.channels == ("early", "late")
    assert p.rate_hz(1000.0) == 500.0
    assert p.gate_times_s() == pytest.approx((1e-5, 1e-4))


def test_wrong_field_count_and_non_numbers_are_corrupt_lines() -> None:
    p = AsciiEmiParser("pi_lines")
    vals, _ = p.feed(b"1,2,3\n4,5\n1,2,x\nnan,1,2\n7,8,9\n")
    np.testing.assert_array_equal(vals, [[1, 2, 3], [7, 8, 9]])
    assert p.stats.corrupt == 3 and p.stats.lines == 2


def test_time_column_is_device_time_not_a_channel() -> None:
    p = AsciiEmiParser("pi_lines", time_field=0)
    vals, t = p.feed(b"1000,0.5,0.25\n2000,0.4,0.2\n")
    np.testing.assert_array_equal(t, [1000, 2000])
    np.testing.assert_array_equal(vals, [[0.5, 0.25], [0.4, 0.2]])


def test_magnetometer_records() -> None:
    p = AsciiEmiParser("magnetometer")
    vals, _ = p.feed(b"$512,1023\n$-3.5,7\nhello\n$1,2,3\n")
    np.testing.assert_array_equal(vals, [[512, 1023], [-3.5, 7]])
    assert p.channels == ("value", "signal") and p.stats.corrupt == 2


def test_custom_regex() -> None:
    p = AsciiEmiParser(regex=r"^X=(?P<x>\S+) Y=(?P<y>\S+)$")
    vals, _ = p.feed(b"X=1 Y=2\nX=3 Y=4\n")
    np.testing.assert_array_equal(vals, [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="named groups"):
        AsciiEmiParser(regex=r"(\d+)")
    with pytest.raises(ValueError, match="preset"):
        AsciiEmiParser("nope")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=8), st.sampled_from(["pi_lines", "magnetometer"]))
def test_fuzz_parser(chunks: list[bytes], preset: str) -> None:
    p = AsciiEmiParser(preset)
    for c in chunks:
        vals, _ = p.feed(c)
        assert vals.ndim == 2 and np.all(np.isfinite(vals))
    s = p.stats
    assert s.bytes_in == s.line_bytes + s.garbage_bytes + p.splitter.pending


class TestPiLinesOverPty(SourceContract):
    expected_sensors = ("emi",)

    def start_device(self) -> Emulator:
        import tempfile

        path = tempfile.mktemp(prefix="detect-emi-", suffix=".pty")
        return Emulator(AsciiEmiEncoder(), PtyLink(path), make_feed("synthetic", 30.0)).start()

    def make_source(self, device: Emulator, **kw: Any) -> AsciiEmiSource:
        return AsciiEmiSource(device.address, **kw)

    def test_metadata_reaches_the_header(self, device: Emulator) -> None:
        with self.make_source(device) as src:
            # metadata lines come once a second; readings before them have no gate times
            items = read_until(src, lambda it: bool(it) and it[-1].header.gate_times_s, 3.0)
        b = items[-1]
        assert isinstance(b, MdBlock)
        assert b.header.gate_times_s == pytest.approx(gate_times_s(8), rel=1e-5)
        assert b.header.sample_rate_hz == 1000.0 and b.header.channel_names[0] == "g0"
        # readings at 1 kHz: host times spaced by the rate within a block
        np.testing.assert_allclose(np.diff(b.host_time_s), 1e-3)


class TestMagnetometerOverTcp(SourceContract):
    expected_sensors = ("emi",)

    def start_device(self) -> Emulator:
        return Emulator(AsciiEmiEncoder(True), TcpLink(), make_feed("synthetic", 30.0)).start()

    def make_source(self, device: Emulator, **kw: Any) -> AsciiEmiSource:
        return AsciiEmiSource(device.address, preset="magnetometer", **kw)
