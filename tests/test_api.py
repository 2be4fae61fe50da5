"""The public API (``import detect``) against independent references: header bytes of a
real DZT, the simulator's own arrays and truth, the weights' hash, the ``detect scan``
command's files, and the model re-run on the windows the scan kept."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import detect
from conftest import real_file
from detect.errors import EXIT_USAGE, TaskError

REPO = Path(__file__).resolve().parents[1]
MINES = ("ap_mine", "at_mine")


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A 5 m simulated lane with a Type 72A AP mine and a can, written as a session."""
    from detect.sim.lane import simulate_lane
    from detect.sim.settings import settings_from
    from detect.sim.task import write_lane

    s = settings_from(
        {**detect.compose().sim, "lane_length_m": 5.0, "n_targets_min": 2, "n_targets_max": 2}
    )
    sim = simulate_lane(3, s)
    path = tmp_path_factory.mktemp("lane") / "lane.h5"
    write_lane(path, sim, {}, s)
    return path, sim


@pytest.fixture(scope="module")
def scanned(lane: tuple[Path, Any]) -> detect.ScanResult:
    return detect.scan(lane[0], keep_windows=True)


def test_import_detect_loads_neither_the_api_nor_torch_until_used() -> None:
    code = (
        "import sys, detect\n"
        "assert 'detect.api' not in sys.modules and 'torch' not in sys.modules\n"
        "assert 'scan' in dir(detect) and detect.__version__\n"
        "f = detect.read_gpr\n"
        "assert 'detect.api' in sys.modules and 'torch' not in sys.modules, 'read_gpr: torch'\n"
        "try:\n    detect.no_such_name\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr


def test_read_gpr_of_a_real_dzt_matches_its_header_bytes() -> None:
    path = real_file("dzt/gprpy/FILE____032.DZT")
    head = path.read_bytes()[:128]
    n_samples, bits = struct.unpack_from("<HH", head, 4)
    range_ns = struct.unpack_from("<f", head, 26)[0]
    f = detect.read_gpr(path)
    assert isinstance(f, detect.GprFile) and f.format == "dzt"
    assert f.n_samples == n_samples == 512 and bits == 16
    assert f.n_traces == (path.stat().st_size - 1024) // (n_samples * 2)
    assert f.dt_ns == pytest.approx(range_ns / n_samples) and f.window_ns == pytest.approx(48.0)
    word = np.frombuffer(path.read_bytes(), "<u2", count=1, offset=1024 + (7 * 512 + 100) * 2)
    assert f.block.data[7, 100] == pytest.approx(float(word[0]) - 32768)


def test_unreadable_input_is_one_typed_line(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a radar file\n")
    for call in (detect.read_gpr, detect.open_session, detect.scan):
        for p in (junk, tmp_path / "missing.dzt"):
            with pytest.raises(detect.InputError) as e:
                call(p)  # type: ignore[operator]
            assert str(p.name) in str(e.value) and "\n" not in str(e.value)
            assert isinstance(e.value, detect.DetectError) and e.value.result is None


def test_open_session_gives_the_simulator_s_arrays(lane: tuple[Path, Any]) -> None:
    path, sim = lane
    with detect.open_session(path) as rd:
        assert isinstance(rd, detect.SessionReader)
        gpr, emi = rd.gpr(), rd.emi()
        assert gpr is not None and emi is not None
        np.testing.assert_array_equal(gpr.data, sim.gpr.data)
        np.testing.assert_array_equal(emi.position_m, sim.emi.position_m)
        assert [t["x_m"] for t in rd.truth()] == pytest.approx([t["x_m"] for t in sim.truth])


def test_load_model_gives_the_shipped_weights_and_card() -> None:
    m = detect.load_model("fused")
    weights = REPO / "models" / "fused" / "weights.safetensors"
    sums = (REPO / "models" / "fused" / "SHA256SUMS").read_text().split()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest == sums[sums.index("weights.safetensors") - 1]
    assert m.card["weights"]["sha256"] == digest and m.name == "fused"
    assert m.has_gpr and m.has_emi and m.spec.n_pos == 32
    with pytest.raises(detect.ModelError, match=r"available: .*emi_only.*fused"):
        detect.load_model("no_such_model")
    with pytest.raises(detect.ModelError, match="grid_m"):  # weights meet their pipeline only
        detect.load_model("fused", detect.compose(["window.grid_m=0.03"]))


def test_scan_of_a_simulated_lane_finds_its_mine_and_covers_the_lane(
    lane: tuple[Path, Any], scanned: detect.ScanResult
) -> None:
    _, sim = lane
    mines = [t for t in sim.truth if t["class"] in MINES]
    assert mines
    for t in mines:
        near = [a for a in scanned.alarms if abs(a.position_m - t["x_m"]) < 0.25]
        assert near and max(a.confidence for a in near) > 0.5, t
    assert scanned.fully_covered and scanned.not_covered_reasons == []
    cov = scanned.coverage
    assert all(a["end_m"] == pytest.approx(b["start_m"]) for a, b in pairwise(cov))
    covered = [s for s in cov if s["status"] == "covered"]
    # one covered stretch, between window centres: from the first scored with both sensors
    # (the EMI has no validity mask: at the lane start its window must be whole) to the last
    assert len(covered) == 1
    g = scanned.model["window"]["grid_m"]
    track = scanned.track_position_m
    assert covered[0]["start_m"] >= track[0] - g / 2 - 1e-9
    assert np.isclose(track - g / 2, covered[0]["start_m"]).any()
    assert covered[0]["end_m"] == pytest.approx(track[-1] + g / 2)
    assert "exit_status" not in scanned.summary and scanned.messages == []
    assert {b.header.sensor for b in scanned.blocks} == {"gpr", "emi"}


def test_scan_gives_what_the_scan_command_writes(
    lane: tuple[Path, Any], scanned: detect.ScanResult, tmp_path: Path
) -> None:
    from detect.app.scan import scan_task

    assert scan_task(detect.compose([f"input.path={lane[0]}", f"output.dir={tmp_path}"])) == 0
    doc = json.loads((tmp_path / "alarms.json").read_text())
    mine = scanned.to_dict()
    for key in ("track", "coverage", "model"):
        assert mine[key] == doc[key], key
    strip = ("id", "time_s")
    assert [{k: v for k, v in a.items() if k not in strip} for a in mine["alarms"]] == [
        {k: v for k, v in a.items() if k not in strip} for a in doc["alarms"]
    ]
    paths = scanned.save(tmp_path / "api")
    assert json.loads(paths["json"].read_text())["track"] == doc["track"]


def test_the_kept_windows_are_what_the_model_scored(scanned: detect.ScanResult) -> None:
    w = scanned.windows
    assert w is not None and w.gpr is not None and w.emi is not None
    n = len(scanned.track_p_mine)
    assert w.gpr.shape == (n, 32, 128) and w.emi.shape == (n, 32, 8)
    np.testing.assert_array_equal(w.position_m, scanned.track_position_m)
    again = detect.load_model("fused").predict(w.gpr, w.emi).p_mine
    np.testing.assert_allclose(again, scanned.track_p_mine, rtol=0, atol=1e-6)


def test_settings_and_model_errors_are_typed(lane: tuple[Path, Any]) -> None:
    with pytest.raises(detect.SettingsError, match="treshold"):
        detect.scan(lane[0], overrides=["alarm.treshold=0.5"])
    with pytest.raises(detect.ModelError, match="no_such_model"):
        detect.scan(lane[0], model="no_such_model")
    with pytest.raises(detect.SettingsError, match="not both"):
        detect.Detector(detect.compose(), overrides=["alarm.threshold=0.6"])


def test_a_radar_outside_the_envelope_is_not_scored_and_says_why() -> None:
    f = real_file("dzt/gprpy/FILE____032.DZT")  # a 400 MHz profile: no mine model for it
    res = detect.scan(f)
    assert res.model["applied"] is False and "spectrum peak" in res.model["reason"]
    assert len(res.track_p_mine) == 0 and not res.fully_covered
    res = detect.scan(f, overrides=["model.input_check=warn"])
    assert res.model["applied"] is True
    assert any("OUTSIDE ITS ENVELOPE" in m for m in res.messages)
    assert res.model["name"] == "gpr_only"  # a GPR-only file gets the GPR model


class _FailsOnThirdCall:
    """A scorer object (the Scorer interface) that fails part-way through a lane."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0
        self.spec, self.sensors, self.calibrated = inner.spec, inner.sensors, True
        self.gpr_input = inner.gpr_input

    def predict(self, gpr: Any, emi: Any) -> Any:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("scorer broke")
        return self.inner.predict(gpr, emi)

    def info(self) -> dict[str, Any]:
        return self.inner.info()


def test_a_failure_part_way_keeps_what_was_scored_and_never_reports_clear(
    lane: tuple[Path, Any], scanned: detect.ScanResult
) -> None:
    from detect.model.scorers import ClassifierScorer

    scorer = _FailsOnThirdCall(ClassifierScorer(detect.load_model("fused")))
    with pytest.raises(detect.ProcessingError, match="scorer broke") as e:
        detect.scan(lane[0], model=scorer)
    part = e.value.result
    assert part is not None and 0 < len(part.track_p_mine) < len(scanned.track_p_mine)
    n = len(part.track_p_mine)
    np.testing.assert_allclose(part.track_p_mine, scanned.track_p_mine[:n], atol=1e-6)
    assert not part.fully_covered and any("inside the lane" in r for r in part.not_covered_reasons)
    assert "scorer broke" in part.summary["failed"]


def test_export_task_writes_an_onnx_file_with_the_card_and_prints_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra")
    import torch

    from detect.app.export import export_task
    from detect.model.card import preprocessing_from_cfg
    from detect.model.classifier import save_model
    from detect.model.nets import CalibratedNet, FusionNet, NetConfig

    torch.manual_seed(0)
    model_dir = tmp_path / "tiny"
    prep = preprocessing_from_cfg(detect.compose())
    save_model(model_dir, CalibratedNet(FusionNet(NetConfig(width=4))), {"name": "tiny",
               "preprocessing": prep})  # fmt: skip
    out = tmp_path / "tiny.onnx"
    for bad in (tmp_path / "tiny.txt", model_dir):
        with pytest.raises(TaskError) as e:
            export_task(detect.compose([f"output.path={bad}", f"model.name={model_dir}"]))
        assert e.value.exit_code == EXIT_USAGE
    capfd.readouterr()
    assert export_task(detect.compose([f"output.path={out}", f"model.name={model_dir}"])) == 0
    printed = capfd.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith(f"wrote {out}")  # torch's chatter: none
    diff = float(printed[0].split("max |difference| ")[1].split()[0])
    assert diff < 1e-5
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["detect.card"])["preprocessing"] == prep
    assert meta["detect.model"] == "tiny" and "present" in meta["detect.inputs"]
    with pytest.raises(TaskError) as e:  # never overwritten
        export_task(detect.compose([f"output.path={out}", f"model.name={model_dir}"]))
    assert e.value.exit_code == EXIT_USAGE and "exists" in str(e.value)


def test_scan_takes_the_configured_walking_speed_for_a_time_triggered_file() -> None:
    f = real_file("rd3/impdar/ten_col.rd3")  # MALA, one trace every 0.1 s, no spacing
    res = detect.scan(f, overrides=["input.walking_speed_m_s=1.0"])
    assert res.source["trace_spacing_m"] == pytest.approx(0.1)
    assert "walking speed 1 m/s" in res.source["trace_spacing_from"]
    assert detect.scan(f).source["trace_spacing_m"] == pytest.approx(0.05)  # the 0.5 m/s default
