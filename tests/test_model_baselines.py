"""Classical baselines: physics of the scores, and calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from _model_synth import SPEC, synthetic_set
from detect.model.baselines import EmiThreshold, GprEnergyCfar
from detect.model.calibration import expected_calibration_error, roc_auc


def test_cfar_score_is_the_log_energy_ratio_and_gain_free() -> None:
    cfar = GprEnergyCfar(SPEC, test_m=0.06, guard_m=0.04, skip_samples=0)
    w = np.ones((1, SPEC.n_pos, SPEC.gpr_samples), dtype=np.float32)
    w[0, SPEC.half - 1 : SPEC.half + 2] = 3.0  # 3x amplitude over the 3 centre traces
    assert cfar.score(w)[0] == pytest.approx(np.log(9.0), rel=1e-6)
    assert cfar.score(10 * w)[0] == pytest.approx(cfar.score(w)[0], rel=1e-6)


def test_emi_threshold_scales_with_peak_over_noise() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.01, (2, SPEC.n_pos, SPEC.emi_channels)).astype(np.float32)
    base[1, SPEC.half, :] += 1.0
    s = EmiThreshold(SPEC).score(base)
    assert s[1] > s[0] + 3


def test_baselines_detect_and_calibrate_on_synthetic_windows() -> None:
    cal, test = synthetic_set(1500, 20), synthetic_set(1500, 21)
    cfar = GprEnergyCfar(SPEC, skip_samples=2).fit(cal.gpr.astype(np.float32), cal.is_mine)
    p = cfar.predict(test.gpr.astype(np.float32), None)
    assert roc_auc(p.p_mine, test.is_mine) > 0.9
    assert expected_calibration_error(p.p_mine, test.is_mine) < 0.06
    assert np.isnan(p.branch_scores["emi"]).all() and np.isnan(p.depth_m).all()
    thr = EmiThreshold(SPEC).fit(cal.emi, cal.is_mine)
    q = thr.predict(None, test.emi)
    # EMI alone cannot tell a weak-metal mine from strong clutter: worse than chance ranking
    # of mine vs clutter, but it separates "metal" from background
    metal = test.cls != 0
    assert roc_auc(thr.score(test.emi), metal) > 0.85  # SNR about 4 at the centre
    assert q.p_mine.shape == (len(test),)
    with pytest.raises(ValueError, match="needs GPR"):
        cfar.predict(None, test.emi)
