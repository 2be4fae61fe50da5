"""``detect convert FILE OUT``: any readable GPR file to a session (.h5) or SEG-Y (.sgy)."""

from __future__ import annotations

import logging
from pathlib import Path

from detect.io.base import GprFile
from detect.io.segy import write_segy
from detect.io.session import SessionWriter

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
