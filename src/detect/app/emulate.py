"""``detect emulate``: one emulated device (sensor head, detectors, GPS, SPIDAR) on a
pseudo-terminal or a local TCP port, with fault injection, until its duration or Ctrl-C.

The driver package is loaded by name (as the sources registry loads a driver), so the
library never imports ``drivers/`` directly."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from detect.app.common import command
from detect.errors import EXIT_USAGE, TaskError


@command
def emulate_task(cfg: Any) -> int:
    """Run the configured emulator; print where it listens and, at the end, its counters."""
    emu_mod = importlib.import_module("detect.drivers.emulate")
    feeds = importlib.import_module("detect.drivers.feed")
    try:
        s = emu_mod.settings_from_cfg(cfg.emulate)
        if s.feed == "session" and not (s.session_path and Path(s.session_path).is_file()):
            raise ValueError(f"emulate.session_path {s.session_path!r} is not a file")
        feed = feeds.make_feed(s.feed, s.duration_s, s.session_path, s.seed)
    except (ValueError, TypeError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    if s.device == "spidar":
        spidar = emu_mod.SpidarEmulator(
            feed, host=s.host, http_port=s.port, faults=s.faults, speed=s.speed
        )
        with spidar:
            print(
                f"spidar emulator: REST {spidar.api_url}  (configure source.host/port)", flush=True
            )
            emu_mod.wait_until(spidar.finished, s.duration_s)
        return 0
    link = emu_mod.make_link(s.transport, s.host, s.port, s.link_path)
    emu = emu_mod.Emulator(emu_mod.make_encoder(s.device), link, feed, s.faults, s.speed)
    with emu:
        extra = f" -> {link.device}" if isinstance(link, emu_mod.PtyLink) and link.link_path else ""
        print(f"{s.device} emulator on {emu.address}{extra}", flush=True)
        emu_mod.wait_until(emu.finished, s.duration_s)
    print(json.dumps({"emulator": s.device, **emu.counters.__dict__}), flush=True)
    if emu.error is not None:
        raise TaskError(f"emulator failed: {emu.error}")
    return 0
