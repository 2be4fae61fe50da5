"""Full-wave scenes: settings, the gprMax input we write, and the geometry gprMax builds.

The geometry test runs gprMax with ``--geometry-only`` (about a second; skipped without the
``fdtd`` extra) and checks the built material grid against the scene: the mine's case,
fill, air gap and metal part where the target library puts them, soil under the surface,
air above it and around the antennas.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from _gprmax_geometry import material_grid
from detect import conf_schema as S
from detect.sim.fdtd.scene_to_gprmax import layout, scene_input, target_shapes
from detect.sim.fdtd.scenes import (
    CLUTTER,
    THREATS,
    fixture_jobs,
    training_jobs,
    training_scenes,
    validation_jobs,
)
from detect.sim.fdtd.settings import FdtdConfigError, FdtdSettings, fdtd_settings_from
from detect.sim.fdtd.soils import (
    MIX_EPS_R,
    mixed_soil,
    peplinski_eps,
    peplinski_sigma_factor,
    texture_of,
    water_for,
)
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
        ({"mode": "4d"}, r"fdtd.mode = '4d': must be 2d or 3d"),
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


def test_gprmax_builds_the_mine_where_the_scene_puts_it(tmp_path: Path) -> None:
    s = FdtdSettings()
    job = fixture_jobs(s)["pmn_moist_sand"]
    scene = canonical_scene([place("pmn", 0.273, 0.05)], "moist_sand", length_m=0.546, seed=7)
    text = scene_input(scene, s, 0.0, title="pmn_moist_sand", geometry_view="geo")
    assert text.startswith(job.text) and text[len(job.text) :].startswith("#geometry_view:")
    grid3, ids = material_grid(tmp_path, text)
    grid = grid3[0]
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


def test_training_set_varies_the_radar_and_keeps_every_object_in_the_plane() -> None:
    s = FdtdSettings(dx_m=0.003, seed=610000)
    jobs = training_jobs(s, 100)
    assert [j.text for j in training_jobs(s, 100)] == [j.text for j in jobs]
    assert len({j.text for j in jobs}) == 100
    assert not {j.text for j in jobs} & {j.text for j in validation_jobs(FdtdSettings(), 48)}
    kinds = [k for j in jobs for k in str(j.info["kind"]).split("+")]
    assert set(THREATS) <= set(kinds) and set(CLUTTER) <= set(kinds)
    assert kinds.count("empty") == 20
    fc = np.array([j.settings.centre_hz for j in jobs])
    height = np.array([j.settings.antenna_height_m for j in jobs])
    assert fc.min() >= 1.0e9 and fc.max() <= 2.0e9 and np.ptp(fc) > 0.7e9
    assert height.min() >= 0.02 and height.max() <= 0.10 and np.ptp(height) > 0.05
    assert 20 < sum(j.settings.moisture_layer_m is not None for j in jobs) < 50
    pairs = 0
    for j in jobs:
        n_objects = 0 if j.info["kind"] == "empty" else len(str(j.info["kind"]).split("+"))
        assert len(j.truth) == n_objects, j.name  # every object inside the modelled plane
        assert f"#waveform: ricker 1 {j.settings.centre_hz:g}" in j.text
        xs = sorted(float(r["x_m"]) for r in j.truth)
        for row in j.truth:
            assert 0.01 <= float(row["depth_m"]) <= 0.18
            assert 0 < float(row["x_m"]) < j.settings.scan_length_m
        if len(xs) == 2:
            pairs += 1
            classes = {str(r["class"]).endswith("clutter") for r in j.truth}
            assert classes == {True, False}, j.name  # one threat, one clutter object
            assert xs[1] - xs[0] > 0.2  # each one's windows see the other beyond the halo
    assert 20 < pairs < 60


def test_a_test_set_with_another_mix_keeps_each_seeds_radar_and_soil() -> None:
    """``mix``/``pair_share`` change what a scene holds (e.g. more clutter-only negatives for
    a test set), never the radar and soil its seed draws."""
    s = FdtdSettings(dx_m=0.003, seed=660000)
    base = training_scenes(s, 40)
    rich = training_scenes(s, 40, mix=(1, 2, 1), pair_share=0.0)
    for (_, a, _, sa), (_, b, _, sb) in zip(base, rich, strict=True):
        assert sa == sb and a.soil == b.soil and a.seed == b.seed
    kinds = [str(info["kind"]) for _, _, info, _ in rich]
    groups = [
        "empty" if k == "empty" else "clutter" if LIBRARY[k].cls.endswith("clutter") else "threat"
        for k in kinds
    ]
    assert "+" not in "".join(kinds)  # no pairs at pair_share 0
    assert groups == ["threat", "clutter", "clutter", "empty"] * 10
    with pytest.raises(ValueError, match="mix"):
        training_scenes(s, 4, mix=(0, 0, 0))
    with pytest.raises(ValueError, match="pair_share"):
        training_scenes(s, 4, pair_share=1.5)


def test_mixed_soils_are_none_of_the_named_ones_and_their_name_is_their_texture() -> None:
    rng = np.random.default_rng(4)
    eps = []
    for i in range(300):
        soil = mixed_soil(rng, SOILS[list(SOILS)[i % len(SOILS)]])
        assert soil.name not in SOILS
        tex = texture_of(soil)
        assert 0.2 <= tex.sand <= 0.95 and 0.02 <= tex.clay <= 1 - tex.sand + 1e-9
        assert 1.3 <= tex.bulk_density_g_cm3 <= 1.8
        assert peplinski_sigma_factor(tex) >= 0.01  # gprMax refuses a negative conductivity
        assert MIX_EPS_R[0] <= soil.eps_r <= MIX_EPS_R[1] + 0.01
        # the water fraction gprMax is given reproduces the drawn permittivity (Peplinski)
        assert peplinski_eps(tex, water_for(soil)) == pytest.approx(soil.eps_r, rel=1e-6)
        assert soil.layer_eps_r > soil.eps_r
        eps.append(soil.eps_r)
    assert np.percentile(eps, 10) < 5 and np.percentile(eps, 90) > 14  # dry sand to wet clay


def test_training_radars_stay_meshable_in_their_wettest_soil() -> None:
    """gprMax refuses a scene with too few cells per wavelength in its wettest material;
    the training set lowers the centre frequency there (and only there)."""
    for dx in (0.003, 0.002):
        for _, scene, _, si in training_scenes(FdtdSettings(dx_m=dx, seed=610000), 100):
            wettest = max(scene.soil.eps_r, scene.soil.layer_eps_r if si.moisture_layer_m else 0.0)
            assert si.centre_hz * math.sqrt(wettest) * dx <= 9.8e9 * 0.003 * (1 + 1e-9)
            assert 1e9 * min(1.0, 9.8 * 0.003 / dx / math.sqrt(wettest)) <= si.centre_hz


def test_training_soils_are_never_the_validation_sets() -> None:
    val = {j.info["soil"] for j in validation_jobs(FdtdSettings(), 48)}
    train = [j.info["soil"] for j in training_jobs(FdtdSettings(dx_m=0.003, seed=610000), 100)]
    assert val <= set(SOILS) and not val & set(train)
    assert len(set(train)) == 100
