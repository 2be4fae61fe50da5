"""Coverage recorded as it becomes final, so a killed session keeps it (fake clock, fake crash).

A crash is simulated by copying the session file while its writer is still open: the copy
holds exactly what is on disk at that moment, which is what a SIGKILL or a power cut leaves.
The run then goes on to a clean close, and the end-of-run coverage of the tracker is the
reference (tests/test_pipeline_faults checks it against the physics of the fake head).
"""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from detect.app.info import info_task
from detect.app.scan import scan_task
from detect.blocks import SensorState
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out
from detect.engine.pipeline import Pipeline
from detect.errors import EXIT_NOT_COVERED
from detect.io.session import SessionReader, SessionWriter
from detect.sinks.display import PlainDisplay
from detect.sinks.recorder import RecorderSink
from detect.windows import EDGE_CELLS, window_spec_from_cfg
from pipeline_fakes import INTERIM_HEAD, FakeClock, FakeHead, walk_until

CFG = INTERIM_HEAD
GPR_OFF_S = (5.0, 7.0)  # head at 0.5 m/s: no GPR traces from 2.5 to 3.5 m
SPEED_M_S = 0.5
STEP_S = 0.05  # FakeHead's read step: one loop turn
CRASH_S = (2.0, 3.1, 4.4, 5.6, 6.3, 7.4, 8.6, 9.0, 10.3, 11.5)


def _pipeline(record_to: Path | None, **head: Any) -> tuple[Pipeline, FakeHead]:
    clock = FakeClock()
    src = FakeHead(clock, targets_m=(1.5, 3.0, 4.5), **head)
    pipe = build_pipeline(
        compose(list(CFG)),
        ("gpr", "emi"),
        PlainDisplay(stream=io.StringIO()),
        None,
        source_info={"paced": False},
        clock=clock,
    )
    if record_to is not None:
        writer = SessionWriter(record_to, clock=clock)  # flushes every 0.5 s of fake time
        pipe.add_sink(RecorderSink(writer, record_to))
    src.open()
    return pipe, src


