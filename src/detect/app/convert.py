"""``detect convert FILE OUT``: to our session HDF5 or SEG-Y."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from detect.app.common import command
from detect.errors import EXIT_FAILURE, EXIT_USAGE, TaskError
from detect.io.convert import _SEGY_EXT, _SESSION_EXT, to_segy, to_session
from detect.io.info import load_input
from detect.io.session import RecordingError

log = logging.getLogger(__name__)


@command
def convert_task(cfg: DictConfig) -> int:
    out_path = cfg.output.get("path")
    if not out_path:
        raise TaskError("no output file given (output.path)", EXIT_USAGE)
    out = Path(out_path)
    ext = out.suffix.lower()
    if ext not in _SESSION_EXT + _SEGY_EXT:
        raise TaskError(
            f"{out}: output extension must be .h5 (session) or .sgy/.segy (SEG-Y)", EXIT_USAGE
        )
    g = load_input(cfg)
    if out.resolve() == Path(g.path).resolve():
        raise TaskError(f"{out}: output would overwrite the input", EXIT_USAGE)
    for w in g.warnings:
        log.warning("%s: %s", g.path, w)
    try:
        if ext in _SESSION_EXT:
            to_session(g, out)
            written = [out]
        else:
            written = to_segy(g, out)
    except (RecordingError, OSError, ValueError) as exc:
        raise TaskError(f"{out}: cannot write: {exc}", EXIT_FAILURE) from exc
    print(
        f"{g.path} ({g.format}, {g.n_channels} channel(s), {g.n_traces} traces x "
        f"{g.n_samples} samples) -> {', '.join(map(str, written))}"
    )
    return 0
