"""`detect scan` on real instrument files (GPR only): outputs, track extent, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import real_file
from detect.app.scan import scan_task
from detect.config import compose
from detect.windows import EDGE_CELLS

#: score a radar outside the model's envelope anyway, with the warning
WARN = "model.input_check=warn"


def test_scan_of_a_gssi_file_covers_its_length(tmp_path: Path) -> None:
    f = real_file("dzt/charisma/Lab_specimen_data.DZT")  # 332 traces, 0.00846667 m/trace
    cfg = compose([f"input.path={f}", f"output.dir={tmp_path}"])
    assert scan_task(cfg) == 0
    doc = json.loads((tmp_path / "alarms.json").read_text())
    assert doc["model"]["applied"] is True and not doc["summary"]["model_warnings"]
    length_m = 331 * 0.00846667
    g = cfg.window.grid_m
    pos = doc["track"]["position_m"]
    # windows centred from EDGE_CELLS cells after the start to as many before the end (the
    # scan's ends scored with the validity mask, as trained)
    assert pos[0] == pytest.approx(EDGE_CELLS * g, abs=g)
    assert pos[-1] == pytest.approx(length_m - EDGE_CELLS * g, abs=2 * g)
    # covered: the ground scored as a window centre; the few cells at the ends are not
    assert doc["coverage"] == [
        {
            "start_m": pytest.approx(0.0, abs=0.011),
            "end_m": pytest.approx(pos[0] - g / 2, abs=1e-6),
            "status": "not_covered",
            "missing": ["gpr"],
            "epoch": 0,
        },
        {
            "start_m": pytest.approx(pos[0] - g / 2, abs=1e-6),
            "end_m": pytest.approx(pos[-1] + g / 2, abs=1e-6),
            "status": "covered",
            "missing": [],
            "epoch": 0,
        },
        {
            "start_m": pytest.approx(pos[-1] + g / 2, abs=1e-6),
            "end_m": pytest.approx(length_m, abs=0.011),
            "status": "not_covered",
            "missing": ["gpr"],
            "epoch": 0,
        },
    ]
    assert doc["source"]["format"] == "dzt" and "gpr" in doc["model"]["sensors"]
    assert (tmp_path / "scan.png").stat().st_size > 10_000
    gj = json.loads((tmp_path / "alarms.geojson").read_text())
    assert gj["type"] == "FeatureCollection"


def test_a_file_without_trace_spacing_assumes_the_walking_speed(tmp_path: Path) -> None:
    f = real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt")  # time-triggered, 15 scans/s
    assert scan_task(compose([f"input.path={f}", f"output.dir={tmp_path / 'a'}"])) == 0
    src = json.loads((tmp_path / "a" / "alarms.json").read_text())["source"]
    assert src["trace_spacing_m"] == pytest.approx(0.5 / 15)
    assert "walking speed 0.5 m/s" in src["trace_spacing_from"]
    cfg = compose([f"input.path={f}", f"output.dir={tmp_path / 'b'}", "input.trace_spacing_m=0.02",
                   WARN])  # fmt: skip
    assert scan_task(cfg) == 0
    doc = json.loads((tmp_path / "b" / "alarms.json").read_text())
    assert doc["source"]["trace_spacing_m"] == 0.02 and doc["track"]["position_m"]


def test_replay_of_a_gssi_file_scores_like_scan(tmp_path: Path) -> None:
    from detect.app.live import replay_task

    f = real_file("dzt/charisma/Lab_specimen_data.DZT")
    assert scan_task(compose([f"input.path={f}", f"output.dir={tmp_path / 's'}"])) == 0
    cfg = compose(
        [f"input.path={f}", "replay.speed=null", "run.display=false", "run.bell=false",
         f"run.out_dir={tmp_path / 'r'}"]
    )  # fmt: skip
    assert replay_task(cfg) == 0
    a = json.loads((tmp_path / "s" / "alarms.json").read_text())["track"]
    b = json.loads((tmp_path / "r" / "alarms.json").read_text())["track"]
    assert a["position_m"] == b["position_m"]
    assert a["p_mine"] == pytest.approx(b["p_mine"], abs=2e-3)


def test_a_radar_outside_the_envelope_is_not_scored_unless_asked(tmp_path: Path) -> None:
    """A 400 MHz profile: by default the mine model is not applied (exit 0, the verdict in
    alarms.json); with model.input_check=warn it is scored, with the warning kept."""
    f = real_file("dzt/gprpy/FILE____032.DZT")
    assert scan_task(compose([f"input.path={f}", f"output.dir={tmp_path / 'a'}"])) == 0
    doc = json.loads((tmp_path / "a" / "alarms.json").read_text())
    assert doc["model"]["applied"] is False and "spectrum peak" in doc["model"]["reason"]
    assert not doc["track"]["position_m"]
    assert scan_task(compose([f"input.path={f}", f"output.dir={tmp_path / 'b'}", WARN])) in (0, 4)
    doc = json.loads((tmp_path / "b" / "alarms.json").read_text())
    assert doc["model"]["applied"] is True and "OUTSIDE ITS ENVELOPE" in doc["model"]["reason"]
    assert doc["track"]["position_m"]
