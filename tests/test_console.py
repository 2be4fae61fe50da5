"""The console server and sink without a browser: the feed, operator outcomes into the
session's files, bad clients dropped while detection goes on, loopback by default."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="console extra not installed (pip install .[console])")
pytest.importorskip("uvicorn", reason="console extra not installed (pip install .[console])")
websockets_sync = pytest.importorskip("websockets.sync.client")

from console_harness import ConsoleRun  # noqa: E402
from detect.io.session import SessionReader  # noqa: E402
from detect.io.truth import read_truth_csv  # noqa: E402
from detect.sinks.console.hub import Hub  # noqa: E402
from detect.sinks.console.server import ConsoleError, ConsoleServer  # noqa: E402


def _read_until(ws, pred, timeout_s: float = 20.0) -> list[dict]:  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            raw = ws.recv(timeout=1.0)
        except TimeoutError:
            continue
        data = json.loads(raw)
        for m in data if isinstance(data, list) else [data]:
            seen.append(m)
            if pred(m):
                return seen
    kinds = sorted({m["type"] for m in seen})
    raise AssertionError(f"not seen in {timeout_s} s; got types {kinds}")


def test_feed_alarms_utc_outcome_and_bad_clients(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with ConsoleRun(out, 14.0) as run:
        url = f"ws://127.0.0.1:{run.port}/ws"
        # garbage and a vanishing client first: both dropped, the run goes on
        with websockets_sync.connect(url) as bad:
            bad.send("this is not json")
            with pytest.raises(Exception):  # noqa: B017 - closed by the server
                for _ in range(200):
                    bad.recv(timeout=5.0)
        with websockets_sync.connect(url):
            pass  # connects and goes away at once
        with websockets_sync.connect(url) as ws:
            seen = _read_until(ws, lambda m: m["type"] == "alarm")
            assert any(m["type"] == "gpr" and m.get("data") for m in seen)  # radargram columns
            assert any(m["type"] == "status" and m["threshold"] is not None for m in seen)
            alarm = next(m["alarm"] for m in seen if m["type"] == "alarm")
            assert alarm["utc"].endswith("Z") and isinstance(alarm["time_s"], float)
            ws.send(json.dumps({"type": "ack", "id": alarm["id"], "outcome": "mine"}))
            ok = _read_until(ws, lambda m: m["type"] == "ack_ok")[-1]
            assert ok["id"] == alarm["id"] and ok["outcome"] == "mine"
            ws.send(json.dumps({"type": "ack", "id": alarm["id"], "outcome": "maybe"}))
            err = _read_until(ws, lambda m: m["type"] == "ack_error")[-1]
            assert "outcome must be one of" in err["error"]
    assert run.rc["rc"] == 0  # the bad clients changed nothing about the run
    rec = [json.loads(x) for x in (out / "outcomes.jsonl").read_text().splitlines()]
    assert [(r["id"], r["outcome"]) for r in rec] == [(alarm["id"], "mine")]
    truth = read_truth_csv(out / "truth.csv")  # the format training and evaluation read
    assert len(truth) == 1 and float(truth[0]["x_m"]) == pytest.approx(alarm["position_m"])
    lines = [json.loads(x) for x in (out / "alarms.jsonl").read_text().splitlines()]
    assert lines and all(a["utc"].endswith("Z") for a in lines)  # UTC on every alarm
    assert alarm["tier"] in ("alarm", "suspect") and all(a["tier"] for a in lines)
    with SessionReader(out / "session.h5") as r:  # and the outcome is in the session
        assert [(o["id"], o["outcome"]) for o in r.outcomes()] == [(alarm["id"], "mine")]


def test_the_console_binds_loopback_only_unless_a_token_is_set() -> None:
    with pytest.raises(ConsoleError, match=r"console\.token"):
        ConsoleServer(Hub(), host="0.0.0.0", port=0)
    ConsoleServer(Hub(), host="0.0.0.0", port=0, token="s3cret")  # allowed, not started


def test_a_lagging_client_skips_to_a_snapshot() -> None:
    hub = Hub(ring=4)
    seq, _ = hub.snapshot()
    for k in range(10):
        hub.publish({"type": "message", "text": str(k), "loud": False})
    assert hub.since(seq) is None  # too far behind: the server sends a snapshot instead
    seq2, msgs = hub.since(10 - 2)  # type: ignore[misc]
    assert seq2 == 10 and [json.loads(m)["text"] for m in msgs] == ["8", "9"]
