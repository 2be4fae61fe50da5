"""EMI steps against analytic responses and physics of pulse-induction decays."""

from __future__ import annotations

import numpy as np
import pytest

from detect.blocks import MdBlock, MdHeader
from detect.dsp import emi
from detect.dsp.chain import build_chain

FS = 1000.0
GATES_S = np.geomspace(1e-5, 1e-3, 8)
NAMES = tuple(f"g{i}" for i in range(8))


def _block(data: np.ndarray, fs: float = FS, gates: np.ndarray | None = GATES_S) -> MdBlock:
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    names = (
        NAMES[: data.shape[1]]
        if data.shape[1] <= 8
        else tuple(f"c{i}" for i in range(data.shape[1]))
    )
    g = None if gates is None or len(gates) != data.shape[1] else tuple(gates)
    return MdBlock.build(data, MdHeader(fs, names, g), host_time_s=np.arange(len(data)) / fs)


def _tone_gain(step: dict, freqs: np.ndarray, seconds: float = 6.0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    x = np.sin(2 * np.pi * freqs[None, :] * t[:, None])
    y = build_chain([step], "emi").process(_block(x, gates=None)).data.astype(np.float64)
    tail = y[len(t) // 2 :]
    return np.sqrt(2 * np.mean(tail**2, axis=0))


def test_mains_frequencies_fold_below_nyquist() -> None:
    assert emi.mains_frequencies(1000.0, 50.0, 10) == [50.0 * k for k in range(1, 10)]
    got = emi.mains_frequencies(1000.0, 60.0, 10)
    assert got == [60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 400.0, 420.0, 460.0, 480.0]


def test_notch_response_vs_design() -> None:
    q = 30.0
    bw = 50.0 / q
    freqs = np.array([50.0, 100.0, 150.0, 450.0, 50.0 + bw / 2, 20.0, 75.0, 5.0])
    g = _tone_gain({"step": "notch", "base_hz": 50.0, "n_harmonics": 10, "q": q}, freqs, 10.0)
    assert np.all(g[:4] < 0.02)
    assert g[4] == pytest.approx(1 / np.sqrt(2), abs=0.03)  # -3 dB at f0 + bw/2
    assert np.all(np.abs(g[5:] - 1.0) < 0.03)


def _butter_mag(f: np.ndarray, fc: float, order: int, kind: str) -> np.ndarray:
    """Analytic |H| of a bilinear Butterworth with prewarped cut-off."""
    w = np.tan(np.pi * f / FS) / np.tan(np.pi * fc / FS)
    r = 1 / w if kind == "high" else w
    return 1 / np.sqrt(1 + r ** (2 * order))


@pytest.mark.parametrize(
    ("name", "fc", "kind"), [("lowpass", 25.0, "low"), ("highpass", 2.0, "high")]
)
def test_low_and_high_pass_response_vs_design(name: str, fc: float, kind: str) -> None:
    freqs = np.array([1.0, 2.0, 5.0, 25.0, 60.0, 200.0])
    g = _tone_gain({"step": name, "cutoff_hz": fc, "order": 2}, freqs, 12.0)
    np.testing.assert_allclose(g, _butter_mag(freqs, fc, 2, kind), atol=0.01)


def test_ground_balance_cancels_soil_keeps_metal() -> None:
    rng = np.random.default_rng(0)
    soil = np.outer(rng.uniform(0.5, 2.0, 300), GATES_S**-1.0 * 1e-5)
    metal = np.outer(rng.uniform(0.5, 2.0, 300), np.exp(-GATES_S / 1e-4))
    chain = build_chain([{"step": "ground_balance", "mode": "project", "exponent": 1.0}], "emi")
    out_soil = chain.process(_block(soil)).data
    out_metal = chain.process(_block(metal)).data.astype(np.float64)
    assert np.abs(out_soil).max() < 1e-4 * np.abs(soil).max()
    s = GATES_S**-1.0 / np.linalg.norm(GATES_S**-1.0)
    for i in (0, 150, 299):
        row = metal[i]
        dot = sum(row[k] * s[k] for k in range(8))
        np.testing.assert_allclose(out_metal[i], [row[k] - dot * s[k] for k in range(8)], atol=1e-5)
    assert np.linalg.norm(out_metal) > 0.3 * np.linalg.norm(metal)


def test_adaptive_ground_balance_whitens_the_soil_direction() -> None:
    """Soil variance v along s over noise n: the s component shrinks by sqrt(n / (n + v))."""
    rng = np.random.default_rng(3)
    n, sigma = 40_000, 0.01
    s = GATES_S**-1.0 / np.linalg.norm(GATES_S**-1.0)
    noise = sigma * rng.standard_normal((n, 8))
    for soil_sd, expect_beta in ((0.0, 0.0), (0.1, 1 - sigma / np.hypot(sigma, 0.1))):
        soil = np.outer(soil_sd * rng.standard_normal(n), s)
        step = build_chain([{"step": "ground_balance", "tau_s": 5.0}], "emi")
        out = step.process(_block(soil + noise)).data.astype(np.float64)
        beta = step.stages[0].last_beta[n // 2 :]
        assert np.mean(beta) == pytest.approx(expect_beta, abs=0.03)
        resid_sd = np.std(out[n // 2 :] @ s)
        assert resid_sd == pytest.approx(np.hypot(sigma, soil_sd) * (1 - expect_beta), rel=0.1)
        orth = out[n // 2 :] - np.outer(out[n // 2 :] @ s, s)
        assert np.std(orth) == pytest.approx(sigma * np.sqrt(7 / 8), rel=0.05)  # untouched


def test_estimated_signature_matches_soil_law() -> None:
    rng = np.random.default_rng(1)
    soil = np.outer(rng.uniform(0.5, 2.0, 500), GATES_S**-0.9)
    soil += 1e-3 * rng.standard_normal(soil.shape)
    est = emi.estimate_soil_signature(soil)
    np.testing.assert_allclose(est, emi.soil_signature(GATES_S, 0.9), atol=1e-3)


def test_baseline_follows_drift_keeps_slow_pass_without_undershoot() -> None:
    rng = np.random.default_rng(2)
    n = 60_000
    t = np.arange(n) / FS
    drift = 0.5 * t / 60.0 + 0.2 * np.sin(2 * np.pi * t / 40.0)
    pass_ = np.exp(-(((t - 30.0) / 0.35) ** 2))  # a slow pass, ~1 s wide
    noise = 0.005 * rng.standard_normal(n)
    x = (drift + pass_ + noise)[:, None] * np.ones((1, 2))
    y = (
        build_chain([{"step": "baseline", "tau_s": 2.0}], "emi")
        .process(_block(x, gates=None))
        .data[:, 0]
    )
    peak = y[(t > 29.5) & (t < 30.5)].max()
    assert peak == pytest.approx(1.0, abs=0.05)
    after = y[(t > 31.5) & (t < 40.0)]
    assert after.min() > -0.05  # no undershoot behind the target
    max_slope = 0.5 / 60.0 + 0.2 * 2 * np.pi / 40.0
    lag_bound = 1.1 * max_slope * 2.0  # a first-order tracker lags a ramp by slope * tau
    assert np.abs(y[(t > 10) & (t < 28)]).max() < lag_bound  # drift (0.9 peak-to-peak) followed
    hp = (
        build_chain([{"step": "highpass", "cutoff_hz": 0.5, "order": 2}], "emi")
        .process(_block(x, gates=None))
        .data[:, 0]
    )
    assert hp[(t > 29.5) & (t < 30.5)].max() < 0.9 * peak or hp[(t > 30.5) & (t < 33)].min() < -0.1


def test_decay_features_recover_power_law_and_time_constant() -> None:
    soil = np.outer([1.0, 3.0], GATES_S**-1.0)
    metal = np.outer([1.0, 0.2], np.exp(-GATES_S / 2e-4))
    f_soil = emi.decay_features(soil, GATES_S)
    f_metal = emi.decay_features(metal, GATES_S, eps=1e-30)
    np.testing.assert_allclose(f_soil[:, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(f_metal[:, 3], 2e-4, rtol=1e-6)
    out = build_chain([{"step": "decay_features"}], "emi").process(_block(soil))
    assert out.header.channel_names == ("early", "late", "log_slope", "tau_s")
    assert out.data.shape == (2, 4)


def test_ground_balance_needs_gate_times() -> None:
    with pytest.raises(ValueError, match="no gate_times_s"):
        build_chain([{"step": "ground_balance"}], "emi").process(
            _block(np.zeros((3, 2)), gates=None)
        )
