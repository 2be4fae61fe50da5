"""The detection pipeline: sources -> dsp -> align -> grid -> windows -> model -> alarms -> sinks.

One :class:`Pipeline` object does the work for ``detect run`` (live), ``detect replay``
(a recording at its own pacing) and ``detect scan`` (any file, as fast as possible):
only the loop that feeds it items differs. Training and evaluation share the same DSP
chains (:mod:`detect.dsp.chain`), windows (:mod:`detect.windows`) and model.

Fail-safe rules kept here:
- a sensor in FAULT is scored as absent and the ground passed meanwhile is recorded as
  *not covered* (:mod:`detect.coverage`), never as clear;
- a recording or sink error is reported loudly and that sink is switched off, but
  alarming goes on.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from detect.alarms import AlarmConfig, AlarmLogic, EarlyCue, ScorePoint
from detect.align import Aligner
from detect.blocks import (
    CLASSES,
    Alarm,
    GprBlock,
    GpsFix,
    HealthEvent,
    MdBlock,
    PositionEpoch,
    SensorState,
    coalesce,
    utc_text,
)
from detect.coverage import CoverageTracker, coverage_states
from detect.engine import report, watch
from detect.engine.epochs import EpochCoverage
from detect.engine.scheduler import WindowScheduler
from detect.engine.sinks import SinkSet
from detect.errors import (
    SettingsError,
)
from detect.model.scorers import (
    InputCheck,
    InterimScorer,
    Scorer,
)
from detect.sinks.base import Sink
from detect.sinks.display import Display, DisplaySink, PlainDisplay, Status
from detect.sinks.gis import host_clock_dates
from detect.sinks.recorder import RecorderSink
from detect.windows import gpr_present

log = logging.getLogger(__name__)


class Pipeline:
    """Items in, alarms out, with health, coverage and sinks. Not thread-safe: one loop feeds it."""

    #: pipeline-clock seconds between appends of final coverage to the recording
    coverage_record_every_s = 0.5

    def __init__(
        self,
        scorer: Scorer,
        aligner: Aligner,
        alarm_config: AlarmConfig,
        sensors: Sequence[str],
        needed: Sequence[str] | None = None,
        chains: Mapping[str, Any] | None = None,
        display: Display | None = None,
        stride_cells: int = 1,
        id_prefix: str = "A",
        clock: Callable[[], float] = time.monotonic,
        source_info: Mapping[str, Any] | None = None,
        input_check: str = "refuse",
    ) -> None:
        self.scorer = scorer
        self.spec = scorer.spec
        #: "refuse": a GPR stream unlike the model's training input is not scored (FAULT /
        #: scan error); "warn": scored anyway, with a loud warning in the display and outputs
        self.input_check = InputCheck(scorer, refuse=input_check == "refuse")
        self.aligner = aligner
        self.sensors = tuple(sensors)
        self.model_sensors = tuple(s for s in scorer.sensors if s in self.sensors)
        if not self.model_sensors:
            raise SettingsError(
                f"the model uses {'+'.join(scorer.sensors)} but the source delivers "
                f"{'+'.join(self.sensors) or 'nothing'}"
            )
        self.needed = tuple(needed) if needed is not None else self.model_sensors
        self.chains = dict(chains or {})
        self.display = display or PlainDisplay()
        if isinstance(self.display, PlainDisplay):
            self.display.needed = self.needed
        #: every output (display, recording, alarm files...): a failing one is switched off
        self.sinks = SinkSet()
        self.sinks.add(DisplaySink(self.display, EarlyCue.from_config(alarm_config.cue)))
        self.stride = max(1, int(stride_cells))
        self.clock = clock
        self.source_info = dict(source_info or {})
        self.windows = WindowScheduler(self.spec, self.model_sensors, self.stride)
        self.alarm_logic = AlarmLogic(alarm_config, aligner.locate, id_prefix)
        #: coverage per position epoch (:class:`PositionEpoch`); ``coverage``: the current one
        self.epochs = EpochCoverage(self.needed, aligner.offsets_m)
        self.states: dict[str, SensorState] = dict.fromkeys(self.sensors, SensorState.OK)
        self.health_snapshots: dict[str, dict[str, Any]] = {}
        self.alarms: list[Alarm] = []
        self.health_events: list[HealthEvent] = []
        #: host time each position epoch after the first began (health events -> epochs)
        self.epoch_starts_s: list[float] = []
        self.n_faults = 0
        self.track_pos = array("d")
        self.track_p = array("d")
        #: Seconds from the arrival of the items that completed windows to their decision.
        self.latency_s: deque[float] = deque(maxlen=100_000)
        #: Same, from the host time stamp of the newest trace (paced sources only).
        self.frame_latency_s: deque[float] = deque(maxlen=100_000)
        self._last_frame_s = math.nan
        self.n_items: dict[str, int] = {}
        self.rates: dict[str, tuple[float, int, float]] = {}  # watch.rate_hz
        self.t_start = clock()
        #: dead reckoning of the head during an outage of every position stream
        self._reckoning = watch.Reckoning()
        anchor = self.source_info.get("utc_anchor")
        if anchor is None and host_clock_dates(self.source_info):
            anchor = (self.t_start, time.time())
        #: (monotonic s, UTC s) read together: an alarm's UTC is its host time plus this
        #: offset (a recording gives its own); None for a file without one, or a simulation
        #: faster than real time (its times are not our clock's): no UTC guessed
        self.utc_anchor = None if anchor is None else (float(anchor[0]), float(anchor[1]))
        self._last_display_s = -math.inf
        self._last_unplaced_warn_s = -math.inf
        self._last_coverage_record_s = -math.inf
        self.last_p = math.nan
        self.last_p_pos = math.nan
        self.dt_ns = math.nan
        #: Live: sensor -> why its blocks cannot be processed (it counts as FAULT meanwhile).
        self.processing_errors: dict[str, str] = {}
        self.n_processing_errors = 0
        #: Scan: a processing error is the run's error (raised), not a sensor fault.
        self.strict = False
        #: Seconds spent per stage (benchmarks).
        self.stage_s = {"dsp": 0.0, "align+grid": 0.0, "model": 0.0}
        #: Processed, aligned blocks, kept only when asked (scan's plot).
        self.kept: list[GprBlock | MdBlock] | None = None

    # -- input ----------------------------------------------------------------------
    def handle(self, items: Iterable[Any], arrival_s: float | None = None) -> list[Alarm]:
        """Process items from a source; returns alarms declared by them."""
        t_arrival = time.perf_counter() if arrival_s is None else arrival_s
        new: list[Alarm] = []
        for item in coalesce(list(items)):
            self.sinks.emit("on_block", item)
            if isinstance(item, GpsFix):
                self.aligner.add_fix(item)
                self.n_items["gps"] = self.n_items.get("gps", 0) + 1
                continue
            if isinstance(item, PositionEpoch):
                new.extend(self.new_epoch(item))
                continue
            if isinstance(item, (GprBlock, MdBlock)):
                if self.strict:
                    new.extend(self._block(item, t_arrival))
                    continue
                sensor = item.header.sensor
                try:
                    new.extend(self._block(item, t_arrival))
                except Exception as exc:  # live: never die, never go quiet
                    self._processing_failed(sensor, exc)
                    self._passed_unprocessed(item)
                else:
                    if self.processing_errors.pop(sensor, None) is not None:
                        msg = f"{sensor} processing recovered"
                        self.sinks.emit("on_message", msg, False)
        return new

    def feed_offline(self, items: Iterable[Any]) -> list[Alarm]:
        """A recorded file's items, one at a time, as fast as possible (``scan``, the API):
        no health to poll, so coverage follows the head position after each item. A
        failure raises (what was processed before it stays in the pipeline)."""
        new: list[Alarm] = []
        for item in items:
            new.extend(self.handle([item]))
            self.coverage.update(
                self.aligner.head_position_m, self.states, self.aligner.head_time_s
            )
        return new

    def _processing_failed(self, sensor: str, exc: Exception) -> None:
        """A block that cannot be processed: the sensor counts as FAULT until one can."""
        first = sensor not in self.processing_errors
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.processing_errors[sensor] = why
        self.n_processing_errors += 1
        if first:
            log.exception("processing %s failed", sensor)
            self.record_health(
                HealthEvent(self.clock(), sensor, SensorState.FAULT, f"processing: {why}")
            )

    def _passed_unprocessed(self, block: GprBlock | MdBlock) -> None:
        """The ground under a block that could not be processed was passed without its
        sensor: placed as well as its raw positions allow, it is not covered."""
        sensor = block.header.sensor
        self.states[sensor] = SensorState.FAULT
        try:
            placed = self.aligner.apply(block)
        except Exception:  # the positions themselves are unusable: blind time
            log.debug("cannot place an unprocessed %s block", sensor, exc_info=True)
            return
        if sensor in self.model_sensors:
            self.coverage.add_data(sensor, np.empty(0))  # covered only where scored
        self.coverage.head_passed(placed.position_m - self.aligner.offset_m(sensor), sensor)

    def _not_for_the_model(self, block: GprBlock) -> None:
        """A radar outside the model's envelope: FAULT with the reason (once), its ground
        passed but not covered; the raw block is kept for a scan's picture."""
        sensor = block.header.sensor
        if self.states.get(sensor) != SensorState.FAULT:
            why = self.input_check.refused[sensor]
            self.record_health(HealthEvent(self.clock(), sensor, SensorState.FAULT, why))
        if self.kept is not None:
            self.kept.append(block)
        self._passed_unprocessed(block)

    def new_epoch(self, marker: PositionEpoch) -> list[Alarm]:
        """Positions restart in a new frame (:class:`PositionEpoch`): the current epoch is
        closed as a run end is (held alarms declared, its unscored end not covered) and
        the next starts from nothing: alignment, grids, DSP state, window schedule."""
        log.warning("position epoch %d: %s (%s)", self.epoch + 1, marker.reason, marker.source)
        new = self.finish()
        self.record_coverage_rest()
        self.epochs.next_epoch()
        self.epoch_starts_s.append(float(marker.host_time_s))
        self.aligner = self.aligner.restarted()
        self._reckoning = watch.Reckoning()
        self.windows = WindowScheduler(self.spec, self.model_sensors, self.stride)
        for chain in self.chains.values():
            chain.reset()
        self.input_check.seen = None
        self.last_p = self.last_p_pos = math.nan
        self.alarm_logic.start_epoch(self.epoch, self.aligner.locate)
        self._last_coverage_record_s = -math.inf
        msg = f"NEW POSITION EPOCH {self.epoch}: {marker.reason}; positions start again"
        self.sinks.emit("on_message", msg, True)
        return new

    @property
    def epoch(self) -> int:
        return self.epochs.epoch

    @property
    def coverage(self) -> CoverageTracker:
        """The current position epoch's coverage."""
        return self.epochs.current

    def _block(self, block: GprBlock | MdBlock, t_arrival: float) -> list[Alarm]:
        sensor = block.header.sensor
        self.n_items[sensor] = self.n_items.get(sensor, 0) + block.n
        if isinstance(block, GprBlock):
            warning = self.input_check.check(block)
            if warning is not None:
                self.sinks.emit("on_message", warning, True)
            if not self.input_check.applies(sensor):
                self._not_for_the_model(block)
                return []
            self.dt_ns = block.header.dt_ns
            if isinstance(self.scorer, InterimScorer):
                self.scorer.dt_ns = block.header.dt_ns * block.n_samples / self.spec.gpr_samples
        chain = self.chains.get(sensor)
        t0 = time.perf_counter()
        if chain is not None:
            block = chain.process(block)
        t1 = time.perf_counter()
        self.stage_s["dsp"] += t1 - t0
        block = self.aligner.apply(block)
        if sensor in self.model_sensors:
            # covered only where a window was scored with this sensor's data (see _score)
            self.coverage.add_data(sensor, np.empty(0))
        else:
            self.coverage.add_data(sensor, block.position_m)
        self.coverage.head_passed(block.position_m - self.aligner.offset_m(sensor), sensor)
        if self.kept is not None:
            self.kept.append(block)
        self.sinks.emit("on_processed", block)
        if not self.windows.add(block):
            return []
        self.stage_s["align+grid"] += time.perf_counter() - t1
        self._last_frame_s = float(block.host_time_s[-1])
        ready = self.windows.ready(self.states)
        return [] if ready is None else self._score(*ready, t_arrival)

    # -- windows ----------------------------------------------------------------------
    def _score(self, centres: np.ndarray, present: list[str], t_arrival: float) -> list[Alarm]:
        spec = self.spec
        patches, centre_time, time_sensor = self.windows.patches(centres, present)
        t_model = time.perf_counter()
        pred = self.scorer.predict(patches["gpr"], patches["emi"])
        self.stage_s["model"] += time.perf_counter() - t_model
        positions = centres.astype(np.float64) * spec.grid_m
        now = time.perf_counter()
        self.latency_s.append(now - t_arrival)
        if self.source_info.get("paced") and math.isfinite(self._last_frame_s):
            # from the acquisition time stamp of the newest trace (same monotonic clock)
            self.frame_latency_s.append(self.clock() - self._last_frame_s)
        p = np.asarray(pred.p_mine, dtype=np.float64)
        step_m = self.stride * spec.grid_m
        for s in present:
            patch = patches[s]
            if patch is None:
                continue
            # the GPR's NaN is the network's mask (windows.gpr_present); the EMI has none
            has = gpr_present(patch) if s == "gpr" else np.isfinite(patch).all(axis=(1, 2))
            used = has & np.isfinite(p)
            if used.any():
                # the ground a scored window's centre cell stands for, per sensor it used
                self.coverage.add_data(
                    s, positions[used], max_gap_m=1.5 * step_m, footprint_m=step_m / 2
                )
        self.track_pos.extend(positions.tolist())
        self.track_p.extend(p.tolist())
        finite = np.isfinite(p)
        if finite.any():
            k = int(np.flatnonzero(finite)[-1])
            self.last_p, self.last_p_pos = float(p[k]), float(positions[k])
        probs = np.asarray(pred.class_probs, dtype=np.float64)
        depth = np.asarray(pred.depth_m, dtype=np.float64)
        branch = {k: np.asarray(v, dtype=np.float64) for k, v in pred.branch_scores.items()}
        new: list[Alarm] = []
        for i in np.flatnonzero(finite):
            point = ScorePoint(
                position_m=float(positions[i]),
                p_mine=float(p[i]),
                host_time_s=float(centre_time[i]),
                time_sensor=present[time_sensor[i]] if time_sensor[i] >= 0 else None,
                class_probs=dict(zip(CLASSES, probs[i].tolist(), strict=True)),
                depth_m=None if not math.isfinite(depth[i]) else float(depth[i]),
                sensor_scores={k: float(v[i]) for k, v in branch.items() if math.isfinite(v[i])},
            )
            new.extend(self.alarm_logic.feed(point))
        return [self._emit(a) for a in new]

    # -- output -----------------------------------------------------------------------
    def add_sink(self, sink: Sink) -> Sink:
        """Send the pipeline's outputs to ``sink`` too (it replaces one of the same name)."""
        return self.sinks.add(sink)

    @property
    def recorder(self) -> RecorderSink | None:
        rec = self.sinks.get(RecorderSink.name)
        return rec if isinstance(rec, RecorderSink) else None

    def _emit(self, alarm: Alarm) -> Alarm:
        """Stamp UTC on a declared alarm, keep it and send it to the sinks."""
        if alarm.utc is None and self.utc_anchor is not None:
            alarm = replace(alarm, utc=utc_text(alarm.host_time_s, self.utc_anchor))
        self.alarms.append(alarm)
        self.sinks.emit("on_alarm", alarm)
        return alarm

    def poll(self, sources: Sequence[Any], force_display: bool = False) -> None:
        """Health, coverage and display; call it every loop turn."""
        now = self.clock()
        lossy = watch.poll_sources(self, sources, now)
        faulted = any(self.states.get(s) == SensorState.FAULT for s in self.needed)
        head = watch.head_for_coverage(self.aligner, faulted, now)
        losses = watch.losses(sources, self.needed)
        doubt = self._reckoning.step(self.aligner, head, faulted, now, losses)
        if doubt is not None:
            self.coverage.position_in_doubt(*doubt)
        unplaced_before = self.coverage.unplaced_s
        self.coverage.update(head, coverage_states(self.states, lossy), now)
        if self.coverage.unplaced_s > unplaced_before and now - self._last_unplaced_warn_s >= 10.0:
            self._last_unplaced_warn_s = now
            msg = (
                "NO POSITION: sensor data is arriving but cannot be placed along the track "
                "(no odometer, GPS fix or speed), so NOTHING IS BEING SCORED; connect the "
                "odometer/GPS or set align.position_source"
            )
            self.sinks.emit("on_message", msg, True)
        self._record_coverage(now)
        if force_display or now - self._last_display_s >= 0.25:
            self._last_display_s = now
            st = self.status()
            self.sinks.emit("on_status", st)

    def _record_coverage(self, now: float) -> None:
        """Append the coverage that became final to the recording (at most every
        :attr:`coverage_record_every_s`), so a killed session keeps it."""
        if (
            not self.sinks.active(RecorderSink.name)
            or now - self._last_coverage_record_s < self.coverage_record_every_s
        ):
            return
        self._last_coverage_record_s = now
        final = self.coverage.take_final(self.windows.scored_to_m())
        if final is not None:
            self.sinks.emit("on_coverage", final, now, self.epoch)

    def record_coverage_rest(self) -> None:
        """End of the run: the coverage still open is final; record it (if recording)."""
        if self.sinks.active(RecorderSink.name):
            self.sinks.emit("on_coverage", self.coverage.take_rest(), self.clock(), self.epoch)

    def record_health(self, ev: HealthEvent) -> None:
        if not math.isfinite(ev.position_m) and math.isfinite(self.aligner.head_position_m):
            ev = replace(
                ev, position_m=self.aligner.head_position_m + self.aligner.offset_m(ev.sensor)
            )
        self.health_events.append(ev)
        if ev.state == SensorState.FAULT:
            self.n_faults += 1
        self.states[ev.sensor] = ev.state
        self.sinks.emit("on_health", ev)

    def finish(self, score_tail: bool = True) -> list[Alarm]:
        """End of data: score the windows at the end of the track (the scan's edge, as
        trained; not after a failure), then declare the alarms still held back by NMS. A
        tail that cannot be scored stays not covered, loudly."""
        new: list[Alarm] = []
        tail = self.windows.tail(self.states) if score_tail else None
        if tail is not None:
            try:
                new = self._score(*tail, self.clock())
            except Exception as exc:  # the end of the track is not covered; never a crash
                log.error("the last windows of the track could not be scored: %s", exc)
                self.n_processing_errors += 1
        return new + [self._emit(a) for a in self.alarm_logic.finish()]

    def never_started(self) -> list[str]:
        return [s for s in self.needed if self.n_items.get(s, 0) == 0]

    def coverage_summary(self) -> dict[str, Any]:
        """:meth:`CoverageTracker.summary` over every position epoch."""
        return self.epochs.summary()

    def coverage_segments(self) -> list[dict[str, Any]]:
        """Every epoch's coverage segments, each with its ``epoch``."""
        return self.epochs.segments()

    # -- reports ----------------------------------------------------------------------
    def status(self) -> Status:
        """The live picture for the display (:func:`detect.engine.report.status`)."""
        return report.status(self)

    def summary(self) -> dict[str, Any]:
        """The run's figures (:func:`detect.engine.report.summary`)."""
        return report.summary(self)

    def result(self) -> dict[str, Any]:
        """What alarms.json holds (:func:`detect.engine.report.result`)."""
        return report.result(self)
