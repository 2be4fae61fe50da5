"""``detect record``: record the configured sources to a session file, without detection.

Health changes are recorded with the data. A recording error stops the command with
a one-line message; what was flushed stays in the file. Ctrl-C closes the file cleanly.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detect.app.common import command
from detect.config import to_dict
from detect.errors import EXIT_FAILURE, EXIT_USAGE, TaskError
from detect.io.session import RecordingError, SessionWriter
from detect.sources.base import SourceError, SourceExhausted
from detect.sources.registry import UnknownSourceError, create_source

log = logging.getLogger(__name__)


def session_path(cfg: DictConfig) -> Path:
    out_dir = cfg.run.get("out_dir")
    if not out_dir:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out_dir = str(Path("runs") / stamp)
    return Path(out_dir) / "session.h5"


@command
def record_task(cfg: DictConfig) -> int:
    spec: Any = OmegaConf.to_container(cfg.source, resolve=True)
    try:
        source = create_source(spec)
    except (UnknownSourceError, SourceError, ValueError) as exc:
        raise TaskError(f"source: {exc}", EXIT_USAGE) from exc
    path = session_path(cfg)
    duration_s = cfg.run.get("duration_s")
    counts = {"blocks": 0, "fixes": 0, "health": 0}
    try:
        writer = SessionWriter(path, config=to_dict(cfg), info=source.info())
    except RecordingError as exc:
        raise TaskError(str(exc), EXIT_FAILURE) from exc
    t0 = time.monotonic()
    try:
        with writer:
            try:
                source.open()
            except (SourceError, OSError) as exc:
                raise TaskError(f"source {source.name}: {exc}", EXIT_USAGE) from exc
            try:
                while duration_s is None or time.monotonic() - t0 < duration_s:
                    try:
                        items = source.read(0.1)
                    except SourceExhausted:
                        break
                    for item in items:
                        writer.write(item)
                        counts["fixes" if type(item).__name__ == "GpsFix" else "blocks"] += 1
                    for event in source.poll_health():
                        writer.write(event)
                        counts["health"] += 1
            except KeyboardInterrupt:
                log.info("interrupted: closing %s", path)
            finally:
                source.close()
                for event in source.poll_health():
                    writer.write(event)
    except RecordingError as exc:
        raise TaskError(str(exc), EXIT_FAILURE) from exc
    elapsed = time.monotonic() - t0
    rate = "" if math.isclose(elapsed, 0.0) else f" in {elapsed:.1f} s"
    print(
        f"recorded {counts['blocks']} blocks, {counts['fixes']} GPS fixes, "
        f"{counts['health']} health events{rate} -> {path}"
    )
    return 0
