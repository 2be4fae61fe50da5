"""CPU inference speed of a shipped model: batched windows/s and single-window latency.

    .venv/bin/python scripts/bench_model.py [--model fused] [--threads 1] [--batch 256]

Prints figures; asserts nothing (speed depends on the machine and its load).
Targets (issue 7): >= 1,000 windows/s batched and <= 10 ms per single window, one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from detect.model.classifier import Classifier


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="fused")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = Classifier.load(args.model)
    s = clf.spec
    rng = np.random.default_rng(0)
    gpr = rng.standard_normal((args.batch, s.n_pos, s.gpr_samples)).astype(np.float32)
    emi = rng.standard_normal((args.batch, s.n_pos, s.emi_channels)).astype(np.float32)
    g = gpr if clf.has_gpr else None
    e = emi if clf.has_emi else None
    for _ in range(3):
        clf.predict(g, e)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        clf.predict(g, e)
        n += args.batch
    rate = n / (time.perf_counter() - t0)
    lat = []
    g1 = None if g is None else g[:1]
    e1 = None if e is None else e[:1]
    for _ in range(20):
        clf.predict(g1, e1)
    t_end = time.perf_counter() + args.seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        clf.predict(g1, e1)
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1e3
    print(
        f"model {clf.name}: {args.threads} thread(s), windows {s.n_pos}x{s.gpr_samples} GPR + "
        f"{s.n_pos}x{s.emi_channels} EMI"
    )
    print(f"batched (batch {args.batch}): {rate:,.0f} windows/s   (target >= 1,000)")
    print(
        f"single window: median {statistics.median(lat_ms):.2f} ms, "
        f"p99 {np.percentile(lat_ms, 99):.2f} ms over {len(lat)} calls   (target <= 10 ms)"
    )


if __name__ == "__main__":
    main()
