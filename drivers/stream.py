"""Common base of the drivers that read a byte stream through a :class:`Transport`.

A backend only decodes bytes into items (:meth:`StreamSource._decode`); this class
opens the transport, reads with the timeout, stamps arrival times, gathers what
arrives for up to ``read_interval_s`` before decoding it (the sensor head: 50 ms; see
:meth:`StreamSource._read`), and turns any exception inside a decoder into a counted
corrupt frame plus a decoder reset, so a malformed byte sequence can never kill a
reader thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from detect.health import SensorHealth
from detect.sources.base import Item, Source, SourceError
from detect.sources.transport import Transport

from .framing import FrameStats

log = logging.getLogger(__name__)


class StreamSource(Source):
    """A Source over one serial-like transport (``serial_for_url`` URL)."""

    #: gather bytes this long before decoding (see :meth:`_read`). Only for drivers whose
    #: items carry the device's own time stamps: gathered bytes are decoded with the arrival
    #: time of the read that completes the batch, which would shift rx-stamped items (GPS
    #: fixes, lines without a device time) by up to this much. 0: decode every read.
    default_read_interval_s: float = 0.0

    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        sensors: Sequence[str] | None = None,
        read_chunk: int = 1 << 20,
        read_interval_s: float | None = None,
        **base: Any,
    ) -> None:
        if sensors is not None:
            self.sensors = tuple(str(s) for s in sensors)
        if read_interval_s is None:
            read_interval_s = self.default_read_interval_s
        if not (0.0 <= read_interval_s <= 0.2):
            raise ValueError(f"read_interval_s must be in [0, 0.2] s, got {read_interval_s}")
        super().__init__(**base)
        self.transport = Transport(url, baudrate)
        self.read_chunk = int(read_chunk)
        self.read_interval_s = float(read_interval_s)
        self.decode_failures = 0
        self._pending = bytearray()
        self._last_decode_s = -math.inf
        self._deferred: BaseException | None = None

    def info(self) -> dict[str, Any]:
        return {**super().info(), "url": self.transport.url, "baudrate": self.transport.baudrate}

    def _open(self) -> None:
        self._pending.clear()  # bytes of a connection closed by hand (a lost one decoded them)
        self._deferred = None
        self.transport.open()
        self._reset_decoder()
        self._on_open()

    def _close(self) -> None:
        self.transport.close()

    def _on_open(self) -> None:
        """Say hello to the device (start commands...) once the port is open."""

    def _reset_decoder(self) -> None:
        """Forget partial input (after a reconnect)."""

    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        raise NotImplementedError

    def _idle(self, rx_time_s: float) -> list[Item]:
        """Called when a read returned nothing (release held data...)."""
        return []

    def _read(self, timeout_s: float) -> list[Item]:
        """Read what arrived; decode it at most every ``read_interval_s`` while it flows.

        A device writes frame by frame, so the port is read at every frame (promptly, as
        a serial port's small buffer needs) but the bytes are only gathered; decoding each
        read would give a block per stream per frame, and the pipeline's cost (DSP,
        alignment, the recorder) is per block, not per byte. What was gathered is decoded
        as soon as ``read_interval_s`` has passed since the last decode, the line goes
        quiet (an empty read), a chunk's worth is waiting, or the port fails (then the
        failure is raised on the next read, after the bytes that came before it). Health
        counts the frames when they are decoded: up to ``read_interval_s`` late, so a
        stall is declared up to that much later too."""
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        try:
            data = self.transport.read(timeout_s, self.read_chunk)
        except (SourceError, OSError) as exc:
            if not self._pending:
                raise
            self._deferred, data = exc, b""
        now = self.clock()
        mono_s = time.monotonic()
        if data:
            self._pending += data
            if (
                mono_s - self._last_decode_s < self.read_interval_s
                and len(self._pending) < self.read_chunk
            ):
                return []
        if not self._pending:
            return self._safe(self._idle, now)
        chunk = bytes(self._pending)
        self._pending.clear()
        self._last_decode_s = mono_s
        return self._safe(self._decode, chunk, now)

    def _safe(self, fn: Any, *args: Any) -> list[Item]:
        try:
            return list(fn(*args))
        except Exception:
            self.decode_failures += 1
            log.exception("%s: decoder failed; input dropped and decoder reset", self.name)
            for h in self.health.values():
                h.count("corrupt_frames")
            self._reset_decoder()
            return []

    def count_link(self, delta: FrameStats, sensors: Sequence[str] | None = None) -> None:
        """Charge link-level errors to every sensor on the link (they share the cable)."""
        for name in sensors or self.sensors:
            h = self.health.get(name)
            if h is None:
                continue
            _apply(h, delta)


def _apply(h: SensorHealth, d: FrameStats) -> None:
    for field_name, value in (
        ("crc_errors", d.crc_errors),
        ("resyncs", d.resyncs),
        ("truncated", d.truncated),
        ("garbage_bytes", d.garbage_bytes),
        ("gaps", d.gaps),
        ("dropped_frames", d.missing_frames),
    ):
        if value:
            h.count(field_name, value)


class ClockSync:
    """Maps a device clock to host monotonic time.

    The smallest observed (host arrival - device time) is the transport latency
    floor; a device stamp plus that offset is the best estimate of when the sample
    was taken in host time. A slow drift allowance keeps a clock that runs slower
    than the host from pinning the offset forever.
    """

    def __init__(self, drift_per_s: float = 1e-4) -> None:
        self.drift_per_s = drift_per_s
        self.offset_s = math.nan
        self._last_host_s = math.nan

    def reset(self) -> None:
        self.offset_s = math.nan
        self._last_host_s = math.nan

    def observe(self, device_s: float, host_s: float) -> None:
        cand = host_s - device_s
        if math.isnan(self.offset_s):
            self.offset_s = cand
        else:
            relax = self.drift_per_s * max(host_s - self._last_host_s, 0.0)
            self.offset_s = min(self.offset_s + relax, cand)
        self._last_host_s = host_s
