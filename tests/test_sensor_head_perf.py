"""Sensor-head input cost and memory: bytes gathered per read, one block per stream per
release (the same rows as block by block), and decoder state bounded under wire faults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from detect.drivers import sensor_head as sh
from detect.drivers import stream as stream_mod
from detect.drivers.framing import MAX_PAYLOAD, OVERHEAD, encode_frame
from detect.drivers.sensor_head import SensorHeadSource

from detect.blocks import GprBlock, MdBlock, SensorState
from detect.sources.base import SourceError

GPR_HZ, EMI_FRAME_HZ, EMI_PER_FRAME = 100.0, 100.0, 10


def head_frames(seconds: float, seed: int = 0) -> list[tuple[float, bytes]]:
    """(device time s, frame) like the emulator: a trace + odometer at 100 Hz, EMI frames of
    10 readings at 100 Hz in between, a status frame every second."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, int, bytes]] = []
    n = int(seconds * GPR_HZ)
    counts = rng.integers(-3000, 3000, (n, 64)).astype(np.int16)
    pays = sh.gpr_payloads(counts, 0.05, 1.0, 1e-3)
    for i in range(n):
        t = i / GPR_HZ
        out.append((t, sh.Msg.GPR_TRACE, pays[i]))
        out.append((t, sh.Msg.ODOMETER, sh.odometer_payload(int(t * 500))))
        emi = rng.normal(0, 1, (EMI_PER_FRAME, 8)).astype(np.float32)
        out.append((t + 0.005, sh.Msg.EMI_READINGS, sh.emi_payload(emi, 1000.0)))
        if i % 100 == 0:
            out.append((t, sh.Msg.STATUS, sh.status_payload(1, 12.0, 30.0)))
    out.sort(key=lambda x: x[0])
    return [(t, encode_frame(m, k + 1, round(t * 1e6), p)) for k, (t, m, p) in enumerate(out)]


# ------------------------------------------------------------------ gathering bytes


@dataclass
class FakeTime:
    t: float = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += max(dt, 0.0)


@dataclass
class TrickleTransport:
    """Frames arrive at their device time on the fake clock, one write per frame, as the
    emulator sends them; ``read`` behaves like the serial transport (what is there now,
    else wait up to the timeout for the first bytes)."""

    clock: FakeTime
    frames: list[tuple[float, bytes]]
    url: str = "fake://"
    baudrate: int = 921600
    reads: int = 0
    i: int = field(default=0)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def _take(self, max_bytes: int) -> bytes:
        out = bytearray()
        while self.i < len(self.frames) and self.frames[self.i][0] <= self.clock.t:
            if len(out) + len(self.frames[self.i][1]) > max_bytes:
                break
            out += self.frames[self.i][1]
            self.i += 1
        return bytes(out)

    def read(self, timeout_s: float, max_bytes: int = 1 << 20) -> bytes:
        self.reads += 1
        data = self._take(max_bytes)
        if data:
            return data
        nxt = self.frames[self.i][0] if self.i < len(self.frames) else math.inf
        self.clock.t = min(max(nxt, self.clock.t), self.clock.t + timeout_s)
        return self._take(max_bytes)


def _trickled(
    monkeypatch: pytest.MonkeyPatch, seconds: float, **kw: Any
) -> tuple[list[tuple[float, Any]], TrickleTransport]:
    """(fake time handed over, item) for ``seconds`` of head traffic read as a reader
    thread does."""
    fake = FakeTime()
    fake_time = SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    monkeypatch.setattr(stream_mod, "time", fake_time, raising=False)
    src = SensorHeadSource("loop://", start_on_open=False, clock=fake.monotonic, **kw)
    transport = TrickleTransport(fake, head_frames(seconds))
    src.transport = transport  # type: ignore[assignment]
    src.open()
    items: list[tuple[float, Any]] = []
    while fake.t < seconds + 1.0:
        items += [(fake.t, it) for it in src.read(0.05)]
    src.close()
    return items, transport


def test_a_frame_by_frame_device_is_read_in_batches_not_frame_by_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 frames/s written one by one: the driver reads the port at every write but
    decodes what gathered every ``read_interval_s``: about one block per stream per
    interval, with every row."""
    seconds = 2.0
    got, transport = _trickled(monkeypatch, seconds)
    gpr = [b for _, b in got if isinstance(b, GprBlock)]
    emi = [b for _, b in got if isinstance(b, MdBlock)]
    assert sum(len(b) for b in gpr) == seconds * GPR_HZ
    assert sum(len(b) for b in emi) == seconds * EMI_FRAME_HZ * EMI_PER_FRAME
    decodes = seconds / 0.05
    assert len(gpr) <= 1.5 * decodes and len(emi) <= 1.5 * decodes
    assert transport.reads >= seconds * 150  # the port itself is read at every write
    assert np.all(np.diff(np.concatenate([b.seq for b in gpr])) > 0)
    # a trace waits at most the gathering interval, or the read timeout when the line goes
    # quiet (its odometer frame comes with it)
    late_s = max(float(np.max(t - b.host_time_s)) for t, b in got if isinstance(b, GprBlock))
    assert 0.0 <= late_s <= 0.05 + 0.05 + 1e-9


def test_read_interval_zero_reads_at_every_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference for the test above: decoding every read, about one block per trace."""
    got, _ = _trickled(monkeypatch, 1.0, read_interval_s=0.0)
    assert sum(isinstance(b, GprBlock) for _, b in got) >= 0.9 * GPR_HZ


