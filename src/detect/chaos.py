"""Chaos harness: the real pipeline against the emulated sensor head under random faults.

The invariant it tries to break (DESIGN.md, "The invariant under faults"): for every target
the head passed, **either an alarm within the halo, or the ground around it reported not
covered**, in ``alarms.json`` *and* in the session's coverage record; and nothing the
session file held before a fault is lost afterwards.

A :class:`Schedule` (a seed, one or more walks, timed :class:`FaultEvent` s) is played by
:func:`run_schedule`: one :class:`~detect.drivers.emulate.Emulator` per walk (a restart is a
new emulator instance on the same port, whose odometer starts again at 0: a new position
epoch) feeds ``detect run source=sensor_head`` in a subprocess, so exit status, Ctrl-C
handling and a file-size limit (a full disk) are the real ones. :func:`check_targets` gives
each target its verdict: ``alarmed``, ``not_covered`` or ``SILENT_MISS``.

Truth: the synthetic lane's targets (:mod:`detect.drivers.feed`) in the walk's odometer frame,
shifted by any odometer step fired before the head reached them (the frame the device
reports). A target counts only if the walk reached it. Everything here runs on the host's
monotonic clock; fault times are the walk's device seconds, so a schedule replays the same
faults at the same ground positions on a busy or an idle machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

#: fault kinds a schedule may hold
KINDS = (
    "unplug",  # cable out for duration_s (same walk continues)
    "stall",  # the head stops sending for duration_s (data lost)
    "corrupt",  # flipped bytes at rate `value` per byte for duration_s
    "drop",  # lost frames at rate `value` for duration_s
    "garbage",  # one burst of `value` random bytes
    "restart",  # the head dies; a new head (new walk, odometer from 0) after duration_s
    "clock_jump",  # the device clock steps by `value` s
    "position_jump",  # the odometer count steps by `value` m
    "slow_consumer",  # the pipeline process is stopped (SIGSTOP) for duration_s
    "disk_full",  # the pipeline's files are limited to `value` bytes (RLIMIT_FSIZE)
)
#: the synthetic head's walking speed and trace rate (drivers/feed.py defaults)
SPEED_M_S = 0.5
#: an alarm detects a target within this of its centre: the evaluation's 0.10 m halo around
#: the outline of a target of 0.05 m radius (docs/evaluation.md)
MATCH_M = 0.15
#: pipeline overrides: the emulated head's coil is at the reference (no EMI lead), and the
#: interim detector's operating point (the synthetic lane is not the model's training data)
PIPELINE_OVERRIDES = (
    "model.name=__none__",
    "align.offsets_m.emi=0.0",
    "alarm.threshold=0.5",
    "alarm.hysteresis=0.1",
)


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class FaultEvent:
    """One fault at ``at_s`` device seconds into walk ``walk``."""

    kind: str
    at_s: float
    walk: int = 0
    duration_s: float = 0.0
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind '{self.kind}' is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Walk:
    """One head power-up: a lane of ``lane_s`` device seconds with targets (m, odometer)."""

    lane_s: float
    targets_m: tuple[float, ...]
    seed: int = 0


@dataclass(frozen=True)
class Schedule:
    seed: int
    walks: tuple[Walk, ...]
    events: tuple[FaultEvent, ...] = ()
    speed: float = 1.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        d = json.loads(text)
        walks = tuple(
            Walk(float(w["lane_s"]), tuple(float(x) for x in w["targets_m"]), int(w["seed"]))
            for w in d["walks"]
        )
        events = tuple(FaultEvent(**e) for e in d.get("events", ()))
        return cls(int(d["seed"]), walks, events, float(d.get("speed", 1.0)))

    def describe(self) -> str:
        ev = ", ".join(
            f"{e.kind}@w{e.walk}:{e.at_s:.1f}s"
            + (f"/{e.duration_s:.1f}s" if e.duration_s else "")
            + (f"={e.value:g}" if e.value else "")
            for e in self.events
        )
        return f"seed {self.seed}: {len(self.walks)} walk(s), [{ev or 'no faults'}]"


def _targets(rng: np.random.Generator, lane_s: float) -> tuple[float, ...]:
    """Targets 1.5-2.2 m apart (distinct alarms), from 1.2 m to 0.8 m before the lane end."""
    out: list[float] = []
    x = 1.2 + rng.uniform(0.0, 0.6)
    while x < lane_s * SPEED_M_S - 0.8:
        out.append(round(x, 3))
        x += rng.uniform(1.5, 2.2)
    return tuple(out)


def generate(
    seed: int, max_faults: int = 3, lane_s: tuple[float, float] = (10.0, 14.0)
) -> Schedule:
    """A random schedule: 1-``max_faults`` faults of any kind (a restart adds a walk)."""
    rng = np.random.default_rng(seed)
    walks = [Walk(float(rng.uniform(*lane_s)), (), int(rng.integers(1 << 30)))]
    events: list[FaultEvent] = []
    n = int(rng.integers(1, max_faults + 1))
    for _ in range(n):
        kind = str(rng.choice(KINDS))
        w = len(walks) - 1
        lane = walks[w].lane_s
        at = round(float(rng.uniform(2.0, lane - 2.0)), 2)
        if kind == "restart":
            if len(walks) >= 3 or any(e.kind == "restart" and e.walk == w for e in events):
                kind = "unplug"
            else:
                gap = round(float(rng.uniform(0.5, 3.0)), 2)
                events.append(FaultEvent("restart", at, w, gap))
                walks.append(Walk(float(rng.uniform(*lane_s)), (), int(rng.integers(1 << 30))))
                continue
        if kind == "disk_full":
            if any(e.kind == "disk_full" for e in events):
                kind = "stall"
            else:
                # the session grows by about 0.25 MB per second of walk
                events.append(FaultEvent("disk_full", at, w, 0.0, float(int(at * 250_000))))
                continue
        dur = round(float(rng.uniform(0.3, 2.5)), 2)
        value = {
            "corrupt": float(rng.choice([1e-5, 3e-5, 1e-4, 3e-4])),
            "drop": float(rng.choice([0.01, 0.05, 0.1, 0.3])),
            "garbage": float(rng.integers(16, 4096)),
            "clock_jump": round(float(rng.choice([-1, 1]) * rng.uniform(0.5, 5.0)), 2),
            "position_jump": round(float(rng.choice([-1, 1]) * rng.uniform(0.2, 1.5)), 2),
        }.get(kind, 0.0)
        if kind in ("garbage", "clock_jump", "position_jump"):
            dur = 0.0
        events.append(FaultEvent(kind, at, w, dur, value))
    # a fault drawn for a time after its walk's restart would never fire: drop it
    ends = {e.walk: e.at_s for e in events if e.kind == "restart"}
    events = [e for e in events if e.kind == "restart" or e.at_s < ends.get(e.walk, math.inf)]
    walks = [Walk(w.lane_s, _targets(rng, w.lane_s), w.seed) for w in walks]
    return Schedule(seed, tuple(walks), tuple(sorted(events, key=lambda e: (e.walk, e.at_s))))


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Target:
    """A target of one walk at ``position_m`` in the frame its walk's odometer reports."""

    walk: int
    position_m: float
    epochs: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class TargetVerdict:
    target: Target
    verdict: str  # alarmed | not_covered | SILENT_MISS
    detail: str = ""


