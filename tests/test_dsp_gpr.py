"""GPR steps against independent references: instrument time zero in real files, textbook
loop implementations on real traces, analytic filter responses and envelopes."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as sps

from conftest import real_file
from detect.blocks import GprBlock, GprHeader
from detect.dsp import gpr
from detect.dsp.chain import build_chain

# --------------------------------------------------------------------------- small readers
# Independent of detect.io on purpose: header facts from ../shared/data/real/README.md.


def read_dt1(hd_path: Path) -> tuple[np.ndarray, float, float]:
    """pulseEKKO: (traces int16 -> float, dt_ns, HD 'TIMEZERO AT POINT' as 0-based index)."""
    txt = hd_path.read_bytes().decode("latin1")
    npts = int(re.search(r"PTS/TRC\s*=\s*(\d+)", txt).group(1))  # type: ignore[union-attr]
    tz = float(re.search(r"TIMEZERO AT POINT\s*=\s*([\d.]+)", txt).group(1))  # type: ignore[union-attr]
    raw = np.fromfile(hd_path.with_suffix(".DT1"), dtype=np.uint8)
    rec = 128 + 2 * npts
    tr = raw[: raw.size // rec * rec].reshape(-1, rec)
    dt_ps = tr[0, :100].copy().view(np.float32)[6]
    data = tr[:, 128:].copy().view(np.int16).astype(np.float64)
    return data, float(dt_ps) / 1000.0, tz


def read_dzt(path: Path, skip_rows: int) -> tuple[np.ndarray, float, float]:
    """GSSI: (samples, dt_ns, header 'position' as sample index)."""
    b = path.read_bytes()
    _, rh_data, nsamp, bits, _ = struct.unpack_from("<HHHHh", b, 0)
    position_ns, range_ns = struct.unpack_from("<2f", b, 22)
    nchan = struct.unpack_from("<h", b, 52)[0]
    head = 1024 * rh_data if rh_data < 1024 else 1024 * nchan
    d = np.frombuffer(b[head:], dtype=np.uint16 if bits == 16 else np.int32)
    d = d[: d.size // nsamp * nsamp].reshape(-1, nsamp).astype(np.float64)
    d[:, :skip_rows] = d[:, skip_rows : skip_rows + 1]
    dt = range_ns / nsamp
    return d, dt, -position_ns / dt


@pytest.fixture(scope="module")
def frenke() -> tuple[np.ndarray, float, float]:
    return read_dt1(real_file("dt1/rgpr_frenke/LINE00.HD"))


# --------------------------------------------------------------------------- time zero


@pytest.mark.parametrize("rel", ["dt1/rgpr_frenke/LINE00.HD", "dt1/rgpr_flagogna/XLINE000.HD"])
def test_time_zero_pick_matches_instrument_time_zero_dt1(rel: str) -> None:
    data, _, tz_point = read_dt1(real_file(rel))
    picks = gpr.pick_first_break(data, threshold=0.3)
    # HD points count from 1; the pick is a 0-based sub-sample index.
    assert abs(np.nanmedian(picks) - (tz_point - 1)) < 1.0
    assert np.nanpercentile(np.abs(picks - np.nanmedian(picks)), 90) < 2.0


def test_time_zero_pick_matches_sir4000_position() -> None:
    data, _, tz_index = read_dzt(real_file("dzt/impdar/test_gssi.DZT"), skip_rows=2)
    picks = gpr.pick_first_break(data, threshold=0.3)
    assert abs(np.nanmedian(picks) - tz_index) < 2.0


def _first_break_loop(trace: np.ndarray, threshold: float) -> float:
    """Textbook first-break picker, one sample at a time."""
    mean = sum(trace) / len(trace)
    a = [abs(v - mean) for v in trace]
    level = threshold * max(a)
    for k, v in enumerate(a):
        if v >= level:
            if k == 0:
                return 0.0
            return k - 1 + (level - a[k - 1]) / (v - a[k - 1])
    return float("nan")


def test_time_zero_step_vs_loop_on_real_file(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    data = data[:40]
    ref = np.array([_first_break_loop(list(t), 0.3) for t in data])
    np.testing.assert_allclose(gpr.pick_first_break(data, 0.3), ref, atol=1e-9)
    step = build_chain([{"step": "time_zero", "smooth_traces": 1.0, "target_ns": 20.0}], "gpr")
    block = GprBlock.build(data.astype(np.float32), GprHeader(dt_ns=dt))
    out = step.process(block)
    target = round(20.0 / dt)
    shifts = np.floor(ref + 0.5).astype(int) - target
    expected = np.array(
        [
            [t[min(max(k + s, 0), len(t) - 1)] for k in range(len(t))]
            for t, s in zip(data, shifts, strict=True)
        ]
    )
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert out.header.time_zero_ns == pytest.approx(target * dt)
    again = gpr.pick_first_break(out.data, 0.3)
    assert np.all(np.abs(again - target) <= 0.55)  # edge fill moves the mean a little


# --------------------------------------------------------------------------- linear steps vs loops


def _dewow_loop(trace: np.ndarray, window: int) -> np.ndarray:
    n, half = len(trace), window // 2
    out = np.empty(n)
    for k in range(n):
        lo, hi = max(0, k - half), min(n, k + half + 1)
        out[k] = trace[k] - sum(trace[lo:hi]) / (hi - lo)
    return out


def test_dewow_vs_loop_on_real_file(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    block = GprBlock.build(data[:5].astype(np.float32), GprHeader(dt_ns=dt))
    out = build_chain([{"step": "dewow", "window_ns": 10.0}], "gpr").process(block)
    w = round(10.0 / dt) | 1
    ref = np.array([_dewow_loop(t, w) for t in block.data.astype(np.float64)])
    np.testing.assert_allclose(out.data, ref, atol=1e-3 * np.abs(ref).max())


def test_dc_remove_vs_loop_on_real_file(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    x = data[:4].astype(np.float32)
    spec = {"step": "dc_remove", "start_ns": 0.0, "end_ns": 40.0}
    out = build_chain([spec], "gpr").process(GprBlock.build(x, GprHeader(dt_ns=dt))).data
    n_pre = round(40.0 / dt)
    for j in range(4):
        mean = sum(float(v) for v in x[j, :n_pre]) / n_pre
        np.testing.assert_allclose(out[j], x[j].astype(np.float64) - mean, atol=1e-2)


def _biquad_cascade_loop(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Direct form II transposed, one biquad after another, one sample at a time."""
    y = list(x)
    for b0, b1, b2, a0, a1, a2 in sos:
        z1 = z2 = 0.0
        out = []
        for v in y:
            o = (b0 * v + z1) / a0
            z1 = (b1 * v - a1 * o) / a0 + z2
            z2 = (b2 * v - a2 * o) / a0
            out.append(o)
        y = out
    return np.array(y)


