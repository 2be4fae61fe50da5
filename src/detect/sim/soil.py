"""Soils: the electromagnetic and magnetic properties that set both sensors' background.

GPR: relative permittivity ``eps_r`` (velocity c/sqrt(eps_r), reflection contrasts),
conductivity ``sigma_s_m`` (frequency-independent loss, low-loss approximation) and a
constant-Q term ``q`` (dielectric relaxation: loss growing linearly with frequency, which
is what lowers the centre frequency of deep echoes). EMI: viscous magnetic
susceptibility ``chi_viscous`` (mineralised soils give a 1/t decay that a pulse-induction
detector sees as signal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

C0_M_NS = 0.299792458
ETA0_OHM = 376.730313


@dataclass(frozen=True)
class Soil:
    name: str
    eps_r: float
    sigma_s_m: float
    q: float
    layer_eps_r: float
    layer_depth_m: float
    heterogeneity: float
    scatterers_per_m2: float
    roughness_m: float
    chi_viscous: float
    chi_variation: float

    @property
    def velocity_m_ns(self) -> float:
        return C0_M_NS / math.sqrt(self.eps_r)

    @property
    def alpha_np_m(self) -> float:
        """Conductive attenuation, low-loss: alpha = sigma/2 * sqrt(mu0/eps)."""
        return conductive_alpha_np_m(self.sigma_s_m, self.eps_r)


def conductive_alpha_np_m(sigma_s_m: float, eps_r: float) -> float:
    return 0.5 * sigma_s_m * ETA0_OHM / math.sqrt(eps_r)


def reflection_coefficient(eps_from: float, eps_to: float | None) -> float:
    """Normal-incidence field reflection going from ``eps_from`` into ``eps_to``.

    ``None`` is a perfect conductor (-1). Low-permittivity plastic in wet soil gives
    a positive coefficient, metal a negative one: the polarity flip of a plastic mine.
    """
    if eps_to is None:
        return -1.0
    n1, n2 = math.sqrt(eps_from), math.sqrt(eps_to)
    return (n1 - n2) / (n1 + n2)


SOILS: dict[str, Soil] = {
    s.name: s
    for s in (
        Soil("dry_sand", 4.0, 0.001, 60.0, 5.0, 0.70, 0.04, 40.0, 0.005, 0.0, 0.0),
        Soil("moist_sand", 9.0, 0.005, 35.0, 12.0, 0.60, 0.06, 60.0, 0.008, 1e-5, 0.3),
        Soil("wet_sand", 20.0, 0.01, 25.0, 25.0, 0.50, 0.06, 60.0, 0.008, 1e-5, 0.3),
        Soil("loam", 12.0, 0.01, 25.0, 16.0, 0.50, 0.08, 80.0, 0.010, 5e-5, 0.4),
        Soil("wet_clay", 25.0, 0.05, 15.0, 20.0, 0.40, 0.08, 60.0, 0.010, 1e-4, 0.4),
        Soil("laterite", 10.0, 0.01, 25.0, 14.0, 0.50, 0.10, 100.0, 0.012, 1e-3, 0.5),
    )
}


def soil(name: str, **changes: Any) -> Soil:
    try:
        base = SOILS[name]
    except KeyError:
        raise ValueError(f"unknown soil '{name}'; available: {', '.join(SOILS)}") from None
    return replace(base, **changes) if changes else base
