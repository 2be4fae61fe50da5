"""The full-wave farm: tiny scenes on local processes and on a 2-worker Dask LocalCluster
give identical outputs; a finished scene is never recomputed; ``detect simulate
sim.engine=gprmax`` exports session files that read back with their truth.

Tiny scenes (4 mm cells, 1 GHz, 2.5 ns, 3 traces) take about a second each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gprMax")

from detect.sim.fdtd.farm import run_jobs
from detect.sim.fdtd.scenes import validation_jobs
from detect.sim.fdtd.settings import FdtdSettings

TINY = {
    "dx_m": 0.004,
    "centre_hz": 1.0e9,
    "time_window_ns": 2.5,
    "n_traces": 3,
    "trace_step_m": 0.02,
    "margin_m": 0.02,
    "soil_depth_m": 0.2,
    "air_m": 0.02,
    "pml_cells": 8,
    "n_materials": 5,
    "output_dt_ns": 0.02,
    "workers": 2,
    "n_scenes": 2,
}
OVERRIDES = [f"fdtd.{k}={v}" for k, v in TINY.items()]


def _ez(folder: Path) -> np.ndarray:
    import h5py

    with h5py.File(folder / "bscan.h5") as f:
        return np.asarray(f["rxs/rx1/Ez"][()])


@pytest.fixture(scope="module")
def processes_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[FdtdSettings, Path, list]:
    s = FdtdSettings(**TINY, scheduler="local-processes")
    cache = tmp_path_factory.mktemp("cache_proc")
    report = run_jobs(validation_jobs(s), s, cache, progress=None)
    return s, cache, report.results


def test_dask_local_cluster_and_processes_give_identical_scenes(
    processes_run: tuple[FdtdSettings, Path, list], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    s, _, proc = processes_run
    lines: list[str] = []
    s_dask = dataclasses.replace(s, scheduler="dask-local")
    report = run_jobs(validation_jobs(s_dask), s_dask, tmp_path, progress=lines.append)
    assert report.workers == 2 and len(report.results) == 2
    assert any(ln.startswith("[1/2]") for ln in lines) and any("[2/2]" in ln for ln in lines)
    assert report.ascans_per_core_s is not None and report.ascans_per_core_s > 0
    for a, b in zip(proc, report.results, strict=True):
        assert Path(a["folder"]).name == Path(b["folder"]).name  # same hash: same scene
        ea, eb = _ez(Path(a["folder"])), _ez(Path(b["folder"]))
        assert ea.shape == (b["n_samples"], 3) and np.abs(ea).max() > 0
        np.testing.assert_array_equal(ea, eb)


def test_a_finished_scene_is_never_recomputed(
    processes_run: tuple[FdtdSettings, Path, list],
) -> None:
    s, cache, first = processes_run
    stamps = [(Path(r["folder"]) / "bscan.h5").stat().st_mtime_ns for r in first]
    again = run_jobs(validation_jobs(s), s, cache, progress=None)
    assert all(r["cached"] for r in again.results) and again.computed == []
    assert [(Path(r["folder"]) / "bscan.h5").stat().st_mtime_ns for r in again.results] == stamps
    # a changed scene (other seed) is a new folder, not the old result
    moved = dataclasses.replace(s, seed=s.seed + 100)
    assert {Path(r["folder"]).name for r in first}.isdisjoint(
        {
            Path(r["folder"]).name
            for r in run_jobs(validation_jobs(moved, 1), moved, cache, None).results
        }
    )


def test_detect_simulate_gprmax_exports_sessions_with_truth(
    processes_run: tuple[FdtdSettings, Path, list], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from detect.app.simulate import simulate_task
    from detect.config import compose
    from detect.io.formats import read_gpr
    from detect.io.truth import read_truth_csv

    _, cache, first = processes_run
    out = tmp_path / "out"
    cfg = compose(["sim.engine=gprmax", f"output.dir={out}", f"fdtd.cache_dir={cache}", *OVERRIDES])
    assert simulate_task(cfg) == 0
    text = capsys.readouterr().out
    assert "2 scenes (0 computed, 2 cached)" in text
    rows = (out / "scenes.csv").read_text().splitlines()
    assert len(rows) == 3
    for res in first:
        name = res["name"]
        g = read_gpr(out / f"{name}.h5")
        assert g.format == "session" and g.n_traces == 3
        assert g.dt_ns == pytest.approx(res["dt_ns"]) and g.trace_spacing_m == pytest.approx(0.02)
        np.testing.assert_allclose(g.block.data, _ez(Path(res["folder"])).T)
        truth = read_truth_csv(out / f"{name}_truth.csv")
        assert [t["class"] for t in truth] in (["ap_mine"], ["at_mine"], ["uxo"])


def test_a_failing_scene_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    """gprMax refuses one scene (a material with negative conductivity, as a Peplinski soil
    too sandy and light once gave): it is listed, the other scene is computed and exported."""
    from detect.sim.fdtd.farm import export

    s = FdtdSettings(**TINY, scheduler="local-processes")
    good, other = validation_jobs(s)
    bad_text = other.text.replace("#waveform:", "#material: 4 -0.5 1 0 broken\n#waveform:", 1)
    bad = dataclasses.replace(other, text=bad_text, name="broken_scene")
    lines: list[str] = []
    report = run_jobs([bad, good], s, tmp_path / "cache", progress=lines.append)
    assert [r["name"] for r in report.results] == [good.name]
    ((name, why),) = report.failed
    assert name == "broken_scene" and "\n" not in why and why
    assert any("broken_scene: FAILED" in ln for ln in lines)
    assert "1 FAILED (broken_scene)" in report.summary()
    export(report, [bad, good], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.h5")) == [f"{good.name}.h5"]
