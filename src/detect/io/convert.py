"""``detect convert FILE OUT``: any readable GPR file to a session (.h5) or SEG-Y (.sgy)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from detect.errors import EXIT_FAILURE, EXIT_USAGE, TaskError
from detect.io.formats import GprFile
from detect.io.info import load_input
from detect.io.segy import write_segy
from detect.io.session import RecordingError, SessionWriter

log = logging.getLogger(__name__)

_SESSION_EXT = (".h5", ".hdf5")
_SEGY_EXT = (".sgy", ".segy")


def to_session(g: GprFile, out: Path) -> None:
    info = {
        "source": "convert",
        "input": str(g.path),
        "input_format": g.format,
        "format_reason": g.format_reason,
        "warnings": g.warnings,
        "meta": g.meta,
    }
    with SessionWriter(out, config={}, info=info) as w:
        for block in g.blocks:
            w.write(block)
        for fix in g.gps:
            w.write(fix)


def to_segy(g: GprFile, out: Path) -> list[Path]:
    """One SEG-Y per channel (``OUT``, then ``OUT_ch1.sgy``...)."""
    paths = []
    for block in g.blocks:
        ch = block.header.channel
        p = (
            out
            if ch == g.blocks[0].header.channel
            else out.with_name(f"{out.stem}_ch{ch}{out.suffix}")
        )
        own_mhz = block.header.antenna_hz / 1e6 if block.header.antenna_hz else None
        write_segy(p, block, antenna_mhz=own_mhz or g.antenna_mhz)
        paths.append(p)
    return paths


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
