"""`detect scan` takes what real instruments give: every real file scans with default
settings and says whether the mine model scored it; a full-wave (gprMax) B-scan with an 8 ns
window and 40 traces is scored; a 0.4 m sweep is scored; a radar outside the model's
envelope is FAULT with the reason, in live runs too."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import _real_dir
from detect.app.scan import scan_task
from detect.blocks import GprBlock, SensorState
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.evaluate import stream_items
from detect.sim.lane import simulate_lane
from detect.sinks.display import PlainDisplay
from detect.windows import EDGE_CELLS

FULLWAVE = Path(__file__).parent / "data" / "fullwave"
RADAR_SUFFIXES = {".dzt", ".dt1", ".rd3"}


def _real_radar_files() -> list[Path]:
    d = _real_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in RADAR_SUFFIXES)


def _scan(path: Path, out: Path, *overrides: str) -> tuple[int, dict]:
    cfg = compose([f"input.path={path}", f"output.dir={out}", *overrides])
    rc = scan_task(cfg)
    return rc, json.loads((out / "alarms.json").read_text())


@pytest.mark.parametrize("path", _real_radar_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_radar_file_scans_with_default_settings(path: Path, tmp_path: Path) -> None:
    rc, doc = _scan(path, tmp_path)
    assert rc == 0
    assert (tmp_path / "scan.png").stat().st_size > 10_000
    model = doc["model"]
    assert isinstance(model["applied"], bool) and model["reason"]
    radar = model["radar"]["gpr"]
    # physics, not the file name: a 50-500 MHz geology/utility radar peaks far below the
    # mine model's band; the two high-frequency concrete scanners sit inside it
    if radar["centre_hz"] < 0.5e9:
        assert not model["applied"]
        assert "NO MINE MODEL FOR THIS RADAR" in model["reason"]
        assert doc["alarms"] == []
        assert all(s["status"] == "not_covered" for s in doc["coverage"])
        assert doc["summary"]["exit_reason"].startswith("NO MINE MODEL APPLIED")
    if radar["centre_hz"] > 0.7e9 and radar["record_ns"] > 6:
        assert model["applied"], model["reason"]
        covered = [s for s in doc["coverage"] if s["status"] == "covered"]
        assert covered, doc["coverage"]
    assert doc["source"]["trace_spacing_m"] > 0 and doc["source"]["trace_spacing_from"]


def test_the_real_file_set_has_both_verdicts() -> None:
    files = _real_radar_files()
    if not files:
        pytest.skip("real data folder absent")
    names = {p.name for p in files}
    assert {"Lab_specimen_data.DZT", "LINE00.DT1"} <= names


def test_a_fullwave_bscan_with_an_8_ns_window_and_40_traces_is_scored(tmp_path: Path) -> None:
    """gprMax 2-D TMz, 1.5 GHz Ricker, 8 ns, 40 traces at 1.4 cm (0.55 m: shorter than one
    0.64 m window), no EMI: read, scored with default settings, the scored ground covered."""
    rc, doc = _scan(FULLWAVE / "pmn_moist_sand.h5", tmp_path)
    assert rc == 0
    assert doc["model"]["applied"] is True
    assert doc["model"]["radar"]["gpr"]["record_ns"] == pytest.approx(8.0 - 0.94, abs=0.1)
    cov = [s for s in doc["coverage"] if s["status"] == "covered"]
    assert len(cov) == 1
    edge_m = EDGE_CELLS * 0.02
    assert cov[0]["start_m"] == pytest.approx(edge_m, abs=0.02)
    assert cov[0]["end_m"] == pytest.approx(39 * 0.014 - edge_m, abs=0.03)
    pos = np.asarray(doc["track"]["position_m"])
    assert pos.min() <= 0.273 <= pos.max()  # the mine's position was scored


def _sweep(seed: int, mine: bool, length_m: float = 0.4) -> list:
    """A handheld sweep of ``length_m`` over a PMN at its middle (or over empty soil)."""
    sim = {
        "lane_length_m": length_m,
        "margin_m": length_m / 2 - 0.01,
        "n_targets_min": int(mine),
        "n_targets_max": int(mine),
        "mix": {"pmn": 1.0},
        "soils": ["dry_sand"],
        "odometer": {"enabled": False},
    }
    lane = simulate_lane(seed, sim)
    return [lane.gpr]


def _scan_blocks(blocks: list, sensors: tuple[str, ...] = ("gpr",)) -> object:
    cfg = compose(["model.name=gpr_only"])
    pipe = build_pipeline(cfg, sensors, PlainDisplay(period_s=np.inf), None)
    for item in stream_items(blocks, [], sensors):
        pipe.handle([item])
    pipe.finish()
    return pipe


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_0_4_m_sweep_over_a_mine_is_scored_and_alarmed(seed: int) -> None:
    pipe = _scan_blocks(_sweep(seed, mine=True))
    alarms = [a for a in pipe.alarms if a.tier == "alarm"]
    assert np.isfinite(np.frombuffer(pipe.track_p)).sum() >= 5
    assert alarms and min(abs(a.position_m - 0.2) for a in alarms) < 0.15


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_0_4_m_sweep_over_empty_soil_is_scored_and_not_alarmed(seed: int) -> None:
    pipe = _scan_blocks(_sweep(seed, mine=False))
    assert np.isfinite(np.frombuffer(pipe.track_p)).sum() >= 5
    assert not [a for a in pipe.alarms if a.tier == "alarm"]


def _with_radar(block: GprBlock, dt_factor: int, antenna_hz: float) -> GprBlock:
    """The same traces as another radar would report them: every ``dt_factor``-th sample
    and a header antenna (its spectrum is what it is: the check measures it)."""
    return block.with_data(
        np.ascontiguousarray(block.data[:, ::dt_factor]),
        dt_ns=block.header.dt_ns * dt_factor,
        antenna_hz=antenna_hz,
    )


def test_a_live_radar_outside_the_envelope_is_fault_with_the_reason() -> None:
    """A radar sampled 12x coarser (0.47 ns: 1.4 samples per period of its 1.5 GHz
    spectrum) is not scored: FAULT with the reason, its ground not covered."""
    lane = simulate_lane(4, {"lane_length_m": 3.0, "n_targets_min": 2, "n_targets_max": 2,
                             "odometer": {"enabled": False}})  # fmt: skip
    coarse = _with_radar(lane.gpr, 12, 1.5e9)
    pipe = _scan_blocks([coarse])
    faults = [e for e in pipe.health_events if e.state == SensorState.FAULT]
    assert faults and "NO MINE MODEL FOR THIS RADAR" in faults[0].reason
    assert "sample interval" in faults[0].reason
    assert not np.isfinite(np.frombuffer(pipe.track_p)).any()
    assert pipe.coverage_summary()["not_covered_m"] > 2.5
    verdict = pipe.input_check.verdict(False)
    assert verdict["applied"] is False and "sample interval" in verdict["reason"]


def test_a_live_radar_inside_the_envelope_with_another_window_is_scored() -> None:
    """Half the samples (a 10 ns record, 0.078 ns: inside) is scored and covered."""
    lane = simulate_lane(4, {"lane_length_m": 3.0, "n_targets_min": 2, "n_targets_max": 2,
                             "odometer": {"enabled": False}})  # fmt: skip
    short = lane.gpr.with_data(np.ascontiguousarray(lane.gpr.data[:, :256]))
    pipe = _scan_blocks([short])
    assert not [e for e in pipe.health_events if e.state == SensorState.FAULT]
    assert np.isfinite(np.frombuffer(pipe.track_p)).sum() > 50
    assert pipe.coverage_summary()["not_covered_m"] < 0.5


def _random_radar(rng: np.random.Generator) -> dict:
    """Any radar, inside the envelope or far outside it: 0.1-5 GHz, 3-60 ns records, 2-20
    samples per period, time zero 0.3-5 ns, 0.3-6 cm trace spacing."""
    fc = float(np.exp(rng.uniform(np.log(0.1e9), np.log(5e9))))
    dt = 1.0 / (fc * 1e-9 * rng.uniform(2.0, 20.0))
    window = float(rng.uniform(3.0, 60.0))
    spacing = float(rng.uniform(0.003, 0.06))
    return {
        "centre_hz": fc,
        "dt_ns": dt,
        "n_samples": int(np.clip(round(window / dt), 16, 2048)),
        "time_zero_ns": float(rng.uniform(0.3, min(5.0, window / 2))),
        "trace_rate_hz": 0.5 / spacing,
    }


@pytest.mark.parametrize("seed", range(10))
def test_any_radar_is_scored_or_refused_never_covered_unscored(seed: int) -> None:
    """Generated radars: the pipeline never fails on a valid radar; a refused one covers
    nothing and says why; a scored one covers only ground around scored window centres; and
    the result does not depend on how the stream is cut into blocks (>= 16 traces)."""
    rng = np.random.default_rng([seed, 77])
    gpr = _random_radar(rng)
    lane = simulate_lane(seed, {"lane_length_m": 2.0, "n_targets_min": 1, "n_targets_max": 1,
                                "odometer": {"enabled": False}, "gpr": gpr})  # fmt: skip
    block = lane.gpr
    if seed % 2:  # half of them without an antenna frequency in the header
        block = block.with_data(block.data, antenna_hz=None)
    whole = _scan_blocks([block])
    step = int(rng.integers(16, 60))
    edges = [*list(range(0, block.n, step)), block.n]
    if len(edges) > 2 and edges[-1] - edges[-2] < 16:  # every block holds >= 16 traces
        del edges[-2]
    parts = [
        GprBlock(
            data=block.data[a:b], seq=block.seq[a:b], host_time_s=block.host_time_s[a:b],
            position_m=block.position_m[a:b], header=block.header,
        )
        for a, b in itertools.pairwise(edges)
    ]  # fmt: skip
    cut = _scan_blocks(parts)
    p = np.frombuffer(whole.track_p)
    pos = np.frombuffer(whole.track_pos)
    verdict = whole.input_check.verdict(bool(np.isfinite(p).any()))
    covered = [s for s in whole.coverage_segments() if s["status"] == "covered"]
    if not verdict["applied"]:
        assert not covered and verdict["reason"]
        assert any(e.state == SensorState.FAULT for e in whole.health_events)
        return
    scored = pos[np.isfinite(p)]
    for s in covered:  # every covered stretch is made of scored window centres
        inside = scored[(scored >= s["start_m"]) & (scored <= s["end_m"])]
        assert inside.size and inside.min() - s["start_m"] <= 0.011
        assert s["end_m"] - inside.max() <= 0.011
    p_cut = dict(zip(np.frombuffer(cut.track_pos), np.frombuffer(cut.track_p), strict=True))
    common = [x for x in pos if x in p_cut]
    assert len(common) == len(pos) == len(p_cut)
    a = np.array([dict(zip(pos, p, strict=True))[x] for x in common])
    b = np.array([p_cut[x] for x in common])
    np.testing.assert_allclose(a, b, atol=1e-4, equal_nan=True)
