"""SPIDAR / NIC-500 SDK client against the emulated NIC: REST, split traces, gaps."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest
from detect.drivers.emulate import Faults
from detect.drivers.feed import SyntheticSettings, make_feed, synthetic
from detect.drivers.spidar import HEADER_SIZE, SpidarError, SpidarSource, header_dtype
from detect.drivers.spidar_emulator import SpidarEmulator
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.blocks import GprBlock
from driver_contract import SourceContract, read_for, read_until


def _source(emu: SpidarEmulator, **kw: Any) -> SpidarSource:
    return SpidarSource("127.0.0.1", http_port=emu.http_port, **kw)


class TestSpidarContract(SourceContract):
    expected_sensors = ("gpr",)

    def start_device(self) -> SpidarEmulator:
        return SpidarEmulator(make_feed("synthetic", 30.0)).start()

    def make_source(self, device: SpidarEmulator, **kw: Any) -> SpidarSource:
        return _source(device, **kw)


def _expected_mv(points: int) -> np.ndarray:
    rows = [
        b.data for c in synthetic(SyntheticSettings(), 6.0) for b in c if isinstance(b, GprBlock)
    ]
    return (np.concatenate(rows)[:, :points] * np.float32(1000.0)).astype(np.float32)


def test_traces_split_across_reads_arrive_whole_and_exact() -> None:
    emu = SpidarEmulator(make_feed("synthetic", 6.0), max_piece=7).start()
    try:
        with _source(emu, points_per_trace=150, time_sampling_interval_ps=50) as src:
            items = read_until(src, lambda it: sum(b.n for b in it) >= 40)
        assert emu.setup["gpr0"]["parameters"]["points_per_trace"] == 150
    finally:
        emu.stop()
    expected = _expected_mv(150)
    got = np.concatenate([b.data for b in items])
    assert got.shape[1] == 150
    for row in got:
        i = int(np.argmin(np.abs(expected - row).sum(axis=1)))
        np.testing.assert_array_equal(row, expected[i])
    b = items[0]
    assert b.header.dt_ns == pytest.approx(0.05)
    assert b.header.antenna_hz == pytest.approx(1e9)  # frequency_MHz from the setup reply
    assert b.header.time_zero_ns == pytest.approx(20 * 0.05)
    assert src.health["gpr"].counters.gaps == 0


def test_trace_number_gaps_are_counted_as_dropped_traces() -> None:
    emu = SpidarEmulator(
        make_feed("synthetic", 6.0), faults=Faults(drop_frame_rate=0.2, seed=1), speed=3.0
    ).start()
    try:
        with _source(emu) as src:
            items = read_for(src, 0.8)
    finally:
        emu.stop()
    tn = np.concatenate([b.seq for b in items])
    c = src.health["gpr"].counters
    assert tn.size > 30 and c.gaps > 0
    assert c.dropped_frames == (tn[-1] - tn[0] + 1) - tn.size


def test_longer_header_from_newer_firmware_is_skipped() -> None:
    src = SpidarSource("127.0.0.1", points_per_trace=4)
    rec = np.zeros(3, dtype=header_dtype(4, HEADER_SIZE + 8))
    rec["trace_number"] = [1, 2, 3]
    rec["header_size"] = HEADER_SIZE + 8
    rec["tv_sec"] = 100
    rec["data"] = np.arange(12, dtype=np.float32).reshape(3, 4)
    raw = rec.tobytes()
    src._buf += raw[:50]
    first = src._parse(1.0)
    src._buf += raw[50:]
    rest = src._parse(1.0)
    data = np.concatenate([b.data for b in first + rest])
    np.testing.assert_array_equal(data, np.arange(12).reshape(3, 4))


def test_client_only_talks_to_the_configured_host(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = SpidarEmulator(make_feed("synthetic", 3.0)).start()
    seen: list[tuple[str, int]] = []
    real = socket.create_connection

    def spy(addr: Any, *a: Any, **k: Any) -> socket.socket:
        seen.append(addr)
        return real(addr, *a, **k)

    monkeypatch.setattr(socket, "create_connection", spy)
    try:
        with _source(emu) as src:
            read_until(src, lambda it: len(it) > 0)
    finally:
        emu.stop()
    assert seen and all(h == "127.0.0.1" for h, _ in seen)
    assert ("PUT", "/api/nic/acquisition") in emu.requests
    with pytest.raises(ValueError, match="host"):
        SpidarSource("")


def test_rest_error_status_is_one_line_source_error() -> None:
    emu = SpidarEmulator(make_feed("synthetic", 3.0)).start()
    try:
        src = _source(emu, power_on=False, reconnect=False)
        with pytest.raises(SpidarError, match="4001"):
            src.open()
    finally:
        emu.stop()


@settings(max_examples=120, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_fuzz_trace_parser_raises_only_source_errors(chunks: list[bytes]) -> None:
    src = SpidarSource("127.0.0.1", points_per_trace=8)
    total = 0
    for c in chunks:
        src._buf += c
        try:
            for b in src._parse(0.0):
                assert b.data.shape[1] == 8
                total += b.n
        except SpidarError:
            assert src.health["gpr"].counters.corrupt_frames > 0
            return
    assert src.health["gpr"].counters.frames == total
