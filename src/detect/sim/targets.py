"""Library of buried objects: mines, UXO and the clutter real lanes are full of.

Dimensions and metal content are rounded public figures (see docs/simulator.md for
sources); they set the scale of the GPR and EMI responses, not any one production lot.

GPR sees the *body* (permittivity contrast, size, top and bottom). EMI sees only the
*metal part*, described by its mass, metal and eddy-current length scale, from which the
decay time constant follows (:func:`decay_time_s`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MU0 = 4e-7 * math.pi


@dataclass(frozen=True)
class Metal:
    """Bulk properties that set eddy-current decay (``sigma_s_m``) and magnetisation."""

    name: str
    sigma_s_m: float
    mu_r: float
    density_kg_m3: float


METALS: dict[str, Metal] = {
    "steel": Metal("steel", 5.0e6, 100.0, 7850.0),
    "stainless": Metal("stainless", 1.4e6, 1.0, 8000.0),
    "aluminium": Metal("aluminium", 3.5e7, 1.0, 2700.0),
    "copper": Metal("copper", 5.8e7, 1.0, 8960.0),
    "brass": Metal("brass", 1.5e7, 1.0, 8500.0),
}


def decay_time_s(metal: Metal, scale_m: float) -> float:
    """First-mode eddy-current time constant of a sphere of radius ``scale_m``.

    tau = sigma mu0 mu_r a^2 / x1^2, with x1 = pi for a non-magnetic sphere and
    x1 -> 4.49 (root of tan x = x) for a highly permeable one (Smythe; Kaufman &
    Keller). Other shapes use an equivalent radius (wall thickness for shells, wire
    radius for rods).
    """
    x1 = math.pi if metal.mu_r <= 1.5 else 4.4934
    return metal.sigma_s_m * MU0 * metal.mu_r * scale_m**2 / x1**2


@dataclass(frozen=True)
class TargetKind:
    """One kind of object. Lengths in metres, metal mass in grams.

    ``shape``: "disc" (axis vertical, lying flat), "rod" (elongated, axis ``length``
    along the long dimension), "box" or "blob". ``eps_body`` is the relative
    permittivity of what the radar sees (plastic+explosive ~3, metal None = perfect
    conductor, air 1, wet wood ~20). ``metal_scale_m`` is the eddy-current length
    scale of the metal part (a compact part's radius; for sheets and thin shells such as
    bottle caps and cans ~sqrt(thickness x radius), the thin-plate time constant);
    ``metal_depth_frac`` places the metal within the body (0 = at the top: fuze striker
    of a pressure mine).
    """

    key: str
    name: str
    cls: str
    shape: str
    diameter_m: float
    height_m: float
    eps_body: float | None
    metal_mass_g: float
    metal: str
    metal_scale_m: float
    depth_range_m: tuple[float, float]
    metal_depth_frac: float = 0.5
    size_jitter: float = 0.0
    mass_jitter: float = 0.0

    @property
    def size_m(self) -> float:
        return max(self.diameter_m, self.height_m) if self.shape == "rod" else self.diameter_m

    @property
    def is_metal_body(self) -> bool:
        return self.eps_body is None


def _k(*kinds: TargetKind) -> dict[str, TargetKind]:
    return {k.key: k for k in kinds}


#: Dimensions: diameter x height (rods: diameter x length). Depth to top.
# fmt: off
LIBRARY: dict[str, TargetKind] = _k(
    # key, name, class, shape, diameter/width m, height/length m, eps_body (None = metal),
    # metal g, metal, eddy-current scale m, depth-to-top range m
    # --- anti-personnel blast mines ----------------------------------------------------------
    TargetKind("pmn", "PMN", "ap_mine", "disc", 0.112, 0.056, 3.2,
               6.0, "steel", 0.004, (0.0, 0.1)),
    TargetKind("pmn2", "PMN-2", "ap_mine", "disc", 0.121, 0.053, 3.0,
               3.0, "steel", 0.003, (0.0, 0.1)),
    TargetKind("pma2", "PMA-2", "ap_mine", "disc", 0.068, 0.061, 3.0,
               0.4, "steel", 0.0015, (0.0, 0.08), metal_depth_frac=0.0),
    TargetKind("pma3", "PMA-3", "ap_mine", "disc", 0.103, 0.04, 3.5,
               0.5, "brass", 0.0015, (0.0, 0.08), metal_depth_frac=0.2),
    TargetKind("vs50", "VS-50", "ap_mine", "disc", 0.09, 0.045, 3.0,
               0.6, "steel", 0.0015, (0.0, 0.08), metal_depth_frac=0.1),
    TargetKind("type72", "Type 72A", "ap_mine", "disc", 0.078, 0.038, 3.0,
               0.8, "steel", 0.002, (0.0, 0.08), metal_depth_frac=0.1),
    # --- anti-tank mines ---------------------------------------------------------------------
    TargetKind("tm62m", "TM-62M", "at_mine", "disc", 0.32, 0.128, None,
               1500.0, "steel", 0.01, (0.05, 0.3)),
    TargetKind("tm62p", "TM-62P", "at_mine", "disc", 0.32, 0.128, 3.0,
               30.0, "steel", 0.006, (0.05, 0.3), metal_depth_frac=0.0),
    # --- small UXO ---------------------------------------------------------------------------
    TargetKind("grenade40", "40 mm grenade", "uxo", "rod", 0.04, 0.1, None,
               120.0, "steel", 0.008, (0.02, 0.25)),
    TargetKind("mortar60", "60 mm mortar", "uxo", "rod", 0.06, 0.25, None,
               900.0, "steel", 0.012, (0.05, 0.4)),
    TargetKind("bomblet", "BLU-97 bomblet", "uxo", "rod", 0.064, 0.168, None,
               250.0, "steel", 0.006, (0.02, 0.3)),
    TargetKind("hand_grenade", "F1 hand grenade", "uxo", "blob", 0.055, 0.117, None,
               400.0, "steel", 0.01, (0.02, 0.25)),
    # --- metal clutter -----------------------------------------------------------------------
    TargetKind("shrapnel", "shrapnel fragment", "metal_clutter", "blob", 0.025, 0.01, None,
               8.0, "steel", 0.004, (0.0, 0.15), size_jitter=0.5, mass_jitter=0.8),
    TargetKind("nail", "nail", "metal_clutter", "rod", 0.004, 0.08, None,
               5.0, "steel", 0.002, (0.0, 0.15), size_jitter=0.3, mass_jitter=0.4),
    TargetKind("wire", "wire", "metal_clutter", "rod", 0.002, 0.3, None,
               4.0, "copper", 0.0012, (0.0, 0.1), size_jitter=0.4, mass_jitter=0.5),
    TargetKind("can", "aluminium can", "metal_clutter", "rod", 0.066, 0.115, None,
               14.0, "aluminium", 0.002, (0.0, 0.15)),
    TargetKind("bottle_cap", "bottle cap", "metal_clutter", "disc", 0.032, 0.006, None,
               2.2, "steel", 0.0015, (0.0, 0.08)),
    TargetKind("casing", "cartridge case", "metal_clutter", "rod", 0.012, 0.05, None,
               7.0, "brass", 0.0025, (0.0, 0.1)),
    # --- non-metal clutter -------------------------------------------------------------------
    TargetKind("rock", "rock", "nonmetal_clutter", "blob", 0.1, 0.07, 7.0,
               0.0, "steel", 0.0, (0.0, 0.3), size_jitter=0.5),
    TargetKind("root", "root", "nonmetal_clutter", "rod", 0.03, 0.4, 20.0,
               0.0, "steel", 0.0, (0.02, 0.25), size_jitter=0.4),
    TargetKind("void", "void", "nonmetal_clutter", "blob", 0.08, 0.06, 1.0,
               0.0, "steel", 0.0, (0.03, 0.25), size_jitter=0.5),
    TargetKind("brick", "brick fragment", "nonmetal_clutter", "box", 0.2, 0.06, 5.0,
               0.0, "steel", 0.0, (0.0, 0.2), size_jitter=0.4),
)
# fmt: on


def kind(key: str) -> TargetKind:
    try:
        return LIBRARY[key]
    except KeyError:
        raise ValueError(
            f"unknown target kind '{key}'; available: {', '.join(sorted(LIBRARY))}"
        ) from None
