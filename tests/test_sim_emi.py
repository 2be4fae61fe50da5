"""EMI (pulse induction) forward model against dipole physics and eddy-current decay."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from detect.sim.emi import simulate_emi, target_response
from detect.sim.lane import simulate_lane
from detect.sim.motion import Trajectory
from detect.sim.scene import canonical_scene, place
from detect.sim.settings import EmiSettings, SimSettings, with_changes
from detect.sim.targets import LIBRARY, METALS, MU0

GATES = np.geomspace(1e-5, 1e-3, 8)
QUIET = EmiSettings(noise_v=0.0, hum_v=0.0, drift_v=0.0, soil_response=False)


def _peak(targets, h=0.05, a=0.1) -> np.ndarray:
    """Gate voltages with the coil right above x = 1 m."""
    v = target_response(tuple(targets), np.array([1.0]), np.array([0.0]), np.array([h]), GATES, a)
    return v[0]


def test_amplitude_falls_as_inverse_sixth_power_of_distance() -> None:
    depths = np.array([0.3, 0.45, 0.6, 0.8, 1.0])
    shrapnel = [place("shrapnel", 1.0, d, axis=(0.0, 0.0, 1.0)) for d in depths]
    v = np.array([_peak([t], h=0.0, a=0.05)[0] for t in shrapnel])
    slope = np.polyfit(np.log(depths), np.log(v), 1)[0]
    # Dipole induced by a dipole, seen by the same dipole: (1/r^3)^2.
    assert slope == pytest.approx(-6.0, abs=0.25)


def test_on_axis_response_matches_the_circular_loop_field() -> None:
    # The primary field on a loop's axis is a^2 / (a^2 + z^2)^(3/2) (Biot-Savart); the
    # coincident-loop response goes with its square.
    a = 0.1
    zs = np.array([0.0, 0.05, 0.1, 0.2])
    v = np.array([_peak([place("shrapnel", 1.0, z)], h=0.0, a=a)[0] for z in zs])
    z_metal = zs + LIBRARY["shrapnel"].metal_depth_frac * LIBRARY["shrapnel"].height_m
    expected = (a**2 / (a**2 + z_metal**2) ** 1.5) ** 2
    np.testing.assert_allclose(v / v[0], expected / expected[0], rtol=1e-6)


# --- the transient of a conducting, permeable sphere (independent reference) ---------------
# A sphere of radius a, conductivity sigma, permeability mu_r mu0 in a uniform field H0.
# Inside, the l = 1 field diffuses (vector potential A_phi = C j1(k r) sin(theta),
# k^2 = -i omega mu sigma); outside it is H0 plus a dipole m. Continuity of B_r and H_theta
# at r = a gives m = 2 pi a^3 H0 (2 mu_r - psi) / (mu_r + psi) with
# psi(x) = d ln(x j1(x)) / d ln x at x = k a (Wait 1951, Geophysics 16:666; Ward & Hohmann
# 1988; checks: 4 pi a^3 H0 (mu_r - 1)/(mu_r + 2) at DC, -2 pi a^3 H0 at high frequency).
# Its poles are the real roots delta_n of (mu_r - 1)(sin x / x - cos x) + x sin x = 0
# (tan x = (mu_r - 1) x / (mu_r - 1 + x^2): x = n pi when mu_r = 1, -> 4.493 as mu_r -> inf),
# so after the transmitter switches off the coil voltage (dm/dt) is
#   V(t) ~ sum_n w_n exp(-t / tau_n),  tau_n = mu_r mu0 sigma a^2 / delta_n^2,
# w_n the residues (all equal when mu_r = 1: Kaufman & Keller 1985's series
# sum_n exp(-n^2 pi^2 t / (mu0 sigma a^2)), early time ~ t^-1/2, late time one exponential).


def _psi(x: np.ndarray) -> np.ndarray:
    return (np.cos(x) - np.sin(x) / x + x * np.sin(x)) / (np.sin(x) / x - np.cos(x))


def _sphere_modes(mu_r: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(delta_n, w_n): the first ``n`` roots and the residue weights of dm/dt."""
    from scipy.optimize import brentq

    def f(x: float) -> float:
        return (mu_r - 1.0) * (math.sin(x) / x - math.cos(x)) + x * math.sin(x)

    grid = np.linspace(1e-3, (n + 1.5) * math.pi, 50 * (n + 2))
    val = np.array([f(x) for x in grid])
    cross = np.flatnonzero(np.sign(val[:-1]) != np.sign(val[1:]))[:n]
    delta = np.array([brentq(f, grid[i], grid[i + 1], xtol=1e-14) for i in cross])
    h = 1e-6  # residue of (2 mu_r - psi)/(mu_r + psi) in s = -x^2 (tau = 1): ds/dx = -2x
    d_den = (_psi(delta + h) - _psi(delta - h)) / (2 * h)
    w = (2 * mu_r - _psi(delta)) / (d_den / (-2.0 * delta))
    return delta, w


