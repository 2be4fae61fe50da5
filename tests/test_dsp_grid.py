"""Distance normalisation against a plain loop, gaps, NaN and any chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader
from detect.config import compose
from detect.dsp.base import DspError
from detect.dsp.grid import GridResampler


def _grid_loop(pos, tim, data, dx, max_gap_m, max_gap_s):  # type: ignore[no-untyped-def]
    """Walk the trace pairs in order; emit each grid point the first time it is passed."""
    out_x, out_d = [], []
    next_k = None
    for i in range(len(pos) - 1):
        p0, p1 = pos[i], pos[i + 1]
        if math.isnan(p0) or math.isnan(p1):
            continue
        if abs(p1 - p0) > max_gap_m or abs(tim[i + 1] - tim[i]) > max_gap_s:
            k = math.ceil(p1 / dx)
            next_k = k if next_k is None else max(next_k, k)
            continue
        if p1 <= p0:
            continue
        k = math.ceil(p0 / dx) if next_k is None else max(next_k, math.ceil(p0 / dx))
        while k * dx <= p1 + 1e-12 and k <= math.floor(p1 / dx):
            w = (k * dx - p0) / (p1 - p0)
            out_x.append(k * dx)
            out_d.append((1 - w) * data[i] + w * data[i + 1])
            k += 1
        next_k = k if next_k is None else max(next_k, k)
    return np.array(out_x), np.array(out_d).reshape(len(out_x), -1)


def _walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = np.cumsum(rng.uniform(-0.004, 0.012, n))
    pos[rng.integers(0, n, 3)] = np.nan
    pos[n // 2 :] += 0.2  # a jump: a gap in coverage
    tim = np.arange(n) * 0.01
    tim[3 * n // 4 :] += 1.0  # a dropout in time
    data = rng.standard_normal((n, 6))
    return pos, tim, data


def test_grid_matches_loop_reference_with_jitter_gaps_and_nan() -> None:
    pos, tim, data = _walk(400, 0)
    g = GridResampler(dx_m=0.01, max_gap_m=0.05, max_gap_s=0.25)
    out = g.process(GprBlock.build(data, GprHeader(dt_ns=0.1), position_m=pos, host_time_s=tim))
    ref_x, ref_d = _grid_loop(pos, tim, data, 0.01, 0.05, 0.25)
    np.testing.assert_allclose(out.position_m, ref_x, atol=1e-12)
    np.testing.assert_allclose(out.data, ref_d, atol=1e-5)
    assert g.gaps == 2 and g.nan_breaks >= 3 and g.back_steps > 0
    assert np.all(np.diff(out.position_m) > 0)
    steps = np.round(np.diff(out.position_m) / 0.01).astype(int)
    assert steps.max() >= 20  # the 0.2 m jump is not filled in


def test_grid_is_exact_on_a_linear_ramp() -> None:
    """A field linear in position is reproduced exactly at every grid point."""
    rng = np.random.default_rng(1)
    pos = np.sort(rng.uniform(0, 1, 300))
    data = np.stack([2.0 * pos + 1.0, -pos], axis=1)
    out = GridResampler(dx_m=0.02).process(
        MdBlock.build(data, MdHeader(1000.0, ("a", "b")), position_m=pos, host_time_s=pos)
    )
    np.testing.assert_allclose(out.data[:, 0], 2.0 * out.position_m + 1.0, atol=1e-5)
    assert out.position_m[0] == pytest.approx(np.ceil(pos[0] / 0.02) * 0.02)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 120), min_size=1, max_size=10), st.integers(0, 3))
def test_grid_any_chunking_equals_one_call(sizes: list[int], seed: int) -> None:
    pos, tim, data = _walk(300, seed)
    whole = GridResampler().process(
        MdBlock.build(data, MdHeader(1000.0, tuple("abcdef")), position_m=pos, host_time_s=tim)
    )
    g = GridResampler()
    parts = []
    i = k = 0
    while i < 300:
        j = min(300, i + sizes[k % len(sizes)])
        parts.append(
            g.process(
                MdBlock.build(
                    data[i:j],
                    MdHeader(1000.0, tuple("abcdef")),
                    position_m=pos[i:j],
                    host_time_s=tim[i:j],
                )
            )
        )
        i, k = j, k + 1
    np.testing.assert_array_equal(np.concatenate([p.position_m for p in parts]), whole.position_m)
    np.testing.assert_allclose(np.concatenate([p.data for p in parts]), whole.data, atol=1e-6)


def test_grid_config_and_errors() -> None:
    cfg = compose([])
    g = GridResampler.from_config(cfg.dsp.grid)
    assert g.dx_m == 0.01
    with pytest.raises(DspError, match="dx_m must be a positive"):
        GridResampler(dx_m=0.0)
    with pytest.raises(DspError, match="unknown parameter 'step_m'"):
        GridResampler.from_config({"step_m": 0.1})
    g.process(GprBlock.build(np.zeros((2, 4)), GprHeader(dt_ns=0.1), position_m=[0.0, 0.01]))
    with pytest.raises(DspError, match="changed mid-stream"):
        g.process(
            MdBlock.build(np.zeros((2, 4)), MdHeader(1000.0, tuple("abcd")), position_m=[0.0, 0.01])
        )
