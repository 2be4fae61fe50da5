"""`detect info` on a session counts alarms (at the operating point) and suspects apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detect.app.info import info_task
from detect.blocks import Alarm, GprBlock, GprHeader, MdBlock, MdHeader
from detect.config import compose
from detect.io.session import SessionWriter

TIERS = ["alarm", "suspect", "suspect", "alarm", "suspect"]


def _session(path: Path, gpr: bool) -> None:
    with SessionWriter(path, {}, {}) as w:
        k = np.arange(50)
        if gpr:
            w.write(GprBlock.build(np.ones((50, 64)), GprHeader(dt_ns=0.1), seq=k,
                                   host_time_s=k * 0.01, position_m=k * 0.01))  # fmt: skip
        else:
            w.write(MdBlock.build(np.ones((50, 2)), MdHeader(1000.0, ("g0", "g1")),
                                  host_time_s=k * 1e-3))  # fmt: skip
        for i, tier in enumerate(TIERS):
            conf = 0.9 if tier == "alarm" else 0.05
            w.write(Alarm(f"A-{i}", 0.1 * i, conf, "ap_mine", {}, None, 0.01 * i, tier=tier))


@pytest.mark.parametrize("gpr", [True, False], ids=["gpr_session", "emi_only_session"])
def test_info_counts_alarms_and_suspects_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gpr: bool
) -> None:
    path = tmp_path / "s.h5"
    _session(path, gpr)
    assert info_task(compose([f"input.path={path}", "info.json=true"])) == 0
    doc = json.loads(capsys.readouterr().out)
    counts = doc["session"] if gpr else doc
    assert (counts["n_alarms"], counts.get("n_suspects")) == (2, 3)
    assert info_task(compose([f"input.path={path}"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "n alarms         2" in lines and "n suspects       3" in lines, lines
