"""A missing or corrupt model is a refusal; the interim detector runs only when asked for,
and then every output says UNCALIBRATED and no alarm carries a mine class."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from detect.cli import main
from detect.config import compose, models_dir
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.errors import EXIT_UNAVAILABLE, ModelError, exit_code_of
from detect.model.scorers import load_scorer
from detect.sinks.display import PlainDisplay, summary_lines
from detect.windows import window_spec_from_cfg
from pipeline_fakes import FakeClock, FakeHead

TARGETS = (1.5, 3.0, 4.5)


def test_a_missing_model_is_a_one_line_refusal_that_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = main(["run", "model.name=no_such_model", f"run.out_dir={out}", "run.display=false",
               "run.duration_s=1"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_UNAVAILABLE and "\n" not in err
    assert "no_such_model" in err and "model.allow_interim=true" in err
    assert not out.exists()  # refused before any output directory or recording


def test_a_truncated_weights_file_is_a_refusal(tmp_path: Path) -> None:
    model = tmp_path / "fused"
    shutil.copytree(models_dir() / "fused", model)
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    cfg = compose([f"model.name={model}"])
    with pytest.raises(ModelError) as e:
        load_scorer(cfg, window_spec_from_cfg(cfg))
    assert exit_code_of(e.value) == EXIT_UNAVAILABLE and weights.name in str(e.value)
    # asked for: the interim detector, uncalibrated
    cfg = compose([f"model.name={model}", "model.allow_interim=true"])
    assert not load_scorer(cfg, window_spec_from_cfg(cfg)).calibrated


def test_the_interim_detector_says_uncalibrated_everywhere_and_names_no_class(
    tmp_path: Path,
) -> None:
    cfg = compose(
        ["run.display=false", "model.name=__none__", "model.allow_interim=true",
         "align.offsets_m.emi=0.3", "alarm.threshold=0.5", "alarm.hysteresis=0.1"]
    )  # fmt: skip
    clock = FakeClock()
    src = FakeHead(clock, targets_m=TARGETS)
    shown = io.StringIO()
    pipe = build_pipeline(cfg, ("gpr", "emi"), PlainDisplay(stream=shown), tmp_path,
                          source_info={"paced": False}, clock=clock)  # fmt: skip
    src.open()
    drive(pipe, src, None)
    summary = close_out(pipe, tmp_path)
    assert len(pipe.alarms) == len(TARGETS)  # the interim detector does alarm
    # display: each alarm line says UNCALIBRATED and names no class
    alarm_lines = [ln for ln in shown.getvalue().splitlines() if ln.startswith("ALARM")]
    assert len(alarm_lines) == len(TARGETS)
    assert all("UNCALIBRATED" in ln and "mine" not in ln for ln in alarm_lines)
    assert "UNCALIBRATED" in shown.getvalue().splitlines()[0]  # said once, loudly, at start
    # summary
    assert any("UNCALIBRATED" in ln for ln in summary_lines(summary))
    # alarms.json
    doc = json.loads((tmp_path / "alarms.json").read_text())
    assert "UNCALIBRATED" in doc["calibration"] and "UNCALIBRATED" in doc["model"]["name"]
    assert "UNCALIBRATED" in doc["summary"]["uncalibrated"]
    for a in doc["alarms"]:
        assert a["class"] is None and a["class_probs"] == {} and a["calibration"] == "UNCALIBRATED"
    # alarms.jsonl
    lines = [json.loads(ln) for ln in (tmp_path / "alarms.jsonl").read_text().splitlines()]
    assert len(lines) == len(TARGETS)
    assert all(a["class"] is None and a["calibration"] == "UNCALIBRATED" for a in lines)
    # alarms.csv
    rows = list(csv.DictReader((tmp_path / "alarms.csv").open()))
    assert len(rows) == len(TARGETS)
    assert all(r["class"] == "" and r["calibration"] == "UNCALIBRATED" for r in rows)
    # alarms.geojson
    gj = json.loads((tmp_path / "alarms.geojson").read_text())
    assert gj["properties"]["calibration"] == "UNCALIBRATED"
    for f in gj["features"]:
        assert f["properties"]["class"] is None
        assert f["properties"]["calibration"] == "UNCALIBRATED"
