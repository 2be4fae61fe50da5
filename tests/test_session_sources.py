"""ReplaySource pacing and content, GprFileSource, `detect record`, `detect info/convert`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import real_file
from detect.app.record import record_task
from detect.blocks import GprBlock, GpsFix, MdBlock
from detect.cli import main
from detect.config import compose
from detect.io.formats import read_gpr
from detect.io.session import SessionReader, SessionWriter
from detect.sources import replay as replay_mod
from detect.sources.base import SourceError
from detect.sources.file import GprFileSource
from detect.sources.registry import create_source
from test_session_recording import emi_block, gpr_block


@pytest.fixture()
def session(tmp_path):
    p = tmp_path / "rec.h5"
    with SessionWriter(p, {}, {}) as w:
        for i in range(5):  # GPR blocks start at 0.1 s steps, EMI blocks too
            w.write(gpr_block(i))
            w.write(emi_block(i))
            w.write(GpsFix(0.1 * i + 0.05, 45.0, 7.0))
    return p


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def test_replay_fast_delivers_everything_as_recorded(session) -> None:
    src = create_source({"kind": "replay", "path": str(session), "speed": None})
    assert not src.paced and set(src.sensors) == {"gpr", "emi", "gps"}
    with src:
        items = list(src.iter_items())
    with SessionReader(session) as r:
        expect = list(r.iter_items())
    assert len(items) == len(expect) == 15
    for a, b in zip(items, expect, strict=True):
        assert type(a) is type(b)
        if isinstance(a, GprBlock | MdBlock):
            np.testing.assert_array_equal(a.data, b.data)
            np.testing.assert_array_equal(a.host_time_s, b.host_time_s)
    assert src.health["gpr"].counters.frames == 50
    assert src.health["emi"].counters.frames == 500


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_replay_keeps_original_pacing(session, monkeypatch, speed: float) -> None:
    clock = FakeClock()
    monkeypatch.setattr(replay_mod.time, "sleep", clock.sleep)
    src = replay_mod.ReplaySource(session, speed=speed, clock=clock)
    delivered: list[tuple[float, float]] = []
    with src:
        t_wall0 = clock()
        for _ in range(200):
            try:
                items = src.read(0.05)
            except replay_mod.SourceExhausted:
                break
            for it in items:
                t = it.host_time_s if isinstance(it, GpsFix) else float(it.host_time_s[0])
                delivered.append((t, clock() - t_wall0))
    assert len(delivered) == 15
    for t_rec, t_wall in delivered:
        # never early; never more than one read timeout late
        assert t_wall >= t_rec / speed - 1e-9
        assert t_wall <= t_rec / speed + 0.05 + 1e-9


def test_file_source_blocks_positions_and_gps(tmp_path) -> None:
    path = real_file("rd3/impdar/ten_col.rd3")
    with pytest.raises(SourceError, match="trace_spacing_m"):
        GprFileSource(path).open()
    src = create_source(
        {"kind": "file", "path": str(path), "trace_spacing_m": 0.25, "block_traces": 4}
    )
    with src:
        items = list(src.iter_items())
    blocks = [b for b in items if isinstance(b, GprBlock)]
    assert [b.n for b in blocks] == [4, 4, 2]
    pos = np.concatenate([b.position_m for b in blocks])
    np.testing.assert_allclose(pos, np.arange(10) * 0.25)
    whole = read_gpr(path)
    np.testing.assert_array_equal(np.concatenate([b.data for b in blocks]), whole.block.data)
    fixes = [f for f in items if isinstance(f, GpsFix)]
    assert [f.utc_s for f in fixes] == [16 * 3600 + 58 * 60 + 43]  # only trace 7 is in the data


def test_record_task_copies_a_replayed_session(session, tmp_path) -> None:
    out = tmp_path / "out"
    cfg = compose(
        [
            "source=replay",
            f"input.path={session}",
            "replay.speed=null",
            f"run.out_dir={out}",
            "run.duration_s=null",
        ]
    )
    assert record_task(cfg) == 0
    with SessionReader(out / "session.h5") as r, SessionReader(session) as orig:
        np.testing.assert_array_equal(r.gpr().data, orig.gpr().data)
        np.testing.assert_array_equal(r.emi().data, orig.emi().data)
        assert len(r.gps()) == 5
        assert r.config["source"]["kind"] == "replay"
        assert any(e.reason == "closed" for e in r.health())


def test_cli_info_json_and_convert_round_trip(tmp_path, capsys) -> None:
    src = real_file("dzt/gprpy/FILE____032.DZT")
    assert main(["info", str(src), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in (
        "format",
        "n_traces",
        "n_samples",
        "dt_ns",
        "window_ns",
        "trace_spacing_m",
        "antenna_mhz",
        "n_channels",
    ):
        assert key in info
    assert (info["format"], info["n_traces"], info["n_samples"]) == ("dzt", 1040, 512)
    original = read_gpr(src)
    for name in ("copy.h5", "copy.sgy"):
        out = tmp_path / name
        assert main(["convert", str(src), str(out)]) == 0
        capsys.readouterr()
        assert main(["info", str(out), "--json"]) == 0
        back = json.loads(capsys.readouterr().out)
        assert back["format"] == ("session" if name.endswith(".h5") else "segy")
        for key in ("n_traces", "n_samples", "dt_ns", "window_ns", "antenna_mhz"):
            assert back[key] == pytest.approx(info[key]), key
        assert back["trace_spacing_m"] == pytest.approx(0.02, abs=1e-3)
        np.testing.assert_array_equal(read_gpr(out).block.data, original.block.data)
    assert main(["convert", str(src), str(tmp_path / "x.txt")]) == 2
    assert main(["info", str(src)]) == 0
    text = capsys.readouterr().out
    assert "dzt" in text and "400 MHz" in text


def test_file_source_paced_at_trace_rate(monkeypatch) -> None:
    from detect.sources import file as file_mod

    clock = FakeClock()
    monkeypatch.setattr(file_mod.time, "sleep", clock.sleep)
    path = real_file("rd3/impdar/ten_col.rd3")  # TIME INTERVAL 0.1 s -> 10 traces/s
    src = GprFileSource(path, trace_spacing_m=0.1, speed=2.0, block_traces=3, clock=clock)
    sent = 0
    with src:
        t0 = clock()
        for _ in range(100):
            try:
                items = src.read(0.05)
            except file_mod.SourceExhausted:
                break
            for b in items:
                if isinstance(b, GprBlock):
                    sent += b.n
                    # trace k is due at k / (rate * speed); none goes out early
                    assert clock() - t0 >= (sent - 1) / 20.0 - 1e-9
    assert sent == 10


def _replay_fast_health(path, monkeypatch) -> tuple[list[tuple[str, str, float]], float]:
    """Replay ``path`` as fast as possible on a wall clock that jumps 5 s per read; the health
    events as (sensor, state, time) and the stall timeout."""
    wall = FakeClock()
    monkeypatch.setattr(replay_mod.time, "sleep", wall.sleep)
    src = create_source({"kind": "replay", "path": str(path), "speed": None})
    src.clock = wall
    events = []
    with src:
        while True:
            try:
                src.read(0.0)
            except replay_mod.SourceExhausted:
                break
            wall.t += 5.0
            events += [(e.sensor, e.state.name, e.host_time_s) for e in src.poll_health()]
    return events, src.health["gpr"].stall_timeout_s


def test_replay_fast_reports_a_gap_in_the_recording_as_fault(tmp_path, monkeypatch) -> None:
    """As fast as the pipeline takes it, a replay's health runs on the recording's time: a
    3 s GPR gap (EMI going on) is FAULT from 2 s after its start to its end, however slow
    or fast the machine (the wall clock here jumps 5 s per read)."""
    p = tmp_path / "gap.h5"
    with SessionWriter(p, {}, {}) as w:
        for i in range(60):  # 6 s; GPR missing from 1.0 s to 4.0 s
            if not 10 <= i < 40:
                w.write(gpr_block(i))
            w.write(emi_block(i))
    events, stall = _replay_fast_health(p, monkeypatch)
    gpr = [(state, t) for s, state, t in events if s == "gpr"]
    assert [s for s, _ in gpr] == ["OK", "FAULT", "OK"]
    last, first = 0.99, 4.0  # the last trace before the gap, the first after
    # polled at least every stall/10 of data time, plus one EMI block (0.1 s)
    assert last + stall < gpr[1][1] <= last + stall + stall / 10 + 0.1 + 1e-9
    assert first <= gpr[2][1] <= first + stall / 10 + 0.1 + 1e-9
    assert [s for s, state, _ in events if state == "FAULT"] == ["gpr"]


@pytest.mark.parametrize("seed", range(12))
def test_replay_fast_reports_every_long_gap_generated(tmp_path, monkeypatch, seed: int) -> None:
    """Generated gaps (one stream or both, at the very start or later, short or long): as fast
    as possible, each gap in a stream longer than the stall timeout is FAULT between its
    stall time and the stream's return, and a gap shorter than it is not."""
    rng = np.random.default_rng(seed)
    off: dict[str, tuple[int, int]] = {}
    for sensor in ("gpr", "emi"):
        if rng.random() < 0.75:
            a = int(rng.choice([1, int(rng.integers(2, 40))]))
            off[sensor] = (a, a + int(rng.integers(5, 35)))  # 0.5-3.5 s of 0.1 s blocks
    if rng.random() < 0.3 and off:  # both streams silent together
        off = dict.fromkeys(("gpr", "emi"), next(iter(off.values())))
    p = tmp_path / "gaps.h5"
    with SessionWriter(p, {}, {}) as w:
        for i in range(80):
            for sensor, block in (("gpr", gpr_block), ("emi", emi_block)):
                a, b = off.get(sensor, (-1, -1))
                if not a <= i < b:
                    w.write(block(i))
    events, stall = _replay_fast_health(p, monkeypatch)
    for sensor in ("gpr", "emi"):
        faults = [t for s, state, t in events if s == sensor and state == "FAULT"]
        a, b = off.get(sensor, (0, 0))
        last, first = a * 0.1 - (0.01 if sensor == "gpr" else 0.001), b * 0.1
        if first - last > stall + 2 * stall / 10 + 0.1:
            assert len(faults) == 1 and last + stall < faults[0] <= first + 1e-9, (off, events)
        elif first - last <= stall:
            assert faults == [], (off, events)
