"""TrackGrid (the along-track grid of the pipeline and of training) as a stream.

tests/test_align.py covers the bin mean of regular forward motion in fixed chunkings, one
filled and one unfilled gap in a single call, and one trace behind the final edge. Here:
any chunking equals one call (what training does) with stops, gaps and unknown positions;
every final cell against a plain loop; the exact fill limit; traces of unknown position;
a hand sweep that reverses over final cells; and random streams in random chunkings (steps
back, repeated and unknown positions, long gaps, jumps, whole lanes in one call) against a
textbook trace-by-trace, cell-by-cell version of the grid, bit for bit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.align import AlignError, TrackGrid

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


class _Textbook:
    """TrackGrid's rules written out trace by trace and cell by cell with dicts of Python
    floats (no ring, no arrays, no NumPy arithmetic): the reference for streams in any
    chunking, with steps back, jumps, stops and unknown positions.

    - A trace's cell is its position / grid_m rounded half to even; unknown positions are
      skipped. The first known trace opens the grid at its cell.
    - An add whose highest cell is capacity // 2 or more from the final edge is a jump: start
      over at the cell of its last known trace.
    - Traces below the final edge are dropped (counted); the rest are summed in arrival order.
    - finalize closes [final edge, highest cell): a cell's value is its mean; an empty run of
      at most max_fill cells between two valid cells (the last final one included, the open
      cell too) is linear between them (point-slope form), a longer one invalid (0, time NaN);
      empty cells right below the open cell stay open if the run is short enough to fill.
    - rows() of [lo, hi) fails unless hi <= final edge and the range lies within the
      capacity // 2 cells below it.
    """

    def __init__(self, capacity: int, max_fill: int = MAX_FILL) -> None:
        self.capacity, self.max_fill = capacity, max_fill
        self.final_end: int | None = None
        self.max_seen: int | None = None
        self.first_cell: int | None = None
        self.n_behind = self.n_jumps = self.width = 0
        self.open: dict[int, tuple[list[float], float, int]] = {}  # sums, time sum, count
        self.final: dict[int, tuple[list[float], bool, float]] = {}

    def _start_at(self, cell: int) -> None:
        self.final_end = self.max_seen = self.first_cell = cell
        self.open, self.final = {}, {}

    def add(self, data: np.ndarray, pos: np.ndarray, tim: np.ndarray) -> None:
        traces = [
            (round(float(p) / GRID_M), [float(v) for v in row], float(t))
            for row, p, t in zip(data, pos, tim, strict=True)
            if math.isfinite(p)
        ]
        if not traces:
            return
        self.width = data.shape[1]
        if self.final_end is None:
            self._start_at(traces[0][0])
        assert self.final_end is not None and self.max_seen is not None
        if abs(max(c for c, _, _ in traces) - self.final_end) >= self.capacity // 2:
            self.n_jumps += 1
            self._start_at(traces[-1][0])
        for c, row, t in traces:
            if c < self.final_end:
                self.n_behind += 1
                continue
            sums, tsum, count = self.open.get(c, ([0.0] * len(row), 0.0, 0))
            self.open[c] = ([s + v for s, v in zip(sums, row, strict=True)], tsum + t, count + 1)
            self.max_seen = max(self.max_seen, c)

    def finalize(self) -> tuple[int, int]:
        if self.final_end is None or self.max_seen is None:
            return (0, 0)
        lo, hi = self.final_end, self.max_seen
        if hi <= lo:
            return (lo, lo)
        known: dict[int, tuple[list[float], float]] = {}
        before = self.final.get(lo - 1)
        if before is not None and before[1]:
            known[lo - 1] = (before[0], before[2])
        for c in range(lo, hi + 1):
            if c in self.open:
                sums, tsum, count = self.open[c]
                known[c] = ([s / count for s in sums], tsum / count)
        below = [c for c in known if c < hi]
        if below and hi - 1 - max(below) <= self.max_fill:
            hi = max(below) + 1
        for c in range(lo, hi):
            self.final[c] = self._cell(c, known)
            self.open.pop(c, None)
        self.final_end = hi
        return (lo, hi)

    def _cell(
        self, c: int, known: dict[int, tuple[list[float], float]]
    ) -> tuple[list[float], bool, float]:
        if c in known:
            return (known[c][0], True, known[c][1])
        left = [k for k in known if k < c]
        right = [k for k in known if k > c]
        if not left or not right or min(right) - max(left) - 1 > self.max_fill:
            return ([0.0] * self.width, False, math.nan)
        a, b = max(left), min(right)
        (va, ta), (vb, tb) = known[a], known[b]
        vals = [(y1 - y0) / (b - a) * (c - a) + y0 for y0, y1 in zip(va, vb, strict=True)]
        return (vals, True, (tb - ta) / (b - a) * (c - a) + ta)

    def readable(self, lo: int, hi: int) -> bool:
        half = self.capacity // 2
        return (
            self.final_end is not None
            and hi <= self.final_end
            and hi - lo <= half
            and lo >= self.final_end - half
        )


def _check_rows(g: TrackGrid, ref: _Textbook, lo: int, hi: int) -> None:
    """g.rows(lo, hi) fails exactly when the textbook says so, else it equals the textbook's
    cells bit for bit (float32 values of the float64 means, float64 times)."""
    if not ref.readable(lo, hi):
        with pytest.raises(AlignError):
            g.rows(lo, hi)
        return
    vals, valid, times = g.rows(lo, hi)
    assert vals.dtype == np.float32 and valid.dtype == bool and times.dtype == np.float64
    want = [ref.final[c] for c in range(lo, hi)]
    np.testing.assert_array_equal(
        vals, np.array([w[0] for w in want], np.float32).reshape(vals.shape)
    )
    np.testing.assert_array_equal(valid, [w[1] for w in want])
    np.testing.assert_array_equal(times, [w[2] for w in want])  # NaN equals NaN here


@st.composite
def _walks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], int]:
    """A head walk on a band of capacity - 2 cells (so one add never spans the ring): stops
    (repeated positions), slow and normal steps, short and long gaps, steps back (unsorted
    positions within a chunk), jumps (and wraps of the band), unknown positions."""
    n = draw(st.integers(1, 300))
    capacity = draw(st.sampled_from([16, 64, 2048]))
    sizes = draw(st.lists(st.integers(1, 120), min_size=1, max_size=6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo = np.array([0.0, 0.1, 0.6, 1.5, MAX_FILL + 1.5, -4.0, capacity / 2])
    hi = np.array([0.0, 0.5, 1.4, MAX_FILL + 0.5, 4.0 * MAX_FILL, -0.1, capacity - 3])
    kind = rng.choice(len(lo), size=n, p=rng.dirichlet(np.ones(len(lo))))
    cells = np.cumsum(rng.uniform(lo[kind], hi[kind])) % (capacity - 2)
    pos = (cells + rng.uniform(-50, 50)) * GRID_M
    pos[rng.random(n) < rng.uniform(0, 0.3)] = rng.choice([np.nan, np.inf, -np.inf])
    tim = np.cumsum(rng.uniform(0.001, 0.02, n)) + rng.uniform(0, 1e5)
    data = (rng.standard_normal((n, 3)) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
    return data, pos, tim, sizes, capacity


def _replay(
    data: np.ndarray, pos: np.ndarray, tim: np.ndarray, sizes: list[int], capacity: int
) -> tuple[TrackGrid, _Textbook]:
    """Feed TrackGrid and the textbook chunk by chunk; after each finalize the state and the
    newly final rows agree."""
    g = TrackGrid(GRID_M, capacity=capacity, max_fill_cells=MAX_FILL)
    ref = _Textbook(capacity)
    i = k = 0
    while i < len(pos):
        j = min(len(pos), i + sizes[k % len(sizes)])
        g.add(data[i:j], pos[i:j], tim[i:j])
        ref.add(data[i:j], pos[i:j], tim[i:j])
        assert (g.final_end, g.max_seen, g.first_cell) == (
            ref.final_end, ref.max_seen, ref.first_cell
        )  # fmt: skip
        assert (g.n_behind, g.n_jumps) == (ref.n_behind, ref.n_jumps)
        lo, hi = g.finalize()
        assert (lo, hi) == ref.finalize()
        assert g.final_end == ref.final_end
        _check_rows(g, ref, lo, hi)
        i, k = j, k + 1
    return g, ref


@settings(max_examples=150, deadline=None)
@given(_walks())
@example(  # an add with a jump forward in it, then a jump back
    (
        np.arange(8, dtype=np.float32)[:, None].repeat(3, axis=1),
        np.array([0.0, 0.02, 0.04, 1.0, 1.02, 0.10, 0.12, 0.14]),
        np.arange(8.0),
        [5, 3],
        64,
    )
)
def test_any_stream_matches_the_textbook_grid(
    walk: tuple[np.ndarray, np.ndarray, np.ndarray, list[int], int],
) -> None:
    data, pos, tim, sizes, capacity = walk
    g, ref = _replay(data, pos, tim, sizes, capacity)
    if ref.final_end is None:
        return
    edge, half = ref.final_end, capacity // 2
    rng = np.random.default_rng(len(pos))
    ranges = [(edge - half, edge), (edge - half - 1, edge), (edge - half - 1, edge - 1)]
    ranges += [(edge - 1, edge + 1), (edge, edge)]
    for _ in range(10):
        lo = edge - int(rng.integers(-2, capacity))
        ranges.append((lo, lo + int(rng.integers(0, capacity))))
    for lo, hi in ranges:  # read again later: the held cells, and the errors outside them
        if ref.readable(lo, hi) and not all(c in ref.final for c in range(lo, hi)):
            assert len(g.rows(lo, hi)[0]) == hi - lo  # held, though before the start or a jump
        else:
            _check_rows(g, ref, lo, hi)


@pytest.mark.parametrize("sizes", [[5000], [7, 2100, 33], [1, 2, 3]])
def test_whole_lane_in_one_call_matches_the_textbook(sizes: list[int]) -> None:
    """Thousands of traces a call (training grids a whole lane in one): the same cells as
    the textbook, bit for bit, with wiggles back, stops and gaps in every slice."""
    rng = np.random.default_rng(11)
    n = 5000
    steps = rng.choice([0.0, 0.3, 0.8, 2.5, -1.5, 6.0], size=n, p=[0.1, 0.4, 0.3, 0.1, 0.07, 0.03])
    pos = (np.cumsum(steps) + 0.3) * GRID_M
    pos[rng.random(n) < 0.03] = np.nan
    tim = np.cumsum(rng.uniform(0.001, 0.02, n))
    data = rng.standard_normal((n, 2)).astype(np.float32)
    capacity = 4 * (int(np.nanmax(pos) / GRID_M) + 8)
    g, ref = _replay(data, pos, tim, sizes, capacity)
    assert g.n_behind > 0 and g.n_jumps == 0
    assert ref.final_end is not None and ref.first_cell is not None
    _check_rows(g, ref, ref.first_cell, ref.final_end)
