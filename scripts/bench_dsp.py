"""Throughput of the default streaming DSP chains on ONE thread, next to a memory copy.

    .venv/bin/python scripts/bench_dsp.py [--traces 20000] [--block 256] [--repeat 5]

Prints traces/s of the default GPR chain (512 float32 samples per trace, fed in blocks of
``--block`` traces as a live source would), readings/s of the default EMI chain, and a
plain copy of the same array (the floor for one pass over the data), and traces/s of the
along-track grid (:class:`detect.align.TrackGrid`: add + finalize + rows, 1 cm cells) on the
same profile with jittered positions. Best of ``--repeat``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from detect.align import TrackGrid  # noqa: E402
from detect.blocks import GprBlock, GprHeader, MdBlock, MdHeader  # noqa: E402
from detect.config import compose  # noqa: E402
from detect.dsp.chain import chains_from_config  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def blocks_of(block: GprBlock | MdBlock, size: int) -> list[GprBlock | MdBlock]:
    return [
        type(block)(
            data=block.data[i : i + size],
            seq=block.seq[i : i + size],
            host_time_s=block.host_time_s[i : i + size],
            position_m=block.position_m[i : i + size],
            header=block.header,
        )
        for i in range(0, block.n, size)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--readings", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    cfg = compose([])
    chains = chains_from_config(cfg)
    rng = np.random.default_rng(0)
    n = args.traces
    t = np.arange(512) * 0.0390625
    wave = 100 * np.exp(-(((t - 1.2) / 0.2) ** 2)) * np.cos(2 * np.pi * 1.5 * (t - 1.2))
    gpr_data = (wave[None, :] + rng.standard_normal((n, 512))).astype(np.float32)
    gpr = GprBlock.build(
        gpr_data, GprHeader(dt_ns=0.0390625, antenna_hz=1.5e9),
        position_m=np.arange(n) * 0.005, host_time_s=np.arange(n) * 0.01,
    )  # fmt: skip
    gpr_blocks = blocks_of(gpr, args.block)

    def run_gpr() -> None:
        chains["gpr"].reset()
        for b in gpr_blocks:
            chains["gpr"].process(b)

    run_gpr()  # compile, build matrices
    t_gpr = best_of(run_gpr, args.repeat)
    t_copy = best_of(lambda: gpr_data.copy(), args.repeat)
    # Along-track grid (detect.align.TrackGrid, as the pipeline and training use it): the
    # same profile with jittered positions (~2 traces per 1 cm cell), fed in blocks.
    grid_pos = np.arange(n) * 0.005 + np.random.default_rng(1).uniform(-0.002, 0.002, n)
    grid_cap = max(2048, 4 * int(args.block * 0.005 / 0.01 + 8))  # rows of one block held
    grid_blocks = [
        (b.data, grid_pos[i : i + b.n], b.host_time_s)
        for i, b in zip(range(0, n, args.block), gpr_blocks, strict=True)
    ]

    def run_grid() -> None:
        g = TrackGrid(0.01, capacity=grid_cap)
        for data, pos, tim in grid_blocks:
            g.add(data, pos, tim)
            lo, hi = g.finalize()
            g.rows(lo, hi)

    t_grid = best_of(run_grid, args.repeat)

    m = args.readings
    gates = tuple(np.geomspace(1e-5, 1e-3, 8))
    emi_data = rng.standard_normal((m, 8)).astype(np.float32)
    emi = MdBlock.build(
        emi_data, MdHeader(1000.0, tuple(f"g{i}" for i in range(8)), gates),
        position_m=np.arange(m) * 0.0005, host_time_s=np.arange(m) / 1000.0,
    )  # fmt: skip
    emi_blocks = blocks_of(emi, 100)

    def run_emi() -> None:
        chains["emi"].reset()
        for b in emi_blocks:
            chains["emi"].process(b)

    run_emi()
    t_emi = best_of(run_emi, args.repeat)
    t_emi_copy = best_of(lambda: emi_data.copy(), args.repeat)

    print("one thread; best of", args.repeat)
    print(f"GPR chain : {chains['gpr']!r}")
    print(f"GPR default chain      {n / t_gpr:>14,.0f} traces/s  (blocks of {args.block})")
    print(f"GPR memory copy        {n / t_copy:>14,.0f} traces/s")
    print(f"GPR track grid         {n / t_grid:>14,.0f} traces/s  (blocks of {args.block})")
    print(f"EMI chain : {chains['emi']!r}")
    print(f"EMI default chain      {m / t_emi:>14,.0f} readings/s  (blocks of 100)")
    print(f"EMI memory copy        {m / t_emi_copy:>14,.0f} readings/s")


if __name__ == "__main__":
    main()
