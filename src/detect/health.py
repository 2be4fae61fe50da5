"""Sensor health: counters and the STARTING / OK / DEGRADED / FAULT state of one sensor.

A sensor is STARTING from its creation until its first frame: a head takes seconds to
send its first data, and a red FAULT banner at every start teaches operators to ignore it.
If no frame comes within ``startup_timeout_s`` of the start (the source's open, else the
creation), or the link reports a disconnect or a device fault first, it is FAULT; it never
goes back to STARTING. After its first frame it is FAULT when it has not delivered a frame
for ``stall_timeout_s`` (or the transport is gone), DEGRADED when recent frames show
errors (CRC failures, resyncs, sequence gaps, queue overflows) above
``degraded_error_rate``, OK otherwise. Every change of state is returned as a
:class:`HealthEvent` so it can be shown and recorded.

A source that is not paced (a simulation faster than real time, a file or recording read as
fast as the pipeline takes it) runs its sensors' health on a :class:`DataClock`, the time of
the data it has handed out, not the wall clock: its stalls are gaps in the data, whatever
the speed of the machine. On the wall clock a slow first block (a lane being simulated, a
model loading) looked like every sensor stalling, and a 3 s outage in the data passed in
milliseconds without a FAULT.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from detect.blocks import HealthEvent, SensorState


@dataclass
class HealthCounters:
    frames: int = 0
    bytes: int = 0
    crc_errors: int = 0
    resyncs: int = 0
    gaps: int = 0
    dropped_frames: int = 0
    overflows: int = 0
    reconnects: int = 0
    corrupt_frames: int = 0
    truncated: int = 0
    garbage_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_ERROR_FIELDS = ("crc_errors", "resyncs", "gaps", "overflows", "corrupt_frames", "truncated")
#: counters of frames whose data never reached the pipeline (sequence gaps, a full queue,
#: malformed payloads); link noise between frames (resyncs, garbage) loses nothing
_LOSS_FIELDS = ("dropped_frames", "corrupt_frames")


class DataClock:
    """The newest data time (s) an unpaced source has handed out; NaN before its first data.

    Callable like ``time.monotonic``. It only moves forward: a source calls :meth:`advance`
    with the time its data has reached *before* counting the frames that reach it.
    """

    def __init__(self) -> None:
        self._t = math.nan
        self._lock = threading.Lock()

    def advance(self, time_s: float) -> None:
        t = float(time_s)
        if not math.isfinite(t):
            return
        with self._lock:
            if math.isnan(self._t) or t > self._t:
                self._t = t

    def __call__(self) -> float:
        return self._t


class SensorHealth:
    """Counters plus a small state machine for one sensor.

    Thread-safe: a reader thread counts and marks disconnects while the consumer calls
    :meth:`update`; a lock keeps a FAULT event from being lost between the two.
    """

    def __init__(
        self,
        sensor: str,
        stall_timeout_s: float = 0.5,
        degraded_error_rate: float = 0.02,
        window_s: float = 2.0,
        clock: Any = time.monotonic,
        lossy_rate: float = 0.05,
        startup_timeout_s: float = 10.0,
    ) -> None:
        if stall_timeout_s <= 0:
            raise ValueError(f"stall_timeout_s must be > 0, got {stall_timeout_s}")
        if startup_timeout_s <= 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s}")
        #: seconds from the start (open, else creation) to the first frame before FAULT
        self.startup_timeout_s = startup_timeout_s
        self.sensor = sensor
        self.stall_timeout_s = stall_timeout_s
        self.degraded_error_rate = degraded_error_rate
        #: above this fraction of frames lost over ``window_s``, a DEGRADED sensor's ground
        #: is not covered (:attr:`lossy`): its data has holes the windows do not show
        self.lossy_rate = lossy_rate
        self._recent_lost: deque[tuple[float, int]] = deque()
        self.window_s = window_s
        self._clock = clock
        self.counters = HealthCounters()
        self.state = SensorState.STARTING
        self.reason = "waiting for first data"
        self.created_time_s = self.now()
        self.last_frame_time_s = math.nan
        self.started_time_s = math.nan
        self.connected = False
        self._recent: deque[tuple[float, int, int]] = deque()
        self._pending: list[HealthEvent] = []
        self.device_fault: str | None = None
        self._lock = threading.RLock()

    def now(self) -> float:
        return float(self._clock())

    def mark_connected(self, connected: bool, reason: str = "") -> None:
        with self._lock:
            self.connected = connected
            if connected and math.isnan(self.started_time_s):
                self.started_time_s = self.now()
            if not connected:
                self._set(SensorState.FAULT, reason or "disconnected")

    def count(self, field_name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.counters, field_name, getattr(self.counters, field_name) + n)
            t = self.now()
            if math.isnan(t):  # before any data on a data clock: counted, in no window
                return
            if field_name in _ERROR_FIELDS:
                self._recent.append((t, 0, n))
            if field_name in _LOSS_FIELDS:
                self._recent_lost.append((t, n))

    def frames_received(self, n_frames: int, n_bytes: int = 0) -> None:
        if n_frames <= 0:
            return
        with self._lock:
            t = self.now()
            self.counters.frames += n_frames
            self.counters.bytes += n_bytes
            self.last_frame_time_s = t
            self._recent.append((t, n_frames, 0))

    @property
    def last_frame_age_s(self) -> float:
        if math.isnan(self.last_frame_time_s):
            return math.inf
        return self.now() - self.last_frame_time_s

    def _set(self, state: SensorState, reason: str) -> None:
        if state != self.state or (state != SensorState.OK and reason != self.reason):
            if state != self.state:
                self._pending.append(HealthEvent(self.now(), self.sensor, state, reason))
            self.state = state
            self.reason = reason

    def update(self) -> list[HealthEvent]:
        """Re-evaluate the state; return the state changes since the last call."""
        with self._lock:
            t = self.now()
            if math.isnan(t):  # a data clock before any data: no time has passed yet
                events, self._pending = self._pending, []
                return events
            while self._recent and self._recent[0][0] < t - self.window_s:
                self._recent.popleft()
            while self._recent_lost and self._recent_lost[0][0] < t - self.window_s:
                self._recent_lost.popleft()
            if self._still_starting(t):
                self._set(SensorState.STARTING, "waiting for first data")
            elif not self.connected:
                self._set(
                    SensorState.FAULT,
                    self.reason if self.state == SensorState.FAULT else "disconnected",
                )
            elif self.device_fault:
                self._set(SensorState.FAULT, f"device reports: {self.device_fault}")
            elif self.last_frame_age_s > self.stall_timeout_s:
                age = self.last_frame_age_s
                why = (
                    f"no data within {self.startup_timeout_s:g} s of the start"
                    if math.isinf(age)
                    else f"no data for {age:.2f} s"
                )
                self._set(SensorState.FAULT, why)
            else:
                frames = sum(r[1] for r in self._recent)
                errors = sum(r[2] for r in self._recent)
                rate = errors / max(frames + errors, 1)
                if errors and rate > self.degraded_error_rate:
                    self._set(SensorState.DEGRADED, f"{errors} errors in {self.window_s:.0f} s")
                else:
                    self._set(SensorState.OK, "")
            events, self._pending = self._pending, []
            return events

    def _still_starting(self, t: float) -> bool:
        """STARTING until the first frame or the start-up timeout; a disconnect or a device
        fault ends it at once (:meth:`mark_connected` sets FAULT), and it never comes back."""
        if self.state != SensorState.STARTING or self.device_fault:
            return False
        if not math.isnan(self.last_frame_time_s):
            return False
        t0 = self.started_time_s if not math.isnan(self.started_time_s) else self.created_time_s
        if math.isnan(t0):  # a data clock: the start is the source's first data
            self.created_time_s = t0 = t
        return t - t0 <= self.startup_timeout_s

    @property
    def loss_rate(self) -> float:
        """Fraction of frames lost over the last ``window_s`` (as of the last :meth:`update`)."""
        with self._lock:
            lost = sum(r[1] for r in self._recent_lost)
            frames = sum(r[1] for r in self._recent)
        return lost / max(frames + lost, 1)

    @property
    def lossy(self) -> bool:
        """Losing more than :attr:`lossy_rate` of its frames: its ground is not covered."""
        return self.state != SensorState.FAULT and self.loss_rate > self.lossy_rate

    def snapshot(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "state": self.state.name,
            "reason": self.reason,
            "last_frame_age_s": self.last_frame_age_s,
            "loss_rate": self.loss_rate,
            **self.counters.as_dict(),
        }