def _rows(segments: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """The /coverage rows written for these segments: one per missing sensor."""
    return [
        (s["start_m"], s["end_m"], sensor)
        for s in segments
        if s["status"] == "not_covered"
        for sensor in s["missing"]
    ]


def _lag_bound_m() -> float:
    """How far the final coverage may trail the newest recorded head position.

    The newest scored window centre is the window's tail (n_pos - half cells) behind the
    newest *final* GPR cell, which is the cell below the newest trace (one cell, rounding
    included); the coverage is appended every ``coverage_record_every_s`` on loop turns
    (one read step), while the traces reach the file at every flush.
    """
    spec = window_spec_from_cfg(compose(list(CFG)))
    tail_m = (spec.n_pos - spec.half) * spec.grid_m
    take_s = Pipeline.coverage_record_every_s + STEP_S
    return tail_m + spec.grid_m + SPEED_M_S * take_s


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run with a GPR outage, its file copied at each crash time, then closed cleanly."""
    tmp = tmp_path_factory.mktemp("live")
    path = tmp / "session.h5"
    pipe, src = _pipeline(path, gpr_off_s=GPR_OFF_S)
    copies = {}
    for t in CRASH_S:
        walk_until(pipe, src, t)
        copies[t] = tmp / f"killed-{t}.h5"
        shutil.copy(path, copies[t])
    walk_until(pipe, src, src.duration_s)
    close_out(pipe, None)
    return {"pipe": pipe, "path": path, "copies": copies, "tmp": tmp}


def _record(path: Path) -> tuple[Any, float]:
    """The coverage record and the newest recorded head position of a session file."""
    with SessionReader(path) as rd:
        rec = rd.coverage_record()
        head = [b.position_m[-1] for b in (rd.gpr(), rd.emi()) if b is not None]
    return rec, float(max(head))


def test_a_clean_close_records_the_tracker_end_of_run_coverage(crashed: dict[str, Any]) -> None:
    pipe = crashed["pipe"]
    with SessionReader(crashed["path"]) as rd:
        assert rd.closed_cleanly
        rec = rd.coverage_record()
    assert rec.state == "complete" and math.isinf(rec.recorded_to_m)
    got = [(r["start_m"], r["end_m"], r["sensor"]) for r in rec.rows]
    assert got == _rows(pipe.coverage.segments())
    assert not any(r["open"] for r in rec.rows)
    assert all(r["state"] == SensorState.FAULT and r["reason"] == "not covered" for r in rec.rows)
    # recording changes nothing: the same run without a recorder gives the same segments
    ref, src = _pipeline(None, gpr_off_s=GPR_OFF_S)
    walk_until(ref, src, src.duration_s)
    close_out(ref, None)
    assert pipe.coverage.segments() == ref.coverage.segments()
    gap = [s for s in ref.coverage.segments() if s["missing"] == ["gpr"] and s["start_m"] > 1.0]
    assert len(gap) == 1 and gap[0]["start_m"] < 2.5 and gap[0]["end_m"] > 3.5


@pytest.mark.parametrize("t_s", CRASH_S)
def test_a_killed_session_holds_coverage_to_near_its_last_flush(
    crashed: dict[str, Any], t_s: float
) -> None:
    rec, head_m = _record(crashed["copies"][t_s])
    final = _rows(crashed["pipe"].coverage.segments())
    assert rec.state == "partial"
    to_m = rec.recorded_to_m
    assert head_m - _lag_bound_m() <= to_m, (head_m, to_m)
    # never ahead of the rearmost needed sensor (the GPR, at the head reference)
    assert to_m <= head_m
    whole = [(r["start_m"], r["end_m"], r["sensor"]) for r in rec.rows if not r["open"]]
    assert whole == final[: len(whole)]  # written once, never contradicted
    for r in rec.rows:
        assert r["end_m"] <= to_m
        if r["open"]:  # the final part of a segment still open: inside one final row
            assert any(
                a <= r["start_m"] and r["end_m"] <= b and s == r["sensor"] for a, b, s in final
            ), r


def test_an_outage_shows_as_not_covered_in_the_killed_file(crashed: dict[str, Any]) -> None:
    during, _ = _record(crashed["copies"][6.3])  # the GPR has been out since 2.5 m
    (open_row,) = [r for r in during.rows if r["open"]]
    assert open_row["sensor"] == "gpr" and open_row["start_m"] < 2.5 < open_row["end_m"]
    after, _ = _record(crashed["copies"][9.0])  # the outage is over and final
    (gap,) = [r for r in after.rows if not r["open"] and r["start_m"] > 1.0]
    assert gap["sensor"] == "gpr" and gap["start_m"] < 2.5 and gap["end_m"] > 3.5


def test_scan_of_a_killed_session_recomputes_the_coverage(
    crashed: dict[str, Any], tmp_path: Path
) -> None:
    killed = crashed["copies"][9.0]
    rec, _ = _record(killed)
    cfg = compose([f"input.path={killed}", f"output.dir={tmp_path}", *CFG])
    assert scan_task(cfg) == EXIT_NOT_COVERED  # the GPR outage is in the data
    doc = json.loads((tmp_path / "alarms.json").read_text())
    scanned = _rows(doc["coverage"])
    assert max(b for _, b, _ in scanned) > rec.recorded_to_m  # from the data, past the record
    # below it the record and the scan agree to a grid cell where the data comes back; where
    # it stops, the scan (no health events, the data's end in hand) scores the windows up to
    # EDGE_CELLS before it with the validity mask, the live run stopped using the GPR a
    # window's far half earlier: the scan's gap is inside the record's, never outside it
    spec = window_spec_from_cfg(cfg)
    late_m = (spec.half - EDGE_CELLS) * spec.grid_m + 0.03
    for r in rec.rows:
        assert any(
            s == r["sensor"]
            and r["start_m"] - 0.03 <= a <= r["start_m"] + late_m
            and (b == pytest.approx(r["end_m"], abs=0.03) or r["open"])
            for a, b, s in scanned
        ), r


def test_detect_info_says_how_far_coverage_is_recorded(
    crashed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    killed = crashed["copies"][9.0]
    rec, _ = _record(killed)
    assert info_task(compose([f"input.path={killed}"])) == 0
    text = capsys.readouterr().out
    assert f"recorded to {rec.recorded_to_m:.2f} m only" in text and "UNKNOWN" in text
    assert info_task(compose([f"input.path={killed}", "info.json=true"])) == 0
    session = json.loads(capsys.readouterr().out)["session"]
    assert session["coverage_record"] == "partial"
    assert session["coverage_recorded_to_m"] == pytest.approx(rec.recorded_to_m)
    assert session["n_coverage_gaps"] == len(rec.rows)
    assert info_task(compose([f"input.path={crashed['path']}", "info.json=true"])) == 0
    session = json.loads(capsys.readouterr().out)["session"]
    assert session["coverage_record"] == "complete"
    assert session["coverage_recorded_to_m"] is None


def test_a_torn_last_mark_falls_back_to_the_one_before(tmp_path: Path) -> None:
    path, killed = tmp_path / "session.h5", tmp_path / "killed.h5"
    w = SessionWriter(path)
    w.write_coverage(1.0, 2.0, SensorState.FAULT, "not covered", "gpr")
    w.write_coverage_final(3.0, 2.5, ["gpr"], host_time_s=7.0)
    good = w._f["coverage_final"][0]
    bad = good.copy()
    bad["n_rows"], bad["final_to_m"] = 5, 9.0  # points past the rows a kill left
    w._write_row("coverage_final", np.array([bad]))
    w._f["coverage_final"].resize((3,))  # resized, never written: the fill value
    w.flush()
    shutil.copy(path, killed)  # the crash
    w.close()
    with SessionReader(killed) as rd:
        rec = rd.coverage_record()
    assert rec.state == "partial" and rec.recorded_to_m == 3.0
    got = [(r["start_m"], r["end_m"], r["sensor"], r["open"]) for r in rec.rows]
    assert got == [(1.0, 2.0, "gpr", False), (2.5, 3.0, "gpr", True)]


def test_files_without_marks_are_complete_only_when_closed(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.h5"
    with SessionWriter(legacy) as w:
        w.write_coverage(1.0, 2.0, SensorState.FAULT, "not covered", "gpr")
    with h5py.File(legacy, "r+") as f:
        del f["coverage_final"]  # as written before the table existed
    with SessionReader(legacy) as rd:
        rec = rd.coverage_record()
    assert rec.state == "complete" and [r["sensor"] for r in rec.rows] == ["gpr"]
    recorded = tmp_path / "record.h5"  # `detect record`: data only, no detection
    with SessionWriter(recorded):
        pass
    with SessionReader(recorded) as rd:
        rec = rd.coverage_record()
    assert rec.state == "none" and rec.rows == [] and "UNKNOWN" in rec.summary()


def test_recording_coverage_costs_work_on_the_open_ground_only() -> None:
    """Many gaps: each take works on the open intervals, not on every gap so far, and the
    segments handed out add up to what a tracker that never hands out any computes."""
    from detect.coverage import CoverageTracker

    cov, ref = CoverageTracker(("gpr",)), CoverageTracker(("gpr",))
    ok = {"gpr": SensorState.OK}
    written: list[dict[str, Any]] = []
    for k in range(400):
        x = 0.1 * k
        for tracker in (cov, ref):
            tracker.update(x, ok, float(k))
            if k % 10 != 5:  # a reading missing every metre: a not-covered stretch each
                tracker.add_data("gpr", np.array([x]), max_gap_m=0.15, footprint_m=0.05)
        final = cov.take_final(x - 0.5)
        if final is not None:
            written.extend(final.segments)
            open_intervals = sum(len(v) for v in (*cov._covered.values(), *cov._missed.values()))
            assert open_intervals <= 4
    written.extend(cov.take_rest().segments)
    assert written == cov.segments() == ref.segments()
    assert sum(s["status"] == "not_covered" for s in written) == 40


@pytest.mark.parametrize("take_midway", [False, True])
def test_backing_up_behind_the_final_line_is_never_clear(take_midway: bool) -> None:
    """Ground first passed behind the part already handed out (the operator backs up past
    the track's start with the GPR silent) is not covered, whether or not coverage was
    being recorded: recording must never change the answer."""
    from detect.coverage import CoverageTracker

    cov = CoverageTracker(["gpr"], {"gpr": 0.0})
    t = 0.0
    for x in np.arange(0, 501) * 0.01:  # forwards to 5 m with the GPR delivering
        cov.update(float(x), {"gpr": SensorState.OK}, t)
        cov.head_passed(np.array([x]), "gpr")
        cov.add_data("gpr", np.array([x]), max_gap_m=0.05)
        t += 0.01
    if take_midway:
        assert cov.take_final(4.0) is not None
    for x in 5.0 - np.arange(0, 601) * 0.01:  # back to -1 m, the GPR silent
        cov.update(float(x), {"gpr": SensorState.OK}, t)
        cov.head_passed(np.array([x]), "gpr")
        t += 0.01
    live = cov.not_covered("gpr")
    assert len(live) == 1 and live[0][0] == pytest.approx(-1.0) and live[0][1] < 0.0
    rest = cov.take_rest()
    assert any(seg["start_m"] == pytest.approx(-1.0) for seg in rest.segments)
    bad = [s for s in cov.segments() if s["status"] == "not_covered"]
    assert [(round(s["start_m"], 2), s["missing"]) for s in bad] == [(-1.0, ["gpr"])]
