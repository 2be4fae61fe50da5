"""Readers under lying headers, huge files and damaged recordings (issue 12, items 3 and 7).

A header field that sizes an allocation is checked against the file size, the data and
physical sense before anything is allocated: a lie is either read correctly with a
warning naming the field, or a one-line ReaderError naming the file and the field.
Multi-GB files are SPARSE (``truncate`` after a valid header: no disk used).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import real_file
from detect.blocks import GprBlock, GprHeader
from detect.cli import main
from detect.io import base, formats
from detect.io.dzt import write_dzt
from detect.io.formats import ReaderError, read_gpr
from detect.io.session import SessionWriter

GIB = 2**30


def _patched(src: Path, dst_dir: Path, offset: int, fmt: str, value: int) -> Path:
    """A copy of ``src`` in ``dst_dir`` with one header field overwritten."""
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    out = dst_dir / src.name
    out.write_bytes(bytes(data))
    return out


# ------------------------------------------------------------------ DZT bits field


@pytest.mark.parametrize(
    ("rel", "lie"),
    [
        ("dzt/gprpy/FILE____032.DZT", 32),  # 16-bit data: was read as 520 garbage traces
        ("dzt/tu1208/400MHz-Limestone_2_rev.dzt", 32),
        ("dzt/iet-gpr/File____001.DZT", 16),  # 32-bit data claimed 16-bit
        ("dzt/impdar/test_gssi.DZT", 16),
        ("dzt/gprpy/FILE____032.DZT", 12),  # not a sample size at all
    ],
)
def test_dzt_lying_bits_field_reads_the_true_samples(tmp_path: Path, rel: str, lie: int) -> None:
    src = real_file(rel)
    truth = read_gpr(src)
    g = read_gpr(_patched(src, tmp_path, 6, "<H", lie))
    assert g.n_traces == truth.n_traces and g.n_samples == truth.n_samples
    np.testing.assert_array_equal(g.block.data, truth.block.data)
    np.testing.assert_array_equal(g.marks, truth.marks)
    assert any(f"bits per sample = {lie}" in w for w in g.warnings), g.warnings
    assert not any("bits per sample" in w for w in truth.warnings)


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_dzt_noise_never_overrules_the_bits_field(tmp_path: Path, bits: int) -> None:
    """White noise is equally rough at every word size: the header's field stands."""
    hi = {8: 255, 16: 65535, 32: 2**30}[bits]
    raw = np.random.default_rng(3).integers(0, hi, size=(40, 1, 64))
    p = tmp_path / "n.DZT"
    write_dzt(p, raw, range_ns=16.0, bits=bits)
    g = read_gpr(p)
    assert g.n_traces == 40 and not any("bits" in w for w in g.warnings)


def test_dzt_unknown_bits_on_noise_is_one_line_error(tmp_path: Path) -> None:
    raw = np.random.default_rng(4).integers(0, 65535, size=(40, 1, 64))
    p = tmp_path / "q.DZT"
    write_dzt(p, raw, range_ns=16.0)
    p = _patched(p, tmp_path, 6, "<H", 12)
    with pytest.raises(ReaderError, match=r"q\.DZT: header bits per sample = 12 \(expected") as e:
        read_gpr(p)
    assert "\n" not in str(e.value)


def test_dzt_lying_samples_per_trace_is_one_line_error(tmp_path: Path) -> None:
    """nsamp = 65535 over the 50 ns range of a 400 MHz file: 0.76 ps sampling, 3300
    samples a period. Before: 8 garbage traces of 65535 samples and a warning."""
    src = real_file("dzt/gprpy/FILE____032.DZT")
    with pytest.raises(ReaderError, match=r"FILE____032\.DZT: header samples per trace = 65535"):
        read_gpr(_patched(src, tmp_path, 4, "<H", 65535))


# ------------------------------------------------------------------ huge files

_PROBE = """
import json, resource, sys, time
from detect.io.formats import ReaderError, read_gpr
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # a MemoryError, not the OOM killer
out = {}
for path in sys.argv[1:]:
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    info = read_gpr(path, headers_only=True).info()
    out[path] = {"s": time.perf_counter() - t0, "n": info["n_traces"], "read": info["samples_read"],
                 "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0}
    try:
        read_gpr(path)
        out[path]["full"] = "read"
    except ReaderError as exc:
        out[path]["full"] = str(exc)
print(json.dumps(out))
"""


def _sparse_dzt(path: Path, size: int) -> int:
    """A 16-bit 512-sample DZT of ``size`` bytes: 300 real scans, then sparse zeros."""
    t = np.arange(512)
    trace = 32768 + 8000 * np.sin(2 * np.pi * t / 24.0) * np.exp(-t / 200.0)
    raw = np.tile(trace.astype(np.int64), (300, 1, 1))
    write_dzt(path, raw, range_ns=50.0, spm=100.0, antenna="5103")
    with open(path, "r+b") as f:
        f.truncate(size)
    return (size - 1024) // 1024


