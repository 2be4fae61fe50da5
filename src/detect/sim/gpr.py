"""GPR forward model: ray-based convolutional synthesis of a whole lane at once.

Each trace is a sum of echoes ``A * w_q(t - T)`` convolved with the system response:

* **direct coupling** at time zero (transmitter to receiver, positive lobe);
* the **ground reflection** at ``2 h / c`` after it, ``h`` the local head height;
* a **layer** interface and each **object** top (and bottom, for dielectric bodies): two-way
  time along the refracted ray (Fermat's principle, solved by Newton iterations) through
  air then soil at ``v = c / sqrt(eps_r)``, which gives the hyperbolas; extended objects
  have a flat top (specular zone) of their size;
* many weak **point scatterers** (soil heterogeneity).

Amplitude: normal-incidence reflection coefficient from the permittivity contrast (metal
-1, so plastic in wet soil has the opposite sign), two-way surface transmission
``1 - R_s^2``, a size factor (Rayleigh roll-off for objects small against the wavelength),
a Gaussian two-way beam in the angle off nadir of the antenna-object line (the
refracted ray's angle in soil cannot exceed the critical angle, so it would not bound the
footprint), spreading, conductive loss ``exp(-2 alpha r)``.
Frequency-dependent (constant-Q) loss ``exp(-pi f tau / Q)`` lowers the centre frequency
of late echoes; it is applied through a bank of pre-attenuated Ricker wavelets indexed by
``q = pi f_c tau / Q``. Then system ringing, per-trace time jitter, slow time-zero and
gain drift, and white noise.

All work is array work over (echo, tap): there is no Python loop per trace or sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal.windows import tukey

from detect.sim.motion import Trajectory, smooth_series
from detect.sim.scene import PlacedTarget, Scene
from detect.sim.settings import GprSettings
from detect.sim.soil import C0_M_NS, reflection_coefficient

OVERSAMPLE = 8
Q_LEVELS = np.linspace(0.0, 8.0, 41)
R_REF_M = 0.1
CHUNK_ECHOES = 16384
#: Echoes weaker than this (relative to the direct coupling) are not rendered: 40 x below
#: the default noise floor.
MIN_ECHO = 5e-5


@dataclass(frozen=True)
class WaveletBank:
    """``table[q_index, frac_index, tap]``: w((tap - half + 1 - frac/OS) * dt)."""

    table: np.ndarray
    half: int

    @property
    def n_taps(self) -> int:
        return int(self.table.shape[2])


def ricker_spectrum(f_hz: np.ndarray, centre_hz: float) -> np.ndarray:
    """Ricker (Mexican hat) amplitude spectrum with peak at ``centre_hz``; unit time peak."""
    r = f_hz / centre_hz
    return r**2 * np.exp(-(r**2))


def ricker(t_ns: np.ndarray, centre_hz: float) -> np.ndarray:
    """Time-domain Ricker wavelet with unit positive peak at t = 0."""
    a = (math.pi * centre_hz * 1e-9 * t_ns) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


@lru_cache(maxsize=8)
def wavelet_bank(centre_hz: float, dt_ns: float, quadrature: bool = False) -> WaveletBank:
    """Pre-attenuated Ricker wavelets on a fine sub-sample grid; ``quadrature``: their
    Hilbert transforms (a wavelet turned by phase ``a`` is ``cos a w + sin a H(w)``)."""
    half = math.ceil(3.0 / (centre_hz * 1e-9) / dt_ns)
    n_taps = 2 * half
    fine_dt = dt_ns / OVERSAMPLE
    n_fft = 1 << math.ceil(math.log2(16 * n_taps * OVERSAMPLE))
    f_hz = np.fft.rfftfreq(n_fft, fine_dt * 1e-9)
    base = ricker_spectrum(f_hz, centre_hz)
    ref_peak = float(np.fft.irfft(base, n_fft)[0])
    if quadrature:
        base = base * -1j
    m = np.arange(n_taps) - half + 1
    frac = np.arange(OVERSAMPLE + 1)
    idx = (m[None, :] * OVERSAMPLE - frac[:, None]) % n_fft
    taper = tukey(n_taps, 0.3)
    table = np.empty((Q_LEVELS.size, OVERSAMPLE + 1, n_taps))
    for i, q in enumerate(Q_LEVELS):
        w = np.fft.irfft(base * np.exp(-q * f_hz / centre_hz), n_fft) / ref_peak
        table[i] = w[idx] * taper
    return WaveletBank(table, half)


def system_response(n_fft: int, dt_ns: float, g: GprSettings) -> np.ndarray:
    """Spectrum of delta + damped ringing at 0.8 f_c (antenna/cable resonances).

    ``g.ringing`` is the ringing's peak over the pulse's peak for a unit Ricker at
    ``f_c``: a physical ratio, the same at any sample interval (a per-sample impulse
    response of fixed height would ring louder the finer the sampling)."""
    t = np.arange(n_fft) * dt_ns
    ring = np.sin(2 * np.pi * 0.8 * g.centre_hz * 1e-9 * t) * np.exp(-t / g.ringing_tau_ns)
    ring[0] = 0.0
    half = math.ceil(3.0 / (g.centre_hz * 1e-9) / dt_ns)
    pulse = ricker((np.arange(2 * half + 1) - half) * dt_ns, g.centre_hz)
    tail = np.convolve(pulse, ring[: n_fft // 2])
    ring *= g.ringing / max(float(np.max(np.abs(tail))), 1e-12)
    h = ring.copy()
    h[0] += 1.0
    return np.fft.rfft(h)


@dataclass
class Echoes:
    """Flat arrays, one entry per echo."""

    trace: np.ndarray
    t_ns: np.ndarray
    amp: np.ndarray
    q: np.ndarray
    phase: np.ndarray | None = None  # radians; None: all zero-phase

    @staticmethod
    def concat(parts: list[Echoes]) -> Echoes:
        phased = any(p.phase is not None for p in parts)
        return Echoes(
            np.concatenate([p.trace for p in parts]),
            np.concatenate([p.t_ns for p in parts]),
            np.concatenate([p.amp for p in parts]),
            np.concatenate([p.q for p in parts]),
            np.concatenate([np.zeros(p.amp.size) if p.phase is None else p.phase for p in parts])
            if phased
            else None,
        )


def refracted_path(
    h_m: np.ndarray, rho_m: np.ndarray, d_m: np.ndarray, v_m_ns: float, iters: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fermat ray from an antenna ``h`` above ground to a point ``d`` deep, ``rho`` across.

    Returns air path length, soil path length and the ray angle in soil from vertical.
    Newton iterations on dT/du = 0 for the surface crossing ``u`` (monotone, converges
    in a few steps from the straight-line guess).
    """
    c = C0_M_NS
    u = rho_m * h_m / np.maximum(h_m + d_m, 1e-9)
    for _ in range(iters):
        sa = np.sqrt(h_m**2 + u**2)
        sb = np.sqrt(d_m**2 + (rho_m - u) ** 2)
        g = u / (c * sa) - (rho_m - u) / (v_m_ns * sb)
        gp = h_m**2 / (c * sa**3) + d_m**2 / (v_m_ns * sb**3)
        u = np.clip(u - g / np.maximum(gp, 1e-12), 0.0, rho_m)
    sa = np.sqrt(h_m**2 + u**2)
    sb = np.sqrt(d_m**2 + (rho_m - u) ** 2)
    return sa, sb, np.arctan2(rho_m - u, d_m)


