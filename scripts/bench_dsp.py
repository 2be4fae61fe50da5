"""Throughput of the default streaming DSP chains on ONE thread, next to a memory copy.

    .venv/bin/python scripts/bench_dsp.py [--traces 20000] [--block 256] [--repeat 5]
    .venv/bin/python scripts/bench_dsp.py --only-grid

Prints traces/s of the default GPR chain (512 float32 samples per trace, fed in blocks of
``--block`` traces as a live source would), readings/s of the default EMI chain, and a
plain copy of the same array (the floor for one pass over the data), and traces/s of the
along-track grid (:class:`detect.align.TrackGrid`: add + finalize + rows, cells of the
configured ``window.grid_m``) on a 1.5 GHz head's traces after the DSP chain (256 samples,
2 mm to 2 cm apart): in live blocks of 50 traces, and 100k traces in one call (a whole lane,
as training grids it). Best of ``--repeat``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
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


def grid_profile(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1.5 GHz head's traces after the DSP chain: 256 float32 samples, taken 2 mm to 2 cm
    apart (uniform at random) along the track, 2 ms apart in time."""
    rng = np.random.default_rng(seed)
    pos = np.cumsum(rng.uniform(0.002, 0.02, n))
    return rng.standard_normal((n, 256)).astype(np.float32), pos, np.arange(n) * 0.002


def grid_rates(
    grid_m: float, repeat: int, traces: int = 20000, lane: int = 100_000
) -> tuple[float, float]:
    """traces/s of TrackGrid (add + finalize + rows): in blocks of 50 with the live ring, and
    ``lane`` traces in one call with a ring of 4x their span (as training sizes it)."""
    data, pos, tim = grid_profile(traces, 1)

    def live() -> None:
        g = TrackGrid(grid_m)
        for a in range(0, traces, 50):
            g.add(data[a : a + 50], pos[a : a + 50], tim[a : a + 50])
            g.rows(*g.finalize())

    whole = grid_profile(lane, 2)
    capacity = max(2048, 4 * (math.ceil(np.ptp(whole[1]) / grid_m) + 8))

    def one_call() -> None:
        g = TrackGrid(grid_m, capacity=capacity)
        g.add(*whole)
        g.rows(*g.finalize())

    return traces / best_of(live, repeat), lane / best_of(one_call, repeat)


def print_grid(grid_m: float, repeat: int) -> None:
    live, lane = grid_rates(grid_m, repeat)
    cells = f"{grid_m * 100:g} cm cells"
    print(f"GPR track grid         {live:>14,.0f} traces/s  (blocks of 50, {cells})")
    print(f"GPR track grid, lane   {lane:>14,.0f} traces/s  (100,000 in one call, {cells})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--readings", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only-grid", action="store_true", help="only the along-track grid")
    args = ap.parse_args()

    cfg = compose([])
    grid_m = float(cfg.window.grid_m)
    if args.only_grid:
        print("one thread; best of", args.repeat)
        print_grid(grid_m, args.repeat)
        return
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
    print_grid(grid_m, args.repeat)
    print(f"EMI chain : {chains['emi']!r}")
    print(f"EMI default chain      {m / t_emi:>14,.0f} readings/s  (blocks of 100)")
    print(f"EMI memory copy        {m / t_emi_copy:>14,.0f} readings/s")


if __name__ == "__main__":
    main()
