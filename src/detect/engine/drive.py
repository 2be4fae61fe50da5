"""Feeding a pipeline from a source, and closing it out: the alarm files and the summary."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detect.engine.outcome import exit_status
from detect.engine.pipeline import Pipeline
from detect.model.scorers import (
    UNCALIBRATED_NOTE,
)
from detect.sinks.export import write_all

log = logging.getLogger(__name__)


def drive(
    pipe: Pipeline,
    source: Any,
    duration_s: float | None,
    stop: threading.Event | None = None,
    flush_every_s: float = 1.0,
) -> None:
    """Read the source until it is exhausted, ``duration_s`` passes or ``stop`` is set."""
    from detect.sources.base import SourceExhausted

    t0 = time.monotonic()
    last_flush = t0
    while stop is None or not stop.is_set():
        now = time.monotonic()
        if duration_s is not None and now - t0 >= duration_s:
            break
        try:
            items = source.read(0.05)
        except SourceExhausted:
            break
        if items:
            pipe.handle(items)
        pipe.poll([source])
        if now - last_flush >= flush_every_s:
            pipe.sinks.emit("flush")
            last_flush = now


def close_out(
    pipe: Pipeline,
    out_dir: Path | None,
    extra: Mapping[str, Any] | None = None,
    truth: list[dict[str, Any]] | None = None,
) -> dict:
    """Flush, close, write the alarm files; return the summary."""
    pipe.finish(score_tail=not (extra or {}).get("failed"))
    pipe.record_coverage_rest()
    if truth:
        pipe.sinks.emit("on_truth", list(truth))
    pipe.sinks.emit("flush")
    pipe.sinks.emit("close")
    summary = {**pipe.summary(), **dict(extra or {})}
    if not pipe.scorer.calibrated:
        summary["uncalibrated"] = UNCALIBRATED_NOTE
    summary["exit_status"], summary["exit_reason"] = exit_status(pipe, summary)
    if out_dir is not None:
        result = pipe.result()
        result["summary"] = summary
        try:
            write_all(out_dir, result, pipe.alarms)
            summary["out_dir"] = str(out_dir)
        except OSError as exc:
            log.error("cannot write the alarm files to %s: %s", out_dir, exc)
            summary["out_dir"] = f"FAILED: {exc}"
            summary["exit_status"], summary["exit_reason"] = exit_status(pipe, summary)
    return summary
