"""Link-error totals in the final summary and alarms.json; the "consumer behind" warning is
rate-limited but never loses a count."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from detect.blocks import GprBlock, GprHeader
from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.health import HealthCounters
from detect.sinks.display import LINK_COUNTERS, PlainDisplay, link_lines, summary_lines
from detect.sources.base import Item, Source, SourceExhausted
from detect.sources.threaded import ThreadedSource
from pipeline_fakes import FakeClock, FakeHead

#: link errors charged to the GPR after the run (as a faulty cable would)
ERRORS = {
    "crc_errors": 3,
    "resyncs": 2,
    "gaps": 4,
    "dropped_frames": 7,
    "overflows": 1,
    "reconnects": 1,
    "corrupt_frames": 5,
    "truncated": 1,
    "garbage_bytes": 640,
}


def test_link_counters_are_the_health_counters_named_in_the_issue() -> None:
    fields = set(HealthCounters().as_dict())
    assert set(LINK_COUNTERS) <= fields and fields - set(LINK_COUNTERS) == {"bytes"}


def test_final_summary_and_alarms_json_carry_each_sensors_link_totals(tmp_path: Path) -> None:
    cfg = compose(["run.display=false", "model.name=__none__", "model.allow_interim=true"])
    clock = FakeClock()
    src = FakeHead(clock, duration_s=3.0, targets_m=(1.0,), emi_offset_m=0.3)
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        PlainDisplay(stream=io.StringIO()),
        tmp_path,
        source_info={"paced": False},
        clock=clock,
    )
    src.open()
    drive(pipe, src, None)
    for name, n in ERRORS.items():
        src.health["gpr"].count(name, n)
    pipe.poll([src])
    summary = close_out(pipe, tmp_path)

    frames = {s: src.health[s].counters.frames for s in ("gpr", "emi")}
    assert frames["gpr"] > 0 and frames["emi"] > 0
    doc = json.loads((tmp_path / "alarms.json").read_text())
    for link in (summary["link"], doc["summary"]["link"]):
        assert {k: link["gpr"][k] for k in ERRORS} == ERRORS
        assert link["gpr"]["frames"] == frames["gpr"]
        assert link["emi"]["frames"] == frames["emi"]
        assert all(link["emi"][k] == 0 for k in ERRORS)
    lines = summary_lines(summary)
    gpr = next(x for x in lines if x.startswith("link gpr:"))
    assert gpr == (
        f"link gpr: frames {frames['gpr']}, crc_errors 3, resyncs 2, gaps 4, dropped_frames 7, "
        "overflows 1, reconnects 1, corrupt_frames 5, truncated 1, garbage_bytes 640"
    )
    assert f"link emi: frames {frames['emi']}, no link errors" in lines


def test_link_lines_skip_zero_counters_and_keep_the_order() -> None:
    lines = link_lines(
        {"gpr": {"frames": 10, "garbage_bytes": 5, "crc_errors": 1, "bytes": 99}, "gps": {}}
    )
    assert lines == [
        "link gpr: frames 10, crc_errors 1, garbage_bytes 5",
        "link gps: frames 0, no link errors",
    ]


# ----------------------------------------------------------------- "consumer behind" log


class _Burst(Source):
    """One-trace blocks as fast as asked, the fake clock moving ``step_s`` per read; after
    ``n`` blocks, ``quiet`` empty reads 1 s apart, then the source is exhausted."""

    sensors = ("gpr",)

    def __init__(self, clock: FakeClock, n: int, step_s: float, quiet: int = 0) -> None:
        super().__init__(clock=clock)
        self.fake_clock, self.n, self.step_s, self.quiet, self.i = clock, n, step_s, quiet, 0

    def _open(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list[Item]:
        self.i += 1
        self.fake_clock.t += self.step_s if self.i <= self.n else 1.0
        if self.i > self.n + self.quiet:
            raise SourceExhausted(self.name)
        if self.i > self.n:
            return []
        self.health["gpr"].frames_received(1)
        return [GprBlock.build(np.full((1, 4), self.i), GprHeader(dt_ns=0.1), seq=[self.i])]


def _behind(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "consumer behind" in r.getMessage()]


def _dropped(messages: list[str]) -> int:
    return sum(int(m) for msg in messages for m in re.findall(r"gpr (\d+) blocks?", msg))


@pytest.mark.parametrize(("step_s", "max_lines"), [(0.0, 2), (1.0, 300 // 5 + 2)])
def test_consumer_behind_is_one_line_per_interval_and_counts_every_drop(
    caplog: pytest.LogCaptureFixture, step_s: float, max_lines: int
) -> None:
    """300 blocks into a queue of 5 that nobody reads: 295 drops, each counted; the log
    gets the first at once, then one line per 5 s of the (fake) clock, the rest at close."""
    src = ThreadedSource(_Burst(FakeClock(), 300, step_s), queue_size=5, drop_log_every_s=5.0)
    with caplog.at_level(logging.WARNING, logger="detect.sources.threaded"):
        src.open()
        assert src.done.wait(10.0)
        src.close()
    c = src.health["gpr"].counters
    assert c.overflows == 295 and c.dropped_frames == 295
    lines = _behind(caplog)
    assert 1 <= len(lines) <= max_lines
    if step_s:
        assert len(lines) >= 295 // 5 - 2  # still one line per interval while it lasts
    assert _dropped(lines) == 295


def test_the_tail_of_a_burst_is_logged_once_the_interval_passes_without_more_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = ThreadedSource(_Burst(FakeClock(), 30, 0.01, quiet=20), queue_size=5)
    with caplog.at_level(logging.WARNING, logger="detect.sources.threaded"):
        src.open()
        assert src.done.wait(10.0)
        before_close = list(_behind(caplog))
        src.close()
    assert src.health["gpr"].counters.overflows == 25
    assert _dropped(before_close) == 25 and _behind(caplog) == before_close
