"""The session recording as a sink: switched off loudly at its first error while alarming
goes on."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from detect.blocks import (
    SensorState,
)
from detect.coverage import FinalCoverage
from detect.io.session import SessionWriter
from detect.sinks.base import Sink

log = logging.getLogger(__name__)


class RecorderSink(Sink):
    """The session recording (:class:`detect.io.session.SessionWriter`) as a sink.

    Its first error switches it off (:class:`detect.engine.sinks.SinkSet`): the file is
    closed as it stands, everything written before stays readable, alarming goes on.
    ``writer`` None: the recording could not be created (``error`` says why)."""

    name = "session.h5"

    def __init__(self, writer: Any, path: Path, error: str | None = None) -> None:
        self.writer = writer
        self.path = path
        self.error: str | None = error if writer is not None else (error or "not created")

    @property
    def ok(self) -> bool:
        return self.writer is not None and self.error is None

    def on_block(self, item: Any) -> None:
        self.writer.write(item)

    def on_alarm(self, alarm: Any) -> None:
        self.writer.write(alarm)

    def on_health(self, event: Any) -> None:
        self.writer.write(event)

    def on_coverage(self, final: FinalCoverage, host_time_s: float, epoch: int) -> None:
        """The segments that became final (one row per missing sensor of each not-covered
        segment), then how far the record now reaches. A writer without
        ``write_coverage_final`` (a test double) gets the rows only."""
        kw = {"epoch": epoch} if epoch else {}
        for seg in final.segments:
            if seg.get("status") != "not_covered":
                continue
            for sensor in seg.get("missing", []):
                self.writer.write_coverage(
                    seg["start_m"], seg["end_m"], SensorState.FAULT, "not covered", sensor, **kw
                )
        mark = getattr(self.writer, "write_coverage_final", None)
        if mark is None:
            return
        opened = final.open_segment
        open_start_m = math.nan if opened is None else float(opened["start_m"])
        missing = [] if opened is None else list(opened["missing"])
        mark(final.final_to_m, open_start_m, missing, host_time_s, **kw)

    def on_outcome(self, outcome: dict[str, Any]) -> None:
        self.writer.write_outcome(outcome)

    def on_truth(self, truth: list[dict[str, Any]]) -> None:
        self.writer.write_truth(truth)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def stopped(self, error: str) -> str:
        self.error = error
        if self.writer is None:
            return error
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # the file is already broken
                log.debug("closing the failed recording raised", exc_info=True)
        return f"RECORDING STOPPED ({self.path}): {error}"

    def status(self) -> str:
        if self.writer is None and self.error is None:
            return "off"
        return f"{self.path.name}" if self.error is None else f"STOPPED: {self.error}"


def open_recorder(path: Path, config: dict[str, Any], info: dict[str, Any]) -> RecorderSink:
    """The recording sink for ``path``; one that could not be created says so in ``error``
    (the run goes on without a recording, loudly)."""
    try:
        writer = SessionWriter(path, config=config, info=info)
    except Exception as exc:
        return RecorderSink(None, path, f"RECORDING UNAVAILABLE: cannot create {path}: {exc}")
    return RecorderSink(writer, path)
