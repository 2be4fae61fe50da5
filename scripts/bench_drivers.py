"""Decoder throughput: MB/s and % of one core at 10x the fastest device rate.

The reference load is 10 x (GPR 1,000 traces/s x 1,024 int16 samples + EMI 1 kHz x 8
gates in frames of 10 readings + odometer at 100 Hz) on one sensor-head link, decoded all the way to
positioned GprBlock / MdBlock, in 64 KiB reads as from a serial port. Other decoders
are timed on their own realistic streams. Prints figures; asserts nothing.

    .venv/bin/python scripts/bench_drivers.py [--seconds 1.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from detect.drivers import sensor_head as sh
from detect.drivers.ascii_emi import AsciiEmiParser
from detect.drivers.framing import FrameDecoder, encode_frame
from detect.drivers.gps import NmeaParser, UbxDecoder
from detect.drivers.spidar import SpidarSource, header_dtype

READ = 64 * 1024


def head_stream(seconds: float, gpr_hz: float, emi_hz: float, n_samples: int = 1024) -> bytes:
    rng = np.random.default_rng(0)
    n_tr = int(gpr_hz * seconds)
    counts = rng.integers(-3000, 3000, (n_tr, n_samples)).astype(np.int16)
    pays = sh.gpr_payloads(counts, 0.0390625, 2.0, 1e-4)
    parts: list[bytes] = []
    seq = 0
    t_tr = np.arange(n_tr) / gpr_hz
    emi_per_frame = 10
    n_emi_frames = int(emi_hz * seconds / emi_per_frame)
    t_emi = np.arange(n_emi_frames) * emi_per_frame / emi_hz
    emi = rng.normal(0, 1, (emi_per_frame, 8)).astype(np.float32)
    events = sorted(
        [(t, 0, i) for i, t in enumerate(t_tr)] + [(t, 1, i) for i, t in enumerate(t_emi)]
    )
    for t, kind, i in events:
        us = round(t * 1e6)
        if kind == 0:
            seq += 1
            parts.append(encode_frame(sh.Msg.GPR_TRACE, seq, us, pays[i]))
            if i % 10 == 0:
                seq += 1
                parts.append(
                    encode_frame(sh.Msg.ODOMETER, seq, us, sh.odometer_payload(int(t * 500)))
                )
        else:
            seq += 1
            parts.append(encode_frame(sh.Msg.EMI_READINGS, seq, us, sh.emi_payload(emi, emi_hz)))
    return b"".join(parts)


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def bench_head(seconds: float, repeat: int) -> None:
    gpr_hz, emi_hz = 10 * 1000.0, 10 * 1000.0
    stream = head_stream(seconds, gpr_hz, emi_hz)
    mb = len(stream) / 1e6

    def frames_only() -> None:
        d = FrameDecoder()
        for i in range(0, len(stream), READ):
            d.feed(stream[i : i + READ])

    def to_blocks() -> None:
        src = sh.SensorHeadSource("loop://", start_on_open=False, max_hold_s=0.0)
        n = 0
        for i in range(0, len(stream), READ):
            for b in src._decode(stream[i : i + READ], i / len(stream) * seconds):
                n += len(b)  # type: ignore[arg-type]
        assert n >= int(gpr_hz * seconds) + int(emi_hz * seconds) - 100, n

    for name, fn in (("framing only", frames_only), ("frames -> positioned blocks", to_blocks)):
        cpu = timed(fn, repeat)
        print(
            f"sensor_head {name:<28} {mb / cpu:8.1f} MB/s   "
            f"{100 * cpu / seconds:5.1f} % of one core at 10x "
            f"(GPR 10k traces/s x 1024 + EMI 10 kHz + odometer 1 kHz, {mb / seconds:.1f} MB/s)"
        )


def bench_lines(repeat: int) -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(0, 1, (10_000, 8))
    text = (
        "# rate_hz: 10000\n" + "\n".join(",".join(f"{v:.5g}" for v in r) for r in rows)
    ).encode()

    def run() -> None:
        p = AsciiEmiParser("pi_lines")
        for i in range(0, len(text), 4096):
            p.feed(text[i : i + 4096])

    cpu = timed(run, repeat)
    print(
        f"ascii_emi   10k lines x 8 gates (10x 1 kHz, 1 s)  {len(text) / 1e6 / cpu:8.1f} MB/s   "
        f"{100 * cpu:5.1f} % of one core"
    )


def bench_gps(repeat: int) -> None:
    from pyubx2 import GET, UBXMessage

    line = (
        b"$GPGST,123519,0.006,0.023,0.020,273.6,0.030,0.040,0.031*74\r\n"
        b"$GPGGA,123519,4807.038,N,01131.000,E,4,08,0.9,545.4,M,46.9,M,1.5,0031*6A\r\n"
    )
    nmea = line * 200  # 200 epochs: 10x a 20 Hz receiver for 1 s
    ubx = UBXMessage("NAV", "NAV-PVT", GET, lat=1.0, lon=2.0, fixType=3).serialize() * 200
    cpu_n = timed(lambda: NmeaParser().feed(nmea, 0.0), repeat)
    cpu_u = timed(lambda: UbxDecoder().feed(ubx), repeat)
    print(
        f"gps_nmea    200 epochs (10x 20 Hz, 1 s)            {len(nmea) / 1e6 / cpu_n:8.1f} MB/s   "
        f"{100 * cpu_n:5.1f} % of one core"
    )
    print(
        f"gps_ubx     200 NAV-PVT framing (10x 20 Hz, 1 s)   {len(ubx) / 1e6 / cpu_u:8.1f} MB/s   "
        f"{100 * cpu_u:5.1f} % of one core"
    )


def bench_spidar(repeat: int) -> None:
    n, pts = 10_000, 1024
    rec = np.zeros(n, dtype=header_dtype(pts))
    rec["trace_number"] = np.arange(1, n + 1)
    rec["header_size"] = 20
    raw = rec.tobytes()

    def run() -> None:
        src = SpidarSource("127.0.0.1", points_per_trace=pts)
        for i in range(0, len(raw), READ):
            src._buf += raw[i : i + READ]
            src._parse(0.0)

    cpu = timed(run, repeat)
    print(
        f"spidar      10k traces x 1024 float32 (1 s)       {len(raw) / 1e6 / cpu:8.1f} MB/s   "
        f"{100 * cpu:5.1f} % of one core"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds of 10x-rate stream")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    bench_head(a.seconds, a.repeat)
    bench_lines(a.repeat)
    bench_gps(a.repeat)
    bench_spidar(a.repeat)


if __name__ == "__main__":
    main()
