"""``detect evaluate``: score detectors on labelled lanes; metrics.json, report.md, plots."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.app.common import command
from detect.engine.build import limit_threads
from detect.errors import EXIT_UNAVAILABLE, EXIT_USAGE, TaskError
from detect.evaluate import (
    DETECTORS,
    jsonable,
    lane_summary,
    lanes_from_cfg,
    run_evaluation,
    scoring_summary,
    settings_from_cfg,
    summary_table,
)

log = logging.getLogger(__name__)


@command
def evaluate_task(cfg: Any) -> int:
    """``detect evaluate``: metrics.json, report.md and plots in the output directory."""
    from detect.config import to_dict

    e = cfg.evaluate
    limit_threads(cfg)
    settings_from_cfg(cfg)  # config errors before minutes of simulation
    unknown = [d for d in e.detectors if d not in DETECTORS]
    if unknown:
        raise TaskError(
            f"evaluate.detectors: unknown detector '{unknown[0]}'; known: {', '.join(DETECTORS)}",
            EXIT_USAGE,
        )
    out_dir = (
        Path(str(cfg.output.dir))
        if cfg.output.get("dir")
        else (Path("runs") / f"evaluate-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
    )
    test, cal, src = lanes_from_cfg(cfg)
    if not test:
        raise TaskError("no test lanes to evaluate (evaluate.n_lanes = 0?)", EXIT_USAGE)
    log.info(
        "evaluating %s on %d test + %d calibration lanes", list(e.detectors), len(test), len(cal)
    )
    result = run_evaluation(cfg, test, cal, list(e.detectors), lambda m: log.info("%s", m))
    if not result["detectors"]:
        reasons = "; ".join(f"{k}: {v}" for k, v in result["unavailable"].items())
        raise TaskError(f"no detector could run ({reasons})", EXIT_UNAVAILABLE)
    doc = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "lanes": lane_summary(test, cal, src),
        "scoring": scoring_summary(settings_from_cfg(cfg)),
        "config": {"evaluate": to_dict(cfg.evaluate), "alarm": to_dict(cfg.alarm)},
        "detectors": result["detectors"],
        "unavailable": result["unavailable"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(jsonable(doc), indent=1))
    plots: list[str] = []
    if bool(e.plots):
        from detect.evaluate_report import write_plots

        plots = write_plots(out_dir, doc, test[0] if test else None, result["examples"])
    from detect.evaluate_report import write_report

    write_report(out_dir / "report.md", doc, plots)
    for line in summary_table(doc):
        print(line)
    print(f"wrote {out_dir}/metrics.json, report.md and {len(plots)} plots")
    return 0
