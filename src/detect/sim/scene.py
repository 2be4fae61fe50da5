"""A seeded lane scene: soil, buried objects, small scatterers and smooth random profiles.

Everything random comes from one ``numpy.random.Generator``, in a fixed order, so a seed
reproduces the scene exactly. Positions are in the lane frame: ``x`` along track from the
lane start, ``y`` across track from the centreline, depths positive down from the mean
surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detect.sim.settings import SimSettings
from detect.sim.soil import SOILS, Soil
from detect.sim.targets import LIBRARY, TargetKind

PROFILE_STEP_M = 0.02


@dataclass(frozen=True)
class PlacedTarget:
    id: str
    kind: TargetKind
    x_m: float
    y_m: float
    depth_m: float
    diameter_m: float
    height_m: float
    metal_mass_g: float
    axis: tuple[float, float, float]

    @property
    def size_m(self) -> float:
        if self.kind.shape == "rod":
            return max(self.diameter_m, self.height_m)
        return self.diameter_m

    def truth(self, soil_name: str, x_offset_m: float = 0.0) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.kind.cls,
            "kind": self.kind.name,
            "x_m": self.x_m + x_offset_m,
            "y_m": self.y_m,
            "depth_m": self.depth_m,
            "size_m": self.size_m,
            "metal_mass_g": self.metal_mass_g,
            "soil": soil_name,
        }


@dataclass(frozen=True)
class Profile:
    """A smooth random function of along-track position, sampled on a grid."""

    x0_m: float
    step_m: float
    values: np.ndarray

    def __call__(self, x_m: np.ndarray) -> np.ndarray:
        grid = self.x0_m + self.step_m * np.arange(self.values.size)
        return np.interp(x_m, grid, self.values)


@dataclass(frozen=True)
class Scene:
    seed: int
    soil: Soil
    length_m: float
    targets: tuple[PlacedTarget, ...]
    #: weak point scatterers (stones, moisture pockets): columns x, y, depth, reflection coeff
    scatterers: np.ndarray
    surface_m: Profile
    layer_depth_m: Profile
    chi_viscous: Profile
    extra: dict[str, Any] = field(default_factory=dict)

    def truth(self, x_offset_m: float = 0.0) -> list[dict[str, Any]]:
        return [t.truth(self.soil.name, x_offset_m) for t in self.targets]


def smooth_profile(
    rng: np.random.Generator, x0_m: float, x1_m: float, corr_m: float, rms: float
) -> Profile:
    """Gaussian-correlated random profile with correlation length ``corr_m``."""
    n = int(np.ceil((x1_m - x0_m) / PROFILE_STEP_M)) + 1
    white = rng.standard_normal(n + 64)
    sigma = max(corr_m / PROFILE_STEP_M, 1e-6)
    half = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= np.sqrt(np.sum(k**2))
    smooth = np.convolve(white, k, mode="same")[32 : 32 + n]
    return Profile(x0_m, PROFILE_STEP_M, rms * smooth)


def _positions(rng: np.random.Generator, n: int, s: SimSettings) -> np.ndarray:
    """n sorted along-track positions at least ``min_spacing_m`` apart inside the margins."""
    if n == 0:
        return np.zeros(0)
    usable = s.lane_length_m - 2 * s.margin_m
    slack = usable - (n - 1) * s.min_spacing_m
    gaps = rng.dirichlet(np.ones(n + 1)) * slack
    return s.margin_m + np.cumsum(gaps[:n]) + s.min_spacing_m * np.arange(n)


def _axis(rng: np.random.Generator, kind: TargetKind) -> tuple[float, float, float]:
    if kind.shape in ("disc", "box"):
        tilt = np.deg2rad(rng.normal(0.0, 5.0))
        az = rng.uniform(0, 2 * np.pi)
        return (np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt))
    if kind.cls == "uxo" or kind.key == "root":
        tilt = np.deg2rad(rng.uniform(-30.0, 30.0))
        az = rng.uniform(0, 2 * np.pi)
        return (np.cos(tilt) * np.cos(az), np.cos(tilt) * np.sin(az), np.sin(tilt))
    v = rng.standard_normal(3)
    v /= np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


def make_scene(seed: int, s: SimSettings, lane_index: int = 0) -> Scene:
    """The scene of lane ``lane_index`` for ``seed``: same inputs, same scene."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, lane_index, 0x5C3E]))
    soil = SOILS[s.soils[int(rng.integers(len(s.soils)))]]
    n = int(rng.integers(s.n_targets_min, s.n_targets_max + 1))
    keys = sorted(k for k, w in s.mix.items() if w > 0)
    weights = np.array([s.mix[k] for k in keys], dtype=float)
    xs = _positions(rng, n, s)
    targets = []
    for i, x in enumerate(xs):
        k = LIBRARY[keys[int(rng.choice(len(keys), p=weights / weights.sum()))]]
        size_f = float(np.exp(rng.normal(0.0, k.size_jitter))) if k.size_jitter else 1.0
        mass_f = float(np.exp(rng.normal(0.0, k.mass_jitter))) if k.mass_jitter else 1.0
        targets.append(
            PlacedTarget(
                id=f"L{lane_index:04d}-T{i:02d}",
                kind=k,
                x_m=float(x),
                y_m=float(rng.uniform(-s.target_y_max_m, s.target_y_max_m)),
                depth_m=float(rng.uniform(*k.depth_range_m)),
                diameter_m=k.diameter_m * size_f,
                height_m=k.height_m * size_f,
                metal_mass_g=k.metal_mass_g * mass_f,
                axis=_axis(rng, k),
            )
        )
    strip_m = 0.6
    n_sc = int(rng.poisson(soil.scatterers_per_m2 * strip_m * (s.lane_length_m + 2)))
    scat = np.column_stack(
        [
            rng.uniform(-1.0, s.lane_length_m + 1.0, n_sc),
            rng.uniform(-strip_m / 2, strip_m / 2, n_sc),
            rng.uniform(0.02, 0.8, n_sc),
            rng.normal(0.0, soil.heterogeneity, n_sc),
        ]
    )
    lo, hi = -2.0, s.lane_length_m + 2.0
    surface = smooth_profile(rng, lo, hi, 0.15, soil.roughness_m)
    layer = smooth_profile(rng, lo, hi, 1.0, 0.08)
    layer = Profile(layer.x0_m, layer.step_m, soil.layer_depth_m + layer.values)
    chi = smooth_profile(rng, lo, hi, 0.3, soil.chi_variation)
    chi = Profile(chi.x0_m, chi.step_m, soil.chi_viscous * np.exp(chi.values))
    return Scene(
        seed=seed,
        soil=soil,
        length_m=s.lane_length_m,
        targets=tuple(targets),
        scatterers=scat,
        surface_m=surface,
        layer_depth_m=layer,
        chi_viscous=chi,
    )