def _epoch(d: Mapping[str, Any]) -> int:
    return int(d.get("epoch") or 0)


def _near(a: float, b: float, x: float, halo_m: float) -> bool:
    return a <= x + halo_m and b >= x - halo_m


def check_targets(
    targets: Sequence[Target],
    alarms: Sequence[Mapping[str, Any]],
    coverage: Sequence[Mapping[str, Any]] | None,
    record_rows: Sequence[Mapping[str, Any]] | None,
    recorded_to_m: float | None,
    match_m: float = MATCH_M,
) -> list[TargetVerdict]:
    """Each target: ``alarmed`` (an alarm of one of its epochs within ``match_m``),
    ``not_covered`` (ground within ``match_m`` reported not covered in ``alarms.json``'s
    ``coverage`` **and** in the session's coverage record), else ``SILENT_MISS``.

    ``coverage`` None: no ``alarms.json`` (the run died), so nothing reports the ground.
    ``record_rows`` None: no readable session file; ``recorded_to_m`` (the record's reach,
    None: nothing recorded) makes ground beyond it *unknown*, which is never clear.
    Rows without an ``epoch`` field are epoch 0."""
    out: list[TargetVerdict] = []
    for t in targets:
        x, ep = t.position_m, set(t.epochs)
        hits = [
            float(a["position_m"])
            for a in alarms
            if _epoch(a) in ep and abs(float(a["position_m"]) - x) <= match_m
        ]
        if hits:
            out.append(TargetVerdict(t, "alarmed", f"alarm at {hits[0]:.2f} m"))
            continue
        in_json = coverage is not None and any(
            s.get("status") == "not_covered"
            and _epoch(s) in ep
            and _near(float(s["start_m"]), float(s["end_m"]), x, match_m)
            for s in coverage
        )
        in_record = record_rows is not None and (
            recorded_to_m is None
            or x + match_m > recorded_to_m
            or any(
                _epoch(r) in ep and _near(float(r["start_m"]), float(r["end_m"]), x, match_m)
                for r in record_rows
            )
        )
        if in_json and in_record:
            out.append(TargetVerdict(t, "not_covered"))
            continue
        silent = [
            name
            for name, ok in (("alarms.json", in_json), ("session coverage record", in_record))
            if not ok
        ]
        scored = coverage is not None and any(
            _epoch(s) in ep and float(s["start_m"]) <= x <= float(s["end_m"]) for s in coverage
        )
        where = "reported covered" if scored else "absent from the report (no segment holds it)"
        why = f"no alarm; {where}; not reported not covered in " + " or ".join(silent)
        out.append(TargetVerdict(t, "SILENT_MISS", why))
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class Snapshot:
    """What the session file held just before a fault: rows and their host times."""

    event: str
    rows: dict[str, np.ndarray]


