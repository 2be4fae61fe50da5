"""Full-wave scene sets: a seeded validation set and the committed test fixture.

The validation set cycles through every threat kind of the target library (mines and
UXO, depth to top 2-15 cm), every clutter kind and empty soil, in the ratio 3 : 2 : 1
(48 scenes: each threat kind twice, each clutter kind at least once, 8 empty soils). Soils,
positions, lateral offsets (within 40 % of the object's radius, so each object crosses
the modelled plane), sizes and orientations are drawn from ``seed + i``; the default
seeds (500000 on) lie far from the small seeds training uses.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from detect.sim.fdtd.run import SceneJob
from detect.sim.fdtd.scene_to_gprmax import scan_truth, scene_input
from detect.sim.fdtd.settings import FdtdSettings
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


def _target(rng: np.random.Generator, key: str, x_m: float) -> PlacedTarget:
    k = LIBRARY[key]
    lo, hi = DEPTH_RANGE_M
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
