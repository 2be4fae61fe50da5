"""Where the pipeline's outputs go, and the one place a failing output is switched off.

A :class:`Sink` receives what the pipeline produces: the items as they arrive (the record),
alarms, health events, coverage as it becomes final, status updates and messages. A sink
implements only what it needs (the base class ignores the rest). :class:`SinkSet` calls
them; a sink that raises is switched off at once, loudly (a log line and a message through
the sinks still working), and alarming goes on: a full disk or a closed terminal never stops
detection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from detect.sinks.base import Sink

log = logging.getLogger(__name__)


class SinkSet:
    """The pipeline's sinks, called in order; a failing one is switched off, loudly."""

    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        #: sink name -> why it was switched off
        self.errors: dict[str, str] = {}

    def add(self, sink: Sink) -> Sink:
        self._sinks = [s for s in self._sinks if s.name != sink.name] + [sink]
        self.errors.pop(sink.name, None)
        return sink

    def get(self, name: str) -> Sink | None:
        return next((s for s in self._sinks if s.name == name), None)

    def __iter__(self) -> Iterator[Sink]:
        return iter(self._sinks)

    def active(self, name: str) -> bool:
        return self.get(name) is not None and name not in self.errors

    def emit(self, method: str, *args: Any) -> None:
        """``sink.method(*args)`` on every sink still working."""
        for sink in self._sinks:
            if sink.name in self.errors:
                continue
            try:
                getattr(sink, method)(*args)
            except Exception as exc:  # a sink never stops alarming
                self.switch_off(sink, f"{type(exc).__name__}: {exc}")

    def switch_off(self, sink: Sink, error: str) -> None:
        """Stop calling ``sink``; log it and tell the operator through the other sinks."""
        if sink.name in self.errors:
            return
        self.errors[sink.name] = error
        try:
            text = sink.stopped(error)
        except Exception:  # its own clean-up failed too: the line still goes out
            log.debug("sink %s failed while stopping", sink.name, exc_info=True)
            text = Sink.stopped(sink, error)
        log.error("%s", text)
        self.emit("on_message", text, True)
