"""The DSP chain adapts to the instrument: physical time axis, relative band-pass and dewow,
measured centre frequency. Checked against analytic signals and scipy directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as sps

from detect.blocks import GprBlock, GprHeader
from detect.config import compose
from detect.dsp.chain import build_chain, chains_from_config
from detect.dsp.gpr import Bandpass, TimeAxis, centre_frequency_hz


def ricker(t_ns: np.ndarray, fc_hz: float) -> np.ndarray:
    a = (math.pi * fc_hz * 1e-9 * t_ns) ** 2
    return (1 - 2 * a) * np.exp(-a)


def block(data: np.ndarray, dt_ns: float, t0_ns: float, antenna_hz: float | None) -> GprBlock:
    n = data.shape[0]
    return GprBlock(
        data=data.astype(np.float32),
        seq=np.arange(n),
        host_time_s=np.arange(n) * 0.01,
        position_m=np.arange(n) * 0.01,
        header=GprHeader(dt_ns=dt_ns, time_zero_ns=t0_ns, antenna_hz=antenna_hz),
    )


@pytest.mark.parametrize("fc_hz", [0.4e9, 1.0e9, 1.5e9, 2.6e9])
def test_measured_centre_frequency_is_the_ricker_peak(fc_hz: float) -> None:
    dt = 0.25 / (fc_hz * 1e-9) / 5
    t = np.arange(512) * dt
    rng = np.random.default_rng(1)
    x = ricker(t - 6 / (fc_hz * 1e-9), fc_hz)[None, :] + 0.01 * rng.standard_normal((16, 512))
    assert centre_frequency_hz(x, dt) == pytest.approx(fc_hz, rel=0.05)


@pytest.mark.parametrize("dt_ns", [0.0156, 0.039, 0.05, 0.1])
def test_time_axis_puts_an_echo_at_its_physical_time_whatever_the_sampling(dt_ns: float) -> None:
    """A 1.2 GHz Ricker 3 ns after time zero lands at 3 ns on the model's axis, for any
    instrument sample interval and time zero; samples past the record are NaN."""
    t0 = 2.3
    n = int(12.0 / dt_ns)  # a 12 ns record: 9.7 ns after time zero
    t = np.arange(n) * dt_ns - t0
    x = ricker(t - 3.0, 1.2e9)[None, :]
    step = TimeAxis(start_ns=-1.0, end_ns=19.0, n_samples=256)
    y = step.process(block(x, dt_ns, t0, 1.2e9))
    t_out = -1.0 + np.arange(256) * step.out_dt_ns()
    valid = np.isfinite(y.data[0])
    assert y.header.dt_ns == pytest.approx(20 / 256)
    assert y.header.time_zero_ns == pytest.approx(1.0)
    assert t_out[valid].max() <= t[-1] + 1e-9 and t_out[valid].max() > t[-1] - 0.1
    assert not valid[t_out > t[-1] + 1e-9].any()
    ref = ricker(t_out[valid] - 3.0, 1.2e9)
    assert np.max(np.abs(y.data[0][valid] - ref)) < 0.05
    assert t_out[np.nanargmax(y.data[0])] == pytest.approx(3.0, abs=step.out_dt_ns())


def test_time_axis_anti_aliases_when_the_output_is_coarser() -> None:
    """A 9 GHz tone above the output Nyquist (6.4 GHz) is removed, not folded to 3.8 GHz."""
    dt = 0.01
    t = np.arange(2000) * dt
    tone = np.sin(2 * np.pi * 9.0 * t)[None, :]
    y = TimeAxis().process(block(tone, dt, 1.0, 1.5e9)).data[0]
    assert np.nanmax(np.abs(y[20:-20])) < 0.02


def test_relative_band_pass_is_the_absolute_one_at_that_frequency() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 512))
    h = GprHeader(dt_ns=0.039, antenna_hz=1.5e9)
    rel = Bandpass(low_rel=1 / 3, high_rel=2.0).apply(x, h)
    sos = sps.butter(4, [0.5e9, 3.0e9], btype="bandpass", fs=1e9 / 0.039, output="sos")
    assert np.allclose(rel, sps.sosfiltfilt(sos, x, axis=1), atol=1e-9)


def test_a_corner_above_nyquist_is_held_below_it_not_an_error() -> None:
    """3 GHz top corner on a 200 MHz radar sampled at 0.4 ns (Nyquist 1.25 GHz)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 256))
    h = GprHeader(dt_ns=0.4, antenna_hz=200e6)
    y = Bandpass(low_hz=5e8, high_hz=3e9).apply(x, h)
    sos = sps.butter(4, [0.5e9, 0.9 * 1.25e9], btype="bandpass", fs=2.5e9, output="sos")
    assert np.allclose(y, sps.sosfiltfilt(sos, x, axis=1), atol=1e-9)


@pytest.mark.parametrize(
    ("fc_hz", "dt_ns", "n"),
    [(100e6, 0.8, 500), (400e6, 0.1, 512), (2.6e9, 0.039, 256), (1.5e9, 0.0156, 512)],
)
def test_the_default_chain_runs_on_any_valid_radar(fc_hz: float, dt_ns: float, n: int) -> None:
    """No corner frequency error for a valid file: the chain adapts to the antenna, whether
    the header gives it or not (then it is measured)."""
    chain = chains_from_config(compose([]))["gpr"]
    t = np.arange(n) * dt_ns
    rng = np.random.default_rng(2)
    x = ricker(t - 4 / (fc_hz * 1e-9), fc_hz)[None, :] * (1 + 0.1 * rng.standard_normal((40, 1)))
    x = x + 0.01 * rng.standard_normal((40, n))
    for antenna in (fc_hz, None):
        chain.reset()
        out = chain.process(block(x, dt_ns, 0.0, antenna))
        assert out.n_samples == 256 and np.isfinite(out.data[:, 13:40]).all()  # 0-2 ns
        assert out.header.antenna_hz == pytest.approx(fc_hz, rel=0.1 if antenna is None else 0)


def test_measured_frequency_does_not_depend_on_block_size_beyond_its_traces() -> None:
    """Streaming == batch: blocks of at least n_traces traces give the same output."""
    rng = np.random.default_rng(3)
    dt = 0.039
    t = np.arange(512) * dt
    x = ricker(t - 3, 1.5e9)[None, :] + 0.05 * rng.standard_normal((64, 512))
    steps = [{"step": "centre_frequency"}, {"step": "dewow", "window_periods": 3.0},
             {"step": "bandpass", "low_rel": 1 / 3, "high_rel": 2.0}]  # fmt: skip
    whole = build_chain(steps, "gpr").process(block(x, dt, 0.0, None))
    chain = build_chain(steps, "gpr")
    parts = [chain.process(block(x[i : i + 16], dt, 0.0, None)).data for i in range(0, 64, 16)]
    assert np.allclose(np.concatenate(parts), whole.data, atol=1e-5)
