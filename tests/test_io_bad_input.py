"""Bad files: empty, random bytes, truncated, lying headers, mutated (hypothesis).

Every reader must either return a consistent result (a shortened one only with a
warning) or raise ReaderError with one line naming the file; nothing else, no hang.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detect.blocks import GprBlock, GprHeader
from detect.cli import main
from detect.io.dzt import write_dzt
from detect.io.formats import ReaderError, read_gpr
from detect.io.segy import write_segy
from detect.io.session import SessionWriter

N_TRACES = 12
#: Raise for a deeper fuzzing run, e.g. DETECT_FUZZ_EXAMPLES=500.
FUZZ_EXAMPLES = int(os.environ.get("DETECT_FUZZ_EXAMPLES", "60"))


def _dt1(d: Path) -> Path:
    pts = 40
    rec = np.zeros(N_TRACES, dtype=[("h", "<f4", (25,)), ("c", "S28"), ("d", "<i2", (pts,))])
    rec["h"][:, 0] = np.arange(1, N_TRACES + 1)
    rec["h"][:, 1] = np.arange(N_TRACES) * 0.1
    rec["h"][:, 2], rec["h"][:, 5], rec["h"][:, 6] = pts, 2, 800
    rec["d"] = np.arange(N_TRACES * pts).reshape(N_TRACES, pts)
    p = d / "LINE01.DT1"
    rec.tofile(p)
    hd = (
        f"1234\r\r\nData Collected with pulseEKKO PRO\r\r\nNUMBER OF TRACES   = {N_TRACES}\r\r\n"
        f"NUMBER OF PTS/TRC  = {pts}\r\r\nTOTAL TIME WINDOW  = 32.0\r\r\n"
        "STEP SIZE USED     = 0.1\r\r\nPOSITION UNITS     = m\r\r\nNOMINAL FREQUENCY  = 500\r\r\n"
    )
    (d / "LINE01.HD").write_bytes(hd.encode())
    return p


def _rd3(d: Path) -> Path:
    p = d / "prof.rd3"
    np.arange(N_TRACES * 64, dtype="<i2").tofile(p)
    (d / "prof.rad").write_bytes(
        f"SAMPLES:64\r\nFREQUENCY:5000\r\nANTENNAS:800 MHz\r\nLAST TRACE:{N_TRACES}\r\n".encode()
    )
    return p


def _dzt(d: Path) -> Path:
    p = d / "f.DZT"
    raw = np.random.default_rng(1).integers(0, 65535, size=(N_TRACES, 1, 32))
    write_dzt(p, raw, range_ns=8.0, spm=100.0)
    return p


def _segy(d: Path) -> Path:
    p = d / "f.sgy"
    b = GprBlock.build(
        np.ones((N_TRACES, 32)), GprHeader(dt_ns=0.1), position_m=np.arange(N_TRACES)
    )
    write_segy(p, b)
    return p


def _gprmax(d: Path) -> Path:
    p = d / "m.out"
    with h5py.File(p, "w") as f:
        f.attrs["gprMax"] = "3.1.7"
        f.attrs["dt"] = 1e-11
        f.create_dataset("rxs/rx1/Ez", data=np.ones((40, N_TRACES)))
    return p


def _session(d: Path) -> Path:
    p = d / "s.h5"
    with SessionWriter(p, {}, {}) as w:
        w.write(
            GprBlock.build(
                np.ones((N_TRACES, 32)), GprHeader(dt_ns=0.1), position_m=np.arange(N_TRACES) * 0.1
            )
        )
    return p


MAKERS = {
    "dzt": _dzt,
    "dt1": _dt1,
    "rd3": _rd3,
    "segy": _segy,
    "gprmax": _gprmax,
    "session": _session,
}


def _check(path: Path, original_traces: int) -> None:
    try:
        g = read_gpr(path, trace_spacing_m=None)
    except ReaderError as exc:
        msg = str(exc)
        assert "\n" not in msg and path.stem in msg
        return
    for b in g.blocks:
        assert b.data.ndim == 2 and b.data.dtype == np.float32
        assert b.seq.shape == b.position_m.shape == (b.n,)
    assert g.dt_ns > 0
    if g.n_traces < original_traces:
        assert g.warnings, "a shortened file was passed off as whole"


@pytest.mark.parametrize("fmt", sorted(MAKERS))
def test_empty_and_random_bytes(tmp_path, fmt: str) -> None:
    p = MAKERS[fmt](tmp_path)
    original = p.read_bytes()
    p.write_bytes(b"")
    with pytest.raises(ReaderError, match="empty file"):
        read_gpr(p)
    if fmt == "rd3":  # headerless samples: random data is valid data; the header is not
        p.write_bytes(original)
        rad = tmp_path / "prof.rad"
        rad.write_bytes(np.random.default_rng(0).bytes(rad.stat().st_size))
    else:
        p.write_bytes(np.random.default_rng(0).bytes(len(original)))
    with pytest.raises(ReaderError):
        read_gpr(p)


@pytest.mark.parametrize("fmt", sorted(MAKERS))
def test_truncations_never_pass_as_whole(tmp_path, fmt: str) -> None:
    p = MAKERS[fmt](tmp_path)
    data = p.read_bytes()
    for cut in (1, 7, len(data) // 3, len(data) // 2, len(data) - 5):
        p.write_bytes(data[:cut])
        _check(p, N_TRACES)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    fmt=st.sampled_from(sorted(MAKERS)),
    edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)), max_size=4),
    cut=st.one_of(st.none(), st.floats(0.05, 1.0)),
    header_file=st.booleans(),
)
def test_mutated_files(tmp_path_factory, fmt: str, edits, cut, header_file: bool) -> None:
    d = tmp_path_factory.mktemp(fmt)
    p = MAKERS[fmt](d)
    companion = {"dt1": d / "LINE01.HD", "rd3": d / "prof.rad"}.get(fmt)
    target = companion if header_file and companion is not None else p
    data = bytearray(target.read_bytes())
    for where, junk in edits:
        i = int(where * (len(data) - 1))
        data[i : i + len(junk)] = junk
    if cut is not None:
        data = data[: max(1, int(cut * len(data)))]
    target.write_bytes(bytes(data))
    _check(p, N_TRACES)


def test_dt1_lying_trace_header(tmp_path) -> None:
    p = _dt1(tmp_path)
    b = bytearray(p.read_bytes())
    struct.pack_into("<f", b, 3 * (128 + 80) + 8, 41.0)  # trace 3 claims 41 points
    p.write_bytes(bytes(b))
    with pytest.raises(ReaderError, match="trace 3 header says 41"):
        read_gpr(p)


def test_missing_companion_files(tmp_path) -> None:
    p = _dt1(tmp_path)
    (tmp_path / "LINE01.HD").unlink()
    with pytest.raises(ReaderError):
        read_gpr(p, format="dt1")
    r = _rd3(tmp_path)
    (tmp_path / "prof.rad").unlink()
    with pytest.raises(ReaderError, match=r"no \.rad header"):
        read_gpr(r, format="rd3")


def test_cli_bad_input_is_one_line(tmp_path, capsys) -> None:
    p = tmp_path / "junk.DZT"
    p.write_bytes(np.random.default_rng(5).bytes(3000))
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "junk.DZT" in err
    assert main(["info", str(p), "input.format=segy"]) == 2
    assert "junk.DZT" in capsys.readouterr().err
    assert main(["info", str(p), "input.format=xyz"]) == 2
