"""``detect simulate``: write N labelled lanes to ``output.dir``.

Each lane is one session recording (``lane_0000.h5``, the format of
:mod:`detect.io.session`: GPR, EMI and GPS streams plus the ground truth as JSON lines)
and a ground-truth table ``lane_0000_truth.csv``. ``lanes.csv`` indexes the lanes
(seed, soil, duration, object count, and the odometer's scale error and error at the lane's
end: block positions are what the odometer reports, truth rows are true positions).
Blocks are written in 1 s pieces, as a recorder would have written them, so replay
delivers them in realistic chunks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from detect.sim.lane import Lane
from detect.sim.settings import SimSettings

log = logging.getLogger(__name__)

WRITE_BLOCK_S = 1.0


def write_lane(path: Path, lane: Lane, config: dict[str, Any], s: SimSettings) -> None:
    from detect.io.session import SessionWriter

    info = {
        "source": "sim",
        "class": "detect.sim.lane",
        "sensors": ["gpr", "emi", "gps"],
        "lane_index": lane.index,
        "soil": lane.scene.soil.name,
        "seed": lane.scene.seed,
        "emi_offset_m": s.head.emi_offset_m,
        "duration_s": lane.duration_s,
    }
    with SessionWriter(path, config=config, info=info) as w:
        for block in (lane.gpr, lane.emi):
            t = block.host_time_s
            edges = np.arange(t[0], t[-1] + WRITE_BLOCK_S, WRITE_BLOCK_S)
            cuts = np.searchsorted(t, edges[1:])
            start = 0
            for stop in [*cuts.tolist(), block.n]:
                if stop > start:
                    w.write(_rows(block, start, stop))
                    start = stop
        for fix in lane.gps:
            w.write(fix)
        w.write_truth(lane.truth)


def _rows(block: Any, a: int, b: int) -> Any:
    return type(block)(
        data=block.data[a:b],
        seq=block.seq[a:b],
        host_time_s=block.host_time_s[a:b],
        position_m=block.position_m[a:b],
        header=block.header,
    )
