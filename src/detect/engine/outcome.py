"""What a run's outcome was: complete, ground not covered, recording lost, failed (the
exit status a supervisor reads, :mod:`detect.errors`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from detect.blocks import (
    SensorState,
)
from detect.coverage import merge
from detect.engine.pipeline import Pipeline
from detect.engine.report import model_verdict
from detect.errors import (
    EXIT_NOT_COVERED,
    EXIT_OK,
    EXIT_PROCESSING_FAILED,
    EXIT_RECORDING_LOST,
    EXIT_USAGE,
)

log = logging.getLogger(__name__)

#: not-covered ground this much beyond the half window (and the sensors' offset spread) at a
#: lane end still counts as the lane end: one scoring step plus rounding
_LANE_END_SLACK_M = 0.05


def _lane_end_allowance_m(pipe: Pipeline) -> float:
    """Ground at each end of the track that is never a window centre, in a healthy run."""
    offsets = [pipe.aligner.offset_m(s) for s in pipe.needed] or [0.0]
    step_m = pipe.stride * pipe.spec.grid_m
    spread_m = max(offsets) - min(offsets)
    return pipe.spec.half * pipe.spec.grid_m + spread_m + step_m + _LANE_END_SLACK_M


def not_covered_reasons(pipe: Pipeline, summary: Mapping[str, Any]) -> list[str]:
    """Why ground inside the lane was not covered; empty for a run where only the lane ends
    (never a window centre) are not covered."""
    needed = set(pipe.needed)
    out: list[str] = []
    never = set(summary.get("never_started") or ())
    faulted = sorted(
        {e.sensor for e in pipe.health_events if e.state == SensorState.FAULT} & (needed - never)
    )
    out.extend(f"{s} FAULT" for s in faulted)
    out.extend(f"no data from {s}" for s in summary.get("never_started") or ())
    if summary.get("processing_errors"):
        out.append(f"{summary['processing_errors']} blocks could not be processed")
    if summary.get("blind_s", 0.0) > 0.5:
        out.append(f"{summary['blind_s']:.1f} s blind")
    if summary.get("unplaced_s", 0.0) > 0.5:
        out.append(f"{summary['unplaced_s']:.1f} s of data without a position")
    segs = [g for g in pipe.coverage.segments() if g["end_m"] > g["start_m"]]
    if segs:
        lane_end_m = _lane_end_allowance_m(pipe)
        first, last = float(segs[0]["start_m"]), float(segs[-1]["end_m"])
        inner = 0.0
        gaps = merge(  # neighbours that miss different sensors are one stretch of ground
            (float(g["start_m"]), float(g["end_m"])) for g in segs if g["status"] == "not_covered"
        )
        for a, b in gaps:
            if a <= first:
                a = max(a, min(b, first + lane_end_m))
            if b >= last:
                b = min(b, max(a, last - lane_end_m))
            inner += max(0.0, b - a)
        if inner > 1e-6:
            out.append(f"{inner:.2f} m inside the lane not covered")
    return out


def exit_status(pipe: Pipeline, summary: Mapping[str, Any]) -> tuple[int, str]:
    """The exit status of a run that completed (see :mod:`detect.errors`) and why."""
    if summary.get("failed"):
        code = int(summary.get("failed_exit", EXIT_PROCESSING_FAILED))
        what = "REFUSED" if code == EXIT_USAGE else "PROCESSING FAILED"
        return code, f"{what}: {summary['failed']}"
    lost = [  # the recording is one of the sinks
        f"{'recording ' if name == 'session.h5' else ''}{name}: {why}"
        for name, why in (summary.get("sink_errors") or {}).items()
        if name not in ("display", "console")  # views only: nothing recorded is lost
    ]
    if str(summary.get("out_dir", "")).startswith("FAILED"):
        lost.append(f"alarm files {summary['out_dir']}")
    if summary.get("verdict_in_output") and not lost:
        verdict = model_verdict(pipe)
        if not verdict["applied"]:  # a readable file: the verdict is in the output
            return EXIT_OK, f"NO MINE MODEL APPLIED: {verdict['reason']}"
    reasons = not_covered_reasons(pipe, summary)
    why = " / ".join(
        [*(["GROUND NOT COVERED: " + "; ".join(reasons)] if reasons else []),
         *(["RECORDING LOST: " + "; ".join(lost)] if lost else [])]
    )  # fmt: skip
    if reasons:  # the ground must be swept again: that matters more than the lost record
        return EXIT_NOT_COVERED, why
    if lost:
        return EXIT_RECORDING_LOST, why
    return EXIT_OK, "complete"