def canonical_scene(
    targets: list[PlacedTarget] | tuple[PlacedTarget, ...],
    soil: Soil | str = "loam",
    length_m: float = 2.0,
    seed: int = 0,
    scatterers: bool = False,
    flat: bool = True,
) -> Scene:
    """A hand-made scene (tests, docs, full-wave comparisons): flat surface and layer,
    uniform magnetic soil, optionally with the soil's weak scatterers."""
    soil = SOILS[soil] if isinstance(soil, str) else soil
    rng = np.random.default_rng(seed)
    lo, hi = -2.0, length_m + 2.0
    if scatterers:
        n_sc = int(rng.poisson(soil.scatterers_per_m2 * 0.6 * (length_m + 2)))
        scat = np.column_stack(
            [
                rng.uniform(-1.0, length_m + 1.0, n_sc),
                rng.uniform(-0.3, 0.3, n_sc),
                rng.uniform(0.02, 0.8, n_sc),
                rng.normal(0.0, soil.heterogeneity, n_sc),
            ]
        )
    else:
        scat = np.zeros((0, 4))
    surface = (
        Profile(lo, hi - lo, np.zeros(2))
        if flat
        else smooth_profile(rng, lo, hi, 0.15, soil.roughness_m)
    )
    n = int(np.ceil((hi - lo) / PROFILE_STEP_M)) + 1
    return Scene(
        seed=seed,
        soil=soil,
        length_m=length_m,
        targets=tuple(targets),
        scatterers=scat,
        surface_m=surface,
        layer_depth_m=Profile(lo, PROFILE_STEP_M, np.full(n, soil.layer_depth_m)),
        chi_viscous=Profile(lo, PROFILE_STEP_M, np.full(n, soil.chi_viscous)),
    )


def place(
    key: str,
    x_m: float,
    depth_m: float,
    y_m: float = 0.0,
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0),
    metal_mass_g: float | None = None,
    id: str = "T0",
) -> PlacedTarget:
    """One object of library kind ``key`` at a chosen place (nominal size and mass)."""
    k = LIBRARY[key]
    return PlacedTarget(
        id=id,
        kind=k,
        x_m=x_m,
        y_m=y_m,
        depth_m=depth_m,
        diameter_m=k.diameter_m,
        height_m=k.height_m,
        metal_mass_g=k.metal_mass_g if metal_mass_g is None else metal_mass_g,
        axis=axis,
    )
