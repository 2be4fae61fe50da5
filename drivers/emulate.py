"""Device emulators for bench testing without hardware (``detect emulate``).

Each emulator speaks one protocol at the device's real rate, fed by the simulator, a
recording or the built-in generator (:mod:`.feed`), on a pseudo-terminal (a stable
symlink is kept, like udev's ``/dev/serial/by-id``, so a driver can reconnect after
an "unplug") or on a TCP port bound to 127.0.0.1 unless told otherwise.

Fault switches (:class:`Faults`): corrupted bytes, dropped frames, bursts of garbage,
a stalled stream and an unplugged cable, either at random rates or triggered by
:meth:`Emulator.stall` / :meth:`Emulator.unplug` (tests). Timed faults for the chaos
harness (:mod:`detect.chaos`): :meth:`Emulator.set_rates` (random rates from now on),
:meth:`Emulator.garbage_burst`, :meth:`Emulator.clock_jump` (the device clock steps) and
:meth:`Emulator.position_jump` (the odometer count steps).

Pacing at ``speed`` N keeps the sensor head's device clock honest: its time stamps advance
at the wall-clock rate the frames are sent at (and its EMI sample rate is N times the
feed's), so the host sees a head that walks N times faster, not a clock running N times
ahead of its own.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import heapq
import json
import logging
import math
import os
import socket
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GpsFix, MdBlock
from detect.sources.base import Item

from . import sensor_head as sh
from .feed import gate_times_s, make_feed
from .framing import FrameDecoder, encode_frame

log = logging.getLogger(__name__)

DEVICES = ("sensor_head", "ascii_emi", "magnetometer", "gps_nmea", "gps_ubx", "spidar")


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


# ------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Pending:
    """A sensor-head frame whose sequence number is given when it is sent."""

    msg_type: int
    time_us: int
    payload: bytes


Unit = tuple[float, "bytes | Pending", bool]
"""(device time s, bytes or Pending, is_frame): what the emulator writes, in time order."""


class Encoder(abc.ABC):
    """Items -> byte units with device times."""

    @abc.abstractmethod
    def encode(self, item: Item) -> list[Unit]: ...

    def periodic(self, t_s: float) -> list[Unit]:
        return []

    def command(self, data: bytes, t_s: float) -> list[Unit]:
        return []

    def materialize(self, data: bytes | Pending) -> bytes:
        assert isinstance(data, bytes)
        return data

    streaming = True


class HeadEncoder(Encoder):
    """The reference sensor-head protocol (PROTOCOL.md)."""

    def __init__(
        self,
        metres_per_tick: float = 0.001,
        emi_per_frame: int = 10,
        gpr_full_scale: float = 4.0,
        auto_start: bool = True,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.metres_per_tick = metres_per_tick
        self.emi_per_frame = emi_per_frame
        self.scale = gpr_full_scale / 32767.0
        self.streaming = auto_start
        self.seq = 0
        self.info: dict[str, Any] = info or {
            "model": "detect reference head (emulated)",
            "serial": "EMU-0001",
            "firmware": "1.0",
            "gpr": {"antenna_hz": 1.5e9},
            "emi": {"gate_times_s": list(gate_times_s(8)), "sample_rate_hz": 1000.0},
        }
        self._next_status_s = 0.0
        self.commands = FrameDecoder()
        self.acks_sent = 0
        #: device seconds per feed second (1 / pacing speed: see the module docstring)
        self.time_scale = 1.0
        #: faults: a step of the device clock, a step of the odometer count (from now on)
        self.clock_offset_us = 0
        self.odometer_offset_ticks = 0

    def _frame(self, t_s: float, msg: int, payload: bytes) -> Unit:
        return (t_s, Pending(msg, round(t_s * self.time_scale * 1e6), payload), True)

    def materialize(self, data: bytes | Pending) -> bytes:
        """The frame as sent now: sequence number, clock and odometer steps applied."""
        if isinstance(data, bytes):
            return data
        self.seq = (self.seq + 1) & 0xFFFF
        payload = data.payload
        if data.msg_type == sh.Msg.ODOMETER and self.odometer_offset_ticks:
            ticks = sh.ODO.unpack(payload)[0] + self.odometer_offset_ticks
            payload = sh.odometer_payload(ticks)
        time_us = max(0, data.time_us + self.clock_offset_us)
        return encode_frame(data.msg_type, self.seq, time_us, payload)

    def encode(self, item: Item) -> list[Unit]:
        if not self.streaming:
            return []
        out: list[Unit] = []
        self._describe(item)
        if isinstance(item, GprBlock):
            h = item.header
            counts = sh.to_counts(item.data, self.scale)
            pays = sh.gpr_payloads(counts, h.dt_ns, h.time_zero_ns, self.scale, h.channel)
            for t, p, x in zip(item.host_time_s, pays, item.position_m, strict=True):
                out.append(self._frame(float(t), sh.Msg.GPR_TRACE, p))
                if math.isfinite(x):
                    ticks = round(float(x) / self.metres_per_tick)
                    out.append(self._frame(float(t), sh.Msg.ODOMETER, sh.odometer_payload(ticks)))
        elif isinstance(item, MdBlock):
            for i in range(0, item.n, self.emi_per_frame):
                rows = slice(i, i + self.emi_per_frame)
                t0 = float(item.host_time_s[i])
                rate_hz = item.header.sample_rate_hz / self.time_scale
                pay = sh.emi_payload(item.data[rows], rate_hz)
                out.append(self._frame(t0, sh.Msg.EMI_READINGS, pay))
        return out

    def _describe(self, item: Item) -> None:
        """INFO tells what the feed really is (gate times, antenna), not a fixed example."""
        if isinstance(item, MdBlock):
            emi = self.info.setdefault("emi", {})
            emi["sample_rate_hz"] = item.header.sample_rate_hz
            if item.header.gate_times_s:
                emi["gate_times_s"] = list(item.header.gate_times_s)
        elif isinstance(item, GprBlock) and item.header.antenna_hz:
            self.info.setdefault("gpr", {})["antenna_hz"] = item.header.antenna_hz

    def periodic(self, t_s: float) -> list[Unit]:
        if t_s < self._next_status_s:
            return []
        self._next_status_s = t_s + 1.0
        flags = sh.StatusFlag.ACQUIRING if self.streaming else 0
        return [self._frame(t_s, sh.Msg.STATUS, sh.status_payload(int(flags), 12.4, 31.0))]

    def command(self, data: bytes, t_s: float) -> list[Unit]:
        out: list[Unit] = []
        for f in self.commands.feed(data):
            if f.msg_type != sh.Msg.COMMAND:
                continue
            try:
                cmd, token, params = sh.parse_command(f.payload)
            except ValueError:
                continue
            status, msg = sh.AckStatus.OK, ""
            if cmd == sh.Cmd.START:
                self.streaming = True
            elif cmd == sh.Cmd.STOP:
                self.streaming = False
            elif cmd == sh.Cmd.IDENTIFY:
                out.append(self._frame(t_s, sh.Msg.INFO, sh.info_payload(self.info)))
            elif cmd == sh.Cmd.SET:
                status, msg = self._set(params)
            elif cmd != sh.Cmd.PING:
                status, msg = sh.AckStatus.UNKNOWN_COMMAND, f"command {cmd}"
            out.append(self._frame(t_s, sh.Msg.ACK, sh.ack_payload(cmd, token, status, msg)))
            self.acks_sent += 1
        return out

    def _set(self, params: dict[str, str]) -> tuple[sh.AckStatus, str]:
        for k, v in params.items():
            try:
                if k == "emi_per_frame" and 1 <= int(v) <= 255:
                    self.emi_per_frame = int(v)
                elif k == "metres_per_tick" and float(v) > 0:
                    self.metres_per_tick = float(v)
                else:
                    return sh.AckStatus.BAD_PARAMETER, f"bad parameter {k}={v}"
            except ValueError:
                return sh.AckStatus.BAD_PARAMETER, f"bad value {k}={v}"
        return sh.AckStatus.OK, ""


class AsciiEmiEncoder(Encoder):
    """``pi_lines`` text (``#`` metadata every second) or ``$value,signal`` records."""

    def __init__(self, magnetometer: bool = False) -> None:
        self.magnetometer = magnetometer
        self._next_meta_s = 0.0

    def encode(self, item: Item) -> list[Unit]:
        if not isinstance(item, MdBlock) or item.n == 0:
            return []
        out: list[Unit] = []
        t0 = float(item.host_time_s[0])
        if not self.magnetometer and t0 >= self._next_meta_s:
            self._next_meta_s = t0 + 1.0
            h = item.header
            meta = [f"# rate_hz: {h.sample_rate_hz:g}", f"# names: {','.join(h.channel_names)}"]
            if h.gate_times_s:
                meta.append("# gates_us: " + ",".join(f"{g * 1e6:.6g}" for g in h.gate_times_s))
            out.append((t0, ("\n".join(meta) + "\n").encode(), False))
        if self.magnetometer:
            cols = item.data[:, [0, -1]]
            lines = [f"${a:.6g},{b:.6g}\n" for a, b in cols.tolist()]
        else:
            lines = [",".join(f"{v:.6g}" for v in row) + "\n" for row in item.data.tolist()]
        for t, line in zip(item.host_time_s.tolist(), lines, strict=True):
            out.append((t, line.encode(), True))
        return out


def _nmea(body: str) -> bytes:
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return f"${body}*{cs:02X}\r\n".encode()


def _ddmm(value: float, is_lat: bool) -> tuple[str, str]:
    hemi = ("N" if value >= 0 else "S") if is_lat else ("E" if value >= 0 else "W")
    v = abs(value)
    deg = int(v)
    minutes = (v - deg) * 60.0
    width = 2 if is_lat else 3
    return f"{deg:0{width}d}{minutes:010.7f}", hemi


class NmeaEncoder(Encoder):
    """GGA + GST + RMC + VTG per fix."""

    def encode(self, item: Item) -> list[Unit]:
        if not isinstance(item, GpsFix):
            return []
        f = item
        utc = f.utc_s if f.utc_s is not None else f.host_time_s
        tm = time.gmtime(utc)
        hhmmss = f"{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{int((utc % 1) * 100):02d}"
        date = f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d}"
        if f.lat_deg is not None and f.lon_deg is not None:
            lat, ns = _ddmm(f.lat_deg, True)
            lon, ew = _ddmm(f.lon_deg, False)
        else:
            lat = ns = lon = ew = ""
        q = int(f.quality)
        alt = "" if f.alt_m is None else f"{f.alt_m:.3f}"
        hdop = "" if f.hdop is None else f"{f.hdop:.2f}"
        age = "" if f.correction_age_s is None else f"{f.correction_age_s:.1f}"
        sid = "0001" if age else ""
        sats = "" if f.n_sats is None else f"{f.n_sats:02d}"
        out = _nmea(
            f"GPGGA,{hhmmss},{lat},{ns},{lon},{ew},{q},{sats},{hdop},{alt},M,0.0,M,{age},{sid}"
        )
        if f.h_acc_m is not None:
            sd = f.h_acc_m / math.sqrt(2.0)
            out = (
                _nmea(f"GPGST,{hhmmss},{sd:.3f},{sd:.3f},{sd:.3f},0.0,{sd:.4f},{sd:.4f},0.050")
                + out
            )
        spd = f.speed_m_s or 0.0
        crs = f.course_deg or 0.0
        status = "A" if f.has_fix else "V"
        rmc = _nmea(
            f"GPRMC,{hhmmss},{status},{lat},{ns},{lon},{ew},{spd / (1852 / 3600):.3f},{crs:.1f},"
            f"{date},,,D"
        )
        vtg = _nmea(f"GPVTG,{crs:.1f},T,,M,{spd / (1852 / 3600):.3f},N,{spd * 3.6:.3f},K,D")
        return [(f.host_time_s, rmc + vtg + out, True)]