def test_causal_bandpass_vs_biquad_loop_on_real_file(
    frenke: tuple[np.ndarray, float, float],
) -> None:
    data, dt, _ = frenke
    x = data[:3] - data[:3].mean(axis=1, keepdims=True)
    block = GprBlock.build(x.astype(np.float32), GprHeader(dt_ns=dt))
    spec = {"step": "bandpass", "low_hz": 50e6, "high_hz": 250e6, "order": 4, "zero_phase": False}
    out = build_chain([spec], "gpr").process(block)
    sos = sps.butter(4, [50e6, 250e6], btype="bandpass", fs=1e9 / dt, output="sos")
    ref = np.array([_biquad_cascade_loop(sos, t) for t in block.data.astype(np.float64)])
    np.testing.assert_allclose(out.data, ref, atol=2e-5 * np.abs(ref).max())


def _butterworth_bandpass_mag(
    f_hz: np.ndarray, lo: float, hi: float, order: int, fs: float
) -> np.ndarray:
    """Analytic |H| of the bilinear-transformed Butterworth band-pass (prewarped edges)."""
    w = lambda f: 2 * fs * np.tan(np.pi * f / fs)  # noqa: E731
    wl, wh, wf = w(lo), w(hi), w(f_hz)
    x = (wf**2 - wl * wh) / (wf * (wh - wl))
    return 1.0 / np.sqrt(1.0 + x ** (2 * order))


