"""Every radar file gets a trace spacing: the file's own, ``--trace-spacing-m``, the trace
interval x a stated walking speed for a time-triggered file, else a stated default; and
the run says which (one log line, ``source`` in alarms.json)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import _real_dir, real_file
from detect.config import ConfigError, compose
from detect.engine.items import DEFAULT_TRACE_SPACING_M, file_items
from detect.io.dzt import write_dzt
from detect.io.rd3 import parse_rad


def _dzt(folder: Path, sps: float, spm: float = 0.0, n: int = 200) -> Path:
    """A 16-bit, 1 GHz, 20 ns DZT (a reflector at 8 ns) with the given rhf_sps/rhf_spm."""
    t_ns = np.arange(256) * 20.0 / 256
    trace = 8000 * np.sin(2 * np.pi * 1.0 * (t_ns - 8)) * np.exp(-(((t_ns - 8) / 1.0) ** 2))
    rng = np.random.default_rng(1)
    raw = trace[None, :] + rng.normal(0, 50, (n, 256)) + 32768
    path = folder / f"sps{sps:g}_spm{spm:g}.DZT"
    write_dzt(path, raw.astype(np.uint16)[:, None, :], range_ns=20.0, sps=sps, spm=spm,
              antenna="1GHz")  # fmt: skip
    return path


def _spacing_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "trace spacing" in r.getMessage()]


def _positions(items: list) -> np.ndarray:  # type: ignore[type-arg]
    from detect.blocks import GprBlock

    return np.concatenate([b.position_m for b in items if isinstance(b, GprBlock)])


def test_time_triggered_file_gets_trace_interval_times_walking_speed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    f = _dzt(tmp_path, sps=64.0)
    with caplog.at_level(logging.WARNING):
        items, info, spacing = file_items(f, None, None)
    assert spacing == pytest.approx(0.5 / 64)  # 0.5 m/s, 1/64 s between traces
    np.testing.assert_allclose(_positions(items), np.arange(200) * 0.5 / 64)
    assert info["trace_spacing_m"] == pytest.approx(0.5 / 64)
    src = info["trace_spacing_from"]
    assert "walking speed 0.5 m/s" in src and "64 traces/s" in src
    (line,) = _spacing_lines(caplog)  # one line, naming the file and what was assumed
    assert f.name in line and "walking speed 0.5 m/s" in line

    _, info, spacing = file_items(f, None, None, walking_speed_m_s=1.2)
    assert spacing == pytest.approx(1.2 / 64) and "1.2 m/s" in info["trace_spacing_from"]


def test_the_users_spacing_wins_and_is_named(tmp_path: Path) -> None:
    for spm in (0.0, 50.0):  # without and with a spacing in the header
        items, info, spacing = file_items(_dzt(tmp_path, 64.0, spm), None, 0.03)
        assert spacing == 0.03 and info["trace_spacing_from"].startswith("--trace-spacing-m")
        np.testing.assert_allclose(_positions(items), np.arange(200) * 0.03)


def test_a_file_with_its_own_spacing_says_the_header_field(tmp_path: Path) -> None:
    _, info, spacing = file_items(_dzt(tmp_path, 64.0, spm=50.0), None, None)
    assert spacing == pytest.approx(0.02) and "rhf_spm = 50" in info["trace_spacing_from"]


def test_no_spacing_and_no_trace_rate_gets_the_stated_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        items, info, spacing = file_items(_dzt(tmp_path, sps=0.0), None, None)
    assert spacing == DEFAULT_TRACE_SPACING_M
    assert info["trace_spacing_from"].startswith(f"default trace spacing {DEFAULT_TRACE_SPACING_M}")
    np.testing.assert_allclose(_positions(items), np.arange(200) * DEFAULT_TRACE_SPACING_M)
    assert len(_spacing_lines(caplog)) == 1


def test_real_time_triggered_files_use_their_trace_interval() -> None:
    f = real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt")
    sps = np.frombuffer(f.read_bytes()[10:14], "<f4")[0]  # rhf_sps, read here
    _, info, spacing = file_items(f, None, None)
    assert sps == 15.0 and spacing == pytest.approx(0.5 / sps)
    f = real_file("rd3/impdar/ten_col.rd3")
    rad = parse_rad(f.with_suffix(".rad").read_text())
    assert rad["TIME FLAG"] == "1" and float(rad["DISTANCE INTERVAL"]) == 0
    _, info, spacing = file_items(f, None, None)
    assert spacing == pytest.approx(0.5 * float(rad["TIME INTERVAL"]))  # 0.1 s -> 5 cm
    assert "walking speed" in info["trace_spacing_from"]


def _real_gpr_files() -> list[str]:
    root = _real_dir()
    if not root.is_dir():
        return ["(absent)"]
    suffixes = {".dzt", ".dt1", ".rd3"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in suffixes)


@pytest.mark.parametrize("rel", _real_gpr_files())
def test_every_real_gpr_file_gets_a_positive_finite_spacing(rel: str) -> None:
    f = real_file(rel)
    items, info, spacing = file_items(f, None, None)
    assert spacing is not None and math.isfinite(spacing) and spacing > 0
    assert info["trace_spacing_m"] == spacing and info["trace_spacing_from"]
    pos = _positions(items)
    assert np.isfinite(pos).all() and np.ptp(pos) > 0


def test_walking_speed_setting_is_typed_and_ranged() -> None:
    assert compose([]).input.walking_speed_m_s == 0.5
    for bad in ("0", "-1", "100", "fast"):
        with pytest.raises(ConfigError, match="walking_speed_m_s"):
            compose([f"input.walking_speed_m_s={bad}"])


def test_scan_puts_the_spacing_and_its_source_in_alarms_json(tmp_path: Path) -> None:
    from detect.app.scan import scan_task

    f = _dzt(tmp_path, sps=64.0, n=400)
    out = tmp_path / "out"
    cfg = compose([f"input.path={f}", f"output.dir={out}", "input.walking_speed_m_s=0.4",
                   "model.input_check=warn"])  # fmt: skip
    scan_task(cfg)
    src = json.loads((out / "alarms.json").read_text())["source"]
    assert src["trace_spacing_m"] == pytest.approx(0.4 / 64)
    assert "walking speed 0.4 m/s" in src["trace_spacing_from"]
