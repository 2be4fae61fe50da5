"""Window AUC of the shipped models on the held-out simulated lanes, each lane rendered with
the nominal radar (1.5 GHz, 20 ns, 0.039 ns, 1 cm) and again with random radars inside the
envelope: centre frequency 1-3 GHz, window 6-40 ns, 4-12 samples per period, time zero
0.5-4 ns (at most a quarter of the record), trace spacing 0.5-3 cm. The same scenes
(targets, soil) in both.

    .venv/bin/python scripts/bench_radar_envelope.py [--lanes 16] [--radars 3]
        [--models fused,gpr_only] [--json FILE]

The held-out lanes use seeds never used in training (the model card's test set recipe);
the random radars are drawn with their own seeds. Prints one row per model and input:
AUC on the nominal radar, on the random radars, the difference, and the worst single
radar draw. About 3 minutes for the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from detect.config import compose
from detect.metrics import auc
from detect.model.classifier import Classifier
from detect.model.dataset import LaneRecipe, WindowSet, simulate_lane_windows
from detect.model.envelope import RadarEnvelope, random_radar
from detect.model.workflow import held_out_recipes

#: the ranges the issue names for the check (nominal centre frequency 1-3 GHz)
BENCH = RadarEnvelope(sim_centre_hz=(1.0e9, 3.0e9), time_zero_share_max=0.25)


def radar_recipe(r: LaneRecipe, draw: int) -> tuple[LaneRecipe, dict[str, Any]]:
    rng = np.random.default_rng([r.seed, r.lane_id, 1000 + draw])
    sim = dict(r.sim)
    speed = float((sim.get("head") or {}).get("speed_m_s", 0.5))
    gpr = random_radar(rng, dict(sim.get("gpr") or {}), speed, BENCH)
    return replace(r, sim={**sim, "gpr": gpr}), gpr


def windows(recipes: list[LaneRecipe], workers: int) -> WindowSet:
    with ProcessPoolExecutor(workers) as pool:
        return WindowSet.concat(list(pool.map(simulate_lane_windows, recipes)))


def scores(clf: Classifier, ws: WindowSet, emi: bool) -> float:
    gpr = None if ws.gpr is None else ws.gpr.astype(np.float32)
    pred = clf.predict(gpr if clf.has_gpr else None, ws.emi if emi and clf.has_emi else None)
    p = np.asarray(pred.p_mine, dtype=np.float64)
    ok = np.isfinite(p)
    return auc(p[ok], ws.is_mine[ok])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--radars", type=int, default=3, help="random radar draws per lane")
    ap.add_argument("--models", default="fused,gpr_only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    cfg = compose([])
    base = [replace(r, radar_jitter=0.0, bg_keep=1.0) for r in held_out_recipes(cfg, a.lanes)]
    nominal = windows(base, a.workers)
    draws: list[tuple[WindowSet, list[dict[str, Any]]]] = []
    for k in range(a.radars):
        pairs = [radar_recipe(r, k) for r in base]
        draws.append((windows([p[0] for p in pairs], a.workers), [p[1] for p in pairs]))
    radars = [g for _, gs in draws for g in gs]
    fc = np.array([g["centre_hz"] for g in radars]) / 1e9
    win = np.array([g["dt_ns"] * g["n_samples"] for g in radars])
    spc = np.array([0.5 / g["trace_rate_hz"] for g in radars]) * 100
    print(
        f"{a.lanes} held-out lanes x (nominal + {a.radars} random radars): "
        f"{len(nominal)} windows each ({int(nominal.is_mine.sum())} mine); random radars "
        f"{fc.min():.2f}-{fc.max():.2f} GHz, {win.min():.1f}-{win.max():.1f} ns, "
        f"{spc.min():.2f}-{spc.max():.2f} cm"
    )
    rows = []
    print(f"{'model':<10} {'input':<10} {'AUC nominal':>12} {'AUC random':>11} {'diff':>7} "
          f"{'worst draw':>11}")  # fmt: skip
    for name in a.models.split(","):
        clf = Classifier.load(name, cfg)
        inputs = [("GPR+EMI", True), ("GPR alone", False)] if clf.has_emi else [("GPR", False)]
        if not clf.has_gpr:
            inputs = [("EMI", True)]
        for label, emi in inputs:
            a_nom = scores(clf, nominal, emi)
            per = [scores(clf, ws, emi) for ws, _ in draws]
            a_rand = scores(clf, WindowSet.concat([ws for ws, _ in draws]), emi)
            rows.append(
                {"model": name, "input": label, "auc_nominal": a_nom, "auc_random": a_rand,
                 "diff": a_rand - a_nom, "auc_worst_draw": min(per)}
            )  # fmt: skip
            print(f"{name:<10} {label:<10} {a_nom:>12.4f} {a_rand:>11.4f} {a_rand - a_nom:>+7.4f} "
                  f"{min(per):>11.4f}")  # fmt: skip
    print(f"({time.perf_counter() - t0:.0f} s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "lanes": a.lanes, "radars": a.radars}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
