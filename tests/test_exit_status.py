"""Exit status says what happened (README "Exit status", detect.errors): 0 completed with
every needed sensor working, 4 ground not covered, 5 recording lost, 6 a replay/scan that
could not be processed; never "complete" for input that was not processed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import real_file
from detect.blocks import GprBlock, GprHeader
from detect.cli import main
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.errors import (
    EXIT_NOT_COVERED,
    EXIT_OK,
    EXIT_PROCESSING_FAILED,
    EXIT_RECORDING_LOST,
    TaskError,
)
from detect.io.segy import write_segy
from detect.model.scorers import ClassifierScorer
from detect.sinks.display import PlainDisplay
from detect.sinks.recorder import RecorderSink
from pipeline_fakes import FakeClock, FakeHead, FullDisk

QUIET = ("--fast", "run.display=false", "run.bell=false")
INTERIM = ("model.name=__none__", "model.allow_interim=true", "alarm.threshold=0.5",
           "alarm.hysteresis=0.1", "align.offsets_m.emi=0.3")  # fmt: skip


def run_fake(tmp: Path, recorder: Any = None, **kw: Any) -> dict:
    cfg = compose(["run.display=false", *INTERIM])
    clock = FakeClock()
    src = FakeHead(clock, targets_m=(1.5, 3.0, 4.5), **kw)
    pipe = build_pipeline(cfg, ("gpr", "emi"), PlainDisplay(stream=io.StringIO()), tmp,
                          source_info={"paced": False}, clock=clock)  # fmt: skip
    if recorder is not None:
        pipe.add_sink(recorder)
    src.open()
    drive(pipe, src, None)
    return close_out(pipe, tmp)


def test_a_healthy_run_exits_0_although_its_lane_ends_are_not_covered(tmp_path: Path) -> None:
    summary = run_fake(tmp_path)
    # half a window at each end (plus the EMI coil's lead) is never a window centre
    assert summary["not_covered_m"] > 0.9
    assert summary["exit_status"] == EXIT_OK, summary["exit_reason"]
    doc = json.loads((tmp_path / "alarms.json").read_text())
    assert doc["summary"]["exit_status"] == EXIT_OK


def test_a_sensor_fault_inside_the_lane_exits_4(tmp_path: Path) -> None:
    summary = run_fake(tmp_path, gpr_off_s=(4.0, 6.0))  # 1 m of GPR-less ground at 2-3 m
    assert summary["exit_status"] == EXIT_NOT_COVERED
    assert "gpr FAULT" in summary["exit_reason"] and "inside the lane" in summary["exit_reason"]


def test_a_recording_lost_to_a_full_disk_exits_5(tmp_path: Path) -> None:
    rec = RecorderSink(FullDisk(ok_writes=50), tmp_path / "s.h5")
    summary = run_fake(tmp_path, recorder=rec)
    assert summary["exit_status"] == EXIT_RECORDING_LOST
    assert "No space left" in summary["exit_reason"]


# --------------------------------------------------------------------- replay / scan failures


@pytest.fixture
def segy(tmp_path: Path) -> Path:
    """3 m of a simulated radar inside the shipped model's envelope (20 ns window, 1.5 GHz),
    one trace a centimetre, in a SEG-Y file."""
    from detect.sim.lane import simulate_lane

    lane = simulate_lane(1, {"lane_length_m": 3.0, "n_targets_min": 1, "n_targets_max": 1,
                             "odometer": {"enabled": False}})  # fmt: skip
    data = lane.gpr.data[::2][:300]
    hdr = GprHeader(dt_ns=lane.gpr.header.dt_ns, time_zero_ns=0.0, antenna_hz=1.5e9)
    p = tmp_path / "line.sgy"
    write_segy(p, GprBlock.build(data, hdr, position_m=0.01 * np.arange(data.shape[0])))
    return p


def _error_line(stderr: str) -> str:
    """The command's error: one line of its own (the log lines before it have a time stamp)."""
    mine = [ln for ln in stderr.splitlines() if ln.startswith("detect ")]
    assert len(mine) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return mine[0]


def _scorer_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def predict(self: Any, gpr: Any, emi: Any) -> Any:
        raise MemoryError("cannot allocate 17.2 GiB")

    monkeypatch.setattr(ClassifierScorer, "predict", predict)


def test_a_scan_whose_scorer_fails_is_a_failure_and_keeps_its_files(
    segy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scorer_out_of_memory(monkeypatch)
    out = tmp_path / "scan"
    with pytest.raises(TaskError) as e:
        from detect.app.scan import scan_task

        scan_task(compose([f"input.path={segy}", f"output.dir={out}"]))
    msg = str(e.value)
    assert e.value.exit_code == EXIT_PROCESSING_FAILED and "\n" not in msg
    assert "line.sgy" in msg and "MemoryError" in msg
    doc = json.loads((out / "alarms.json").read_text())
    assert doc["summary"]["exit_status"] == EXIT_PROCESSING_FAILED


def test_a_replay_whose_scorer_fails_is_one_line_and_not_complete(
    segy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _scorer_out_of_memory(monkeypatch)
    out = tmp_path / "replay"
    rc = main(["replay", str(segy), *QUIET, f"run.out_dir={out}"])
    cap = capsys.readouterr()
    err = _error_line(cap.err)
    assert rc == EXIT_PROCESSING_FAILED and "MemoryError" in err
    assert "exit status 6: PROCESSING FAILED" in cap.out
    doc = json.loads((out / "alarms.json").read_text())
    assert doc["summary"]["exit_status"] == EXIT_PROCESSING_FAILED
    assert doc["summary"]["failed"]


def test_a_replay_whose_source_fails_midway_is_a_failure(
    segy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from detect.sources.file import GprFileSource

    real_read = GprFileSource._read

    def read(self: Any, timeout_s: float) -> Any:
        if self._next_trace >= 128:
            raise MemoryError("reader ran out of memory")
        return real_read(self, timeout_s)

    monkeypatch.setattr(GprFileSource, "_read", read)
    rc = main(["replay", str(segy), *QUIET, f"run.out_dir={tmp_path / 'r'}"])
    err = _error_line(capsys.readouterr().err)
    assert rc == EXIT_PROCESSING_FAILED and "reader ran out of memory" in err


def test_a_replay_of_a_radar_outside_the_envelope_is_fault_and_not_covered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = real_file("dt1/rgpr_frenke/LINE00.DT1")  # 100 MHz, 400 ns: no mine model for it
    rc = main(["replay", str(f), *QUIET, f"run.out_dir={tmp_path}"])
    cap = capsys.readouterr()
    assert rc == EXIT_NOT_COVERED and "NO MINE MODEL FOR THIS RADAR" in cap.err + cap.out
    assert "complete" not in cap.out
    doc = json.loads((tmp_path / "alarms.json").read_text())
    assert doc["model"]["applied"] is False and not doc["alarms"]
