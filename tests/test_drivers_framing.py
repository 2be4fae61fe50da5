"""Sensor-head framing: loop://, every split point, garbage, bad CRCs, truncation, wrap-around."""

from __future__ import annotations

import binascii
import struct
import zlib

import numpy as np
from detect.drivers.framing import (
    HEADER_SIZE,
    OVERHEAD,
    SYNC,
    FrameDecoder,
    crc16_ccitt,
    encode_frame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detect.sources.transport import Transport


def _frames(n: int, first_seq: int = 0, size: int = 40) -> list[bytes]:
    rng = np.random.default_rng(n + first_seq)
    return [
        encode_frame(
            1 + i % 3, first_seq + i, 1000 * i, rng.integers(0, 256, size, np.uint8).tobytes()
        )
        for i in range(n)
    ]


def _accounted(d: FrameDecoder) -> bool:
    s = d.stats
    return s.bytes_in == s.frame_bytes + s.garbage_bytes + d.pending


def test_crc_algorithms_match_their_published_check_values() -> None:
    # "123456789" check values from the CRC catalogue: CRC-16/CCITT-FALSE 0x29B1, CRC-32 0xCBF43926
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_frame_layout_is_as_documented() -> None:
    payload = b"\x01\x02\x03"
    f = encode_frame(0x02, 0x1234, 0x0102030405, payload)
    assert f[:2] == SYNC and len(f) == HEADER_SIZE + len(payload) + 4
    _sync, ver, typ, length, seq, t_us, hcrc = struct.unpack_from("<2sBBHHQH", f)
    assert (ver, typ, length, seq, t_us) == (1, 2, 3, 0x1234, 0x0102030405)
    assert hcrc == binascii.crc_hqx(f[2:16], 0xFFFF)
    assert f[18:21] == payload
    assert int.from_bytes(f[-4:], "little") == zlib.crc32(f[2:-4])


def test_split_at_every_byte_boundary() -> None:
    frames = _frames(3)
    stream = b"".join(frames)
    for cut in range(1, len(stream)):
        d = FrameDecoder()
        got = d.feed(stream[:cut]) + d.feed(stream[cut:])
        assert [g.seq for g in got] == [0, 1, 2], cut
        assert d.stats.garbage_bytes == 0 and d.stats.crc_errors == 0 and _accounted(d)


def test_byte_by_byte_equals_one_chunk() -> None:
    stream = b"".join(_frames(5))
    d1, d2 = FrameDecoder(), FrameDecoder()
    one = d1.feed(stream)
    many = [f for i in range(len(stream)) for f in d2.feed(stream[i : i + 1])]
    assert [(f.seq, f.payload) for f in one] == [(f.seq, f.payload) for f in many]


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    f = _frames(3)
    junk = [b"\x00" * 7, SYNC + b"\xff" * 30, b"\xa5" * 5]
    stream = junk[0] + f[0] + junk[1] + f[1] + junk[2] + f[2]
    d = FrameDecoder()
    got = d.feed(stream)
    assert [g.seq for g in got] == [0, 1, 2]
    assert d.stats.garbage_bytes == sum(map(len, junk))
    assert d.stats.resyncs == 2  # the leading junk is joining the stream, not losing sync
    assert _accounted(d)


def test_bad_crc_counted_and_next_frame_kept() -> None:
    f = _frames(3)
    bad = bytearray(f[1])
    bad[HEADER_SIZE + 5] ^= 0x40
    d = FrameDecoder()
    got = d.feed(f[0] + bytes(bad) + f[2])
    assert [g.seq for g in got] == [0, 2]
    assert d.stats.crc_errors == 1 and d.stats.truncated == 0
    assert d.stats.garbage_bytes == len(bad)
    assert d.stats.gaps == 1 and d.stats.missing_frames == 1
    assert _accounted(d)


def test_corrupted_length_is_caught_by_the_header_crc() -> None:
    f = _frames(2)
    bad = bytearray(f[0])
    bad[5] = 0xFF  # length high byte -> ~65 kB: must not make the decoder wait for it
    d = FrameDecoder()
    got = d.feed(bytes(bad) + f[1])
    assert [g.seq for g in got] == [1]
    assert d.pending == 0 and _accounted(d)


def test_truncated_frame_is_told_apart_from_a_crc_error() -> None:
    f = _frames(3)
    stream = f[0] + f[1][: len(f[1]) - 9] + f[2]
    for step in (1, 5, len(stream)):
        d = FrameDecoder()
        got = [g for i in range(0, len(stream), step) for g in d.feed(stream[i : i + step])]
        assert [g.seq for g in got] == [0, 2], step
        assert d.stats.truncated == 1 and d.stats.crc_errors == 0
        assert _accounted(d)


def test_truncated_at_end_of_stream_on_flush() -> None:
    f = _frames(2)
    d = FrameDecoder()
    d.feed(f[0] + f[1][:-3])
    assert d.pending == len(f[1]) - 3
    d.flush()
    assert d.stats.truncated == 1 and d.pending == 0 and _accounted(d)


def test_sequence_wraps_without_a_gap_and_unwraps_monotonic() -> None:
    frames = _frames(6, first_seq=65533)
    d = FrameDecoder()
    got = d.feed(b"".join(frames))
    assert [g.seq for g in got] == [65533, 65534, 65535, 0, 1, 2]
    assert [g.seq_unwrapped for g in got] == list(range(65533, 65539))
    assert d.stats.gaps == 0 and d.stats.missing_frames == 0


def test_gap_across_the_wrap_counts_the_missing_frames() -> None:
    frames = _frames(6, first_seq=65533)
    d = FrameDecoder()
    got = d.feed(frames[0] + frames[4] + frames[5])  # 65533 -> 1: 65534, 65535, 0 missing
    assert [g.seq_unwrapped for g in got] == [65533, 65537, 65538]
    assert d.stats.gaps == 1 and d.stats.missing_frames == 3


def test_loop_url_transport_round_trip() -> None:
    frames = _frames(20, size=300)
    t = Transport("loop://")
    t.open()
    try:
        d = FrameDecoder()
        got = []
        for f in frames:
            t.write(f[:10])
            got += d.feed(t.read(0.05))
            t.write(f[10:])
            got += d.feed(t.read(0.05))
        assert [g.seq for g in got] == list(range(20))
        assert [g.payload for g in got] == [f[HEADER_SIZE:-4] for f in frames]
    finally:
        t.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.binary(max_size=80), max_size=12),
    n_frames=st.integers(0, 4),
    cuts=st.lists(st.integers(1, 50), max_size=10),
    flips=st.lists(st.integers(0, 10_000), max_size=4),
)
def test_fuzz_every_byte_accounted(
    chunks: list[bytes], n_frames: int, cuts: list[int], flips: list[int]
) -> None:
    frames = _frames(n_frames, size=20)
    stream = bytearray()
    for i, c in enumerate(chunks):
        stream += c
        if i < len(frames):
            stream += frames[i]
    for fpos in flips:
        if stream:
            stream[fpos % len(stream)] ^= 0x5A
    d = FrameDecoder()
    pos, got = 0, []
    for c in cuts:
        got += d.feed(bytes(stream[pos : pos + c]))
        pos += c
        assert _accounted(d)
    got += d.feed(bytes(stream[pos:]))
    assert _accounted(d)
    d.flush()
    assert d.pending == 0 and _accounted(d)
    assert d.stats.frame_bytes == sum(len(g.payload) + OVERHEAD for g in got)
    if not flips and not any(SYNC[:1] in c or c.endswith(b"\xa5") for c in chunks):
        assert len(got) == min(n_frames, len(chunks))
