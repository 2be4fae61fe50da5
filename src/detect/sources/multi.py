"""Kind ``multi``: several sources as one (e.g. a sensor head plus a GPS receiver).

Config::

    source:
      kind: multi
      parts:
        head: {kind: sensor_head, url: /dev/ttyUSB0}
        gps:  {kind: gps_nmea, url: /dev/ttyACM0, baudrate: 9600}

Each part runs in its own reader thread (:class:`ThreadedSource`) so a slow or
stalled device never holds up the others; each keeps its own health, reconnects and
counters. Sensor names must be unique across parts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from detect.blocks import HealthEvent
from detect.sources.base import Item, Source, SourceExhausted
from detect.sources.registry import create_source
from detect.sources.threaded import ThreadedSource

_POLL_S = 0.005


class MultiSource(Source):
    def __init__(
        self,
        parts: Mapping[str, Mapping[str, Any]],
        queue_size: int = 256,
        stall_timeout_s: float | None = None,
        **base: Any,
    ) -> None:
        if not parts:
            raise ValueError("multi source needs at least one entry under 'parts'")
        built: dict[str, Source] = {}
        for name, spec in parts.items():
            spec = dict(spec)
            spec.pop("threaded", None)  # every part gets its own reader thread anyway
            if stall_timeout_s is not None and "stall_timeout_s" not in spec:
                spec["stall_timeout_s"] = stall_timeout_s
            src = create_source(spec)
            src.name = str(name)
            built[str(name)] = src
        sensors: list[str] = []
        for name, src in built.items():
            for s in src.sensors:
                if s in sensors:
                    raise ValueError(f"multi source: sensor '{s}' of part '{name}' is not unique")
                sensors.append(s)
        self.sensors = tuple(sensors)
        self.paced = any(p.paced for p in built.values())
        self.host_clock = all(p.host_clock for p in built.values())
        if stall_timeout_s is not None:
            base["stall_timeout_s"] = stall_timeout_s
        super().__init__(**{"name": "multi", **base})
        self.parts = {n: ThreadedSource(s, queue_size=queue_size) for n, s in built.items()}
        self.health = {k: v for p in self.parts.values() for k, v in p.health.items()}
        self._done: set[str] = set()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "parts": {n: p.info() for n, p in self.parts.items()}}

    def _open(self) -> None:
        opened: list[ThreadedSource] = []
        try:
            for p in self.parts.values():
                p.open()
                opened.append(p)
        except Exception:
            for p in opened:
                p.close()
            raise
        self._done.clear()

    def _close(self) -> None:
        for p in self.parts.values():
            p.close()

    def _read(self, timeout_s: float) -> list[Item]:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            items: list[Item] = []
            for name, p in self.parts.items():
                if name in self._done:
                    continue
                try:
                    items.extend(p.read(0.0))
                except SourceExhausted:
                    self._done.add(name)
            if len(self._done) == len(self.parts) and not items:
                raise SourceExhausted(self.name)
            if items or time.monotonic() >= deadline:
                return items
            time.sleep(_POLL_S)

    def poll_health(self) -> list[HealthEvent]:
        events: list[HealthEvent] = []
        for p in self.parts.values():
            events.extend(p.poll_health())
        return events
