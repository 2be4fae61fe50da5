"""Byte-stream framing of the reference sensor-head protocol (see PROTOCOL.md).

Frame layout, little-endian::

    0  sync        2  A5 5A
    2  version     1  PROTOCOL_VERSION
    3  msg_type    1
    4  length      2  payload bytes
    6  seq         2  per-link frame counter, wraps 65535 -> 0
    8  time_us     8  device clock, microseconds since power-up
    16 header_crc  2  CRC-16/CCITT-FALSE over bytes 2..15
    18 payload     length
    .. crc32       4  CRC-32 (zlib) over bytes 2 .. 18+length

The header CRC lets the decoder reject a false sync (or a corrupted length) after
18 bytes instead of waiting for up to 64 KiB of a frame that does not exist. Sync
candidates are found with numpy over the whole buffer; the per-frame work is two
CRC calls in C. Every byte fed in ends in exactly one of: an accepted frame,
``garbage_bytes`` (discarded while resynchronising), or the pending buffer.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

SYNC = b"\xa5\x5a"
PROTOCOL_VERSION = 1
HEADER = struct.Struct("<2sBBHHQ")
HEADER_SIZE = HEADER.size + 2
CRC_SIZE = 4
OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_PAYLOAD = 0xFFFF
SEQ_MODULO = 1 << 16


def crc16_ccitt(data: bytes | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), via :func:`binascii.crc_hqx`."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(msg_type: int, seq: int, time_us: int, payload: bytes = b"") -> bytes:
    """One complete frame."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(
        SYNC, PROTOCOL_VERSION, msg_type, len(payload), seq % SEQ_MODULO, int(time_us)
    )
    head += crc16_ccitt(head[2:]).to_bytes(2, "little")
    body = head + payload
    return body + zlib.crc32(memoryview(body)[2:]).to_bytes(4, "little")


class Frame(NamedTuple):
    msg_type: int
    seq: int
    seq_unwrapped: int
    time_us: int
    payload: bytes


@dataclass
class FrameStats:
    """Link counters; ``bytes_in == frame_bytes + garbage_bytes + pending`` always holds."""

    bytes_in: int = 0
    frames: int = 0
    frame_bytes: int = 0
    garbage_bytes: int = 0
    resyncs: int = 0
    crc_errors: int = 0
    truncated: int = 0
    gaps: int = 0
    missing_frames: int = 0

    def copy(self) -> FrameStats:
        return FrameStats(**self.__dict__)

    def minus(self, other: FrameStats) -> FrameStats:
        return FrameStats(**{k: v - getattr(other, k) for k, v in self.__dict__.items()})


