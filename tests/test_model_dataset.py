"""Lane -> DSP chain -> aligner -> grid -> windows -> labels, checked against geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detect.blocks import CLASSES, GprBlock, GprHeader, MdBlock, MdHeader
from detect.io.truth import write_truth_csv
from detect.model.dataset import WindowSet, lane_windows, subsample_background
from detect.sim import lane as sim_lane
from detect.sim import task
from detect.windows import WindowSpec

SPEC = WindowSpec(length_m=0.32, grid_m=0.02, gpr_samples=8, emi_channels=2)
EMI_OFFSET_M = 0.3


def _ramp_lane(step_m: float = 0.004) -> tuple[GprBlock, MdBlock]:
    """Every trace/reading carries its own head position as data."""
    head = np.arange(0.0, 6.0, step_m)
    gpr = GprBlock.build(np.repeat(head[:, None], 16, axis=1), GprHeader(dt_ns=0.1),
                         host_time_s=head, position_m=head)  # fmt: skip
    emi = MdBlock.build(np.repeat(head[:, None], 2, axis=1),
                        MdHeader(sample_rate_hz=100.0, channel_names=("a", "b")),
                        host_time_s=head, position_m=head)  # fmt: skip
    return gpr, emi


def test_windows_sit_where_each_sensor_was() -> None:
    gpr, emi = _ramp_lane()
    truth = [{"id": "m1", "class": "ap_mine", "x_m": 3.0, "depth_m": 0.05, "metal_mass_g": 0.3},
             {"id": "c1", "class": "metal_clutter", "x_m": 3.4, "metal_mass_g": 5.0}]  # fmt: skip
    ws = lane_windows(gpr, emi, truth, {"gpr": [], "emi": []},
                      {"gpr": 0.0, "emi": EMI_OFFSET_M}, SPEC)  # fmt: skip
    assert ws.gpr is not None and ws.emi is not None
    centre_gpr = ws.gpr[:, SPEC.half, 0].astype(np.float64)  # head position of the GPR cell
    centre_emi = ws.emi[:, SPEC.half, 0].astype(np.float64)  # head position of the EMI cell
    # the EMI coil is EMI_OFFSET_M ahead of the head: its ground cell was under the coil
    # when the head reference was EMI_OFFSET_M behind
    np.testing.assert_allclose(centre_emi, centre_gpr - EMI_OFFSET_M, atol=0.003)
    # the GPR centre cell: its position is the window centre (float16 storage: ~1e-3 rel)
    mine = ws.cls == CLASSES.index("ap_mine")
    assert mine.sum() == 11  # 3.0 +- 0.10 m at 2 cm
    assert np.all(np.abs(centre_gpr[mine] - 3.0) <= 0.10 + 0.01)
    assert ws.metal_g[mine] == pytest.approx(0.3)
    # the guard band (0.10 .. 0.25 m from a target) is left out
    bg = ws.cls == 0
    d = np.minimum(np.abs(centre_gpr[bg] - 3.0), np.abs(centre_gpr[bg] - 3.4))
    assert d.min() > 0.25 - 0.01
    # clutter within 0.5 m of the mine
    assert ws.clutter_near[mine].all()


def test_stretch_moves_data_and_labels_together() -> None:
    gpr, _ = _ramp_lane()
    truth = [{"id": "m1", "class": "at_mine", "x_m": 3.0, "depth_m": 0.1}]
    ws = lane_windows(gpr, None, truth, {"gpr": []}, {"gpr": 0.0}, SPEC, stretch=1.05)
    centre = ws.gpr[ws.cls == CLASSES.index("at_mine"), SPEC.half, 0].astype(np.float64)
    # the traces recorded at head 3.0 m now sit at 3.15 m, where the label went
    assert abs(np.median(centre) - 3.0) < 0.02


def test_subsample_keeps_every_target_window() -> None:
    gpr, emi = _ramp_lane()
    truth = [{"id": "m", "class": "ap_mine", "x_m": 2.0}]
    ws = lane_windows(gpr, emi, truth, {}, {"emi": EMI_OFFSET_M}, SPEC)
    sub = subsample_background(ws, 0.2, seed=0)
    assert sub.is_mine.sum() == ws.is_mine.sum()
    assert 0.1 < (sub.cls == 0).sum() / (ws.cls == 0).sum() < 0.3


def test_window_set_save_load_roundtrip(tmp_path) -> None:
    gpr, emi = _ramp_lane(0.02)
    ws = lane_windows(gpr, emi, [], {}, {"emi": EMI_OFFSET_M}, SPEC, soil="loam")
    ws.save(tmp_path / "w.npz")
    back = WindowSet.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(back.gpr, ws.gpr)
    assert list(back.soil[:2]) == ["loam", "loam"]


def test_simulated_metal_target_peaks_at_its_truth_position() -> None:
    """Through the default DSP chain and the simulator's head geometry, the strongest EMI
    window of a lane with one big metal object is centred on that object's truth x."""
    from detect.config import compose, to_dict
    from detect.model.workflow import offsets_from_cfg

    cfg = compose([])
    sim = {"n_targets_min": 1, "n_targets_max": 1, "mix": {"mortar60": 1.0}, "soils": ["dry_sand"]}
    lane = sim_lane.simulate_lane(3, sim, lane_index=0)
    spec = WindowSpec()
    dsp = to_dict(cfg.dsp)
    ws = lane_windows(lane.gpr, lane.emi, lane.truth, dsp, offsets_from_cfg(cfg), spec)
    mine = np.flatnonzero(ws.cls == CLASSES.index("uxo"))
    # the windows labelled uxo are those centred within the halo of the truth x, one grid
    # cell apart and in track order, so their middle is the truth x (to half a cell)
    assert mine.size >= 9 and np.all(np.diff(mine) == 1)
    early = np.abs(ws.emi[:, spec.half, :3]).sum(axis=1)
    assert early[mine].mean() > 10 * np.median(early[ws.cls == 0])
    # where the EMI response peaks, measured from the truth x along the window grid
    offset_m = (int(np.argmax(early)) - 0.5 * (mine[0] + mine[-1])) * spec.grid_m
    assert abs(offset_m) <= 0.03  # a wrong EMI lead (0.3 m) or sign would put it far off


