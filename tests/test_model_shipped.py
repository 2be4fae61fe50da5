"""The shipped models: load under the default config, and detect on fresh simulated lanes."""

from __future__ import annotations

import numpy as np
import pytest

from detect.config import compose, models_dir
from detect.model.calibration import roc_auc
from detect.model.card import read_card
from detect.model.classifier import Classifier
from detect.model.dataset import build_windows, full_windows, recipes
from detect.model.workflow import base_recipe

SHIPPED = ("fused", "gpr_only", "emi_only")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_the_default_preprocessing(name: str) -> None:
    d = models_dir() / name
    card = read_card(d)  # hash checked
    assert card["weights"]["bytes"] < 10e6
    clf = Classifier.load(name, compose([]))  # refuses a mismatched DSP chain or window
    assert clf.name == name
    assert {"data", "calibration", "known_limits"} <= set(card)


def test_shipped_fused_model_finds_mines_on_unseen_lanes() -> None:
    cfg = compose([])
    base = base_recipe(cfg)
    lanes = recipes(base, [4242] * 6, bg_keep=1.0, wavelet_jitter=0.0, stretch_jitter=0.0)
    test = build_windows(lanes)
    test = test.subset(np.flatnonzero(full_windows(test)))  # as the card's test set: no lane ends
    assert test.is_mine.sum() > 0
    fused = Classifier.load("fused", cfg)
    pred = fused.predict(test.gpr.astype(np.float32), test.emi)
    # as good as its card says: the card's held-out AUC (24 lanes, 60 % with random radars)
    # has a lane-bootstrap 95 % interval; 6 other lanes scatter more, so allow 0.02 below its
    # lower bound. Measured here: 0.949 (card 0.963 [0.938, 0.986]); 3 lanes gave 0.896, which
    # is why there are 6
    _, card_lo, _ = read_card(models_dir() / "fused")["metrics"]["fused"]["auc"]
    assert roc_auc(pred.p_mine, test.is_mine) > card_lo - 0.02
    # a sensor in FAULT degrades, never blinds: GPR alone still ranks mines well above chance
    gpr_alone = fused.predict(test.gpr.astype(np.float32), None)
    assert roc_auc(gpr_alone.p_mine, test.is_mine) > 0.7  # 6 lanes: a noisy estimate
    assert np.isnan(gpr_alone.branch_scores["emi"]).all()
    # class probabilities are a distribution; depth is positive and in metres
    np.testing.assert_allclose(pred.class_probs.sum(1), 1.0, atol=1e-5)
    mine = test.is_mine & np.isfinite(test.depth_m)
    err = np.abs(pred.depth_m[mine] - test.depth_m[mine])
    assert np.median(err) < 0.1
