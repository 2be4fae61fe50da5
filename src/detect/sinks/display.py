"""Operator display: a live rich view on a terminal, plain log lines elsewhere.

Order of loudness, top to bottom: a sensor FAULT (red banner across the top, bell
every time it starts), a stopped recording, then alarms (bell, if enabled, and a WARNING
line), then suspects (below the operating point: a quiet row or INFO line, no bell), the
early CUE from the raw signals (a line, never an alarm), then the rest. An alarm names its
class only when that class's probability is meaningful (``class_certain``), else "class
uncertain". Both displays take the same :class:`Status` snapshot so what the operator
sees and what a log file holds are the same facts.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from detect.alarms import Cue, EarlyCue
from detect.blocks import Alarm, HealthEvent, SensorState
from detect.sinks.base import Sink

log = logging.getLogger("detect.run")


@dataclass
class Status:
    elapsed_s: float = 0.0
    head_position_m: float = math.nan
    speed_m_s: float = math.nan
    p_mine: float = math.nan
    p_mine_position_m: float = math.nan
    sensors: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    n_alarms: int = 0
    distance_m: float = 0.0
    not_covered_m: float = 0.0
    not_covered: list[tuple[float, float]] = field(default_factory=list)
    recording: str = "off"
    recording_ok: bool = True
    gps: str = "none"
    source: str = ""
    model: str = ""

    needed: tuple[str, ...] | None = None
    #: coverage below this (current epoch) is final; passed ground above it not yet scored
    #: is PENDING, not "not covered" (inf: everything final, e.g. a finished file)
    final_to_m: float = math.inf
    #: (monotonic s, UTC s) read together at the run's start (alarm UTC)
    utc_anchor: tuple[float, float] | None = None
    #: the alarm threshold (operating point) the fused score is compared with
    threshold: float = math.nan

    @property
    def pending(self) -> list[tuple[float, float]]:
        """Passed ground not yet scored (behind the head, above :attr:`final_to_m`)."""
        return [(max(a, self.final_to_m), b) for a, b in self.not_covered if b > self.final_to_m]

    @property
    def pending_m(self) -> float:
        return float(sum(b - a for a, b in self.pending))

    @property
    def not_covered_final(self) -> list[tuple[float, float]]:
        """Ground of the current epoch that is final and not covered."""
        return [(a, min(b, self.final_to_m)) for a, b in self.not_covered if a < self.final_to_m]

    @property
    def not_covered_final_m(self) -> float:
        """Final not-covered ground of the whole run (all epochs), pending left out."""
        return max(0.0, self.not_covered_m - self.pending_m)

    @property
    def faults(self) -> list[dict[str, Any]]:
        """Faulted sensors whose loss leaves ground not covered (all when ``needed`` is None)."""
        return [
            s
            for s in self.sensors
            if s["state"] == SensorState.FAULT.name
            and (self.needed is None or s["sensor"] in self.needed)
        ]

    @property
    def other_faults(self) -> list[dict[str, Any]]:
        return [
            s for s in self.sensors if s["state"] == SensorState.FAULT.name and s not in self.faults
        ]


class Display(Protocol):
    def update(self, status: Status) -> None: ...
    def alarm(self, alarm: Alarm) -> None: ...
    def health(self, event: HealthEvent) -> None: ...
    def message(self, text: str, loud: bool = False) -> None: ...
    def close(self) -> None: ...


def _fmt_m(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:7.2f} m"


def class_text(a: Alarm, uncalibrated: bool = False) -> str:
    """The class as shown to the operator: only when its probability is meaningful."""
    if uncalibrated:
        return "no class"
    return a.class_name if a.class_certain else "class uncertain"


def _fmt_cue(c: Cue) -> str:
    return f"CUE {c.sensor} at {c.position_m:.2f} m ({c.ratio:.0f}x background): check here"


def _fmt_alarm(a: Alarm, uncalibrated: bool = False) -> str:
    where = (
        f"{a.lat_deg:.7f},{a.lon_deg:.7f}"
        if a.lat_deg is not None and a.lon_deg is not None
        else "no GPS fix"
    )
    depth = "?" if a.depth_m is None else f"{a.depth_m * 100:.0f} cm"
    what = (
        f"score {a.confidence:.2f} UNCALIBRATED, no class"
        if uncalibrated
        else f"conf {a.confidence:.2f}  {class_text(a)}"
    )
    # no UTC where the run has no time reference (a file, a simulation faster than real
    # time): said, never made up, as the files' ``utc: null`` says
    when = f"  UTC {a.utc}" if a.utc else "  no UTC"
    head = f"{a.tier.upper()} {a.alarm_id} at {a.position_m:.2f} m"
    return f"{head}  {what}  depth {depth}  ({where}){when}"


class PlainDisplay:
    """Log lines: every alarm and state change at once, a status line every ``period_s``."""

    def __init__(self, bell: bool = False, period_s: float = 5.0, stream: TextIO | None = None):
        self.bell = bell
        self.period_s = period_s
        self.stream = stream
        self._last_status_s = -math.inf
        #: Sensors whose FAULT leaves ground not covered (None: all); set by the pipeline.
        self.needed: tuple[str, ...] | None = None
        #: The interim detector runs (model.allow_interim): no confidence, no class.
        self.uncalibrated = False

    def _out(self, text: str, level: int = logging.INFO) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()
        else:
            log.log(level, "%s", text)

    def update(self, status: Status) -> None:
        if status.elapsed_s - self._last_status_s < self.period_s:
            return
        self._last_status_s = status.elapsed_s
        sensors = " ".join(
            f"{s['sensor']}={s['state']}({s.get('rate_hz', 0):.0f}/s)" for s in status.sensors
        )
        self._out(
            f"t={status.elapsed_s:6.1f}s pos={_fmt_m(status.head_position_m).strip()} "
            f"p={status.p_mine:.2f} alarms={status.n_alarms} {sensors} "
            f"not_covered={status.not_covered_final_m:.2f}m pending={status.pending_m:.2f}m "
            f"rec={status.recording}"
        )

    def alarm(self, alarm: Alarm) -> None:
        if alarm.tier != "alarm":  # a suspect: one quiet line, no bell
            self._out(_fmt_alarm(alarm, self.uncalibrated), logging.INFO)
            return
        self._out(_fmt_alarm(alarm, self.uncalibrated), logging.WARNING)
        if self.bell:
            sys.stderr.write("\a")
            sys.stderr.flush()

    def health(self, event: HealthEvent) -> None:
        level = logging.ERROR if event.state == SensorState.FAULT else logging.WARNING
        if event.state in (SensorState.OK, SensorState.STARTING):
            level = logging.INFO
        self._out(
            f"SENSOR {event.sensor} {event.state.name}"
            + (f": {event.reason}" if event.reason else "")
            + (
                f" at {event.position_m:.2f} m -- ground not covered"
                if event.state == SensorState.FAULT
                and math.isfinite(event.position_m)
                and (self.needed is None or event.sensor in self.needed)
                else ""
            ),
            level,
        )

    def message(self, text: str, loud: bool = False) -> None:
        self._out(text, logging.ERROR if loud else logging.INFO)

    def cue(self, cue: Cue) -> None:
        self._out(_fmt_cue(cue), logging.INFO)

    def close(self) -> None:
        pass


class RichDisplay:
    """The live terminal view (rich.live), redrawn a few times per second."""

    def __init__(self, bell: bool = True, max_alarms: int = 8, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=False)
        self.bell = bell
        self.max_alarms = max_alarms
        #: The interim detector runs (model.allow_interim): no confidence, no class.
        self.uncalibrated = False
        self._messages: list[tuple[str, bool]] = []
        self._cue = ""
        self._status = Status()
        self._live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False
        )
        self._live.start()

    def _bell(self) -> None:
        if self.bell:
            self.console.bell()

    def update(self, status: Status) -> None:
        self._status = status
        self._live.update(self._render())

    def alarm(self, alarm: Alarm) -> None:
        if alarm.tier == "alarm":
            self._bell()

    def cue(self, cue: Cue) -> None:
        self._cue = _fmt_cue(cue)
        self._live.update(self._render())

    def health(self, event: HealthEvent) -> None:
        loud = event.state == SensorState.FAULT
        self.message(f"{event.sensor} {event.state.name} {event.reason}".strip(), loud)
        if loud:
            self._bell()

    def message(self, text: str, loud: bool = False) -> None:
        self._messages = [*self._messages, (text, loud)][-5:]

    def close(self) -> None:
        self._live.update(self._render())
        self._live.stop()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        st = self._status
        parts: list[Any] = []
        faults = st.faults
        if faults:
            names = ", ".join(f"{s['sensor']} ({s['reason']})" for s in faults)
            parts.append(
                Panel(
                    Text(
                        f"SENSOR FAULT: {names}\nGROUND NOW PASSED IS NOT COVERED - STOP",
                        style="bold white on red",
                        justify="center",
                    ),
                    style="bold red",
                )
            )
        for s in st.other_faults:
            parts.append(
                Text(
                    f"{s['sensor'].upper()} FAULT ({s.get('reason', '')}): "
                    "alarms keep along-track positions, no lat/lon",
                    style="bold black on yellow",
                )
            )
        if not st.recording_ok:
            parts.append(Text(f"RECORDING STOPPED: {st.recording}", style="bold black on yellow"))
        head = Text(
            f"{st.source}  model {st.model}  t {st.elapsed_s:6.1f} s  "
            f"position {_fmt_m(st.head_position_m)}  "
            f"speed {st.speed_m_s:4.2f} m/s  GPS {st.gps}  rec {st.recording}"
        )
        parts.append(head)
        sensors = Table(title="sensors", expand=True)
        for col in ("sensor", "state", "rate /s", "last frame", "errors", "reason"):
            sensors.add_column(col)
        style = {"OK": "green", "DEGRADED": "yellow", "FAULT": "bold white on red",
                 "STARTING": "bold cyan"}  # fmt: skip
        for s in st.sensors:
            age = s.get("last_frame_age_s", math.inf)
            errors = sum(
                int(s.get(k, 0)) for k in ("crc_errors", "resyncs", "gaps", "corrupt_frames")
            )
            sensors.add_row(
                s["sensor"],
                Text(s["state"], style=style.get(s["state"], "")),
                f"{s.get('rate_hz', 0.0):.0f}",
                "never" if not math.isfinite(age) else f"{age * 1000:.0f} ms",
                str(errors),
                s.get("reason", ""),
            )
        parts.append(sensors)
        p = st.p_mine
        bar_n = 0 if not math.isfinite(p) else round(p * 40)
        parts.append(
            Text(
                f"score {'—' if not math.isfinite(p) else f'{p:.2f}'} "
                + "#" * bar_n
                + "." * (40 - bar_n),
                style="bold red" if math.isfinite(p) and p >= 0.5 else "",
            )
        )
        if self._cue:
            parts.append(Text(self._cue, style="bold black on cyan"))
        alarms = Table(title=f"alarms ({st.n_alarms}; suspects quiet)", expand=True)
        for col in ("id", "tier", "position", "confidence", "class", "depth", "lat, lon", "UTC"):
            alarms.add_column(
                "score UNCALIBRATED" if self.uncalibrated and col == "confidence" else col
            )
        for a in list(st.alarms)[-self.max_alarms :][::-1]:
            alarms.add_row(
                a.alarm_id.rsplit("-", 1)[-1],  # the running number; the full id is in the files
                a.tier,
                f"{a.position_m:.2f} m",
                f"{a.confidence:.2f}",
                "—" if self.uncalibrated else class_text(a),
                "?" if a.depth_m is None else f"{a.depth_m * 100:.0f} cm",
                "no fix" if a.lat_deg is None else f"{a.lat_deg:.7f}, {a.lon_deg:.7f}",
                # hh:mm:ss.mmm (the full date is in the files); none known: said so
                a.utc[11:23] if a.utc else "no UTC",
                style="bold magenta" if a.tier == "alarm" else "dim",
            )
        parts.append(alarms)
        final_nc = st.not_covered_final_m
        nc = ", ".join(f"{a:.2f}-{b:.2f}" for a, b in st.not_covered_final[-4:])
        parts.append(
            Text(
                f"coverage: {st.distance_m:.2f} m passed, NOT COVERED {final_nc:.2f} m"
                + (f" [{nc}]" if nc else "")
                + f", pending {st.pending_m:.2f} m (behind the head, not yet scored)",
                style="bold red" if final_nc > 0 else "green",
            )
        )
        for text, loud in self._messages:
            parts.append(Text(text, style="bold red" if loud else "dim"))
        return Group(*parts)


def make_display(enabled: bool, bell: bool, stream: TextIO | None = None) -> Display:
    """Rich on a terminal when enabled; plain log lines otherwise."""
    out = stream or sys.stdout
    if enabled and out.isatty():
        return RichDisplay(bell=bell)
    return PlainDisplay(bell=bell)


#: link counters of a sensor's health, in the order the final summary prints them
LINK_COUNTERS = (
    "frames",
    "crc_errors",
    "resyncs",
    "gaps",
    "dropped_frames",
    "overflows",
    "reconnects",
    "corrupt_frames",
    "truncated",
    "garbage_bytes",
)


def link_lines(link: dict[str, dict[str, int]]) -> list[str]:
    """One line per sensor: frames and every non-zero link-error total, by counter name."""
    out = []
    for sensor, c in link.items():
        errors = [f"{k} {int(c[k])}" for k in LINK_COUNTERS[1:] if c.get(k)]
        out.append(
            f"link {sensor}: frames {int(c.get('frames', 0))}, "
            + (", ".join(errors) if errors else "no link errors")
        )
    return out


def summary_lines(summary: dict[str, Any]) -> Sequence[str]:
    lines = [
        f"duration {summary.get('duration_s', 0):.1f} s, "
        f"distance {summary.get('distance_m', 0):.2f} m",
        f"alarms {summary.get('n_alarms', 0)}"
        + (f" (+{summary['n_suspects']} suspects)" if summary.get("n_suspects") else "")
        + f", sensor faults {summary.get('n_faults', 0)}, "
        f"not covered {summary.get('not_covered_m', 0):.2f} m",
    ]
    lines.extend(str(w) for w in summary.get("model_warnings") or ())
    for sensor in summary.get("never_started") or ():
        lines.append(f"NO DATA from {sensor} during the whole run: none of its ground was covered")
    if summary.get("blind_s", 0) > 0.5:
        lines.append(
            f"BLIND: {summary['blind_s']:.1f} s with a needed sensor in FAULT and no moving "
            "position: ground passed then cannot be placed and is NOT covered"
        )
    if summary.get("unplaced_s", 0) > 0.5:
        lines.append(
            f"NOT SCORED: {summary['unplaced_s']:.1f} s of sensor data had no along-track "
            "position (no odometer, GPS fix or speed)"
        )
    lines.extend(link_lines(summary.get("link") or {}))
    if summary.get("x_real_time"):
        lines.append(
            f"scan {summary.get('data_s', 0):.1f} s of data in {summary.get('wall_s', 0):.2f} s "
            f"= {summary['x_real_time']:.1f}x real time"
        )
    if summary.get("recording"):
        lines.append(f"recording: {summary['recording']}")
    if summary.get("out_dir"):
        lines.append(f"output: {summary['out_dir']}")
    if summary.get("uncalibrated"):
        lines.append(str(summary["uncalibrated"]))
    if "exit_status" in summary:
        lines.append(f"exit status {summary['exit_status']}: {summary.get('exit_reason', '')}")
    return lines


class DisplaySink(Sink):
    """A :class:`Display` (terminal table or plain lines) as a sink."""

    name = "display"

    def __init__(self, display: Display, early_cue: EarlyCue | None = None) -> None:
        self.display = display
        self.early_cue = early_cue if early_cue is not None else EarlyCue()

    def on_processed(self, block: Any) -> None:
        cue = getattr(self.display, "cue", None)
        if cue is None:  # a display without cues (a test double)
            return
        for c in self.early_cue.feed(block):
            cue(c)

    def on_alarm(self, alarm: Any) -> None:
        self.display.alarm(alarm)

    def on_health(self, event: Any) -> None:
        self.display.health(event)

    def on_status(self, status: Any) -> None:
        self.display.update(status)

    def on_message(self, text: str, loud: bool = False) -> None:
        self.display.message(text, loud)
