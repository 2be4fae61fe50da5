"""The doubt rule after a silence of every position stream (detect.engine.watch.Reckoning)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from detect.engine.watch import Reckoning, head_for_coverage


@dataclass
class _Speed:
    speed_m_s: float = 0.5


@dataclass
class _Aligner:
    head_position_m: float = 0.0
    head_time_s: float = 0.0
    speed: _Speed = field(default_factory=_Speed)


def _walk(
    steps: list[tuple[float, float | None, bool, int]],
) -> list[tuple[float, float] | None]:
    """``(now, new position or None (silent), faulted, frames lost so far)`` per poll."""
    al, r, out = _Aligner(), Reckoning(), []
    for now, pos, faulted, lost in steps:
        if pos is not None:
            al.head_position_m, al.head_time_s = pos, now
        head = head_for_coverage(al, faulted, now)
        out.append(r.step(al, head, faulted, now, lost))
    return out


def test_a_silence_with_frames_lost_and_the_odometer_behind_is_in_doubt() -> None:
    got = _walk([(1.0, 2.5, False, 0), (1.5, None, True, 0), (2.5, None, True, 0),
                 (2.6, 2.1, True, 30)])  # fmt: skip
    assert got[:3] == [None, None, None]
    assert got[3] == pytest.approx((2.5, 2.5 + 0.5 * 1.5))


@pytest.mark.parametrize(
    "case",
    [
        # the pipeline fell behind and reads its backlog: nothing was lost
        [(1.0, 2.5, False, 0), (1.8, None, True, 0), (1.9, 2.55, False, 0)],
        # the head walked on: it resumes ahead of the reckoned position
        [(1.0, 2.5, False, 0), (2.0, None, True, 0), (2.1, 3.1, True, 50)],
        # one sensor down while positions keep coming (never silent)
        [(1.0 + 0.05 * i, 2.5 + 0.025 * i, True, 0) for i in range(40)],
        # silent without a FAULT: nothing is reckoned
        [(1.0, 2.5, False, 0), (2.0, None, False, 0), (2.1, 2.0, False, 10)],
    ],
)
def test_no_doubt_without_a_lost_reckoned_stretch(case: list) -> None:
    assert all(x is None for x in _walk(case))


def test_each_silence_is_judged_on_its_own() -> None:
    got = _walk([(1.0, 2.5, False, 0), (2.0, None, True, 0), (2.1, 2.4, True, 20),
                 (2.2, 2.45, True, 20), (3.2, None, True, 20), (3.3, 3.5, True, 20)])  # fmt: skip
    assert got[2] == pytest.approx((2.5, 3.0))  # lost frames, resumed behind
    assert got[5] is None  # the second silence lost nothing and the head walked on
