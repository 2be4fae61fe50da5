"""Pulse-induction EMI forward model: decay-gate voltages of a coincident-loop coil.

A buried metal object is a magnetic dipole induced by the transmitter's primary field;
the coil picks up its decaying secondary field. By reciprocity the voltage of a
coincident transmit/receive loop is ``V(t) = H^T L(t) H``, ``H`` the loop's field per unit
current at the object and ``L(t)`` the object's polarizability tensor (Bell, Barrow &
Miller 2001; Pasion & Oldenburg 2001). ``H`` is the field of a horizontal loop of radius
``a`` in a dipole form softened by ``a``: exact on the axis (a^2 / (a^2 + z^2)^{3/2}) and
~1/r^3 far away, so ``V`` falls as ~1/r^6 with distance.

Each principal polarizability decays as Pasion-Oldenburg
``k (1 + t/alpha)^-beta exp(-t/gamma)``: ``k`` grows with the metal volume, ``gamma`` is the
eddy-current time constant (conductivity, permeability and size; see
:func:`detect.sim.targets.decay_time_s`), so copper outlasts stainless steel of the same
size, and a 0.5 g firing pin dies out in the early gates.

Viscous magnetic soil (mineralised, e.g. laterite) adds ``chi_v / t`` with a height
factor, which is why head height variation looks like a target in such soils. Then slow
drift, mains hum at 50/60 Hz and its 3rd harmonic, and white noise per gate.
"""

from __future__ import annotations

import math

import numpy as np

from detect.sim.motion import Trajectory, smooth_series
from detect.sim.scene import PlacedTarget, Scene
from detect.sim.settings import EmiSettings
from detect.sim.targets import METALS, decay_time_s

#: Reference: 1 g of steel (as a sphere) 10 cm below the coil centre reads 1.0 (normalised
#: volts) at zero time; the reference geometry factor is computed for the configured coil.
REF_MASS_G = 1.0
REF_DIST_M = 0.10
#: Viscous soil gain: chi_v = 1e-3 at 5 cm head height gives ~0.5 at the first gate.
SOIL_GAIN = 1400.0
PO_BETA = 0.5
PO_ALPHA_FRAC = 0.1


def loop_field(r_xyz: np.ndarray, a_m: float) -> np.ndarray:
    """Field (per unit moment, normalised) of a horizontal loop at the origin at ``r``.

    ``r_xyz``: (..., 3) vectors from the loop centre to the object (z positive up).
    """
    r2 = np.sum(r_xyz**2, axis=-1, keepdims=True)
    r = np.sqrt(np.maximum(r2, 1e-12))
    rz = r_xyz[..., 2:3] / r
    m = np.zeros_like(r_xyz)
    m[..., 2] = 1.0
    return a_m**2 * (3.0 * rz * r_xyz / r - m) / (r2 + a_m**2) ** 1.5


def pasion_oldenburg(t_s: np.ndarray, gamma_s: float) -> np.ndarray:
    alpha = PO_ALPHA_FRAC * gamma_s
    return (1.0 + t_s / alpha) ** (-PO_BETA) * np.exp(-t_s / gamma_s)


def target_params(t: PlacedTarget) -> tuple[float, float, float]:
    """Transverse and axial polarizability scale (per REF_MASS_G steel) and decay time."""
    k = t.kind
    metal = METALS[k.metal]
    vol_rel = (t.metal_mass_g / metal.density_kg_m3) / (REF_MASS_G / METALS["steel"].density_kg_m3)
    gamma = decay_time_s(metal, max(k.metal_scale_m, 1e-5))
    if k.shape == "rod":
        return vol_rel * 0.5, vol_rel * 2.0, gamma
    if k.shape == "disc":
        return vol_rel * 0.7, vol_rel * 1.6, gamma
    return vol_rel, vol_rel, gamma


def ref_coupling(a_m: float) -> float:
    h = loop_field(np.array([[0.0, 0.0, -REF_DIST_M]]), a_m)
    return float(np.sum(h**2))


def target_response(
    targets: tuple[PlacedTarget, ...],
    x_m: np.ndarray,
    y_m: np.ndarray,
    h_m: np.ndarray,
    gates_s: np.ndarray,
    a_m: float,
) -> np.ndarray:
    """(n_readings, n_gates) voltage of all metal objects for a coil at (x, y, h)."""
    out = np.zeros((x_m.size, gates_s.size))
    norm = 1.0 / ref_coupling(a_m)
    for t in targets:
        if t.metal_mass_g <= 0:
            continue
        kt, ka, gamma = target_params(t)
        # Out to where the 1/r^6 tail falls below 1e-4 (normalised V).
        reach_m = float(np.clip(REF_DIST_M * (max(kt, ka) / 1e-4) ** (1 / 6), 0.3, 3.0))
        lo, hi = np.searchsorted(x_m, [t.x_m - reach_m, t.x_m + reach_m])
        if hi <= lo:
            continue
        z_metal = t.depth_m + t.kind.metal_depth_frac * t.height_m
        r = np.column_stack(
            [
                np.full(hi - lo, t.x_m) - x_m[lo:hi],
                np.full(hi - lo, t.y_m) - y_m[lo:hi],
                -(h_m[lo:hi] + z_metal),
            ]
        )
        hf = loop_field(r, a_m)
        h_axis = hf @ np.asarray(t.axis)
        coupling = kt * np.sum(hf**2, axis=1) + (ka - kt) * h_axis**2
        out[lo:hi] += norm * coupling[:, None] * pasion_oldenburg(gates_s, gamma)[None, :]
    return out


def soil_response(
    chi_v: np.ndarray, h_m: np.ndarray, gates_s: np.ndarray, a_m: float
) -> np.ndarray:
    """Viscous remanent magnetisation of the half-space: chi_v * f(h) * t1 / t."""
    geom = (a_m**2 / (a_m**2 + (2.0 * h_m) ** 2)) ** 1.5
    return SOIL_GAIN * (chi_v * geom)[:, None] * (gates_s[0] / gates_s)[None, :]


def simulate_emi(
    scene: Scene, traj: Trajectory, e: EmiSettings, gates_s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Readings ``(n, n_gates)`` float32 for coil positions ``traj`` (x already offset)."""
    v = target_response(scene.targets, traj.x_m, traj.y_m, traj.height_m, gates_s, e.coil_radius_m)
    if e.soil_response:
        h_ground = np.maximum(traj.height_m - scene.surface_m(traj.x_m), 0.0)
        v += soil_response(scene.chi_viscous(traj.x_m), h_ground, gates_s, e.coil_radius_m)
    n_g = v.shape[1]
    t = traj.time_s
    if e.drift_v > 0:
        common = smooth_series(rng, t, 0.005, 0.1, n=4)
        per_gate = np.stack([smooth_series(rng, t, 0.005, 0.1, n=3) for _ in range(n_g)], axis=1)
        v += e.drift_v * (0.7 * common[:, None] + 0.3 * per_gate)
    if e.hum_v > 0:
        w = 2 * math.pi * e.mains_hz
        ph = np.asarray(rng.uniform(0, 2 * math.pi, 2))
        gate_w = np.asarray(rng.uniform(0.5, 1.0, n_g))
        hum = np.sin(w * t + ph[0]) + 0.3 * np.sin(3 * w * t + ph[1])
        v += e.hum_v * hum[:, None] * gate_w[None, :]
    out = v.astype(np.float32)
    if e.noise_v > 0:
        out += np.float32(e.noise_v) * rng.standard_normal(out.shape, dtype=np.float32)
    return out
