"""What the commands share: the locked output directory, and one line for a failure."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.app.outdir import OutDirLock, claim_default_dir, lock_dir
from detect.engine.pipeline import Pipeline
from detect.errors import (
    EXIT_PROCESSING_FAILED,
    EXIT_USAGE,
    DetectError,
    TaskError,
    exit_code_of,
)
from detect.model.scorers import (
    ModelInputMismatch,
)

log = logging.getLogger(__name__)


def out_dir_lock(cfg: Any, key: str, default_stem: str) -> OutDirLock:
    """The run's output directory, created and locked for this run alone (one line, exit 2,
    when it cannot be created or written, or another run holds it)."""
    node = cfg.run if key == "run" else cfg.output
    value = node.get("out_dir") if key == "run" else node.get("dir")
    what = "run.out_dir" if key == "run" else "output.dir"
    if value:
        return lock_dir(Path(str(value)), what)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return claim_default_dir(Path("runs"), f"{default_stem}-{stamp}", what)


def failure(pipe: Pipeline, exc: BaseException, where: str) -> TaskError:
    """A source, reader, DSP or scorer failure that stopped a replay or scan: one line.

    A model-input mismatch or a DSP chain that does not fit the instrument is a refusal
    (exit 2, as before any data is scored); anything else is a processing failure (exit 6).
    The traceback goes to the debug log (``-v``)."""
    from detect.dsp.base import DspError

    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, ModelInputMismatch):
        return TaskError(f"{where}: {text}", EXIT_USAGE)
    if isinstance(exc, DspError):
        return TaskError(
            f"{where}: {text} (the dsp chain does not fit this instrument; set dsp.* overrides)",
            EXIT_USAGE,
        )
    log.debug("processing %s failed", where, exc_info=exc)
    head = pipe.aligner.head_position_m
    at = f" at {head:.2f} m" if math.isfinite(head) else ""
    return TaskError(
        f"{where}: processing failed{at}: {type(exc).__name__}: {text} (the files hold what "
        "was processed before)",
        EXIT_PROCESSING_FAILED,
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def command(fn: Callable[[Any], int]) -> Callable[[Any], int]:
    """A command's task function: a library error (:class:`~detect.errors.DetectError`)
    becomes the command's one-line :class:`TaskError` with the exit status of its kind."""

    @functools.wraps(fn)
    def run(cfg: Any) -> int:
        try:
            return fn(cfg)
        except DetectError as exc:
            raise TaskError(str(exc).splitlines()[0], exit_code_of(exc)) from exc

    return run