def _sphere(metal: str, radius_m: float):
    """A metal sphere as the simulator places it: a 'blob' whose eddy-current scale is its
    radius and whose mass is its volume times the density."""
    kind = dataclasses.replace(LIBRARY["shrapnel"], metal=metal, metal_scale_m=radius_m)
    mass_g = METALS[metal].density_kg_m3 * 4 / 3 * math.pi * radius_m**3 * 1e3
    return dataclasses.replace(place("shrapnel", 1.0, 0.05), kind=kind, metal_mass_g=mass_g)


def _sim_decay(target, t_s: np.ndarray) -> np.ndarray:
    x = np.array([1.0])
    return target_response((target,), x, x * 0, x * 0 + 0.05, t_s, 0.1)[0]


def test_sphere_series_reference_is_right() -> None:
    """The reference itself: mu_r = 1 roots are n pi with equal weights; the mu_r -> inf
    limit is tan x = x (4.4934)."""
    delta, w = _sphere_modes(1.0, 5)
    np.testing.assert_allclose(delta, math.pi * np.arange(1, 6), rtol=1e-9)
    np.testing.assert_allclose(w / w[0], 1.0, rtol=1e-5)
    assert _sphere_modes(1e6, 1)[0][0] == pytest.approx(4.4934, abs=1e-4)


@pytest.mark.parametrize("metal", ["stainless", "brass", "aluminium", "copper", "steel"])
def test_late_time_decay_is_the_first_mode_of_a_conducting_sphere(metal: str) -> None:
    """Late in the decay only the first mode is left: the simulator's e-folding time there
    is the sphere's tau_1 = mu_r mu0 sigma a^2 / delta_1^2 (delta_1 from the series above,
    not from the simulator's formula), to 4 %: its Pasion-Oldenburg power-law factor still
    adds ~1 % at 40-50 tau_1, and for steel (mu_r 100) it takes delta_1 = 4.493
    (mu_r -> inf) where the series gives 4.449 (2 % in tau)."""
    m = METALS[metal]
    a = 0.003
    delta, _ = _sphere_modes(m.mu_r, 1)
    tau1 = m.mu_r * MU0 * m.sigma_s_m * a**2 / delta[0] ** 2
    t = np.array([40.0, 50.0]) * tau1
    v = _sim_decay(_sphere(metal, a), t)
    tau_sim = -(t[1] - t[0]) / math.log(v[1] / v[0])
    assert tau_sim == pytest.approx(tau1, rel=0.04)


@pytest.mark.xfail(
    strict=True,
    reason="known departure (reported): the Pasion-Oldenburg curve with alpha = gamma/10 "
    "is flatter than a sphere early and steeper late: over 0.1-5 tau_1 it differs from the "
    "series by up to a factor ~1.6 after the best scaling (max |ln ratio| 0.45)",
)
def test_decay_shape_over_the_gates_follows_the_sphere_series() -> None:
    """A copper sphere's decay over 0.1 to 5 tau_1 (where the gates sample mines and
    clutter) has the shape of the series, to 15 % after one overall scale."""
    a = 0.003
    delta, w = _sphere_modes(1.0, 400)
    tau = MU0 * METALS["copper"].sigma_s_m * a**2 / delta**2
    t = np.geomspace(0.1, 5.0, 25) * tau[0]
    ref = (w[:, None] * np.exp(-t[None, :] / tau[:, None])).sum(axis=0)
    log_ratio = np.log(_sim_decay(_sphere("copper", a), t) / ref)
    assert np.abs(log_ratio - log_ratio.mean()).max() < math.log(1.15)


