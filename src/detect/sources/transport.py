"""Byte transports for drivers, all opened through :func:`serial.serial_for_url`.

So ``/dev/ttyUSB0``, ``COM3``, ``socket://127.0.0.1:5000``, ``rfc2217://...`` and
``loop://`` work with the same driver. Failures become :class:`SourceError` with one
line naming the port, which the Source base turns into FAULT plus reconnects.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import serial

from detect.sources.base import SourceError


class Transport:
    """A byte pipe: ``read(timeout_s)`` returns what arrived (possibly b""), ``write``."""

    def __init__(self, url: str, baudrate: int = 115200, **serial_kwargs: Any) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"transport url must be a non-empty string, got {url!r}")
        self.url = url
        self.baudrate = int(baudrate)
        self.serial_kwargs = serial_kwargs
        self._port: Any = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        if self._port is not None:
            return
        try:
            self._port = serial.serial_for_url(
                self.url, baudrate=self.baudrate, timeout=0, **self.serial_kwargs
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SourceError(f"cannot open {self.url}: {_one_line(exc)}") from exc
        with contextlib.suppress(serial.SerialException, OSError, NotImplementedError):
            self._port.reset_input_buffer()  # stale bytes from before we listened

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def read(self, timeout_s: float, max_bytes: int = 1 << 20) -> bytes:
        """Bytes available now, else wait up to ``timeout_s`` for the first ones."""
        port = self._require()
        try:
            if port.timeout != 0:
                port.timeout = 0
            data = port.read(max_bytes)
            if data:
                return bytes(data)
            port.timeout = max(float(timeout_s), 0.0)
            first = port.read(1)
            port.timeout = 0
            if not first:
                self._check_alive(port)
                return b""
            return bytes(first) + bytes(port.read(max_bytes - 1))
        except (serial.SerialException, OSError) as exc:
            raise SourceError(f"{self.url}: {_one_line(exc)}") from exc

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise SourceError(f"{self.url}: write failed: {_one_line(exc)}") from exc

    def _require(self) -> Any:
        if self._port is None:
            raise SourceError(f"{self.url}: not open")
        return self._port

    def _check_alive(self, port: Any) -> None:
        """A pty whose master went away reads as empty without error on some systems."""
        fd = getattr(port, "fd", None)
        if fd is None:
            return
        import os

        try:
            os.fstat(fd)
        except OSError as exc:
            raise SourceError(f"{self.url}: port gone ({exc})") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def wait_for_port(url: str, timeout_s: float = 2.0) -> bool:
    """True once ``url`` can be opened (used by tests and the emulator's self-check)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        t = Transport(url)
        try:
            t.open()
        except SourceError:
            time.sleep(0.02)
            continue
        t.close()
        return True
    return False
