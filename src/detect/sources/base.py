"""The Source contract (after python-can's ``BusABC``).

A backend implements only :meth:`Source._open`, :meth:`Source._read` and
:meth:`Source._close`. The base class owns the context manager, read timeouts,
reconnects and the per-sensor health counters, so every driver, the simulator and
replay behave alike to the pipeline.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from detect.blocks import GprBlock, GpsFix, HealthEvent, MdBlock, PositionEpoch
from detect.health import DataClock, SensorHealth

log = logging.getLogger(__name__)

Item = GprBlock | MdBlock | GpsFix | PositionEpoch
"""What a source delivers: data blocks and position fixes."""


class SourceError(RuntimeError):
    """The source cannot deliver (port gone, file unreadable...)."""


class SourceExhausted(Exception):
    """A finite source (file, replay, finite simulation) has delivered everything."""


class Source(abc.ABC):
    """Base class of every data source.

    ``sensors`` names the sensor streams this source delivers (e.g. ``("gpr", "emi")``);
    each gets a :class:`SensorHealth`. ``paced`` is True when the source delivers at
    the instrument's own rate (live hardware, real-time simulation or replay). A subclass
    that is not paced says so before calling ``__init__``; its health then runs on
    :attr:`data_clock` (:class:`~detect.health.DataClock`), which it advances.
    """

    sensors: tuple[str, ...] = ()
    paced: bool = True

    #: the items' ``host_time_s`` is this process's monotonic clock (a live source), so a
    #: wall clock read now dates them; a recording or file keeps its own times
    host_clock = True

    def __init__(
        self,
        name: str | None = None,
        stall_timeout_s: float = 0.5,
        degraded_error_rate: float = 0.02,
        reconnect: bool = True,
        reconnect_backoff_s: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0),
        clock: Any = time.monotonic,
    ) -> None:
        self.name = name or type(self).__name__
        self.clock = clock
        self.stall_timeout_s = stall_timeout_s
        self.reconnect = reconnect
        self.reconnect_backoff_s = tuple(reconnect_backoff_s)
        #: an unpaced source's data time, which its sensors' health runs on (None: paced,
        #: health on ``clock``); the source advances it before counting frames
        self.data_clock: DataClock | None = None if self.paced else DataClock()
        health_clock = clock if self.data_clock is None else self.data_clock
        self.health: dict[str, SensorHealth] = {
            s: SensorHealth(s, stall_timeout_s, degraded_error_rate, clock=health_clock)
            for s in self.sensors
        }
        self._is_open = False
        self._exhausted = False
        self._next_reconnect_s = 0.0
        self._reconnect_attempt = 0

    # -- backend hooks ---------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None:
        """Open the transport / file / generator."""

    @abc.abstractmethod
    def _read(self, timeout_s: float) -> list[Item]:
        """Return whatever items are ready within ``timeout_s`` (possibly none).

        Raise :class:`SourceExhausted` at the end of a finite source and
        :class:`SourceError` (or ``OSError``) when the transport has failed.
        Count frames, bytes, CRC errors and resyncs on ``self.health[sensor]``.
        """

    def _drain(self) -> list[Item]:
        """Items decoded before the transport was lost and not yet handed out (a driver
        that holds rows back returns them here, so a lost link never loses data)."""
        return []

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport."""

    def info(self) -> dict[str, Any]:
        """Device / file description for the recording's attributes."""
        return {
            "source": self.name,
            "class": type(self).__qualname__,
            "sensors": list(self.sensors),
            "host_clock": self.host_clock,
        }

    # -- public API ------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def open(self) -> Source:
        if self._is_open:
            return self
        self._open()
        self._is_open = True
        for h in self.health.values():
            h.mark_connected(True)
        return self

    def close(self) -> None:
        if not self._is_open:
            return
        try:
            self._close()
        finally:
            self._is_open = False
            for h in self.health.values():
                h.mark_connected(False, "closed")

    def __enter__(self) -> Source:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, timeout_s: float = 0.1) -> list[Item]:
        """Items ready now (waiting at most ``timeout_s``).

        Transport failures turn the sensors to FAULT and trigger reconnects with
        backoff; they never raise out of here unless reconnecting is switched off.
        Raises :class:`SourceExhausted` once a finite source is done.
        """
        if self._exhausted:
            raise SourceExhausted(self.name)
        if not self._is_open:
            if not self.reconnect:
                raise SourceError(f"{self.name}: not open")
            if not self._try_reconnect():
                time.sleep(min(timeout_s, 0.05))
                return []
        try:
            items = self._read(timeout_s)
        except SourceExhausted:
            self._exhausted = True
            raise
        except (OSError, SourceError) as exc:
            self._lost(str(exc) or type(exc).__name__)
            if not self.reconnect:
                raise SourceError(f"{self.name}: {exc}") from exc
            return self._drain()
        return items

    def poll_health(self) -> list[HealthEvent]:
        events: list[HealthEvent] = []
        for h in self.health.values():
            events.extend(h.update())
        return events

    def iter_items(self, timeout_s: float = 0.1) -> Iterator[Item]:
        """Every item until the source is exhausted (for finite sources)."""
        while True:
            try:
                yield from self.read(timeout_s)
            except SourceExhausted:
                return

    # -- reconnects ------------------------------------------------------------------
    def _lost(self, why: str) -> None:
        log.warning("%s: transport lost: %s", self.name, why)
        try:
            self._close()
        except Exception:
            log.debug("%s: close after failure raised", self.name, exc_info=True)
        self._is_open = False
        for h in self.health.values():
            h.mark_connected(False, f"transport lost: {why}")
        self._reconnect_attempt = 0
        self._next_reconnect_s = self.clock() + self.reconnect_backoff_s[0]

    def _try_reconnect(self) -> bool:
        now = self.clock()
        if now < self._next_reconnect_s:
            return False
        try:
            self._open()
        except (OSError, SourceError) as exc:
            i = min(self._reconnect_attempt, len(self.reconnect_backoff_s) - 1)
            self._reconnect_attempt += 1
            self._next_reconnect_s = now + self.reconnect_backoff_s[i]
            log.debug("%s: reconnect failed: %s", self.name, exc)
            return False
        self._is_open = True
        for h in self.health.values():
            h.count("reconnects")
            h.mark_connected(True)
        log.info("%s: reconnected", self.name)
        return True
