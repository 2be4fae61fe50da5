"""``detect scan FILE``: the pipeline on a recorded file, as fast as possible."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from detect.align import TrackGrid
from detect.app.common import command, failure, one_line, out_dir_lock
from detect.blocks import (
    GprBlock,
    MdBlock,
)
from detect.engine.build import attach_outputs, build_pipeline, limit_threads
from detect.engine.drive import close_out
from detect.engine.items import data_span_s, file_items
from detect.engine.pipeline import Pipeline
from detect.errors import (
    EXIT_PROCESSING_FAILED,
    EXIT_USAGE,
    DetectError,
    TaskError,
)
from detect.sinks.display import PlainDisplay, summary_lines
from detect.sinks.gis import head_geometry

log = logging.getLogger(__name__)


@command
def scan_task(cfg: Any) -> int:
    """``detect scan FILE``: the pipeline on a recorded file, as fast as possible."""
    path = cfg.input.get("path")
    if not path:
        raise TaskError("scan needs a FILE", EXIT_USAGE)
    path = Path(str(path))
    spacing = cfg.input.get("trace_spacing_m")
    channel = int(cfg.input.get("channel") or 0)
    try:
        items, info, spacing = file_items(
            path,
            cfg.input.get("format"),
            spacing,
            channel=channel,
            walking_speed_m_s=cfg.input.get("walking_speed_m_s"),
        )
    except DetectError:
        raise
    except Exception as exc:  # a reader that breaks on this file: one line, never a traceback
        log.debug("reading %s failed", path, exc_info=True)
        why = f"{path}: cannot be read: {one_line(exc)}"
        raise TaskError(why, EXIT_PROCESSING_FAILED) from exc
    sensors = tuple(sorted({i.header.sensor for i in items if isinstance(i, (GprBlock, MdBlock))}))
    info = {**info, "paced": False, **head_geometry(cfg.get("align") or {})}
    grid_m = float(cfg.window.grid_m)
    if spacing and spacing > (TrackGrid(grid_m).max_fill_cells + 1) * grid_m:
        log.warning(
            "%s: trace spacing %.3g m is coarser than the model's %.3g m grid can bridge: "
            "no window will be scored and the whole track will be reported not covered",
            path.name,
            spacing,
            grid_m,
        )
    limit_threads(cfg)
    pipe = build_pipeline(
        cfg,
        sensors,
        PlainDisplay(period_s=math.inf),
        None,
        source_info=info,
        trace_spacing_m=spacing,
    )
    with out_dir_lock(cfg, "output", f"scan-{path.stem}") as lock:
        return _scan(cfg, pipe, items, path, lock.directory)


def _scan(cfg: Any, pipe: Pipeline, items: Sequence[Any], path: Path, out_dir: Path) -> int:
    attach_outputs(pipe, {}, out_dir, record=False)
    pipe.kept = []
    pipe.strict = True
    t0 = time.perf_counter()
    error: TaskError | None = None
    try:
        pipe.feed_offline(items)
    except Exception as exc:  # the files keep what was scored; then one line
        error = failure(pipe, exc, path.name)
        error.__cause__ = exc
    wall = time.perf_counter() - t0
    data_s = data_span_s(items)
    extra: dict[str, Any] = {
        "wall_s": wall, "data_s": data_s, "x_real_time": data_s / max(wall, 1e-9),
        "verdict_in_output": True,
    }  # fmt: skip
    if error is not None:
        extra.update({"failed": str(error), "failed_exit": error.exit_code})
    summary = close_out(pipe, out_dir, extra)
    if error is not None:
        for line in summary_lines(summary):
            print(line)
        raise error
    res = pipe.result()
    verdict = res.get("model") or {}
    try:
        if verdict.get("applied", True):
            from detect.app.plot import velocity_of
            from detect.sinks.plot import plot_scan

            v = velocity_of(path, res.get("source") or {})
            plot_scan(
                out_dir / "scan.png", pipe.kept or [], res, source=path, chains=pipe.chains,
                velocity=v,
            )  # fmt: skip
        else:  # the processed B-scan all the same, through the plain chain (detect plot's)
            from detect.app.plot import radargram_for
            from detect.sinks.plot import save_radargram

            rg = radargram_for(cfg, path)
            why = str(verdict.get("reason") or "")
            why = why.split(": ", 2)[1] if why.count(": ") >= 2 else why
            rg = replace(rg, notes=[*rg.notes, f"MINE MODEL NOT APPLIED: {why}"])
            save_radargram(out_dir / "scan.png", rg)
    except Exception as exc:  # the plot is a convenience; the alarms are written
        log.error("scan.png not written: %s", exc)
    if not verdict.get("applied", True):
        print(f"{path.name}: mine model NOT applied: {verdict.get('reason')}")
    for line in summary_lines(summary):
        print(line)
    return int(summary["exit_status"])
