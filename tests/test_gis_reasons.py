"""Why ground was not covered (issue 17): the ``reason`` of each not-covered polygon names the
sensor and what its health and the coverage say, and ``export-gis`` of the session gives the
live package's polygons and reasons.

A fake sensor head on a fake clock (``pipeline_fakes``): its GPR unplugged for 2 s goes to
FAULT after the stall timeout as on a real rig, unlike a simulation faster than real time."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.sinks.display import PlainDisplay
from detect.sinks.gis_reasons import segments_from_rows, with_reasons
from pipeline_fakes import INTERIM_HEAD, FakeClock, FakeHead
from test_gis_package import same_strips

pytest.importorskip("h5py")


def _nc(start: float, end: float, missing: list[str], epoch: int = 0) -> dict[str, Any]:
    return {"start_m": start, "end_m": end, "status": "not_covered", "missing": missing,
            "epoch": epoch}  # fmt: skip


def _ev(t: float, sensor: str, state: str, pos: float | None, epoch: int = 0, why: str = ""
        ) -> dict[str, Any]:  # fmt: skip
    return {"time_s": t, "sensor": sensor, "state": state, "reason": why, "position_m": pos,
            "epoch": epoch}  # fmt: skip


def test_each_stretch_says_which_sensor_and_why() -> None:
    cov = [
        _nc(0.0, 0.3, ["gpr"]),  # the GPR mounted behind: the lane's first 0.3 m
        {"start_m": 0.3, "end_m": 2.0, "status": "covered", "missing": [], "epoch": 0},
        _nc(2.0, 3.1, ["gpr"]),  # unplugged at 2.2 m (stall declared), back at 2.8 m
        _nc(5.2, 5.5, ["emi"]),  # a lossy EMI link, 5.0 .. 6.0 m
        _nc(7.0, 7.2, ["gpr"]),  # frames missing, no state change
        {"start_m": 7.2, "end_m": 9.8, "status": "covered", "missing": [], "epoch": 0},
        _nc(9.8, 10.0, ["emi", "gpr"]),
        _nc(2.0, 3.0, ["gpr"], epoch=1),  # the same metres after a head restart: no fault there
    ]
    health = [
        _ev(1.0, "gpr", "OK", 0.0),
        _ev(5.0, "gpr", "FAULT", 2.2, why="disconnected"),
        _ev(6.2, "gpr", "OK", 2.8),
        _ev(10.0, "emi", "DEGRADED", 5.0, why="12 errors in 2 s"),
        _ev(12.0, "emi", "OK", 6.0),
        _ev(30.0, "gpr", "FAULT", 9.9, epoch=1, why="no data for 0.52 s"),  # after 2..3 m
    ]
    got = [s.get("reason") for s in with_reasons(cov, health)]
    assert got == [
        "gpr not scored: lane start",
        None,
        "gpr FAULT: disconnected",
        "emi DEGRADED: 12 errors in 2 s",
        "gpr not scored: gap in its data",
        None,
        "emi,gpr not scored: lane end",
        "gpr not scored: lane start and lane end",  # epoch 1's only stretch
    ]
    # a FAULT that never ends explains everything after it, the lane end included
    (end,) = with_reasons([_nc(9.8, 10.0, ["gpr"])], [_ev(5.0, "gpr", "FAULT", 9.0, why="x")])
    assert end["reason"] == "gpr FAULT: x, not scored: lane start and lane end"
    # a specific reason already given (a session not closed cleanly) is kept
    kept = {**_nc(9.0, 10.0, ["gpr"]), "reason": "coverage not recorded past here"}
    assert with_reasons([kept], health)[0]["reason"] == kept["reason"]


def test_session_rows_become_the_live_segments() -> None:
    """One row per sensor and stretch -> one segment per stretch, sensors sorted, touching
    stretches with the same sensors joined; epochs kept apart."""
    rows = [
        {"start_m": 0.0, "end_m": 1.0, "sensor": "gpr", "reason": "not covered", "epoch": 0},
        {"start_m": 0.5, "end_m": 1.5, "sensor": "emi", "reason": "not covered", "epoch": 0},
        {"start_m": 2.0, "end_m": 2.5, "sensor": "gpr", "reason": "not covered", "epoch": 0},
        {"start_m": 2.5, "end_m": 3.0, "sensor": "gpr", "reason": "not covered", "epoch": 0},
        {"start_m": 0.0, "end_m": 1.0, "sensor": "emi", "reason": "not covered", "epoch": 1},
    ]
    got = [(s["start_m"], s["end_m"], s["missing"], s["epoch"]) for s in segments_from_rows(rows)]
    assert got == [
        (0.0, 0.5, ["gpr"], 0),
        (0.5, 1.0, ["emi", "gpr"], 0),
        (1.0, 1.5, ["emi"], 0),
        (2.0, 3.0, ["gpr"], 0),
        (0.0, 1.0, ["emi"], 1),
    ]
    assert all("reason" not in s for s in segments_from_rows(rows))  # generic: found later


@pytest.fixture(scope="module")
def unplugged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 s walk at 0.5 m/s, its GPR unplugged 5..7 s (2.5..3.5 m), recorded, with the
    live package (run.out_dir)."""
    out = tmp_path_factory.mktemp("unplugged")
    cfg = compose(list(INTERIM_HEAD))
    clock = FakeClock()
    src = FakeHead(clock, gpr_off_s=(5.0, 7.0))
    display = PlainDisplay(stream=io.StringIO())
    pipe = build_pipeline(cfg, ("gpr", "emi"), display, out, record=True,
                          source_info={"paced": False}, clock=clock)  # fmt: skip
    src.open()
    drive(pipe, src, None)
    close_out(pipe, out)
    return out


def test_export_gis_gives_the_live_reasons_for_a_fault(unplugged: Path, tmp_path: Path) -> None:
    from detect.app.export_gis import export_gis_task

    cfg = compose([f"input.path={unplugged / 'session.h5'}", f"output.dir={tmp_path}"])
    assert export_gis_task(cfg) == 0
    nc = same_strips(unplugged, tmp_path)
    health = json.loads((unplugged / "alarms.json").read_text())["health"]
    (fault,) = [h for h in health if h["sensor"] == "gpr" and h["state"] == "FAULT"]
    assert fault["reason"].startswith("no data for ") and 2.5 < fault["position_m"] < 2.8
    (gap,) = [p for p in nc if 1.0 < p["start_m"] < 3.0]
    assert gap["sensor"] == "gpr" and gap["start_m"] < 2.5 < 3.5 < gap["end_m"]
    assert gap["reason"] == f"gpr FAULT: {fault['reason']}"
    assert {p["reason"] for p in nc if p is not gap} <= {
        f"{s} not scored: lane {end}" for s in ("gpr", "emi", "emi,gpr") for end in ("start", "end")
    }
