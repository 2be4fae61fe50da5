"""Invariants of the core data types."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detect.blocks import (
    CLASSES,
    THREAT_CLASSES,
    Alarm,
    BlockError,
    FixQuality,
    GprBlock,
    GprHeader,
    GpsFix,
    MdBlock,
    MdHeader,
    SensorState,
)


def test_gpr_block_coerces_to_float32_and_fills_positions() -> None:
    data = np.arange(12, dtype=np.int16).reshape(3, 4)
    b = GprBlock.build(data, GprHeader(dt_ns=0.1), host_time_s=[0.0, 0.01, 0.02])
    assert b.data.dtype == np.float32
    assert b.n == 3 and b.n_samples == 4 and len(b) == 3
    assert np.all(np.isnan(b.position_m))
    np.testing.assert_array_equal(b.seq, [0, 1, 2])
    np.testing.assert_array_equal(b.data, data.astype(np.float32))


def test_gpr_time_axis_is_relative_to_time_zero() -> None:
    b = GprBlock.build(np.zeros((1, 5)), GprHeader(dt_ns=0.5, time_zero_ns=1.0))
    np.testing.assert_allclose(b.time_ns, [-1.0, -0.5, 0.0, 0.5, 1.0])


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_gpr_header_rejects_bad_sample_interval(bad: float) -> None:
    with pytest.raises(BlockError, match="dt_ns"):
        GprHeader(dt_ns=bad)


def test_per_trace_arrays_must_match_trace_count() -> None:
    with pytest.raises(BlockError, match=r"host_time_s has shape \(2,\), expected \(3,\)"):
        GprBlock.build(np.zeros((3, 4)), GprHeader(dt_ns=0.1), host_time_s=[0.0, 1.0])
    with pytest.raises(BlockError, match="2-D"):
        GprBlock.build(np.zeros(4), GprHeader(dt_ns=0.1))


def test_md_block_channels_must_match_header() -> None:
    hdr = MdHeader(sample_rate_hz=1000.0, channel_names=("g0", "g1"), gate_times_s=(1e-5, 1e-4))
    b = MdBlock.build(np.ones((5, 2)), hdr)
    assert b.data.shape == (5, 2) and b.header.n_channels == 2
    with pytest.raises(BlockError, match="3 columns, header says 2"):
        MdBlock.build(np.ones((5, 3)), hdr)
    with pytest.raises(BlockError, match="gate_times_s"):
        MdHeader(sample_rate_hz=1000.0, channel_names=("a", "b"), gate_times_s=(1e-5,))


def test_with_data_keeps_trace_identity() -> None:
    b = GprBlock.build(
        np.ones((2, 3)), GprHeader(dt_ns=0.1), seq=[7, 8], host_time_s=[1.0, 2.0], position_m=[0, 1]
    )
    c = b.with_data(np.zeros((2, 6)), dt_ns=0.05)
    np.testing.assert_array_equal(c.seq, [7, 8])
    np.testing.assert_array_equal(c.position_m, [0.0, 1.0])
    assert c.header.dt_ns == 0.05 and b.header.dt_ns == 0.1


def test_gps_fix_validates_coordinates() -> None:
    fix = GpsFix(host_time_s=0.0, lat_deg=45.0, lon_deg=15.0, quality=FixQuality.RTK_FIXED)
    assert fix.has_fix
    assert not GpsFix(host_time_s=0.0, lat_deg=None, lon_deg=None).has_fix
    with pytest.raises(BlockError, match="lat_deg"):
        GpsFix(host_time_s=0.0, lat_deg=91.0, lon_deg=0.0)
    with pytest.raises(BlockError, match="both"):
        GpsFix(host_time_s=0.0, lat_deg=1.0, lon_deg=None)


def test_alarm_invariants_and_json_shape() -> None:
    a = Alarm("a1", 2.5, 0.9, "ap_mine", {"gpr": 0.8, "emi": 0.95}, 0.05, 10.0, 45.0, 15.0, 0.02)
    d = a.to_dict()
    assert {"position_m", "confidence", "class", "depth_m", "sensors", "lat", "lon"} <= d.keys()
    assert d["class"] == "ap_mine" and d["sensors"]["emi"] == 0.95
    with pytest.raises(BlockError, match="confidence"):
        Alarm("a", 0.0, 1.5, "ap_mine", {}, None, 0.0)
    with pytest.raises(BlockError, match="class_name"):
        Alarm("a", 0.0, 0.5, "teapot", {}, None, 0.0)
    with pytest.raises(BlockError, match="position_m"):
        Alarm("a", math.nan, 0.5, "ap_mine", {}, None, 0.0)


def test_classes_and_states() -> None:
    assert CLASSES[0] == "background" and set(CLASSES) >= THREAT_CLASSES
    assert max(SensorState.OK, SensorState.FAULT, SensorState.DEGRADED) is SensorState.FAULT


def test_coalesce_merges_adjacent_blocks_of_one_stream_only() -> None:
    from detect.blocks import coalesce

    emi_h = MdHeader(sample_rate_hz=1000.0, channel_names=("g0",))
    gpr_h = GprHeader(dt_ns=0.1)
    e1 = MdBlock.build(np.ones((2, 1)), emi_h, seq=[0, 1], host_time_s=[0.0, 0.001])
    e2 = MdBlock.build(
        np.full((3, 1), 2.0), emi_h, seq=[2, 3, 4], host_time_s=[0.002, 0.003, 0.004]
    )
    g = GprBlock.build(np.zeros((1, 4)), gpr_h)
    fix = GpsFix(host_time_s=0.0, lat_deg=None, lon_deg=None)
    e3 = MdBlock.build(np.ones((1, 1)), emi_h, seq=[5], host_time_s=[0.005])
    out = coalesce([e1, e2, g, fix, e3])
    assert [type(o).__name__ for o in out] == ["MdBlock", "GprBlock", "GpsFix", "MdBlock"]
    np.testing.assert_array_equal(out[0].seq, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(out[0].data[:, 0], [1, 1, 2, 2, 2])
    other = MdBlock.build(np.ones((1, 1)), MdHeader(500.0, ("g0",)))
    assert len(coalesce([e1, other])) == 2  # a header change starts a new block
