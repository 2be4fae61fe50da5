"""Quality report: edge-band labelling, the kept edge band, the added metrics."""

from __future__ import annotations

import numpy as np

from detect.metrics import HaloRule
from detect.model.dataset import WindowSet, simulate_lane_windows
from detect.model.quality import (
    HeldOutSet,
    ece_equal_mass,
    edge_rule_mine,
    lane_test_windows,
    score_report,
)
from detect.windows import label_windows

MINE = {"id": "a", "class": "ap_mine", "x_m": 1.0, "size_m": 0.3, "depth_m": 0.05}


def test_edge_band_is_labelled_by_the_alarm_halo_rule() -> None:
    centres = np.array([1.0, 1.20, 1.25, 1.30, 1.45])
    # alarm rule: 0.10 m from the edge of a 0.3 m mine -> radius 0.25 m, boundary inclusive
    mine = edge_rule_mine(centres, [MINE], HaloRule(halo_m=0.10, from_edge=True))
    assert mine.tolist() == [True, True, True, False, False]
    # centre rule: radius 0.10 m
    centre = edge_rule_mine(centres, [MINE], HaloRule(halo_m=0.10, from_edge=False))
    assert centre.tolist() == [True, False, False, False, False]
    # the clean (headline) set drops 0.10-0.25 m from the centre: 1.20 and 1.25
    amb = label_windows(centres, [MINE], 0.10, 0.25).ambiguous
    assert amb.tolist() == [False, True, True, False, False]
    clutter = [dict(MINE, **{"class": "metal_clutter"})]
    assert not edge_rule_mine(centres, clutter, HaloRule()).any()


def test_kept_edge_band_leaves_the_clean_windows_unchanged() -> None:
    from detect.config import compose
    from detect.model.workflow import held_out_recipes

    r = held_out_recipes(compose([]), 4)[0]
    ref = simulate_lane_windows(r)
    ts = lane_test_windows(r, HaloRule())
    clean = ts.clean_windows
    assert len(ts) > len(clean) == len(ref)
    for f in ("cls", "depth_m", "metal_g", "clutter_near", "lane", "emi", "gpr"):
        np.testing.assert_array_equal(getattr(clean, f), getattr(ref, f), err_msg=f)
    # every training-label mine is an edge-rule mine; the edge rule adds edge-band windows
    assert (ts.mine_edge[ts.windows.is_mine]).all()
    assert ts.mine_edge.sum() > ts.windows.is_mine.sum()


def test_equal_mass_ece_and_report_keys() -> None:
    p = np.r_[np.zeros(90), np.full(10, 0.5)]
    y = np.r_[np.zeros(90), np.ones(5), np.zeros(5)].astype(bool)
    assert ece_equal_mass(p, y) == 0.0
    y2 = np.r_[np.zeros(90), np.ones(10)].astype(bool)
    assert np.isclose(ece_equal_mass(p, y2), 0.05)
    n = 100
    ws = WindowSet(
        gpr=None,
        emi=np.zeros((n, 2, 1), np.float32),
        cls=np.where(y2, 1, 0).astype(np.int64),
        depth_m=np.zeros(n, np.float32),
        lane=np.arange(n) % 4,
        metal_g=np.full(n, np.nan, np.float32),
        clutter_near=np.zeros(n, bool),
        soil=np.full(n, "x", dtype=object),
    )
    clean = np.ones(n, bool)
    clean[85:90] = False
    rep = score_report(p, HeldOutSet(ws, clean, y2), n_boot=5)
    for k in ("auc", "ece", "ece_equal_mass", "ece_p_gt_0_1", "auc_all_windows", "ece_all_windows"):
        assert k in rep
    assert rep["n_windows_all"] == n