@dataclass
class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes in any chunking, get whole frames out."""

    max_payload: int = MAX_PAYLOAD
    stats: FrameStats = field(default_factory=FrameStats)
    _buf: bytearray = field(default_factory=bytearray)
    _last_seq: int | None = None
    _last_unwrapped: int = 0
    _synced: bool = False
    _valid: list[int] = field(default_factory=list)
    _incomplete_at: int | None = None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        """Forget pending bytes (counted as garbage) and the sequence history."""
        self._discard(len(self._buf))
        self._last_seq = None
        self._synced = False

    def flush(self) -> None:
        """End of stream: what is left can never complete a frame."""
        if self._buf:
            if self._buf[:2] == SYNC and len(self._buf) >= HEADER_SIZE and self._header_ok(0):
                self.stats.truncated += 1
            self._discard(len(self._buf))

    def _discard(self, n: int) -> None:
        if n > 0:
            self._garbage(n)
            del self._buf[:n]

    def _garbage(self, n: int) -> None:
        """Count skipped bytes; one resync per run of garbage, however it was chunked.

        Bytes before the first good frame (joining a stream mid-frame) are garbage but
        not a resync: sync cannot be lost before it was found.
        """
        self.stats.garbage_bytes += n
        if self._synced:
            self.stats.resyncs += 1
            self._synced = False

    def _header_ok(self, c: int) -> bool:
        buf = self._buf
        if buf[c + 2] != PROTOCOL_VERSION:
            return False
        stored = buf[c + 16] | (buf[c + 17] << 8)
        if crc16_ccitt(memoryview(buf)[c + 2 : c + 16]) != stored:
            return False
        length = buf[c + 4] | (buf[c + 5] << 8)
        return length <= self.max_payload

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        self.stats.bytes_in += len(data)
        self._buf += data
        buf = self._buf
        n = len(buf)
        if n < 2:
            return self._keep_tail(0, None, [])
        arr = np.frombuffer(buf, dtype=np.uint8)
        cands = np.flatnonzero((arr[:-1] == 0xA5) & (arr[1:] == 0x5A))
        full = cands[cands + HEADER_SIZE <= n]
        ok, lengths = _check_headers(arr, full, self.max_payload)
        del arr
        valid = full[ok].tolist()
        valid_len = lengths[ok].tolist()
        incomplete = cands[cands + HEADER_SIZE > n]
        self._valid = valid
        self._incomplete_at = int(incomplete[0]) if incomplete.size else None
        accepted: list[tuple[int, int]] = []
        pos = 0
        wait_at: int | None = None
        mv = memoryview(buf)
        try:
            for i, (c, length) in enumerate(zip(valid, valid_len, strict=True)):
                if c < pos:
                    continue
                end = c + HEADER_SIZE + length + CRC_SIZE
                if end > n:
                    wait_at = c
                    break
                stored = int.from_bytes(mv[end - CRC_SIZE : end], "little")
                if zlib.crc32(mv[c + 2 : end - CRC_SIZE]) != stored:
                    inner = self._header_within(i, end)
                    if inner is None:
                        wait_at = c
                        break
                    if inner:
                        self.stats.truncated += 1
                    else:
                        self.stats.crc_errors += 1
                    continue
                if c > pos:
                    self._garbage(c - pos)
                self._synced = True
                accepted.append((c, end))
                pos = end
            frames = self._frames(mv, accepted)
        finally:
            mv.release()
        if wait_at is None and incomplete.size:
            later = incomplete[incomplete >= pos]
            if later.size:
                wait_at = int(later[0])
        return self._keep_tail(pos, wait_at, frames)

    def _frames(self, mv: memoryview, accepted: list[tuple[int, int]]) -> list[Frame]:
        if not accepted:
            return []
        starts = np.array([c for c, _ in accepted])
        raw = np.frombuffer(mv, dtype=np.uint8)
        hdr = raw[starts[:, None] + np.arange(3, 16)]
        msg_type = hdr[:, 0].tolist()
        seq = hdr[:, 3].astype(np.int64) | (hdr[:, 4].astype(np.int64) << 8)
        time_us = hdr[:, 5:13].copy().view("<u8")[:, 0].tolist()
        del raw, hdr
        unwrapped = self._unwrap_all(seq)
        self.stats.frames += len(accepted)
        self.stats.frame_bytes += sum(e - c for c, e in accepted)
        return [
            Frame(t, q, u, us, bytes(mv[c + HEADER_SIZE : e - CRC_SIZE]))
            for (c, e), t, q, u, us in zip(
                accepted, msg_type, seq.tolist(), unwrapped, time_us, strict=True
            )
        ]

    def _unwrap_all(self, seq: np.ndarray) -> list[int]:
        """Monotonic 64-bit frame numbers; counts gaps (with wrap-around) and missing frames.

        A step backwards or a repeat (device restart, duplicated frame) counts as one gap
        with no known number of missing frames.
        """
        prev = np.empty_like(seq)
        prev[1:] = seq[:-1]
        if self._last_seq is None:
            prev[0] = (seq[0] - 1) % SEQ_MODULO
            base = int(seq[0]) - 1
        else:
            prev[0] = self._last_seq
            base = self._last_unwrapped
        step = (seq - prev) % SEQ_MODULO
        forward = (step >= 1) & (step < SEQ_MODULO // 2)
        self.stats.gaps += int(np.count_nonzero(step != 1))
        self.stats.missing_frames += int((step[forward] - 1).sum())
        unwrapped = base + np.cumsum(np.where(forward, step, 1))
        self._last_seq = int(seq[-1])
        self._last_unwrapped = int(unwrapped[-1])
        return unwrapped.tolist()

    def _header_within(self, i: int, end: int) -> bool | None:
        """Does a valid frame header start inside ``(valid[i], end)``? None: not known yet.

        A bad frame that contains the start of the next one was cut short (truncated);
        otherwise its bytes were corrupted (CRC error).
        """
        nxt = self._valid[i + 1] if i + 1 < len(self._valid) else None
        if nxt is not None and nxt < end:
            return True
        if self._incomplete_at is not None and self._incomplete_at < end:
            return None
        return False

    def _keep_tail(self, pos: int, wait_at: int | None, frames: list[Frame]) -> list[Frame]:
        """Drop consumed bytes; keep only what may still start a frame."""
        buf = self._buf
        if wait_at is not None:
            keep_from = wait_at
        elif buf and buf[-1] == 0xA5:
            keep_from = len(buf) - 1
        else:
            keep_from = len(buf)
        keep_from = max(keep_from, pos)
        if keep_from > pos:
            self._garbage(keep_from - pos)
        del buf[:keep_from]
        return frames


_CRC16_TABLE = np.array([binascii.crc_hqx(bytes([i]), 0) for i in range(256)], dtype=np.uint16)
"""CRC-16/CCITT of each single byte from zero: the usual byte-wise table."""


def _check_headers(
    arr: np.ndarray, starts: np.ndarray, max_payload: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised header validation at every candidate: (ok mask, payload lengths)."""
    if starts.size == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    hdr = arr[starts[:, None] + np.arange(2, HEADER_SIZE)]
    crc = np.full(starts.size, 0xFFFF, dtype=np.uint16)
    for j in range(HEADER_SIZE - 4):
        crc = (crc << np.uint16(8)) ^ _CRC16_TABLE[(crc >> np.uint16(8)) ^ hdr[:, j]]
    stored = hdr[:, 14].astype(np.uint16) | (hdr[:, 15].astype(np.uint16) << np.uint16(8))
    lengths = hdr[:, 2].astype(np.int64) | (hdr[:, 3].astype(np.int64) << 8)
    ok = (hdr[:, 0] == PROTOCOL_VERSION) & (crc == stored) & (lengths <= max_payload)
    return ok, lengths
