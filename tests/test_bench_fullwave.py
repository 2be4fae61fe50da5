"""scripts/bench_fullwave.py: the full-wave benchmark's figures against hand counts.

The arithmetic (scene AUC, Pd in the halo, false alarms per metre) is checked on known runs,
and the scan path on the committed gprMax fixture with a scorer that emits a known score
track, so the expectations do not depend on a trained model's numbers.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from detect import metrics as M
from detect.blocks import CLASSES
from detect.model.prediction import Prediction
from detect.model.scorers import Scorer
from detect.windows import window_spec_from_cfg

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "data" / "fullwave"


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "bench_fullwave", REPO / "scripts/bench_fullwave.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_fullwave"] = mod
    spec.loader.exec_module(mod)
    return mod


B = _load_script()
RULE = M.HaloRule(halo_m=0.10, from_edge=True)
NOT_COVERED = [(0.0, 0.07), (0.47, 0.55)]  # covered: 0.07-0.47 m = 0.40 m


def _scene(name: str, objects: list[tuple[str, float, float]], kind: str, soil: str = "loam"):
    truth = [
        {"id": f"T{i}", "class": c, "kind": kind, "x_m": x, "size_m": size, "soil": soil}
        for i, (c, x, size) in enumerate(objects)
    ]
    return B.Scene(name, Path(f"{name}.h5"), truth, kind, soil)


def _run(name: str, alarms_m: list[float], peak: float, applied: bool = True):
    x = np.arange(0.08, 0.47, 0.02)
    p = np.full(x.size, 0.01) if applied else np.empty(0)
    if applied:
        p[0] = peak
    return B.Run(
        name, "test", applied, "", x if applied else np.empty(0), p,
        np.asarray(alarms_m, float), np.full(len(alarms_m), 0.5), 0.0, 0.55,
        list(NOT_COVERED) if applied else [(0.0, 0.55)],
    )  # fmt: skip


def _brute_auc(pos: list[float], neg: list[float]) -> float:
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_figures_match_hand_counts() -> None:
    # PMN-sized mine (radius 0.10 + 0.112 / 2 = 0.156 m from its centre at 0.30)
    scenes = [
        _scene("a", [("ap_mine", 0.30, 0.112)], "pmn"),  # 0.40 detects (0.10 away), 0.10 FA
        _scene("b", [("ap_mine", 0.30, 0.10)], "pma2", "clay"),  # 0.46: 0.16 > 0.15 away: FA
        _scene("c", [("nonmetal_clutter", 0.27, 0.05)], "stone"),  # alarm on clutter: FA
        _scene("d", [], "empty"),  # no alarm
        _scene("e", [], "empty", "clay"),  # one alarm: FA
        _scene("f", [("ap_mine", 0.50, 0.10)], "pmn"),  # alarm 0.04 away, ground not covered
        _scene("g", [("at_mine", 0.30, 0.30)], "tm62m"),  # the model refused: nothing scored
    ]
    runs = [
        _run("a", [0.40, 0.10], 0.9),
        _run("b", [0.46], 0.4),
        _run("c", [0.27], 0.5),
        _run("d", [], 0.05),
        _run("e", [0.20], 0.3),
        _run("f", [0.46], 0.6),
        _run("g", [], 0.0, applied=False),
    ]
    fig = B.figures(scenes, runs, RULE, n_boot=500)

    # Pd: only a's mine; b's alarm is outside, f's mine lies on not-covered ground, g unscored
    pd = fig["pd"]
    assert (pd["k"], pd["n"]) == (1, 4)
    ci = binomtest(1, 4).proportion_ci(0.95, method="exact")
    assert pd["ci"] == pytest.approx([ci.low, ci.high], abs=1e-9)

    # false alarms: a 1, b 1, c 1, e 1, f 0 (inside the halo: no FA though not covered)
    fa = fig["false_alarms"]
    assert fa["n_false_alarms"] == 4
    assert fa["covered_m"] == pytest.approx(6 * 0.40)  # g covered nothing
    assert fa["per_m"] == pytest.approx(4 / 2.4)
    assert fig["false_alarms_empty"]["per_m"] == pytest.approx(1 / 0.8)
    assert fig["false_alarms_clutter"]["per_m"] == pytest.approx(1 / 0.4)

    # scene AUC: mines a, b, f (scores 0.9, 0.4, 0.6) vs c, d, e (0.5, 0.05, 0.3); g left out
    auc = fig["scene_auc"]
    assert (auc["n_mine"], auc["n_other"]) == (3, 3)
    assert auc["auc"] == pytest.approx(_brute_auc([0.9, 0.4, 0.6], [0.5, 0.05, 0.3]))
    assert auc["auc"] == pytest.approx(8 / 9)
    lo, hi = auc["ci"]
    assert 0.0 <= lo <= auc["auc"] <= hi == 1.0 and lo < 0.8
    assert [s["scene"] for s in fig["not_scored"]] == ["g"]

    # breakdowns
    assert fig["by_kind"]["pmn"]["pd"]["k"] == 1 and fig["by_kind"]["pmn"]["pd"]["n"] == 2
    assert fig["by_kind"]["empty"]["n_false_alarms"] == 1
    assert fig["by_soil"]["clay"]["per_m"] == pytest.approx(2 / 0.8)  # b and e
    assert fig["by_soil"]["clay"]["pd"]["k"] == 0


def test_bootstrap_auc_separated_and_tied() -> None:
    sep = B.bootstrap_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0], bool), 200)
    assert sep["auc"] == 1.0 and sep["ci"] == [1.0, 1.0]
    tie = B.bootstrap_auc(np.array([0.5, 0.5]), np.array([1, 0], bool), 200)
    assert tie["auc"] == 0.5 and tie["ci"] == [0.5, 0.5]
    none = B.bootstrap_auc(np.array([0.5]), np.array([1], bool), 200)
    assert none["auc"] is None


def test_real_figure_counts_only_files_inside_the_envelope() -> None:
    inside = _run("x.dzt", [0.1, 0.3], 0.9)
    outside = _run("y.dt1", [], 0.0, applied=False)
    r = B.real_figure([inside, outside])
    assert (r["n_files"], r["n_alarms"]) == (1, 2)
    assert r["alarms_per_m"] == pytest.approx(2 / 0.4)
    assert [f["file"] for f in r["outside_envelope"]] == ["y.dt1"]


class ProfileScorer(Scorer):
    """Emits a known P(mine) per window, in the order the pipeline asks (track order)."""

    calibrated = True

    def __init__(self, cfg, profile: np.ndarray) -> None:
        self.spec = window_spec_from_cfg(cfg)
        self.sensors = ("gpr",)
        self.profile = np.asarray(profile, dtype=np.float64)
        self.i = 0

    def predict(self, gpr, emi) -> Prediction:
        n = len(gpr)
        p = self.profile[self.i : self.i + n]
        self.i += n
        cp = np.zeros((n, len(CLASSES)))
        cp[:, CLASSES.index("ap_mine")] = 1.0
        return Prediction(
            p_mine=p,
            class_probs=cp,
            depth_m=np.full(n, 0.05),
            branch_scores={"gpr": p, "emi": np.full(n, np.nan)},
            present=np.tile([True, False], (n, 1)),
        )

    def info(self) -> dict:
        return {"name": "profile", "kind": "test", "calibrated": True, "sensors": ["gpr"]}


def test_fixture_scenes_through_the_pipeline() -> None:
    scenes = {s.name: s for s in B.folder_scenes(FIXTURE)}
    mine, empty = scenes["pmn_moist_sand"], scenes["empty_moist_sand"]
    assert (mine.category, empty.category) == ("mine", "empty")
    (target,) = mine.targets
    assert target.x_m == pytest.approx(0.273)

    # the track is 0.08 ... 0.46 m (20 windows). Mine scene: a peak at 0.20 m (0.073 m from
    # the PMN: inside its 0.156 m halo) and a low one (0.05) at 0.46 m, 0.26 m away (beyond
    # the 0.2 m NMS radius, 0.187 m from the PMN): a suspect at 0.1, a false alarm at 0.036.
    # Empty scene: one peak of 0.3 at 0.12 m, a false alarm at both.
    pm = np.full(20, 0.01)
    pm[6], pm[19] = 0.9, 0.05
    pe = np.full(20, 0.01)
    pe[2] = 0.3
    out = {}
    for thr in (0.1, 0.036):
        cfg = B.scan_config(thr)
        runs = [
            B.scan_file(mine.path, mine.name, cfg, ProfileScorer(cfg, pm)),
            B.scan_file(empty.path, empty.name, cfg, ProfileScorer(cfg, pe)),
        ]
        for r in runs:
            assert r.applied
            assert r.track_x_m == pytest.approx(np.arange(20) * 0.02 + 0.08)
            assert r.covered_m == pytest.approx(0.40, abs=0.015)
        out[thr] = (runs, B.figures([mine, empty], runs, RULE, n_boot=100))

    runs, fig = out[0.1]
    assert runs[0].alarm_x_m == pytest.approx([0.20])
    assert runs[1].alarm_x_m == pytest.approx([0.12])
    covered = runs[0].covered_m + runs[1].covered_m
    assert fig["pd"]["k"] == 1 and fig["pd"]["n"] == 1
    assert fig["false_alarms"]["n_false_alarms"] == 1
    assert fig["false_alarms"]["per_m"] == pytest.approx(1 / covered)
    assert fig["false_alarms_empty"]["per_m"] == pytest.approx(1 / runs[1].covered_m)
    assert fig["scene_auc"]["auc"] == 1.0  # 0.9 against 0.3

    runs, fig = out[0.036]
    assert runs[0].alarm_x_m == pytest.approx([0.20, 0.46])
    assert fig["pd"]["k"] == 1
    assert fig["false_alarms"]["n_false_alarms"] == 2
    assert fig["false_alarms"]["per_m"] == pytest.approx(2 / covered)
    assert math.isclose(fig["by_kind"]["pmn"]["per_m"], 1 / runs[0].covered_m)

    # --set: a radius beyond the two peaks' 0.26 m keeps only the stronger
    wide = B.scan_config(0.036, ["alarm.nms_radius_m=0.3"])
    assert float(wide.alarm.nms_radius_m) == 0.3
    r = B.scan_file(mine.path, mine.name, wide, ProfileScorer(wide, pm))
    assert r.alarm_x_m == pytest.approx([0.20])


def test_bad_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert B.main([str(tmp_path / "nope"), "--real", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert B.main([str(tmp_path), "--real", "none"]) == 2
    assert "no scenes" in capsys.readouterr().err


def test_set_overrides_are_in_the_json_and_a_bad_key_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    argv = [str(FIXTURE), "--real", "none", "--models", "auto", "--bootstrap", "0"]
    assert B.main([*argv, "--set", "alarm.nms_radius_m=0.3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["overrides"] == ["alarm.nms_radius_m=0.3"]
    assert B.main([*argv, "--set", "alarm.no_such_key=1"]) == 2
