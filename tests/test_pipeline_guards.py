"""Operator-facing guards: a recording is never overwritten, coverage sensors must exist,
blind time is said out loud."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detect.blocks import SensorState
from detect.cli import main
from detect.coverage import CoverageTracker
from detect.errors import EXIT_NOT_COVERED
from detect.sinks.display import summary_lines


def test_an_existing_recording_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "session.h5").write_bytes(b"earlier session")
    rc = main(["run", f"run.out_dir={tmp_path}", "run.display=false", "run.duration_s=1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "already holds a session.h5" in err
    assert (tmp_path / "session.h5").read_bytes() == b"earlier session"


@pytest.mark.parametrize("value", ["[GPR]", "[]"])
def test_needed_sensors_must_be_delivered(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["run", f"run.needed_sensors={value}", "run.record=false", "run.display=false",
         "run.duration_s=1"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "run.needed_sensors" in err


def test_a_frozen_position_with_a_sensor_down_is_blind_time() -> None:
    cov = CoverageTracker(("gpr",))
    cov.update(1.0, {"gpr": SensorState.OK}, 0.0)
    for k in range(1, 6):  # the odometer froze with the head: 1 s at 1.0 m, GPR in FAULT
        cov.update(1.0, {"gpr": SensorState.FAULT}, 0.2 * k)
    assert cov.blind_s == pytest.approx(0.8)  # the first turn still had the GPR OK
    assert any(line.startswith("BLIND: 0.8 s") for line in summary_lines({"blind_s": 0.8}))


def test_a_source_that_cannot_open_is_one_line_and_leaves_no_empty_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    port = tmp_path / "no-such-port"
    args = ["run", "source=sensor_head", f"source.url={port}", f"run.out_dir={out}",
            "run.display=false"]  # fmt: skip
    for _ in range(2):  # the same command again: the same error, not "already holds"
        rc = main(args)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "cannot open source" in err and str(port) in err
        assert not (out / "session.h5").exists()  # a recording that holds nothing is not left


def test_distance_walked_goes_on_while_one_sensor_is_down() -> None:
    cov = CoverageTracker(("gpr", "emi"))
    cov.head_passed(np.linspace(0.0, 1.0, 101), "gpr")  # then the GPR stops
    for k in range(3):
        cov.head_passed(np.linspace(k, k + 1.0, 101), "emi")
    assert cov.distance_m == pytest.approx(3.0)


def test_a_sensor_that_never_delivers_is_a_fault_and_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(
        ["run", "run.duration_s=2", "run.record=false", "run.display=false",
         "source.fault_gpr_after_s=0", "source.fault_gpr_for_s=30"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == EXIT_NOT_COVERED  # completed, but ground was not covered
    assert "sensor faults 1" in out and "NO DATA from gpr during the whole run" in out
    assert "exit status 4: GROUND NOT COVERED: no data from gpr" in out
