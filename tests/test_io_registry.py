"""GPR formats as plugins (detect.io.registry): a reader is imported only when chosen, a new
format is one module plus one registry line, a missing dependency is a one-line refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detect.io import registry
from detect.io.dzt import write_dzt
from detect.io.formats import ReaderError, detect_format, read_gpr

_PLUGIN = '''
"""A toy format: b"TOYGPR" + little-endian float32 (n_traces, 64) samples, dt 0.5 ns."""
import numpy as np
from detect.blocks import GprBlock, GprHeader
from detect.io.base import GprFile, apply_spacing, file_size

def sniff(path, head):
    return "TOYGPR magic" if head.startswith(b"TOYGPR") else None

def read_toy(path, trace_spacing_m=None):
    raw = np.fromfile(path, dtype="<f4", offset=6)
    data = raw.reshape(-1, 64)
    out = GprFile(path=path, format="toy", format_reason="", blocks=[])
    out.trace_spacing_m = apply_spacing(out, 0.02, trace_spacing_m)
    n = data.shape[0]
    out.blocks.append(GprBlock.build(data, GprHeader(dt_ns=0.5), host_time_s=np.full(n, np.nan),
                                     position_m=np.arange(n) * out.trace_spacing_m))
    return out
'''


def _dzt(path: Path) -> Path:
    t = np.arange(256)
    trace = 32768 + 8000 * np.sin(2 * np.pi * t / 24.0) * np.exp(-t / 100.0)
    write_dzt(path, np.tile(trace.astype(np.int64), (20, 1, 1)), range_ns=30.0, spm=50.0)
    return path


def test_a_forced_format_imports_only_its_reader(tmp_path: Path) -> None:
    """``input.format=dzt`` loads the DZT reader and none of the others (nor segyio/h5py);
    sniffing by content loads every sniffer's module."""
    path = _dzt(tmp_path / "a.DZT")
    probe = (
        "import json, sys\n"
        "from detect.io.formats import read_gpr\n"
        f"f = read_gpr({str(path)!r}, format={{}})\n"
        "print(json.dumps([f.n_traces, sorted(m for m in sys.modules if m.startswith"
        "(('detect.io.', 'segyio', 'h5py')))]))\n"
    )
    runs = {}
    for fmt in ("'dzt'", "None"):
        res = subprocess.run(
            [sys.executable, "-c", probe.format(fmt)], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr[-2000:]
        runs[fmt] = json.loads(res.stdout)
    n_forced, forced = runs["'dzt'"]
    n_sniffed, sniffed = runs["None"]
    assert n_forced == n_sniffed == 20
    others = {"detect.io.dt1", "detect.io.rd3", "detect.io.segy", "detect.io.gprmax"}
    assert "detect.io.dzt" in forced
    assert not (others | {"detect.io.session", "segyio", "h5py"}) & set(forced), forced
    assert others <= set(sniffed)


def test_a_new_format_is_one_module_and_one_registry_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "toy_gpr_plugin.py").write_text(_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        registry.READERS,
        "toy",
        registry.ReaderSpec("toy_gpr_plugin:read_toy", "toy_gpr_plugin:sniff", (".toy",)),
    )
    data = np.sin(np.arange(5 * 64, dtype=np.float32)).reshape(5, 64)
    path = tmp_path / "line.bin"
    path.write_bytes(b"TOYGPR" + data.astype("<f4").tobytes())
    assert detect_format(path) == ("toy", "TOYGPR magic")
    f = read_gpr(path)
    assert (f.format, f.n_traces, f.n_samples, f.dt_ns) == ("toy", 5, 64, 0.5)
    np.testing.assert_array_equal(f.block.data, data)
    np.testing.assert_allclose(f.block.position_m, np.arange(5) * 0.02)
    assert read_gpr(path, format="TOY").format_reason == "forced by input.format"


def test_a_format_whose_dependency_is_missing_is_a_one_line_refusal(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(
        registry.READERS,
        "segy",
        registry.ReaderSpec("no_such_segy_module:read", "no_such_segy_module:sniff", (".sgy",)),
    )
    path = tmp_path / "x.sgy"
    path.write_bytes(b"\x00" * 4000)
    with pytest.raises(ReaderError) as e:
        read_gpr(path, format="segy")
    msg = str(e.value)
    assert "\n" not in msg and "x.sgy" in msg and "'segy' is not available" in msg
    with pytest.raises(ReaderError) as e:
        detect_format(path)
    msg = str(e.value)
    assert "\n" not in msg and "matches no format" in msg and "not tried" in msg and "segy" in msg


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.DZT", "dzt"),
        ("a.hd", "dt1"),
        ("a.DT1", "dt1"),
        ("a.rad", "rd3"),
        ("a.rd7", "rd3"),
        ("a.out", "gprmax"),
        ("a.SEGY", "segy"),
        ("a.hdf5", "session"),
        ("a.txt", None),
    ],
)
def test_extension_hints(name: str, fmt: str | None) -> None:
    assert registry.extension_hint(Path(name).suffix) == fmt


def test_every_registered_format_resolves() -> None:
    for name in registry.names():
        assert callable(registry.reader(name)) and callable(registry.sniffer(name)), name
    with pytest.raises(ReaderError, match="unknown format 'nope'"):
        registry.reader("nope")
