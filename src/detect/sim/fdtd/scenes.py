"""Full-wave scene sets: a seeded validation set, varied training sets and the committed
test fixture.

The validation set cycles through every threat kind of the target library (mines and
UXO, depth to top 2-15 cm), every clutter kind and empty soil, in the ratio 3 : 2 : 1
(48 scenes: each threat kind twice, each clutter kind at least once, 8 empty soils). Soils,
positions, lateral offsets (within 40 % of the object's radius, so each object crosses
the modelled plane), sizes and orientations are drawn from ``seed + i``; the default
seeds (500000 on) lie far from the seeds training uses. The training scenes
(:func:`training_scenes`) vary what the validation set holds fixed: the radar, and soils
that are none of the named ones.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from detect.sim.fdtd.run import SceneJob
from detect.sim.fdtd.scene_to_gprmax import lowest_m, scan_truth, scene_input
from detect.sim.fdtd.settings import FdtdSettings
from detect.sim.fdtd.soils import mixed_soil
from detect.sim.scene import PlacedTarget, Scene, canonical_scene, place
from detect.sim.soil import SOILS
from detect.sim.targets import LIBRARY

THREATS = tuple(k for k, v in LIBRARY.items() if v.cls in ("ap_mine", "at_mine", "uxo"))
CLUTTER = tuple(k for k, v in LIBRARY.items() if v.cls.endswith("clutter"))
DEPTH_RANGE_M = (0.02, 0.15)


def job_for(
    scene: Scene,
    s: FdtdSettings,
    name: str,
    scan_start_m: float = 0.0,
    info: dict[str, Any] | None = None,
    with_targets: bool = True,
    with_soil: bool = True,
) -> SceneJob:
    text = scene_input(
        scene, s, scan_start_m, title=name, with_targets=with_targets, with_soil=with_soil
    )
    truth = scan_truth(scene, s, scan_start_m) if with_targets and with_soil else []
    meta = {"soil": scene.soil.name if with_soil else "free_space", "seed": scene.seed}
    return SceneJob(name, text, tuple(truth), {**meta, **(info or {})}, s)


def _target(
    rng: np.random.Generator,
    key: str,
    x_m: float,
    depth_m: tuple[float, float] = DEPTH_RANGE_M,
) -> PlacedTarget:
    k = LIBRARY[key]
    lo, hi = depth_m
    if k.cls.endswith("clutter"):
        lo, hi = max(lo, k.depth_range_m[0]), min(hi, max(k.depth_range_m[1], lo + 0.01))
    size_f = float(np.exp(rng.normal(0.0, k.size_jitter))) if k.size_jitter else 1.0
    az = rng.uniform(0, 2 * math.pi)
    tilt = math.radians(rng.uniform(-20, 20)) if k.shape == "rod" else 0.0
    axis = (
        (math.cos(tilt) * math.cos(az), math.cos(tilt) * math.sin(az), math.sin(tilt))
        if k.shape == "rod"
        else (0.0, 0.0, 1.0)
    )
    # off the scan line by up to 40 % of the radius: always in the plane, with a chord
    y_m = float(rng.uniform(-0.4, 0.4)) * 0.5 * k.diameter_m * size_f
    t = place(key, x_m, float(rng.uniform(lo, hi)), y_m=y_m)
    return replace(
        t, diameter_m=t.diameter_m * size_f, height_m=t.height_m * size_f, axis=axis, id="T0"
    )


def validation_scenes(
    s: FdtdSettings, n: int | None = None
) -> list[tuple[str, Scene, dict[str, Any]]]:
    """``n`` (default ``s.n_scenes``) seeded scenes (name, scene, info): threats, clutter and
    empty soil (3:2:1); what :func:`validation_jobs` runs, for matched comparisons."""
    n = s.n_scenes if n is None else n
    soils = tuple(SOILS)
    out = []
    counts = {"threat": 0, "clutter": 0}
    for i in range(n):
        seed = s.seed + i
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF07D]))
        soil = soils[int(rng.integers(len(soils)))]
        slot = i % 6
        key: str | None
        if slot < 3:
            key = THREATS[counts["threat"] % len(THREATS)]
            counts["threat"] += 1
        elif slot < 5:
            key = CLUTTER[counts["clutter"] % len(CLUTTER)]
            counts["clutter"] += 1
        else:
            key = None
        x = 0.5 * s.scan_length_m + float(rng.uniform(-0.05, 0.05))
        targets = [_target(rng, key, x)] if key else []
        scene = canonical_scene(targets, soil, length_m=s.scan_length_m, seed=seed)
        name = f"fw{i:04d}_{key or 'empty'}_{soil}"
        out.append((name, scene, {"index": i, "kind": key or "empty"}))
    return out


def validation_jobs(s: FdtdSettings, n: int | None = None) -> list[SceneJob]:
    """``n`` (default ``s.n_scenes``) seeded scenes: threats, clutter, empty soil (3:2:1)."""
    return [job_for(scene, s, name, info=info) for name, scene, info in validation_scenes(s, n)]


FIXTURE_DEPTH_M = 0.05
FIXTURE_SOIL = "moist_sand"
FIXTURE_SEED = 7


def fixture_jobs(s: FdtdSettings | None = None) -> dict[str, SceneJob]:
    """The committed fixture: a PMN (depth to top 5 cm) in moist sand under the middle of
    the scan, the same soil without it, and the antennas in free space (one trace)."""
    s = s or FdtdSettings()
    mine = place("pmn", 0.5 * s.scan_length_m, FIXTURE_DEPTH_M)
    scene = canonical_scene([mine], FIXTURE_SOIL, length_m=s.scan_length_m, seed=FIXTURE_SEED)
    return {
        "pmn_moist_sand": job_for(scene, s, "pmn_moist_sand", info={"kind": "pmn"}),
        "empty_moist_sand": job_for(
            scene, s, "empty_moist_sand", info={"kind": "empty"}, with_targets=False
        ),
        "free_space": job_for(
            scene, replace(s, n_traces=1), "free_space", info={"kind": "none"}, with_soil=False
        ),
    }


#: per-scene radar and soil ranges of the training set (:func:`training_scenes`)
TRAIN_CENTRE_HZ = (1.0e9, 2.0e9)
TRAIN_ANTENNA_HEIGHT_M = (0.02, 0.10)
TRAIN_ANTENNA_OFFSET_M = (0.02, 0.08)
TRAIN_FRACTAL_DIM = (1.2, 2.2)
TRAIN_WATER_SPREAD = (0.1, 0.45)
TRAIN_LAYER_M = (0.06, 0.2)
#: centre frequency x sqrt(wettest nominal permittivity) at most this at 3 mm cells (GHz;
#: scales as 1/dx): gprMax 4.0.1 refused 10.4, 10.65 and 10.73 (too few cells per
#: wavelength in the fractal soil's wettest bin) and took 10.37; 9.8 leaves a margin
TRAIN_FC_SQRT_EPS_GHZ_AT_3MM = 9.8


def training_scenes(
    s: FdtdSettings,
    n: int | None = None,
    mix: tuple[int, int, int] = (2, 2, 1),
    pair_share: float = 0.5,
) -> list[tuple[str, Scene, dict[str, Any], FdtdSettings]]:
    """``n`` seeded training scenes (name, scene, info, settings), varied where the
    validation set is fixed, so a model cannot learn one radar or one soil texture.

    Per scene: the Ricker centre frequency (1-2 GHz, log-uniform; lowered where the wettest
    soil would be too few cells per wavelength for gprMax), antenna height (2-10 cm)
    and separation (2-8 cm); a soil of random texture and permittivity
    (:func:`~detect.sim.fdtd.soils.mixed_soil`: never one of the validation set's named
    soils), its fractal dimension and water spread, and a wetter layer in a third of the
    scenes. Contents cycle threat : clutter : empty as ``mix`` (2 : 2 : 1);
    ``pair_share`` (half) of the threat and clutter scenes hold a second object of the other
    group a quarter of the scan away, so a window's label and its neighbour's differ on the
    same ground. Depths to top span 1-18 cm (clutter: its kind's range). Another ``mix`` or
    ``pair_share`` changes the contents, never the radar and soil a seed draws: a test set
    with more clutter-only scenes (negatives) is e.g. ``mix=(1, 2, 1), pair_share=0.25``.
    """
    n = s.n_scenes if n is None else n
    if len(mix) != 3 or min(mix) < 0 or sum(mix) == 0:
        raise ValueError(f"mix {mix!r}: expected three counts threat:clutter:empty, not all 0")
    if not 0.0 <= pair_share <= 1.0:
        raise ValueError(f"pair_share {pair_share!r}: expected a share in [0, 1]")
    cycle = ["threat"] * mix[0] + ["clutter"] * mix[1] + [""] * mix[2]
    soils = tuple(SOILS)
    out = []
    counts = {"threat": 0, "clutter": 0}

    def next_key(group: str) -> str:
        keys = THREATS if group == "threat" else CLUTTER
        key = keys[counts[group] % len(keys)]
        counts[group] += 1
        return key

    for i in range(n):
        seed = s.seed + i
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7EA1]))
        soil = mixed_soil(rng, SOILS[soils[int(rng.integers(len(soils)))]])
        layer = float(rng.uniform(*TRAIN_LAYER_M)) if rng.random() < 1 / 3 else None
        fc = float(np.exp(rng.uniform(*np.log(TRAIN_CENTRE_HZ))))
        wettest = max(soil.eps_r, soil.layer_eps_r if layer is not None else 0.0)
        fc_max = TRAIN_FC_SQRT_EPS_GHZ_AT_3MM * 1e9 * (0.003 / s.dx_m) / math.sqrt(wettest)
        si = replace(
            s,
            centre_hz=min(fc, fc_max),
            antenna_height_m=float(rng.uniform(*TRAIN_ANTENNA_HEIGHT_M)),
            antenna_offset_m=float(rng.uniform(*TRAIN_ANTENNA_OFFSET_M)),
            fractal_dim=float(rng.uniform(*TRAIN_FRACTAL_DIM)),
            water_spread=float(rng.uniform(*TRAIN_WATER_SPREAD)),
            moisture_layer_m=layer,
        )
        group = cycle[i % len(cycle)]
        keys: list[str] = []
        if group:
            keys.append(next_key(group))
            if rng.random() < pair_share:
                keys.append(next_key("clutter" if group == "threat" else "threat"))
        L = si.scan_length_m
        centres = [0.5 * L] if len(keys) < 2 else [0.27 * L, 0.73 * L]
        if len(keys) == 2 and rng.random() < 0.5:
            centres.reverse()
        targets = []
        for j, (key, x) in enumerate(zip(keys, centres, strict=False)):
            t = _target(rng, key, x + float(rng.uniform(-0.03, 0.03)), depth_m=(0.01, 0.18))
            targets.append(_inside_soil(replace(t, id=f"T{j}"), si))
        scene = canonical_scene(targets, soil, length_m=L, seed=seed)
        name = f"tr{i:04d}_{'+'.join(keys) or 'empty'}_{soil.name}"
        info = {"index": i, "kind": "+".join(keys) or "empty"}
        out.append((name, scene, info, si))
    return out


def _inside_soil(t: PlacedTarget, s: FdtdSettings, clearance_m: float = 0.01) -> PlacedTarget:
    """``t`` raised where a long or tilted object would reach below the soil model."""
    short = s.pml_cells * s.dx_m + clearance_m - lowest_m(t, s)
    return replace(t, depth_m=max(0.0, t.depth_m - short)) if short > 0 else t


def training_jobs(
    s: FdtdSettings,
    n: int | None = None,
    mix: tuple[int, int, int] = (2, 2, 1),
    pair_share: float = 0.5,
) -> list[SceneJob]:
    """The jobs of :func:`training_scenes`, each with its own radar settings."""
    scenes = training_scenes(s, n, mix, pair_share)
    return [job_for(scene, si, name, info=info) for name, scene, info, si in scenes]
