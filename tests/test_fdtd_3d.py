"""Full-wave scenes in 3-D (``fdtd.mode: 3d``): the gprMax text against the target library,
the geometry gprMax builds from it, one tiny run end to end, and the 2-D text unchanged.

The 3-D model adds z (across the track) to the 2-D plane: ``cross_track_m`` of soil plus
the PML on both sides, the antennas on the centre line, each object its body (a mine a
vertical cylinder, a rod a cylinder along its axis, a blob a sphere) ``y_m`` off the centre.
The gprMax tests are skipped without the ``fdtd`` extra (CI does not install it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import hilbert

from _gprmax_geometry import material_grid
from detect.sim.fdtd.run import _solver_text, scene_hash
from detect.sim.fdtd.scene_to_gprmax import (
    AIR_GAP_FRAC,
    WALL_M,
    layout,
    scan_truth,
    scene_input,
    solver_cost,
    target_solids,
)
from detect.sim.fdtd.scenes import fixture_jobs, validation_jobs
from detect.sim.fdtd.settings import FdtdConfigError, FdtdSettings, fdtd_settings_from
from detect.sim.scene import PlacedTarget, canonical_scene, place
from detect.sim.targets import LIBRARY

C0_M_NS = 0.299792458
S3 = FdtdSettings(mode="3d")

# sha256 over the per-scene sha256 of the 2-D input texts, recorded before 3-D was built
TEXT_DIGESTS_2D = {
    "validation": "d7c479b43810f0dd079cc6e54746fa61bf8047ba4e06bd40305194bcdba9bb93",
    "validation_layer_3mm": "778af77238739ee3be621210cabe433b8a29a2293f19550eb30c7fe5d9af5da5",
    "validation_homogeneous_layer": (
        "c9ad453c62e2e8402ca2d558c7f77fe408e8dff41057773fd0aa5c2f625fe580"
    ),
    "fixture": "08a5b1aa5d05e90d665a199f89f02cb01c02ac7b099be83511a84ce462ee00a9",
}
# the cache folder names (gprMax 4.0.1) of the fixture and of the first validation scenes
CACHE_NAMES_2D = {
    "pmn_moist_sand": "3b39301c0fd919e2ac2b",
    "empty_moist_sand": "b59867934b6b4e7aedd7",
    "free_space": "9d4065b2abf358a1b834",
    "fw0000_pmn_wet_sand": "d656e0f203925132f6af",
    "fw0003_shrapnel_wet_clay": "9e05537dacae721eaf56",
    "fw0004_nail_wet_sand": "e915d1a99f9524dbac09",
}


def _digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()


def test_2d_input_text_and_cache_names_are_unchanged() -> None:
    groups = {
        "validation": validation_jobs(FdtdSettings(), 6),
        "validation_layer_3mm": validation_jobs(FdtdSettings(dx_m=0.003, moisture_layer_m=0.1), 6),
        "validation_homogeneous_layer": validation_jobs(
            FdtdSettings(soil_model="homogeneous", moisture_layer_m=0.1), 6
        ),
        "fixture": list(fixture_jobs().values()),
    }
    for name, jobs in groups.items():
        assert _digest([j.text for j in jobs]) == TEXT_DIGESTS_2D[name], name
    jobs = {j.name: j for js in (groups["fixture"], groups["validation"]) for j in js}
    for name, folder in CACHE_NAMES_2D.items():
        assert scene_hash(_solver_text(jobs[name]), "4.0.1") == folder, name
    # the 3-D settings field leaves 2-D text alone
    scene = canonical_scene([place("pmn", 0.27, 0.05)], "loam", length_m=0.546, seed=3)
    assert scene_input(scene, FdtdSettings(cross_track_m=0.9), 0.0) == scene_input(
        scene, FdtdSettings(), 0.0
    )


def test_3d_settings_and_their_errors() -> None:
    from detect.config import ConfigError, compose

    assert fdtd_settings_from({"mode": "3d", "cross_track_m": 0.2}).cross_track_m == 0.2
    for values, match in (
        ({"mode": "4d"}, r"fdtd.mode = '4d': must be 2d or 3d"),
        ({"mode": "3d", "cross_track_m": 0}, r"fdtd.cross_track_m = 0.0: must be > 0 m"),
        ({"mode": "3d", "dx_m": 0.01, "centre_hz": 3e9}, r"cells per wavelength"),
    ):
        with pytest.raises(FdtdConfigError, match=match) as e:
            fdtd_settings_from(values)
        assert "\n" not in str(e.value)
    cfg = compose(["fdtd.mode=3d", "fdtd.cross_track_m=0.25"])
    assert fdtd_settings_from(cfg.fdtd) == FdtdSettings(mode="3d", cross_track_m=0.25)
    with pytest.raises(ConfigError, match=r"fdtd\.cross_track_m"):
        compose(["fdtd.cross_track_m=0"])


def _cmds(text: str, name: str) -> list[list[str]]:
    return [ln.split()[1:] for ln in text.splitlines() if ln.startswith(f"#{name}:")]


def _nums(args: list[str]) -> np.ndarray:
    return np.array([float(a) for a in args if a[0].isdigit() or a[0] == "-"])


def _scene_text(*targets: PlacedTarget, s: FdtdSettings = S3) -> str:
    scene = canonical_scene(list(targets), "loam", length_m=s.scan_length_m, seed=11)
    return scene_input(scene, s, 0.0)


def test_3d_domain_has_a_z_extent_with_pml_and_the_antennas_on_its_centre() -> None:
    text = _scene_text()
    lay, dx, p = layout(S3), S3.dx_m, S3.pml_cells
    (domain,) = _cmds(text, "domain")
    nx_m, ny_m, nz_m = _nums(domain)
    expect = [lay.nx * dx, lay.ny * dx, S3.cross_track_m + 2 * p * dx]
    assert [nx_m, ny_m, nz_m] == pytest.approx(expect)
    assert _cmds(text, "pml_cells") == [[str(p)] * 6]
    (dipole,) = _cmds(text, "hertzian_dipole")
    (rx,) = _cmds(text, "rx")
    assert dipole[0] == "z" and float(dipole[3]) == pytest.approx(nz_m / 2)
    assert float(rx[2]) == pytest.approx(nz_m / 2) and float(rx[1]) == float(dipole[2])
    assert float(rx[0]) - float(dipole[1]) == pytest.approx(S3.antenna_offset_m)
    # the soil fills the whole z extent (the PML included) and its surface is rough in x and z
    (fractal,) = _cmds(text, "fractal_box")
    assert list(_nums(fractal)[:6]) == pytest.approx([0, 0, 0, nx_m, lay.surface_m, nz_m])
    (rough,) = _cmds(text, "add_surface_roughness")
    assert list(_nums(rough)[:6]) == pytest.approx([0, lay.surface_m, 0, nx_m, lay.surface_m, nz_m])
    homog = _scene_text(s=replace(S3, soil_model="homogeneous"))
    assert list(_nums(_cmds(homog, "box")[0])) == pytest.approx(
        [0, 0, 0, nx_m, lay.surface_m, nz_m]
    )


def test_a_pmn_is_a_vertical_cylinder_of_the_library_size_at_its_place() -> None:
    k = LIBRARY["pmn"]
    depth, y_off = 0.05, 0.02
    text = _scene_text(place("pmn", 0.25, depth, y_m=y_off))
    lay = layout(S3)
    x, z, top = lay.x0_m + 0.25, lay.line_z_m + y_off, lay.surface_m - depth
    case, fill, gap = (_nums(c) for c in _cmds(text, "cylinder"))
    # case: from the bottom to the top along y, the library's radius
    assert list(case[:6]) == pytest.approx([x, top - k.height_m, z, x, top, z])
    assert case[6] == pytest.approx(k.diameter_m / 2)
    assert _cmds(text, "cylinder")[0][-1] == "eps3p2_sig0"
    # fill inside the 3 mm wall, the air gap under the top
    assert list(fill) == pytest.approx(
        [x, top - k.height_m + WALL_M, z, x, top - WALL_M, z, k.diameter_m / 2 - WALL_M]
    )
    assert gap[4] == pytest.approx(top - WALL_M)
    assert gap[4] - gap[1] == pytest.approx(AIR_GAP_FRAC * k.height_m)
    assert gap[6] < fill[6]
    # the striker: a metal cube inside the body, on its axis
    (metal,) = [_nums(b) for b in _cmds(text, "box") if b[-1] == "pec"]
    lo, hi = metal[:3], metal[3:]
    assert np.all(hi > lo) and lo[0] < x < hi[0] and lo[2] < z < hi[2]
    assert top - k.height_m < lo[1] and hi[1] < top


def test_a_rod_runs_along_its_own_axis() -> None:
    axis = (0.6, -0.7, 0.3)  # along track, across, up
    t = place("root", 0.25, 0.04, axis=axis)
    (cyl,) = [_nums(c) for c in _cmds(_scene_text(t), "cylinder")]
    p1, p2, r = cyl[:3], cyl[3:6], cyl[6]
    d = p2 - p1
    assert np.linalg.norm(d) == pytest.approx(LIBRARY["root"].height_m, abs=1e-5)
    u = np.array([axis[0], axis[2], axis[1]]) / np.linalg.norm(axis)  # gprMax x, y, z
    assert abs(float(d @ u)) / np.linalg.norm(d) == pytest.approx(1.0, abs=1e-6)
    assert r == pytest.approx(LIBRARY["root"].diameter_m / 2)
    # its highest point (the rim of the upper face) at the depth to top
    lay = layout(S3)
    highest = max(p1[1], p2[1]) + r * math.sqrt(1 - u[1] ** 2)
    assert highest == pytest.approx(lay.surface_m - 0.04, abs=1e-5)
    assert (p1 + p2)[2] / 2 == pytest.approx(lay.line_z_m, abs=1e-5)
    # a wire thinner than a cell is one cell in radius
    (wire,) = _cmds(_scene_text(place("wire", 0.25, 0.04, axis=(1, 0, 0))), "cylinder")
    assert float(wire[6]) == S3.dx_m


def test_a_blob_is_a_sphere_with_its_top_at_the_depth() -> None:
    k = LIBRARY["rock"]
    (sphere,) = [_nums(c) for c in _cmds(_scene_text(place("rock", 0.25, 0.06)), "sphere")]
    lay = layout(S3)
    assert sphere[3] == pytest.approx(0.5 * math.sqrt(k.diameter_m * k.height_m), abs=1e-6)
    assert sphere[1] + sphere[3] == pytest.approx(lay.surface_m - 0.06, abs=1e-5)
    assert (sphere[0], sphere[2]) == (pytest.approx(lay.x0_m + 0.25), pytest.approx(lay.line_z_m))


def test_every_library_kind_has_a_3d_body_with_its_top_at_the_depth() -> None:
    for key, k in LIBRARY.items():
        solids = target_solids(place(key, 0.3, 0.05), 0.3, 0.2, 0.25, 0.002)
        assert solids, key
        assert solids[0].bounds()[1][1] == pytest.approx(0.2, abs=1e-9), key
        assert {"rod": "cylinder", "blob": "sphere", "box": "box", "disc": "cylinder"}[
            k.shape
        ] == solids[0].kind, key
        mats = {sol.material for sol in solids}
        assert ("pec" in mats) == (
            k.eps_body is None or (k.cls.endswith("mine") and k.metal_mass_g > 0)
        ), key


def test_an_object_off_the_line_stays_whole_and_one_outside_the_domain_is_dropped() -> None:
    far = place("pmn", 0.25, 0.05, y_m=0.08)  # beyond its radius: not in the 2-D plane
    out = place("pmn", 0.35, 0.05, y_m=0.5, id="T1")  # beyond the 3-D domain
    scene = canonical_scene([far, out], "loam", length_m=S3.scan_length_m, seed=11)
    cyl = _nums(_cmds(scene_input(scene, S3, 0.0), "cylinder")[0])
    assert cyl[2] == pytest.approx(layout(S3).line_z_m + 0.08)
    assert cyl[6] == pytest.approx(LIBRARY["pmn"].diameter_m / 2)
    (row,) = scan_truth(scene, S3, 0.0)
    assert row["id"] == "T0" and row["y_m"] == 0.08 and row["x_m"] == pytest.approx(0.25)
    assert scan_truth(scene, FdtdSettings(), 0.0) == []


def test_3d_validation_set_holds_every_object_and_an_object_below_the_soil_is_one_line() -> None:
    jobs = validation_jobs(S3, 12)
    for j in jobs:
        assert len(j.truth) == (j.info["kind"] != "empty"), j.name
        assert "#sphere:" in j.text or "#cylinder:" in j.text or j.info["kind"] == "empty"
    deep = canonical_scene([place("tm62m", 0.27, 0.1)], "loam", length_m=0.546)
    with pytest.raises(ValueError, match=r"reaches below the soil model") as e:
        scene_input(deep, replace(S3, soil_depth_m=0.1), 0.0)
    assert "\n" not in str(e.value)


def test_solver_cost_counts_cells_and_courant_steps() -> None:
    c2, c3 = solver_cost(FdtdSettings()), solver_cost(S3)
    lay = layout(S3)
    assert c3["cells"] == lay.nx * lay.ny * lay.nz and lay.nz == 170
    dt_ns = S3.dx_m / (C0_M_NS * math.sqrt(3))
    assert c3["steps"] == math.ceil(8.0 / dt_ns) + 1
    assert c3["steps"] / c2["steps"] == pytest.approx(math.sqrt(1.5), rel=1e-3)
    assert 150 < c3["cell_steps"] / c2["cell_steps"] < 250


# --- gprMax itself (skipped without the fdtd extra) -----------------------------------------

#: a small 3-D scene: 5 mm cells, 1 GHz (4 cells per wavelength at 3 fc in eps 25)
SMALL = FdtdSettings(
    mode="3d", dx_m=0.005, centre_hz=1e9, n_traces=3, trace_step_m=0.02, margin_m=0.03,
    soil_depth_m=0.12, air_m=0.02, cross_track_m=0.16, pml_cells=8, time_window_ns=3.0,
    antenna_height_m=0.06, antenna_offset_m=0.05, n_materials=5,
)  # fmt: skip


def test_gprmax_builds_the_3d_mine_and_rod_where_the_text_puts_them(tmp_path: Path) -> None:
    s, dx = SMALL, SMALL.dx_m
    mine = place("pmn", 0.02, 0.03, y_m=0.02)
    nail = place("nail", 0.0, 0.02, y_m=-0.04, axis=(1.0, 1.0, 0.3), id="T1")
    scene = canonical_scene([mine, nail], "loam", length_m=s.scan_length_m, seed=3)
    text = scene_input(scene, s, 0.0, geometry_view="geo")
    grid, ids = material_grid(tmp_path, text)
    lay = layout(s)
    assert grid.shape == (lay.nz, lay.ny, lay.nx)
    k = LIBRARY["pmn"]
    body = np.isin(grid, [ids.index(n) for n in ("eps3p2_sig0", "eps2p9_sig0")])
    zs, ys, xs = np.nonzero(body)
    # centre y_m off the scan line in z, under trace position 0.02 in x
    assert (zs.min() + zs.max() + 1) / 2 * dx == pytest.approx(lay.line_z_m + 0.02, abs=dx)
    assert (xs.min() + xs.max() + 1) / 2 * dx == pytest.approx(lay.x0_m + 0.02, abs=dx)
    # diameter across and along the track, height, top 3 cm under the surface
    assert (zs.max() + 1 - zs.min()) * dx == pytest.approx(k.diameter_m, abs=2 * dx)
    assert (xs.max() + 1 - xs.min()) * dx == pytest.approx(k.diameter_m, abs=2 * dx)
    assert (ys.max() + 1 - ys.min()) * dx == pytest.approx(k.height_m, abs=dx)
    assert lay.surface_m - (ys.max() + 1) * dx == pytest.approx(0.03, abs=dx)
    # a round footprint: the corners of its bounding square are soil, not case
    corner = grid[zs.min(), ys.min() + 2, xs.min()]
    assert ids[corner].startswith("|")
    # fill, air gap and striker on the axis, inside the case
    zc, xc = (zs.min() + zs.max() + 1) // 2, (xs.min() + xs.max() + 1) // 2
    names = {ids[i] for i in grid[zc, ys.min() : ys.max() + 1, xc]}
    assert {"eps2p9_sig0", "free_space", "pec"} <= names
    # the nail (the last cylinder): metal along its whole axis
    nail_cyl = _nums(_cmds(text, "cylinder")[-1])
    p1, p2 = nail_cyl[:3], nail_cyl[3:6]
    for f in np.linspace(0, 1, 9):
        i, j, kz = ((p1 + f * (p2 - p1)) / dx).astype(int)
        assert ids[grid[kz, j, i]] == "pec", f


def _pick_ns(data: np.ndarray, dt_ns: float) -> np.ndarray:
    return np.argmax(np.abs(hilbert(np.asarray(data, float), axis=-1)), axis=-1) * dt_ns


def test_a_tiny_3d_scene_runs_end_to_end_and_the_ground_echo_is_the_image_sources(
    tmp_path: Path,
) -> None:
    """Flat eps-9 soil, antennas 6 cm up and 5 cm apart (5-12-13: the image source lies 13 cm
    from the receiver). The receiver is in the dipole's near field (k r ~ 1-3), so an
    arrival is not at r/c; but over a flat interface the reflected wave is the free-space
    wave at the image distance times the reflection coefficient: same time, opposite
    polarity, |Gamma| ~ 0.53 (TE Fresnel at 23 degrees, eps 9). gprMax runs three times
    (about 10 s CPU): the antennas in free space, at 13 cm apart, and over the soil."""
    pytest.importorskip("gprMax")
    from detect.io.session import SessionReader
    from detect.sim.fdtd.run import run_scene
    from detect.sim.fdtd.scenes import job_for

    s = replace(SMALL, soil_model="homogeneous", soil_depth_m=0.08, cross_track_m=0.08)
    scene = canonical_scene([], "moist_sand", length_m=s.scan_length_m, seed=1)
    one = replace(s, n_traces=1)
    jobs = {
        "air": job_for(scene, one, "air", with_soil=False),
        "image": job_for(scene, replace(one, antenna_offset_m=0.13), "image", with_soil=False),
        "soil": job_for(scene, s, "soil", with_targets=False),
    }
    traces = {}
    for name, job in jobs.items():
        folder = Path(run_scene(job, tmp_path)["folder"])
        assert (folder / "bscan_truth.csv").is_file()
        with SessionReader(folder / "session.h5") as r:
            block = r.gpr()
            assert block is not None and r.truth() == []
            traces[name] = np.asarray(block.data, float)
            dt = block.header.dt_ns
    assert traces["soil"].shape[0] == 3 and dt == pytest.approx(0.0193, abs=1e-4)
    echo = traces["soil"] - traces["air"][0]
    image = traces["image"][0]
    two_cells_air = 2 * 2 * s.dx_m / C0_M_NS
    np.testing.assert_allclose(_pick_ns(echo, dt), _pick_ns(image, dt), atol=two_cells_air)
    for trace in echo:  # the image's wavelet, inverted
        assert np.corrcoef(trace, image)[0, 1] < -0.95
    eps, sin2 = 9.0, (0.025 / 0.065) ** 2
    cos_i = math.sqrt(1 - sin2)
    gamma = abs((cos_i - math.sqrt(eps - sin2)) / (cos_i + math.sqrt(eps - sin2)))
    ratio = np.abs(hilbert(echo, axis=-1)).max(axis=1) / np.abs(hilbert(image)).max()
    np.testing.assert_allclose(ratio, gamma, rtol=0.2)
