"""Radargrams worth reading (``detect plot``, ``scan.png``): checked through the matplotlib
objects (axes, labels, patches, text extents), not pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from detect.blocks import GprBlock, GprHeader
from detect.cli import main
from detect.config import compose
from detect.io.dzt import write_dzt
from detect.sinks.plot import PANEL_M, Radargram, radargram_figures

pytest.importorskip("matplotlib")


def _dzt(folder: Path, spm: float = 50.0, antenna: str = "400MHz") -> Path:
    """A 400 MHz profile: 300 scans, a dipping reflector and a diffraction hyperbola."""
    rng = np.random.default_rng(0)
    n, ns = 300, 256
    t = np.arange(ns)[None, :]
    x = np.arange(n)[:, None]
    apex = 120 + 0.002 * (x - 150) ** 2
    sig = 4000 * np.exp(-0.5 * ((t - apex) / 3) ** 2) + 3000 * np.exp(
        -0.5 * ((t - 60 - 0.2 * x) / 3) ** 2
    )
    raw = (sig + rng.normal(0, 200, (n, ns)) + 32768).astype(np.uint16)[:, None, :]
    path = folder / "p.DZT"
    write_dzt(path, raw, range_ns=50.0, sps=50.0, spm=spm, antenna=antenna)
    return path


def _cfg(path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return compose([f"input.path={path}", *extra])


def _gpr_axes(fig):  # type: ignore[no-untyped-def]
    return [ax for ax in fig.axes if ax.get_ylabel() == "two-way time (ns)"]


def test_plot_command_writes_a_dzt_radargram(tmp_path: Path) -> None:
    from detect.app.plot import radargram_for

    src = _dzt(tmp_path)
    out = tmp_path / "p.png"
    assert main(["plot", str(src), "--out", str(out)]) == 0
    assert out.stat().st_size > 30_000
    rg = radargram_for(_cfg(src), src)
    # 300 scans at 50 per m: 6 m, one panel; the default chain sets its band-pass and dewow
    # from the antenna's 400 MHz, so it fits: no plain fallback, and the whole record is drawn
    # (the model's time_axis crop left out)
    (fig,) = radargram_figures(rg)
    title = fig._suptitle.get_text()
    assert "p.DZT" in title and "400 MHz" in title and "dewow, bandpass, gain" in title
    assert "plain dewow + gain" not in title and "time_axis" not in title
    assert rg.gpr is not None and rg.gpr.n_samples == 256
    (ax,) = _gpr_axes(fig)
    assert ax.images and ax.get_xlabel() == "along-track position (m)"
    depth = [c for c in ax.child_axes if "depth (m)" in c.get_ylabel()]
    assert len(depth) == 1 and "0.122 m/ns" in depth[0].get_ylabel()  # DZT header eps_r 6
    assert any("amplitude" in c.get_ylabel() for c in ax.child_axes)  # colour bar
    # the depth axis follows d = v t / 2 with the stated velocity
    fwd = depth[0]._functions[0]
    assert fwd(20.0) == pytest.approx(0.299792458 / np.sqrt(6.0) * 10.0)


def test_plot_without_positions_assumes_the_walking_speed(tmp_path: Path) -> None:
    from detect.app.plot import radargram_for

    src = _dzt(tmp_path, spm=0.0)  # time-triggered, 50 scans/s: 0.5 m/s gives 1 cm a trace
    rg = radargram_for(_cfg(src, "input.walking_speed_m_s=0.5"), src)
    assert rg.gpr is not None
    np.testing.assert_allclose(np.diff(rg.gpr.position_m), 0.01)
    (fig,) = radargram_figures(rg)
    assert fig.axes[0].get_xlabel() == "along-track position (m)"


@pytest.fixture(scope="module")
def lane_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from detect.sim.lane import simulate_lane
    from detect.sim.settings import settings_from
    from detect.sim.task import write_lane

    folder = tmp_path_factory.mktemp("lane")
    s = settings_from({"lane_length_m": 25.0, "n_targets_min": 3, "n_targets_max": 4})
    lane = simulate_lane(1, s, lane_index=0)
    path = folder / "lane.h5"
    write_lane(path, lane, dict(compose([]).sim), s)
    return path


def test_plot_command_draws_a_simulated_lane_with_truth(lane_file: Path, tmp_path: Path) -> None:
    from detect.app.plot import radargram_for
    from detect.io.session import SessionReader

    out = tmp_path / "lane.png"
    assert main(["plot", str(lane_file), "--out", str(out)]) == 0
    assert out.stat().st_size > 50_000
    with SessionReader(lane_file) as r:
        truth = r.truth()
        x_end = float(np.nanmax(r.gpr().position_m))
    rg = radargram_for(_cfg(lane_file), lane_file)
    figs = radargram_figures(rg)
    gpr_axes = [ax for f in figs for ax in _gpr_axes(f)]
    assert len(gpr_axes) == int(np.ceil(x_end / PANEL_M))  # ~25 m: 3 panels of <= 12 m
    for ax in gpr_axes:
        a, b = ax.get_xlim()
        assert b - a <= PANEL_M + 1e-9
    # one outline per truth object, at the time its depth gives with the stated velocity
    boxes = [p for ax in gpr_axes for p in ax.patches if p.get_fill() is False]
    assert len(boxes) == len(truth) >= 3
    for d in truth:
        (box,) = [p for p in boxes if abs(p.get_x() + p.get_width() / 2 - d["x_m"]) < 1e-6]
        assert box.get_y() == pytest.approx(rg.time_ns(d["depth_m"]))
    assert any("simulated soil" in c.get_ylabel() for c in gpr_axes[0].child_axes)
    # EMI gates: a symmetric-log axis, the 8 gates labelled by their time in microseconds
    emi = [ax for f in figs for ax in f.axes if ax.get_ylabel().startswith("EMI gates")]
    assert len(emi) == len(gpr_axes) and all(ax.get_yscale() == "symlog" for ax in emi)
    labels = [t.get_text() for t in emi[0].get_legend().get_texts()]
    assert labels[0] == "10 µs" and labels[-1] == "1000 µs" and len(labels) == 8


def test_long_lane_labels_never_overprint() -> None:
    """150 m, 92 alarms (the issue's example): panels of <= 12 m, and no two confidence
    labels' drawn boxes overlap (text extents from the renderer)."""
    n = 15000
    pos = np.linspace(0.0, 150.0, n)
    data = np.random.default_rng(1).normal(0, 1, (n, 64)).astype(np.float32)
    gpr = GprBlock.build(
        data, GprHeader(dt_ns=0.1, antenna_hz=1.5e9), seq=np.arange(n),
        host_time_s=pos / 0.5, position_m=pos,
    )  # fmt: skip
    rng = np.random.default_rng(2)
    xs = np.sort(rng.uniform(0.5, 149.5, 92))
    alarms = [{"position_m": float(x), "confidence": float(c)}
              for x, c in zip(xs, rng.uniform(0.1, 1.0, 92), strict=True)]  # fmt: skip
    coverage = [{"start_m": 40.0, "end_m": 43.0, "status": "not_covered", "missing": ["gpr"]}]
    rg = Radargram(gpr=gpr, source="long.h5", alarms=alarms, coverage=coverage,
                   track={"position_m": pos, "p_mine": np.zeros(n)})  # fmt: skip
    figs = radargram_figures(rg)
    gpr_axes = [ax for f in figs for ax in _gpr_axes(f)]
    assert len(gpr_axes) == 13 and len(figs) == 5  # 150 m / 12 m -> 13 panels, 3 a page
    drawn = 0
    for fig in figs:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        for ax in _gpr_axes(fig):
            boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_color() == "magenta"]
            drawn += len(boxes)
            for b1, b2 in itertools.combinations(boxes, 2):
                assert not b1.overlaps(b2)
        legend = [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else []
        if any(a.get_xlim()[0] < 43 and a.get_xlim()[1] > 40 for a in _gpr_axes(fig)):
            assert any(s.startswith("not covered") for s in legend)
    assert drawn == 92  # every alarm keeps its confidence label
