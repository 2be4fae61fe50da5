"""A reader thread per source, handing items on through a bounded queue.

The thread calls the inner source's :meth:`~detect.sources.base.Source.read` (which
already handles timeouts and reconnects) and puts what it gets on a queue of at
most ``queue_size`` items. When the consumer falls behind and the queue is full,
the *oldest* item is dropped so that the display stays live, and the loss is
counted (``overflows`` and ``dropped_frames`` on that sensor's health), which turns
the sensor DEGRADED: never a silent drop. The log gets one "consumer behind" line per
``drop_log_every_s`` at most, with what was dropped since the previous line (and the
rest when the source closes), so a long overflow cannot flood it. No exception leaves
the thread: an unexpected one is logged, counted as a corrupt frame and the loop goes
on after a short pause.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from typing import Any

from detect.blocks import GprBlock, GpsFix, MdBlock, PositionEpoch
from detect.sources.base import Item, Source, SourceExhausted

log = logging.getLogger(__name__)


def _sensor_of(item: Item) -> str:
    if isinstance(item, (GprBlock, MdBlock)):
        return item.header.sensor
    if isinstance(item, GpsFix):
        return item.source
    return ""


class ThreadedSource(Source):
    """Wraps any Source; reading never blocks the acquisition thread of the device."""

    def __init__(
        self,
        inner: Source,
        queue_size: int = 256,
        read_timeout_s: float = 0.05,
        out_queue: queue.Queue[Any] | None = None,
        drop_log_every_s: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not drop_log_every_s >= 0:
            raise ValueError(f"drop_log_every_s must be >= 0, got {drop_log_every_s}")
        self.sensors = inner.sensors
        self.paced = inner.paced
        self.host_clock = inner.host_clock
        super().__init__(name=f"{inner.name}", reconnect=False, clock=inner.clock)
        self.inner = inner
        self.health = inner.health
        self.data_clock = inner.data_clock
        self.read_timeout_s = read_timeout_s
        self.queue: queue.Queue[Any] = out_queue or queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drop_lock = threading.Lock()
        self.thread_errors = 0
        self.drop_log_every_s = float(drop_log_every_s)
        self._last_drop_log_s = -math.inf
        #: drops not yet logged: sensor -> [blocks, rows]
        self._unlogged_drops: dict[str, list[int]] = {}
        self.done = threading.Event()
        self._exhausted_inner = threading.Event()

    def info(self) -> dict[str, Any]:
        return self.inner.info()

    def _open(self) -> None:
        self.inner.open()
        self._stop.clear()
        self.done.clear()
        self._exhausted_inner.clear()
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                log.warning("%s: reader thread did not stop within 2 s", self.name)
            self._thread = None
        self._log_drops()
        self.inner.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    items = self.inner.read(self.read_timeout_s)
                except SourceExhausted:
                    self._exhausted_inner.set()
                    return
                except Exception:
                    self.thread_errors += 1
                    log.exception("%s: read failed in reader thread", self.name)
                    for h in self.health.values():
                        h.count("corrupt_frames")
                    self._stop.wait(0.05)
                    continue
                for item in items:
                    self._put(item)
                if self._unlogged_drops and self._drop_log_due():
                    self._log_drops()  # the tail of a burst, without waiting for more drops
        finally:
            self.done.set()

    def _put(self, item: Any) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                with self._drop_lock:
                    old = self._drop_oldest()
                if old is None:  # only markers queued: keep this one too, over the bound
                    with self.queue.mutex:
                        self.queue.queue.append(item)
                        self.queue.not_empty.notify()
                    return
                self._count_drop(old)

    def _drop_oldest(self) -> Any:
        """Remove the oldest item that is data: a :class:`PositionEpoch` marker is never
        dropped (the data after it would land in the wrong frame). None: nothing to drop."""
        q = self.queue
        with q.mutex:
            for i, item in enumerate(q.queue):
                if not isinstance(item, PositionEpoch):
                    del q.queue[i]
                    q.not_full.notify()
                    return item
        return None

    def _count_drop(self, item: Any) -> None:
        h = self.health.get(_sensor_of(item))
        targets = [h] if h is not None else list(self.health.values())[:1]
        n = len(item) if isinstance(item, (GprBlock, MdBlock)) else 1
        for t in targets:
            t.count("overflows")
            t.count("dropped_frames", n)
        tally = self._unlogged_drops.setdefault(targets[0].sensor if targets else "?", [0, 0])
        tally[0] += 1
        tally[1] += n
        if self._drop_log_due():
            self._log_drops()

    def _drop_log_due(self) -> bool:
        return self.clock() - self._last_drop_log_s >= self.drop_log_every_s

    def _log_drops(self) -> None:
        """One line for every drop since the previous line (the counters have them all)."""
        if not self._unlogged_drops:
            return
        what = ", ".join(
            f"{sensor} {blocks} block{'s' * (blocks != 1)} ({rows} rows)"
            for sensor, (blocks, rows) in self._unlogged_drops.items()
        )
        now = self.clock()
        since = (
            ""
            if math.isinf(self._last_drop_log_s)
            else f" in the last {now - self._last_drop_log_s:.1f} s"
        )
        log.warning(
            "%s: consumer behind, oldest data dropped%s: %s (counted as overflows)",
            self.name,
            since,
            what,
        )
        self._unlogged_drops = {}
        self._last_drop_log_s = now

    def _read(self, timeout_s: float) -> list[Item]:
        items: list[Item] = []
        try:
            items.append(
                self.queue.get(timeout=timeout_s) if timeout_s > 0 else self.queue.get_nowait()
            )
        except queue.Empty:
            if self._exhausted_inner.is_set() and self.queue.empty():
                raise SourceExhausted(self.name) from None
            return items
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                return items

    def poll_health(self) -> list[Any]:
        return self.inner.poll_health()
