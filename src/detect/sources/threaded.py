"""A reader thread per source, handing items on through a bounded queue.

The thread calls the inner source's :meth:`~detect.sources.base.Source.read` (which
already handles timeouts and reconnects) and puts what it gets on a queue of at
most ``queue_size`` items. When the consumer falls behind and the queue is full,
the *oldest* item is dropped so that the display stays live, and the loss is
counted (``overflows`` and ``dropped_frames`` on that sensor's health), which turns
the sensor DEGRADED: never a silent drop. No exception leaves the thread: an
unexpected one is logged, counted as a corrupt frame and the loop goes on after a
short pause.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from detect.blocks import GprBlock, GpsFix, MdBlock
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
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sensors = inner.sensors
        self.paced = inner.paced
        super().__init__(name=f"{inner.name}", reconnect=False, clock=inner.clock)
        self.inner = inner
        self.health = inner.health
        self.read_timeout_s = read_timeout_s
        self.queue: queue.Queue[Any] = out_queue or queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drop_lock = threading.Lock()
        self.thread_errors = 0
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
        finally:
            self.done.set()

    def _put(self, item: Any) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                with self._drop_lock:
                    try:
                        old = self.queue.get_nowait()
                    except queue.Empty:
                        continue
                self._count_drop(old)

    def _count_drop(self, item: Any) -> None:
        h = self.health.get(_sensor_of(item))
        targets = [h] if h is not None else list(self.health.values())[:1]
        n = len(item) if isinstance(item, (GprBlock, MdBlock)) else 1
        for t in targets:
            t.count("overflows")
            t.count("dropped_frames", n)
        log.warning("%s: consumer behind, dropped %d %s", self.name, n, type(item).__name__)

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