def test_labelled_recording_gives_the_same_windows_as_the_lane(tmp_path) -> None:
    """A simulated lane written as a session file (HDF5) and read back trains identically."""
    from detect.model.dataset import session_paths, session_windows
    from detect.sim.settings import settings_from

    s = settings_from({"n_targets_min": 2, "n_targets_max": 3, "lane_length_m": 4.0})
    lane = sim_lane.simulate_lane(11, s, lane_index=0)
    task.write_lane(tmp_path / "lane.h5", lane, {}, s)
    dsp = {"gpr": [{"step": "dewow", "window_ns": 2.0}], "emi": []}
    spec = WindowSpec()
    offsets = {"gpr": 0.0, "emi": s.head.emi_offset_m}
    direct = lane_windows(lane.gpr, lane.emi, lane.truth, dsp, offsets, spec)
    (path,) = session_paths([tmp_path])
    # the recording carries its own EMI offset: a wrong default must not matter
    recorded = session_windows(path, dsp, spec, {"gpr": 0.0, "emi": 0.0})
    np.testing.assert_array_equal(recorded.cls, direct.cls)
    np.testing.assert_allclose(recorded.emi, direct.emi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        recorded.gpr.astype(np.float32), direct.gpr.astype(np.float32), rtol=1e-3, atol=1e-4
    )


def _unlabelled_recording(path: Path, seed: int, sim: dict[str, Any]) -> tuple[Any, Any]:
    """A simulated lane recorded as a session without its truth table (a field session);
    the lane and its simulator settings."""
    from detect.io.session import SessionWriter
    from detect.sim.settings import settings_from

    s = settings_from(sim)
    lane = sim_lane.simulate_lane(seed, s, lane_index=0)
    with SessionWriter(path, config={}, info={"emi_offset_m": s.head.emi_offset_m}) as w:
        w.write(lane.gpr)
        w.write(lane.emi)
    return lane, s


def test_field_recording_with_a_truth_csv_beside_it_trains(tmp_path) -> None:
    """A recording without a truth table (a field session) is labelled from <stem>_truth.csv."""
    from detect.model.dataset import session_windows

    path = tmp_path / "field.h5"
    sim = {"n_targets_min": 2, "n_targets_max": 3, "lane_length_m": 4.0}
    lane, s = _unlabelled_recording(path, 12, sim)
    dsp = {"gpr": [{"step": "dewow", "window_ns": 2.0}], "emi": []}
    spec = WindowSpec()
    with pytest.raises(ValueError, match=r"field_truth\.csv"):
        session_windows(path, dsp, spec, {"gpr": 0.0, "emi": 0.0})
    write_truth_csv(tmp_path / "field_truth.csv", lane.truth)  # as a survey team writes it
    offsets = {"gpr": 0.0, "emi": s.head.emi_offset_m}
    direct = lane_windows(lane.gpr, lane.emi, lane.truth, dsp, offsets, spec)
    recorded = session_windows(path, dsp, spec, {"gpr": 0.0, "emi": 0.0})
    np.testing.assert_array_equal(recorded.cls, direct.cls)
    np.testing.assert_allclose(recorded.depth_m, direct.depth_m, rtol=1e-6)
    assert recorded.is_mine.sum() == direct.is_mine.sum() > 0


