"""The committed full-wave fixture (tests/data/fullwave): read by our gprMax reader with the
file's sampling, and its arrival times where ray physics puts them.

The fixture (``python scripts/fullwave_set.py --fixture tests/data/fullwave``): a PMN, top
5 cm under the mean surface, in moist sand (Peplinski, fractal, rough surface), its
empty-soil twin (same seeds) and the antennas alone in free space (one trace). Antennas
5 cm above the mean surface, 4 cm apart, 40 traces at 1.4 cm, 8 ns, 1.5 GHz Ricker.

Independent references: the FDTD time step from the cell size (2-D Courant limit), the
Ricker peak at sqrt(2)/fc, straight and refracted ray times at c and c/sqrt(eps_r). The
second test runs gprMax itself on flat homogeneous soil (skipped without the extra), where
the tolerances can be a cell or two.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.signal import hilbert

from detect.io.formats import read_gpr
from detect.io.truth import find_truth

FIX = Path(__file__).parent / "data" / "fullwave"
C0_M_NS = 0.299792458
FC_GHZ = 1.5
T0_NS = math.sqrt(2) / FC_GHZ  # a Ricker's peak
H_M, OFFSET_M, DEPTH_M, EPS = 0.05, 0.04, 0.05, 9.0  # the fixture's geometry, moist sand


def _pick_ns(data: np.ndarray, dt_ns: float) -> np.ndarray:
    """Time of the envelope maximum of each trace (last axis: time)."""
    return np.argmax(np.abs(hilbert(np.asarray(data, float), axis=-1)), axis=-1) * dt_ns


def _ray_ns(h_m: float, z_m: float, eps: float, offset_m: float) -> float:
    """Two-way time from a source to a receiver ``offset_m`` apart at height ``h_m``, via a
    point ``z_m`` under the surface midway (Snell by Fermat: least time over the crossing)."""
    x = np.linspace(0.0, offset_m / 2, 4001)
    one_way = np.hypot(offset_m / 2 - x, h_m) + math.sqrt(eps) * np.hypot(x, z_m)
    return float(2 * one_way.min() / C0_M_NS)


def test_reader_reads_the_fixture_with_the_files_sampling() -> None:
    path = FIX / "pmn_moist_sand.h5"
    g = read_gpr(path)
    assert g.format == "gprmax" and (g.n_traces, g.n_samples) == (40, 425)
    dx = 0.002
    dt_fdtd_ns = dx / (C0_M_NS * math.sqrt(2))  # 2-D Courant limit of 2 mm square cells
    with h5py.File(path) as f:
        assert float(f.attrs["detect_resampled_from_dt"]) * 1e9 == pytest.approx(
            dt_fdtd_ns, rel=1e-3
        )
        assert g.dt_ns == pytest.approx(float(f.attrs["dt"]) * 1e9, rel=1e-12)
    assert g.dt_ns == pytest.approx(4 * dt_fdtd_ns, rel=1e-3)
    assert (g.n_samples - 1) * g.dt_ns == pytest.approx(8.0, abs=g.dt_ns)  # the 8 ns window
    assert g.trace_spacing_m == pytest.approx(0.014)
    np.testing.assert_allclose(g.block.position_m, np.arange(40) * 0.014)
    assert g.block.header.antenna_hz == pytest.approx(FC_GHZ * 1e9)
    assert g.block.header.time_zero_ns == pytest.approx(T0_NS)
    (row,) = find_truth(path, None) or []
    assert row["class"] == "ap_mine" and float(row["x_m"]) == pytest.approx(0.273)
    assert float(row["depth_m"]) == DEPTH_M
    assert "#src_steps: 0.014 0 0" in (FIX / "pmn_moist_sand.in").read_text()
    assert find_truth(FIX / "empty_moist_sand.h5", None) == []


def test_fixture_arrivals_follow_ray_physics() -> None:
    mine, empty, air = (
        read_gpr(FIX / f"{n}.h5") for n in ("pmn_moist_sand", "empty_moist_sand", "free_space")
    )
    dt = mine.dt_ns
    direct = air.block.data[0]
    # direct wave: the Ricker peak plus the antenna separation at c, within a sample
    assert _pick_ns(direct, dt) == pytest.approx(T0_NS + OFFSET_M / C0_M_NS, abs=dt)
    # ground reflection (direct wave removed): the rough surface (rms 8 mm) scatters it by
    # +-0.1 ns; its median lies within one rms (0.053 ns) of the flat-surface time
    surface = _pick_ns(empty.block.data - direct, dt)
    assert np.median(surface) == pytest.approx(T0_NS + _ray_ns(H_M, 0, 1, OFFSET_M), abs=0.053)
    # the mine alone (twin subtracted): its strongest trace is the one over it
    diff = mine.block.data - empty.block.data
    env = np.abs(hilbert(diff.astype(float), axis=1))
    k = int(np.argmax(env.max(axis=1)))
    assert abs(k * mine.trace_spacing_m - 0.273) <= mine.trace_spacing_m
    assert env.max() > 20 * env[:3].max()  # nothing of it 0.25 m away
    # its top at 5 cm below the mean surface, timed from the local surface of that trace:
    # within 3 cells of depth (0.04 ns each in eps 9; the soil's heterogeneity sets this)
    h_local = math.sqrt(((surface[k] - T0_NS) * C0_M_NS / 2) ** 2 - (OFFSET_M / 2) ** 2)
    expect = T0_NS + _ray_ns(h_local, DEPTH_M + (H_M - h_local), EPS, OFFSET_M)
    assert _pick_ns(diff[k], dt) == pytest.approx(expect, abs=0.12)


def test_gprmax_timing_on_flat_homogeneous_soil(tmp_path: Path) -> None:
    """One trace over a PMN and over a TM-62M (metal body) in flat eps-9 soil: direct
    wave, ground reflection and the object's top within a cell or two of the ray times."""
    pytest.importorskip("gprMax")
    from detect.sim.fdtd.run import run_scene
    from detect.sim.fdtd.scenes import job_for
    from detect.sim.fdtd.settings import FdtdSettings
    from detect.sim.scene import canonical_scene, place

    s = FdtdSettings(
        soil_model="homogeneous", n_traces=1, time_window_ns=4.0, margin_m=0.2,
        soil_depth_m=0.22, air_m=0.03, session=False,
    )  # fmt: skip
    objs = {
        k: canonical_scene([place(k, 0.0, DEPTH_M)], "moist_sand", 0.0) for k in ("pmn", "tm62m")
    }
    jobs = {
        "air": job_for(objs["pmn"], s, "air", with_soil=False),
        "empty": job_for(objs["pmn"], s, "empty", with_targets=False),
        **{k: job_for(sc, s, k) for k, sc in objs.items()},
    }
    out = {}
    for name, job in jobs.items():
        res = run_scene(job, tmp_path)
        g = read_gpr(Path(res["folder"]) / "bscan.h5")
        out[name] = g.block.data[0].astype(float)
        dt = g.dt_ns
    assert _pick_ns(out["air"], dt) == pytest.approx(T0_NS + OFFSET_M / C0_M_NS, abs=dt)
    ground = T0_NS + _ray_ns(H_M, 0, 1, OFFSET_M)
    two_cells_air = 2 * 2 * 0.002 / C0_M_NS
    assert _pick_ns(out["empty"] - out["air"], dt) == pytest.approx(ground, abs=two_cells_air)
    top = T0_NS + _ray_ns(H_M, DEPTH_M, EPS, OFFSET_M)
    two_cells_soil = 2 * 2 * 0.002 * math.sqrt(EPS) / C0_M_NS
    for k in ("pmn", "tm62m"):
        assert _pick_ns(out[k] - out["empty"], dt) == pytest.approx(top, abs=two_cells_soil), k


def test_reader_takes_a_4x_ricker_sources_frequency_and_peak(tmp_path: Path) -> None:
    """A gprMax 4.x A-scan records its source: a Ricker of 2 GHz peaks at sqrt(2)/2 ns."""
    p = tmp_path / "a1.h5"
    with h5py.File(p, "w") as f:
        f.attrs["gprMax"] = "4.0.1"
        f.attrs["dt"] = 5e-12
        f.create_dataset("rxs/rx1/Ez", data=np.sin(np.arange(200) / 7.0))
        exc = f.create_group("srcs/src1/excitation")
        exc.attrs["WaveformType"] = "ricker"
        exc.attrs["WaveformFrequency"] = 2e9
    g = read_gpr(p)
    assert g.block.header.antenna_hz == 2e9
    assert g.block.header.time_zero_ns == pytest.approx(math.sqrt(2) / 2)
    assert not any("antenna frequency" in w for w in g.warnings)
