"""`detect run` on the simulator with an unplugged GPR, then replay and scan of its recording.

The three commands share one pipeline, so the score profile of the same ground must agree
(DSP and gridding are chunk-invariant), and the data gap must be reported as not covered by
all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# plain imports: if these modules stopped importing, the tests fail instead of skipping
import detect.io.session
import detect.sim.source  # noqa: F401
from detect.app.live import replay_task, run_task
from detect.app.scan import scan_task
from detect.blocks import SensorState
from detect.config import compose
from detect.errors import EXIT_NOT_COVERED


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live")
    cfg = compose(
        [
            "run.duration_s=5",
            "run.display=false",
            "run.bell=false",
            f"run.out_dir={out}",
            "source.fault_gpr_after_s=1.5",
            "source.fault_gpr_for_s=1.5",
        ]
    )
    assert run_task(cfg) == EXIT_NOT_COVERED  # completed, with ground not covered
    return out


def _gap(path: Path) -> tuple[float, float, float, float]:
    from detect.io.session import SessionReader

    with SessionReader(path) as rd:
        g = rd.gpr()
    assert g is not None
    k = int(np.argmax(np.diff(g.host_time_s)))
    return (
        float(g.position_m[k]),
        float(g.position_m[k + 1]),
        float(g.host_time_s[k]),
        float(g.host_time_s[k + 1]),
    )


def test_live_run_records_fault_coverage_and_recovery(live_run: Path) -> None:
    from detect.io.session import SessionReader

    x0, x1, t0, t1 = _gap(live_run / "session.h5")
    assert t1 - t0 > 1.0  # the injected 1.5 s outage is in the recording
    with SessionReader(live_run / "session.h5") as rd:
        health = [e for e in rd.health() if e.sensor == "gpr"]
    fault = next(e for e in health if e.state == SensorState.FAULT and e.host_time_s > t0)
    # the configured stall timeout plus loop turns; not a timing test (the machine is shared):
    # the deterministic FAULT-latency check is in test_pipeline_faults on a fake clock
    stall_s = float(compose([]).source.stall_timeout_s)
    assert stall_s <= fault.host_time_s - t0 <= stall_s + 2.0
    assert any(e.state == SensorState.OK and e.host_time_s >= t1 for e in health)
    doc = json.loads((live_run / "alarms.json").read_text())
    nc = [s for s in doc["coverage"] if s["status"] == "not_covered"]
    assert any(s["start_m"] <= x0 + 0.01 and s["end_m"] >= x1 - 0.01 for s in nc)
    # the outage lacks the GPR; the lane ends (never window centres) may lack either sensor
    assert any("gpr" in s["missing"] and s["start_m"] <= x0 + 0.01 for s in nc)
    for name in ("alarms.geojson", "alarms.csv", "alarms.jsonl"):
        assert (live_run / name).exists()


def test_replay_and_scan_give_the_live_score_profile(live_run: Path, tmp_path: Path) -> None:
    session = live_run / "session.h5"
    scan_cfg = compose([f"input.path={session}", f"output.dir={tmp_path / 'scan'}"])
    assert scan_task(scan_cfg) == EXIT_NOT_COVERED  # the recording's gap is not covered
    rep_cfg = compose(
        [
            f"input.path={session}",
            "replay.speed=null",
            "run.display=false",
            "run.record=true",
            f"run.out_dir={tmp_path / 'replay'}",
        ]
    )
    assert replay_task(rep_cfg) == EXIT_NOT_COVERED
    assert (tmp_path / "scan" / "scan.png").stat().st_size > 10_000
    tracks = {}
    for name, d in (
        ("live", live_run),
        ("scan", tmp_path / "scan"),
        ("replay", tmp_path / "replay"),
    ):
        doc = json.loads((d / "alarms.json").read_text())
        tracks[name] = dict(zip(doc["track"]["position_m"], doc["track"]["p_mine"], strict=True))
        nc = [s for s in doc["coverage"] if s["status"] == "not_covered"]
        x0, x1, _, _ = _gap(session)
        assert any(s["start_m"] <= x0 + 0.01 and s["end_m"] >= x1 - 0.01 for s in nc), name
    for other in ("scan", "replay"):
        # from the first full window on: at the lane start the live run's first masked
        # windows differ from the recording's scan (left open; see the closing note of the
        # any-radar work): the live run leaves some unscored, never the reverse
        start_m = min(tracks["live"]) + 0.3
        common = sorted(x for x in set(tracks["live"]) & set(tracks[other]) if x >= start_m)
        assert len(common) > 50
        a = np.array([tracks["live"][x] for x in common], dtype=float)
        b = np.array([tracks[other][x] for x in common], dtype=float)
        both = np.isfinite(a) & np.isfinite(b)
        assert both.mean() > 0.9, other
        np.testing.assert_allclose(a[both], b[both], atol=2e-3, err_msg=other)
