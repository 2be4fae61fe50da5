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
import heapq
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GpsFix, MdBlock
from detect.sources.base import Item

from . import sensor_head as sh
from .emulate_base import FaultCounters, FaultInjector, Faults, Link, PtyLink, TcpLink
from .feed import gate_times_s
from .framing import FrameDecoder, encode_frame

log = logging.getLogger(__name__)

DEVICES = ("sensor_head", "ascii_emi", "magnetometer", "gps_nmea", "gps_ubx", "spidar")


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

    def set_rates(self, **rates: Any) -> None:
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


def wait_until(done: threading.Event, duration_s: float | None) -> None:
    deadline = math.inf if duration_s is None else time.monotonic() + duration_s
    try:
        while not done.is_set() and time.monotonic() < deadline:
            done.wait(0.2)
    except KeyboardInterrupt:
        pass
