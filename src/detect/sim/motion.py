"""Detector-head motion: walking speed with variation, height above ground, lateral wobble.

The trajectory is sampled at the fastest sensor rate (EMI readings); GPR traces and
GPS fixes take every k-th sample, so every sensor sees one consistent head path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detect.sim.settings import HeadSettings


@dataclass(frozen=True)
class Trajectory:
    time_s: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    height_m: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0]) if self.time_s.size else 0.0

    def take(self, idx: np.ndarray) -> Trajectory:
        return Trajectory(self.time_s[idx], self.x_m[idx], self.y_m[idx], self.height_m[idx])


def smooth_series(
    rng: np.random.Generator, t: np.ndarray, f_lo_hz: float, f_hi_hz: float, n: int = 6
) -> np.ndarray:
    """Zero-mean, unit-rms band-limited random signal: a sum of random sinusoids.

    Evaluated on a grid 20 x finer than ``f_hi_hz`` and interpolated (cheap for long,
    densely sampled series; the interpolation error is < 1 %).
    """
    f = rng.uniform(f_lo_hz, f_hi_hz, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.uniform(0.5, 1.0, n)
    step = 0.05 / f_hi_hz
    if t.size > 2 and (t[-1] - t[0]) / step < 0.5 * t.size:
        grid = np.arange(t[0], t[-1] + 2 * step, step)
        s = np.interp(t, grid, np.sin(np.outer(grid, 2 * np.pi * f) + ph) @ a)
    else:
        s = np.sin(np.outer(t, 2 * np.pi * f) + ph) @ a
    return s / np.sqrt(0.5 * np.sum(a**2))


def walk(
    rng: np.random.Generator, head: HeadSettings, length_m: float, rate_hz: float
) -> Trajectory:
    """Head path from x=0 to x=``length_m`` sampled at ``rate_hz``."""
    mean_dur = length_m / head.speed_m_s
    t = np.arange(int(np.ceil(mean_dur * 3.0 * rate_hz))) / rate_hz
    v = head.speed_m_s * (1.0 + head.speed_variation * smooth_series(rng, t, 0.05, 0.6))
    v = np.clip(v, 0.25 * head.speed_m_s, 2.5 * head.speed_m_s)
    x = np.concatenate([[0.0], np.cumsum(v[:-1]) / rate_hz])
    end = int(np.searchsorted(x, length_m))
    t, x = t[: end + 1], x[: end + 1]
    mid = 0.5 * (head.height_min_m + head.height_max_m)
    half = 0.5 * (head.height_max_m - head.height_min_m)
    gait = 0.15 * np.sin(2 * np.pi * rng.uniform(1.6, 2.0) * t + rng.uniform(0, 2 * np.pi))
    h = mid + half * np.tanh(0.8 * smooth_series(rng, t, 0.05, 0.5) + gait)
    y = head.wobble_m * smooth_series(rng, t, 0.1, 1.0)
    return Trajectory(t, x, y, h)