@dataclass(frozen=True)
class Reflectors:
    x_m: np.ndarray
    y_m: np.ndarray
    depth_m: np.ndarray
    refl: np.ndarray
    flat_m: np.ndarray
    size_m: np.ndarray
    extra_ns: np.ndarray
    gain: np.ndarray
    phase: np.ndarray | None = None


def target_reflectors(
    targets: tuple[PlacedTarget, ...],
    eps_soil: float,
    g: GprSettings | None = None,
    rng: np.random.Generator | None = None,
) -> Reflectors:
    """Top (and, for dielectric bodies, bottom) interfaces of each object; with ``g``'s
    domain randomisation on and ``rng``, one gain and phase draw per object."""
    rows = []
    randomise = g is not None and rng is not None and (g.echo_gain_sigma or g.echo_phase_deg)
    for t in targets:
        gain, phase = 1.0, 0.0
        if randomise:
            assert g is not None and rng is not None
            gain = float(np.exp(rng.normal(0.0, g.echo_gain_sigma)))
            phase = math.radians(float(rng.uniform(-1.0, 1.0)) * g.echo_phase_deg)
        k = t.kind
        ax = np.asarray(t.axis)
        if k.shape == "rod":
            along = t.height_m * abs(ax[0]) + t.diameter_m
            vertical = t.height_m * abs(ax[2]) + t.diameter_m * math.hypot(ax[0], ax[1])
        else:
            along, vertical = t.diameter_m, t.height_m
        flat = 0.35 * along if k.shape in ("disc", "box", "rod") else 0.15 * along
        size = max(along, t.diameter_m)
        r_top = reflection_coefficient(eps_soil, k.eps_body)
        rows.append((t.x_m, t.y_m, t.depth_m, r_top, flat, size, 0.0, gain, phase))
        if k.eps_body is not None:
            r_bot = -r_top * (1.0 - r_top**2)
            extra = 2.0 * vertical * math.sqrt(k.eps_body) / C0_M_NS
            rows.append((t.x_m, t.y_m, t.depth_m, r_bot, flat, size, extra, gain, phase))
    arr = np.array(rows, dtype=float).reshape(-1, 9)
    c = [arr[:, i].copy() for i in range(9)]
    return Reflectors(
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], phase=c[8] if randomise else None
    )