def test_gathering_changes_block_boundaries_not_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    gathered, _ = _trickled(monkeypatch, 1.5)
    monkeypatch.undo()
    each, _ = _trickled(monkeypatch, 1.5, read_interval_s=0.0)
    for kind in (GprBlock, MdBlock):
        a, b = _rows([x for _, x in gathered], kind), _rows([x for _, x in each], kind)
        assert a["data"].shape[0] > 0
        for k in ("data", "seq", "position_m"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{kind.__name__}.{k}")
        # the device-to-host clock offset is refined at each decode (its drift allowance is
        # 1e-4 s/s): fewer decodes, the same times within that allowance
        np.testing.assert_allclose(a["host_time_s"], b["host_time_s"], rtol=0, atol=1e-4)
    assert len(gathered) < len(each) / 3


def test_only_the_device_clocked_head_gathers_rx_stamped_drivers_decode_every_read() -> None:
    """A GPS fix (and a text line without a device time) is stamped with the arrival time
    of the read that decodes it: gathering would shift it by up to the interval."""
    from detect.drivers.ascii_emi import AsciiEmiSource
    from detect.drivers.gps import NmeaGpsSource, UbxGpsSource

    assert SensorHeadSource("loop://").read_interval_s == 0.05
    for cls in (NmeaGpsSource, UbxGpsSource, AsciiEmiSource):
        assert cls("loop://").read_interval_s == 0.0, cls.__name__


def test_read_interval_is_checked() -> None:
    with pytest.raises(ValueError, match="read_interval_s"):
        SensorHeadSource("loop://", read_interval_s=1.0)


class _Failing:
    """Hands out ``chunks`` one per read, then fails like an unplugged port."""

    url, baudrate = "fake://", 921600

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def read(self, timeout_s: float, max_bytes: int = 1 << 20) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        raise SourceError("fake://: read failed: socket disconnected")


def test_bytes_gathered_before_a_port_failure_are_decoded_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTime()
    fake_time = SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    monkeypatch.setattr(stream_mod, "time", fake_time, raising=False)
    trace = sh.gpr_payloads(np.zeros((1, 4), np.int16), 0.1, 0.0, 1.0)[0]
    frames = [encode_frame(sh.Msg.GPR_TRACE, i + 1, 1000 * i, trace) for i in range(6)]
    src = SensorHeadSource("loop://", start_on_open=False, odometer=False, reconnect=False)
    src.transport = _Failing([frames[0], b"".join(frames[1:3]), b"".join(frames[3:])])  # type: ignore[assignment]
    src.open()
    got = src.read(0.05)  # the first bytes after a quiet line: decoded at once
    got += src.read(0.05)  # within read_interval_s of that: gathered
    got += src.read(0.05)
    assert sum(len(b) for b in got) == 1
    got += src.read(0.05)  # the port fails: what was gathered comes out first
    assert sum(len(b) for b in got) == 6
    assert [int(s) for b in got for s in b.seq] == list(range(1, 7))
    with pytest.raises(SourceError, match="socket disconnected"):
        src.read(0.05)  # then the failure itself
    assert src.health["gpr"].state == SensorState.FAULT


# ------------------------------------------------------------------ one block per stream


def _faulty_stream(seconds: float, seed: int) -> bytes:
    """The head's frames with garbage bursts, flipped bytes and dropped frames."""
    rng = np.random.default_rng(seed)
    parts: list[bytes] = []
    for _, f in head_frames(seconds, seed):
        if rng.random() < 0.05:
            continue  # dropped
        if rng.random() < 0.05:
            parts.append(rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes())
        if rng.random() < 0.03:
            b = bytearray(f)
            b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
            f = bytes(b)
        parts.append(f)
    return b"".join(parts)


def _decode_chunked(data: bytes, seed: int, merge: bool, monkeypatch: Any) -> list[Any]:
    if not merge:
        monkeypatch.setattr(sh, "merge_pieces", list)
    src = SensorHeadSource("loop://", start_on_open=False, max_hold_s=0.05)
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    pos, rx = 0, 100.0
    while pos < len(data):
        n = int(rng.integers(1, 3000))
        out += src._decode(data[pos : pos + n], rx)
        pos += n
        rx += n / 200_000
    out += src._idle(rx + 1.0)
    monkeypatch.undo()
    return out


def _rows(items: list[Any], kind: type) -> dict[str, np.ndarray]:
    blocks = [b for b in items if isinstance(b, kind)]
    return {
        k: np.concatenate([np.asarray(getattr(b, k)) for b in blocks])
        for k in ("data", "seq", "host_time_s", "position_m")
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merged_blocks_carry_exactly_the_rows_of_block_by_block_release(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    data = _faulty_stream(3.0, seed)
    merged = _decode_chunked(data, seed, True, monkeypatch)
    plain = _decode_chunked(data, seed, False, monkeypatch)
    for kind in (GprBlock, MdBlock):
        a, b = _rows(merged, kind), _rows(plain, kind)
        assert a["data"].shape[0] > 0
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{kind.__name__}.{k}")
    assert len(merged) < len(plain)


def test_one_release_hands_over_one_block_per_stream() -> None:
    src = SensorHeadSource("loop://", start_on_open=False, max_hold_s=10.0)
    frames = [f for _, f in head_frames(0.2)]
    # EMI readings run 10 ms past each odometer stamp: part of each EMI frame is held,
    # then released with the next read's rows
    first = src._decode(b"".join(frames[: len(frames) // 2]), 1.0)
    second = src._decode(b"".join(frames[len(frames) // 2 :]), 1.01)
    for out in (first, second):
        kinds = [type(b) for b in out]
        assert kinds.count(GprBlock) == 1 and kinds.count(MdBlock) == 1, kinds


# ------------------------------------------------------------------ bounded memory


def _false_sync(rng: np.random.Generator) -> bytes:
    """A header that passes its CRC and claims a long payload that never comes."""
    head = encode_frame(sh.Msg.GPR_TRACE, int(rng.integers(0, 65536)), 0, b"")[:18]
    fake = bytearray(encode_frame(sh.Msg.GPR_TRACE, 1, 0, bytes(60_000))[:18])
    return bytes(fake) if rng.random() < 0.5 else head


def test_decoder_state_stays_bounded_under_a_long_faulted_stream() -> None:
    """Tens of MB of garbage, false syncs that promise 60 kB frames, flipped bytes and
    dropped frames mixed with the head's traffic: every container the decoder keeps stays
    within a bound set by one frame and the hold time, not by how long the stream runs."""
    rng = np.random.default_rng(7)
    clock = SimpleNamespace(t=0.0)
    src = SensorHeadSource("loop://", start_on_open=False, max_hold_s=0.2, clock=lambda: clock.t)
    for h in src.health.values():
        h.mark_connected(True)
    good = [f for _, f in head_frames(25.0, 3)]  # 25 s of device time, 3 frames per read
    largest: dict[str, int] = {}

    def note(name: str, value: int) -> None:
        largest[name] = max(largest.get(name, 0), value)

    n_bytes = 0
    for i in range(2500):
        clock.t += 0.01
        chunk = bytearray()
        for f in good[3 * i : 3 * i + 3]:
            if rng.random() < 0.1:
                continue
            chunk += f
        kind = rng.random()
        if kind < 0.3:
            chunk += rng.integers(0, 256, int(rng.integers(1000, 20_000)), dtype=np.uint8).tobytes()
        elif kind < 0.4:
            chunk += _false_sync(rng)
        if rng.random() < 0.3 and chunk:
            chunk[int(rng.integers(0, len(chunk)))] ^= 0xFF
        n_bytes += len(chunk)
        src._decode(bytes(chunk), clock.t)
        src.poll_health()
        note("buf", src.frames.pending)
        note("valid", len(src.frames._valid))
        note("held_rows", sum(h.piece.device_s.size for h in src._held))
        note("odo", src._odo_t.size)
        note("odo_pending", len(src.decoder.odometer))
        note("acks", len(src.decoder.acks))
        note("recent", max(len(h._recent) for h in src.health.values()))
    assert n_bytes > 6e6
    assert src.frames.stats.garbage_bytes > 3e6 and src.frames.stats.frames > 4000
    assert largest["buf"] < OVERHEAD + MAX_PAYLOAD
    assert largest["valid"] <= (OVERHEAD + MAX_PAYLOAD + 40_000) // 2
    # held: at most max_hold_s of EMI readings (1 kHz) and traces, plus one read's worth
    assert largest["held_rows"] <= (0.2 + 0.02) * (1000 + 100) + 100
    assert largest["odo"] <= 10.0 * 100 + 10  # the 10 s odometer window at 100 Hz
    assert largest["odo_pending"] == 0 and largest["acks"] <= 64
    # error/frame records within the health window (2 s of 100 reads/s, a few per read)
    assert largest["recent"] <= 2.0 / 0.01 * 20
