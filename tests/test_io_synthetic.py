"""Readers on synthetic files whose every value is known: DZT variants, gprMax, SEG-Y."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import segyio

from detect.blocks import GprBlock, GprHeader
from detect.io.dzt import write_dzt
from detect.io.formats import ReaderError, detect_format, read_gpr
from detect.io.segy import write_segy


def _raw(n_scans: int, nchan: int, nsamp: int, bits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = {8: 255, 16: 65535, 32: 2**20}[bits]
    lo = 0 if bits < 32 else -(2**20)
    return rng.integers(lo, hi, size=(n_scans, nchan, nsamp)).astype(np.int64)


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_dzt_bit_depths_remove_zero_level(tmp_path, bits: int) -> None:
    raw = _raw(20, 1, 64, bits)
    p = tmp_path / "a.DZT"
    write_dzt(p, raw, range_ns=32.0, bits=bits, spm=50.0)
    g = read_gpr(p)
    zero = {8: 128, 16: 32768, 32: 0}[bits]
    np.testing.assert_array_equal(g.block.data, (raw[:, 0, :] - zero).astype(np.float32))
    assert g.dt_ns == pytest.approx(0.5)
    assert g.trace_spacing_m == pytest.approx(0.02)
    np.testing.assert_allclose(g.block.position_m, np.arange(20) * 0.02)


def test_dzt_multichannel_deinterleaves(tmp_path) -> None:
    raw = _raw(15, 3, 32, 16)
    p = tmp_path / "m.dzt"
    write_dzt(p, raw, range_ns=8.0, bits=16, antenna="1.5/1.6GHz")  # Nyquist 2 GHz
    g = read_gpr(p)
    assert g.n_channels == 3 and g.n_traces == 15
    for ch in range(3):
        assert g.blocks[ch].header.channel == ch
        np.testing.assert_array_equal(g.blocks[ch].data, raw[:, ch, :] - 32768)
    assert g.antenna_mhz == 1500.0


def test_dzt_large_header_and_rh_data(tmp_path) -> None:
    raw = _raw(5, 1, 16, 32)
    p = tmp_path / "big.DZT"
    write_dzt(p, raw, range_ns=8.0, bits=32, rh_data=128, tag=0x07FF)
    g = read_gpr(p)
    np.testing.assert_array_equal(g.block.data, raw[:, 0, :])


def test_dzt_bookkeeping_rows_detected(tmp_path) -> None:
    raw = _raw(50, 1, 64, 16)
    raw[:, 0, 0] = np.arange(50)
    raw[:, 0, 1] = np.where(np.arange(50) % 10 == 0, 25600, 0)
    p = tmp_path / "k.DZT"
    write_dzt(p, raw, range_ns=16.0)
    g = read_gpr(p)
    assert g.marks.tolist() == [0, 10, 20, 30, 40]
    np.testing.assert_array_equal(g.block.data[:, 0], raw[:, 0, 2] - 32768)
    np.testing.assert_array_equal(g.block.data[:, 2:], raw[:, 0, 2:] - 32768)


def test_dzt_truncated_scan_is_reported(tmp_path) -> None:
    raw = _raw(10, 1, 64, 16)
    p = tmp_path / "t.DZT"
    write_dzt(p, raw, range_ns=16.0)
    data = p.read_bytes()
    p.write_bytes(data[:-50])
    g = read_gpr(p)
    assert g.n_traces == 9
    assert any("incomplete scan" in w for w in g.warnings)


def test_dzt_lying_header_is_one_line_error(tmp_path) -> None:
    raw = _raw(2, 1, 64, 16)
    p = tmp_path / "l.DZT"
    write_dzt(p, raw, range_ns=16.0)
    b = bytearray(p.read_bytes())
    b[4:6] = (60000).to_bytes(2, "little")  # samples per trace far beyond the data
    p.write_bytes(bytes(b))
    with pytest.raises(ReaderError, match=r"l\.DZT: header says 60000 samples") as e:
        read_gpr(p)
    assert "\n" not in str(e.value)


def _gprmax_file(path, data: np.ndarray, dt_s: float, **attrs) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["gprMax"] = "3.1.7"
        f.attrs["Iterations"] = data.shape[0]
        f.attrs["dt"] = dt_s
        for k, v in attrs.items():
            f.attrs[k] = v
        f.create_dataset("rxs/rx1/Ez", data=data)
        f.create_dataset("rxs/rx1/Hx", data=data * 0)


def test_gprmax_merged_bscan_by_content(tmp_path) -> None:
    t = np.arange(300) * 2e-12
    data = np.stack([np.sin(2 * np.pi * 1e9 * t + k) for k in range(12)], axis=1)
    p = tmp_path / "model_merged.dat"  # wrong extension on purpose
    _gprmax_file(p, data, 2e-12, rxsteps=np.array([4, 0, 0]), dx_dy_dz=np.array([0.002] * 3))
    assert detect_format(p)[0] == "gprmax"
    g = read_gpr(p)
    assert (g.n_traces, g.n_samples) == (12, 300)
    assert g.dt_ns == pytest.approx(0.002)
    assert g.trace_spacing_m == pytest.approx(0.008)
    np.testing.assert_allclose(g.block.data, data.T.astype(np.float32))


def test_gprmax_ascan_and_user_trace_step(tmp_path) -> None:
    p = tmp_path / "a.out"
    _gprmax_file(p, np.linspace(0, 1, 100), 1e-11)
    g = read_gpr(p, trace_spacing_m=0.01)
    assert (g.n_traces, g.n_samples, g.trace_spacing_m) == (1, 100, 0.01)
    p4 = tmp_path / "b.h5"  # gprMax 4 writes .h5: must not be taken for a session
    _gprmax_file(p4, np.ones((50, 3)), 1e-11)
    g4 = read_gpr(p4)
    assert g4.format == "gprmax" and g4.trace_spacing_m is None
    assert any("no trace spacing" in w for w in g4.warnings)


def test_segy_round_trip_keeps_dt_positions_antenna(tmp_path) -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(25, 512)).astype(np.float32)
    hdr = GprHeader(dt_ns=0.0390625, time_zero_ns=1.25, antenna_hz=1.5e9)
    block = GprBlock.build(data, hdr, position_m=0.5 + 0.02 * np.arange(25))
    p = tmp_path / "out.segy"
    write_segy(p, block)
    with segyio.open(str(p), ignore_geometry=True) as f:  # independent reader
        np.testing.assert_array_equal(f.trace.raw[:], data)
        assert f.bin[segyio.BinField.Interval] == 39  # ps, rounded
    g = read_gpr(p)
    assert g.dt_ns == 0.0390625 and g.block.header.time_zero_ns == 1.25
    assert g.antenna_mhz == 1500.0
    np.testing.assert_allclose(g.block.position_m, block.position_m, atol=1e-3)
    assert g.trace_spacing_m == pytest.approx(0.02, abs=1e-3)


def test_foreign_segy_interval_convention(tmp_path) -> None:
    p = tmp_path / "foreign.sgy"
    segyio.tools.from_array2D(str(p), np.ones((4, 100), np.float32), dt=100)
    g = read_gpr(p, trace_spacing_m=0.05)
    assert g.dt_ns == pytest.approx(0.1)  # interval 100 < 1000: picoseconds (GPR)
    assert any("picoseconds" in w for w in g.warnings)


def test_rd7_int32_and_cor_trace_numbers(tmp_path) -> None:
    data = (np.arange(6 * 20, dtype=np.int64).reshape(6, 20) * 100_000).astype("<i4")
    data.tofile(tmp_path / "p.rd7")
    (tmp_path / "p.rad").write_bytes(
        b"SAMPLES:20\r\nFREQUENCY:5000\r\nANTENNAS:1.2GHz\r\nDISTANCE INTERVAL: 0.05\r\n"
    )
    (tmp_path / "p.cor").write_bytes(
        b"3\t2024-01-01\t10:00:00\t45.5\tS\t7.25\tE\t100.0\tM\t0.5\r\n"
    )
    g = read_gpr(tmp_path / "p.rd7")
    np.testing.assert_array_equal(g.block.data, data.astype(np.float32))
    assert g.dt_ns == 0.2 and g.antenna_mhz == 1200.0 and g.trace_spacing_m == 0.05
    fix = g.gps[0]
    assert (fix.lat_deg, fix.lon_deg, fix.alt_m, fix.utc_s) == (-45.5, 7.25, 100.0, 36000.0)
    assert g.gps_trace.tolist() == [2.0]  # .cor trace numbers start at 1


def _gga(body: str) -> str:
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return f"${body}*{cs:02X}"


def test_dzg_fixes_checksums_and_scan_times(tmp_path) -> None:
    raw = _raw(40, 1, 32, 16)
    write_dzt(tmp_path / "g.DZT", raw, range_ns=8.0, sps=20.0, spm=10.0)
    good = _gga("GPGGA,120000.00,4530.0000,N,00715.0000,E,4,12,0.7,250.5,M,47.0,M,1.0,0001")
    bad = good[:-2] + "00"
    (tmp_path / "g.DZG").write_text(
        f"$GSSIS,10,-1\n{good}\n\n$GSSIS,20,-1\n{bad}\n\n"
        f"$GSSIS,30,-1\n{_gga('GPGGA,120001.00,,,,,0,00,,,M,,M,,')}\n"
    )
    g = read_gpr(tmp_path / "g.DZT")
    assert len(g.gps) == 2 and g.gps_trace.tolist() == [10.0, 30.0]
    f0, f1 = g.gps
    assert f0.lat_deg == pytest.approx(45.5) and f0.lon_deg == pytest.approx(7.25)
    assert f0.alt_m == 250.5 and f0.n_sats == 12 and int(f0.quality) == 4
    assert f0.host_time_s == pytest.approx(0.5)  # scan 10 at 20 scans/s
    assert f1.lat_deg is None and not f1.has_fix
    assert any("bad checksum" in w for w in g.warnings)
