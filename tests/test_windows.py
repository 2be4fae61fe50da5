"""Windows: geometry, batch cutting against a plain loop, time resampling, labels."""

from __future__ import annotations

import numpy as np
import pytest

from detect.blocks import CLASSES
from detect.windows import (
    WindowError,
    WindowSpec,
    centre_indices,
    cut,
    cut_emi,
    cut_gpr,
    label_windows,
    resample_time,
)

SPEC = WindowSpec(length_m=0.64, grid_m=0.02, gpr_samples=16, emi_channels=3)


def test_spec_geometry_and_validation() -> None:
    assert SPEC.n_pos == 32 and SPEC.half == 16
    assert WindowSpec(length_m=0.1, grid_m=0.02).n_pos == 5
    with pytest.raises(WindowError, match="grid_m"):
        WindowSpec(grid_m=0.0)
    with pytest.raises(WindowError, match="length_m"):
        WindowSpec(length_m=0.01, grid_m=0.02)
    with pytest.raises(WindowError, match="halo_m"):
        WindowSpec(halo_m=0.3, guard_m=0.2)


def test_cut_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    grid = rng.standard_normal((100, 3)).astype(np.float32)
    centres = centre_indices(100, SPEC, stride=3)
    assert centres[0] == SPEC.half and centres[-1] + SPEC.n_pos - SPEC.half <= 100
    got = cut(grid, centres, SPEC)
    want = np.stack([grid[c - SPEC.half : c - SPEC.half + SPEC.n_pos] for c in centres])
    np.testing.assert_array_equal(got, want)
    assert got.flags["C_CONTIGUOUS"]
    # the centre row of each window is the centre grid position
    np.testing.assert_array_equal(got[:, SPEC.half], grid[centres])


def test_cut_refuses_windows_off_the_grid() -> None:
    grid = np.zeros((50, 3), dtype=np.float32)
    with pytest.raises(WindowError, match="centres must lie"):
        cut(grid, np.array([5]), SPEC)
    with pytest.raises(WindowError, match="centres must lie"):
        cut(grid, np.array([40]), SPEC)
    assert centre_indices(10, SPEC).size == 0
    with pytest.raises(WindowError, match=r"\(n_pos, 3\)"):
        cut_emi(np.zeros((50, 4)), np.array([20]), SPEC)


def test_resample_time_block_mean_and_linear() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    got = resample_time(x, 16)
    np.testing.assert_allclose(got, x.reshape(4, 16, 4).mean(axis=2), rtol=1e-6)
    # a linear ramp stays a ramp at the output sample centres for a non-integer ratio
    ramp = np.tile(np.arange(60, dtype=np.float32), (2, 1))
    out = resample_time(ramp, 16)
    centres = (np.arange(16) + 0.5) * 60 / 16 - 0.5
    np.testing.assert_allclose(out[0], centres, atol=1e-5)


def test_cut_gpr_resamples_traces_to_the_model_grid() -> None:
    grid = np.tile(np.arange(64, dtype=np.float32), (40, 1))
    w = cut_gpr(grid, np.array([20]), SPEC)
    assert w.shape == (1, 32, 16)
    np.testing.assert_allclose(w[0, 0], np.arange(16) * 4 + 1.5)


def test_labels_halo_threat_priority_and_guard() -> None:
    truth = [
        {"id": "m", "class": "ap_mine", "x_m": 1.00, "depth_m": 0.05},
        {"id": "c", "class": "metal_clutter", "x_m": 1.03, "depth_m": 0.02},
        {"id": "r", "class": "nonmetal_clutter", "x_m": 3.0, "depth_m": 0.1},
    ]
    centres = np.array([1.03, 1.09, 1.12, 2.0, 3.05, 3.2])
    lab = label_windows(centres, truth, halo_m=0.10, guard_m=0.25)
    names = [CLASSES[i] for i in lab.class_index]
    # at 1.03 the clutter is nearer, but a mine within the halo wins
    assert names == ["ap_mine", "ap_mine", "metal_clutter", "background",
                     "nonmetal_clutter", "background"]  # fmt: skip
    assert lab.target_id[0] == "m" and lab.depth_m[0] == pytest.approx(0.05)
    np.testing.assert_allclose(lab.offset_m[:2], [-0.03, -0.09], atol=1e-6)
    assert np.isnan(lab.depth_m[3])
    # 3.2 is 0.2 m from the rock: inside the guard band, so ambiguous; 2.0 is clear background
    assert lab.ambiguous.tolist() == [False, False, False, False, False, True]
    assert lab.is_mine.tolist() == [True, True, False, False, False, False]


def test_labels_reject_unknown_classes() -> None:
    with pytest.raises(WindowError, match="unknown class"):
        label_windows(np.array([0.0]), [{"class": "tank", "x_m": 0.0}], 0.1)


def test_labels_from_the_target_edge_follow_the_evaluation_halo() -> None:
    """A 0.30 m AT mine at 1.00 m and a 0.06 m AP mine at 3.00 m, halo 0.10 m from the edge:
    mine windows reach 0.25 m and 0.13 m from the centres; the guard band 0.20 m beyond the
    edge is ambiguous; without from_edge the halo is 0.10 m from the centre for both."""
    from detect.windows import label_windows

    truth = [
        {"id": "at", "class": "at_mine", "x_m": 1.0, "size_m": 0.30, "depth_m": 0.1},
        {"id": "ap", "class": "ap_mine", "x_m": 3.0, "size_m": "0.06", "depth_m": 0.05},
    ]
    c = np.round(np.arange(0, 401) * 0.01, 2)
    edge = label_windows(c, truth, 0.10, 0.20, from_edge=True)
    d_at, d_ap = np.abs(c - 1.0), np.abs(c - 3.0)
    expect_mine = (d_at <= 0.25 + 1e-9) | (d_ap <= 0.13 + 1e-9)
    np.testing.assert_array_equal(edge.is_mine, expect_mine)
    expect_amb = ~expect_mine & ((d_at <= 0.35 + 1e-9) | (d_ap <= 0.23 + 1e-9))
    np.testing.assert_array_equal(edge.ambiguous, expect_amb)
    centre = label_windows(c, truth, 0.10, 0.20)
    np.testing.assert_array_equal(centre.is_mine, (d_at <= 0.10 + 1e-9) | (d_ap <= 0.10 + 1e-9))
    no_size = [dict(t, size_m="") for t in truth]  # unknown size: the centre rule
    np.testing.assert_array_equal(
        label_windows(c, no_size, 0.10, from_edge=True).is_mine, centre.is_mine
    )
