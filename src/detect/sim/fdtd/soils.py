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
import re
from dataclasses import dataclass, replace

import numpy as np

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


def peplinski_sigma_factor(t: Texture) -> float:
    """Peplinski's effective-conductivity term (S/m, 0.3-1.3 GHz; gprMax's coefficients):
    each water bin's conductivity is proportional to it, so it must be positive (a very
    sandy, light soil makes it negative and gprMax refuses the material)."""
    return 0.0467 + 0.2204 * t.bulk_density_g_cm3 - 0.411 * t.sand + 0.6614 * t.clay


#: the least Peplinski conductivity term a mixed soil gets (S/m)
MIX_SIGMA_FACTOR_MIN = 0.01


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


#: a soil mixed by :func:`mixed_soil`: its name is its texture (sand %, clay %, bulk density)
MIX_NAME = re.compile(r"^mix_s(\d{2})_c(\d{2})_b(\d{3})$")
#: ranges :func:`mixed_soil` draws from
MIX_SAND = (0.2, 0.95)
MIX_CLAY_MAX = 0.6
MIX_BULK_DENSITY_G_CM3 = (1.3, 1.8)
MIX_EPS_R = (3.5, 25.0)
MIX_ROUGHNESS_M = (0.002, 0.015)


def texture_of(soil: Soil) -> Texture:
    m = MIX_NAME.match(soil.name)
    if m:
        return Texture(int(m[1]) / 100, int(m[2]) / 100, int(m[3]) / 100)
    try:
        return TEXTURE[soil.name]
    except KeyError:
        raise ValueError(
            f"soil '{soil.name}' has no Peplinski texture; known: {', '.join(TEXTURE)} "
            "or mix_sSS_cCC_bBBB"
        ) from None


def mixed_soil(rng: np.random.Generator, base: Soil) -> Soil:
    """A soil none of the named ones is: a random Peplinski texture and permittivity.

    Sand 20-95 %, clay up to 60 % of the rest, bulk density 1.3-1.8 g/cm3 (raised where
    :func:`peplinski_sigma_factor` would not be positive), permittivity
    3.5-25 (log-uniform, i.e. dry sand to wet clay), a wetter layer 1.3-2 times that, and
    surface roughness 2-15 mm; the fast simulator's other parameters come from ``base``.
    Training scenes use these, so the named soils of the validation set are never trained on.
    """
    sand = round(float(rng.uniform(*MIX_SAND)), 2)
    clay = round(float(rng.uniform(0.02, min(MIX_CLAY_MAX, 1.0 - sand))), 2)
    rho = round(float(rng.uniform(*MIX_BULK_DENSITY_G_CM3)), 2)
    short = MIX_SIGMA_FACTOR_MIN - peplinski_sigma_factor(Texture(sand, clay, rho))
    if short > 0:  # denser, until the conductivity term is positive
        rho = math.ceil((rho + short / 0.2204) * 100) / 100
    tex = Texture(sand, clay, rho)
    name = f"mix_s{round(sand * 100):02d}_c{round(clay * 100):02d}_b{round(rho * 100):03d}"
    reach = (peplinski_eps(tex, 0.01), peplinski_eps(tex, 0.5))
    lo, hi = max(MIX_EPS_R[0], reach[0]), min(MIX_EPS_R[1], reach[1])
    eps = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
    layer = min(eps * float(rng.uniform(1.3, 2.0)), reach[1])
    return replace(
        base,
        name=name,
        eps_r=round(eps, 2),
        layer_eps_r=round(layer, 2),
        roughness_m=round(float(rng.uniform(*MIX_ROUGHNESS_M)), 4),
    )


def water_range(soil: Soil, spread: float, eps_r: float | None = None) -> tuple[float, float]:
    """(lower, upper) water fractions around the one that gives ``eps_r`` (default the soil's)."""
    from dataclasses import replace

    target = soil if eps_r is None else replace(soil, eps_r=eps_r)
    m = water_for(target, texture_of(soil))
    return m * (1 - spread), m * (1 + spread)
