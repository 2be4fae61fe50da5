"""Chains: any chunking gives the one-call result; config errors are one line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader
from detect.config import ConfigError, compose
from detect.dsp.base import DspError
from detect.dsp.chain import build_chain, chains_from_config, process_offline

DT_NS = 0.0390625
GATES_S = tuple(np.geomspace(1e-5, 1e-3, 8))


def _gpr_lane(n: int, seed: int = 0) -> GprBlock:
    """Traces with a slowly drifting direct wave, noise, and irregular positions."""
    rng = np.random.default_rng(seed)
    t = np.arange(512) * DT_NS
    t0 = 1.2 + np.linspace(0.0, 0.1, n) + 0.003 * rng.standard_normal(n)
    wave = np.exp(-(((t[None, :] - t0[:, None]) / 0.2) ** 2)) * np.cos(
        2 * np.pi * 1.5 * (t[None, :] - t0[:, None])
    )
    data = 100 * wave + rng.standard_normal((n, 512)) + 3.0
    pos = np.cumsum(rng.uniform(-0.002, 0.01, n))
    pos[n // 3 : n // 3 + 2] = np.nan
    return GprBlock.build(
        data.astype(np.float32), GprHeader(dt_ns=DT_NS, antenna_hz=1.5e9), position_m=pos,
        host_time_s=np.arange(n) * 0.01,
    )  # fmt: skip


def _emi_lane(n: int, seed: int = 0) -> MdBlock:
    rng = np.random.default_rng(seed)
    ts = np.arange(n) / 1000.0
    soil = np.asarray(GATES_S) ** -1.0 * 1e-5
    drift = 0.02 * ts[:, None]
    target = np.exp(-(((ts - ts.mean()) / 0.1) ** 2))[:, None] * np.exp(-np.asarray(GATES_S) / 2e-4)
    mains = 0.05 * np.sin(2 * np.pi * 50 * ts)[:, None]
    data = soil[None, :] * (1 + 0.1 * np.sin(ts))[:, None] + drift + target + mains
    data += 0.01 * rng.standard_normal(data.shape)
    names = tuple(f"g{i}" for i in range(8))
    return MdBlock.build(
        data.astype(np.float32), MdHeader(1000.0, names, GATES_S),
        position_m=np.arange(n) * 0.0005, host_time_s=ts,
    )  # fmt: skip


def _slice(b: GprBlock | MdBlock, i: int, j: int) -> GprBlock | MdBlock:
    return type(b)(
        data=b.data[i:j], seq=b.seq[i:j], host_time_s=b.host_time_s[i:j],
        position_m=b.position_m[i:j], header=b.header,
    )  # fmt: skip


def _run_chunked(chain, block, sizes: list[int]):  # type: ignore[no-untyped-def]
    chain.reset()
    outs = []
    i = 0
    k = 0
    while i < block.n:
        j = min(block.n, i + sizes[k % len(sizes)])
        outs.append(chain.process(_slice(block, i, j)))
        i, k = j, k + 1
    return np.concatenate([o.data for o in outs]), outs


GPR_ALL_STREAMING = [
    {"step": "time_zero", "smooth_traces": 5.0},
    {"step": "background", "length_m": 0.2, "length_traces": 10},
    {"step": "dc_remove"},
    {"step": "dewow"},
    {"step": "bandpass"},
    {"step": "gain"},
    {"step": "agc", "window_ns": 3.0},
    {"step": "stack", "n_traces": 3},
    {"step": "resample", "n_samples": 128},
    {"step": "envelope"},
]

_DEFAULT = compose([])
_CHAINS = {
    "gpr_default": (lambda: chains_from_config(_DEFAULT)["gpr"], lambda: _gpr_lane(97)),
    "gpr_all": (lambda: build_chain(GPR_ALL_STREAMING, "gpr"), lambda: _gpr_lane(97, 1)),
    "emi_default": (lambda: chains_from_config(_DEFAULT)["emi"], lambda: _emi_lane(1500)),
}
_CACHE: dict[str, tuple[object, object, np.ndarray]] = {}


def _reference(name: str) -> tuple[object, object, np.ndarray]:
    if name not in _CACHE:
        make_chain, make_block = _CHAINS[name]
        chain, block = make_chain(), make_block()
        whole = chain.process(block).data  # type: ignore[attr-defined]
        _CACHE[name] = (chain, block, whole)
    return _CACHE[name]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(_CHAINS)),
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8),
)
def test_any_chunking_equals_one_call(name: str, sizes: list[int]) -> None:
    chain, block, whole = _reference(name)
    chunked, _ = _run_chunked(chain, block, sizes)
    assert chunked.shape == whole.shape
    scale = max(1.0, float(np.abs(whole).max()))
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=2e-6 * scale * 8)


def test_one_trace_at_a_time_equals_one_call() -> None:
    for name in _CHAINS:
        chain, block, whole = _reference(name)
        chunked, outs = _run_chunked(chain, block, [1])
        np.testing.assert_allclose(
            chunked, whole, rtol=0, atol=1.6e-5 * max(1.0, np.abs(whole).max())
        )
        assert outs[-1].header == chain.process(_slice(block, 0, 1)).header  # type: ignore[attr-defined]


def test_default_gpr_chain_removes_direct_wave_and_keeps_a_target() -> None:
    block = _gpr_lane(300, 7)
    t = np.arange(512) * DT_NS
    data = block.data.copy()
    pos = np.nan_to_num(block.position_m, nan=0.0)
    near = np.abs(np.arange(300) - 220) < 6
    data[near] += (30 * np.exp(-(((t - 6.0) / 0.2) ** 2)) * np.cos(2 * np.pi * 1.5 * (t - 6.0)))[
        None, :
    ]
    block = block.with_data(data).with_positions(np.maximum.accumulate(pos) + np.arange(300) * 1e-4)
    out = chains_from_config(_DEFAULT)["gpr"].process(block)
    tz = out.header.time_zero_ns
    dt = out.header.dt_ns
    k_direct = round(tz / dt)
    k_target = round((6.0 - 1.2 + tz) / dt)
    quiet = out.data[150:200]
    target = np.abs(out.data[near][:, k_target - 3 : k_target + 3]).max()
    assert np.abs(quiet[:, k_direct - 3 : k_direct + 3]).max() < 0.2 * target
    assert target > 5 * np.abs(quiet[:, k_target - 3 : k_target + 3]).std()


def test_bad_step_name_and_param_are_one_line() -> None:
    with pytest.raises(DspError, match=r"unknown step 'bandpas'"):
        build_chain([{"step": "bandpas"}], "gpr")
    with pytest.raises(DspError, match=r"dsp step 'bandpass': unknown parameter 'lo_hz'"):
        build_chain([{"step": "bandpass", "lo_hz": 1e8}], "gpr")
    with pytest.raises(DspError, match=r"dsp step 'bandpass': parameter 'order' = 0 must be >= 1"):
        build_chain([{"step": "bandpass", "order": 0}], "gpr")
    with pytest.raises(DspError, match=r"'low_hz' must be below 'high_hz'"):
        build_chain([{"step": "bandpass", "low_hz": 3e9, "high_hz": 1e9}], "gpr")
    with pytest.raises(DspError, match=r"unknown step 'notch'"):
        build_chain([{"step": "notch"}], "gpr")
    with pytest.raises(DspError, match=r"missing 'step: <name>'"):
        build_chain([{"low_hz": 1.0}], "emi")
    with pytest.raises(DspError, match=r"expected MdBlock"):
        build_chain([], "emi").process(_gpr_lane(3))
    with pytest.raises(DspError, match=r"pass band .* is empty"):
        build_chain([{"step": "bandpass", "low_hz": 2e10, "high_hz": 3e10}], "gpr").process(
            _gpr_lane(3)
        )
    with pytest.raises(ConfigError, match=r"dsp.emi.*unknown parameter 'tau'"):
        compose(["dsp.emi=[{step: baseline, tau: 3}]"])


@pytest.mark.parametrize(
    "step", ["svd_background", "background_mean", "background_median", "migrate", "fk_filter"]
)
def test_offline_steps_refuse_to_stream(step: str) -> None:
    with pytest.raises(DspError, match=rf"'{step}' is offline-only"):
        build_chain([{"step": step}], "gpr")
    assert build_chain([{"step": step}], "gpr", streaming=False).streaming is False


def test_process_offline_runs_offline_steps() -> None:
    block = _gpr_lane(40)
    out = process_offline([{"step": "background_mean"}], block, "gpr")
    np.testing.assert_allclose(out.data.mean(axis=0), 0.0, atol=1e-3)
