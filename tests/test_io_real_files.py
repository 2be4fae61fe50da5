"""Readers against the real instrument files: facts from their own headers, read here
independently (struct / HD text / .rad text), and sample values from raw offsets."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import real_file
from detect.io.formats import detect_format, read_gpr

DZT_FILES = {
    # file: (bits, nsamp, range_ns, header bytes, signal starts at sample)
    "dzt/gprpy/FILE____032.DZT": (16, 512, 48.0, 1024, 2),
    "dzt/impdar/test_gssi.DZT": (32, 2048, 2300.0, 131072, 2),
    "dzt/charisma/Lab_specimen_data.DZT": (16, 512, 8.0, 1024, 0),
    "dzt/iet-gpr/File____001.DZT": (32, 256, 10.0, 1024, 2),
    "dzt/tu1208/400MHz-Limestone_2_rev.dzt": (16, 512, 85.0, 1024, 2),
}


@pytest.mark.parametrize("rel", sorted(DZT_FILES))
def test_dzt_matches_header_fields_and_raw_words(rel: str) -> None:
    path = real_file(rel)
    bits, nsamp, range_ns, hdr_len, first = DZT_FILES[rel]
    head = path.read_bytes()[:128]
    assert struct.unpack_from("<H", head, 4)[0] == nsamp
    assert struct.unpack_from("<H", head, 6)[0] == bits
    assert struct.unpack_from("<f", head, 26)[0] == pytest.approx(range_ns)
    g = read_gpr(path)
    assert g.format == "dzt" and "DZT" in g.format_reason
    n_expected = (path.stat().st_size - hdr_len) // (nsamp * bits // 8)
    assert (g.n_traces, g.n_samples, g.n_channels) == (n_expected, nsamp, 1)
    assert g.dt_ns == pytest.approx(range_ns / nsamp)
    assert g.window_ns == pytest.approx(range_ns)
    # independent look at the words on disk: trace 7, sample 100
    dtype = {16: "<u2", 32: "<i4"}[bits]
    word = np.frombuffer(
        path.read_bytes(), dtype=dtype, count=1, offset=hdr_len + (7 * nsamp + 100) * bits // 8
    )[0]
    zero = 32768 if bits == 16 else 0
    assert g.block.data[7, 100] == pytest.approx(float(word) - zero)
    if first:
        assert any("samples 0-1" in w for w in g.warnings)
        np.testing.assert_array_equal(g.block.data[:, 0], g.block.data[:, 2])
    else:
        assert not any("samples 0-1" in w for w in g.warnings)


def test_dzt_epsr_zero_and_unknown_antenna_warn_not_crash() -> None:
    g = read_gpr(real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt"))
    assert any("epsr" in w for w in g.warnings)
    assert g.antenna_mhz is None and any("unknown antenna '5013'" in w for w in g.warnings)
    assert g.trace_spacing_m is None and np.all(np.isnan(g.block.position_m))
    assert g.trace_rate_hz == 15.0
    # mark words 59392 in sample 1 -> marks (the header says so, sample 1 is 32768 otherwise)
    raw = np.memmap(real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt"), "<u2", "r", offset=1024)
    marks = np.flatnonzero(raw.reshape(-1, 512)[:, 1] == 59392)
    np.testing.assert_array_equal(g.marks, marks)


def test_dzt_ss_mini_and_spacing_from_spm() -> None:
    g = read_gpr(real_file("dzt/iet-gpr/File____001.DZT"))
    assert g.antenna_mhz is None and any("SS MINI" in w for w in g.warnings)
    assert g.trace_spacing_m == pytest.approx(1 / 800.0)  # rhf_spm = 800 scans/m
    g = read_gpr(real_file("dzt/gprpy/FILE____032.DZT"))
    assert g.antenna_mhz == 400.0 and g.trace_spacing_m == pytest.approx(0.02)
    assert g.marks.tolist() == list(range(0, 1040, 100))  # README: marks every 100 traces


def test_dzt_sir4000_with_dzx_and_dzg_without_fix() -> None:
    g = read_gpr(real_file("dzt/impdar/test_gssi.DZT"))
    assert g.antenna_mhz == 200.0  # model 5106
    assert g.meta["system"] == "SIR4K"
    # DZX waypoints: scan 0 at 0 m, scan 341 at 10 m
    assert g.block.position_m[341] == pytest.approx(10.0)
    assert g.trace_spacing_m == pytest.approx(10.0 / 341)
    dzg = real_file("dzt/impdar/test_gssi.DZG").read_text()
    assert len(g.gps) == dzg.count("$GPGGA") == 14
    assert all(not f.has_fix and f.lat_deg is None and f.alt_m is None for f in g.gps)
    assert g.gps_trace[:2].tolist() == [23.0, 47.0]
    assert g.gps[0].utc_s == 3 * 60 + 20  # 000320
    assert g.gps[0].host_time_s == pytest.approx(23 / 24.0)  # scan / sps


DT1_FILES = [
    "gprpy_ComOffs/XLINE00",
    "gprpy_WARR/XLINE00",
    "rgpr_flagogna/XLINE000",
    "rgpr_frenke/LINE00",
]


def _hd(path) -> dict[str, str]:
    out = {}
    for line in path.read_bytes().decode("latin-1").split("\r\r\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


@pytest.mark.parametrize("stem", DT1_FILES)
def test_dt1_matches_hd_text(stem: str) -> None:
    dt1 = real_file(f"dt1/{stem}.DT1")
    hd = _hd(real_file(f"dt1/{stem}.HD"))
    g = read_gpr(dt1)
    n, pts = int(hd["NUMBER OF TRACES"]), int(hd["NUMBER OF PTS/TRC"])
    window = float(hd["TOTAL TIME WINDOW"])
    assert (g.format, g.n_traces, g.n_samples) == ("dt1", n, pts)
    assert g.window_ns == pytest.approx(window)
    assert g.antenna_mhz == pytest.approx(float(hd["NOMINAL FREQUENCY"]))
    to_m = 0.3048 if hd["POSITION UNITS"] == "ft" else 1.0
    assert g.trace_spacing_m == pytest.approx(float(hd["STEP SIZE USED"]) * to_m)
    assert g.block.position_m[-1] == pytest.approx(float(hd["FINAL POSITION"]) * to_m, rel=1e-5)
    rec = 128 + 2 * pts
    pos_word = np.frombuffer(dt1.read_bytes(), "<f4", count=1, offset=9 * rec + 4)[0]
    assert g.block.position_m[9] == pytest.approx(pos_word * to_m)
    start = float(hd["STARTING POSITION"]) * to_m
    if g.block.position_m[0] == pytest.approx(start, abs=1e-6):
        assert not g.warnings
    else:  # the WARR file: HD start 0.6 m, trace headers start at 0
        assert any("STARTING POSITION" in w for w in g.warnings)
    # raw samples of trace 5 straight from the file (128-byte trace header)
    raw = np.frombuffer(dt1.read_bytes(), "<i2", count=pts, offset=5 * rec + 128)
    np.testing.assert_array_equal(g.block.data[5], raw.astype(np.float32))


def test_dt1_feet_and_hd_entry_point() -> None:
    g = read_gpr(real_file("dt1/gprpy_ComOffs/XLINE00.HD"))
    assert g.format == "dt1"
    assert g.block.position_m[-1] == pytest.approx(1060 * 0.3048)
    assert g.dt_ns == pytest.approx(0.8)  # 1200 ns / 1500 points, header value 6 = 800 ps


def test_rd3_matches_rad_text_and_cor() -> None:
    rd3 = real_file("rd3/impdar/ten_col.rd3")
    g = read_gpr(rd3)
    assert (g.format, g.n_traces, g.n_samples) == ("rd3", 10, 512)
    assert g.dt_ns == pytest.approx(1000.0 / 2426.187744)  # FREQUENCY is sampling MHz
    assert g.antenna_mhz == 500.0
    assert g.trace_rate_hz == pytest.approx(10.0)  # TIME INTERVAL 0.1 s
    np.testing.assert_array_equal(
        g.block.data, np.fromfile(rd3, "<i2").reshape(10, 512).astype(np.float32)
    )
    assert [round(f.lat_deg, 8) for f in g.gps] == [75.63203, 75.63203167, 75.63203167]
    assert g.gps[0].lon_deg == pytest.approx(-35.98767333333)
    assert g.gps[0].alt_m == pytest.approx(2663.65)
    assert g.gps_trace.tolist() == [6.0, 17.0, 26.0]
    assert any("TIMEWINDOW" in w for w in g.warnings)
    g2 = read_gpr(real_file("rd3/impdar/ten_col.rad"), trace_spacing_m=0.5)
    assert g2.trace_spacing_m == 0.5 and g2.block.position_m[-1] == pytest.approx(4.5)


def test_format_chosen_by_content_not_extension(tmp_path) -> None:
    src = real_file("dzt/charisma/Lab_specimen_data.DZT")
    fake = tmp_path / "scan.sgy"
    fake.write_bytes(src.read_bytes())
    fmt, reason = detect_format(fake)
    assert fmt == "dzt" and "extension .sgy suggested segy" in reason
    assert read_gpr(fake).n_traces == read_gpr(src).n_traces
