"""`detect scan` on real instrument files (GPR only): outputs, track extent, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import real_file
from detect.app.scan import scan_task
from detect.config import compose
from detect.errors import EXIT_USAGE, TaskError

#: these real files come from other radars than the one the shipped models were trained on
#: (an 8 ns, 1.5 GHz concrete scan; a 400 MHz profile): score them anyway, with the warning
WARN = "model.input_check=warn"


def test_scan_of_a_gssi_file_covers_its_length(tmp_path: Path) -> None:
    f = real_file("dzt/charisma/Lab_specimen_data.DZT")  # 332 traces, 0.00846667 m/trace
    cfg = compose([f"input.path={f}", f"output.dir={tmp_path}", WARN])
    assert scan_task(cfg) == 0
    doc = json.loads((tmp_path / "alarms.json").read_text())
    assert any("time window 8 ns" in w for w in doc["summary"]["model_warnings"])
    length_m = 331 * 0.00846667
    window = cfg.window
    pos = doc["track"]["position_m"]
    # windows centred from half a window after the start to half a window before the end
    assert pos[0] == pytest.approx(window.length_m / 2, abs=window.grid_m)
    assert pos[-1] == pytest.approx(length_m - window.length_m / 2, abs=2 * window.grid_m)
    # covered: the ground scored as a window centre; the half windows at the ends are not
    g = window.grid_m
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


def test_a_file_without_trace_spacing_needs_the_option(tmp_path: Path) -> None:
    f = real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt")
    with pytest.raises(TaskError) as e:
        scan_task(compose([f"input.path={f}", f"output.dir={tmp_path}", WARN]))
    assert e.value.exit_code == EXIT_USAGE and "--trace-spacing-m" in str(e.value)
    assert "\n" not in str(e.value)
    cfg = compose([f"input.path={f}", f"output.dir={tmp_path}", "input.trace_spacing_m=0.02", WARN])
    assert scan_task(cfg) == 0
    assert json.loads((tmp_path / "alarms.json").read_text())["track"]["position_m"]


def test_replay_of_a_gssi_file_scores_like_scan(tmp_path: Path) -> None:
    from detect.app.live import replay_task

    f = real_file("dzt/charisma/Lab_specimen_data.DZT")
    assert scan_task(compose([f"input.path={f}", f"output.dir={tmp_path / 's'}", WARN])) == 0
    cfg = compose(
        [f"input.path={f}", "replay.speed=null", "run.display=false", "run.bell=false",
         f"run.out_dir={tmp_path / 'r'}", WARN]
    )  # fmt: skip
    assert replay_task(cfg) == 0
    a = json.loads((tmp_path / "s" / "alarms.json").read_text())["track"]
    b = json.loads((tmp_path / "r" / "alarms.json").read_text())["track"]
    assert a["position_m"] == b["position_m"]
    assert a["p_mine"] == pytest.approx(b["p_mine"], abs=2e-3)


def test_a_radar_unlike_the_training_data_is_refused_by_default(tmp_path: Path) -> None:
    # the file's header: 512 samples over an 8 ns range; the shipped models: 20 ns at 1.5 GHz
    f = real_file("dzt/charisma/Lab_specimen_data.DZT")
    with pytest.raises(TaskError) as e:
        scan_task(compose([f"input.path={f}", f"output.dir={tmp_path}"]))
    msg = str(e.value)
    assert e.value.exit_code == EXIT_USAGE and "\n" not in msg
    assert "time window 8 ns (model: 20 ns)" in msg and "input_check=warn" in msg
