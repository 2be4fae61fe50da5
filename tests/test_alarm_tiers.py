"""Two alarm tiers: "alarm" at the operating point, "suspect" below it but above a floor.

Detection first: the suspect tier never changes which alarms exist at the operating point.
The tier is a field of every alarm in every output, and files written before the tiers
read as "alarm"; an alarm names its class only when that class's probability is meaningful.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from detect.alarms import AlarmConfig, AlarmLogic, ScorePoint, pick_alarms
from detect.blocks import Alarm
from detect.io.session import SessionReader, SessionWriter
from detect.sinks.display import PlainDisplay
from detect.sinks.export import AlarmJsonl, result_dict, write_all


def _profile(seed: int, n_bumps: int = 12, length_m: float = 30.0) -> list[ScorePoint]:
    """A noisy score profile with bumps of random heights (many between floor and
    threshold), class probabilities that are sure for some bumps and split for others."""
    rng = np.random.default_rng(seed)
    x = np.arange(0.0, length_m, 0.02)
    p = 0.01 + 0.015 * rng.random(x.size)
    for c, h, w in zip(rng.uniform(0.5, length_m - 0.5, n_bumps), rng.uniform(0.02, 0.9, n_bumps),
                       rng.uniform(0.03, 0.12, n_bumps), strict=True):  # fmt: skip
        p = np.maximum(p, h * np.exp(-0.5 * ((x - c) / w) ** 2))
    split = rng.random(x.size) < 0.5  # half the points: the threat split over two classes
    share = np.where(split, 0.5, 0.95)
    return [
        ScorePoint(
            float(a),
            float(b),
            float(a),
            {"ap_mine": b * k, "at_mine": b * (1 - k), "background": 1.0 - b},
        )
        for a, b, k in zip(x, p, share, strict=True)
    ]


@pytest.mark.parametrize("seed", range(8))
def test_the_suspect_tier_leaves_the_alarms_at_the_operating_point_unchanged(seed: int) -> None:
    pts = _profile(seed)
    before = pick_alarms(pts, AlarmConfig(suspect_floor=None))
    both = pick_alarms(pts, AlarmConfig(suspect_floor=0.03))
    assert [a for a in both if a.tier == "alarm"] == before  # ids, places, scores: all equal
    assert all(a.tier == "alarm" for a in before)
    # live, point by point, the same
    logic = AlarmLogic(AlarmConfig(suspect_floor=0.03))
    live = [a for p in pts for a in logic.feed(p)] + logic.finish()
    assert sorted(live, key=lambda a: a.alarm_id) == sorted(both, key=lambda a: a.alarm_id)


@pytest.mark.parametrize("seed", range(8))
def test_suspects_are_the_peaks_between_floor_and_threshold_away_from_alarms(seed: int) -> None:
    cfg = AlarmConfig(threshold=0.1, suspect_floor=0.03, nms_radius_m=0.25)
    pts = _profile(seed)
    out = pick_alarms(pts, cfg)
    alarms = [a for a in out if a.tier == "alarm"]
    suspects = [a for a in out if a.tier == "suspect"]
    x = np.array([p.position_m for p in pts])
    p = np.array([p.p_mine for p in pts])
    for s in suspects:
        assert 0.03 <= s.confidence < 0.1
        assert s.alarm_id.startswith("A-S")
        assert all(abs(s.position_m - a.position_m) > 0.25 for a in alarms)
        near = np.abs(x - s.position_m) <= 0.25  # it is the profile's maximum near it
        assert s.confidence == pytest.approx(p[near].max())
    # every local maximum in [floor, threshold) far from any alarm and from higher score
    # became a suspect (independent reference: the profile's own maxima)
    for i in range(1, p.size - 1):
        near = np.abs(x - x[i]) <= 0.25
        if not (0.035 <= p[i] < 0.095 and p[i] == p[near].max()):
            continue
        if any(abs(x[i] - a.position_m) <= 0.5 for a in alarms):
            continue
        assert any(abs(x[i] - s.position_m) <= 0.25 for s in suspects), x[i]


def test_suspects_sit_beside_a_broad_alarm_only_past_its_radius() -> None:
    x = np.arange(0.0, 6.0, 0.01)
    p = np.full_like(x, 0.01)
    for c, h in ((2.0, 0.8), (2.15, 0.07), (2.6, 0.06), (4.5, 0.02)):
        p = np.maximum(p, h * np.exp(-0.5 * ((x - c) / 0.04) ** 2))
    out = pick_alarms([ScorePoint(float(a), float(b)) for a, b in zip(x, p, strict=True)])
    got = [(a.tier, round(a.position_m, 2)) for a in out]
    # 2.15 is within the alarm's radius (its shoulder), 4.5 below the floor
    assert got == [("alarm", 2.0), ("suspect", 2.6)]


def test_class_named_only_when_its_probability_reaches_the_bar() -> None:
    def one(probs: dict[str, float]) -> Alarm:
        x = np.arange(0.0, 2.0, 0.02)
        pts = [ScorePoint(float(a), 0.9 * float(np.exp(-0.5 * ((a - 1.0) / 0.05) ** 2)),
                          class_probs=probs) for a in x]  # fmt: skip
        (a,) = pick_alarms(pts, AlarmConfig(class_min_prob=0.5))
        return a

    assert one({"ap_mine": 0.8, "background": 0.2}).class_certain
    split = one({"ap_mine": 0.45, "at_mine": 0.44, "background": 0.11})
    assert split.class_name == "ap_mine" and not split.class_certain  # the guess is kept
    assert not one({}).class_certain  # no class probabilities at all
    buf = io.StringIO()
    PlainDisplay(stream=buf).alarm(split)
    assert "class uncertain" in buf.getvalue() and "ap_mine" not in buf.getvalue()


def _alarms() -> list[Alarm]:
    sure = Alarm("A-0001", 1.5, 0.93, "ap_mine", {"gpr": 0.9}, 0.05, 10.0, 45.1, 15.2, 0.02)
    sure = replace(sure, class_probs={"ap_mine": 0.9})
    low = Alarm("A-S0001", 3.0, 0.06, "at_mine", {"emi": 0.06}, None, 12.0)
    return [sure, replace(low, tier="suspect", class_certain=False)]


def test_the_tier_is_in_every_output(tmp_path: Path) -> None:
    al = _alarms()
    res = result_dict(al, np.array([0.0]), np.array([0.1]), [], {"source": "x"}, {"name": "m"})
    paths = write_all(tmp_path, res, al)
    doc = json.loads(paths["json"].read_text())
    assert [(a["tier"], a["class_certain"]) for a in doc["alarms"]] == [
        ("alarm", True), ("suspect", False)]  # fmt: skip
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["tier"] for r in rows] == ["alarm", "suspect"]
    gj = json.loads(paths["geojson"].read_text())
    assert [f["properties"]["tier"] for f in gj["features"]] == ["alarm", "suspect"]
    j = AlarmJsonl(tmp_path / "alarms.jsonl")
    for a in al:
        j.write(a)
    j.close()
    lines = [json.loads(x) for x in (tmp_path / "alarms.jsonl").read_text().splitlines()]
    assert [x["tier"] for x in lines] == ["alarm", "suspect"]
    with SessionWriter(tmp_path / "s.h5", {}, {}) as w:
        for a in al:
            w.write(a)
    with SessionReader(tmp_path / "s.h5") as r:
        back = r.alarms()
    assert back == al and [a.tier for a in back] == ["alarm", "suspect"]
    assert [a.class_certain for a in back] == [True, False]


def test_a_session_written_before_the_tiers_reads_every_row_as_an_alarm(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    with SessionWriter(path, {}, {}) as w:
        w.write(_alarms()[0])
    with h5py.File(path, "r+") as f:  # the /alarms table as older versions wrote it
        rows = f["alarms"][()]
        old = np.dtype([(n, rows.dtype[n]) for n in rows.dtype.names if n != "tier"])
        del f["alarms"]
        f.create_dataset("alarms", data=np.array([tuple(r[n] for n in old.names) for r in rows],
                                                 dtype=old))  # fmt: skip
        scores = json.loads(f["alarms"][0]["scores_json"])
        assert "tier" not in f["alarms"].dtype.names and "class_certain" in scores
    with SessionReader(path) as r:
        (a,) = r.alarms()
    assert a.tier == "alarm" and a.alarm_id == "A-0001"


def test_a_suspect_is_quiet_an_alarm_is_loud(caplog: pytest.LogCaptureFixture) -> None:
    bells: list[Any] = []
    disp = PlainDisplay(bell=True)
    import sys

    real = sys.stderr
    sys.stderr = io.StringIO()
    try:
        with caplog.at_level(logging.INFO, logger="detect.run"):
            disp.alarm(_alarms()[1])
            bells.append(sys.stderr.getvalue())
            disp.alarm(_alarms()[0])
            bells.append(sys.stderr.getvalue())
    finally:
        sys.stderr = real
    (sus, alarm) = caplog.records
    assert sus.levelno == logging.INFO and sus.getMessage().startswith("SUSPECT A-S0001")
    assert alarm.levelno == logging.WARNING and alarm.getMessage().startswith("ALARM A-0001")
    assert bells == ["", "\a"]  # the bell for the alarm only


def test_suspect_floor_setting_from_the_config() -> None:
    import detect

    cfg = detect.compose()
    assert AlarmConfig.from_cfg(cfg.alarm).suspect_floor == pytest.approx(0.03)
    off = AlarmConfig.from_cfg(detect.compose(["alarm.suspect_floor=null"]).alarm)
    assert off.suspect_floor is None and off.suspect_config() is None
    # an uncalibrated detector's score is no probability: the floor means nothing there
    assert AlarmConfig.from_cfg(cfg.alarm, calibrated=False).suspect_config() is None
    # a floor at or above the threshold: no suspect tier (the alarms stay as they are)
    assert AlarmConfig(threshold=0.1, suspect_floor=0.2).suspect_config() is None
    from detect.errors import SettingsError

    with pytest.raises(SettingsError, match=r"alarm\.suspect_floor.*1\.5"):
        detect.compose(["alarm.suspect_floor=1.5"])


def test_a_suspect_vetoed_beside_an_alarm_does_not_hide_one_beyond_its_radius() -> None:
    """Greedy suppression in the suspect tier too: the stronger suspect peak 0.22 m from the
    alarm is answered by it (vetoed), and a vetoed candidate suppresses nothing, so the
    weaker one 0.36 m from the alarm, beyond the alarm's radius and its stretch at the
    threshold, is still shown."""
    x = np.round(np.arange(0, 1.2, 0.01), 2)
    p = np.full(x.size, 0.005)
    for c, h in ((0.0, 0.5), (0.22, 0.08), (0.36, 0.07)):
        p = np.maximum(p, h * np.exp(-0.5 * ((x - c) / 0.02) ** 2))
    cfg = AlarmConfig(threshold=0.1, hysteresis=0.05, nms_radius_m=0.2, suspect_floor=0.03)
    pts = [ScorePoint(position_m=float(a), p_mine=float(b)) for a, b in zip(x, p, strict=True)]
    out = pick_alarms(pts, cfg)
    assert [(a.tier, round(a.position_m, 2)) for a in out] == [("alarm", 0.0), ("suspect", 0.36)]