class UbxEncoder(Encoder):
    """u-blox NAV-PVT per fix (pyubx2 builds the message)."""

    def encode(self, item: Item) -> list[Unit]:
        if not isinstance(item, GpsFix):
            return []
        from pyubx2 import GET, UBXMessage

        f = item
        has = f.has_fix
        carr = {4: 2, 5: 1}.get(int(f.quality), 0)
        utc = f.utc_s if f.utc_s is not None else f.host_time_s
        tm = time.gmtime(utc)
        age_code = 0
        if f.correction_age_s is not None:
            age_code = (
                int(
                    np.searchsorted(
                        [1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120], f.correction_age_s, side="left"
                    )
                )
                + 1
            )
        msg = UBXMessage(
            "NAV",
            "NAV-PVT",
            GET,
            iTOW=int((utc % 604800) * 1000),
            year=tm.tm_year,
            month=tm.tm_mon,
            day=tm.tm_mday,
            hour=tm.tm_hour,
            min=tm.tm_min,
            second=tm.tm_sec,
            validDate=1,
            validTime=1,
            fixType=3 if has else 0,
            gnssFixOk=1 if has else 0,
            diffSoln=1 if int(f.quality) in (2, 4, 5) else 0,
            carrSoln=carr,
            numSV=f.n_sats or 0,
            lat=f.lat_deg or 0.0,
            lon=f.lon_deg or 0.0,
            height=int((f.alt_m or 0.0) * 1000),
            hMSL=int((f.alt_m or 0.0) * 1000),
            hAcc=int((f.h_acc_m if f.h_acc_m is not None else 99.0) * 1000),
            vAcc=int((f.h_acc_m if f.h_acc_m is not None else 99.0) * 1500),
            gSpeed=int((f.speed_m_s or 0.0) * 1000),
            headMot=f.course_deg or 0.0,
            lastCorrectionAge=min(age_code, 12),
        )
        return [(f.host_time_s, msg.serialize(), True)]


