"""UCI Land Mines (real fluxgate data): 5-class accuracy under repeated stratified k-fold CV.

Usage: .venv/bin/python scripts/uci_benchmark.py [--folds 10] [--repeats 5] [--fast]
Prints one row per classifier: pooled accuracy (mean and spread over repeats), per-class recall,
and the gap to the published best (85.8 %, Yilmaz et al. 2018).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from detect.uci_landmines import (
    CLASS_NAMES,
    CLASSIFIERS,
    PUBLISHED_BEST_ACCURACY,
    cross_validate,
    load_csv,
)

#: the folder of real sample files ($DETECT_REAL_DATA, as the tests use), UCI data inside it
_REAL = Path(
    os.environ.get("DETECT_REAL_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
)
DEFAULT = _REAL / "uci_land_mines" / "Mine_Dataset.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fast", action="store_true", help="skip the MLP")
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        print(f"uci_benchmark: {args.csv} not found", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    data = load_csv(args.csv)
    print(
        f"UCI Land Mines: {len(data)} rows, class counts {np.bincount(data.label).tolist()}, "
        f"{args.repeats} x stratified {args.folds}-fold CV"
    )
    head = f"{'classifier':<10} {'accuracy':>16} " + " ".join(f"{c[:9]:>9}" for c in CLASS_NAMES)
    print(head + f" {'vs 85.8%':>9} {'time_s':>7}")
    for name, fit in CLASSIFIERS.items():
        if args.fast and name == "mlp":
            continue
        t0 = time.perf_counter()
        runs = [cross_validate(data, fit, args.folds, seed, name) for seed in range(args.repeats)]
        acc = np.array([r.accuracy for r in runs])
        conf = sum(r.confusion for r in runs)
        recall = np.diag(conf) / conf.sum(axis=1)
        spread = acc.std(ddof=1) if acc.size > 1 else 0.0
        print(
            f"{name:<10} {acc.mean():>9.3f} ± {spread:.3f} "
            + " ".join(f"{r:>9.3f}" for r in recall)
            + f" {acc.mean() - PUBLISHED_BEST_ACCURACY:>+9.3f} {time.perf_counter() - t0:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