def scatterer_reflectors(scat: np.ndarray) -> Reflectors:
    n = scat.shape[0]
    return Reflectors(
        scat[:, 0], scat[:, 1], scat[:, 2], scat[:, 3], np.zeros(n), np.full(n, 0.02),
        np.zeros(n), np.ones(n),
    )  # fmt: skip


def _reflector_echoes(
    r: Reflectors, scene: Scene, traj: Trajectory, g: GprSettings, window_m: float = 0.6
) -> Echoes:
    soil = scene.soil
    n_tr = traj.x_m.size
    if r.x_m.size == 0 or n_tr == 0:
        return Echoes(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    half_w = window_m + r.flat_m
    lo = np.searchsorted(traj.x_m, r.x_m - half_w)
    hi = np.searchsorted(traj.x_m, r.x_m + half_w)
    k_max = int(np.max(hi - lo)) if hi.size else 0
    if k_max == 0:
        return Echoes(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))
    tr = lo[:, None] + np.arange(k_max)[None, :]
    ok = tr < hi[:, None]
    ri, ki = np.nonzero(ok)
    tr = tr[ri, ki]
    v = soil.velocity_m_ns
    dx = traj.x_m[tr] - r.x_m[ri]
    dy = traj.y_m[tr] - r.y_m[ri]
    h = np.maximum(traj.height_m[tr] - scene.surface_m(traj.x_m[tr]), 0.005)
    d = np.maximum(r.depth_m[ri] + scene.surface_m(r.x_m[ri]), 1e-3)
    rho = np.maximum(np.hypot(dx, dy) - r.flat_m[ri], 0.0)
    sa, sb, _ = refracted_path(h, rho, d, v)
    theta = np.arctan2(rho, h + d)
    lam_half = 0.5 * v / (g.centre_hz * 1e-9)
    x = r.size_m[ri] / lam_half
    size_f = x**2 / (1.0 + x**2)
    n = math.sqrt(soil.eps_r)
    t2 = 1.0 - ((1.0 - n) / (1.0 + n)) ** 2
    beam = np.exp(-((theta / math.radians(g.beam_deg)) ** 2))
    amp = (
        r.refl[ri]
        * t2
        * size_f
        * beam
        * (R_REF_M / (R_REF_M + sa + sb)) ** g.spreading_power
        * np.exp(-2.0 * soil.alpha_np_m * sb)
        * r.gain[ri]
    )
    tau_soil_ns = 2.0 * sb / v + r.extra_ns[ri]
    t_ns = g.time_zero_ns + 2.0 * sa / C0_M_NS + tau_soil_ns
    q = math.pi * g.centre_hz * 1e-9 * tau_soil_ns / soil.q
    keep = np.abs(amp) > MIN_ECHO * g.coupling
    phase = None if r.phase is None else r.phase[ri][keep]
    return Echoes(tr[keep].astype(np.int64), t_ns[keep], amp[keep], q[keep], phase)


def layer_and_ground_echoes(scene: Scene, traj: Trajectory, g: GprSettings) -> Echoes:
    soil = scene.soil
    n_tr = traj.x_m.size
    tr = np.arange(n_tr, dtype=np.int64)
    h = np.maximum(traj.height_m - scene.surface_m(traj.x_m), 0.005)
    n = math.sqrt(soil.eps_r)
    r_g = (1.0 - n) / (1.0 + n)
    k0 = 2 * math.pi * g.centre_hz * 1e-9 / C0_M_NS
    coherent = math.exp(-2.0 * (k0 * soil.roughness_m) ** 2)
    t_g = g.time_zero_ns + 2.0 * h / C0_M_NS
    a_g = r_g * coherent * R_REF_M / (R_REF_M + h)
    d_l = np.maximum(scene.layer_depth_m(traj.x_m), 0.05)
    r_l = reflection_coefficient(soil.eps_r, soil.layer_eps_r)
    tau_l = 2.0 * d_l / soil.velocity_m_ns
    a_l = r_l * (1.0 - r_g**2) * R_REF_M / (R_REF_M + h + d_l) * np.exp(-2 * soil.alpha_np_m * d_l)
    q_l = math.pi * g.centre_hz * 1e-9 * tau_l / soil.q
    dc = np.full(n_tr, g.time_zero_ns)
    return Echoes(
        np.concatenate([tr, tr, tr]),
        np.concatenate([dc, t_g, t_g + tau_l]),
        np.concatenate([np.full(n_tr, g.coupling), a_g, a_l]),
        np.concatenate([np.zeros(n_tr), np.zeros(n_tr), q_l]),
    )