def test_minimum_metal_mine_is_hard_at_depth_but_shrapnel_is_easy() -> None:
    noise = EmiSettings().noise_v
    pma2 = _peak([place("pma2", 1.0, 0.15)])[0]
    shrapnel = _peak([place("shrapnel", 1.0, 0.15)])[0]
    pma2_shallow = _peak([place("pma2", 1.0, 0.02)])[0]
    assert LIBRARY["pma2"].metal_mass_g < 1.0
    assert pma2 < 6 * noise  # near or below a detection threshold
    assert pma2_shallow > 20 * noise  # found when shallow
    assert shrapnel > 50 * noise


def test_viscous_soil_decays_as_one_over_time_and_grows_when_the_head_dips() -> None:
    n = 2000
    traj = Trajectory(
        np.arange(n) / 1000.0, np.linspace(0, 2, n), np.zeros(n), np.linspace(0.1, 0.02, n)
    )
    scene = canonical_scene([], "laterite")
    e = dataclasses.replace(QUIET, soil_response=True)
    v = simulate_emi(scene, traj, e, GATES, np.random.default_rng(0)).astype(np.float64)
    np.testing.assert_allclose(v[:, 0] / v[:, -1], GATES[-1] / GATES[0], rtol=1e-4)
    # the half-space's field is that of an image loop 2 h below (image theory for a
    # permeable half-space, small chi); the coincident coil links its flux: the mutual
    # inductance of two coaxial loops of radius a, 2 h apart (Maxwell, elliptic integrals).
    # The simulator's on-axis form (a^2/(a^2 + 4h^2))^1.5 differs from it by 6 % here
    # (13 % at 5 cm).
    from scipy.special import ellipe, ellipk

    def mutual(d_m: float, a_m: float = QUIET.coil_radius_m) -> float:
        k2 = 4 * a_m**2 / (4 * a_m**2 + d_m**2)
        k = math.sqrt(k2)
        return a_m * ((2 / k - k) * ellipk(k2) - 2 / k * ellipe(k2))

    assert v[-1, 0] / v[0, 0] == pytest.approx(mutual(2 * 0.02) / mutual(2 * 0.1), rel=0.10)


def test_emi_peak_sits_at_the_coil_offset_behind_the_object_in_head_frame() -> None:
    s = with_changes(
        SimSettings(),
        **{
            "emi.noise_v": 0.0,
            "emi.hum_v": 0.0,
            "emi.drift_v": 0.0,
            "emi.soil_response": False,
            "odometer.enabled": False,  # head geometry, not survey-wheel error
        },
    )
    scene = canonical_scene([place("tm62m", 1.5, 0.1)], "loam", length_m=3.0)
    lane = simulate_lane(4, s, scene=scene)
    x_peak = lane.emi.position_m[int(np.argmax(lane.emi.data[:, 0]))]
    assert x_peak == pytest.approx(1.5 - s.head.emi_offset_m, abs=0.01)


def test_mains_hum_is_at_the_mains_frequency() -> None:
    n = 4000
    traj = Trajectory(np.arange(n) / 1000.0, np.linspace(0, 2, n), np.zeros(n), np.full(n, 0.05))
    e = dataclasses.replace(QUIET, hum_v=0.01, mains_hz=60.0)
    v = simulate_emi(canonical_scene([], "dry_sand"), traj, e, GATES, np.random.default_rng(1))
    spec = np.abs(np.fft.rfft(v[:, 0] - v[:, 0].mean()))
    f = np.fft.rfftfreq(n, 1e-3)
    assert f[np.argmax(spec)] == pytest.approx(60.0, abs=0.5)
