"""Headers that lie: a time window, sample interval, spacing, trace rate or antenna
frequency that contradicts the data or another field gives one warning naming the field
and what was used instead; nothing is silently mis-scaled.

Most cases are copies of the real files (copied to tmp_path) with one field patched; the
expected values are computed here from the bytes on disk, not taken from the readers."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import real_file
from detect.engine.items import file_items
from detect.io.dzt import write_dzt
from detect.io.formats import read_gpr

#: DZT header: rhf_sps at byte 10, rhf_spm at 14, rhf_range at 26 (float32)
_SPS, _SPM, _RANGE = 10, 14, 26
#: DT1 trace record: 25 float32 + 28-byte comment, then int16 samples; value 1 = position,
#: value 6 = sample interval (ps) on pE PRO
_DT1_HEADER = 128


def _copy(rel: str, folder: Path, *companions: str) -> Path:
    src = real_file(rel)
    for suffix in companions:
        shutil.copy(src.with_suffix(suffix), folder / (src.stem + suffix))
    return Path(shutil.copy(src, folder / src.name))


def _patch_f32(path: Path, offset: int, value: float) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, offset, value)
    path.write_bytes(bytes(raw))


def _patch_text(path: Path, key: str, value: str, sep: str) -> None:
    lines = path.read_bytes().decode("latin-1").split("\n")
    hits = [i for i, line in enumerate(lines) if line.split(sep)[0].strip() == key]
    assert len(hits) == 1, key
    lines[hits[0]] = f"{key}{sep}{value}\r"
    path.write_bytes("\n".join(lines).encode("latin-1"))


def _one(warnings: list[str], *words: str) -> str:
    hits = [w for w in warnings if all(x in w for x in words)]
    assert len(hits) == 1, (words, warnings)
    assert "\n" not in hits[0]
    return hits[0]


# --------------------------------------------------------------------------- DZT


def test_dzt_antenna_above_the_sampling_nyquist_is_dropped(tmp_path: Path) -> None:
    f = _copy("dzt/gprpy/FILE____032.DZT", tmp_path)  # 400 MHz antenna, 512 samples
    _patch_f32(f, _RANGE, 1000.0)  # dt 1.95 ns: Nyquist 256 MHz, below the antenna
    g = read_gpr(f)
    assert g.dt_ns == pytest.approx(1000.0 / 512)  # the window is kept ...
    assert g.antenna_mhz is None and g.block.header.antenna_hz is None  # ... the antenna not
    w = _one(g.warnings, "antenna frequency 400 MHz", "Nyquist")
    assert "256 MHz" in w and "left unknown" in w
    assert read_gpr(real_file("dzt/gprpy/FILE____032.DZT")).antenna_mhz == 400.0


def test_dzt_spacing_too_fine_for_its_scan_rate_is_not_used(tmp_path: Path) -> None:
    f = _copy("dzt/gprpy/FILE____032.DZT", tmp_path)  # rhf_sps 100
    _patch_f32(f, _SPM, 1e6)  # 1 um per scan: at 100 scans/s at most 0.1 mm/s
    g = read_gpr(f)
    assert g.trace_spacing_m is None
    _one(g.warnings, "rhf_spm = 1e+06", "top speed of 0.0001 m/s", "not taken from the header")
    _, info, spacing = file_items(f, None, None)
    assert spacing == pytest.approx(0.5 / 100)  # walking speed x the trace interval
    assert "walking speed" in info["trace_spacing_from"]


def test_dzt_time_triggered_waypoints_with_an_impossible_speed_are_not_used(
    tmp_path: Path,
) -> None:
    raw = (np.random.default_rng(0).normal(0, 300, (200, 1, 128)) + 32768).astype(np.uint16)
    f = tmp_path / "t.DZT"
    write_dzt(f, raw, range_ns=20.0, sps=100.0, spm=0.0, antenna="1GHz")
    wp = "".join(
        f"<WayPt><scan>{s}</scan><localCoords>{x},0</localCoords></WayPt>" for s, x in
        ((0, 0.0), (199, 2000.0))
    )  # fmt: skip
    (tmp_path / "t.DZX").write_text(f"<DZX><horizontalUnit>m</horizontalUnit>{wp}</DZX>")
    g = read_gpr(f)  # 10 m per scan at 100 scans/s = 1000 m/s
    assert g.trace_spacing_m is None and np.isnan(g.block.position_m).all()
    _one(g.warnings, "waypoints of t.DZX", "1e+03 m/s", "not taken from the header")
    _, _, spacing = file_items(f, None, None)
    assert spacing == pytest.approx(0.005)


def test_dzt_impossible_scan_rate_is_not_used(tmp_path: Path) -> None:
    f = _copy("dzt/tu1208/400MHz-Limestone_2_rev.dzt", tmp_path)  # time-triggered
    _patch_f32(f, _SPS, 1e9)
    g = read_gpr(f)
    assert g.trace_rate_hz is None
    _one(g.warnings, "rhf_sps = 1e+09", "not used")
    _, info, spacing = file_items(f, None, None)
    assert spacing == 0.02 and info["trace_spacing_from"].startswith("default trace spacing")


def test_dzt_antenna_table_kept_unknown_strings_left_unknown() -> None:
    expected = {  # antenna string -> MHz (None: not guessed)
        "dzt/gprpy/FILE____032.DZT": 400.0,  # '400MHz'
        "dzt/impdar/test_gssi.DZT": 200.0,  # model 5106
        "dzt/charisma/Lab_specimen_data.DZT": 1500.0,  # '1.5/1.6GHz'
        "dzt/iet-gpr/File____001.DZT": None,  # 'SS MINI #454'
        "dzt/tu1208/400MHz-Limestone_2_rev.dzt": None,  # '5013', not a model we know
    }
    for rel, mhz in expected.items():
        g = read_gpr(real_file(rel))
        assert g.antenna_mhz == mhz, rel
        assert g.block.header.antenna_hz == (mhz * 1e6 if mhz else None)


# --------------------------------------------------------------------------- DT1


def _dt1_records(path: Path, points: int) -> np.ndarray:
    dt = np.dtype([("h", "<f4", (25,)), ("c", "S28"), ("d", "<i2", (points,))])
    return np.fromfile(path, dtype=dt)


def test_dt1_step_size_that_contradicts_the_trace_positions(tmp_path: Path) -> None:
    f = _copy("dt1/rgpr_flagogna/XLINE000.DT1", tmp_path, ".HD")
    step_m = float(np.median(np.diff(_dt1_records(f, 425)["h"][:, 1])))
    assert step_m == pytest.approx(0.25)
    _patch_text(f.with_suffix(".HD"), "STEP SIZE USED", " 1.000000 ", "=")
    g = read_gpr(f)
    assert g.trace_spacing_m == pytest.approx(step_m)
    assert g.spacing_from == "trace header positions (median step)"
    _one(g.warnings, "STEP SIZE USED = 1 m", "trace header positions used")


def test_dt1_positions_all_equal_use_the_step_size(tmp_path: Path) -> None:
    f = _copy("dt1/rgpr_flagogna/XLINE000.DT1", tmp_path, ".HD")
    rec = _dt1_records(f, 425)
    rec["h"][:, 1] = 0.0  # no odometer: every trace at 0 m
    rec.tofile(f)
    g = read_gpr(f)
    np.testing.assert_allclose(g.block.position_m, np.arange(len(rec)) * 0.25)
    _one(g.warnings, "trace header positions (value 1) unusable", "all are 0",
         "STEP SIZE USED = 0.25 m")  # fmt: skip


def test_dt1_trace_sample_interval_that_contradicts_the_hd_names_the_trace(
    tmp_path: Path,
) -> None:
    f = _copy("dt1/rgpr_flagogna/XLINE000.DT1", tmp_path, ".HD")
    rec = _dt1_records(f, 425)
    assert np.all(rec["h"][:, 6] == 800.0)  # 800 ps = 340 ns / 425 points
    rec["h"][5, 6] = 400.0
    rec.tofile(f)
    g = read_gpr(f)
    assert g.dt_ns == pytest.approx(340.0 / 425)
    _one(g.warnings, "value 6", "1 of 198 traces", "trace 5, 400", "HD sample interval is used")


def test_dt1_nominal_frequency_above_nyquist_is_dropped(tmp_path: Path) -> None:
    f = _copy("dt1/rgpr_flagogna/XLINE000.DT1", tmp_path, ".HD")
    _patch_text(f.with_suffix(".HD"), "NOMINAL FREQUENCY", " 1000.000000 ", "=")
    g = read_gpr(f)  # dt 0.8 ns: Nyquist 625 MHz
    assert g.antenna_mhz is None and g.dt_ns == pytest.approx(0.8)
    _one(g.warnings, "antenna frequency 1000 MHz", "625 MHz")


# --------------------------------------------------------------------------- RD3


def test_rd3_distance_interval_impossible_at_its_time_interval(tmp_path: Path) -> None:
    f = _copy("rd3/impdar/ten_col.rd3", tmp_path, ".rad", ".cor")
    _patch_text(f.with_suffix(".rad"), "DISTANCE INTERVAL", " 10.000000", ":")
    g = read_gpr(f)  # time-triggered every 0.1 s: 10 m a trace is 100 m/s
    assert g.trace_spacing_m is None
    _one(g.warnings, "DISTANCE INTERVAL = 10 m", "100 m/s", "not taken from the header")
    _, _, spacing = file_items(f, None, None)
    assert spacing == pytest.approx(0.05)
    _patch_text(f.with_suffix(".rad"), "DISTANCE INTERVAL", " 0.040000", ":")  # 0.4 m/s
    g = read_gpr(f)
    assert g.trace_spacing_m == pytest.approx(0.04) and "DISTANCE INTERVAL" in str(g.spacing_from)


def test_rd3_antenna_above_the_sampling_nyquist_is_dropped(tmp_path: Path) -> None:
    f = _copy("rd3/impdar/ten_col.rd3", tmp_path, ".rad")
    _patch_text(f.with_suffix(".rad"), "ANTENNAS", "2000_shielded", ":")
    g = read_gpr(f)  # sampling 2426 MHz: Nyquist 1213 MHz
    assert g.antenna_mhz is None and g.dt_ns == pytest.approx(1000 / 2426.187744)
    _one(g.warnings, "antenna frequency 2000 MHz", "1213 MHz")
    assert read_gpr(real_file("rd3/impdar/ten_col.rd3")).antenna_mhz == 500.0
