"""`detect info` on a session from a metal-detector-only rig (no GPR stream)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.app.info import info_task
from detect.blocks import MdBlock, MdHeader
from detect.config import compose
from detect.io.session import SessionWriter


def test_info_describes_an_emi_only_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "emi.h5"
    rate_hz = 1000.0
    with SessionWriter(path, {}, {}) as w:
        for k in range(3):
            t = (np.arange(250) + 250 * k) / rate_hz
            w.write(
                MdBlock.build(np.ones((250, 2)), MdHeader(rate_hz, ("g0", "g1")), host_time_s=t)
            )
    assert info_task(compose([f"input.path={path}", "info.json=true"])) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "session" and doc["n_traces"] == 0
    assert doc["emi_readings"] == 750 and doc["emi_channels"] == ["g0", "g1"]
    assert doc["duration_s"] == pytest.approx(749 / rate_hz)
    assert {"n_samples", "dt_ns", "window_ns", "trace_spacing_m", "antenna_mhz"} <= doc.keys()