@pytest.mark.parametrize("zero_phase", [True, False])
def test_bandpass_magnitude_response_vs_design(zero_phase: bool) -> None:
    dt = 0.0390625
    fs = 1e9 / dt
    lo, hi, order = 5e8, 3e9, 4
    freqs = np.array([2e8, 5e8, 1e9, 1.5e9, 3e9, 5e9])
    n = 8192
    t = np.arange(n) * dt * 1e-9
    x = np.sin(2 * np.pi * freqs[:, None] * t[None, :])
    spec = {
        "step": "bandpass",
        "low_hz": lo,
        "high_hz": hi,
        "order": order,
        "zero_phase": zero_phase,
    }
    y = build_chain([spec], "gpr", fuse=False).process(GprBlock.build(x, GprHeader(dt_ns=dt))).data
    mid = slice(n // 4, 3 * n // 4)
    gain = np.sqrt(2 * np.mean(y[:, mid].astype(np.float64) ** 2, axis=1))
    expect = _butterworth_bandpass_mag(freqs, lo, hi, order, fs)
    if zero_phase:
        expect = expect**2
    np.testing.assert_allclose(gain, expect, atol=3e-3)
    assert expect[2] > 0.99 and expect[0] < 0.05  # the check has teeth in band and out of it


def test_gain_vs_loop() -> None:
    h = GprHeader(dt_ns=0.1, time_zero_ns=1.0)
    x = np.random.default_rng(1).standard_normal((3, 200))
    spec = {"step": "gain", "power": 1.5, "exp_db_per_ns": 0.5, "t_ref_ns": 1.0, "max_gain": 1e6}
    out = build_chain([spec], "gpr").process(GprBlock.build(x, h)).data
    ref = np.empty_like(x)
    for k in range(200):
        t = k * 0.1 - 1.0
        g = 1.0 if t <= 1.0 else t**1.5 * 10 ** (0.5 * (t - 1.0) / 20)
        ref[:, k] = x[:, k] * g
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=1e-5)


def test_agc_vs_loop(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    x = data[:2]
    out = (
        build_chain([{"step": "agc", "window_ns": 20.0}], "gpr")
        .process(GprBlock.build(x, GprHeader(dt_ns=dt)))
        .data
    )
    w = round(20.0 / dt) | 1
    half = w // 2
    xf = x.astype(np.float32).astype(np.float64)
    ref = np.empty_like(xf)
    for j in range(xf.shape[0]):
        for k in range(xf.shape[1]):
            seg = xf[j, max(0, k - half) : k + half + 1]
            ref[j, k] = xf[j, k] / np.sqrt(np.mean(seg**2) + 1e-12)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)


def test_resample_of_bandlimited_signal_matches_analytic() -> None:
    dt = 0.0390625
    n = 512
    t = np.arange(n) * dt
    f_ghz = np.array([0.7, 1.5, 2.2])
    x = np.cos(2 * np.pi * f_ghz[:, None] * t[None, :] + 0.3)
    out = build_chain([{"step": "resample", "n_samples": 128}], "gpr").process(
        GprBlock.build(x, GprHeader(dt_ns=dt))
    )
    assert out.data.shape == (3, 128)
    assert out.header.dt_ns == pytest.approx(dt * 4)
    t2 = np.arange(128) * dt * 4
    ref = np.cos(2 * np.pi * f_ghz[:, None] * t2[None, :] + 0.3)
    np.testing.assert_allclose(out.data[:, 20:-20], ref[:, 20:-20], atol=2e-3)
    alias = np.cos(2 * np.pi * 5.0 * t)[None, :]  # above the new Nyquist (3.2 GHz)
    y = (
        build_chain([{"step": "resample", "n_samples": 128}], "gpr")
        .process(GprBlock.build(alias, GprHeader(dt_ns=dt)))
        .data
    )
    assert np.abs(y[:, 20:-20]).max() < 0.01


def test_envelope_of_modulated_sinusoid() -> None:
    dt = 0.0390625
    t = np.arange(2048) * dt
    env = 1.0 + 0.5 * np.cos(2 * np.pi * 0.05 * t)
    x = (env * np.sin(2 * np.pi * 1.5 * t))[None, :]
    y = (
        build_chain([{"step": "envelope"}], "gpr")
        .process(GprBlock.build(x, GprHeader(dt_ns=dt)))
        .data
    )
    np.testing.assert_allclose(y[0, 200:-200], env[200:-200], atol=5e-3)


# --------------------------------------------------------------------------- background removal


def _moving_background_loop(
    x: np.ndarray, pos: np.ndarray, length_m: float, n_tr: float
) -> np.ndarray:
    nominal = length_m / n_tr
    bg = x[0].copy()
    acc = nominal
    last = pos[0]
    out = np.zeros_like(x)
    for j in range(1, x.shape[0]):
        w = nominal if np.isnan(pos[j]) or np.isnan(last) else abs(pos[j] - last)
        if not np.isnan(pos[j]):
            last = pos[j]
        out[j] = x[j] - bg
        if w > 0:
            acc = min(acc + w, length_m)
            bg = bg + (w / acc) * (x[j] - bg)
    return out


