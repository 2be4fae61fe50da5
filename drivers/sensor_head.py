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

from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader
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
        self.frames.reset()
        self.frames.stats = FrameStats()
        self.clock_sync.reset()
        self._held.clear()

    # -- decoding ----------------------------------------------------------------
    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        before = self.frames.stats.copy()
        frames = self.frames.feed(data)
        self.count_link(self.frames.stats.minus(before))
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
        if not self.use_odometer or self._odo_t.size == 0:
            return np.full(dev_s.shape, np.nan)
        return np.interp(dev_s, self._odo_t, self._odo_pos)

    def _release(self, now_s: float) -> list[Item]:
        """Rows covered by odometer data (or held too long) go out; the rest wait."""
        if not self._held:
            return []
        last_odo = self._odo_t[-1] if self._odo_t.size else -math.inf
        out: list[Item] = []
        keep: list[_Held] = []
        for h in self._held:
            p = h.piece
            if not self.use_odometer or now_s - h.rx_s >= self.max_hold_s:
                n_out = p.device_s.size
            else:
                n_out = int(np.searchsorted(p.device_s, last_odo, side="right"))
            if n_out == p.device_s.size:
                out.append(self._positioned(p))
            else:
                if n_out:
                    out.append(self._positioned(p.rows(slice(0, n_out))))
                keep.append(_Held(p.rows(slice(n_out, None)), h.rx_s))
        self._held = keep
        return out

    def _positioned(self, p: Piece) -> GprBlock | MdBlock:
        offset = self.clock_sync.offset_s
        return p.kind(
            data=p.data,
            seq=p.seq,
            host_time_s=p.device_s + (offset if math.isfinite(offset) else 0.0),
            position_m=self._positions(p.device_s),
            header=p.header,  # type: ignore[arg-type]
        )


def frames_to_bytes(frames: Iterable[tuple[int, int, int, bytes]]) -> bytes:
    """Concatenate ``(msg_type, seq, time_us, payload)`` into a byte stream (tests, emulator)."""
    return b"".join(encode_frame(t, s, us, p) for t, s, us, p in frames)
