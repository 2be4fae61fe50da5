"""The chaos harness (detect.chaos): its invariant checker, its schedules, and short real runs
of `detect run source=sensor_head` against emulated heads under faults. The long soak is
scripts/chaos_soak.py (docs/reliability.md)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.chaos import (
    KINDS,
    FaultEvent,
    Schedule,
    Target,
    TargetVerdict,
    Walk,
    check_targets,
    exit_status_problems,
    generate,
    run_schedule,
)

NC = {"status": "not_covered", "missing": ["gpr"]}


def _verdicts(targets: list[Target], alarms: list, cov: list | None, rows: list | None, to_m=None):
    return [v.verdict for v in check_targets(targets, alarms, cov, rows, to_m)]


def test_a_target_scored_as_covered_without_an_alarm_is_a_silent_miss() -> None:
    t = [Target(0, 2.0)]
    cov = [
        {"start_m": 0.0, "end_m": 0.6, **NC},
        {"start_m": 0.6, "end_m": 5.0, "status": "covered"},
    ]
    rows = [{"start_m": 0.0, "end_m": 0.6, "sensor": "gpr"}]
    assert _verdicts(t, [], cov, rows, float("inf")) == ["SILENT_MISS"]
    # an alarm within the halo, and only there, detects it
    assert _verdicts(t, [{"position_m": 2.12}], cov, rows, float("inf")) == ["alarmed"]
    assert _verdicts(t, [{"position_m": 2.2}], cov, rows, float("inf")) == ["SILENT_MISS"]


def test_not_covered_must_be_said_in_alarms_json_and_in_the_session_record() -> None:
    t = [Target(0, 3.0)]
    cov = [{"start_m": 2.5, "end_m": 3.2, **NC}]
    rows = [{"start_m": 2.5, "end_m": 3.2, "sensor": "gpr"}]
    assert _verdicts(t, [], cov, rows, float("inf")) == ["not_covered"]
    assert _verdicts(t, [], cov, [], float("inf")) == ["SILENT_MISS"]  # the file says clear
    assert _verdicts(t, [], [], rows, float("inf")) == ["SILENT_MISS"]  # the report says clear
    assert _verdicts(t, [], None, rows, float("inf")) == ["SILENT_MISS"]  # no report at all
    # a killed session's record reaches only to 2.0 m: beyond it is unknown, never clear
    assert _verdicts(t, [], cov, [], 2.0) == ["not_covered"]
    assert _verdicts(t, [], cov, None, None) == ["SILENT_MISS"]  # no readable file


def test_epochs_are_kept_apart_and_default_to_zero() -> None:
    """A target of the restarted head (epoch 1) is not detected by an alarm of the first
    head (epoch 0) at the same odometer reading, nor excused by its not-covered ground."""
    t = [Target(1, 2.0, (1,))]
    old = [{"start_m": 1.8, "end_m": 2.3, **NC}]
    old_rows = [{"start_m": 1.8, "end_m": 2.3, "sensor": "gpr"}]
    assert _verdicts(t, [{"position_m": 2.0}], old, old_rows, None) == ["SILENT_MISS"]
    new = [{**old[0], "epoch": 1}]
    new_rows = [{**old_rows[0], "epoch": 1}]
    assert _verdicts(t, [], new, new_rows, float("inf")) == ["not_covered"]
    assert _verdicts(t, [{"position_m": 2.0, "epoch": 1}], [], [], 9.0) == ["alarmed"]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_generated_schedules_are_valid_and_replay_from_their_json(seed: int) -> None:
    s = generate(seed)
    assert Schedule.from_json(s.to_json()) == s
    assert len(s.events) <= 3 and all(e.kind in KINDS for e in s.events)
    restarts = [e for e in s.events if e.kind == "restart"]
    assert len(s.walks) == 1 + len(restarts)
    for e in s.events:
        assert e.walk < len(s.walks) and 0 < e.at_s < s.walks[e.walk].lane_s
    for w in s.walks:
        xs = list(w.targets_m)
        assert all(b - a >= 1.5 for a, b in pairwise(xs))
        assert all(0.5 < x < w.lane_s * 0.5 for x in xs)
    assert generate(seed) == s  # the seed alone replays it


def test_an_exit_status_of_complete_must_not_hide_ground_not_covered() -> None:
    nc = [TargetVerdict(Target(0, 2.0), "not_covered", "")]
    ok = [TargetVerdict(Target(0, 2.0), "alarmed", "")]
    assert exit_status_problems(0, nc, [])
    assert exit_status_problems(4, nc, []) == []
    assert exit_status_problems(0, ok, []) == []
    assert exit_status_problems(0, ok, ["disk_full@w0:3.0s"])
    assert exit_status_problems(5, ok, ["disk_full@w0:3.0s"]) == []


def test_a_backward_clock_step_may_or_may_not_start_an_epoch() -> None:
    """Seed 2500010 of the soak: the head's clock stepped back 2.74 s (not taken for a
    restart, so no new epoch), then the head restarted: the next walk is epoch 1, not 2. A
    restart is sure to start an epoch; a clock step or an odometer jump only may."""
    from detect.chaos import _Walker

    sched = Schedule(1, (Walk(12.0, (1.3, 5.0)), Walk(12.0, (1.5, 3.3))),
                     (FaultEvent("clock_jump", 3.8, 0, 0.0, -2.74),
                      FaultEvent("restart", 4.0, 0, 0.6)))  # fmt: skip
    walker = _Walker(sched, 0)
    walker.reached_s, walker.back_clock, walker.jumps = [4.0, 12.0], [1, 0], [[], [(9.0, 1.0)]]
    got = [(t.walk, t.position_m, t.epochs) for t in walker.targets()]
    assert got == [(0, 1.3, (0, 1)), (1, 1.5, (1, 2, 3)), (1, 3.3, (1, 2, 3))]
    # the pipeline's output of that run: walk 1's targets alarmed in epoch 1
    alarms = [{"position_m": 1.28, "epoch": 0}, {"position_m": 1.52, "epoch": 1},
              {"position_m": 3.26, "epoch": 1}]  # fmt: skip
    assert _verdicts(walker.targets(), alarms, [], []) == ["alarmed"] * 3


def test_a_bad_fault_kind_is_named() -> None:
    with pytest.raises(ValueError, match="toaster"):
        FaultEvent("toaster", 1.0)


# ------------------------------------------------------------------- the real pipeline

#: seeded schedules for the default suite: the restart of issue 12 item 1, and a cable
#: pulled over a target with garbage on the line
SHORT = (
    Schedule(
        11,
        (Walk(8.0, (1.6, 3.2)), Walk(7.0, (1.9,))),
        (FaultEvent("restart", 6.9, 0, 1.0),),
    ),
    Schedule(
        12,
        (Walk(9.0, (1.5, 3.0)),),
        (FaultEvent("garbage", 2.0, 0, 0.0, 700.0), FaultEvent("unplug", 5.4, 0, 1.5)),
    ),
)


@pytest.mark.parametrize("schedule", SHORT, ids=lambda s: f"seed{s.seed}")
def test_the_pipeline_never_silently_clears_a_target_under_faults(
    schedule: Schedule, tmp_path: Path
) -> None:
    r = run_schedule(schedule, tmp_path)
    assert not r.errors, r.report() + "\n" + r.stderr_tail
    assert r.counts()["targets"] >= 2, r.report()
    assert r.silent_misses == [], r.report()
    assert r.data_lost == 0, r.report()
    # both schedules take a sensor down (restart, unplug): the exit status says so
    assert r.exit_code == 4, r.report() + "\n" + r.stderr_tail
