"""Replay a recorded session as a live source, at original pacing or as fast as possible.

Items come back exactly as they were recorded (same blocks, same host times, same
head-reference positions), interleaved in host-time order. ``speed`` 1.0 keeps the
original pacing, N plays N times faster, None delivers as fast as the reader goes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.blocks import GprBlock, GpsFix, MdBlock, PositionEpoch
from detect.io.formats import ReaderError
from detect.io.session import SessionReader
from detect.sources.base import Item, Source, SourceError, SourceExhausted

_FAST_CHUNK = 32
#: as fast as possible, a read hands out at most this share of the stall timeout in data
#: time, so the health (polled between reads) sees a gap in the recording as it would live
_POLLS_PER_STALL = 10
_DUE_TOLERANCE_S = 1e-6


def _item_time(item: Item) -> float:
    if isinstance(item, (GpsFix, PositionEpoch)):
        return float(item.host_time_s)
    return float(item.host_time_s[0]) if item.n else math.nan


def _item_end_time(item: Item) -> float:
    """The time a replay has reached once ``item`` is handed out (its last sample's)."""
    if isinstance(item, (GpsFix, PositionEpoch)):
        return float(item.host_time_s)
    return float(item.host_time_s[-1]) if item.n else math.nan


def _sensor(item: Item) -> str:
    if isinstance(item, PositionEpoch):
        return ""
    if isinstance(item, GpsFix):
        return "gps"
    return item.header.sensor


def _utc_anchor(attrs: Mapping[str, Any]) -> tuple[float, float] | None:
    """(host monotonic s, UTC s) of the recording's start: its alarms' UTC, not today's."""
    try:
        start_s = float(attrs["start_host_time_s"])
        utc = datetime.fromisoformat(str(attrs["created_utc"]))
    except (KeyError, TypeError, ValueError):
        return None
    if utc.tzinfo is None:
        utc = utc.replace(tzinfo=UTC)
    return (start_s, utc.timestamp()) if math.isfinite(start_s) else None


class ReplaySource(Source):
    """A session file (``detect.io.session``) as a :class:`Source`."""

    host_clock = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        speed: float | None = 1.0,
        stall_timeout_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        if speed is not None and not (speed > 0):
            raise ValueError(f"replay speed must be > 0 or None, got {speed}")
        self.path = Path(path)
        try:
            with SessionReader(self.path) as r:
                sensors = [h.sensor for h in r.gpr_headers()] + [h.sensor for h in r.emi_headers()]
                if r.gps():
                    sensors.append("gps")
                self.utc_anchor = _utc_anchor(r.attrs)
        except ReaderError as exc:
            raise SourceError(str(exc)) from exc
        self.sensors = tuple(dict.fromkeys(sensors))
        self.speed = speed
        self.paced = speed is not None
        kwargs.setdefault("reconnect", False)
        super().__init__(
            name=kwargs.pop("name", f"replay:{self.path.name}"),
            stall_timeout_s=stall_timeout_s,
            **kwargs,
        )
        self._reader: SessionReader | None = None
        self._items: Iterator[Item] | None = None
        self._pending: Item | None = None
        self._t0_rec = math.nan
        self._t0_wall = math.nan

    def info(self) -> dict[str, Any]:
        out = {**super().info(), "path": str(self.path), "speed": self.speed}
        if self.utc_anchor is not None:
            out["utc_anchor"] = self.utc_anchor
        return out

    def _open(self) -> None:
        try:
            self._reader = SessionReader(self.path)
        except ReaderError as exc:
            raise SourceError(str(exc)) from exc
        self._items = self._reader.iter_items()
        self._pending = None
        self._t0_rec = math.nan
        self._t0_wall = math.nan

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _next(self) -> Item | None:
        if self._pending is None and self._items is not None:
            self._pending = next(self._items, None)
        return self._pending

    def _due_in_s(self, item: Item) -> float:
        """Seconds until ``item`` is due at the replay speed (<= 0: due now)."""
        if self.speed is None:
            return 0.0
        t = _item_time(item)
        if math.isnan(t):
            return 0.0
        if math.isnan(self._t0_rec):
            self._t0_rec, self._t0_wall = t, self.clock()
        return (t - self._t0_rec) / self.speed - (self.clock() - self._t0_wall)

    def _read(self, timeout_s: float) -> list[Item]:
        out: list[Item] = []
        deadline = self.clock() + max(timeout_s, 0.0)
        data_t0 = self._data_time_s()
        while True:
            item = self._next()
            if item is None:
                if out:
                    break
                raise SourceExhausted(self.name)
            wait = self._due_in_s(item)
            if wait > _DUE_TOLERANCE_S:
                if out:
                    break
                left = deadline - self.clock()
                if left <= _DUE_TOLERANCE_S:
                    break
                time.sleep(min(wait, left))
                continue
            if self.data_clock is not None:
                start = _item_time(item)
                if start - self.data_clock() > self._poll_every_s():
                    # the recording jumps ahead (every stream silent): the health sees that
                    # time pass before the item that ends it counts, as it would live
                    self.data_clock.advance(start)
                    break
                if math.isnan(data_t0):
                    data_t0 = start
            out.append(item)
            self._pending = None
            if self.data_clock is not None:
                self.data_clock.advance(_item_end_time(item))
            sensor = _sensor(item)
            if sensor in self.health and not isinstance(item, PositionEpoch):
                n = 1 if isinstance(item, GpsFix) else item.n
                self.health[sensor].frames_received(n)
            if self.speed is None and (
                len(out) >= _FAST_CHUNK or self._data_time_s() - data_t0 >= self._poll_every_s()
            ):
                break
        return out

    def _poll_every_s(self) -> float:
        """Data time a fast replay hands out at most per read."""
        return self.stall_timeout_s / _POLLS_PER_STALL

    def _data_time_s(self) -> float:
        return self.data_clock() if self.data_clock is not None else math.nan


__all__ = ["GprBlock", "MdBlock", "ReplaySource"]
