"""Quality of the shipped models on the fixed held-out simulated test set.

    .venv/bin/python scripts/model_quality.py [--write-cards] [--lanes N] [key=value ...]

Prints AUC / ECE / AP with lane-bootstrap 95% intervals for the fused, GPR-only and EMI-only
models, the fused model with one sensor missing, and the classical baselines; with
``--write-cards`` the figures go into each model's card (card.json + card.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from detect.config import compose
from detect.model.card import CARD_JSON, read_card, write_card
from detect.model.classifier import Classifier, resolve_model_dir
from detect.model.dataset import build_windows
from detect.model.quality import evaluate_all, format_table
from detect.model.workflow import data_plan, held_out_recipes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fused,gpr_only,emi_only")
    ap.add_argument("--lanes", type=int, default=None, help="test lanes (default train.test_lanes)")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples")
    ap.add_argument("--write-cards", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = compose(args.overrides)
    root = Path(str(cfg.train.models_dir)) if cfg.train.get("models_dir") else None
    models = {}
    for name in args.models.split(","):
        models[name] = Classifier.load(root / name if root else name, cfg)
    n_lanes = args.lanes or int(cfg.train.test_lanes)
    t0 = time.monotonic()
    test = build_windows(held_out_recipes(cfg, n_lanes))
    cal = build_windows(data_plan(cfg).cal)
    print(
        f"test set: {n_lanes} lanes, {len(test)} windows, {int(test.is_mine.sum())} mine windows, "
        f"soils {sorted(set(test.soil))} ({time.monotonic() - t0:.0f}s to simulate)",
        file=sys.stderr,
    )
    results = evaluate_all(models, test, cal, n_boot=args.boot)
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_cards:
        for name in models:
            d = resolve_model_dir(root / name if root else name)
            card = read_card(d)
            card["metrics"] = {k: v for k, v in results.items()}
            card["test_set"] = {
                "lanes": n_lanes,
                "windows": len(test),
                "mine_windows": int(test.is_mine.sum()),
                "soils": sorted(set(test.soil)),
                "seeds": "900000 (all training soils) and 900001 (moist_sand, never trained on)",
                "script": "scripts/model_quality.py --write-cards",
            }
            write_card(d, card)
            print(f"wrote metrics into {d / CARD_JSON}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
