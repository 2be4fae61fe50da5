"""The output directory belongs to one run: locked, never shared, default names never
collide, an unusable one is one line (exit 2)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detect.app.common import out_dir_lock as _out_dir
from detect.app.outdir import LOCK_NAME, lock_dir
from detect.cli import main
from detect.config import compose
from detect.engine.sinks import SinkSet
from detect.errors import EXIT_USAGE, TaskError
from detect.sinks.recorder import RecorderSink

RUN = ["run", "run.display=false", "run.bell=false", "run.duration_s=1"]


def _one_error_line(stderr: str) -> str:
    mine = [ln for ln in stderr.splitlines() if ln.startswith("detect ")]
    assert len(mine) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return mine[0]


def test_a_second_run_on_a_locked_out_dir_is_refused_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    # another run holds it (flock on its own open file: the same as another process)
    with lock_dir(out, "run.out_dir"):
        rc = main([*RUN, f"run.out_dir={out}"])
        err = _one_error_line(capsys.readouterr().err)
        assert rc == EXIT_USAGE and "in use by another detect run" in err
        assert f"pid {os.getpid()}" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    assert not (out / LOCK_NAME).exists()  # released with its holder
    with lock_dir(out, "run.out_dir") as again:  # and free again
        assert again.directory == out


def test_default_out_dirs_of_runs_started_in_the_same_second_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Frozen:
            return cls(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("detect.app.common.datetime", Frozen)
    cfg = compose([])
    with _out_dir(cfg, "run", "run") as a, _out_dir(cfg, "run", "run") as b:
        assert a.directory != b.directory
        assert a.directory.name == "run-20300102T030405Z"
        assert b.directory.name == "run-20300102T030405Z-2"
        assert a.directory.is_dir() and b.directory.is_dir()


def test_an_unusable_out_dir_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rc = main([*RUN, f"run.out_dir={blocker / 'run'}"])
    err = _one_error_line(capsys.readouterr().err)
    assert rc == EXIT_USAGE and "run.out_dir" in err and str(blocker) in err
    with pytest.raises(TaskError) as e:  # scan's output.dir the same way
        _out_dir(compose([f"output.dir={blocker}"]), "output", "scan-x")
    assert e.value.exit_code == EXIT_USAGE and "output.dir" in str(e.value)


def test_a_recorder_that_could_not_open_flushes_and_closes_quietly(tmp_path: Path) -> None:
    sinks = SinkSet()
    rec = sinks.add(RecorderSink(None, tmp_path / "session.h5", "cannot create"))
    assert isinstance(rec, RecorderSink) and rec.error == "cannot create"
    sinks.switch_off(rec, "cannot create")
    sinks.emit("flush")  # was: AttributeError 'NoneType' object has no attribute 'flush'
    sinks.emit("close")
    assert not rec.ok and sinks.errors == {"session.h5": "cannot create"}
