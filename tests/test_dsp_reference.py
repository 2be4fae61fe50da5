"""The ``reference`` step: the model sees amplitudes in units of the direct wave, its phase
turned to zero, whatever the radar's units, polarity or wavelet; any chunking gives the
same output. Checked against analytic wavelets and scipy's Hilbert transform."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.signal as sps

from detect.blocks import GprBlock, GprHeader
from detect.dsp.chain import build_chain

DT_NS = 0.04
N = 400
FC_HZ = 1.5e9


def ricker(t_ns: np.ndarray, fc_hz: float = FC_HZ) -> np.ndarray:
    a = (math.pi * fc_hz * 1e-9 * t_ns) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def turned(x: np.ndarray, angle_rad: float) -> np.ndarray:
    """The traces with their phase turned by ``angle`` (scipy's analytic signal)."""
    n = x.shape[1]
    a = sps.hilbert(x, N=4 * n, axis=1)[:, :n]
    return np.real(a * np.exp(1j * angle_rad))


def traces(n_traces: int, seed: int = 0) -> np.ndarray:
    """A direct wave of height 1 at 2 ns and a weaker reflection of either sign below."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) * DT_NS
    x = np.tile(ricker(t - 2.0), (n_traces, 1))
    for i in range(n_traces):
        x[i] += rng.uniform(-0.2, 0.2) * ricker(t - rng.uniform(5, 12))
    return x + 1e-4 * rng.standard_normal(x.shape)


def block(data: np.ndarray, seq0: int = 0) -> GprBlock:
    n = data.shape[0]
    return GprBlock.build(
        data.astype(np.float32),
        GprHeader(dt_ns=DT_NS, time_zero_ns=2.0, antenna_hz=FC_HZ),
        seq=seq0 + np.arange(n),
        host_time_s=(seq0 + np.arange(n)) * 0.01,
        position_m=(seq0 + np.arange(n)) * 0.01,
    )


def run(data: np.ndarray, cuts: list[int] | None = None) -> np.ndarray:
    chain = build_chain([{"step": "reference", "n_traces": 16}], "gpr")
    edges = [0, *(cuts or []), data.shape[0]]
    out = [chain.process(block(data[a:b], a)).data for a, b in itertools.pairwise(edges)]
    return np.concatenate(out)


def test_a_zero_phase_direct_wave_of_height_one_is_left_alone() -> None:
    x = traces(40)
    y = run(x)
    inner = slice(20, N - 20)  # the ends of a trace carry the Hilbert transform's edge
    assert np.allclose(y[:, inner], x[:, inner], atol=2e-3)


@pytest.mark.parametrize("scale", [1e-3, 2375.0, 32767.0, -1.0, -0.01])
def test_units_and_polarity_of_the_radar_do_not_reach_the_output(scale: float) -> None:
    """Counts, V/m or volts, an inverted antenna: the same output (a -1 scale is a
    half-turn of the phase, which the reference takes out)."""
    x = traces(40, seed=1)
    assert np.allclose(run(scale * x), run(x), atol=1e-4)


@pytest.mark.parametrize("angle_deg", [-90.0, -35.0, 60.0, 180.0])
def test_the_wavelet_phase_does_not_reach_the_output(angle_deg: float) -> None:
    """A radar whose wavelet is a doublet (-90 deg, as a 2-D full-wave dipole) or any
    other rotation of the same pulse gives the same output: reflections keep their sign
    relative to the direct wave."""
    x = traces(40, seed=2)
    y0 = run(x)
    y = run(turned(x, math.radians(angle_deg)))
    inner = slice(40, N - 40)
    assert np.allclose(y[:, inner], y0[:, inner], atol=5e-3)


def test_the_direct_wave_becomes_a_positive_pulse_of_height_one() -> None:
    """A doublet (the time derivative of a Ricker) of height 400 becomes, after the step, a
    zero-phase positive pulse: peak +1 at the doublet's envelope peak."""
    t = np.arange(N) * DT_NS
    d = np.gradient(ricker(t - 3.0), DT_NS)
    x = np.tile(400.0 * d / np.abs(d).max(), (20, 1))
    y = run(x)
    env = np.abs(sps.hilbert(x[0]))
    k = int(np.argmax(env))
    assert y[0, k] == pytest.approx(1.0, abs=0.02)
    assert abs(y[0, k]) >= np.abs(y[0]).max() - 1e-6


def test_any_chunking_gives_the_same_output() -> None:
    """Generated chunkings, traces 1 by 1 through the warm-up included."""
    rng = np.random.default_rng(3)
    x = traces(60, seed=3) * 812.0
    whole = run(x)
    for _ in range(25):
        cuts = sorted(set(rng.integers(1, 60, size=int(rng.integers(1, 20))).tolist()))
        assert np.array_equal(run(x, cuts), whole)


def test_the_reference_is_the_median_of_the_first_traces_then_fixed() -> None:
    """One wild trace among the first 16 does not move the reference (median); traces
    after the 16th do not either."""
    x = traces(40, seed=4)
    wild = x.copy()
    wild[5] *= 50.0
    wild[30:] *= 3.0
    y0, y = run(x), run(wild)
    assert np.allclose(y[16:30], y0[16:30], atol=1e-3)
    assert np.allclose(y[30:], 3.0 * y0[30:], atol=3e-3)


def test_flat_traces_before_the_first_arrival_become_zeros() -> None:
    x = traces(30, seed=5)
    x[:4] = 0.0
    y = run(x)
    assert np.all(y[:4] == 0.0)
    assert np.allclose(y[4:], run(x[4:]), atol=1e-5)
