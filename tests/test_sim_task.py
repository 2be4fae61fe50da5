"""`detect simulate`: labelled lanes on disk, readable by the session reader."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from detect.app.simulate import simulate_task
from detect.cli import main
from detect.config import compose
from detect.io.session import SessionReader
from detect.sim.lane import simulate_lane
from detect.sim.settings import settings_from

OVERRIDES = [
    "sim.n_lanes=2",
    "sim.lane_length_m=4.0",
    "sim.n_targets_min=2",
    "sim.n_targets_max=3",
    "seed=5",
]


def test_simulate_writes_sessions_truth_tables_and_an_index(tmp_path: Path) -> None:
    cfg = compose([*OVERRIDES, f"output.dir={tmp_path}"])
    assert simulate_task(cfg) == 0
    s = settings_from(cfg.sim)
    for i in range(2):
        lane = simulate_lane(5, s, lane_index=i)
        with SessionReader(tmp_path / f"lane_{i:04d}.h5") as r:
            gpr, emi = r.gpr(), r.emi()
            assert gpr is not None and emi is not None
            np.testing.assert_array_equal(gpr.data, lane.gpr.data)
            np.testing.assert_array_equal(gpr.position_m, lane.gpr.position_m)
            np.testing.assert_array_equal(emi.data, lane.emi.data)
            assert emi.header.gate_times_s == pytest.approx(s.gate_times_s)
            assert gpr.header.dt_ns == s.gpr.dt_ns
            assert len(r.gps()) == len(lane.gps)
            truth = r.truth()
            assert [t["id"] for t in truth] == [t["id"] for t in lane.truth]
            assert truth[0]["x_m"] == pytest.approx(lane.truth[0]["x_m"])
            assert r.info["emi_offset_m"] == s.head.emi_offset_m
        with (tmp_path / f"lane_{i:04d}_truth.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert [r["class"] for r in rows] == [t["class"] for t in lane.truth]
        assert [float(r["depth_m"]) for r in rows] == pytest.approx(
            [t["depth_m"] for t in lane.truth]
        )
    index = (tmp_path / "lanes.csv").read_text().splitlines()
    assert len(index) == 3 and index[0].startswith("lane,seed")
    with (tmp_path / "lanes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[1]["odometer_scale"]) == pytest.approx(lane.odometer.scale, abs=1e-6)


def test_cli_refuses_bad_simulator_values_in_one_line(tmp_path: Path, capsys) -> None:
    rc = main(["simulate", f"output.dir={tmp_path}", "sim.soils=[mud]"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "unknown soil 'mud'" in err and "\n" not in err
    rc = main(["simulate", f"output.dir={tmp_path}", "sim.n_targets_min=9"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "n_targets_max" in err
