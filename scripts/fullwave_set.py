"""Build the full-wave (gprMax) validation set, or regenerate the committed test fixture.

    python scripts/fullwave_set.py                       # 48 scenes into ~/.cache/detect/fullwave
    python scripts/fullwave_set.py --n 96 --workers 4 --out /data/fw-val
    python scripts/fullwave_set.py --scheduler dask-local --workers 2
    python scripts/fullwave_set.py --scheduler tcp://10.0.0.5:8786   # a running Dask scheduler
    python scripts/fullwave_set.py --fixture tests/data/fullwave     # the small test fixture
    python scripts/fullwave_set.py --training --n 96 --seed 610000 --set dx_m=0.003 --out DIR
    python scripts/fullwave_set.py --training --mix 1:2:1 --pairs 0.25 ...  # more negatives

Scenes are cached by hash under ``--cache`` (finished scenes are never recomputed: rerun
the same command to resume); ``--out`` (default ``<cache>/validation``) receives one
session file and truth CSV per scene and ``scenes.csv``. Seeds start at ``--seed``
(500000: disjoint from the small seeds training uses). Needs ``pip install -e .[fdtd]``.
Other settings: ``--set key=value`` for any key of the ``fdtd`` config group.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from detect.io.truth import write_truth_csv
from detect.sim.fdtd.farm import export, run_jobs
from detect.sim.fdtd.run import BSCAN, FdtdRunError, run_scene
from detect.sim.fdtd.scenes import fixture_jobs, training_jobs, validation_jobs
from detect.sim.fdtd.settings import FdtdConfigError, fdtd_settings_from


def _settings(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FdtdConfigError(f"--set {item!r}: expected key=value")
        values[key.strip()] = None if value.strip() in ("null", "None") else value.strip()
    for key in ("workers", "scheduler", "seed", "cache_dir"):
        v = getattr(args, key)
        if v is not None:
            values[key] = v
    if args.n is not None:
        values["n_scenes"] = args.n
    return values


def _mix(text: str) -> tuple[int, int, int]:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--mix {text!r}: expected threat:clutter:empty counts, e.g. 1:2:1")
    a, b, c = (int(p) for p in parts)
    return a, b, c


def build_fixture(dest: Path, cache: Path) -> None:
    """The test fixture: each scene's resampled B-scan, truth CSV and input file."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, job in fixture_jobs().items():
        res = run_scene(job, cache)
        folder = Path(res["folder"])
        shutil.copyfile(folder / BSCAN, dest / f"{name}.h5")
        shutil.copyfile(folder / "scene.in", dest / f"{name}.in")
        write_truth_csv(dest / f"{name}_truth.csv", list(job.truth))
        print(f"{name}: {res['n_traces']} traces, dt {res['dt_ns']:.5f} ns, {folder}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, help="number of scenes (default 48)")
    p.add_argument("--workers", type=int, help="processes / Dask workers (0: one per core)")
    p.add_argument("--scheduler", help="local-processes | dask-local | tcp://HOST:PORT")
    p.add_argument("--seed", type=int, help="first scene seed (default 500000)")
    p.add_argument(
        "--cache", dest="cache_dir", help="scene cache (default ~/.cache/detect/fullwave)"
    )
    p.add_argument("--out", help="export folder (default <cache>/validation)")
    p.add_argument("--set", action="append", help="any fdtd key, e.g. --set dx_m=0.003")
    p.add_argument(
        "--training",
        action="store_true",
        help="the varied training scenes (scenes.training_scenes) instead of the validation set",
    )
    p.add_argument(
        "--mix",
        default="2:2:1",
        help="with --training: threat:clutter:empty scenes in each cycle (default 2:2:1)",
    )
    p.add_argument(
        "--pairs",
        type=float,
        default=0.5,
        help="with --training: share of threat and clutter scenes holding a second object of "
        "the other group (default 0.5)",
    )
    p.add_argument("--fixture", help="write the small test fixture into this folder instead")
    args = p.parse_args(argv)
    try:
        s = fdtd_settings_from(_settings(args))
        if args.fixture:
            build_fixture(Path(args.fixture), s.cache_path())
            return 0
        if args.training:
            jobs = training_jobs(s, mix=_mix(args.mix), pair_share=args.pairs)
        else:
            jobs = validation_jobs(s)
        report = run_jobs(jobs, s, s.cache_path())
        out = Path(args.out) if args.out else s.cache_path() / "validation"
        index = export(report, jobs, out)
    except (FdtdConfigError, FdtdRunError, ValueError) as exc:
        print(f"fullwave_set: {exc}", file=sys.stderr)
        return 2
    print(f"{report.summary()}; index {index}")
    print(f"settings: {dataclasses.asdict(s)}")
    for name, why in report.failed:
        print(f"fullwave_set: scene {name} failed: {why}", file=sys.stderr)
    return 2 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
