"""Data splits: by lane and seed, never shared between train, validation, calibration, test."""

from __future__ import annotations

import pytest

from detect.config import ConfigError, compose
from detect.model.workflow import data_plan, held_out_recipes, offsets_from_cfg


def test_splits_never_share_a_lane_and_test_holds_out_a_soil() -> None:
    cfg = compose(["train.lanes=8", "train.val_lanes=4", "train.cal_lanes=4"])
    plan = data_plan(cfg)
    test = held_out_recipes(cfg, 8)
    keys = [{(r.seed, r.lane_id, repr(r.sim)) for r in rs}
            for rs in (plan.train, plan.val, plan.cal, test)]  # fmt: skip
    for i in range(4):
        for j in range(i + 1, 4):
            assert not (keys[i] & keys[j])
    assert {r.seed for r in plan.train}.isdisjoint({r.seed for r in test})
    trained_soils = set(plan.train[0].soils)
    assert "moist_sand" not in trained_soils
    assert any(r.soils == ("moist_sand",) for r in test)
    # battle-area lanes: a quarter of the test set, dense clutter
    assert sum(r.sim.get("min_spacing_m") == 0.3 for r in test) == 2
    # validation / calibration / test windows are not augmented or subsampled
    assert all(r.bg_keep == 1.0 and r.stretch_jitter == 0.0 for r in plan.val + plan.cal + test)


def test_offsets_follow_the_simulator_head() -> None:
    cfg = compose([])
    from detect.sim.settings import HeadSettings

    assert offsets_from_cfg(cfg)["emi"] == HeadSettings().emi_offset_m


def test_bad_train_values_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"train\.bg_keep"):
        compose(["train.bg_keep=0"])
    with pytest.raises(ConfigError, match=r"window\.grid_m"):
        compose(["window.grid_m=-1"])
