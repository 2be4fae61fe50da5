"""`detect emulate`: the task, fault injection, and the encoders against independent parsers."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pynmea2
import pytest
from detect.drivers.emulate import FaultInjector, Faults, NmeaEncoder

from detect.app.emulate import emulate_task
from detect.blocks import FixQuality, GpsFix
from detect.config import ConfigError, compose
from detect.errors import EXIT_USAGE, TaskError


def test_emulate_task_prints_the_device_path_and_counters(capsys: Any, tmp_path: Any) -> None:
    link = tmp_path / "head"
    cfg = compose(["emulate.duration_s=0.4", f"emulate.link_path={link}"])
    assert emulate_task(cfg) == 0
    out = capsys.readouterr().out
    assert re.search(rf"sensor_head emulator on {link} -> /dev/pts/\d+", out)
    assert '"frames_sent"' in out
    assert not link.exists()


def test_emulate_task_tcp_binds_localhost(capsys: Any) -> None:
    assert (
        emulate_task(
            compose(["emulate.duration_s=0.3", "emulate.transport=tcp", "emulate.device=gps_ubx"])
        )
        == 0
    )
    assert re.search(r"gps_ubx emulator on socket://127\.0\.0\.1:\d+", capsys.readouterr().out)


def test_emulate_task_bad_input_is_one_line_usage_error() -> None:
    with pytest.raises(TaskError) as e:
        emulate_task(compose(["emulate.feed=session", "emulate.session_path=/nonexistent.h5"]))
    assert e.value.exit_code == EXIT_USAGE and "session_path" in str(e.value)
    with pytest.raises(ConfigError, match=r"emulate\.device"):
        compose(["emulate.device=toaster"])


def test_corruption_rate_and_count_match_the_bytes_actually_changed() -> None:
    inj = FaultInjector(Faults(corrupt_byte_rate=0.01, seed=5))
    data = bytes(200_000)
    out = np.frombuffer(inj.corrupt(data), np.uint8)
    changed = int(np.count_nonzero(out))
    assert changed == inj.counters.bytes_corrupted
    assert abs(changed - 2000) < 5 * np.sqrt(2000)


def test_garbage_bursts_follow_the_configured_rate() -> None:
    inj = FaultInjector(Faults(garbage_rate_hz=20.0, garbage_bytes=16, seed=2))
    total = sum(len(inj.garbage(0.01)) for _ in range(5000))  # 50 s
    assert total == inj.counters.garbage_bytes == 16 * inj.counters.garbage_bursts
    assert abs(inj.counters.garbage_bursts - 1000) < 5 * np.sqrt(1000)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="drop_frame_rate"):
        Faults(drop_frame_rate=1.5)


def test_nmea_encoder_output_parses_with_pynmea2() -> None:
    fix = GpsFix(
        host_time_s=0.0,
        lat_deg=-33.8568,
        lon_deg=151.2153,
        alt_m=12.5,
        quality=FixQuality.RTK_FLOAT,
        n_sats=17,
        hdop=0.8,
        h_acc_m=0.05,
        correction_age_s=2.0,
        utc_s=1_700_000_000.25,
        speed_m_s=1.0,
        course_deg=90.0,
    )
    ((_, raw, _),) = NmeaEncoder().encode(fix)
    assert isinstance(raw, bytes)
    msgs = {
        m.sentence_type: m
        for m in (pynmea2.parse(line, check=True) for line in raw.decode().split("\r\n") if line)
    }
    gga = msgs["GGA"]
    assert gga.latitude == pytest.approx(-33.8568, abs=1e-8)
    assert gga.longitude == pytest.approx(151.2153, abs=1e-8)
    assert int(gga.gps_qual) == 5 and float(gga.age_gps_data) == 2.0
    assert float(msgs["VTG"].spd_over_grnd_kmph) == pytest.approx(3.6)
    gst = msgs["GST"]
    assert np.hypot(float(gst.std_dev_latitude), float(gst.std_dev_longitude)) == pytest.approx(
        0.05, abs=2e-3
    )


def test_a_recording_fed_through_the_emulated_head_comes_back_exactly(tmp_path: Any) -> None:
    from detect.drivers import sensor_head as sh
    from detect.drivers.emulate import Emulator, HeadEncoder, TcpLink
    from detect.drivers.feed import make_feed

    from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader
    from detect.io.session import SessionWriter
    from driver_contract import read_until

    rng = np.random.default_rng(4)
    n_tr, n_rd = 60, 600
    t_tr = 100.0 + np.arange(n_tr) / 100.0
    t_rd = 100.0 + np.arange(n_rd) / 1000.0
    gpr = GprBlock.build(
        rng.normal(0, 0.5, (n_tr, 64)),
        GprHeader(dt_ns=0.1, antenna_hz=1e9),
        host_time_s=t_tr,
        position_m=(t_tr - 100.0) * 0.4,
    )
    gates = (1e-5, 1e-4, 1e-3)
    emi = MdBlock.build(
        rng.normal(0, 1, (n_rd, 3)),
        MdHeader(1000.0, ("a", "b", "c"), gate_times_s=gates),
        host_time_s=t_rd,
        position_m=(t_rd - 100.0) * 0.4,
    )
    path = tmp_path / "s.h5"
    with SessionWriter(path, {}, {}) as w:
        w.write(gpr)
        w.write(emi)
    enc = HeadEncoder()
    emu = Emulator(enc, TcpLink(), make_feed("session", session_path=str(path)), speed=2.0)
    with emu:
        src = sh.SensorHeadSource(emu.address, max_hold_s=0.5)
        with src:
            items = read_until(
                src, lambda it: sum(len(b) for b in it if isinstance(b, GprBlock)) >= n_tr - 5, 4.0
            )
            items += read_until(src, lambda it: False, 0.6)
    g = [b for b in items if isinstance(b, GprBlock)]
    m = [b for b in items if isinstance(b, MdBlock)]
    data = np.concatenate([b.data for b in g])
    pos = np.concatenate([b.position_m for b in g])
    k = np.rint(pos / 0.004).astype(int)  # 0.4 m/s x 10 ms per trace
    want = sh.to_counts(gpr.data, enc.scale).astype(np.float32) * np.float32(enc.scale)
    np.testing.assert_array_equal(data, want[k])
    np.testing.assert_allclose(pos, k * 0.004, atol=6e-4)
    emi_data = np.concatenate([b.data for b in m])
    np.testing.assert_array_equal(emi_data, emi.data[-emi_data.shape[0] :])
    assert m[-1].header.gate_times_s == gates  # from the head's INFO, taken from the recording


def _frames(units: list[Any], enc: Any) -> list[Any]:
    from detect.drivers.framing import FrameDecoder

    return FrameDecoder().feed(b"".join(enc.materialize(u[1]) for u in units))


def test_paced_faster_the_head_clock_stays_honest_and_clock_and_odometer_steps_apply() -> None:
    """At speed 2 the head stamps wall-clock device time (half the feed's) and reports
    twice the EMI sample rate, so the host sees one consistent, faster walk; a clock or
    odometer step changes every frame sent after it, by exactly the step."""
    from detect.drivers import sensor_head as sh
    from detect.drivers.emulate import Emulator, HeadEncoder, TcpLink

    from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader

    enc = HeadEncoder()
    emu = Emulator(enc, TcpLink(), iter([]), speed=2.0)  # never started: no thread, no port
    t = 10.0 + np.arange(4) / 100.0
    gpr = GprBlock.build(np.zeros((4, 32)), GprHeader(dt_ns=0.1), host_time_s=t, position_m=t / 2)
    t_emi = t[0] + np.arange(10) / 1000.0
    hdr = MdHeader(1000.0, ("a", "b", "c"))
    emi = MdBlock.build(np.zeros((10, 3)), hdr, host_time_s=t_emi, position_m=np.zeros(10))
    frames = _frames(enc.encode(gpr) + enc.encode(emi), enc)
    odo = [f for f in frames if f.msg_type == sh.Msg.ODOMETER]
    assert [f.time_us for f in odo] == [round(x * 1e6 / 2) for x in t]
    assert [sh.ODO.unpack(f.payload)[0] for f in odo] == [round(x / 2 / 0.001) for x in t]
    (emi_frame,) = [f for f in frames if f.msg_type == sh.Msg.EMI_READINGS]
    assert sh.EMI_HEAD.unpack_from(emi_frame.payload)[3] == 2000.0
    emu.clock_jump(-1.5)
    emu.position_jump(0.25)
    odo2 = [f for f in _frames(enc.encode(gpr), enc) if f.msg_type == sh.Msg.ODOMETER]
    assert [f.time_us for f in odo2] == [round(x * 1e6 / 2) - 1_500_000 for x in t]
    assert [sh.ODO.unpack(f.payload)[0] for f in odo2] == [round(x / 2 / 0.001) + 250 for x in t]
    assert emu.counters.clock_jumps == emu.counters.position_jumps == 1


def test_a_head_waiting_for_start_loses_no_lane_and_a_garbage_burst_reaches_the_host() -> None:
    from detect.drivers import sensor_head as sh
    from detect.drivers.emulate import Emulator, HeadEncoder, TcpLink
    from detect.drivers.feed import SyntheticSettings, synthetic

    from detect.blocks import GprBlock
    from driver_contract import read_until

    feed = synthetic(SyntheticSettings(gps_rate_hz=0.0), 3.0)
    emu = Emulator(HeadEncoder(auto_start=False), TcpLink(), feed, wait_for_start=True).start()
    try:
        time.sleep(0.3)  # nobody connected: the walk has not begun
        assert emu.started_at is None and emu.counters.frames_sent == 0
        emu.garbage_burst(300)
        with sh.SensorHeadSource(emu.address, max_hold_s=0.5) as src:  # sends START
            items = read_until(src, lambda it: any(isinstance(b, GprBlock) for b in it), 10.0)
            items += read_until(src, lambda it: False, 0.3)
            garbage = src.health["gpr"].counters.garbage_bytes
    finally:
        emu.stop()
    first = next(b for b in items if isinstance(b, GprBlock))
    assert float(first.position_m[0]) < 0.02  # from the lane's start
    assert emu.counters.garbage_bytes == 300 and garbage >= 300