def render(echoes: Echoes, n_traces: int, g: GprSettings) -> np.ndarray:
    """Sum the echoes' wavelets into ``(n_traces, n_samples)`` (float64); echoes with a
    phase are the sum of the wavelet and its quadrature, weighted by cos and sin."""
    if echoes.phase is None or not np.any(echoes.phase):
        return _render(echoes, n_traces, g, False)
    ph = echoes.phase
    return _render(
        Echoes(echoes.trace, echoes.t_ns, echoes.amp * np.cos(ph), echoes.q), n_traces, g, False
    ) + _render(
        Echoes(echoes.trace, echoes.t_ns, echoes.amp * np.sin(ph), echoes.q), n_traces, g, True
    )


def _render(echoes: Echoes, n_traces: int, g: GprSettings, quadrature: bool) -> np.ndarray:
    bank = wavelet_bank(g.centre_hz, g.dt_ns, quadrature)
    ns = g.n_samples
    pad = 2 * bank.half
    width = ns + 2 * pad
    out = np.zeros(n_traces * width)
    s = echoes.t_ns / g.dt_ns
    i0 = np.floor(s)
    frac = np.rint((s - i0) * OVERSAMPLE).astype(np.int64)
    qi = np.clip(np.rint(echoes.q / (Q_LEVELS[1] - Q_LEVELS[0])), 0, Q_LEVELS.size - 1).astype(
        np.int64
    )
    valid = (i0 > -bank.half) & (i0 < ns + bank.half - 1) & (echoes.trace < n_traces)
    idx_all = np.nonzero(valid)[0]
    taps = np.arange(bank.n_taps) - bank.half + 1 + pad
    for c0 in range(0, idx_all.size, CHUNK_ECHOES):
        sel = idx_all[c0 : c0 + CHUNK_ECHOES]
        base = echoes.trace[sel] * width + i0[sel].astype(np.int64)
        flat_idx = (base[:, None] + taps[None, :]).ravel()
        w = (bank.table[qi[sel], frac[sel]] * echoes.amp[sel, None]).ravel()
        out += np.bincount(flat_idx, weights=w, minlength=out.size)
    return out.reshape(n_traces, width)[:, pad : pad + ns]


def simulate_gpr(
    scene: Scene, traj: Trajectory, g: GprSettings, rng: np.random.Generator
) -> np.ndarray:
    """Traces ``(n_traces, n_samples)`` float32 for the head positions in ``traj``."""
    n_tr = traj.x_m.size
    parts = [
        layer_and_ground_echoes(scene, traj, g),
        _reflector_echoes(
            target_reflectors(scene.targets, scene.soil.eps_r, g, rng), scene, traj, g
        ),
    ]
    if g.heterogeneity and scene.scatterers.size:
        parts.append(_reflector_echoes(scatterer_reflectors(scene.scatterers), scene, traj, g))
    echoes = Echoes.concat(parts)
    shift_ns = np.zeros(n_tr)
    if g.jitter_ns > 0:
        shift_ns += g.jitter_ns * rng.standard_normal(n_tr)
    if g.time_zero_drift_ns > 0:
        shift_ns += g.time_zero_drift_ns * smooth_series(rng, traj.time_s, 0.01, 0.1, n=3)
    echoes.t_ns = echoes.t_ns + shift_ns[echoes.trace]
    traces = render(echoes, n_tr, g)
    if g.ringing > 0:
        n_fft = 2 * g.n_samples
        spec = np.fft.rfft(traces, n_fft, axis=1) * system_response(n_fft, g.dt_ns, g)
        traces = np.fft.irfft(spec, n_fft, axis=1)[:, : g.n_samples]
    if g.gain_drift > 0:
        gain = 1.0 + g.gain_drift * smooth_series(rng, traj.time_s, 0.01, 0.2, n=4)
        traces *= gain[:, None]
    out = traces.astype(np.float32)
    if g.noise > 0:
        out += np.float32(g.noise) * rng.standard_normal(out.shape, dtype=np.float32)
    return out
