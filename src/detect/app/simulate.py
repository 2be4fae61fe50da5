"""``detect simulate``: write simulated, labelled lanes (session files and truth CSVs)."""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from detect.app.common import command
from detect.config import to_dict
from detect.errors import EXIT_USAGE, TaskError
from detect.io.truth import write_truth_csv
from detect.sim.lane import simulate_lane
from detect.sim.settings import SimConfigError, settings_from
from detect.sim.task import write_lane

log = logging.getLogger(__name__)


@command
def simulate_task(cfg: DictConfig) -> int:
    try:
        s = settings_from(cfg.get("sim"))
    except SimConfigError as exc:
        raise TaskError(str(exc), EXIT_USAGE) from None
    out = cfg.output.get("dir") if cfg.get("output") is not None else None
    if not out:
        out = "runs/sim-" + _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(str(out))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(f"cannot create output.dir {out_dir}: {exc.strerror}", EXIT_USAGE) from None
    if s.engine == "gprmax":
        return _fullwave(cfg, out_dir)
    seed = int(cfg.get("seed", 0))
    config = to_dict(cfg)
    rows = []
    t_start = time.perf_counter()
    for i in range(s.n_lanes):
        lane = simulate_lane(seed, s, lane_index=i)
        stem = f"lane_{i:04d}"
        write_lane(out_dir / f"{stem}.h5", lane, config, s)
        write_truth_csv(out_dir / f"{stem}_truth.csv", lane.truth)
        rows.append(
            {
                "lane": stem,
                "seed": seed,
                "lane_index": i,
                "soil": lane.scene.soil.name,
                "duration_s": round(lane.duration_s, 3),
                "n_traces": lane.gpr.n,
                "n_objects": len(lane.truth),
                "odometer_scale": round(lane.odometer.scale, 6),
                "odometer_error_end_m": round(lane.odometer_error_end_m, 4),
            }
        )
        log.info(
            "%s: %s, %d objects, %d traces",
            stem,
            lane.scene.soil.name,
            len(lane.truth),
            lane.gpr.n,
        )
    with (out_dir / "lanes.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["lane"])
        w.writeheader()
        w.writerows(rows)
    print(
        f"wrote {len(rows)} lanes to {out_dir} in {time.perf_counter() - t_start:.1f} s",
        flush=True,
    )
    return 0


def _fullwave(cfg: DictConfig, out_dir: Path) -> int:
    """``sim.engine=gprmax``: the seeded full-wave scene set of the ``fdtd`` group, computed
    into its cache (resumable) and exported to ``out_dir`` as sessions with truth CSVs."""
    from detect.sim.fdtd.farm import export, run_jobs
    from detect.sim.fdtd.run import FdtdRunError
    from detect.sim.fdtd.scenes import validation_jobs
    from detect.sim.fdtd.settings import FdtdConfigError, fdtd_settings_from

    try:
        fs = fdtd_settings_from(cfg.get("fdtd"))
        jobs = validation_jobs(fs)
    except (FdtdConfigError, ValueError) as exc:
        raise TaskError(str(exc), EXIT_USAGE) from None
    try:
        report = run_jobs(jobs, fs, fs.cache_path(), progress=lambda line: print(line, flush=True))
    except FdtdRunError as exc:
        raise TaskError(str(exc), EXIT_USAGE) from None
    index = export(report, jobs, out_dir)
    print(f"{report.summary()}; index {index}", flush=True)
    if report.failed:
        name, why = report.failed[0]
        more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
        raise TaskError(f"scene {name} failed{more}: {why}", EXIT_USAGE)
    return 0
