"""Simulator throughput on one core (BLAS/OpenMP pinned to one thread): GPR traces/s
(with the matching EMI stream), lanes/s and scenes/s. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_sim.py [--lanes 10] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

from detect.sim.lane import simulate_lane  # noqa: E402
from detect.sim.scene import make_scene  # noqa: E402
from detect.sim.settings import SimSettings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lanes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    s = SimSettings()
    simulate_lane(args.seed, s, lane_index=10_000)  # warm caches (wavelet bank)

    t0, c0 = time.perf_counter(), time.process_time()
    n_traces = n_readings = 0
    duration_s = 0.0
    for i in range(args.lanes):
        lane = simulate_lane(args.seed, s, lane_index=i)
        n_traces += lane.gpr.n
        n_readings += lane.emi.n
        duration_s += lane.duration_s
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0

    t1 = time.perf_counter()
    n_scenes = 200
    for i in range(n_scenes):
        make_scene(args.seed, s, i)
    dt_scene = time.perf_counter() - t1

    print(f"lanes              {args.lanes} x {s.lane_length_m:g} m, {duration_s:.0f} s of data")
    print(f"GPR traces/s       {n_traces / dt:,.0f}  ({s.gpr.n_samples} samples/trace, with EMI)")
    print(f"  per CPU second   {n_traces / cpu:,.0f}  (process time: fair on a shared machine)")
    print(f"EMI readings/s     {n_readings / dt:,.0f}  ({s.emi.n_gates} gates)")
    print(f"lanes/s            {args.lanes / dt:.2f}  ({dt / args.lanes * 1e3:.0f} ms per lane)")
    print(f"real-time factor   {duration_s / dt:.0f}x")
    print(f"scenes/s           {n_scenes / dt_scene:,.0f}  (layout only)")


if __name__ == "__main__":
    main()
