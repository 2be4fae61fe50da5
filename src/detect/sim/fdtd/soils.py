"""Our soils (:mod:`detect.sim.soil`) as Peplinski mixtures for gprMax's ``#soil_peplinski``.

gprMax builds the soil from sand and clay fractions, bulk density, particle density and a
range of volumetric water fractions (Peplinski et al. 1995, IEEE TGRS 33(3), the mixing
model with the 0.3-1.3 GHz linear correction, water at 25 C). We keep each soil's texture
in :data:`TEXTURE` and solve for the mean water fraction that gives the soil's ``eps_r``, so
the full-wave soil has the permittivity (velocity) the fast simulator uses. The same formula
gives the expected velocity that tests compare FDTD arrival times with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detect.sim.soil import Soil

#: Debye water at 25 C, zero salinity (static, optical permittivity, relaxation time)
WATER_EPS_STATIC = 78.54
WATER_EPS_INF = 4.9
WATER_TAU_S = 8.27e-12
#: gprMax evaluates the water permittivity of its Peplinski mixture at this frequency
PEPLINSKI_FREQ_HZ = 1.3e9
SAND_PARTICLE_DENSITY_G_CM3 = 2.66
ALPHA = 0.65


@dataclass(frozen=True)
class Texture:
    sand: float
    clay: float
    bulk_density_g_cm3: float


#: texture of each soil of :data:`detect.sim.soil.SOILS` (typical textbook values)
TEXTURE: dict[str, Texture] = {
    "dry_sand": Texture(0.95, 0.02, 1.60),
    "moist_sand": Texture(0.90, 0.05, 1.60),
    "wet_sand": Texture(0.90, 0.05, 1.70),
    "loam": Texture(0.40, 0.20, 1.50),
    "wet_clay": Texture(0.20, 0.60, 1.40),
    "laterite": Texture(0.50, 0.30, 1.60),
}


def peplinski_eps(t: Texture, water: float, freq_hz: float = PEPLINSKI_FREQ_HZ) -> float:
    """Real relative permittivity of a soil of texture ``t`` and volumetric water ``water``."""
    w = 2 * math.pi * freq_hz * WATER_TAU_S
    eps_w = WATER_EPS_INF + (WATER_EPS_STATIC - WATER_EPS_INF) / (1 + w * w)
    rs = SAND_PARTICLE_DENSITY_G_CM3
    eps_s = (1.01 + 0.44 * rs) ** 2 - 0.062
    beta = 1.2748 - 0.519 * t.sand - 0.152 * t.clay
    inner = 1 + (t.bulk_density_g_cm3 / rs) * (eps_s**ALPHA - 1) + water**beta * eps_w**ALPHA
    eps = (inner - water) ** (1 / ALPHA)
    return 1.15 * eps - 0.68


def water_for(soil: Soil, texture: Texture | None = None) -> float:
    """Volumetric water fraction that gives ``soil.eps_r`` (bisection; one line if out of reach)."""
    t = texture or texture_of(soil)
    lo, hi = 1e-4, 0.6
    if not (peplinski_eps(t, lo) <= soil.eps_r <= peplinski_eps(t, hi)):
        raise ValueError(
            f"soil '{soil.name}': eps_r {soil.eps_r} is outside the Peplinski range "
            f"[{peplinski_eps(t, lo):.1f}, {peplinski_eps(t, hi):.1f}] of its texture"
        )
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if peplinski_eps(t, mid) < soil.eps_r:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def texture_of(soil: Soil) -> Texture:
    try:
        return TEXTURE[soil.name]
    except KeyError:
        raise ValueError(
            f"soil '{soil.name}' has no Peplinski texture; known: {', '.join(TEXTURE)}"
        ) from None


def water_range(soil: Soil, spread: float, eps_r: float | None = None) -> tuple[float, float]:
    """(lower, upper) water fractions around the one that gives ``eps_r`` (default the soil's)."""
    from dataclasses import replace

    target = soil if eps_r is None else replace(soil, eps_r=eps_r)
    m = water_for(target, texture_of(soil))
    return m * (1 - spread), m * (1 + spread)