def test_a_truth_csv_with_no_rows_labels_mine_free_ground(tmp_path) -> None:
    """An empty truth table beside a recording (an empty-soil full-wave scene, a cleared
    strip) is a label: every window is background. Without any table it cannot train."""
    from detect.model.dataset import session_windows

    path = tmp_path / "clear.h5"
    _unlabelled_recording(path, 13, {"n_targets_min": 0, "n_targets_max": 0, "lane_length_m": 3.0})
    dsp = {"gpr": [{"step": "dewow", "window_ns": 2.0}], "emi": []}
    with pytest.raises(ValueError, match=r"clear_truth\.csv"):
        session_windows(path, dsp, WindowSpec(), {"gpr": 0.0, "emi": 0.0})
    write_truth_csv(tmp_path / "clear_truth.csv", [])
    ws = session_windows(path, dsp, WindowSpec(), {"gpr": 0.0, "emi": 0.0})
    assert len(ws) > 10
    assert not ws.is_mine.any()


def test_domain_randomised_lanes_keep_their_truth_and_only_training_gets_them() -> None:
    """A domain-randomised lane has the same objects and labels (only the radar's picture
    of them changes: echo gains and phases, spreading, a rougher surface); the validation,
    calibration and held-out test lanes are the plain simulator."""
    from dataclasses import replace

    import detect
    from detect.model.dataset import simulate_recipe_lane
    from detect.model.workflow import base_recipe, data_plan, held_out_recipes

    cfg = detect.compose(["train.lanes=4", "train.val_lanes=2", "train.cal_lanes=2"])
    base = base_recipe(cfg)
    plain = simulate_recipe_lane(replace(base, seed=3, lane_id=1, domain_jitter=0.0))
    rand = simulate_recipe_lane(replace(base, seed=3, lane_id=1, domain_jitter=1.0))
    assert rand.truth == plain.truth
    assert rand.lane.scene.surface_m.values.std() > plain.lane.scene.surface_m.values.std()
    assert not np.allclose(rand.lane.gpr.data, plain.lane.gpr.data)
    plan = data_plan(cfg)
    assert all(r.domain_jitter == 0.5 for r in plan.train)
    assert all(r.domain_jitter == 0.0 for r in plan.val + plan.cal)
    assert all(r.domain_jitter == 0.0 for r in held_out_recipes(cfg, 4))


def _windows(n: int, emi: bool, value: float = 1.0) -> WindowSet:
    rng = np.random.default_rng(n)
    return WindowSet(
        gpr=rng.standard_normal((n, 32, 16)).astype(np.float16),
        emi=(value * rng.standard_normal((n, 32, 8))).astype(np.float32) if emi else None,
        cls=np.zeros(n, np.int64),
        depth_m=np.full(n, np.nan, np.float32),
        lane=np.zeros(n, np.int64),
        metal_g=np.full(n, np.nan, np.float32),
        clutter_near=np.zeros(n, bool),
        soil=np.array(["loam"] * n, dtype=object),
    )


def test_joining_a_gpr_only_recording_keeps_the_emi_of_the_other_windows() -> None:
    """Simulated lanes (GPR + EMI) joined with a GPR-only recording: the lanes keep their
    EMI, the recording's windows have none (NaN, absent), and the EMI input scale comes
    from the windows that have it."""
    from detect.model.dataset import sensors_present
    from detect.model.train import fit_input_scales

    lanes, rec = _windows(50, emi=True, value=0.01), _windows(20, emi=False)
    both = WindowSet.concat([lanes, rec])
    assert both.emi is not None and both.emi.shape == (70, 32, 8)
    np.testing.assert_array_equal(both.emi[:50], lanes.emi)
    have = sensors_present(both)
    assert have["emi"][:50].all() and not have["emi"][50:].any()
    assert have["gpr"].all()
    _, e_both = fit_input_scales(both)
    _, e_lanes = fit_input_scales(lanes)
    np.testing.assert_allclose(e_both, e_lanes, rtol=0.2)
    assert np.all(e_both < 0.1)  # 3 x median |x| of values ~0.01, not the fallback 1.0
