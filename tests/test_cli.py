"""The `detect` command: help, --cfg job, and the error paths (one line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detect.cli import COMMANDS, main

EXPECTED = {
    "run",
    "export",
    "export-gis",
    "replay",
    "scan",
    "plot",
    "record",
    "info",
    "convert",
    "simulate",
    "train",
    "evaluate",
    "devices",
    "emulate",
}


def test_all_commands_exist() -> None:
    assert set(COMMANDS) == EXPECTED


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out


@pytest.mark.parametrize("cmd", sorted(EXPECTED))
def test_command_help_lists_config_groups(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert "config groups" in out and "source" in out


def test_cfg_job_prints_composed_config_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "alarm.threshold=0.7", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "threshold: 0.7" in out and "kind: sim" in out


def test_unknown_key_exit_2_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope.key=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.key" in err


def test_out_of_range_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "alarm.threshold=7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "alarm.threshold" in err and "(0, 1]" in err  # 0 is refused too


@pytest.mark.parametrize("cmd", ["scan", "replay", "info"])
def test_missing_file_exit_2(cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.dzt"
    assert main([cmd, str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err


def test_console_script_runs_in_subprocess() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "detect.cli", "run", "bad_key=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "bad_key" in r.stderr


def test_command_whose_module_is_missing_says_not_available() -> None:
    from detect.cli import Command, _load_task
    from detect.errors import EXIT_UNAVAILABLE, TaskError

    with pytest.raises(TaskError) as e:
        _load_task("future", Command("detect.no_such_module:task", "x", 99))
    assert e.value.exit_code == EXIT_UNAVAILABLE
    assert "not available yet" in str(e.value) and "#99" in str(e.value)