def test_huge_dzt_info_reads_headers_only_and_scan_refuses(tmp_path: Path) -> None:
    """2 GiB and 20 GiB sparse DZTs: the headers-only read (``detect info``) costs no
    memory that grows with the file; a full read beyond the read limit is a one-line
    ReaderError naming the size and the limit (before: 6.6 GB and 23 s, a MemoryError)."""
    two, twenty = tmp_path / "two.DZT", tmp_path / "twenty.DZT"
    n_two, n_twenty = _sparse_dzt(two, 2 * GIB), _sparse_dzt(twenty, 20 * GIB)
    env = {**os.environ, formats.READ_LIMIT_ENV: "1"}
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, str(two), str(twenty)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout)
    for path, n in ((two, n_two), (twenty, n_twenty)):
        r = got[str(path)]
        assert r["n"] == n and r["read"] is False
        assert r["rss_kib"] < 64 * 1024, r  # headers + a few MiB of prefix, whatever the size
        assert "\n" not in r["full"] and path.name in r["full"]
        assert "read limit of 1 GiB" in r["full"] and "GiB of memory" in r["full"]


def test_headers_only_gives_the_same_header_facts(tmp_path: Path, monkeypatch) -> None:
    """Forcing the headers-only path on small real files changes none of the header facts."""
    monkeypatch.setattr(base, "HEADERS_ONLY_ABOVE_BYTES", 0)
    for rel in (
        "dzt/impdar/test_gssi.DZT",
        "dzt/tu1208/400MHz-Limestone_2_rev.dzt",
        "dt1/rgpr_frenke/LINE00.DT1",
        "rd3/impdar/ten_col.rd3",
    ):
        path = real_file(rel)
        full, head = read_gpr(path).info(), read_gpr(path, headers_only=True).info()
        assert head["samples_read"] is False and full["samples_read"] is True
        for key in ("n_traces", "n_samples", "dt_ns", "time_zero_ns", "antenna_mhz"):
            assert head[key] == full[key], (rel, key)
        for key in ("trace_spacing_m", "trace_rate_hz"):
            want = full[key]
            assert head[key] == (None if want is None else pytest.approx(want, rel=1e-9)), key


def test_out_of_memory_is_a_reader_error(tmp_path: Path, monkeypatch) -> None:
    from detect.io import rd3

    def boom(*_a, **_k):
        raise MemoryError("Unable to allocate 40.0 GiB")

    src = real_file("rd3/impdar/ten_col.rd3")
    monkeypatch.setattr(rd3, "read_rd3", boom)
    with pytest.raises(ReaderError, match=r"ten_col\.rd3: not enough memory"):
        read_gpr(src)


# ------------------------------------------------------------------ DT1 / HD


def _dt1_copy(tmp_path: Path) -> tuple[Path, Path]:
    src = real_file("dt1/rgpr_frenke/LINE00.DT1")
    dt1, hd = tmp_path / "LINE00.DT1", tmp_path / "LINE00.HD"
    dt1.write_bytes(src.read_bytes())
    hd.write_bytes(src.with_suffix(".HD").read_bytes())
    return dt1, hd


def test_dt1_lying_points_in_hd_and_trace_headers(tmp_path: Path) -> None:
    dt1, hd = _dt1_copy(tmp_path)
    hd.write_bytes(hd.read_bytes().replace(b"PTS/TRC  = 1000", b"PTS/TRC  = 65535"))
    with pytest.raises(ReaderError, match="HD says 65535"):
        read_gpr(dt1)
    _patched(dt1, tmp_path, 8, "<f", 65535)  # the first trace header lies too
    with pytest.raises(ReaderError, match=r"LINE00\.(DT1|HD).*(65535|points)") as e:
        read_gpr(dt1)
    assert "\n" not in str(e.value)


def test_dt1_time_zero_beyond_the_trace_is_warned(tmp_path: Path) -> None:
    dt1, hd = _dt1_copy(tmp_path)
    text = hd.read_bytes()
    assert b"TIMEZERO AT POINT  = 131.460007" in text
    hd.write_bytes(text.replace(b"= 131.460007", b"= 65535"))
    g = read_gpr(dt1)
    assert g.block.header.time_zero_ns == 0.0
    assert any("TIMEZERO AT POINT = 65535" in w for w in g.warnings)


# ------------------------------------------------------------------ damaged session


def test_truncated_session_names_the_damage(tmp_path: Path, capsys) -> None:
    p = tmp_path / "session.h5"
    with SessionWriter(p, {}, {}) as w:
        for i in range(20):
            seq = np.arange(i * 50, (i + 1) * 50)
            w.write(
                GprBlock.build(
                    np.random.default_rng(i).random((50, 256)),
                    GprHeader(dt_ns=0.1),
                    seq=seq,
                    host_time_s=seq * 0.01,
                    position_m=seq * 0.01,
                )
            )
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 9 // 10])
    with pytest.raises(ReaderError) as e:
        read_gpr(p)
    msg = str(e.value)
    assert "session.h5 is truncated" in msg and "not a recognised" not in msg
    assert f"{len(data) * 9 // 10} of the {len(data)} bytes" in msg and "\n" not in msg
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "session.h5 is truncated" in err and err.count("\n") == 0
