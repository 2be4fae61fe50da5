"""Reference sensor head: payloads, odometer positions, commands, faults, pty and TCP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from detect.drivers import sensor_head as sh
from detect.drivers.emulate import Emulator, Faults, HeadEncoder, PtyLink, TcpLink
from detect.drivers.feed import SyntheticSettings, make_feed, synthetic
from detect.drivers.framing import encode_frame
from detect.drivers.sensor_head import SensorHeadSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detect.blocks import GprBlock, MdBlock, SensorState
from driver_contract import SourceContract, read_for, read_until


def _loop_source(**kw: Any) -> SensorHeadSource:
    src = SensorHeadSource("loop://", start_on_open=False, **kw)
    src.open()
    return src


def _write(src: SensorHeadSource, frames: list[bytes]) -> list[Any]:
    src.transport.write(b"".join(frames))
    return read_for(src, 0.05, 0.01)


def test_gpr_counts_times_scale_and_header_fields() -> None:
    src = _loop_source(odometer=False)
    counts = np.array([[0, 1, -1, 32767, -32768], [5, 4, 3, 2, 1]], dtype=np.int16)
    pays = sh.gpr_payloads(counts, dt_ns=0.1, t0_ns=2.5, scale=0.5, channel=3)
    items = _write(
        src, [encode_frame(sh.Msg.GPR_TRACE, i + 1, 1000 * i, p) for i, p in enumerate(pays)]
    )
    src.close()
    (b,) = items
    assert isinstance(b, GprBlock)
    np.testing.assert_array_equal(b.data, counts.astype(np.float32) * 0.5)
    assert (b.header.dt_ns, b.header.time_zero_ns, b.header.channel) == (pytest.approx(0.1), 2.5, 3)
    assert list(b.seq) == [1, 2]
    assert np.all(np.isnan(b.position_m))
    assert b.host_time_s[1] - b.host_time_s[0] == pytest.approx(1e-3)


def test_emi_readings_get_one_time_per_reading_at_the_device_rate() -> None:
    src = _loop_source(odometer=False, gate_times_s=[1e-5, 1e-4])
    vals = np.arange(20, dtype=np.float32).reshape(10, 2)
    f = encode_frame(sh.Msg.EMI_READINGS, 1, 2_000_000, sh.emi_payload(vals, 1000.0))
    (b,) = _write(src, [f])
    src.close()
    assert isinstance(b, MdBlock)
    np.testing.assert_array_equal(b.data, vals)
    np.testing.assert_allclose(np.diff(b.host_time_s), 1e-3)
    assert b.header.gate_times_s == (1e-5, 1e-4)
    assert list(b.seq) == list(range(2000, 2010))


def test_positions_interpolated_from_odometer_by_device_time() -> None:
    src = _loop_source(metres_per_tick=0.002, max_hold_s=10.0)
    trace = sh.gpr_payloads(np.zeros((1, 4), np.int16), 0.1, 0.0, 1.0)[0]
    odo = sh.odometer_payload
    first = _write(
        src,
        [
            encode_frame(sh.Msg.ODOMETER, 1, 0, odo(0)),
            encode_frame(sh.Msg.ODOMETER, 2, 100_000, odo(50)),  # 0.1 m at 0.1 s
            encode_frame(sh.Msg.GPR_TRACE, 3, 25_000, trace),  # 0.025 m
            encode_frame(sh.Msg.GPR_TRACE, 4, 150_000, trace),  # after the last odometer: held
        ],
    )
    assert len(first) == 1 and first[0].position_m[0] == pytest.approx(0.025)
    second = _write(src, [encode_frame(sh.Msg.ODOMETER, 5, 200_000, odo(150))])  # 0.3 m
    src.close()
    assert len(second) == 1
    assert second[0].position_m[0] == pytest.approx(0.1 + 0.5 * 0.2)


def test_held_data_released_after_max_hold_without_odometer() -> None:
    src = _loop_source(max_hold_s=0.1)
    trace = sh.gpr_payloads(np.zeros((1, 4), np.int16), 0.1, 0.0, 1.0)[0]
    got = _write(
        src,
        [
            encode_frame(sh.Msg.ODOMETER, 1, 0, sh.odometer_payload(7)),
            encode_frame(sh.Msg.GPR_TRACE, 2, 50_000, trace),
        ],
    )
    got += read_for(src, 0.25, 0.02)
    src.close()
    assert len(got) == 1 and got[0].position_m[0] == pytest.approx(0.007)


def test_malformed_payload_with_valid_crc_is_a_corrupt_frame() -> None:
    src = _loop_source(odometer=False)
    good = sh.gpr_payloads(np.ones((1, 8), np.int16), 0.1, 0.0, 1.0)[0]
    items = _write(
        src,
        [
            encode_frame(sh.Msg.GPR_TRACE, 1, 0, good[:-3]),
            encode_frame(sh.Msg.EMI_READINGS, 2, 0, b"\x05\x00\x02"),
            encode_frame(sh.Msg.GPR_TRACE, 3, 10, good),
        ],
    )
    src.close()
    assert sum(b.n for b in items) == 1
    assert src.health["gpr"].counters.corrupt_frames == 1
    assert src.health["emi"].counters.corrupt_frames == 1


def test_device_status_fault_flag_turns_sensor_fault() -> None:
    src = _loop_source(odometer=False)
    trace = sh.gpr_payloads(np.zeros((1, 4), np.int16), 0.1, 0.0, 1.0)[0]
    _write(
        src,
        [
            encode_frame(sh.Msg.GPR_TRACE, 1, 0, trace),
            encode_frame(sh.Msg.STATUS, 2, 0, sh.status_payload(sh.StatusFlag.GPR_FAULT, 12, 30)),
        ],
    )
    src.poll_health()
    assert src.health["gpr"].state == SensorState.FAULT
    assert "device reports" in src.health["gpr"].reason
    src.close()


def test_commands_are_acknowledged_by_the_emulated_head() -> None:
    emu = Emulator(HeadEncoder(), TcpLink(), make_feed("synthetic", 5.0)).start()
    try:
        src = SensorHeadSource(emu.address)
        with src:
            bad = src.send_command(sh.Cmd.SET, {"warp": 9})
            good = src.send_command(sh.Cmd.SET, {"emi_per_frame": 20})
            read_until(src, lambda _: len(src.acks) >= 4, 3.0)
            acks = {a.token: a for a in src.acks}
            assert acks[bad].status == sh.AckStatus.BAD_PARAMETER
            assert acks[good].status == sh.AckStatus.OK
            assert src.device_info["serial"] == "EMU-0001"
    finally:
        emu.stop()


def _expected_traces() -> tuple[np.ndarray, float]:
    s = SyntheticSettings()
    blocks = [i for chunk in synthetic(s, 6.0) for i in chunk if isinstance(i, GprBlock)]
    data = np.concatenate([b.data for b in blocks])
    scale = HeadEncoder().scale
    return sh.to_counts(data, scale).astype(np.float32) * np.float32(
        scale
    ), s.speed_m_s / s.gpr_rate_hz


def test_faulty_line_never_lets_a_corrupted_trace_through() -> None:
    faults = Faults(corrupt_byte_rate=2e-5, drop_frame_rate=0.02, garbage_rate_hz=5.0, seed=3)
    emu = Emulator(HeadEncoder(), TcpLink(), make_feed("synthetic", 6.0), faults, speed=4.0)
    expected, step_m = _expected_traces()
    with emu:
        src = SensorHeadSource(emu.address)
        with src:
            items = read_for(src, 1.2)
    gpr = [b for b in items if isinstance(b, GprBlock)]
    assert gpr
    n_checked = 0
    for b in gpr:
        ok = np.isfinite(b.position_m)
        idx = np.rint(b.position_m[ok] / step_m).astype(int)
        np.testing.assert_allclose(b.position_m[ok], idx * step_m, atol=6e-4)
        np.testing.assert_array_equal(b.data[ok], expected[idx])
        n_checked += int(ok.sum())
    c = src.health["gpr"].counters
    assert n_checked > 200
    assert c.gaps > 0 and c.dropped_frames > 0
    assert c.garbage_bytes > 0
    assert c.crc_errors + c.truncated + c.resyncs > 0


class _HeadContract(SourceContract):
    expected_sensors = ("gpr", "emi")

    def make_source(self, device: Emulator, **kw: Any) -> SensorHeadSource:
        return SensorHeadSource(device.address, **kw)


class TestHeadOverPty(_HeadContract):
    def start_device(self) -> Emulator:
        import tempfile

        path = tempfile.mktemp(prefix="detect-head-", suffix=".pty")
        return Emulator(HeadEncoder(), PtyLink(path), make_feed("synthetic", 30.0)).start()


class TestHeadOverTcp(_HeadContract):
    def start_device(self) -> Emulator:
        return Emulator(HeadEncoder(), TcpLink(), make_feed("synthetic", 30.0)).start()


def _wait_for(pred: Callable[[], bool], limit_s: float) -> bool:
    end = time.monotonic() + limit_s
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_pty_link_path_disappears_when_unplugged_and_returns() -> None:
    import os
    import tempfile

    path = tempfile.mktemp(prefix="detect-head-", suffix=".pty")
    emu = Emulator(HeadEncoder(), PtyLink(path), make_feed("synthetic", 10.0)).start()
    try:
        assert os.path.islink(path)
        emu.unplug(1.5)
        assert _wait_for(lambda: not os.path.exists(path), 5.0), "path still there"
        assert _wait_for(lambda: os.path.islink(path), 5.0), "path did not come back"
    finally:
        emu.stop()
    assert not os.path.exists(path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3, 4, 5, 0x11, 0x10, 0x7F]),
            st.binary(max_size=90),
            st.binary(max_size=12),
        ),
        max_size=10,
    )
)
def test_fuzz_decoder_never_raises_and_accounts_every_byte(
    frames: list[tuple[int, bytes, bytes]],
) -> None:
    src = SensorHeadSource("loop://", start_on_open=False, max_hold_s=0.0)
    stream = b"".join(
        junk + encode_frame(t, i, 1000 * i, p) for i, (t, p, junk) in enumerate(frames)
    )
    for i in range(0, len(stream), 37):
        for item in src._decode(stream[i : i + 37], 1.0):
            assert isinstance(item, (GprBlock, MdBlock))
            assert np.all(np.isfinite(item.host_time_s))
    assert src.decode_failures == 0
    s = src.frames.stats
    assert s.bytes_in == s.frame_bytes + s.garbage_bytes + src.frames.pending
    assert s.frames == len(frames)
    g = src.health["gpr"].counters
    assert g.garbage_bytes == s.garbage_bytes