def make_encoder(device: str, params: dict[str, Any] | None = None) -> Encoder:
    params = params or {}
    if device == "sensor_head":
        return HeadEncoder(**params)
    if device == "ascii_emi":
        return AsciiEmiEncoder(False)
    if device == "magnetometer":
        return AsciiEmiEncoder(True)
    if device == "gps_nmea":
        return NmeaEncoder()
    if device == "gps_ubx":
        return UbxEncoder()
    raise ValueError(f"unknown emulated device '{device}'; one of {', '.join(DEVICES)}")


# ------------------------------------------------------------------------- runner


class Emulator:
    """Runs one encoder over a feed on a link, paced at ``speed`` x real time, in a thread."""

    def __init__(
        self,
        encoder: Encoder,
        link: Link,
        feed: Iterator[list[Item]],
        faults: Faults | None = None,
        speed: float = 1.0,
        tick_s: float = 0.005,
        wait_for_start: bool = False,
    ) -> None:
        """``wait_for_start``: the walk (and its clock) begins when the encoder streams
        (a head built with ``auto_start=False`` starts on the host's START), so a host that
        connects late misses nothing of the lane."""
        if speed <= 0:
            raise ValueError(f"emulate.speed must be > 0, got {speed}")
        if isinstance(encoder, HeadEncoder):
            encoder.time_scale = 1.0 / speed
        self.wait_for_start = wait_for_start
        self._burst = b""
        #: monotonic time the walk began (None until then)
        self.started_at: float | None = None
        self.encoder = encoder
        self.link = link
        self.feed = feed
        self.faults = FaultInjector(faults or Faults())
        self.speed = speed
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stall_until = -math.inf
        self._unplug_until = -math.inf
        self._plugged = False
        self._lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.device_time_s = 0.0

    @property
    def address(self) -> str:
        return self.link.address

    @property
    def counters(self) -> FaultCounters:
        return self.faults.counters

    def start(self) -> Emulator:
        self.link.start()
        self._plugged = True
        self._thread = threading.Thread(target=self._run, name="emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
            self._thread = None
        self.link.close()
        self._plugged = False

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stall(self, duration_s: float) -> None:
        """Stop sending for ``duration_s`` (data generated meanwhile is lost)."""
        with self._lock:
            self._stall_until = time.monotonic() + duration_s
            self.faults.counters.stalls += 1

    def unplug(self, duration_s: float) -> None:
        """Close the port (pty / socket) for ``duration_s``, then bring it back."""
        with self._lock:
            self._unplug_until = time.monotonic() + duration_s
            self.faults.counters.unplugs += 1

    def set_rates(self, **rates: float) -> None:
        """Change the random fault rates from now on (fields of :class:`Faults`)."""
        with self._lock:
            self.faults.f = replace(self.faults.f, **rates)

    def garbage_burst(self, n_bytes: int) -> None:
        """Send ``n_bytes`` of random bytes before the next frame."""
        junk = self.faults.rng.integers(0, 256, int(n_bytes), dtype=np.uint8).tobytes()
        with self._lock:
            self._burst += junk
            self.faults.counters.garbage_bursts += 1
            self.faults.counters.garbage_bytes += len(junk)

    def clock_jump(self, delta_s: float) -> None:
        """The device clock steps by ``delta_s`` (may be negative) from the next frame on."""
        if not isinstance(self.encoder, HeadEncoder):
            raise ValueError("clock_jump needs the sensor_head encoder")
        with self._lock:
            self.encoder.clock_offset_us += round(delta_s * 1e6)
            self.faults.counters.clock_jumps += 1

    def position_jump(self, delta_m: float) -> None:
        """The odometer count steps by ``delta_m`` (may be negative) from the next frame on."""
        if not isinstance(self.encoder, HeadEncoder):
            raise ValueError("position_jump needs the sensor_head encoder")
        with self._lock:
            self.encoder.odometer_offset_ticks += round(delta_m / self.encoder.metres_per_tick)
            self.faults.counters.position_jumps += 1

    def _units(self) -> Iterator[Unit]:
        heap: list[tuple[float, int, bytes | Pending, bool]] = []
        n = 0
        for chunk in self.feed:
            for item in chunk:
                for t, data, is_frame in self.encoder.encode(item):
                    heapq.heappush(heap, (t, n, data, is_frame))
                    n += 1
            horizon = max((_first_time(i) for i in chunk), default=heap[0][0] if heap else 0.0)
            while heap and heap[0][0] <= horizon:
                t, _, data, is_frame = heapq.heappop(heap)
                yield t, data, is_frame
        while heap:
            t, _, data, is_frame = heapq.heappop(heap)
            yield t, data, is_frame

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.error = exc
            log.exception("emulator stopped")
        finally:
            self.finished.set()

    def _wait_for_start(self) -> None:
        while not self._stop.is_set() and not self.encoder.streaming:
            now = time.monotonic()
            self._plug_state(now)
            self._serve_commands(0.0)  # the clock starts with the walk
            self._stop.wait(self.tick_s)

    def _loop(self) -> None:
        if self.wait_for_start:
            self._wait_for_start()
        start = time.monotonic()
        self.started_at = start
        last_garbage = start
        f = self.faults.f
        next_stall = start + f.stall_every_s if f.stall_every_s else math.inf
        next_unplug = start + f.unplug_every_s if f.unplug_every_s else math.inf
        for t_dev, data, is_frame in self._units():
            due = start + t_dev / self.speed
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_stall:
                    self.stall(f.stall_s)
                    next_stall = now + f.stall_every_s
                if now >= next_unplug:
                    self.unplug(f.unplug_s)
                    next_unplug = now + f.unplug_every_s
                self._plug_state(now)
                self._serve_commands((now - start) * self.speed)
                if now >= due:
                    break
                self._stop.wait(min(self.tick_s, due - now))
            if self._stop.is_set():
                return
            now = time.monotonic()
            self.device_time_s = t_dev
            for p in self.encoder.periodic(t_dev):
                self._send(p[1], p[2], now)
            junk = self.faults.garbage(now - last_garbage)
            last_garbage = now
            with self._lock:
                junk, self._burst = self._burst + junk, b""
            if junk:
                self._send(junk, False, now)
            self._send(data, is_frame, now)

    def _plug_state(self, now: float) -> None:
        unplugged = now < self._unplug_until
        if unplugged and self._plugged:
            self.link.unplug()
            self._plugged = False
        elif not unplugged and not self._plugged:
            self.link.replug()
            self._plugged = True

    def _serve_commands(self, t_s: float) -> None:
        if not self._plugged:
            return
        data = self.link.read()
        if data:
            for _, reply, _ in self.encoder.command(data, t_s):
                self.link.write(self.encoder.materialize(reply))

    def _send(self, unit: bytes | Pending, is_frame: bool, now: float) -> None:
        """Frames lost to a stall, an unplugged cable or a drop still use up a sequence
        number, as on a device whose transmit buffer overflowed."""
        data = self.encoder.materialize(unit)
        if not self._plugged:
            return
        if now < self._stall_until:
            self.faults.counters.frames_stalled += int(is_frame)
            return
        if is_frame:
            if self.faults.drop():
                return
            self.faults.counters.frames_sent += 1
        c = self.faults.counters
        corrupted_before, lost_before = c.frames_corrupted, self.link.lost_bytes
        self.link.write(self.faults.corrupt(data))
        if (
            isinstance(unit, Pending)
            and unit.msg_type == sh.Msg.GPR_TRACE
            and c.frames_corrupted == corrupted_before
            and self.link.lost_bytes == lost_before
        ):
            c.gpr_frames_intact += 1


def _first_time(item: Item) -> float:
    if isinstance(item, (GprBlock, MdBlock)):
        return float(item.host_time_s[0]) if item.n else -math.inf
    return float(item.host_time_s)


# ------------------------------------------------------------------------- the task


def make_link(transport: str, host: str, port: int, link_path: str | None) -> Link:
    if transport == "pty":
        return PtyLink(link_path)
    if transport == "tcp":
        return TcpLink(host, port)
    raise ValueError(f"unknown emulate.transport '{transport}'; one of pty, tcp")


@dataclass
class EmulateSettings:
    device: str = "sensor_head"
    transport: str = "pty"
    host: str = "127.0.0.1"
    port: int = 0
    link_path: str | None = None
    feed: str = "synthetic"
    session_path: str | None = None
    duration_s: float | None = None
    speed: float = 1.0
    seed: int = 0
    faults: Faults = field(default_factory=Faults)


def settings_from_cfg(node: Any) -> EmulateSettings:
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(node, resolve=True) if not isinstance(node, dict) else node
    assert isinstance(raw, dict)
    values: dict[str, Any] = {str(k): v for k, v in raw.items()}
    faults = Faults(**dict(values.pop("faults", None) or {}))
    s = EmulateSettings(**values, faults=faults)
    if s.device not in DEVICES:
        raise ValueError(f"unknown emulate.device '{s.device}'; one of {', '.join(DEVICES)}")
    return replace(s, faults=replace(faults, seed=faults.seed or s.seed))


def emulate_task(cfg: Any) -> int:
    """``detect emulate``: run one emulated device until ``duration_s`` or Ctrl-C."""
    from detect.errors import EXIT_USAGE, TaskError

    try:
        s = settings_from_cfg(cfg.emulate)
        if s.feed == "session" and not (s.session_path and Path(s.session_path).is_file()):
            raise ValueError(f"emulate.session_path {s.session_path!r} is not a file")
        feed = make_feed(s.feed, s.duration_s, s.session_path, s.seed)
    except (ValueError, TypeError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    if s.device == "spidar":
        from .spidar_emulator import SpidarEmulator

        spidar = SpidarEmulator(feed, host=s.host, http_port=s.port, faults=s.faults, speed=s.speed)
        with spidar:
            print(
                f"spidar emulator: REST {spidar.api_url}  (configure source.host/port)", flush=True
            )
            _wait(spidar.finished, s.duration_s)
        return 0
    link = make_link(s.transport, s.host, s.port, s.link_path)
    emu = Emulator(make_encoder(s.device), link, feed, s.faults, s.speed)
    with emu:
        where = emu.address
        extra = f" -> {link.device}" if isinstance(link, PtyLink) and link.link_path else ""
        print(f"{s.device} emulator on {where}{extra}", flush=True)
        _wait(emu.finished, s.duration_s)
    c = emu.counters
    print(json.dumps({"emulator": s.device, **c.__dict__}), flush=True)
    if emu.error is not None:
        raise TaskError(f"emulator failed: {emu.error}")
    return 0


def _wait(done: threading.Event, duration_s: float | None) -> None:
    deadline = math.inf if duration_s is None else time.monotonic() + duration_s
    try:
        while not done.is_set() and time.monotonic() < deadline:
            done.wait(0.2)
    except KeyboardInterrupt:
        pass
