"""GPR forward model against physics: two-way times, hyperbola velocity, polarity, loss."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import curve_fit

from detect.sim.gpr import simulate_gpr, wavelet_bank
from detect.sim.motion import Trajectory
from detect.sim.scene import PlacedTarget, canonical_scene, place
from detect.sim.settings import GprSettings
from detect.sim.soil import SOILS
from detect.sim.targets import LIBRARY

C_M_NS = 0.299792458
ETA0 = 376.730313
QUIET = GprSettings(
    noise=0.0,
    gain_drift=0.0,
    jitter_ns=0.0,
    time_zero_drift_ns=0.0,
    ringing=0.0,
    heterogeneity=False,
)


def point(x_m: float, depth_m: float, key: str = "shrapnel") -> PlacedTarget:
    """A small metal sphere-like scatterer (5 mm) of library kind ``key``."""
    t = place(key, x_m, depth_m)
    return dataclasses.replace(t, diameter_m=0.005, height_m=0.005)


def line(height_m: float, x0: float = 0.0, x1: float = 2.0, n: int = 401) -> Trajectory:
    x = np.linspace(x0, x1, n)
    return Trajectory(np.arange(n) / 100.0, x, np.zeros(n), np.full(n, height_m))


def echo_only(scene, traj, g=QUIET):
    """Traces minus the same scene without objects (flat ground: identical background)."""
    full = simulate_gpr(scene, traj, g, np.random.default_rng(0)).astype(np.float64)
    bare = dataclasses.replace(scene, targets=())
    return full - simulate_gpr(bare, traj, g, np.random.default_rng(0))


def sub_sample_peak(trace: np.ndarray, i: int) -> float:
    """Parabolic interpolation of an extremum at sample ``i``."""
    y0, y1, y2 = trace[i - 1], trace[i], trace[i + 1]
    den = y0 - 2 * y1 + y2
    return i + (0.5 * (y0 - y2) / den if den != 0 else 0.0)


def test_apex_at_two_way_time_for_depth_and_velocity() -> None:
    soil = SOILS["moist_sand"]
    h, d = 0.05, 0.30
    traj = line(h)
    echo = echo_only(canonical_scene([point(1.0, d)], soil), traj)
    apex = int(np.argmin(np.abs(traj.x_m - 1.0)))
    i = int(np.argmin(echo[apex]))  # metal: negative main lobe
    t_pick = sub_sample_peak(echo[apex], i) * QUIET.dt_ns
    v = C_M_NS / math.sqrt(soil.eps_r)
    expected = QUIET.time_zero_ns + 2 * h / C_M_NS + 2 * d / v
    assert t_pick == pytest.approx(expected, abs=QUIET.dt_ns)
    assert echo[apex, i] < 0


def _picks(soil, h: float, d: float, aperture_m: float):
    traj = line(h)
    echo = echo_only(canonical_scene([point(1.0, d)], soil), traj)
    sel = np.nonzero(np.abs(traj.x_m - 1.0) < aperture_m)[0]
    t0 = QUIET.time_zero_ns + 2 * h / C_M_NS
    picks = [sub_sample_peak(echo[j], int(np.argmin(echo[j]))) * QUIET.dt_ns - t0 for j in sel]
    return traj.x_m[sel], np.array(picks)


def _straight_hyperbola(x, x0, depth, v):
    return 2.0 * np.sqrt(depth**2 + (x - x0) ** 2) / v


def test_hyperbola_fit_recovers_velocity_with_antenna_on_the_ground() -> None:
    soil = SOILS["dry_sand"]
    x, t = _picks(soil, 0.005, 0.25, 0.1)
    (_, _, v_fit), _ = curve_fit(_straight_hyperbola, x, t, p0=(1.05, 0.2, 0.12))
    assert v_fit == pytest.approx(C_M_NS / math.sqrt(soil.eps_r), rel=0.03)


def _snell_time(h: float):
    """Two-way time antenna(h above ground) -> point: brute-force Fermat over a dense grid
    of surface crossing points (independent of the model's Newton solver)."""
    frac = np.linspace(0.0, 1.0, 4001)

    def model(x, x0, depth, v):
        rho = np.abs(x - x0)[:, None]
        u = rho * frac[None, :]
        one_way = np.sqrt(h**2 + u**2) / C_M_NS + np.sqrt(depth**2 + (rho - u) ** 2) / v
        return 2.0 * one_way.min(axis=1) - 2.0 * h / C_M_NS

    return model


@pytest.mark.parametrize("soil_name", ["dry_sand", "moist_sand", "wet_clay"])
def test_hyperbola_fit_with_refraction_recovers_velocity_for_a_raised_head(
    soil_name: str,
) -> None:
    soil = SOILS[soil_name]
    h, d = 0.05, 0.25 if soil_name != "wet_clay" else 0.12
    x, t = _picks(soil, h, d, 0.2)
    v_true = C_M_NS / math.sqrt(soil.eps_r)
    (_, d_fit, v_fit), _ = curve_fit(_snell_time(h), x, t, p0=(1.02, 0.2, 0.12))
    assert v_fit == pytest.approx(v_true, rel=0.03)
    assert d_fit == pytest.approx(d, rel=0.05)
    # Ignoring the air gap, a straight hyperbola reads too fast a soil (wider moveout).
    (_, _, v_naive), _ = curve_fit(_straight_hyperbola, x, t, p0=(1.05, 0.2, 0.12))
    assert v_naive > 1.05 * v_true


def _apex_value(scene, h=0.05, depth=0.2):
    """Echo value at the predicted two-way time of the object's top, at the apex trace."""
    traj = line(h)
    echo = echo_only(scene, traj)
    apex = int(np.argmin(np.abs(traj.x_m - 1.0)))
    v = C_M_NS / math.sqrt(scene.soil.eps_r)
    t = QUIET.time_zero_ns + 2 * h / C_M_NS + 2 * depth / v
    return float(np.interp(t / QUIET.dt_ns, np.arange(echo.shape[1]), echo[apex]))


@pytest.mark.parametrize("soil_name", ["wet_clay", "wet_sand", "moist_sand"])
def test_plastic_mine_in_wet_soil_has_opposite_polarity_to_metal(soil_name: str) -> None:
    plastic = place("pmn2", 1.0, 0.2)
    metal = place("tm62m", 1.0, 0.2)
    a_plastic = _apex_value(canonical_scene([plastic], soil_name))
    a_metal = _apex_value(canonical_scene([metal], soil_name))
    eps_soil, eps_body = SOILS[soil_name].eps_r, LIBRARY["pmn2"].eps_body
    assert eps_body is not None
    r_plastic = (math.sqrt(eps_soil) - math.sqrt(eps_body)) / (
        math.sqrt(eps_soil) + math.sqrt(eps_body)
    )
    assert r_plastic > 0
    assert a_plastic > 0 > a_metal
    # Metal reflects everything (|R| = 1): the plastic echo is R_plastic times as large.
    assert abs(a_plastic / a_metal) == pytest.approx(r_plastic, rel=0.15)


def test_void_and_rock_polarity_follow_permittivity_contrast() -> None:
    # Rock (eps 7) in dry sand (eps 4): into a denser medium, same sign as metal.
    rock = dataclasses.replace(place("rock", 1.0, 0.2), diameter_m=0.15)
    void = dataclasses.replace(place("void", 1.0, 0.2), diameter_m=0.15)
    assert _apex_value(canonical_scene([rock], "dry_sand")) < 0
    assert _apex_value(canonical_scene([void], "dry_sand")) > 0


def test_attenuation_grows_with_conductivity_at_the_low_loss_rate() -> None:
    base = SOILS["moist_sand"]
    sigmas = [0.001, 0.01, 0.03]
    d = 0.3
    amps = []
    for sigma in sigmas:
        soil = dataclasses.replace(base, sigma_s_m=sigma)
        amps.append(abs(_apex_value(canonical_scene([place("tm62m", 1.0, d)], soil), depth=d)))
    assert amps[0] > amps[1] > amps[2]
    # Low-loss plane-wave attenuation alpha = sigma/2 sqrt(mu0/eps), over 2 d two-way.
    for sigma, amp in zip(sigmas[1:], amps[1:], strict=True):
        d_alpha = 0.5 * ETA0 * (sigma - sigmas[0]) / math.sqrt(base.eps_r)
        assert amp / amps[0] == pytest.approx(math.exp(-2 * d * d_alpha), rel=0.02)


def test_dielectric_loss_lowers_the_centre_frequency_of_deeper_echoes() -> None:
    soil = SOILS["loam"]
    traj = line(0.05)
    apex = int(np.argmin(np.abs(traj.x_m - 1.0)))
    freqs = []
    for d in (0.1, 0.4):
        echo = echo_only(canonical_scene([point(1.0, d, "shrapnel")], soil), traj)[apex]
        spec = np.abs(np.fft.rfft(echo, 4096))
        f = np.fft.rfftfreq(4096, QUIET.dt_ns * 1e-9)
        freqs.append(float(f[np.argmax(spec)]))
    # Ricker times exp(-pi f tau / Q): spectral peak at fc (sqrt(1 + q^2/16) - q/4).
    v = C_M_NS / math.sqrt(soil.eps_r)
    for d, f_meas in zip((0.1, 0.4), freqs, strict=True):
        q = math.pi * QUIET.centre_hz * (2 * d / v) * 1e-9 / soil.q
        f_expected = QUIET.centre_hz * (math.sqrt(1 + q * q / 16) - q / 4)
        assert f_meas == pytest.approx(f_expected, rel=0.06)
    assert freqs[1] < 0.8 * freqs[0]


def test_plastic_mine_shows_top_and_bottom_reflections() -> None:
    soil = SOILS["wet_clay"]
    m = place("pmn2", 1.0, 0.05)
    traj = line(0.05)
    apex = int(np.argmin(np.abs(traj.x_m - 1.0)))
    echo = echo_only(canonical_scene([m], soil), traj)[apex]
    v = C_M_NS / math.sqrt(soil.eps_r)
    t_top = QUIET.time_zero_ns + 2 * 0.05 / C_M_NS + 2 * m.depth_m / v
    body = LIBRARY["pmn2"].eps_body
    assert body is not None
    t_bot = t_top + 2 * m.height_m * math.sqrt(body) / C_M_NS
    top = np.interp(t_top / QUIET.dt_ns, np.arange(echo.size), echo)
    bot = np.interp(t_bot / QUIET.dt_ns, np.arange(echo.size), echo)
    assert top > 0 > bot


def test_wavelet_bank_zero_attenuation_is_a_unit_ricker() -> None:
    bank = wavelet_bank(1.5e9, 0.0390625)
    w = bank.table[0, 0]
    t = (np.arange(bank.n_taps) - bank.half + 1) * 0.0390625
    a = (math.pi * 1.5 * t) ** 2
    ricker = (1 - 2 * a) * np.exp(-a)
    core = np.abs(t) < 0.8
    np.testing.assert_allclose(w[core], ricker[core], atol=2e-3)


# --------------------------------------------------------------------------- domain randomisation


def test_randomisation_off_by_default_leaves_the_simulator_unchanged() -> None:
    scene = canonical_scene([place("pmn", 1.0, 0.06)], "loam")
    traj = line(0.05)
    off = dataclasses.replace(QUIET, echo_gain_sigma=0.0, echo_phase_deg=0.0)
    a = simulate_gpr(scene, traj, QUIET, np.random.default_rng(0))
    b = simulate_gpr(scene, traj, off, np.random.default_rng(0))
    assert np.array_equal(a, b)


def test_an_echo_turned_in_phase_is_the_hilbert_rotation_of_the_plain_echo() -> None:
    """Each object's echo with a phase draw ``a`` equals ``cos a e - sin a H(e)`` of the
    plain echo ``e`` (scipy's Hilbert transform as the reference), times its gain draw."""
    from scipy.signal import hilbert

    scene = canonical_scene([place("tm62m", 1.0, 0.10)], "moist_sand")
    traj = line(0.05)
    g = dataclasses.replace(QUIET, echo_gain_sigma=0.5, echo_phase_deg=90.0)
    rng = np.random.default_rng(42)
    gain = float(np.exp(rng.normal(0.0, 0.5)))
    angle = math.radians(float(rng.uniform(-1.0, 1.0)) * 90.0)
    plain = echo_only(scene, traj)
    full = simulate_gpr(scene, traj, g, np.random.default_rng(42)).astype(np.float64)
    bare = simulate_gpr(
        dataclasses.replace(scene, targets=()), traj, QUIET, np.random.default_rng(0)
    )
    turned = full - bare
    n = plain.shape[1]
    h = np.imag(hilbert(plain, N=4 * n, axis=1)[:, :n])
    for sign in (1.0, -1.0):  # the rotation's sense is a convention; one of them must hold
        expect = gain * (np.cos(angle) * plain + sign * np.sin(angle) * h)
        inner = slice(30, n - 30)
        if np.allclose(turned[:, inner], expect[:, inner], atol=0.02 * np.abs(plain).max()):
            break
    else:
        raise AssertionError("the turned echo is not a Hilbert rotation of the plain one")


def test_spreading_power_half_is_the_square_root_of_the_3d_spreading() -> None:
    """At nadir the echo of a point at (one-way) range r scales as (r_ref / (r_ref + r))^p."""
    from detect.sim.gpr import R_REF_M

    scene = canonical_scene([point(1.0, 0.15)], "dry_sand")
    traj = line(0.05)
    e1 = echo_only(scene, traj)
    e_half = echo_only(scene, traj, dataclasses.replace(QUIET, spreading_power=0.5))
    i = int(np.argmin(np.abs(traj.x_m - 1.0)))
    r = 0.05 + 0.15  # air then soil path at nadir, one way
    ratio = np.abs(e_half[i]).max() / np.abs(e1[i]).max()
    assert ratio == pytest.approx((R_REF_M / (R_REF_M + r)) ** -0.5, rel=0.02)
