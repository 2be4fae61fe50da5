"""Offline profile processing: Stolt F-K and Kirchhoff migration, F-K (fan) filtering.

All take a profile on a regular along-track grid (``dx_m``) with time zero corrected
(samples before ``time_zero_ns`` are left out of the imaging and returned as zeros), and
a constant velocity in m/ns. Time axes are two-way time; depth is ``v * t / 2``.
They need the whole profile and refuse to stream.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from detect.blocks import GprBlock
from detect.dsp.base import Param, Step, register, trace_spacing_m


def _next_fast(n: int) -> int:
    return 1 << max(1, int(np.ceil(np.log2(n))))


def _t0_index(time_zero_ns: float, dt_ns: float) -> int:
    return max(0, round(time_zero_ns / dt_ns))


def stolt_migrate(
    data: np.ndarray, dx_m: float, dt_ns: float, velocity_m_ns: float, time_zero_ns: float = 0.0
) -> np.ndarray:
    """Constant-velocity Stolt migration (exploding reflector, velocity v/2).

    Each output wavenumber pair (kx, f_tau) takes the input at f = sqrt(f_tau^2 + (v/2 kx)^2)
    (linear interpolation in f) times the Jacobian f_tau / f. Padded 2x in both axes.
    """
    i0 = _t0_index(time_zero_ns, dt_ns)
    x = np.asarray(data, dtype=np.float64)[:, i0:]
    n_tr, n_t = x.shape
    nxp, ntp = _next_fast(2 * n_tr), _next_fast(2 * n_t)
    spec = np.fft.fft2(x, s=(nxp, ntp))
    kx = np.fft.fftfreq(nxp, dx_m)[:, None]
    f_tau = np.fft.fftfreq(ntp, dt_ns)[None, :]
    df = 1.0 / (ntp * dt_ns)
    u = velocity_m_ns / 2.0
    f_in = np.sign(f_tau) * np.sqrt(f_tau**2 + (u * kx) ** 2)
    pos = f_in / df
    lo = np.floor(pos).astype(np.int64)
    w = pos - lo
    valid = (np.abs(pos) < ntp // 2 - 1) & (f_tau != 0)
    rows = np.broadcast_to(np.arange(nxp)[:, None], pos.shape)
    a = spec[rows, lo % ntp]
    b = spec[rows, (lo + 1) % ntp]
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(valid, f_tau / np.where(f_in == 0, 1.0, f_in), 0.0)
    image = np.where(valid, ((1 - w) * a + w * b) * jac, 0.0)
    out = np.real(np.fft.ifft2(image))[:n_tr, :n_t]
    full = np.zeros(np.shape(data), dtype=np.float64)
    full[:, i0:] = out
    return full


def kirchhoff_migrate(
    data: np.ndarray,
    dx_m: float,
    dt_ns: float,
    velocity_m_ns: float,
    time_zero_ns: float = 0.0,
    aperture_m: float = 0.5,
) -> np.ndarray:
    """Diffraction-summation (Kirchhoff) migration with obliquity weight ``tau / t``.

    ``out[j, tau] = sum_h w * data[j + h, t]``, ``t = sqrt(tau^2 + (2 h dx / v)^2)``,
    over offsets within ``aperture_m``; linear interpolation in time. Vectorised over
    traces and samples, one pass per offset.
    """
    i0 = _t0_index(time_zero_ns, dt_ns)
    x = np.asarray(data, dtype=np.float64)[:, i0:]
    n_tr, n_t = x.shape
    tau = np.arange(n_t) * dt_ns
    out = np.zeros_like(x)
    n_h = int(np.floor(aperture_m / dx_m))
    flat = np.concatenate([x, np.zeros((n_tr, 1))], axis=1)
    for h in range(-n_h, n_h + 1):
        lo_j, hi_j = max(0, -h), min(n_tr, n_tr - h)
        if lo_j >= hi_j:
            continue
        t = np.sqrt(tau**2 + (2.0 * h * dx_m / velocity_m_ns) ** 2)
        pos = t / dt_ns
        k = np.floor(pos).astype(np.int64)
        f = pos - k
        inside = k < n_t - 1
        k = np.where(inside, k, n_t)
        wgt = np.where(inside, np.divide(tau, t, out=np.ones_like(t), where=t > 0), 0.0)
        src = flat[lo_j + h : hi_j + h]
        kk = np.minimum(k + 1, n_t)
        out[lo_j:hi_j] += wgt * ((1 - f) * src[:, k] + f * src[:, kk])
    full = np.zeros(np.shape(data), dtype=np.float64)
    full[:, i0:] = out
    return full


def fk_filter(
    data: np.ndarray,
    dx_m: float,
    dt_ns: float,
    v_min_m_ns: float = 0.05,
    kx_min_per_m: float = 0.0,
    taper: float = 0.1,
) -> np.ndarray:
    """F-K fan filter: keep slopes no steeper than a diffraction at ``v_min_m_ns``.

    An event of slope p = dt/dx (ns/m) sits at kx = p f; a diffraction in a medium of
    velocity v has |p| <= 2/v, so |kx| > 2 |f| / v_min is noise. ``kx_min_per_m`` > 0 also
    removes near-flat events (|kx| below it: ringing, layers). Cosine tapers of relative
    width ``taper`` soften both edges.
    """
    x = np.asarray(data, dtype=np.float64)
    n_tr, n_t = x.shape
    nxp, ntp = _next_fast(n_tr), _next_fast(n_t)
    spec = np.fft.fft2(x, s=(nxp, ntp))
    kx = np.abs(np.fft.fftfreq(nxp, dx_m))[:, None]
    f = np.abs(np.fft.fftfreq(ntp, dt_ns))[None, :]
    edge = 2.0 * f / v_min_m_ns
    width = np.maximum(taper * edge, 1e-12)
    mask = np.clip((edge + width - kx) / width, 0.0, 1.0)
    mask = 0.5 - 0.5 * np.cos(np.pi * mask)
    if kx_min_per_m > 0:
        w2 = max(taper * kx_min_per_m, 1e-12)
        low = np.clip((kx - kx_min_per_m + w2) / w2, 0.0, 1.0)
        mask = mask * (0.5 - 0.5 * np.cos(np.pi * low))
    return np.real(np.fft.ifft2(spec * mask))[:n_tr, :n_t]


@register
class Migrate(Step):
    """Constant-velocity migration of a whole profile (offline): Stolt or Kirchhoff."""

    name = "migrate"
    streaming = False
    PARAMS: ClassVar[dict[str, Param]] = {
        "method": Param("stolt", str, choices=("stolt", "kirchhoff")),
        "velocity_m_ns": Param(0.1, float, 0.01, 0.3),
        "dx_m": Param(None, float, 0.0, lo_open=True, nullable=True),
        "aperture_m": Param(0.5, float, 0.0, lo_open=True),
    }

    def process(self, block: GprBlock) -> GprBlock:
        dx = trace_spacing_m(block, self.p["dx_m"], self.name)
        h = block.header
        if self.p["method"] == "stolt":
            y = stolt_migrate(block.data, dx, h.dt_ns, self.p["velocity_m_ns"], h.time_zero_ns)
        else:
            y = kirchhoff_migrate(
                block.data, dx, h.dt_ns, self.p["velocity_m_ns"], h.time_zero_ns,
                self.p["aperture_m"],
            )  # fmt: skip
        return block.with_data(y.astype(np.float32))


@register
class FkFilter(Step):
    """F-K fan filter of a whole profile (offline); see :func:`fk_filter`."""

    name = "fk_filter"
    streaming = False
    PARAMS: ClassVar[dict[str, Param]] = {
        "v_min_m_ns": Param(0.05, float, 0.0, lo_open=True),
        "kx_min_per_m": Param(0.0, float, 0.0),
        "taper": Param(0.1, float, 0.0, 1.0),
        "dx_m": Param(None, float, 0.0, lo_open=True, nullable=True),
    }

    def process(self, block: GprBlock) -> GprBlock:
        dx = trace_spacing_m(block, self.p["dx_m"], self.name)
        y = fk_filter(
            block.data, dx, block.header.dt_ns, self.p["v_min_m_ns"], self.p["kx_min_per_m"],
            self.p["taper"],
        )  # fmt: skip
        return block.with_data(y.astype(np.float32))
