"""The console's shared state: what the pipeline thread publishes and the server reads.

The pipeline thread only appends to a bounded ring of encoded messages (O(1), never
blocks, never waits for a client); each browser connection reads the ring at its own
pace. A client that falls behind by more than the ring holds skips ahead to a fresh
snapshot (frames dropped for the slow client, never for the others). Operator outcomes
come back from the browser and are written here, in the server thread, durably: one JSON
line per acknowledgement (``outcomes.jsonl``) and the checked objects as a truth CSV
(:mod:`detect.io.truth` format) in the run's output directory. The session recording is
written by the pipeline thread only: each outcome also waits in a queue that
:class:`ConsoleSink` hands to the recorder (``/outcomes`` of session.h5) at its next flush.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from detect.io.truth import TRUTH_COLUMNS

log = logging.getLogger("detect.console")

#: what an operator can record after checking an alarm
OUTCOMES = ("mine", "clutter", "nothing_found", "not_checked")


def _clean(x: Any) -> Any:
    """JSON without NaN/inf (browsers' JSON.parse refuses them): None instead."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def encode(msg: dict[str, Any]) -> str:
    return json.dumps(_clean(msg), separators=(",", ":"))


class Hub:
    """Bounded message ring + the snapshot a new (or lagging) client starts from."""

    def __init__(self, out_dir: Path | None = None, ring: int = 512) -> None:
        self.out_dir = out_dir
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, str]] = deque(maxlen=ring)
        self._seq = 0
        self.n_clients = 0
        #: the latest message of each kind that a snapshot repeats (status, health...)
        self._latest: dict[str, str] = {}
        self._health: dict[str, str] = {}
        self._alarms: dict[str, dict[str, Any]] = {}
        self._track: deque[tuple[float, float]] = deque(maxlen=4000)
        self.outcomes: dict[str, dict[str, Any]] = {}
        #: outcomes not yet handed to the pipeline thread (for the session recording)
        self._to_record: deque[dict[str, Any]] = deque()
        self.closed = False

    # -- pipeline side ---------------------------------------------------------------
    @property
    def watched(self) -> bool:
        """A browser is connected: worth encoding the waterfall for."""
        return self.n_clients > 0

    def publish(self, msg: dict[str, Any], latest: str | None = None) -> None:
        text = encode(msg)
        with self._lock:
            self._seq += 1
            self._ring.append((self._seq, text))
            if latest is not None:
                self._latest[latest] = text
            if msg.get("type") == "health":
                self._health[str(msg["sensor"])] = text
            elif msg.get("type") == "alarm":
                self._alarms[str(msg["alarm"]["id"])] = dict(msg["alarm"])
            elif msg.get("type") == "track":
                self._track.append((float(msg["x_m"]), float(msg["y_m"])))

    def take_outcomes(self) -> list[dict[str, Any]]:
        """Outcomes acknowledged since the last call (pipeline thread: to the recording)."""
        with self._lock:
            out = list(self._to_record)
            self._to_record.clear()
        return out

    # -- server side -----------------------------------------------------------------
    def snapshot(self) -> tuple[int, list[str]]:
        """(sequence number it is current to, messages that rebuild the picture)."""
        with self._lock:
            alarms = list(self._alarms.values())[-200:]
            out = [
                encode({"type": "snapshot", "alarms": alarms, "outcomes": self.outcomes,
                        "track": list(self._track)[::max(1, len(self._track) // 1000)]}),
                *self._health.values(),
                *self._latest.values(),
            ]  # fmt: skip
            return self._seq, out

    def since(self, seq: int) -> tuple[int, list[str]] | None:
        """Messages after ``seq``; None when some were already dropped (take a snapshot)."""
        with self._lock:
            if not self._ring or self._seq == seq:
                return seq, []
            first = self._ring[0][0]
            if seq + 1 < first:
                return None
            return self._seq, [t for s, t in self._ring if s > seq]

    def acknowledge(self, alarm_id: str, outcome: str, utc: str) -> dict[str, Any]:
        """Record the operator's outcome for an alarm (server thread). Raises ValueError
        for an unknown alarm or outcome."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        with self._lock:
            alarm = self._alarms.get(alarm_id)
        if alarm is None:
            raise ValueError(f"no alarm {alarm_id!r} in this run")
        rec = {
            "id": alarm_id,
            "outcome": outcome,
            "utc": utc,
            "position_m": alarm.get("position_m"),
            "epoch": alarm.get("epoch", 0),
            "lat": alarm.get("lat"),
            "lon": alarm.get("lon"),
            "alarm_class": alarm.get("class"),
            "confidence": alarm.get("confidence"),
            "depth_m": alarm.get("depth_m"),
            "tier": alarm.get("tier", "alarm"),
        }
        if self.out_dir is not None:
            self._write(rec)
        with self._lock:
            self.outcomes[alarm_id] = rec
            self._to_record.append(dict(rec))
        self.publish({"type": "outcome", **rec})
        return rec

    def _write(self, rec: dict[str, Any]) -> None:
        """Append to outcomes.jsonl (fsync) and rewrite truth.csv from every outcome."""
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with (self.out_dir / "outcomes.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(encode(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        latest = {**self.outcomes, rec["id"]: rec}
        rows = [truth_row(r) for r in latest.values()]
        tmp = self.out_dir / "truth.csv.tmp"
        import csv

        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for row in rows:
                if row is not None:
                    w.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.out_dir / "truth.csv")


def truth_row(rec: dict[str, Any]) -> dict[str, Any] | None:
    """An outcome as a truth-CSV row: a mine or clutter found is an object at the alarm's
    position; "nothing found" and "not checked" are no object (kept in outcomes.jsonl)."""
    if rec["outcome"] == "mine":
        cls = rec.get("alarm_class")
        cls = cls if cls in ("ap_mine", "at_mine", "uxo") else "ap_mine"
    elif rec["outcome"] == "clutter":
        cls = "metal_clutter"
    else:
        return None
    depth = rec.get("depth_m")
    return {"id": rec["id"], "class": cls, "kind": "operator", "x_m": rec["position_m"],
            "y_m": "", "depth_m": "" if depth is None else depth}  # fmt: skip
