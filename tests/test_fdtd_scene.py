"""Full-wave scenes: settings, the gprMax input we write, and the geometry gprMax builds.

The geometry test runs gprMax with ``--geometry-only`` (about a second; skipped without the
``fdtd`` extra) and checks the built material grid against the scene: the mine's case,
fill, air gap and metal part where the target library puts them, soil under the surface,
air above it and around the antennas.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detect import conf_schema as S
from detect.sim.fdtd.scene_to_gprmax import layout, scene_input, target_shapes
from detect.sim.fdtd.scenes import CLUTTER, THREATS, fixture_jobs, validation_jobs
from detect.sim.fdtd.settings import FdtdConfigError, FdtdSettings, fdtd_settings_from
from detect.sim.fdtd.soils import peplinski_eps, texture_of, water_for
from detect.sim.scene import canonical_scene, place
from detect.sim.soil import SOILS
from detect.sim.targets import LIBRARY


def test_settings_defaults_are_the_config_schema_and_yaml() -> None:
    from detect.config import compose

    assert dataclasses.asdict(FdtdSettings()) == dataclasses.asdict(S.FdtdConf())
    cfg = compose(["sim.engine=gprmax"])
    assert cfg.sim.engine == "gprmax"
    assert fdtd_settings_from(cfg.fdtd) == FdtdSettings()


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"dx_mm": 2}, r"unknown key 'fdtd.dx_mm'"),
        ({"mode": "3d"}, r"fdtd.mode = '3d': only 2d"),
        ({"scheduler": "slurm"}, r"fdtd.scheduler = 'slurm'"),
        ({"dx_m": 0.01, "centre_hz": 3e9}, r"cells per wavelength"),
        ({"dx_m": None}, r"fdtd.dx_m must not be null"),
        ({"n_traces": "many"}, r"fdtd.n_traces = 'many': wrong type"),
    ],
)
def test_bad_settings_are_one_line(values: dict[str, object], match: str) -> None:
    with pytest.raises(FdtdConfigError, match=match) as e:
        fdtd_settings_from(values)
    assert "\n" not in str(e.value)


def test_config_refuses_a_bad_fdtd_value_in_one_line() -> None:
    from detect.config import ConfigError, compose

    with pytest.raises(ConfigError, match=r"fdtd\.scheduler") as e:
        compose(["fdtd.scheduler=slurm"])
    assert "\n" not in str(e.value)


def test_peplinski_water_gives_each_soils_permittivity() -> None:
    for soil in SOILS.values():
        m = water_for(soil)
        assert peplinski_eps(texture_of(soil), m) == pytest.approx(soil.eps_r, rel=1e-6)
        # more water, higher permittivity (the mixing model is monotonic)
        assert peplinski_eps(texture_of(soil), 1.2 * m) > soil.eps_r
    # dry sand of bulk density 1.6: eps ~2.5-3 (Peplinski 1995 fig. 1 starts there)
    assert 2.4 < peplinski_eps(texture_of(SOILS["dry_sand"]), 0.0) < 3.2


def test_layout_is_whole_cells_and_the_scan_has_the_asked_length() -> None:
    s = FdtdSettings()
    lay = layout(s)
    assert lay.step_cells == 7 and s.scan_length_m == pytest.approx(0.546)
    assert (lay.antenna_cell_y - lay.surface_cell) * s.dx_m == pytest.approx(0.05)
    assert lay.rx_offset_cells * s.dx_m == pytest.approx(0.04)
    text = scene_input(canonical_scene([], "loam"), s, 0.0)
    assert f"#domain: {lay.nx * 0.002:.6g} {lay.ny * 0.002:.6g} 0.002" in text
    assert "#src_steps: 0.014 0 0" in text and "#waveform: ricker 1 1.5e+09 pulse" in text


def test_every_library_kind_has_a_cross_section_inside_its_size() -> None:
    for key, k in LIBRARY.items():
        t = place(key, 0.3, 0.05)
        shapes = target_shapes(t, 0.3, 0.25, 0.002)
        assert shapes, key
        outer = shapes[0]
        top = 0.25 - 0.05
        if outer.kind == "box":
            assert outer.d == pytest.approx(top), key
            assert outer.c - outer.a <= max(k.size_m, 0.002) + 1e-9, key
        else:
            assert outer.b + outer.c == pytest.approx(top, abs=0.003), key
        mats = {sh.material for sh in shapes}
        assert ("pec" in mats) == (
            k.eps_body is None or (k.cls.endswith("mine") and k.metal_mass_g > 0)
        ), key


def test_an_object_off_the_scan_line_enters_with_its_chord() -> None:
    t = place("pmn", 0.3, 0.05, y_m=0.04)
    r = 0.5 * LIBRARY["pmn"].diameter_m
    outer = target_shapes(t, 0.3, 0.25, 0.002)[0]
    assert outer.c - outer.a == pytest.approx(2 * math.sqrt(r * r - 0.04**2))
    assert target_shapes(place("pmn", 0.3, 0.05, y_m=0.06), 0.3, 0.25, 0.002) == []


def test_validation_set_covers_every_kind_and_is_seeded() -> None:
    s = FdtdSettings()
    jobs = validation_jobs(s, 48)
    kinds = [j.info["kind"] for j in jobs]
    assert set(THREATS) <= set(kinds) and set(CLUTTER) <= set(kinds)
    assert kinds.count("empty") == 8 and sum(k in THREATS for k in kinds) == 24
    assert len({j.text for j in jobs}) == 48
    assert [j.text for j in validation_jobs(s, 48)] == [j.text for j in jobs]
    for j in jobs:
        assert len(j.truth) == (j.info["kind"] != "empty"), j.name  # every object in the plane
        for row in j.truth:
            assert 0.02 <= float(row["depth_m"]) <= 0.15
            assert 0 < float(row["x_m"]) < s.scan_length_m


def test_twin_differs_only_by_the_objects() -> None:
    jobs = fixture_jobs()
    mine, empty = jobs["pmn_moist_sand"].text, jobs["empty_moist_sand"].text
    extra = [ln for ln in mine.splitlines() if ln not in empty.splitlines()]
    assert extra and all(ln.startswith(("#box:", "#material:", "#title:")) for ln in extra)
    (row,) = jobs["pmn_moist_sand"].truth
    assert row["class"] == "ap_mine" and float(row["x_m"]) == pytest.approx(0.273)


def _geometry(tmp_path: Path, text: str) -> tuple[np.ndarray, list[str]]:
    pytest.importorskip("gprMax")
    import h5py

    (tmp_path / "g.in").write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "gprMax", "g.in", "--geometry-only", "--hide-progress-bars"],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )  # fmt: skip
    with h5py.File(tmp_path / "geo.vtkhdf") as f:
        grid = f["VTKHDF/CellData/Material"][0]
        ids = [
            x.decode() if isinstance(x, bytes) else str(x)
            for x in f["VTKHDF/FieldData/material_ids"][:]
        ]
    return grid, ids


def test_gprmax_builds_the_mine_where_the_scene_puts_it(tmp_path: Path) -> None:
    s = FdtdSettings()
    job = fixture_jobs(s)["pmn_moist_sand"]
    scene = canonical_scene([place("pmn", 0.273, 0.05)], "moist_sand", length_m=0.546, seed=7)
    text = scene_input(scene, s, 0.0, title="pmn_moist_sand", geometry_view="geo")
    assert text.startswith(job.text) and text[len(job.text) :].startswith("#geometry_view:")
    grid, ids = _geometry(tmp_path, text)
    lay = layout(s)
    assert grid.shape == (lay.ny, lay.nx)
    dx = s.dx_m
    k = LIBRARY["pmn"]
    cx = int(lay.x0_m / dx + 0.273 / dx)  # column of the mine centre
    col = grid[:, cx]
    name = [ids[i] for i in col]
    # top of the case 5 cm under the mean surface (cells counted from the bottom)
    case_rows = [i for i, n in enumerate(name) if n == "eps3p2_sig0"]
    top_row = max(case_rows)
    assert (lay.surface_cell - (top_row + 1)) * dx == pytest.approx(0.05, abs=dx)
    assert (top_row + 1 - min(case_rows)) * dx == pytest.approx(k.height_m, abs=dx)
    # fill, air gap under the top and the metal striker inside the body
    assert "eps2p9_sig0" in name and "free_space" in name[min(case_rows) : top_row]
    assert "pec" in name[min(case_rows) : top_row]
    # case width = the PMN's diameter along track
    row = grid[min(case_rows) + 1]
    body = [i for i in range(lay.nx) if ids[row[i]] in ("eps3p2_sig0", "eps2p9_sig0", "pec")]
    assert (max(body) + 1 - min(body)) * dx == pytest.approx(k.diameter_m, abs=2 * dx)
    # soil (Peplinski bins) far below the surface, air at the antennas
    assert ids[grid[lay.surface_cell - 40, 5 + s.pml_cells]].startswith("|")
    assert ids[grid[lay.antenna_cell_y, lay.tx0_cell]] == "free_space"


def test_an_object_deeper_than_the_soil_model_is_one_line() -> None:
    s = FdtdSettings(soil_depth_m=0.1)
    scene = canonical_scene([place("tm62m", 0.27, 0.1)], "loam", length_m=0.546)
    with pytest.raises(ValueError, match=r"reaches below the soil model; raise fdtd.soil_depth_m"):
        scene_input(scene, s, 0.0)
