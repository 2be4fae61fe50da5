"""Session HDF5: round trip, SIGKILL mid-recording, SWMR reading while recording, write errors."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from detect.blocks import (
    Alarm,
    FixQuality,
    GprBlock,
    GprHeader,
    GpsFix,
    HealthEvent,
    MdBlock,
    MdHeader,
    SensorState,
)
from detect.io.session import RecordingError, SessionReader, SessionWriter

GPR_H = GprHeader(dt_ns=0.0390625, time_zero_ns=0.5, antenna_hz=1.5e9)
EMI_H = MdHeader(
    sample_rate_hz=1000.0,
    channel_names=tuple(f"gate{i}" for i in range(8)),
    gate_times_s=tuple(np.geomspace(1e-5, 1e-3, 8).tolist()),
)


def gpr_block(i: int, n: int = 10, ns: int = 512) -> GprBlock:
    """Block i of a deterministic stream: value = global trace index + sample / 1000."""
    k = np.arange(i * n, (i + 1) * n)
    data = k[:, None] + np.arange(ns)[None, :] / 1000.0
    return GprBlock.build(data, GPR_H, seq=k, host_time_s=k * 0.01, position_m=k * 0.005)


def emi_block(i: int, n: int = 100) -> MdBlock:
    k = np.arange(i * n, (i + 1) * n)
    data = np.sin(k[:, None] * 0.01 + np.arange(8)[None, :])
    return MdBlock.build(data, EMI_H, seq=k, host_time_s=k * 0.001, position_m=k * 0.0005)


def test_round_trip_every_kind(tmp_path) -> None:
    p = tmp_path / "s.h5"
    cfg = {"source": {"kind": "sim"}, "alarm": {"threshold": 0.5}}
    alarm = Alarm(
        "A1",
        1.25,
        0.87,
        "ap_mine",
        {"gpr": 0.7, "emi": 0.9},
        0.05,
        3.0,
        lat_deg=45.1,
        lon_deg=7.2,
        h_acc_m=0.02,
        class_probs={"ap_mine": 0.8},
    )
    fix = GpsFix(0.2, 45.0, 7.0, 300.0, FixQuality.RTK_FIXED, 14, 0.8, 0.02, 1.0, 3600.0)
    nofix = GpsFix(0.4, None, None)
    ev = HealthEvent(0.3, "emi", SensorState.DEGRADED, "3 CRC errors in 2 s", 0.15)
    truth = [
        {
            "id": "t1",
            "class": "ap_mine",
            "kind": "PMN-2",
            "x_m": 2.0,
            "y_m": 0.0,
            "depth_m": 0.05,
            "size_m": 0.12,
            "metal_mass_g": 1.0,
            "soil": "loam",
        }
    ]
    with SessionWriter(p, cfg, {"device": "sim"}) as w:
        w.write_truth(truth)
        for i in range(4):
            w.write(gpr_block(i))
            w.write(emi_block(i))
        for item in (fix, nofix, alarm, ev):
            w.write(item)
        w.write_coverage(0.1, 0.2, SensorState.FAULT, "gpr stalled", "gpr")
    with SessionReader(p) as r:
        assert r.closed_cleanly and r.config == cfg and r.info == {"device": "sim"}
        g = r.gpr()
        assert g is not None and g.header == GPR_H
        np.testing.assert_array_equal(g.data, np.concatenate([gpr_block(i).data for i in range(4)]))
        np.testing.assert_array_equal(g.seq, np.arange(40))
        np.testing.assert_allclose(g.position_m, np.arange(40) * 0.005)
        e = r.emi()
        assert e is not None and e.header == EMI_H
        np.testing.assert_array_equal(e.data, np.concatenate([emi_block(i).data for i in range(4)]))
        assert r.gps() == [fix, nofix]
        assert r.alarms() == [alarm]
        got = r.health()[0]
        assert (got.sensor, got.state, got.reason, got.position_m) == (
            "emi",
            ev.state,
            ev.reason,
            0.15,
        )
        cov = r.coverage()[0]
        assert (cov["start_m"], cov["end_m"], cov["state"], cov["reason"]) == (
            0.1,
            0.2,
            SensorState.FAULT,
            "gpr stalled",
        )
        assert r.truth() == truth
        items = list(r.iter_items())
    # block-wise replay: same blocks, host-time order (block starts 0, .1, .2 ...)
    kinds = [type(x).__name__ for x in items]
    assert (
        kinds.count("GprBlock") == 4 and kinds.count("MdBlock") == 4 and kinds.count("GpsFix") == 2
    )
    np.testing.assert_array_equal(items[0].data, gpr_block(0).data)
    starts = [x.host_time_s if isinstance(x, GpsFix) else x.host_time_s[0] for x in items]
    assert starts == sorted(starts)
    with h5py.File(p, "r") as f:  # the header is stored once, as attributes at close
        assert f["gpr"].attrs["dt_ns"] == 0.0390625 and f["gpr/headers"].shape == (1,)


def test_changed_header_starts_new_header_row(tmp_path) -> None:
    p = tmp_path / "h.h5"
    other = GprHeader(dt_ns=0.05, channel=1)
    with SessionWriter(p, {}, {}) as w:
        w.write(gpr_block(0))
        w.write(GprBlock.build(np.ones((3, 256)), other))
        w.write(gpr_block(1))
    with SessionReader(p) as r:
        assert r.gpr_headers() == [GPR_H, other]
        assert r.gpr().n == 20
        b1 = r.gpr(1)
        assert b1.header == other and b1.data.shape == (3, 256)


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_session_recording import gpr_block, emi_block
    from detect.io.session import SessionWriter
    w = SessionWriter({path!r}, {{}}, {{}}, flush_interval_s=0.05)
    last = -1
    for i in range(100000):
        w.write(gpr_block(i))
        w.write(emi_block(i))
        if w.flushed_rows["gpr"] != last:
            last = w.flushed_rows["gpr"]
            print(last, w.flushed_rows["emi"], flush=True)
        time.sleep(0.01)
    """
)


