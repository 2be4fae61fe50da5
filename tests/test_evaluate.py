"""`detect evaluate`: threshold sweeps on hand-made score profiles, and the task end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect import metrics as M
from detect.app.evaluate import evaluate_task
from detect.config import compose, models_dir, to_dict
from detect.errors import SettingsError, TaskError
from detect.evaluate import (
    LaneData,
    ScanOutput,
    alarms_at,
    evaluate_detector,
    run_evaluation,
    settings_from_cfg,
    simulated_lanes,
    sweep,
)
from detect.io.truth import read_truth_csv
from detect.model.card import read_card
from detect.windows import EDGE_CELLS

RULE = M.HaloRule(0.10, from_edge=False)


def bumps(x: np.ndarray, centres: list[float], heights: list[float]) -> np.ndarray:
    p = np.full(x.size, 0.02)
    for c, h in zip(centres, heights, strict=True):
        p = np.maximum(p, h * np.exp(-0.5 * ((x - c) / 0.04) ** 2))
    return p


def hand_lane(mines: list[float], clutter: list[float], length: float = 8.0) -> LaneData:
    truth = [
        {
            "id": f"m{i}",
            "class": "ap_mine",
            "kind": "PMN",
            "x_m": x,
            "depth_m": 0.05,
            "size_m": 0.1,
            "metal_mass_g": 0.5,
            "soil": "loam",
        }
        for i, x in enumerate(mines)
    ]
    truth += [
        {
            "id": f"c{i}",
            "class": "metal_clutter",
            "kind": "nail",
            "x_m": x,
            "depth_m": 0.02,
            "size_m": 0.05,
            "metal_mass_g": 3.0,
            "soil": "loam",
        }
        for i, x in enumerate(clutter)
    ]
    return LaneData("hand", [], [], truth, length, 0.5, "loam")


def scan(centres: list[float], heights: list[float], length: float = 8.0) -> ScanOutput:
    x = np.arange(0.0, length, 0.02)
    return ScanOutput(x, bumps(x, centres, heights), [], [])


def test_evaluation_declares_alarms_with_the_configured_split_fraction() -> None:
    """Two peaks 0.5 m apart with the score at 0.6 of the lower one between them: one
    alarm at split_fraction 0.5, two at 0.7 (evaluation uses the pipeline's setting)."""
    x = np.arange(0.0, 4.0, 0.01)
    p = np.maximum(bumps(x, [1.75, 2.25], [0.9, 0.8]), 0.48)
    sc = ScanOutput(x, p, [], [])
    assert alarms_at(sc, 0.3, 0.1, 0.2)[0].tolist() == pytest.approx([1.75])
    assert alarms_at(sc, 0.3, 0.1, 0.2, 0.7)[0].tolist() == pytest.approx([1.75, 2.25])


def test_alarm_logic_sweep_counts_by_hand() -> None:
    # mines at 2.0 (peak 0.9) and 6.0 (peak 0.6); a clutter nail at 4.0 (peak 0.7)
    lane = hand_lane([2.0, 6.0], [4.0])
    sc = scan([2.0, 4.0, 6.0], [0.9, 0.7, 0.6])
    x, c = alarms_at(sc, 0.8, 0.1, 0.25)
    assert x.tolist() == pytest.approx([2.0]) and c.tolist() == pytest.approx([0.9])
    curve, _ = sweep([lane], [sc], RULE, [0.95, 0.8, 0.65, 0.5], 0.1, 0.25, 0.95)
    assert curve["k"].tolist() == [0, 1, 1, 2]
    assert curve["n"] == 2
    assert curve["n_false_alarms"].tolist() == [0, 0, 1, 1]
    assert curve["far_m2"].tolist() == pytest.approx([0, 0, 1 / 4.0, 1 / 4.0])
    assert curve["far_m"].tolist() == pytest.approx([0, 0, 1 / 8.0, 1 / 8.0])


def test_operating_point_is_chosen_on_calibration_lanes() -> None:
    cfg = compose(
        ["evaluate.target_pd=0.3", "evaluate.n_thresholds=41", "evaluate.halo_from=centre"]
    )
    s = settings_from_cfg(cfg)
    # calibration: both mines need a threshold below 0.6; test: scores are all higher
    cal_lane, cal_scan = hand_lane([2.0, 6.0], []), scan([2.0, 6.0], [0.9, 0.6])
    test_lane, test_scan = hand_lane([2.0, 6.0], [4.0]), scan([2.0, 4.0, 6.0], [0.95, 0.5, 0.9])
    res = evaluate_detector(s, [test_lane], [test_scan], [cal_lane], [cal_scan])
    op = res["operating_point"]
    # CP lower bound: 1/2 -> 0.013 (< 0.3), 2/2 -> 0.158 (< 0.3): target not met, so the
    # threshold with the highest lower bound (2/2) is kept, the highest one that gives it
    assert not op["target_met"]
    assert op["calibration_pd_ci"][0] == pytest.approx(M.clopper_pearson(2, 2)[0])
    assert 0.5 < op["threshold"] <= 0.6
    at = res["at_operating_point"]
    assert at["pd"]["k"] == 2 and at["n_false_alarms"] == 0  # nail (0.5) is below threshold
    assert at["clutter_rejection"]["metal"]["k"] == 1
    assert res["windows"]["auc"] > 0.9


def test_truth_csv_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("id,class,kind,x_m,depth_m\na,ap_mine,PMN,1.5,0.05\nb,tank,T,2.0,0.1\n")
    with pytest.raises(SettingsError, match=r"t.csv:3: target b has class 'tank'"):
        read_truth_csv(p)
    p.write_text("id,class,kind,x_m\na,ap_mine,PMN,abc\n")
    with pytest.raises(SettingsError, match=r"x_m='abc', not a number"):
        read_truth_csv(p)


def test_unknown_detector_is_a_usage_error(tmp_path: Path) -> None:
    cfg = compose(["evaluate.detectors=[sonar]", f"output.dir={tmp_path}"])
    with pytest.raises(TaskError, match="unknown detector 'sonar'"):
        evaluate_task(cfg)


def test_evaluate_task_end_to_end_on_a_simulated_lane(tmp_path: Path) -> None:
    from detect.sim.lane import simulate_lane
    from detect.sim.settings import settings_from

    over = ["sim.lane_length_m=4.0", "sim.n_targets_min=3", "sim.n_targets_max=3"]
    cfg = compose(
        [
            *over,
            "evaluate.n_lanes=1",
            "evaluate.calibration_lanes=1",
            "evaluate.n_thresholds=9",
            "evaluate.detectors=[emi_threshold,fused]",
            f"output.dir={tmp_path}",
        ]
    )
    assert evaluate_task(cfg) == 0
    doc = json.loads((tmp_path / "metrics.json").read_text())
    truth = simulate_lane(int(cfg.evaluate.seed), settings_from(dict(cfg.sim)), 0).truth
    n_threats = sum(d["class"] in ("ap_mine", "at_mine", "uxo") for d in truth)
    r = doc["detectors"]["emi_threshold"]
    assert r["at_operating_point"]["pd"]["n"] == n_threats
    # FAR is counted over the strip the head interrogates (coil diameter 0.2 m), not the lane,
    # and over the scored length only: the lane ends (never window centres) are not covered
    op = r["at_operating_point"]
    assert op["area_m2"] == pytest.approx(0.2 * op["length_m"])
    assert 4.0 - 2 * 0.64 < op["length_m"] < 4.0
    # the 9 sweep points plus the configured alarm threshold (unless it is one of them)
    thr = r["froc"]["threshold"]
    assert len(thr) in (9, 10)
    assert min(abs(t - float(cfg.alarm.threshold)) for t in thr) < 1e-9
    # the shipped fused model is what was scored under its name (its weights, not a stand-in)
    assert "fused" not in doc["unavailable"]
    fused_model = doc["detectors"]["fused"]["model"]
    assert fused_model["name"] == "fused" and fused_model["calibrated"] is True
    assert fused_model["weights_sha256"] == read_card(models_dir() / "fused")["weights"]["sha256"]
    report = (tmp_path / "report.md").read_text()
    assert "emi_threshold" in report and "Pd" in report
    for png in ("froc.png", "roc_reliability.png", "example_lane.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_a_missing_model_is_reported_never_replaced(tmp_path: Path, monkeypatch) -> None:
    """With no shipped models, the model detectors are UNAVAILABLE with a reason; the
    baseline still runs; nothing else is scored under the model's name."""
    monkeypatch.setenv("DETECT_MODELS_DIR", str(tmp_path / "no-models"))
    cfg = compose(
        [
            "evaluate.n_thresholds=5",
            "sim.lane_length_m=3.0",
            "sim.n_targets_min=2",
            "sim.n_targets_max=2",
        ]
    )
    lanes = simulated_lanes(to_dict(cfg.sim), 7, 1)
    doc = run_evaluation(cfg, lanes, lanes, ["fused", "emi_threshold"])
    assert set(doc["unavailable"]) == {"fused"} and "not loadable" in doc["unavailable"]["fused"]
    assert set(doc["detectors"]) == {"emi_threshold"}


def test_recorded_session_lanes_with_truth(tmp_path: Path) -> None:
    from detect.io.session import SessionWriter
    from detect.sim.lane import simulate_lane

    sim = {"lane_length_m": 4.0, "n_targets_min": 2, "n_targets_max": 2}
    lanes_dir = tmp_path / "lanes"
    lanes_dir.mkdir()
    truths = []
    for i in range(2):
        lane = simulate_lane(5, sim, lane_index=i)
        truths.append(lane.truth)
        with SessionWriter(lanes_dir / f"lane{i}.h5", {"sim": sim}, {"lane_width_m": 0.8}) as w:
            w.write(lane.gpr)
            w.write(lane.emi)
            for fix in lane.gps:
                w.write(fix)
            w.write_truth(lane.truth)
    out = tmp_path / "out"
    cfg = compose(
        [
            f"evaluate.lanes={lanes_dir}",
            "evaluate.calibration_fraction=0.5",
            "evaluate.detectors=[emi_threshold]",
            "evaluate.n_thresholds=5",
            "evaluate.plots=false",
            f"output.dir={out}",
        ]
    )
    assert evaluate_task(cfg) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["lanes"]["test"]["n_lanes"] == 1 and doc["lanes"]["calibration"]["n_lanes"] == 1
    n_threats = sum(d["class"] in ("ap_mine", "at_mine", "uxo") for d in truths[1])
    r = doc["detectors"]["emi_threshold"]["at_operating_point"]
    assert r["pd"]["n"] == n_threats
    # swept width from the recording's info, length from the recorded positions
    assert r["area_m2"] == pytest.approx(0.8 * r["length_m"])
    assert 3.5 < r["length_m"] < 4.5


def test_recorded_lane_without_truth_is_a_usage_error(tmp_path: Path) -> None:
    from detect.io.session import SessionWriter
    from detect.sim.lane import simulate_lane

    lane = simulate_lane(5, {"lane_length_m": 3.0, "n_targets_min": 1, "n_targets_max": 1})
    with SessionWriter(tmp_path / "a.h5", {}, {}) as w:
        w.write(lane.emi)
    cfg = compose([f"evaluate.lanes={tmp_path}", "evaluate.detectors=[emi_threshold]"])
    with pytest.raises(TaskError, match="no ground truth"):
        evaluate_task(cfg)


def test_real_gpr_file_with_truth_csv(tmp_path: Path) -> None:
    """A real GSSI scan (rebar in a lab specimen, no mines) scored with a truth CSV."""
    from conftest import real_file
    from detect.io.formats import read_gpr

    src = real_file("dzt/charisma/Lab_specimen_data.DZT")
    lanes = tmp_path / "lanes"
    lanes.mkdir()
    (lanes / "lab.DZT").symlink_to(src)
    (lanes / "lab.truth.csv").write_text(
        "id,class,kind,x_m,depth_m,size_m\nr1,metal_clutter,rebar,0.5,0.05,0.02\n"
    )
    cfg = compose(
        [
            f"evaluate.lanes={lanes}",
            "evaluate.detectors=[gpr_energy_cfar]",
            "evaluate.swept_width_m=0.3",
            "evaluate.calibration_fraction=0",
            "evaluate.n_thresholds=5",
            "evaluate.plots=false",
            "input.trace_spacing_m=0.01",
            f"output.dir={tmp_path / 'out'}",
        ]
    )
    assert evaluate_task(cfg) == 0
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    r = doc["detectors"]["gpr_energy_cfar"]
    n_traces = read_gpr(src, None, 0.01).block.n
    # the scored length: the file's length less EDGE_CELLS cells at each end (the scan's ends
    # are scored with the validity mask up to there)
    scored_m = (n_traces - 1) * 0.01 - 2 * EDGE_CELLS * cfg.window.grid_m + cfg.window.grid_m
    assert r["at_alarm_threshold"]["length_m"] == pytest.approx(scored_m, rel=0.02)
    at = r["at_alarm_threshold"]
    assert at["pd"]["n"] == 0
    assert at["far_m2"] == pytest.approx(at["n_false_alarms"] / (0.3 * at["length_m"]))
    assert "no mines" in r["operating_point"]["chosen_on"]
