"""Reference sensor head (GPR + pulse-induction EMI + odometer) over a serial link.

Messages and framing are specified in PROTOCOL.md; :mod:`.framing` finds frames.
This module encodes/decodes the payloads (whole batches with numpy structured
views, no per-sample loops), maps device time to host time, and positions every
trace and reading from the odometer (ticks x ``metres_per_tick``) interpolated by
device time. Data newer than the last odometer frame is held up to ``max_hold_s``
so that it is interpolated, not extrapolated.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader, PositionEpoch
from detect.sources.base import Item

from .framing import Frame, FrameDecoder, FrameStats, encode_frame
from .stream import ClockSync, StreamSource

log = logging.getLogger(__name__)


class Msg(enum.IntEnum):
    GPR_TRACE = 0x01
    EMI_READINGS = 0x02
    ODOMETER = 0x03
    STATUS = 0x04
    INFO = 0x05
    COMMAND = 0x10
    ACK = 0x11


#: messages stamped with the device clock (``time_us`` of host frames is 0)
_DEVICE_CLOCKED = frozenset({Msg.GPR_TRACE, Msg.EMI_READINGS, Msg.ODOMETER})


class Cmd(enum.IntEnum):
    START = 1
    STOP = 2
    SET = 3
    IDENTIFY = 4
    PING = 5


class AckStatus(enum.IntEnum):
    OK = 0
    UNKNOWN_COMMAND = 1
    BAD_PARAMETER = 2
    BUSY = 3


class StatusFlag(enum.IntFlag):
    ACQUIRING = 1
    GPR_FAULT = 2
    EMI_FAULT = 4
    ODOMETER_FAULT = 8
    LOW_BATTERY = 16


GPR_HEAD = struct.Struct("<HBBfff")
EMI_HEAD = struct.Struct("<HBBf")
ODO = struct.Struct("<q")
STATUS = struct.Struct("<Iff")
COMMAND_HEAD = struct.Struct("<BH")
ACK_HEAD = struct.Struct("<BHB")


def gpr_dtype(n_samples: int) -> np.dtype:
    return np.dtype(
        [
            ("n", "<u2"),
            ("channel", "u1"),
            ("stacks", "u1"),
            ("dt_ns", "<f4"),
            ("t0_ns", "<f4"),
            ("scale", "<f4"),
            ("s", "<i2", (n_samples,)),
        ]
    )


# ------------------------------------------------------------------------- encoding


def gpr_payloads(
    counts: np.ndarray, dt_ns: float, t0_ns: float, scale: float, channel: int = 0, stacks: int = 1
) -> list[bytes]:
    """One payload per trace from an ``(n_traces, n_samples)`` int16 array."""
    counts = np.asarray(counts)
    n, ns = counts.shape
    rec = np.zeros(n, dtype=gpr_dtype(ns))
    rec["n"], rec["channel"], rec["stacks"] = ns, channel, stacks
    rec["dt_ns"], rec["t0_ns"], rec["scale"] = dt_ns, t0_ns, scale
    rec["s"] = counts.astype("<i2")
    raw = rec.tobytes()
    size = rec.dtype.itemsize
    return [raw[i * size : (i + 1) * size] for i in range(n)]


def to_counts(data: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(np.asarray(data, np.float64) / scale), -32768, 32767).astype(np.int16)


def emi_payload(readings: np.ndarray, sample_rate_hz: float, flags: int = 0) -> bytes:
    r = np.asarray(readings, dtype="<f4")
    if r.ndim != 2:
        raise ValueError("EMI readings must be (n_readings, n_gates)")
    return EMI_HEAD.pack(r.shape[0], r.shape[1], flags, sample_rate_hz) + r.tobytes()


def odometer_payload(ticks: int) -> bytes:
    return ODO.pack(int(ticks))


def status_payload(flags: int, supply_v: float, temperature_c: float) -> bytes:
    return STATUS.pack(int(flags), supply_v, temperature_c)


def info_payload(info: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(info), separators=(",", ":")).encode()


def command_payload(cmd: int, token: int, params: Mapping[str, Any] | None = None) -> bytes:
    text = "\n".join(f"{k}={v}" for k, v in (params or {}).items())
    return COMMAND_HEAD.pack(int(cmd), token & 0xFFFF) + text.encode()


def ack_payload(cmd: int, token: int, status: int, message: str = "") -> bytes:
    return ACK_HEAD.pack(int(cmd), token & 0xFFFF, int(status)) + message.encode()


def parse_command(payload: bytes) -> tuple[int, int, dict[str, str]]:
    """Device side: ``(cmd, token, params)``; raises ValueError when malformed."""
    if len(payload) < COMMAND_HEAD.size:
        raise ValueError("command payload too short")
    cmd, token = COMMAND_HEAD.unpack_from(payload)
    params: dict[str, str] = {}
    for line in payload[COMMAND_HEAD.size :].decode("utf-8", "replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            params[k.strip()] = v.strip()
    return cmd, token, params


# ------------------------------------------------------------------------- decoding


@dataclass
class Ack:
    cmd: int
    token: int
    status: int
    message: str


@dataclass
class Piece:
    """Decoded rows not yet positioned: made into a block once, when released."""

    kind: type[GprBlock] | type[MdBlock]
    data: np.ndarray
    header: GprHeader | MdHeader
    seq: np.ndarray
    device_s: np.ndarray

    def rows(self, sl: slice) -> Piece:
        return Piece(self.kind, self.data[sl], self.header, self.seq[sl], self.device_s[sl])


@dataclass
class _Held:
    piece: Piece
    rx_s: float


def emi_dtype(n_readings: int, n_gates: int) -> np.dtype:
    return np.dtype(
        [
            ("n", "<u2"),
            ("gates", "u1"),
            ("flags", "u1"),
            ("rate_hz", "<f4"),
            ("v", "<f4", (n_readings, n_gates)),
        ]
    )


class HeadDecoder:
    """Frames -> blocks for one head; counts malformed payloads in ``corrupt``."""

    def __init__(self, gate_times_s: Sequence[float] | None, channel_prefix: str = "g") -> None:
        self.gate_times_s = tuple(gate_times_s) if gate_times_s else None
        self.channel_prefix = channel_prefix
        self.corrupt: dict[str, int] = {"gpr": 0, "emi": 0, "odometer": 0, "link": 0}
        self.odometer: list[tuple[float, int]] = []
        self.acks: list[Ack] = []
        self.info: dict[str, Any] = {}
        self.status: tuple[int, float, float] | None = None

    def gpr(self, frames: Sequence[Frame]) -> list[Piece]:
        out: list[Piece] = []
        by_len: dict[int, list[Frame]] = {}
        for f in frames:
            by_len.setdefault(len(f.payload), []).append(f)
        for length, group in by_len.items():
            ns = (length - GPR_HEAD.size) // 2
            if ns <= 0 or GPR_HEAD.size + 2 * ns != length:
                self.corrupt["gpr"] += len(group)
                continue
            rec = np.frombuffer(b"".join(f.payload for f in group), dtype=gpr_dtype(ns))
            ok = (
                (rec["n"] == ns)
                & np.isfinite(rec["dt_ns"])
                & (rec["dt_ns"] > 0)
                & np.isfinite(rec["t0_ns"])
                & np.isfinite(rec["scale"])
                & (rec["scale"] > 0)
            )
            if not ok.all():
                self.corrupt["gpr"] += int((~ok).sum())
            idx = np.flatnonzero(ok)
            if idx.size == 0:
                continue
            rec = rec[idx]
            dev_s = np.array([group[i].time_us for i in idx], dtype=np.float64) * 1e-6
            seq = np.array([group[i].seq_unwrapped for i in idx], dtype=np.int64)
            keys = np.stack([rec["channel"].astype(np.float64), rec["dt_ns"], rec["t0_ns"]], axis=1)
            cuts = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
            for part in np.split(np.arange(rec.size), cuts):
                r = rec[part]
                data = r["s"].astype(np.float32) * r["scale"][:, None]
                hdr = GprHeader(
                    dt_ns=float(r["dt_ns"][0]),
                    time_zero_ns=float(r["t0_ns"][0]),
                    antenna_hz=self._antenna_hz(),
                    channel=int(r["channel"][0]),
                )
                out.append(Piece(GprBlock, data, hdr, seq[part], dev_s[part]))
        return out

    def _antenna_hz(self) -> float | None:
        v = self.info.get("gpr", {}).get("antenna_hz") if isinstance(self.info, dict) else None
        return float(v) if isinstance(v, (int, float)) and v > 0 else None

    def emi(self, frames: Sequence[Frame]) -> list[Piece]:
        out: list[Piece] = []
        by_len: dict[int, list[Frame]] = {}
        for f in frames:
            by_len.setdefault(len(f.payload), []).append(f)
        for length, group in by_len.items():
            if length < EMI_HEAD.size + 4:
                self.corrupt["emi"] += len(group)
                continue
            n_r, n_g, _flags, _rate = EMI_HEAD.unpack_from(group[0].payload)
            if n_r == 0 or n_g == 0 or length != EMI_HEAD.size + 4 * n_r * n_g:
                self.corrupt["emi"] += len(group)
                continue
            rec = np.frombuffer(b"".join(f.payload for f in group), dtype=emi_dtype(n_r, n_g))
            rate = rec["rate_hz"].astype(np.float64)
            ok = (
                (rec["n"] == n_r)
                & (rec["gates"] == n_g)
                & np.isfinite(rate)
                & (rate > 0)
                & (rate == rate[0])
            )
            if not ok.all():
                self.corrupt["emi"] += int((~ok).sum())
            idx = np.flatnonzero(ok)
            if idx.size == 0:
                continue
            rate_hz = float(rate[idx[0]])
            t0 = np.array([group[i].time_us for i in idx], dtype=np.float64) * 1e-6
            dev_s = (t0[:, None] + np.arange(n_r)[None, :] / rate_hz).ravel()
            gates = (
                self.gate_times_s if self.gate_times_s and len(self.gate_times_s) == n_g else None
            )
            hdr = MdHeader(
                sample_rate_hz=rate_hz,
                channel_names=tuple(f"{self.channel_prefix}{i}" for i in range(n_g)),
                gate_times_s=gates,
            )
            data = rec["v"][idx].reshape(-1, n_g).astype(np.float32)
            seq = np.rint(dev_s * rate_hz).astype(np.int64)
            order = np.argsort(dev_s, kind="stable")
            out.append(Piece(MdBlock, data[order], hdr, seq[order], dev_s[order]))
        return out

    def control(self, f: Frame) -> None:
        p = f.payload
        try:
            if f.msg_type == Msg.ODOMETER:
                if len(p) != ODO.size:
                    raise ValueError("odometer payload size")
                self.odometer.append((f.time_us * 1e-6, ODO.unpack(p)[0]))
            elif f.msg_type == Msg.STATUS:
                if len(p) != STATUS.size:
                    raise ValueError("status payload size")
                self.status = STATUS.unpack(p)
            elif f.msg_type == Msg.ACK:
                if len(p) < ACK_HEAD.size:
                    raise ValueError("ack payload size")
                cmd, token, status = ACK_HEAD.unpack_from(p)
                msg = p[ACK_HEAD.size :].decode("utf-8", "replace")
                self.acks.append(Ack(cmd, token, status, msg))
                del self.acks[:-64]
            elif f.msg_type == Msg.INFO:
                info = json.loads(p.decode("utf-8"))
                if not isinstance(info, dict):
                    raise ValueError("info is not an object")
                self.info = info
                gates = (
                    info.get("emi", {}).get("gate_times_s")
                    if isinstance(info.get("emi"), dict)
                    else None
                )
                if self.gate_times_s is None and isinstance(gates, list) and gates:
                    self.gate_times_s = tuple(float(g) for g in gates)
            else:
                self.corrupt["link"] += 1
        except (ValueError, UnicodeDecodeError, struct.error, TypeError):
            key = "odometer" if f.msg_type == Msg.ODOMETER else "link"
            self.corrupt[key] += 1


# ------------------------------------------------------------------------- the source


class SensorHeadSource(StreamSource):
    """Kind ``sensor_head``: GPR + EMI (+ odometer) over one serial/TCP link."""

    sensors = ("gpr", "emi")
    #: every item carries the head's clock: gathering 50 ms of frames per decode costs no
    #: time accuracy and cuts the blocks the pipeline handles from one per frame to ~20/s
    default_read_interval_s = 0.05
    #: a device clock this far behind the newest stamp means the head restarted
    restart_jump_s = 1.0
    #: after a clock step back, an odometer reading this close to the last one means the
    #: head did not restart (its odometer goes on): same position frame
    odometer_continuity_m = 1.0
    #: an odometer step longer than this, faster than ``odometer_max_speed_m_s`` (no
    #: handheld or vehicle head moves so), breaks the position frame: a new epoch
    odometer_jump_m = 0.1
    odometer_max_speed_m_s = 5.0
    #: rows this far before the odometer track's first stamp are not placed
    odometer_reach_s = 0.05

    def __init__(
        self,
        url: str,
        baudrate: int = 921600,
        sensors: Sequence[str] = ("gpr", "emi"),
        metres_per_tick: float = 0.001,
        odometer: bool = True,
        max_hold_s: float = 0.2,
        gate_times_s: Sequence[float] | None = None,
        start_on_open: bool = True,
        **base: Any,
    ) -> None:
        if not (metres_per_tick > 0 and math.isfinite(metres_per_tick)):
            raise ValueError(f"metres_per_tick must be > 0, got {metres_per_tick}")
        if max_hold_s < 0:
            raise ValueError(f"max_hold_s must be >= 0, got {max_hold_s}")
        super().__init__(url, baudrate, sensors=sensors, **base)
        self.metres_per_tick = float(metres_per_tick)
        self.use_odometer = bool(odometer)
        self.max_hold_s = float(max_hold_s)
        self.start_on_open = bool(start_on_open)
        self.frames = FrameDecoder()
        self.decoder = HeadDecoder(gate_times_s)
        self.clock_sync = ClockSync()
        self._held: list[_Held] = []
        self._token = 0
        self._cmd_seq = 0
        self._odo_t = np.empty(0)
        self._odo_pos = np.empty(0)
        #: position epoch: +1 each time the head restarts (:class:`PositionEpoch`)
        self.epoch = 0
        self._device_s_max = -math.inf
        self._last_odo_m = math.nan
        self._last_odo_s = math.nan
        self._lost_held: list[Item] = []

    # -- commands ----------------------------------------------------------------
    def send_command(self, cmd: Cmd, params: Mapping[str, Any] | None = None) -> int:
        self._token = (self._token + 1) & 0xFFFF
        self._cmd_seq += 1
        frame = encode_frame(
            Msg.COMMAND, self._cmd_seq, 0, command_payload(cmd, self._token, params)
        )
        self.transport.write(frame)
        return self._token

    @property
    def acks(self) -> list[Ack]:
        return list(self.decoder.acks)

    @property
    def device_info(self) -> dict[str, Any]:
        return dict(self.decoder.info)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "device": self.device_info,
            "metres_per_tick": self.metres_per_tick,
        }

    def _on_open(self) -> None:
        if self.start_on_open:
            self.send_command(Cmd.IDENTIFY)
            self.send_command(Cmd.START)

    def _reset_decoder(self) -> None:
        """A new connection: partial input is dropped and the odometer track is forgotten
        (the device may have restarted; :meth:`_restart_at` tells from its clock)."""
        self.frames.reset()
        self.frames.stats = FrameStats()
        self._forget_track()

    def _close(self) -> None:
        self._lost_held = self._flush_held()
        super()._close()

    def _drain(self) -> list[Item]:
        out, self._lost_held = self._lost_held, []
        return out

    # -- decoding ----------------------------------------------------------------
    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        before = self.frames.stats.copy()
        frames = self.frames.feed(data)
        self.count_link(self.frames.stats.minus(before))
        out: list[Item] = []
        while True:
            restart, jump = self._restart_at(frames), self._odometer_jump_at(frames)
            cut = min((c for c in (restart, jump) if c is not None), default=None)
            if cut is None:
                return out + self._process(frames, rx_time_s)
            out += self._process(frames[:cut], rx_time_s) + self._flush_held()
            frames = frames[cut:]
            if cut == restart:
                out += self._clock_went_back(frames, rx_time_s)
            else:
                out.append(self._odometer_jumped(frames[0], rx_time_s))

    def _clock_went_back(self, frames: Sequence[Frame], rx_time_s: float) -> list[Item]:
        device_s = frames[0].time_us * 1e-6
        if self._odometer_goes_on(frames):
            log.warning(
                "%s: the device clock stepped back to %.3f s but the odometer goes on: "
                "same position frame",
                self.name,
                device_s,
            )
            self._device_s_max = device_s
            self._forget_track()
            return []
        return [self._new_epoch(rx_time_s, device_s, "sensor head restarted: odometer reset")]

    def _odometer_jumped(self, odo: Frame, rx_time_s: float) -> PositionEpoch:
        step_m = ODO.unpack(odo.payload)[0] * self.metres_per_tick - self._last_odo_m
        why = f"odometer jumped by {step_m:+.2f} m: position frame broken"
        return self._new_epoch(rx_time_s, odo.time_us * 1e-6, why)

    def _odometer_jump_at(self, frames: Sequence[Frame]) -> int | None:
        """Index of the first odometer frame whose reading is a step no head can walk:
        more than :attr:`odometer_jump_m` at more than :attr:`odometer_max_speed_m_s`
        from the reading before it (a slipped or reset counter). None: no such step."""
        idx = [
            i
            for i, f in enumerate(frames)
            if f.msg_type == Msg.ODOMETER and len(f.payload) == ODO.size
        ]
        if not idx:
            return None
        t_s = np.array([frames[i].time_us for i in idx], dtype=np.float64) * 1e-6
        x_m = np.array([ODO.unpack(frames[i].payload)[0] for i in idx], dtype=np.float64)
        x_m *= self.metres_per_tick
        t_prev = np.concatenate(([self._last_odo_s], t_s[:-1]))
        x_prev = np.concatenate(([self._last_odo_m], x_m[:-1]))
        step_m = np.abs(x_m - x_prev)
        dt_s = np.maximum(np.abs(t_s - t_prev), 1e-3)
        bad = np.flatnonzero(
            np.isfinite(x_prev)
            & (step_m > self.odometer_jump_m)
            & (step_m > self.odometer_max_speed_m_s * dt_s)
        )
        return None if bad.size == 0 else idx[int(bad[0])]

    def _odometer_goes_on(self, frames: Sequence[Frame]) -> bool:
        """After a clock step back: does the first odometer reading continue the last one
        (within :attr:`odometer_continuity_m`)? A restarted head counts from zero again;
        without a reading to tell, it is taken as restarted (a new epoch is the safe side)."""
        last = self._last_odo_m
        odo = next((f for f in frames if f.msg_type == Msg.ODOMETER), None)
        if odo is None or not math.isfinite(last) or len(odo.payload) != ODO.size:
            return False
        first = ODO.unpack(odo.payload)[0] * self.metres_per_tick
        return (
            abs(first - last) <= self.odometer_continuity_m
            and abs(last) > self.odometer_continuity_m
        )

    def _restart_at(self, frames: Sequence[Frame]) -> int | None:
        """Index of the first frame stamped by a restarted device (None: no restart).

        ``time_us`` counts from power-up and never goes back on a running device, so a
        clock more than :attr:`restart_jump_s` behind the newest stamp seen (on this or an
        earlier connection) means the head restarted: its odometer began again too."""
        stamps = [f.time_us for f in frames if f.msg_type in _DEVICE_CLOCKED]
        if not stamps:
            return None
        t = np.asarray(stamps, dtype=np.float64) * 1e-6
        newest = np.maximum.accumulate(np.concatenate(([self._device_s_max], t)))[:-1]
        back = np.flatnonzero(t < newest - self.restart_jump_s)
        if back.size == 0:
            self._device_s_max = max(self._device_s_max, float(t.max()))
            return None
        first_us = stamps[int(back[0])]
        return next(
            i
            for i, f in enumerate(frames)
            if f.msg_type in _DEVICE_CLOCKED and f.time_us == first_us
        )

    def _new_epoch(self, rx_time_s: float, device_s: float, reason: str) -> PositionEpoch:
        self.epoch += 1
        self._device_s_max = device_s
        self._forget_track()
        self._last_odo_m = self._last_odo_s = math.nan
        log.warning("%s: %s (device clock %.3f s): position epoch %d", self.name, reason,
                    device_s, self.epoch)  # fmt: skip
        return PositionEpoch(rx_time_s, self.name, reason)

    def _flush_held(self) -> list[Item]:
        """Everything still held goes out, placed on the track it was measured on (rows past
        its last odometer stamp get no position rather than a guessed one)."""
        out: list[Item] = [self._positioned(h.piece) for h in self._held]
        self._held.clear()
        return out

    def _forget_track(self) -> None:
        self._odo_t = np.empty(0)
        self._odo_pos = np.empty(0)
        self.decoder.odometer.clear()
        self.clock_sync.reset()
        self._held.clear()

    def _process(self, frames: Sequence[Frame], rx_time_s: float) -> list[Item]:
        gpr_frames: list[Frame] = []
        emi_frames: list[Frame] = []
        for f in frames:
            if f.msg_type == Msg.GPR_TRACE:
                gpr_frames.append(f)
            elif f.msg_type == Msg.EMI_READINGS:
                emi_frames.append(f)
            else:
                self.decoder.control(f)
        if frames:
            self.clock_sync.observe(max(f.time_us for f in frames) * 1e-6, rx_time_s)
        corrupt_before = dict(self.decoder.corrupt)
        if "gpr" in self.health:
            self._held += [_Held(p, rx_time_s) for p in self.decoder.gpr(gpr_frames)]
        if "emi" in self.health:
            self._held += [_Held(p, rx_time_s) for p in self.decoder.emi(emi_frames)]
        self._count_payloads(gpr_frames, emi_frames, corrupt_before)
        self._update_odometer()
        self._apply_status()
        return self._release(rx_time_s)

    def _count_payloads(
        self,
        gpr_frames: list[Frame],
        emi_frames: list[Frame],
        corrupt_before: dict[str, int],
    ) -> None:
        bad = {k: v - corrupt_before[k] for k, v in self.decoder.corrupt.items()}
        for name, fr in (("gpr", gpr_frames), ("emi", emi_frames)):
            h = self.health.get(name)
            if h is None:
                continue
            good = len(fr) - bad[name]
            if good > 0:
                h.frames_received(good, sum(len(f.payload) for f in fr))
            if bad[name]:
                h.count("corrupt_frames", bad[name])
        other = bad["odometer"] + bad["link"]
        if other:
            for h in self.health.values():
                h.count("corrupt_frames", other)

    def _idle(self, rx_time_s: float) -> list[Item]:
        return self._release(rx_time_s)

    def _update_odometer(self) -> None:
        odo = self.decoder.odometer
        if not odo:
            return
        t = np.array([o[0] for o in odo])
        pos = np.array([o[1] for o in odo], dtype=np.float64) * self.metres_per_tick
        self._odo_t = np.concatenate([self._odo_t, t])
        self._odo_pos = np.concatenate([self._odo_pos, pos])
        self._last_odo_m, self._last_odo_s = float(pos[-1]), float(t[-1])
        odo.clear()
        if self._odo_t.size > 1:
            order = np.argsort(self._odo_t, kind="stable")
            self._odo_t, self._odo_pos = self._odo_t[order], self._odo_pos[order]
            keep = self._odo_t >= self._odo_t[-1] - 10.0
            self._odo_t, self._odo_pos = self._odo_t[keep], self._odo_pos[keep]

    def _apply_status(self) -> None:
        st = self.decoder.status
        if st is None:
            return
        flags = StatusFlag(st[0] & 0x1F)
        for name, bit in (("gpr", StatusFlag.GPR_FAULT), ("emi", StatusFlag.EMI_FAULT)):
            h = self.health.get(name)
            if h is not None:
                h.device_fault = f"{name} fault flag" if bit in flags else None

    def _positions(self, dev_s: np.ndarray) -> np.ndarray:
        """Odometer metres interpolated at ``dev_s``. After the newest odometer stamp: the
        last known position (the wheel sends nothing while it stands still, PROTOCOL.md);
        before the oldest one (more than :attr:`odometer_reach_s`): NaN, never a position
        from a track the rows were not measured on."""
        if not self.use_odometer or self._odo_t.size == 0:
            return np.full(dev_s.shape, np.nan)
        pos = np.interp(dev_s, self._odo_t, self._odo_pos)
        pos[dev_s < self._odo_t[0] - self.odometer_reach_s] = np.nan
        return pos

    def _release(self, now_s: float) -> list[Item]:
        """Rows covered by odometer data (or held too long) go out; the rest wait."""
        if not self._held:
            return []
        last_odo = self._odo_t[-1] if self._odo_t.size else -math.inf
        ready: list[Piece] = []
        keep: list[_Held] = []
        for h in self._held:
            p = h.piece
            if not self.use_odometer or now_s - h.rx_s >= self.max_hold_s:
                n_out = p.device_s.size
            else:
                n_out = int(np.searchsorted(p.device_s, last_odo, side="right"))
            if n_out == p.device_s.size:
                ready.append(p)
            else:
                if n_out:
                    ready.append(p.rows(slice(0, n_out)))
                keep.append(_Held(p.rows(slice(n_out, None)), h.rx_s))
        self._held = keep
        return [self._positioned(p) for p in merge_pieces(ready)]

    def _positioned(self, p: Piece) -> GprBlock | MdBlock:
        offset = self.clock_sync.offset_s
        return p.kind(
            data=p.data,
            seq=p.seq,
            host_time_s=p.device_s + (offset if math.isfinite(offset) else 0.0),
            position_m=self._positions(p.device_s),
            header=p.header,  # type: ignore[arg-type]
        )


def merge_pieces(pieces: Sequence[Piece]) -> list[Piece]:
    """One piece per stream (kind, header, row width), rows kept in their order.

    Held rows come out a little at a time (part of a piece now, the rest after the next
    odometer frame), so one release would otherwise hand the pipeline several small
    blocks per stream, each costing a pass through DSP, alignment and the recorder."""
    groups: dict[tuple[Any, ...], list[Piece]] = {}
    for p in pieces:
        groups.setdefault((p.kind, p.header, p.data.shape[1:]), []).append(p)
    return [
        g[0]
        if len(g) == 1
        else Piece(
            g[0].kind,
            np.concatenate([p.data for p in g]),
            g[0].header,
            np.concatenate([p.seq for p in g]),
            np.concatenate([p.device_s for p in g]),
        )
        for g in groups.values()
    ]


def frames_to_bytes(frames: Iterable[tuple[int, int, int, bytes]]) -> bytes:
    """Concatenate ``(msg_type, seq, time_us, payload)`` into a byte stream (tests, emulator)."""
    return b"".join(encode_frame(t, s, us, p) for t, s, us, p in frames)
