"""Small analytic windows for model tests: a hyperbola in GPR, a bump in EMI."""

from __future__ import annotations

import numpy as np

from detect.blocks import CLASSES
from detect.model.dataset import WindowSet
from detect.windows import WindowSpec

SPEC = WindowSpec(length_m=0.32, grid_m=0.02, gpr_samples=32, emi_channels=4)


def synthetic_set(n: int, seed: int, spec: WindowSpec = SPEC, lanes: int = 4) -> WindowSet:
    """Half the windows hold a target at the centre: a hyperbola (GPR) and a decay bump (EMI).

    Class: ap_mine (hyperbola + weak EMI), metal_clutter (strong EMI, no hyperbola),
    background (noise). Depth sets the hyperbola apex time.
    """
    rng = np.random.default_rng(seed)
    x = (np.arange(spec.n_pos) - spec.half) * spec.grid_m
    t = np.arange(spec.gpr_samples)
    cls = rng.choice([0, 1, 4], size=n, p=[0.5, 0.3, 0.2])
    depth = np.where(cls == 1, rng.uniform(0.05, 0.2, n), np.nan).astype(np.float32)
    gpr = 0.1 * rng.standard_normal((n, spec.n_pos, spec.gpr_samples))
    emi = 0.1 * rng.standard_normal((n, spec.n_pos, spec.emi_channels))
    mine = cls == 1
    d = np.nan_to_num(depth, nan=0.1)[:, None]
    apex = 4 + 100 * np.sqrt(d**2 + x[None, :] ** 2)  # (n, n_pos) samples
    beam = np.exp(-0.5 * (x / 0.06) ** 2)[None, :, None]  # antenna footprint
    hyper = beam * np.exp(-0.5 * ((t[None, None, :] - apex[:, :, None]) / 1.5) ** 2)
    gpr += mine[:, None, None] * hyper
    bump = np.exp(-0.5 * (x / 0.05) ** 2)[None, :, None] * np.geomspace(1, 0.1, spec.emi_channels)
    emi += (0.4 * mine + 3.0 * (cls == 4))[:, None, None] * bump
    return WindowSet(
        gpr=gpr.astype(np.float16),
        emi=emi.astype(np.float32),
        cls=cls.astype(np.int64),
        depth_m=depth,
        lane=rng.integers(0, lanes, n).astype(np.int64),
        metal_g=np.where(mine, 0.5, np.nan).astype(np.float32),
        clutter_near=np.zeros(n, dtype=bool),
        soil=np.full(n, "synthetic", dtype=object),
    )


assert CLASSES[1] == "ap_mine" and CLASSES[4] == "metal_clutter"
