"""The contract every driver keeps; each driver's tests subclass :class:`SourceContract`.

A subclass provides ``start_device()`` (an emulator, returning an object with
``stall(s)``, ``unplug(s)`` or ``None`` and ``stop()``) and ``make_source(device)``.
Everything runs against emulators on 127.0.0.1 / a pty, and cleans up after itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from detect.blocks import GprBlock, GpsFix, MdBlock, SensorState
from detect.sources.base import Source


def read_for(src: Source, seconds: float, timeout_s: float = 0.05) -> list[Any]:
    items: list[Any] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        items.extend(src.read(timeout_s))
        src.poll_health()
    return items


def read_until(src: Source, pred: Any, limit_s: float = 3.0) -> list[Any]:
    items: list[Any] = []
    end = time.monotonic() + limit_s
    while time.monotonic() < end and not pred(items):
        items.extend(src.read(0.05))
        src.poll_health()
    return items


class SourceContract:
    #: sensors the source must deliver
    expected_sensors: tuple[str, ...] = ()
    #: how long the contract reads in the basic test
    read_s: float = 0.3
    #: whether the device stand-in supports unplugging (reconnect test)
    can_unplug: bool = True
    stall_timeout_s: float = 0.5

    def start_device(self) -> Any:
        raise NotImplementedError

    def make_source(self, device: Any, **kw: Any) -> Source:
        raise NotImplementedError

    @pytest.fixture
    def device(self) -> Iterator[Any]:
        dev = self.start_device()
        try:
            yield dev
        finally:
            dev.stop()

    def _threads(self) -> set[str]:
        return {t.name for t in threading.enumerate()}

    def test_contract_delivers_valid_items(self, device: Any) -> None:
        src = self.make_source(device)
        assert src.health and all(h.state == SensorState.STARTING for h in src.health.values())
        with src:
            items = read_until(src, lambda it: self._covered(it), limit_s=3.0)
            items += read_for(src, self.read_s)
        assert self._covered(items), f"not every sensor delivered: {self.expected_sensors}"
        for it in items:
            if isinstance(it, (GprBlock, MdBlock)):
                assert it.data.dtype == np.float32 and it.data.ndim == 2 and it.n > 0
                assert np.all(np.isfinite(it.data))
                assert np.all(np.isfinite(it.host_time_s))
                assert np.all(np.diff(it.seq) > 0)
                assert it.header.sensor in src.health
            else:
                assert isinstance(it, GpsFix)
                assert math.isfinite(it.host_time_s)
        for name in self.expected_sensors:
            snap = src.health[name].snapshot()
            assert snap["frames"] > 0 and snap["crc_errors"] == 0 and snap["gaps"] == 0
        assert not src.is_open
        assert all(h.state == SensorState.FAULT for h in src.health.values())

    def _covered(self, items: list[Any]) -> bool:
        seen = set()
        for it in items:
            if isinstance(it, (GprBlock, MdBlock)):
                seen.add(it.header.sensor)
            elif isinstance(it, GpsFix):
                seen.add(it.source)
        return set(self.expected_sensors) <= seen

    def test_contract_open_close_idempotent(self, device: Any) -> None:
        src = self.make_source(device)
        src.open()
        src.open()
        assert src.is_open
        src.close()
        src.close()
        assert not src.is_open

    def test_contract_stall_turns_fault_then_ok(self, device: Any) -> None:
        src = self.make_source(device, stall_timeout_s=self.stall_timeout_s)
        sensor = self.expected_sensors[0]
        with src:
            read_until(src, lambda it: src.health[sensor].state == SensorState.OK)
            assert src.health[sensor].state == SensorState.OK
            # long enough that a test thread descheduled on a busy machine still sees the FAULT
            device.stall(self.stall_timeout_s + 1.5)
            read_until(src, lambda it: src.health[sensor].state == SensorState.FAULT, 3.0)
            assert src.health[sensor].state == SensorState.FAULT
            assert "no data" in src.health[sensor].reason
            # never while data is fresh; the latency itself is checked exactly on a fake
            # clock (test_health, test_pipeline_faults), not here on a shared machine
            assert src.health[sensor].last_frame_age_s > self.stall_timeout_s
            read_until(src, lambda it: src.health[sensor].state == SensorState.OK, 6.0)
            assert src.health[sensor].state == SensorState.OK

    def test_contract_reconnects_after_unplug(self, device: Any) -> None:
        if not self.can_unplug:
            pytest.skip("this stand-in cannot be unplugged")
        src = self.make_source(device, reconnect_backoff_s=(0.05, 0.1, 0.2))
        sensor = self.expected_sensors[0]
        with src:
            read_until(src, lambda it: src.health[sensor].state == SensorState.OK)
            device.unplug(0.6)
            read_until(src, lambda it: src.health[sensor].state == SensorState.FAULT, 3.0)
            assert src.health[sensor].state == SensorState.FAULT
            items = read_until(
                src,
                lambda it: (
                    src.health[sensor].counters.reconnects > 0
                    and src.health[sensor].state == SensorState.OK
                ),
                5.0,
            )
            assert src.health[sensor].counters.reconnects >= 1
            assert src.health[sensor].state == SensorState.OK
            del items
