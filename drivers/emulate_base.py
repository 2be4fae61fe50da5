"""What every device emulator shares: where its bytes go (:class:`Link`: a pseudo-terminal
or a TCP port) and the faults it injects (:class:`Faults`, :class:`FaultInjector`).

A lower module than :mod:`.emulate` (the serial-protocol emulators and ``detect emulate``)
and :mod:`.spidar_emulator` (the SPIDAR REST emulator), which both build on it, so their
imports run one way.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import os
import socket
import tty
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------- links


class Link(abc.ABC):
    """Where the emulator's bytes go. ``write`` never blocks for long; bytes nobody reads
    are lost, as on a real serial line."""

    lost_bytes = 0

    @property
    @abc.abstractmethod
    def address(self) -> str: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def read(self) -> bytes: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def unplug(self) -> None:
        self.close()

    def replug(self) -> None:
        self.start()


class PtyLink(Link):
    """A pseudo-terminal; ``link_path`` (optional) is a symlink kept pointing at it."""

    def __init__(self, link_path: str | None = None) -> None:
        self.link_path = link_path
        self._master: int | None = None
        self._slave: int | None = None
        self._name = ""

    @property
    def address(self) -> str:
        return self.link_path or self._name

    @property
    def device(self) -> str:
        return self._name

    def start(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._name = os.ttyname(slave)
        if self.link_path:
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self._name, tmp)
            os.replace(tmp, self.link_path)

    def write(self, data: bytes) -> None:
        if self._master is None:
            self.lost_bytes += len(data)
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                self.lost_bytes += len(view)
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    self.lost_bytes += len(view)
                    return
                raise
            view = view[n:]

    def read(self) -> bytes:
        if self._master is None:
            return b""
        try:
            return os.read(self._master, 65536)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                if os.path.islink(self.link_path):
                    os.unlink(self.link_path)
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None


class TcpLink(Link):
    """A TCP server for one client at a time (a newer client replaces the older)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, send_timeout_s: float = 0.5):
        self.host = host
        self.port = port
        self.send_timeout_s = send_timeout_s
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def start(self) -> None:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.host, self.port))
        srv.listen(1)
        srv.setblocking(False)
        self.port = srv.getsockname()[1]
        self._server = srv

    def _accept(self) -> None:
        if self._server is None:
            return
        try:
            conn, _ = self._server.accept()
        except (BlockingIOError, OSError):
            return
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
        conn.settimeout(self.send_timeout_s)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = conn

    @property
    def connected(self) -> bool:
        self._accept()
        return self._client is not None

    def write(self, data: bytes) -> None:
        self._accept()
        if self._client is None:
            self.lost_bytes += len(data)
            return
        try:
            self._client.sendall(data)
        except (TimeoutError, OSError):
            self.lost_bytes += len(data)
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def read(self) -> bytes:
        self._accept()
        if self._client is None:
            return b""
        try:
            self._client.setblocking(False)
            data = self._client.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        finally:
            if self._client is not None:
                with contextlib.suppress(OSError):
                    self._client.settimeout(self.send_timeout_s)
        if not data:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None
        return data

    def close(self) -> None:
        for s in (self._client, self._server):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._client = self._server = None


# ------------------------------------------------------------------------- faults


@dataclass
class Faults:
    """Random fault rates; all zero = a healthy device."""

    corrupt_byte_rate: float = 0.0
    drop_frame_rate: float = 0.0
    garbage_rate_hz: float = 0.0
    garbage_bytes: int = 64
    stall_every_s: float = 0.0
    stall_s: float = 1.0
    unplug_every_s: float = 0.0
    unplug_s: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("corrupt_byte_rate", "drop_frame_rate"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"emulate.faults.{name} must be in [0, 1], got {v}")
        for name in ("garbage_rate_hz", "stall_every_s", "stall_s", "unplug_every_s", "unplug_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"emulate.faults.{name} must be >= 0")


@dataclass
class FaultCounters:
    frames_sent: int = 0
    frames_dropped: int = 0
    bytes_corrupted: int = 0
    garbage_bursts: int = 0
    garbage_bytes: int = 0
    stalls: int = 0
    unplugs: int = 0
    frames_stalled: int = 0
    #: frames written with at least one flipped byte
    frames_corrupted: int = 0
    #: GPR trace frames written intact (not dropped, stalled, unplugged or corrupted)
    gpr_frames_intact: int = 0
    clock_jumps: int = 0
    position_jumps: int = 0


class FaultInjector:
    def __init__(self, faults: Faults) -> None:
        self.f = faults
        self.rng = np.random.default_rng(faults.seed)
        self.counters = FaultCounters()

    def drop(self) -> bool:
        if self.f.drop_frame_rate and self.rng.random() < self.f.drop_frame_rate:
            self.counters.frames_dropped += 1
            return True
        return False

    def corrupt(self, data: bytes) -> bytes:
        if not self.f.corrupt_byte_rate:
            return data
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        hit = np.flatnonzero(self.rng.random(arr.size) < self.f.corrupt_byte_rate)
        if hit.size:
            arr[hit] ^= self.rng.integers(1, 256, hit.size, dtype=np.uint8)
            self.counters.bytes_corrupted += int(hit.size)
            self.counters.frames_corrupted += 1
        return arr.tobytes()

    def garbage(self, dt_s: float) -> bytes:
        if not self.f.garbage_rate_hz or dt_s <= 0:
            return b""
        n = int(self.rng.poisson(self.f.garbage_rate_hz * dt_s))
        if not n:
            return b""
        size = n * self.f.garbage_bytes
        self.counters.garbage_bursts += n
        self.counters.garbage_bytes += size
        return self.rng.integers(0, 256, size, dtype=np.uint8).tobytes()
