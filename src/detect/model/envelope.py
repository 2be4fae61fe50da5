"""The radars a model was trained on (its envelope), and the check of a radar against it.

A model card states the envelope it was trained on: the antenna centre-frequency band, the
shortest record (time after time zero) it learned to score, the coarsest sample interval
per antenna period and the coarsest trace spacing. Training draws a random radar inside it
for a share of the lanes (:func:`random_radar`). A radar inside is scored; outside (a
100 MHz geology radar, a 3 ns record) the mine model is not applied and the outputs say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RadarEnvelope:
    #: the peak of the measured spectrum (what the network sees; an antenna's sits below its
    #: nominal frequency: the simulator's at 0.8 x, a GSSI 1.5 GHz on concrete near 0.85 GHz)
    centre_hz: tuple[float, float] = (0.6e9, 2.4e9)
    #: the nominal centre frequencies training draws from (their spectra peak in centre_hz)
    sim_centre_hz: tuple[float, float] = (0.75e9, 3.0e9)
    #: record length after time zero, ns (a longer record is cropped to the model's axis)
    min_record_ns: float = 5.0
    window_ns: tuple[float, float] = (6.0, 40.0)
    time_zero_ns: tuple[float, float] = (0.5, 4.0)
    #: samples per antenna period (the coarsest sampling trained: the lower bound)
    samples_per_period: tuple[float, float] = (4.0, 12.0)
    trace_spacing_m: tuple[float, float] = (0.005, 0.03)
    #: time zero at most this share of the record, when set (a radar's usual set-up)
    time_zero_share_max: float | None = None
    #: margins for measurement error on the centre frequency and the spacing
    centre_tolerance: float = 0.1
    spacing_tolerance: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any]) -> RadarEnvelope:
        known = {f for f in cls.__dataclass_fields__}
        kw: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in node.items() if k in known
        }
        return cls(**kw)

    def problems(
        self,
        centre_hz: float | None,
        dt_ns: float,
        record_ns: float,
        trace_spacing_m: float | None = None,
    ) -> list[str]:
        """Why a radar is outside the envelope (empty: inside). ``record_ns``: the time the
        record covers after time zero."""
        out: list[str] = []
        lo, hi = self.centre_hz
        tol = 1.0 + self.centre_tolerance
        if centre_hz is None or not math.isfinite(centre_hz):
            out.append("antenna centre frequency unknown and not measurable")
        elif not lo / tol <= centre_hz <= hi * tol:
            out.append(
                f"spectrum peak {centre_hz / 1e6:.0f} MHz (trained {lo / 1e6:.0f}-"
                f"{hi / 1e6:.0f} MHz)"
            )
        elif centre_hz * dt_ns * 1e-9 > 1.0 / (self.samples_per_period[0] / tol):
            out.append(
                f"sample interval {dt_ns:.3g} ns is too coarse for a {centre_hz / 1e6:.0f} MHz "
                f"antenna (trained at >= {self.samples_per_period[0]:g} samples per period)"
            )
        if record_ns < self.min_record_ns:
            out.append(
                f"record reaches {record_ns:.3g} ns after time zero "
                f"(trained from {self.min_record_ns:g} ns)"
            )
        top = self.trace_spacing_m[1] * (1.0 + self.spacing_tolerance)
        if trace_spacing_m is not None and trace_spacing_m > top:
            out.append(
                f"trace spacing {trace_spacing_m * 100:.2g} cm (trained <= {top * 100:.2g} cm)"
            )
        return out


def random_radar(
    rng: np.random.Generator, gpr: Mapping[str, Any], speed_m_s: float, env: RadarEnvelope
) -> dict[str, Any]:
    """A radar drawn inside ``env`` (simulator ``gpr`` settings): centre frequency
    log-uniform, record length, sample interval, time zero and trace spacing uniform."""
    lo, hi = env.sim_centre_hz
    fc = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
    window_ns = float(rng.uniform(*env.window_ns))
    dt_ns = 1.0 / (fc * 1e-9 * float(rng.uniform(*env.samples_per_period)))
    spacing_m = float(rng.uniform(*env.trace_spacing_m))
    t0_max_ns = env.time_zero_ns[1]
    if env.time_zero_share_max is not None:
        t0_max_ns = max(env.time_zero_ns[0], min(t0_max_ns, env.time_zero_share_max * window_ns))
    return {
        **dict(gpr),
        "centre_hz": fc,
        "dt_ns": dt_ns,
        "n_samples": max(16, round(window_ns / dt_ns)),
        "time_zero_ns": float(rng.uniform(env.time_zero_ns[0], t0_max_ns)),
        "trace_rate_hz": speed_m_s / spacing_m,
        "ringing": float(rng.uniform(0.1, 0.4)),
    }
