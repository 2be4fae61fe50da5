"""Offline imaging: a diffraction hyperbola migrates to its apex; velocity from hyperbolas;
F-K fan filter keeps diffractions and removes slopes no diffraction can have."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as sps

from detect.blocks import GprBlock, GprHeader
from detect.dsp import migration, velocity
from detect.dsp.chain import build_chain

DX, DT, V = 0.01, 0.0390625, 0.1
X0, T0, TZ = 0.75, 5.0, 1.0  # apex (m), apex two-way time after time zero (ns), time zero (ns)


def ricker(tau_ns: np.ndarray, f_ghz: float = 1.5) -> np.ndarray:
    a = (np.pi * f_ghz * tau_ns) ** 2
    return (1 - 2 * a) * np.exp(-a)


def hyperbola_profile(n_tr: int = 151, n_t: int = 512, v: float = V) -> np.ndarray:
    x = np.arange(n_tr) * DX
    t = np.arange(n_t) * DT - TZ
    tx = np.sqrt(T0**2 + (2 * (x - X0) / v) ** 2)
    return ricker(t[None, :] - tx[:, None])


def _apex(image: np.ndarray) -> tuple[int, int]:
    env = np.abs(sps.hilbert(image, axis=1))
    j, k = np.unravel_index(np.argmax(env), env.shape)
    return int(j), int(k)


@pytest.mark.parametrize("method", ["stolt", "kirchhoff"])
def test_hyperbola_migrates_to_its_apex(method: str) -> None:
    data = hyperbola_profile()
    block = GprBlock.build(
        data, GprHeader(dt_ns=DT, time_zero_ns=TZ), position_m=np.arange(151) * DX
    )
    spec = {"step": "migrate", "method": method, "velocity_m_ns": V, "aperture_m": 0.6}
    img = build_chain([spec], "gpr", streaming=False).process(block).data.astype(np.float64)
    j, k = _apex(img)
    assert abs(j - round(X0 / DX)) <= 1
    assert abs(k - round((T0 + TZ) / DT)) <= 2
    # focused: at the apex time the image is narrow across traces, the input is not
    env_in = np.abs(sps.hilbert(data, axis=1))
    env_out = np.abs(sps.hilbert(img, axis=1))
    row_out = env_out[:, k - 3 : k + 4].max(axis=1)
    width_out = int((row_out > 0.5 * row_out.max()).sum())
    energy_in_far = env_in[np.abs(np.arange(151) - 75) > 20].max()
    energy_out_far = env_out[np.abs(np.arange(151) - 75) > 20].max() / env_out.max()
    assert width_out <= 9
    assert energy_in_far > 0.5 and energy_out_far < 0.25


def test_wrong_velocity_defocuses() -> None:
    data = hyperbola_profile()
    sharp = migration.stolt_migrate(data, DX, DT, V, TZ)
    blurred = migration.stolt_migrate(data, DX, DT, 0.6 * V, TZ)
    assert np.abs(sharp).max() > 1.5 * np.abs(blurred).max()


def test_fit_hyperbola_recovers_velocity_depth_and_apex() -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(0.4, 1.1, 40)
    v = 0.085
    t = np.sqrt(T0**2 + (2 * (x - X0) / v) ** 2) + 0.01 * rng.standard_normal(x.size)
    fit = velocity.fit_hyperbola(x, t)
    assert fit.velocity_m_ns == pytest.approx(v, rel=0.01)
    assert fit.x0_m == pytest.approx(X0, abs=0.005)
    assert fit.t0_ns == pytest.approx(T0, abs=0.02)
    assert fit.depth_m == pytest.approx(v * T0 / 2, rel=0.01)
    assert fit.relative_permittivity == pytest.approx((0.299792458 / v) ** 2, rel=0.02)
    with pytest.raises(ValueError, match="at least 3"):
        velocity.fit_hyperbola([0.1, 0.2], [1.0, 2.0])


def test_semblance_scan_finds_the_velocity_of_a_diffraction() -> None:
    for v in (0.07, 0.12):
        data = hyperbola_profile(v=v)
        best, _vs, s = velocity.scan_velocity(
            data, DX, DT, X0, T0, time_zero_ns=TZ, half_width_m=0.4
        )
        assert best == pytest.approx(v, rel=0.05)
        assert s.max() > 2 * np.median(s)


def test_fk_filter_keeps_diffraction_removes_steep_and_flat() -> None:
    n_t = 512
    t = np.arange(n_t) * DT
    hyper = hyperbola_profile()
    kept = migration.fk_filter(hyper, DX, DT, v_min_m_ns=0.05)
    inner = slice(20, -20)
    assert np.linalg.norm(kept[inner] - hyper[inner]) < 0.1 * np.linalg.norm(hyper[inner])
    # 45 ns/m is steeper than any diffraction at v >= 0.05 m/ns (2/v = 40 ns/m); sampled
    # finely enough (5 mm, 0.8 GHz) not to alias in kx.
    dx = 0.005
    xs = np.arange(81) * dx
    steep = ricker(t[None, :] - (2.0 + 45.0 * xs[:, None]), 0.8)
    gone = migration.fk_filter(steep, dx, DT, v_min_m_ns=0.05)
    mid = slice(10, -10)
    assert np.linalg.norm(gone[mid]) < 0.15 * np.linalg.norm(steep[mid])
    flat = ricker(t[None, :] - 3.0) * np.ones((hyper.shape[0], 1))
    no_flat = migration.fk_filter(flat + hyper, DX, DT, v_min_m_ns=0.05, kx_min_per_m=2.0)
    assert np.abs(no_flat[inner, int(3.0 / DT)]).max() < 0.1
    block = GprBlock.build(steep, GprHeader(dt_ns=DT), position_m=xs)
    out = build_chain([{"step": "fk_filter"}], "gpr", streaming=False).process(block)
    assert np.linalg.norm(out.data[mid]) < 0.15 * np.linalg.norm(steep[mid])


def test_migrate_needs_regular_positions() -> None:
    block = GprBlock.build(hyperbola_profile(20, 64), GprHeader(dt_ns=DT))
    with pytest.raises(ValueError, match="no regular increasing positions"):
        build_chain([{"step": "migrate"}], "gpr", streaming=False).process(block)
