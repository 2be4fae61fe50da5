"""TrackGrid (the along-track grid of the pipeline and of training) as a stream.

tests/test_align.py covers the bin mean of regular forward motion in fixed chunkings, one
filled and one unfilled gap in a single call, and one trace behind the final edge. Here:
any chunking equals one call (what training does) with stops, gaps and unknown positions;
every final cell against a plain loop; the exact fill limit; traces of unknown position;
a hand sweep that reverses over final cells.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.align import TrackGrid

GRID_M = 0.02
MAX_FILL = 3

Cells = dict[int, tuple[np.ndarray, bool, float]]


def _profile(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward motion (cell index never decreases) at an irregular pace: stops, slow
    stretches (several traces a cell), short and long gaps, unknown positions."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(5, size=n, p=[0.1, 0.55, 0.2, 0.1, 0.05])
    lo = np.array([0.0, 0.1, 0.6, 1.5, MAX_FILL + 2.0])[kind]
    hi = np.array([0.0, 0.5, 1.2, MAX_FILL + 0.5, 3.0 * MAX_FILL + 6.0])[kind]
    steps = rng.uniform(lo, hi)
    steps[0] = 0.0
    pos = (np.cumsum(steps) + rng.uniform(0.1, 0.4)) * GRID_M
    pos[rng.random(n) < 0.05] = np.nan
    tim = np.cumsum(rng.uniform(0.005, 0.015, n))
    data = rng.standard_normal((n, 4)).astype(np.float32)
    return data, pos, tim


def _stream(
    g: TrackGrid, data: np.ndarray, pos: np.ndarray, tim: np.ndarray, sizes: list[int]
) -> Cells:
    """Feed in chunks of ``sizes`` (cycled), finalize after each, keep the newly final rows."""
    out: Cells = {}
    i = k = 0
    while i < len(pos):
        j = min(len(pos), i + sizes[k % len(sizes)])
        g.add(data[i:j], pos[i:j], tim[i:j])
        lo, hi = g.finalize()
        if hi > lo:
            assert lo not in out and (not out or lo == max(out) + 1)  # contiguous, once each
            vals, valid, times = g.rows(lo, hi)
            for c in range(lo, hi):
                out[c] = (vals[c - lo], bool(valid[c - lo]), float(times[c - lo]))
        i, k = j, k + 1
    return out


def _reference(
    data: np.ndarray, pos: np.ndarray, tim: np.ndarray, max_fill: int = MAX_FILL
) -> Cells:
    """Plain loop: mean of the traces in each cell; empty runs of at most ``max_fill`` cells
    linear between their neighbours, longer ones invalid (time NaN)."""
    sums: dict[int, list[float]] = {}
    tsum: dict[int, float] = {}
    count: dict[int, int] = {}
    for row, p, t in zip(data, pos, tim, strict=True):
        if not math.isfinite(p):
            continue
        c = int(np.rint(p / GRID_M))
        acc = sums.setdefault(c, [0.0] * len(row))
        for m, v in enumerate(row):
            acc[m] += float(v)
        tsum[c] = tsum.get(c, 0.0) + float(t)
        count[c] = count.get(c, 0) + 1
    out: Cells = {
        c: (np.array([v / count[c] for v in sums[c]]), True, tsum[c] / count[c]) for c in sums
    }
    have = sorted(out)
    for a, b in itertools.pairwise(have):
        for c in range(a + 1, b):
            if b - a - 1 <= max_fill:
                w = (c - a) / (b - a)
                va, _, ta = out[a]
                vb, _, tb = out[b]
                out[c] = ((1 - w) * va + w * vb, True, (1 - w) * ta + w * tb)
            else:
                out[c] = (np.zeros(data.shape[1]), False, math.nan)
    return out


def _assert_cells_equal(got: Cells, want: Cells) -> None:
    for c in sorted(got):
        assert c in want, f"cell {c} final but never reached"
        gv, gok, gt = got[c]
        wv, wok, wt = want[c]
        assert gok == wok, f"cell {c}: valid {gok}, expected {wok}"
        if wok:
            np.testing.assert_allclose(gv, wv, rtol=1e-6, atol=1e-6, err_msg=f"cell {c}")
            assert abs(gt - wt) < 1e-9, f"cell {c} time"
        else:
            assert math.isnan(gt), f"cell {c}: invalid cell with time {gt}"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 90), min_size=1, max_size=8), st.integers(0, 20))
@example([1], 0)
@example([1], 7)
def test_any_chunking_gives_the_final_cells_of_one_call(sizes: list[int], seed: int) -> None:
    """Live (block by block) and training (whole lane in one call) see the same cells."""
    data, pos, tim = _profile(300, seed)
    whole_grid = TrackGrid(GRID_M, max_fill_cells=MAX_FILL)
    whole = _stream(whole_grid, data, pos, tim, [len(pos)])
    g = TrackGrid(GRID_M, max_fill_cells=MAX_FILL)
    parts = _stream(g, data, pos, tim, sizes)
    assert g.final_end == whole_grid.final_end
    assert sorted(parts) == sorted(whole)
    assert g.n_behind == whole_grid.n_behind == 0 and g.n_jumps == 0
    for c, (v, ok, t) in whole.items():
        pv, pok, pt = parts[c]
        assert pok == ok, f"cell {c}"
        np.testing.assert_allclose(pv, v, rtol=1e-6, atol=1e-6, err_msg=f"cell {c}")
        np.testing.assert_allclose(pt, t, rtol=0, atol=1e-9, equal_nan=True)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 90), min_size=1, max_size=8), st.integers(0, 1000))
def test_final_cells_are_the_mean_of_their_traces(sizes: list[int], seed: int) -> None:
    data, pos, tim = _profile(250, seed)
    g = TrackGrid(GRID_M, max_fill_cells=MAX_FILL)
    got = _stream(g, data, pos, tim, sizes)
    want = _reference(data, pos, tim)
    data_cells = np.unique(np.rint(pos[np.isfinite(pos)] / GRID_M).astype(int))
    assert min(got) == data_cells[0]
    # everything up to the last trace's cell (still open: more traces may land there) is final
    assert g.final_end is not None and g.final_end >= data_cells[-2] + 1
    _assert_cells_equal(got, want)


def test_fill_limit_is_exact_and_unknown_positions_are_not_cells() -> None:
    """Gaps of max_fill cells are filled linearly, max_fill + 1 are not; traces of unknown
    position (however far the head went meanwhile) go into no cell."""
    short_end, long_end = 3 + MAX_FILL, 8 + 2 * MAX_FILL  # first data cell after each gap
    cells = [0, 1, 2, short_end, short_end + 1, long_end, long_end + 1]
    pos = np.repeat(np.array(cells) * GRID_M + 0.003, 2)
    data = np.repeat(np.arange(len(cells), dtype=np.float32)[:, None] * 10.0, 2, axis=0)
    data[1::2] += 1.0  # cell mean = 10 k + 0.5
    tim = np.arange(len(pos)) * 0.01
    # an unknown stretch in the middle of the short gap, one across the long gap
    at = [6] * 3 + [10] * 8
    pos = np.insert(pos, at, np.nan)
    data = np.insert(data, at, np.float32(1e6), axis=0)
    tim = np.insert(tim, at, 0.0)
    for sizes in ([len(pos)], [1], [3, 2]):
        g = TrackGrid(GRID_M, max_fill_cells=MAX_FILL)
        got = _stream(g, data, pos, tim, sizes)
        assert g.final_end == cells[-1]
        assert sorted(got) == list(range(cells[-1]))
        short = range(3, short_end)  # MAX_FILL empty cells
        long = range(short_end + 2, long_end)  # MAX_FILL + 1 empty cells
        assert all(got[c][1] for c in short) and not any(got[c][1] for c in long)
        assert all(math.isnan(got[c][2]) for c in long)
        fill = np.array([got[c][0][0] for c in short])
        np.testing.assert_allclose(
            fill, np.interp(list(short), [2, short_end], [20.5, 30.5]), rtol=1e-6
        )
        assert max(abs(float(v[0])) for v, ok, _ in got.values() if ok) < 100  # no 1e6 leaked
        _assert_cells_equal(got, _reference(data, pos, tim))


def test_a_step_back_never_regrids_final_cells_and_is_counted() -> None:
    """A hand sweep: forward 1 m, back 0.4 m, forward again. Traces behind the final edge
    (cells already passed, as of the block they arrive in) are dropped and counted; the
    cells already handed out never change."""
    rng = np.random.default_rng(5)
    pos = np.concatenate(
        [np.arange(0.0, 1.0, 0.004), np.arange(1.0, 0.6, -0.004), np.arange(0.6, 1.6, 0.004)]
    )
    pos += rng.uniform(-0.001, 0.001, pos.size)  # jitter, still < 1/2 cell per trace
    data = rng.standard_normal((pos.size, 3)).astype(np.float32)
    tim = np.arange(pos.size) * 0.01
    chunk = 16
    g = TrackGrid(GRID_M, max_fill_cells=MAX_FILL)
    handed: Cells = {}
    keep = np.zeros(pos.size, dtype=bool)
    edge: int | None = None  # independent: max cell of the earlier blocks
    for a in range(0, pos.size, chunk):
        cells = np.rint(pos[a : a + chunk] / GRID_M).astype(int)
        keep[a : a + chunk] = True if edge is None else cells >= edge
        g.add(data[a : a + chunk], pos[a : a + chunk], tim[a : a + chunk])
        lo, hi = g.finalize()
        edge = int(cells.max()) if edge is None else max(edge, int(cells.max()))
        assert g.final_end == edge
        vals, valid, times = g.rows(lo, hi)
        for c in range(lo, hi):
            handed[c] = (vals[c - lo], bool(valid[c - lo]), float(times[c - lo]))
    assert g.n_behind == int((~keep).sum()) > 0.7 / 0.004  # back over 0.4 m and forward again
    assert g.n_jumps == 0
    # the cells handed out are the mean of the kept traces only ...
    _assert_cells_equal(handed, _reference(data[keep], pos[keep], tim[keep]))
    # ... and reading them again later gives the same rows
    lo = min(handed)
    vals, valid, times = g.rows(lo, g.final_end)
    assert valid.all()
    np.testing.assert_array_equal(vals, np.array([handed[c][0] for c in range(lo, g.final_end)]))
