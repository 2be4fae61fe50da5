"""Print how fast a ~100 MB DZT loads (MB/s), cold-ish (fresh file) and warm (cached).

.venv/bin/python scripts/bench_io.py [--mb 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from detect.io.dzt import write_dzt
from detect.io.formats import read_gpr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=float, default=100.0, help="file size in MB")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    nsamp, bits = 512, 16
    n_scans = int(args.mb * 1e6 / (nsamp * 2))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.DZT"
        raw = rng.integers(0, 65535, size=(n_scans, 1, nsamp), dtype=np.uint16)
        write_dzt(path, raw, range_ns=20.0, bits=bits, spm=100.0)
        del raw
        size_mb = path.stat().st_size / 1e6
        small = Path(tmp) / "warm.DZT"
        write_dzt(small, np.zeros((4, 1, nsamp), np.uint16), range_ns=20.0)
        read_gpr(small)  # imports every reader once, outside the timing
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            g = read_gpr(path)
            times.append(time.perf_counter() - t0)
            assert g.n_traces == n_scans
            del g
        best, first = min(times), times[0]
        print(f"DZT {size_mb:.1f} MB ({n_scans} traces x {nsamp} samples, 16-bit)")
        print(f"  first load {first:.3f} s = {size_mb / first:.0f} MB/s")
        print(f"  best of {args.repeat}  {best:.3f} s = {size_mb / best:.0f} MB/s")
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
        t_raw = time.perf_counter() - t0
        print(f"  plain read of the same file {t_raw:.3f} s = {size_mb / t_raw:.0f} MB/s")
        bench_session(Path(tmp), args.mb)


def bench_session(tmp: Path, mb: float) -> None:
    """Session recording throughput: GPR blocks of 10 traces x 512 samples (float32)."""
    from detect.blocks import GprBlock, GprHeader
    from detect.io.session import SessionReader, SessionWriter

    n_blocks = int(mb * 1e6 / (10 * 512 * 4))
    hdr = GprHeader(dt_ns=0.0390625)
    block = GprBlock.build(np.ones((10, 512), np.float32), hdr)
    path = tmp / "bench_session.h5"
    t0 = time.perf_counter()
    with SessionWriter(path, {}, {}) as w:
        for _ in range(n_blocks):
            w.write(block)
    t_write = time.perf_counter() - t0
    size_mb = path.stat().st_size / 1e6
    print(
        f"session write: {n_blocks} blocks of 10 traces ({size_mb:.1f} MB) in {t_write:.2f} s "
        f"= {size_mb / t_write:.0f} MB/s, {n_blocks / t_write:.0f} blocks/s "
        f"(live GPR needs ~10 blocks/s)"
    )
    t0 = time.perf_counter()
    with SessionReader(path) as r:
        g = r.gpr()
    t_read = time.perf_counter() - t0
    assert g is not None
    print(f"session read of all traces: {t_read:.2f} s = {size_mb / t_read:.0f} MB/s")


if __name__ == "__main__":
    main()