@dataclass
class RunResult:
    schedule: Schedule
    verdicts: list[TargetVerdict]
    exit_code: int | None
    #: rows the file held before some fault and no longer holds (must be 0)
    data_lost: int
    #: GPR frames the emulators wrote intact and the session does not hold (consumer drops,
    #: bytes in flight at an unplug...); None where the recording was cut on purpose
    unrecorded_gpr: int | None
    gpr_sent_intact: int
    fired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    stderr_tail: str = ""

    @property
    def silent_misses(self) -> list[TargetVerdict]:
        return [v for v in self.verdicts if v.verdict == "SILENT_MISS"]

    @property
    def ok(self) -> bool:
        return not self.silent_misses and self.data_lost == 0 and not self.errors

    def counts(self) -> dict[str, int]:
        c = {"targets": len(self.verdicts), "alarmed": 0, "not_covered": 0, "SILENT_MISS": 0}
        for v in self.verdicts:
            c[v.verdict] += 1
        return c

    def repro(self) -> str:
        return f"python scripts/chaos_soak.py --replay '{self.schedule.to_json()}'"

    def report(self) -> str:
        lines = [
            f"{self.schedule.describe()}: exit {self.exit_code}, {self.counts()}, "
            f"data lost {self.data_lost}, unrecorded GPR {self.unrecorded_gpr}"
            f"/{self.gpr_sent_intact}, fired {self.fired}"
        ]
        lines += [
            f"  SILENT MISS: walk {v.target.walk} target {v.target.position_m:.2f} m "
            f"(epochs {list(v.target.epochs)}): {v.detail}"
            for v in self.silent_misses
        ]
        lines += [f"  ERROR: {e}" for e in self.errors]
        if not self.ok:
            lines.append(f"  replay: {self.repro()}")
        return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pipeline_overrides() -> list[str]:
    """:data:`PIPELINE_OVERRIDES`, plus ``model.allow_interim=true`` where the config has
    it (a run without a trained model is refused unless asked for)."""
    from detect.config import compose

    extra = ["model.allow_interim=true"] if "allow_interim" in compose([]).model else []
    return [*PIPELINE_OVERRIDES, *extra]