def test_sigkill_keeps_everything_up_to_last_flush(tmp_path) -> None:
    p = tmp_path / "killed.h5"
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(p))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    flushed: list[int] = []
    flushed_emi: list[int] = []
    live_rows: list[int] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(flushed) < 8 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            n_gpr, n_emi = line.split()
            flushed.append(int(n_gpr))
            flushed_emi.append(int(n_emi))
            if len(flushed) in (3, 6):  # another process reads while it records (SWMR)
                with SessionReader(p) as r:
                    r.refresh()
                    live_rows.append(r.gpr().n)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert len(flushed) >= 8, "the recorder did not report its flushes"
    assert len(live_rows) == 2 and live_rows[0] >= flushed[2] and live_rows[1] > live_rows[0]
    with SessionReader(p) as r:
        assert not r.closed_cleanly
        g = r.gpr()
        e = r.emi()
        assert g is not None and e is not None
        assert g.n >= flushed[-1]
        n_blocks = g.n // 10
        expect = np.concatenate([gpr_block(i).data for i in range(n_blocks)])
        np.testing.assert_array_equal(g.data[: n_blocks * 10], expect)
        np.testing.assert_array_equal(g.seq, np.arange(g.n))
        assert e.n >= flushed_emi[-1]
        replayed = [x for x in r.iter_items() if isinstance(x, GprBlock)]
        assert sum(b.n for b in replayed) >= flushed[-1]


def test_write_error_is_loud_once_and_keeps_flushed(tmp_path, monkeypatch) -> None:
    p = tmp_path / "full.h5"
    w = SessionWriter(p, {}, {})
    for i in range(3):
        w.write(gpr_block(i))
    w.flush()
    real_resize = h5py.Dataset.resize

    def disk_full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.Dataset, "resize", disk_full)
    with pytest.raises(RecordingError, match="No space left on device") as e:
        w.write(gpr_block(3))
    assert "full.h5" in str(e.value) and "gpr 30" in str(e.value)
    assert w.failed
    w.write(gpr_block(4))  # later calls are no-ops, never a second exception
    w.flush()
    w.close()
    monkeypatch.setattr(h5py.Dataset, "resize", real_resize)
    with SessionReader(p) as r:
        g = r.gpr()
        assert g is not None and g.n == 30
        np.testing.assert_array_equal(g.data, np.concatenate([gpr_block(i).data for i in range(3)]))


def test_unwritable_path_is_recording_error(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecordingError, match="cannot create session file"):
        SessionWriter(tmp_path / "file" / "s.h5", {}, {})


def test_flush_is_time_based(tmp_path) -> None:
    now = [0.0]
    w = SessionWriter(tmp_path / "t.h5", {}, {}, flush_interval_s=1.0, clock=lambda: now[0])
    w.write(gpr_block(0))
    assert w.flushed_rows["gpr"] == 0
    now[0] = 0.99
    w.write(gpr_block(1))
    assert w.flushed_rows["gpr"] == 0
    now[0] = 1.0
    w.write(gpr_block(2))
    assert w.flushed_rows["gpr"] == 30
    w.close()
    assert math.isfinite(SessionReader(tmp_path / "t.h5").attrs["start_host_time_s"])


FULL_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    sys.path.insert(0, {tests!r})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))
    from test_session_recording import gpr_block
    from detect.io.session import RecordingError, SessionWriter
    w = SessionWriter({path!r}, {{}}, {{}}, flush_interval_s=0.01)
    try:
        for i in range(10000):
            w.write(gpr_block(i))
    except RecordingError as exc:
        print(w.rows["gpr"], exc, flush=True)
    w.write(gpr_block(0))  # no-op after the stop
    w.close()
    """
)


@pytest.mark.skipif(not hasattr(os, "statvfs"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_file_size_limit_stops_cleanly_before_the_file_breaks(tmp_path) -> None:
    p = tmp_path / "limited.h5"
    code = FULL_CHILD.format(tests=str(Path(__file__).parent), path=str(p))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    rows, _, message = proc.stdout.strip().partition(" ")
    assert "file size limit of 1500000 bytes" in message and "limited.h5" in message
    assert p.stat().st_size <= 1_500_000
    with SessionReader(p) as r:
        assert r.closed_cleanly
        g = r.gpr()
        assert g is not None and g.n == int(rows) > 0
        n_blocks = g.n // 10
        np.testing.assert_array_equal(
            g.data, np.concatenate([gpr_block(i).data for i in range(n_blocks)])
        )


def test_an_over_long_sensor_list_is_shortened_not_fatal() -> None:
    import json

    from detect.io.session import _fit_json_list

    names = [f"sensor_{i:03d}" for i in range(40)]
    text = _fit_json_list(names, 256)
    items = json.loads(text)
    assert len(text.encode()) <= 256 and items[-1].startswith("+")
    assert items[:-1] == names[: len(items) - 1]
    assert int(items[-1].split()[0][1:]) == len(names) - (len(items) - 1)
    assert json.loads(_fit_json_list(["gpr", "emi"], 256)) == ["gpr", "emi"]
