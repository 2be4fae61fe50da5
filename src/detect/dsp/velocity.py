"""Ground velocity from diffraction hyperbolas: fit to picks, or scan for best focusing.

A point scatterer at along-track ``x0`` and two-way time ``t0`` appears at
``t(x)^2 = t0^2 + (2 (x - x0) / v)^2``, which is a quadratic in ``x`` for ``t^2``:
``t^2 = a + b x + c x^2`` with ``c = 4 / v^2``, ``x0 = -b / (2c)``, ``t0^2 = a - c x0^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detect.dsp.base import DspError


@dataclass(frozen=True)
class HyperbolaFit:
    x0_m: float
    t0_ns: float
    velocity_m_ns: float
    depth_m: float
    rms_ns: float

    @property
    def relative_permittivity(self) -> float:
        return (0.299792458 / self.velocity_m_ns) ** 2


def fit_hyperbola(x_m: np.ndarray, t_ns: np.ndarray) -> HyperbolaFit:
    """Least-squares hyperbola through picks (x, two-way time from time zero)."""
    x = np.asarray(x_m, dtype=np.float64)
    t = np.asarray(t_ns, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(t)
    x, t = x[ok], t[ok]
    if x.size < 3 or np.ptp(x) == 0:
        raise DspError("fit_hyperbola: needs at least 3 finite picks at different positions")
    xm = x.mean()
    a_mat = np.stack([np.ones_like(x), x - xm, (x - xm) ** 2], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(a_mat, t**2, rcond=None)
    if not c > 0:
        raise DspError("fit_hyperbola: picks do not open upwards like a diffraction")
    x0 = xm - b / (2 * c)
    t0_sq = a - b * b / (4 * c)
    if not t0_sq > 0:
        raise DspError("fit_hyperbola: apex time is not positive")
    v = 2.0 / math.sqrt(c)
    t0 = math.sqrt(t0_sq)
    model = np.sqrt(np.maximum(t0_sq + c * (x - x0) ** 2, 0))
    rms = float(np.sqrt(np.mean((model - t) ** 2)))
    return HyperbolaFit(float(x0), t0, v, v * t0 / 2.0, rms)


def hyperbola_semblance(
    data: np.ndarray,
    dx_m: float,
    dt_ns: float,
    x0_m: float,
    t0_ns: float,
    velocities_m_ns: np.ndarray,
    half_width_m: float = 0.3,
    time_zero_ns: float = 0.0,
    window_ns: float = 0.3,
) -> np.ndarray:
    """Semblance along the hyperbola of apex (x0, t0) for each trial velocity.

    Semblance = (sum of amplitudes)^2 / (N * sum of squares), summed over a short time
    window; it peaks at the velocity whose hyperbola follows the diffraction.
    """
    x = np.asarray(data, dtype=np.float64)
    n_tr, n_t = x.shape
    j0 = round(x0_m / dx_m)
    half = round(half_width_m / dx_m)
    traces = np.arange(max(0, j0 - half), min(n_tr, j0 + half + 1))
    off = (traces - x0_m / dx_m) * dx_m
    nw = max(1, round(window_ns / dt_ns))
    win = np.arange(-nw, nw + 1) * dt_ns
    out = np.empty(len(velocities_m_ns))
    for i, v in enumerate(np.asarray(velocities_m_ns, dtype=np.float64)):
        t = np.sqrt(t0_ns**2 + (2 * off / v) ** 2)[:, None] + win[None, :]
        pos = (t + time_zero_ns) / dt_ns
        k = np.clip(np.floor(pos).astype(np.int64), 0, n_t - 2)
        f = np.clip(pos - k, 0, 1)
        amp = (1 - f) * x[traces[:, None], k] + f * x[traces[:, None], k + 1]
        num = (amp.sum(axis=0) ** 2).sum()
        den = len(traces) * (amp**2).sum()
        out[i] = num / den if den > 0 else 0.0
    return out


def scan_velocity(
    data: np.ndarray,
    dx_m: float,
    dt_ns: float,
    x0_m: float,
    t0_ns: float,
    v_lo_m_ns: float = 0.04,
    v_hi_m_ns: float = 0.2,
    n: int = 161,
    **kwargs: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Best velocity by semblance over a grid; returns (v, velocities, semblance)."""
    vs = np.linspace(v_lo_m_ns, v_hi_m_ns, n)
    s = hyperbola_semblance(data, dx_m, dt_ns, x0_m, t0_ns, vs, **kwargs)
    return float(vs[int(np.argmax(s))]), vs, s