def _limit_files(limit_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _read_rows(path: Path) -> dict[str, np.ndarray] | None:
    """Host times of the GPR and EMI rows a reader sees now (None: unreadable)."""
    from detect.io.session import SessionReader

    if not path.exists():
        return {"gpr": np.empty(0), "emi": np.empty(0)}
    try:
        with SessionReader(path) as rd:
            rd.refresh()
            out = {}
            for name, blk in (("gpr", rd.gpr()), ("emi", rd.emi())):
                out[name] = np.empty(0) if blk is None else np.asarray(blk.host_time_s)
            return out
    except Exception:  # a file being created, or damaged: the final read tells
        return None


def _lost(before: Snapshot, after: dict[str, np.ndarray] | None) -> int:
    """Rows ``before`` held that ``after`` no longer holds unchanged."""
    total = 0
    for name, rows in before.rows.items():
        now = np.empty(0) if after is None else after.get(name, np.empty(0))
        n = rows.size
        same = min(n, now.size)
        ok = int(np.argmin(np.r_[rows[:same] == now[:same], False])) if same else 0
        total += n - ok
    return total


class _Walker:
    """The emulated heads of one schedule, one after the other, on one TCP port."""

    def __init__(self, schedule: Schedule, port: int) -> None:
        self.schedule = schedule
        self.port = port
        self.emu: Any = None
        self.walk = -1
        self.reached_s: list[float] = []
        self.jumps: list[list[tuple[float, float]]] = []
        self.back_clock: list[int] = []
        self.sent_intact = 0

    def start_walk(self, w: int) -> None:
        from detect.drivers.emulate import Emulator, HeadEncoder, TcpLink
        from detect.drivers.feed import SyntheticSettings, synthetic

        spec = self.schedule.walks[w]
        feed = synthetic(
            SyntheticSettings(targets_m=spec.targets_m, seed=spec.seed, gps_rate_hz=0.0),
            spec.lane_s,
        )
        enc = HeadEncoder(auto_start=False)
        self.emu = Emulator(
            enc, TcpLink(port=self.port), feed, speed=self.schedule.speed, wait_for_start=True
        )
        self.walk = w
        self.reached_s.append(0.0)
        self.jumps.append([])
        self.back_clock.append(0)
        for attempt in range(50):  # the old server socket may linger for a moment
            try:
                self.emu.start()
                return
            except OSError:
                time.sleep(0.1 * (attempt + 1))
        self.emu.start()

    @property
    def device_s(self) -> float:
        return float(self.emu.device_time_s) if self.emu is not None else 0.0

    def end_walk(self) -> None:
        if self.emu is None:
            return
        self.reached_s[self.walk] = self.device_s
        self.emu.stop()
        self.sent_intact += self.emu.counters.gpr_frames_intact
        self.emu = None

    def fire(self, e: FaultEvent, proc: subprocess.Popen[str]) -> None:
        emu = self.emu
        if e.kind == "unplug":
            emu.unplug(e.duration_s)
        elif e.kind == "stall":
            emu.stall(e.duration_s)
        elif e.kind in ("corrupt", "drop"):
            key = "corrupt_byte_rate" if e.kind == "corrupt" else "drop_frame_rate"
            emu.set_rates(**{key: e.value})
            threading.Timer(e.duration_s, emu.set_rates, kwargs={key: 0.0}).start()
        elif e.kind == "garbage":
            emu.garbage_burst(int(e.value))
        elif e.kind == "clock_jump":
            emu.clock_jump(e.value)
            self.back_clock[self.walk] += int(e.value < 0)
        elif e.kind == "position_jump":
            emu.position_jump(e.value)
            self.jumps[self.walk].append((self.device_s, e.value))
        elif e.kind == "slow_consumer":
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(e.duration_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)

    def targets(self) -> list[Target]:
        """Targets each walk reached, in the frame its odometer reported, with the epochs
        their ground may be in: one per head restart (walk ``w`` starts epoch ``w`` at the
        least), plus up to one per backward clock step (a head whose clock went back may be
        taken for a restarted one) and per odometer jump (a step no head can walk breaks the
        position frame where it is seen; inside a link outage it is not), in this walk or
        any before it."""
        out: list[Target] = []
        for w, spec in enumerate(self.schedule.walks[: len(self.reached_s)]):
            reach_m = self.reached_s[w] * SPEED_M_S
            lo = w
            hi = w + sum(self.back_clock[: w + 1]) + sum(len(j) for j in self.jumps[: w + 1])
            for x in spec.targets_m:
                if x >= reach_m:
                    continue  # the head never passed it
                shift = sum(d for t, d in self.jumps[w] if t * SPEED_M_S <= x)
                out.append(Target(w, round(x + shift, 4), tuple(range(lo, hi + 1))))
        return out


def run_schedule(
    schedule: Schedule,
    workdir: Path,
    overrides: Sequence[str] | None = None,
    settle_s: float = 0.3,
    connect_timeout_s: float = 90.0,
) -> RunResult:
    """Play ``schedule`` against ``detect run source=sensor_head`` and judge the outcome."""
    t_start = time.monotonic()
    out = Path(workdir) / "run"
    port = free_port()
    disk = next((e for e in schedule.events if e.kind == "disk_full"), None)
    cmd = [
        sys.executable, "-m", "detect.cli", "run", "source=sensor_head",
        f"source.url=socket://127.0.0.1:{port}", "run.display=false", "run.bell=false",
        "run.duration_s=null", f"run.out_dir={out}",
        *(pipeline_overrides() if overrides is None else overrides),
    ]  # fmt: skip
    walker = _Walker(schedule, port)
    walker.start_walk(0)
    errors: list[str] = []
    snaps: list[Snapshot] = []
    fired: list[str] = []
    log_path = Path(workdir) / "detect-run.log"
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(
            cmd,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_limit_files(int(disk.value)) if disk is not None else None,
        )
        try:
            _play(schedule, walker, proc, out, snaps, fired, errors, connect_timeout_s)
            time.sleep(settle_s)  # the last data reaches the pipeline
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                errors.append("detect run did not stop within 120 s of Ctrl-C")
                proc.kill()
                proc.wait()
        finally:
            walker.end_walk()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    tail = log_path.read_text(errors="replace")[-3000:]
    return _judge(schedule, walker, proc.returncode, out, snaps, fired, errors, disk, tail,
                  time.monotonic() - t_start)  # fmt: skip


def _play(
    schedule: Schedule,
    walker: _Walker,
    proc: subprocess.Popen[str],
    out: Path,
    snaps: list[Snapshot],
    fired: list[str],
    errors: list[str],
    connect_timeout_s: float,
) -> None:
    pending = sorted(schedule.events, key=lambda e: (e.walk, e.at_s))
    deadline = time.monotonic() + connect_timeout_s
    while True:
        emu = walker.emu
        if emu.started_at is None:  # waiting for the pipeline to connect and START
            if proc.poll() is not None:
                errors.append(f"detect run exited ({proc.returncode}) before the walk began")
                return
            if time.monotonic() > deadline:
                errors.append(f"walk {walker.walk}: no host started the head")
                return
            time.sleep(0.02)
            continue
        if proc.poll() is not None:
            errors.append(f"detect run exited ({proc.returncode}) during walk {walker.walk}")
            return
        due = [e for e in pending if e.walk == walker.walk and e.at_s <= walker.device_s]
        for e in due:
            pending.remove(e)
            if e.kind == "disk_full":
                continue  # a limit set at start; it bites when the file reaches it
            rows = _read_rows(out / "session.h5")
            if rows is not None:
                snaps.append(Snapshot(f"{e.kind}@w{e.walk}:{e.at_s}", rows))
            fired.append(f"{e.kind}@w{e.walk}:{walker.device_s:.2f}s")
            if e.kind == "restart":
                walker.end_walk()
                time.sleep(e.duration_s)
                walker.start_walk(e.walk + 1)
                deadline = time.monotonic() + 30.0
                break
            walker.fire(e, proc)
        else:
            if emu.finished.is_set():
                if emu.error is not None:
                    errors.append(f"emulator failed: {emu.error}")
                return
            time.sleep(0.02)


def _judge(
    schedule: Schedule,
    walker: _Walker,
    rc: int | None,
    out: Path,
    snaps: list[Snapshot],
    fired: list[str],
    errors: list[str],
    disk: FaultEvent | None,
    tail: str,
    wall_s: float,
) -> RunResult:
    from detect.io.session import SessionReader

    alarms: list[dict[str, Any]] = []
    coverage: list[dict[str, Any]] | None = None
    doc_path = out / "alarms.json"
    if doc_path.exists():
        try:
            doc = json.loads(doc_path.read_text())
            alarms, coverage = list(doc["alarms"]), list(doc["coverage"])
        except (ValueError, KeyError) as exc:
            errors.append(f"alarms.json unreadable: {exc}")
    if coverage is None:  # the alarms declared before the end are still in alarms.jsonl
        jl = out / "alarms.jsonl"
        if jl.exists():
            alarms = [json.loads(x) for x in jl.read_text().splitlines() if x.strip()]
    record_rows: list[dict[str, Any]] | None = None
    recorded_to_m: float | None = None
    final = _read_rows(out / "session.h5")
    try:
        with SessionReader(out / "session.h5") as rd:
            rec = rd.coverage_record()
            record_rows, recorded_to_m = list(rec.rows), rec.recorded_to_m
    except Exception as exc:
        errors.append(f"session coverage record unreadable: {type(exc).__name__}: {exc}")
    alarms = [a for a in alarms if a.get("tier", "alarm") == "alarm"]  # a suspect is no alarm
    targets = walker.targets()
    rows_seen = [*alarms, *(coverage or []), *(record_rows or [])]
    if not any("epoch" in d for d in rows_seen):  # outputs without epochs: all epoch 0
        targets = [replace(t, epochs=(0,)) for t in targets]
    verdicts = check_targets(targets, alarms, coverage, record_rows, recorded_to_m)
    errors.extend(exit_status_problems(rc, verdicts, fired))
    lost = sum(_lost(s, final) for s in snaps)
    n_gpr = None if final is None else int(final["gpr"].size)
    unrecorded = None if disk is not None or n_gpr is None else walker.sent_intact - n_gpr
    return RunResult(
        schedule, verdicts, rc, lost, unrecorded, walker.sent_intact, fired, errors, wall_s, tail
    )


def exit_status_problems(
    rc: int | None, verdicts: Sequence[TargetVerdict], fired: Sequence[str]
) -> list[str]:
    """What the exit status must say: never 0 (complete) when ground around a target is
    reported not covered, nor when the recording was cut by a full disk."""
    out: list[str] = []
    if rc == 0 and any(v.verdict == "not_covered" for v in verdicts):
        out.append("exit status 0 (complete) although ground around a target is not covered")
    if rc == 0 and any(f.startswith("disk_full") for f in fired):
        out.append("exit status 0 (complete) although the disk filled up")
    return out


# --------------------------------------------------------------------------- many runs


@dataclass
class SoakTotals:
    schedules: int = 0
    targets: int = 0
    alarmed: int = 0
    not_covered: int = 0
    silent_misses: int = 0
    data_lost: int = 0
    unrecorded_gpr: int = 0
    gpr_sent_intact: int = 0
    run_errors: int = 0
    exit_codes: dict[str, int] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)

    def add(self, r: RunResult) -> None:
        c = r.counts()
        self.schedules += 1
        self.targets += c["targets"]
        self.alarmed += c["alarmed"]
        self.not_covered += c["not_covered"]
        self.silent_misses += c["SILENT_MISS"]
        self.data_lost += r.data_lost
        if r.unrecorded_gpr is not None:
            self.unrecorded_gpr += r.unrecorded_gpr
            self.gpr_sent_intact += r.gpr_sent_intact
        self.run_errors += bool(r.errors)
        key = str(r.exit_code)
        self.exit_codes[key] = self.exit_codes.get(key, 0) + 1
        if not r.ok:
            self.failing.append(r.schedule.to_json())

    def table(self) -> str:
        head = ("schedules", "targets", "alarmed", "not covered", "SILENT MISSES", "data lost")
        vals = (self.schedules, self.targets, self.alarmed, self.not_covered,
                self.silent_misses, self.data_lost)  # fmt: skip
        w = [max(len(h), len(str(v))) for h, v in zip(head, vals, strict=True)]
        row = "  ".join(f"{h:>{n}}" for h, n in zip(head, w, strict=True))
        val = "  ".join(f"{v!s:>{n}}" for v, n in zip(vals, w, strict=True))
        unrec = (
            f"GPR frames sent intact but not recorded: {self.unrecorded_gpr} of "
            f"{self.gpr_sent_intact} (runs without a disk limit); runs with an error: "
            f"{self.run_errors}; exit codes {self.exit_codes}"
        )
        return f"{row}\n{val}\n{unrec}"
