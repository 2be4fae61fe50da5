"""Chaos soak: many random fault schedules against `detect run source=sensor_head`.

Prints one line per schedule (and the full report of any that fails, with a one-line
replay command), then the table: schedules, targets, alarmed, reported not covered,
silent misses (must be 0), data lost on faults (must be 0). Writes everything to a JSON.

    .venv/bin/python scripts/chaos_soak.py --schedules 200 --seed 1 [--json chaos.json]
    .venv/bin/python scripts/chaos_soak.py --replay '<schedule json>'

Exit status: 0 when every schedule held the invariant and lost nothing, 1 otherwise.
The invariant and the fault model: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from detect.chaos import RunResult, Schedule, SoakTotals, generate, run_schedule


def _row(r: RunResult) -> dict:
    return {
        "schedule": json.loads(r.schedule.to_json()),
        "exit_code": r.exit_code,
        **r.counts(),
        "data_lost": r.data_lost,
        "unrecorded_gpr": r.unrecorded_gpr,
        "gpr_sent_intact": r.gpr_sent_intact,
        "fired": r.fired,
        "errors": r.errors,
        "silent_misses": [
            {"walk": v.target.walk, "position_m": v.target.position_m, "detail": v.detail}
            for v in r.silent_misses
        ],
        "wall_s": round(r.wall_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="schedule i uses seed SEED*100000+i")
    ap.add_argument("--max-faults", type=int, default=3)
    ap.add_argument("--replay", help="one schedule's JSON (as a failing run prints it)")
    ap.add_argument("--json", default="chaos_soak.json", help="where to write the results")
    ap.add_argument("--keep", help="keep each run's files under this folder")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this long")
    args = ap.parse_args(argv)
    if args.schedules < 1 or args.max_faults < 1:
        print("chaos_soak: --schedules and --max-faults must be >= 1", file=sys.stderr)
        return 2
    if args.replay:
        try:
            schedules = [Schedule.from_json(args.replay)]
        except (ValueError, KeyError, TypeError) as exc:
            print(f"chaos_soak: --replay is not a schedule: {exc}", file=sys.stderr)
            return 2
    else:
        schedules = [
            generate(args.seed * 100_000 + i, args.max_faults) for i in range(args.schedules)
        ]
    totals = SoakTotals()
    rows = []
    t0 = time.monotonic()
    for i, sched in enumerate(schedules):
        if args.max_minutes is not None and time.monotonic() - t0 > 60 * args.max_minutes:
            print(f"time limit reached after {i} schedules", flush=True)
            break
        if args.keep:
            work = Path(args.keep) / f"{sched.seed}"
            work.mkdir(parents=True, exist_ok=True)
            r = run_schedule(sched, work)
        else:
            with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
                r = run_schedule(sched, Path(tmp))
        totals.add(r)
        rows.append(_row(r))
        c = r.counts()
        flag = "ok" if r.ok else "FAIL"
        print(
            f"[{i + 1}/{len(schedules)}] {flag} {sched.describe()} -> exit {r.exit_code}, "
            f"{c['alarmed']} alarmed, {c['not_covered']} not covered, "
            f"{c['SILENT_MISS']} silent, lost {r.data_lost} ({r.wall_s:.0f} s)",
            flush=True,
        )
        if not r.ok:
            print(r.report(), flush=True)
    print()
    print(totals.table())
    doc = {"totals": asdict(totals), "runs": rows, "wall_s": round(time.monotonic() - t0, 1)}
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"results: {args.json}")
    return 0 if totals.silent_misses == 0 and totals.data_lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