def test_moving_background_vs_loop_on_real_file(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    x = data[:120, :300].astype(np.float32)
    rng = np.random.default_rng(2)
    pos = np.cumsum(rng.uniform(-0.002, 0.02, x.shape[0]))
    pos[50:53] = np.nan
    pos[70:80] = pos[69]  # head held still
    block = GprBlock.build(x, GprHeader(dt_ns=dt), position_m=pos)
    out = build_chain(
        [{"step": "background", "length_m": 0.3, "length_traces": 30}], "gpr"
    ).process(block)
    ref = _moving_background_loop(x.astype(np.float64), pos, 0.3, 30)
    np.testing.assert_allclose(out.data, ref, atol=1e-3 * np.abs(x).max())


def test_moving_background_keeps_target_under_still_head() -> None:
    n = 400
    x = np.ones((n, 64), np.float32)
    pos = np.linspace(0.0, 2.0, n)
    pos[200:] = pos[199]  # stop over the target for 200 traces
    x[200:, 30] += 1.0
    block = GprBlock.build(x, GprHeader(dt_ns=0.1), position_m=pos)
    out = build_chain([{"step": "background", "length_m": 0.5}], "gpr").process(block).data
    assert np.all(np.abs(out[200:, 30] - 1.0) < 1e-6)
    assert np.abs(out[10:200]).max() < 1e-6


def test_offline_backgrounds_vs_loops(frenke: tuple[np.ndarray, float, float]) -> None:
    data, dt, _ = frenke
    x = data[:, :200].astype(np.float32)
    block = GprBlock.build(x, GprHeader(dt_ns=dt))
    med = build_chain([{"step": "background_median"}], "gpr", streaming=False).process(block).data
    mean = build_chain([{"step": "background_mean"}], "gpr", streaming=False).process(block).data
    xf = x.astype(np.float64)
    for k in (0, 57, 199):
        col = sorted(xf[:, k])
        m = len(col)
        median = col[m // 2] if m % 2 else 0.5 * (col[m // 2 - 1] + col[m // 2])
        np.testing.assert_allclose(med[:, k], xf[:, k] - median, atol=1e-2)
        np.testing.assert_allclose(mean[:, k], xf[:, k] - sum(xf[:, k]) / m, atol=1e-2)


def test_svd_background_removes_layers_keeps_point() -> None:
    rng = np.random.default_rng(3)
    n_tr, n_t = 100, 128
    layer = np.zeros(n_t)
    layer[[20, 60]] = [5.0, -3.0]
    amp = 1.0 + 0.1 * rng.standard_normal(n_tr)
    x = amp[:, None] * layer[None, :]
    x[50, 90] += 2.0
    block = GprBlock.build(x, GprHeader(dt_ns=0.1))
    y = (
        build_chain([{"step": "svd_background", "n_components": 1}], "gpr", streaming=False)
        .process(block)
        .data
    )
    assert np.abs(y[:, [20, 60]]).max() < 0.01  # of 5.0
    assert y[50, 90] == pytest.approx(2.0, rel=0.02)


def test_stack_vs_loop() -> None:
    x = np.random.default_rng(4).standard_normal((23, 16))
    pos = np.arange(23) * 0.01
    out = build_chain([{"step": "stack", "n_traces": 4}], "gpr").process(
        GprBlock.build(x, GprHeader(dt_ns=0.1), position_m=pos)
    )
    assert out.n == 5
    for j in range(5):
        np.testing.assert_allclose(out.data[j], x[4 * j : 4 * j + 4].mean(axis=0), atol=1e-6)
        assert out.position_m[j] == pytest.approx(pos[4 * j : 4 * j + 4].mean())


def test_fused_chain_equals_step_by_step() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 512)).astype(np.float32)
    steps = [
        {"step": "dc_remove"},
        {"step": "dewow", "window_ns": 2.0},
        {"step": "bandpass"},
        {"step": "gain", "power": 1.0},
        {"step": "resample", "n_samples": 128},
    ]
    b = GprBlock.build(x, GprHeader(dt_ns=0.0390625, time_zero_ns=1.0))
    fused = build_chain(steps, "gpr").process(b)
    plain = build_chain(steps, "gpr", fuse=False).process(b)
    assert "FusedLinear" in repr(build_chain(steps, "gpr"))
    assert fused.data.shape == (50, 128) and fused.header == plain.header
    np.testing.assert_allclose(fused.data, plain.data, atol=1e-4 * np.abs(plain.data).max())
