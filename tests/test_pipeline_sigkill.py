"""SIGKILL during `detect run`: the session file is readable up to the last second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# plain imports: if these modules stopped importing, the tests fail instead of skipping
import detect.io.session
import detect.sim.source  # noqa: F401

#: how long `detect run` records before the kill (long enough to have scored some track)
KILL_AFTER_S = 5.0
#: lateness a busy shared machine may add to anything timed here
BUSY_MARGIN_S = 3.0


def _start_run(out: Path, stdout: int) -> subprocess.Popen[str]:
    """`detect run` on the simulator for up to 60 s, recording into ``out``."""
    return subprocess.Popen(
        [sys.executable, "-m", "detect.cli", "run", "run.duration_s=60", "run.display=false",
         f"run.out_dir={out}", "run.bell=false"],
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip


def test_sigkill_keeps_the_recording_readable_to_the_last_second(tmp_path: Path) -> None:
    from detect.io.session import SessionReader

    out = tmp_path / "run"
    proc = _start_run(out, subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while not (out / "alarms.jsonl").exists() or not (out / "session.h5").exists():
            assert proc.poll() is None, "detect run exited early"
            assert time.monotonic() < deadline, "no session file after 40 s"
            time.sleep(0.1)
        time.sleep(KILL_AFTER_S)
        deadline = time.monotonic() + 30  # a busy machine may not have scored any track yet
        while True:
            with SessionReader(out / "session.h5") as live:
                live.refresh()
                if live.coverage_record().state == "partial" or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        with SessionReader(out / "session.h5") as live:  # a second reader while it records
            live.refresh()
            seen = {"gpr": live.gpr(), "emi": live.emi()}
        kill_t = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with SessionReader(out / "session.h5") as rd:
        gpr = rd.gpr()
        emi = rd.emi()
        assert gpr is not None and emi is not None and gpr.n > 100
        assert not rd.closed_cleanly
        for name, blk in (("gpr", gpr), ("emi", emi)):
            before = seen[name]
            assert before is not None
            # everything another process could already read survives the kill, unchanged
            assert blk.n >= before.n
            np.testing.assert_array_equal(blk.host_time_s[: before.n], before.host_time_s)
            # and the file was current: host times are the monotonic clock read here. The
            # writer flushes every 0.5 s; the margin allows a busy shared machine, the exact
            # flush contract is tested on the writer itself (test_session_recording).
            assert kill_t - float(blk.host_time_s[-1]) <= BUSY_MARGIN_S, name
        coverage = rd.coverage_record()
    _coverage_reaches_near_the_head(coverage, gpr)


def _coverage_reaches_near_the_head(coverage: Any, gpr: Any) -> None:
    """Coverage is appended as it becomes final, so the killed file holds it up to the
    window's tail (+ one grid cell) behind the newest trace, plus the ground walked between
    the last append and the last flush: one append interval, with the busy-machine margin
    used above. The exact bound is checked on a fake clock in test_coverage_live."""
    from detect.config import compose
    from detect.engine.pipeline import Pipeline
    from detect.windows import window_spec_from_cfg

    spec = window_spec_from_cfg(compose([]))
    t, x = gpr.host_time_s, gpr.position_m
    lag_s = Pipeline.coverage_record_every_s + BUSY_MARGIN_S
    walked_m = float(x[-1] - np.interp(t[-1] - lag_s, t, x))
    bound_m = (spec.n_pos - spec.half) * spec.grid_m + spec.grid_m + walked_m
    assert coverage.state == "partial"
    assert x[-1] - bound_m <= coverage.recorded_to_m, (x[-1], bound_m, coverage.recorded_to_m)
    assert all(r["end_m"] <= coverage.recorded_to_m for r in coverage.rows)


def test_ctrl_c_stops_cleanly_with_summary_and_closed_files(tmp_path: Path) -> None:
    from detect.io.session import SessionReader

    out = tmp_path / "run"
    proc = _start_run(out, subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        while not (out / "alarms.jsonl").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "duration" in stdout and "not covered" in stdout
    for name in ("alarms.json", "alarms.geojson", "alarms.csv"):
        assert (out / name).exists()
    with SessionReader(out / "session.h5") as rd:
        assert rd.closed_cleanly


def _small_file_limit() -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_a_full_disk_stops_the_recording_loudly_and_alarming_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "detect.cli",
            "run",
            "run.duration_s=8",
            "run.display=false",
            f"run.out_dir={out}",
            "run.bell=false",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        preexec_fn=_small_file_limit,
    )
    assert "RECORDING STOPPED" in proc.stderr
    assert "recording: STOPPED" in proc.stdout
    doc = json.loads((out / "alarms.json").read_text())
    # scoring went on to the end of the run, well past the point the file hit the limit
    assert doc["summary"]["distance_m"] > 2.0
    assert doc["track"]["position_m"][-1] > doc["summary"]["distance_m"] - 1.0
    tiers = [a["tier"] for a in doc["alarms"]]  # every alarm and suspect counted is in the file
    assert doc["summary"]["n_alarms"] == tiers.count("alarm")
    assert doc["summary"].get("n_suspects", 0) == tiers.count("suspect")
    assert proc.returncode == 5, proc.stderr[-2000:]  # EXIT_RECORDING_LOST
