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
import signal
import threading
import time
import warnings
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detect.alarms import AlarmConfig, AlarmLogic, ScorePoint
from detect.align import Aligner, TrackGrid
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
)
from detect.coverage import CoverageTracker, FinalCoverage, merge
from detect.errors import (
    EXIT_NOT_COVERED,
    EXIT_OK,
    EXIT_PROCESSING_FAILED,
    EXIT_RECORDING_LOST,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    TaskError,
)
from detect.outdir import OutDirLock, claim_default_dir, lock_dir
from detect.sinks.display import Display, PlainDisplay, Status, make_display, summary_lines
from detect.sinks.export import AlarmJsonl, result_dict, write_all
from detect.windows import WindowSpec, cut, resample_time

log = logging.getLogger("detect.pipeline")

MODEL_SENSORS = ("gpr", "emi")


# --------------------------------------------------------------------------- scorers


class ModelInputMismatch(ValueError):
    """The instrument's GPR time window or frequency is not what the model was trained on."""


class Scorer:
    """What the pipeline needs from a model: its window geometry and ``predict``."""

    spec: WindowSpec
    sensors: tuple[str, ...]
    calibrated: bool
    #: the GPR input the weights were trained on ({"window_ns", "antenna_hz"}), when known
    gpr_input: Mapping[str, float] | None = None

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Any:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        raise NotImplementedError


class ClassifierScorer(Scorer):
    """The shipped, trained model (:class:`detect.model.classifier.Classifier`)."""

    calibrated = True

    def __init__(self, clf: Any) -> None:
        self.clf = clf
        self.spec = clf.spec
        self.sensors = tuple(s for s, has in (("gpr", clf.has_gpr), ("emi", clf.has_emi)) if has)
        sim_gpr = ((clf.card.get("data") or {}).get("sim") or {}).get("gpr") or {}
        if clf.has_gpr and sim_gpr.get("dt_ns") and sim_gpr.get("n_samples"):
            self.gpr_input = {
                "window_ns": float(sim_gpr["dt_ns"]) * float(sim_gpr["n_samples"]),
                "antenna_hz": float(sim_gpr.get("centre_hz") or 0.0),
            }

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Any:
        return self.clf.predict(gpr, emi)

    def info(self) -> dict[str, Any]:
        card = self.clf.card
        return {
            "name": self.clf.name,
            "kind": "classifier",
            "calibrated": True,
            "sensors": list(self.sensors),
            "weights_sha256": (card.get("weights") or {}).get("sha256"),
            "window": self.spec.to_dict(),
        }


class InterimScorer(Scorer):
    """An honest stand-in until a trained model is shipped: anomaly energy, NOT calibrated.

    GPR: energy of the centre traces after removing the window's mean trace (what a
    buried scatterer adds to flat layering), over the running median of that energy.
    EMI: the centre reading's departure from the nearer-valued window edge (so a target at
    one edge does not fire), summed over gates, over its running median. Each ratio maps
    to a score with a logistic; the two combine by noisy-OR. It says nothing about class
    (the outputs show none and say UNCALIBRATED) and its
    depth is the GPR peak time at an assumed 0.1 m/ns wave speed.
    """

    calibrated = False

    def __init__(self, spec: WindowSpec, sensors: Sequence[str] = MODEL_SENSORS) -> None:
        self.spec = spec
        self.sensors = tuple(sensors)
        self._hist: dict[str, deque[float]] = {s: deque(maxlen=500) for s in MODEL_SENSORS}
        self.dt_ns = math.nan

    def _ratio(self, sensor: str, energy: np.ndarray) -> np.ndarray:
        """Each value over the median of the last ``H`` finite values up to and including it.

        Depends only on the sequence of windows, not on how they were batched, so live,
        replay and scan give the same scores.
        """
        hist = self._hist[sensor]
        h = hist.maxlen or 2000
        finite = energy[np.isfinite(energy)]
        if finite.size == 0:
            return np.full_like(energy, np.nan)
        seq = np.concatenate([np.fromiter(hist, float, len(hist)), finite])
        padded = np.concatenate([np.full(h - 1, np.nan), seq])
        views = sliding_window_view(padded, h)[len(hist) :]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmedian(views, axis=1)
        out = np.full_like(energy, np.nan)
        out[np.isfinite(energy)] = finite / np.maximum(ref, 1e-12)
        hist.extend(finite.tolist())
        return out

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Any:
        n = (gpr if gpr is not None else emi).shape[0]  # type: ignore[union-attr]
        q = max(1, self.spec.n_pos // 8)
        c = self.spec.half
        p = {s: np.full(n, np.nan) for s in MODEL_SENSORS}
        depth = np.full(n, np.nan)
        if gpr is not None:
            ok = np.isfinite(gpr).all(axis=(1, 2))
            resid = gpr - gpr.mean(axis=1, keepdims=True)
            centre = resid[:, c - q : c + q + 1]
            energy = np.where(ok, (centre**2).mean(axis=(1, 2)), np.nan)
            ratio = self._ratio("gpr", energy)
            p["gpr"] = _logistic(ratio)
            if math.isfinite(self.dt_ns):
                k = np.argmax(np.abs(np.nan_to_num(resid[:, c])), axis=1)
                depth = k * self.dt_ns * 0.1 / 2.0
        if emi is not None:
            ok = np.isfinite(emi).all(axis=(1, 2))
            centre_emi = emi[:, c]
            dev = np.minimum(
                np.abs(centre_emi - np.median(emi[:, :q], axis=1)).sum(axis=1),
                np.abs(centre_emi - np.median(emi[:, -q:], axis=1)).sum(axis=1),
            )
            dev = np.where(ok, dev, np.nan)
            ratio = self._ratio("emi", dev)
            p["emi"] = _logistic(ratio)
        both = np.stack([p["gpr"], p["emi"]])
        p_mine = 1.0 - np.nanprod(1.0 - both, axis=0)
        p_mine[np.isnan(both).all(axis=0)] = np.nan
        probs = np.zeros((n, len(CLASSES)), dtype=np.float32)
        probs[:, CLASSES.index("background")] = 1.0 - p_mine
        probs[:, CLASSES.index("ap_mine")] = p_mine
        return _Prediction(p_mine, probs, depth, {"gpr": p["gpr"], "emi": p["emi"]})

    def info(self) -> dict[str, Any]:
        return {
            "name": "interim-energy-UNCALIBRATED",
            "kind": "interim anomaly-energy detector (no trained model loaded)",
            "note": UNCALIBRATED_NOTE,
            "calibrated": False,
            "sensors": list(self.sensors),
            "window": self.spec.to_dict(),
        }


def _logistic(ratio: np.ndarray) -> np.ndarray:
    """Energy ratio over background -> score; 0.5 at 4x the background, 0.95 at ~13x."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / (1.0 + np.exp(-2.5 * (np.log(ratio) - math.log(4.0))))


class _Prediction:
    def __init__(
        self,
        p_mine: np.ndarray,
        class_probs: np.ndarray,
        depth_m: np.ndarray,
        branch_scores: dict[str, np.ndarray],
    ) -> None:
        self.p_mine = p_mine
        self.class_probs = class_probs
        self.depth_m = depth_m
        self.branch_scores = branch_scores


#: what every output says when the interim detector runs (``model.allow_interim=true``)
UNCALIBRATED_NOTE = (
    "UNCALIBRATED: no trained model (model.allow_interim=true): alarms are anomaly-energy "
    "scores, not probabilities, and carry no class"
)


def load_scorer(cfg: Any, spec: WindowSpec, prefer: Sequence[str] = ()) -> Scorer:
    """The configured trained model (or a ``prefer``-red one that fits the sensors).

    A missing, truncated or mismatched model is a refusal (:class:`TaskError`, one line):
    running anyway on the uncalibrated interim detector must be asked for with
    ``model.allow_interim=true``, and then every output says UNCALIBRATED.
    """
    names = [*prefer, str(cfg.model.name)]
    allow = bool(cfg.model.get("allow_interim", False))
    why = ""
    code = EXIT_UNAVAILABLE
    try:
        from detect.model.card import PreprocessingMismatch
        from detect.model.classifier import Classifier
    except ImportError as exc:
        why = f"no classifier module ({exc})"
    else:
        last: Exception | None = None
        for name in names:
            try:
                return ClassifierScorer(Classifier.load(name, cfg))
            except Exception as exc:  # missing, truncated, mismatched: the same here
                last = exc
        why = (str(last).splitlines() or [type(last).__name__])[0]
        if isinstance(last, PreprocessingMismatch):
            code = EXIT_USAGE  # the config does not fit the model: a usage error
    if not allow:
        raise TaskError(
            f"model '{cfg.model.name}' cannot be loaded ({why}); refusing to run without a "
            "trained model (model.allow_interim=true runs the UNCALIBRATED interim detector)",
            code,
        )
    log.warning("model '%s' cannot be loaded (%s): %s", cfg.model.name, why, UNCALIBRATED_NOTE)
    return InterimScorer(spec)


# --------------------------------------------------------------------------- dsp


def build_chains(cfg: Any) -> dict[str, Any]:
    """Per-sensor streaming DSP chains from ``cfg.dsp`` (the same code training uses)."""
    from detect.dsp.chain import chains_from_config

    try:
        return dict(chains_from_config(cfg, streaming=True))
    except ValueError as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc


# --------------------------------------------------------------------------- sinks


class SafeRecorder:
    """The session writer, switched off (loudly) at its first error; alarming goes on."""

    def __init__(self, writer: Any, path: Path, on_error: Callable[[str], None]) -> None:
        self.writer = writer
        self.path = path
        self.on_error = on_error
        self.error: str | None = None
        self.n_written = 0

    @property
    def ok(self) -> bool:
        return self.writer is not None and self.error is None

    def _guard(self, what: str, fn: Callable[[], Any]) -> None:
        if not self.ok:
            return
        try:
            fn()
            self.n_written += 1
        except Exception as exc:  # full disk, I/O error or bug: the same here
            self.error = f"{what}: {type(exc).__name__}: {exc}"
            self.on_error(f"RECORDING STOPPED ({self.path}): {self.error}")
            try:
                self.writer.close()
            except Exception:  # the file is already broken
                log.debug("closing the failed recording raised", exc_info=True)

    def write(self, item: Any) -> None:
        self._guard("write", lambda: self.writer.write(item))

    def flush(self) -> None:
        self._guard("flush", lambda: self.writer.flush())  # no writer: a no-op, not a crash

    def write_coverage(self, segments: Sequence[Mapping[str, Any]], epoch: int = 0) -> None:
        """One row per needed sensor missing from each not-covered segment."""
        for seg in segments:
            if seg.get("status") != "not_covered":
                continue
            for sensor in seg.get("missing", []):
                args = (seg["start_m"], seg["end_m"], SensorState.FAULT, "not covered", sensor)
                kw = {"epoch": epoch} if epoch else {}
                self._guard("coverage", partial(self.writer.write_coverage, *args, **kw))

    def write_final_coverage(
        self, final: FinalCoverage, host_time_s: float, epoch: int = 0
    ) -> None:
        """The segments that became final, then how far the record now reaches.

        A writer without ``write_coverage_final`` (a test double) gets the rows only."""
        self.write_coverage(final.segments, epoch)
        mark = getattr(self.writer, "write_coverage_final", None)
        if mark is None:
            return
        opened = final.open_segment
        open_start_m = math.nan if opened is None else float(opened["start_m"])
        missing = [] if opened is None else list(opened["missing"])
        args = (final.final_to_m, open_start_m, missing, host_time_s)
        kw = {"epoch": epoch} if epoch else {}
        self._guard("coverage", partial(mark, *args, **kw))

    def write_truth(self, truth: list[dict[str, Any]]) -> None:
        self._guard("truth", lambda: self.writer.write_truth(truth))

    def close(self) -> None:
        if self.ok:
            self._guard("close", lambda: self.writer.close())

    def status(self) -> str:
        if self.writer is None:
            return "off"
        return f"{self.path.name}" if self.error is None else f"STOPPED: {self.error}"


def open_recorder(
    path: Path, config: dict[str, Any], info: dict[str, Any], on_error: Callable[[str], None]
) -> SafeRecorder:
    try:
        from detect.io.session import SessionWriter
    except ImportError as exc:
        on_error(f"RECORDING UNAVAILABLE: detect.io.session is missing ({exc})")
        rec = SafeRecorder(None, path, on_error)
        rec.error = "session writer missing"
        return rec
    try:
        writer = SessionWriter(path, config=config, info=info)
    except Exception as exc:  # the run goes on without a recording, loudly
        on_error(f"RECORDING UNAVAILABLE: cannot create {path}: {exc}")
        rec = SafeRecorder(None, path, on_error)
        rec.error = str(exc)
        return rec
    return SafeRecorder(writer, path, on_error)


# --------------------------------------------------------------------------- pipeline


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
        recorder: SafeRecorder | None = None,
        jsonl: AlarmJsonl | None = None,
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
        self.input_check = input_check
        self.model_warnings: list[str] = []
        self._gpr_input_seen: tuple[float, int, float | None] | None = None
        self.aligner = aligner
        self.sensors = tuple(sensors)
        self.model_sensors = tuple(s for s in scorer.sensors if s in self.sensors)
        if not self.model_sensors:
            raise TaskError(
                f"the model uses {'+'.join(scorer.sensors)} but the source delivers "
                f"{'+'.join(self.sensors) or 'nothing'}",
                EXIT_USAGE,
            )
        self.needed = tuple(needed) if needed is not None else self.model_sensors
        self.chains = dict(chains or {})
        self.display = display or PlainDisplay()
        if isinstance(self.display, PlainDisplay):
            self.display.needed = self.needed
        self.recorder = recorder
        self.jsonl = jsonl
        self.stride = max(1, int(stride_cells))
        self.clock = clock
        self.source_info = dict(source_info or {})
        self.grids = {s: TrackGrid(self.spec.grid_m) for s in self.model_sensors}
        self.alarm_logic = AlarmLogic(alarm_config, aligner.locate, id_prefix)
        self.coverage = CoverageTracker(self.needed, aligner.offsets_m)
        #: position epoch (:class:`PositionEpoch`); the coverage of the epochs before it
        self.epoch = 0
        self._past_coverage: list[CoverageTracker] = []
        self.states: dict[str, SensorState] = dict.fromkeys(self.sensors, SensorState.OK)
        self.health_snapshots: dict[str, dict[str, Any]] = {}
        self.alarms: list[Alarm] = []
        self.health_events: list[HealthEvent] = []
        self.n_faults = 0
        self.track_pos = array("d")
        self.track_p = array("d")
        #: Seconds from the arrival of the items that completed windows to their decision.
        self.latency_s: deque[float] = deque(maxlen=100_000)
        #: Same, from the host time stamp of the newest trace (paced sources only).
        self.frame_latency_s: deque[float] = deque(maxlen=100_000)
        self._last_frame_s = math.nan
        self.n_items: dict[str, int] = {}
        self._rate: dict[str, tuple[float, int, float]] = {}
        self._next_centre: int | None = None
        self._t_start = clock()
        self._last_display_s = -math.inf
        self._last_unplaced_warn_s = -math.inf
        self._last_coverage_record_s = -math.inf
        self._sink_errors: dict[str, str] = {}
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
            if self.recorder is not None:
                self.recorder.write(item)
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
                        self._sink("display", partial(self.display.message, msg))
        return new

    def _processing_failed(self, sensor: str, exc: Exception) -> None:
        """A block that cannot be processed: the sensor counts as FAULT until one can."""
        first = sensor not in self.processing_errors
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.processing_errors[sensor] = why
        self.n_processing_errors += 1
        if first:
            log.exception("processing %s failed", sensor)
            self._health(HealthEvent(self.clock(), sensor, SensorState.FAULT, f"processing: {why}"))

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

    def new_epoch(self, marker: PositionEpoch) -> list[Alarm]:
        """Positions restart in a new frame (:class:`PositionEpoch`): the current epoch is
        closed as a run end is (held alarms declared, its unscored end not covered) and
        the next starts from nothing: alignment, grids, DSP state, window schedule."""
        log.warning("position epoch %d: %s (%s)", self.epoch + 1, marker.reason, marker.source)
        new = self.finish()
        if self.recorder is not None and self.recorder.ok:
            self.recorder.write_final_coverage(
                self.coverage.take_rest(), self.clock(), epoch=self.epoch
            )
        self._past_coverage.append(self.coverage)
        self.epoch += 1
        self.aligner = self.aligner.restarted()
        self.grids = {s: TrackGrid(self.spec.grid_m) for s in self.model_sensors}
        for chain in self.chains.values():
            chain.reset()
        self._next_centre = None
        self._gpr_input_seen = None
        self.last_p = self.last_p_pos = math.nan
        self.alarm_logic.start_epoch(self.epoch, self.aligner.locate)
        self.coverage = CoverageTracker(self.needed, self.aligner.offsets_m)
        self._last_coverage_record_s = -math.inf
        msg = f"NEW POSITION EPOCH {self.epoch}: {marker.reason}; positions start again"
        self._sink("display", partial(self.display.message, msg, True))
        return new

    def _trackers(self) -> list[tuple[int, CoverageTracker]]:
        """Every epoch's coverage, oldest first."""
        return [*enumerate(self._past_coverage), (self.epoch, self.coverage)]

    def _check_gpr_input(self, block: GprBlock) -> None:
        """Compare the radar's time window and frequency with what the model was trained on.

        The DSP resamples every trace to the model's sample count, so a radar with another
        time window would reach the model with its hyperbolas stretched or squeezed."""
        hdr = block.header
        key = (hdr.dt_ns, block.n_samples, hdr.antenna_hz)
        if key == self._gpr_input_seen:
            return
        want = self.scorer.gpr_input
        problems: list[str] = []
        if want and "gpr" in self.scorer.sensors:
            window_ns = hdr.dt_ns * block.n_samples
            if abs(window_ns - want["window_ns"]) > 0.1 * want["window_ns"]:
                problems.append(
                    f"time window {window_ns:.3g} ns (model: {want['window_ns']:.3g} ns)"
                )
            f_want = want.get("antenna_hz") or 0.0
            if hdr.antenna_hz and f_want and abs(math.log(hdr.antenna_hz / f_want)) > math.log(1.5):
                problems.append(
                    f"antenna {hdr.antenna_hz / 1e6:.0f} MHz (model: {f_want / 1e6:.0f} MHz)"
                )
        if problems:
            msg = (
                f"MODEL INPUT MISMATCH: the GPR gives {', '.join(problems)}; the model's GPR "
                "scores are not valid for this instrument"
            )
            if self.input_check == "refuse":
                raise ModelInputMismatch(f"{msg} (model.input_check=warn scores it anyway)")
            if msg not in self.model_warnings:
                self.model_warnings.append(msg)
                log.warning("%s", msg)
                self._sink("display", partial(self.display.message, msg, True))
        self._gpr_input_seen = key

    def _block(self, block: GprBlock | MdBlock, t_arrival: float) -> list[Alarm]:
        sensor = block.header.sensor
        self.n_items[sensor] = self.n_items.get(sensor, 0) + block.n
        if isinstance(block, GprBlock):
            self._check_gpr_input(block)
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
        grid = self.grids.get(sensor)
        if grid is None or block.n == 0:
            return []
        data = block.data
        if isinstance(block, GprBlock) and data.shape[1] != self.spec.gpr_samples:
            data = resample_time(data, self.spec.gpr_samples)
        grid.add(data, block.position_m, block.host_time_s)
        grid.finalize()
        self.stage_s["align+grid"] += time.perf_counter() - t1
        self._last_frame_s = float(block.host_time_s[-1])
        return self._score_ready(t_arrival)

    # -- windows ----------------------------------------------------------------------
    def _present(self) -> list[str]:
        return [
            s
            for s in self.model_sensors
            if self.states.get(s) != SensorState.FAULT and self.grids[s].final_end is not None
        ]

    def _score_ready(self, t_arrival: float) -> list[Alarm]:
        if any(
            self.states.get(s) != SensorState.FAULT and self.grids[s].final_end is None
            for s in self.model_sensors
        ):
            return []  # a working sensor has not delivered yet: wait for it, never skip it
        present = self._present()
        if not present:
            return []
        spec = self.spec
        tail = spec.n_pos - spec.half
        hi_centre = min(int(self.grids[s].final_end) for s in present) - tail  # type: ignore[arg-type]
        if self._next_centre is None:
            starts = [
                int(self.grids[s].final_end) - (self.grids[s].capacity // 2)  # type: ignore[arg-type]
                for s in present
            ]
            first = [self._first_cell(s) for s in present]
            self._next_centre = max(max(first), max(starts)) + spec.half
        lo_centre = self._next_centre
        if hi_centre < lo_centre:
            return []
        centres = np.arange(lo_centre, hi_centre + 1, self.stride, dtype=np.int64)
        self._next_centre = int(centres[-1]) + self.stride
        return self._score(centres, present, t_arrival)

    def _first_cell(self, sensor: str) -> int:
        first = self.grids[sensor].first_cell
        return 0 if first is None else int(first)

    def _rows(self, sensor: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows [lo, hi) with NaN where the sensor has no valid data."""
        g = self.grids[sensor]
        m = self.spec.gpr_samples if sensor == "gpr" else self.spec.emi_channels
        out = np.full((hi - lo, m), np.nan, dtype=np.float32)
        times = np.full(hi - lo, np.nan)
        a = max(lo, self._first_cell(sensor), int(g.final_end) - g.capacity // 2)  # type: ignore[arg-type]
        b = min(hi, int(g.final_end))  # type: ignore[arg-type]
        if b > a:
            vals, valid, t = g.rows(a, b)
            if vals.shape[1] == m:
                vals[~valid] = np.nan
                out[a - lo : b - lo] = vals
                times[a - lo : b - lo] = t
        return out, times

    def _score(self, centres: np.ndarray, present: list[str], t_arrival: float) -> list[Alarm]:
        spec = self.spec
        lo = int(centres[0]) - spec.half
        hi = int(centres[-1]) - spec.half + spec.n_pos
        rel = centres - lo
        patches: dict[str, np.ndarray | None] = {"gpr": None, "emi": None}
        centre_time = np.full(len(centres), np.nan)
        #: index in ``present`` of the sensor whose trace time is the centre time (-1: none)
        time_sensor = np.full(len(centres), -1)
        for k, s in enumerate(present):
            rows, times = self._rows(s, lo, hi)
            patches[s] = cut(rows, rel, spec)
            take = ~np.isfinite(centre_time) & np.isfinite(times[rel])
            centre_time[take] = times[rel][take]
            time_sensor[take] = k
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
            used = np.isfinite(patch).all(axis=(1, 2)) & np.isfinite(p)
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
        for a in new:
            self._emit(a)
        return new

    # -- output -----------------------------------------------------------------------
    def _sink(self, name: str, fn: Callable[[], Any]) -> None:
        if name in self._sink_errors:
            return
        try:
            fn()
        except Exception as exc:  # a sink never stops alarming
            self._sink_errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("sink %s failed and is switched off: %s", name, self._sink_errors[name])
            if name != "display":
                self._sink(
                    "display",
                    lambda: self.display.message(
                        f"SINK {name} STOPPED: {self._sink_errors[name]}", loud=True
                    ),
                )

    def _emit(self, alarm: Alarm) -> None:
        self.alarms.append(alarm)
        if self.recorder is not None:
            self.recorder.write(alarm)
        if self.jsonl is not None:
            jsonl = self.jsonl
            self._sink("alarms.jsonl", lambda: jsonl.write(alarm))
        self._sink("display", lambda: self.display.alarm(alarm))

    def on_recorder_error(self, text: str) -> None:
        self._sink("display", lambda: self.display.message(text, loud=True))
        log.error("%s", text)

    def poll(self, sources: Sequence[Any], force_display: bool = False) -> None:
        """Health, coverage and display; call it every loop turn."""
        now = self.clock()
        lossy: set[str] = set()
        for src in sources:
            for ev in src.poll_health():
                self._health(ev)
            for name, h in src.health.items():
                if getattr(h, "lossy", False):
                    lossy.add(name)
                self.states[name] = SensorState.FAULT if name in self.processing_errors else h.state
                snap = h.snapshot()
                snap["rate_hz"] = self._rate_of(name, now)
                if name in self.processing_errors:
                    snap["state"] = SensorState.FAULT.name
                    snap["reason"] = f"processing: {self.processing_errors[name]}"
                self.health_snapshots[name] = snap
        a = self.aligner
        head = a.head_position_m
        faulted = any(self.states.get(s) == SensorState.FAULT for s in self.needed)
        lag = now - a.head_time_s
        if faulted and math.isfinite(a.speed.speed_m_s) and 0.0 < lag < 2.0:
            # Every position stream stalled with a sensor down: dead-reckon the head for up
            # to 2 s (host times on our clock only) so faulted ground is not lost.
            head = head + a.speed.speed_m_s * lag
        unplaced_before = self.coverage.unplaced_s
        self.coverage.update(head, self._coverage_states(lossy), now)
        if self.coverage.unplaced_s > unplaced_before and now - self._last_unplaced_warn_s >= 10.0:
            self._last_unplaced_warn_s = now
            msg = (
                "NO POSITION: sensor data is arriving but cannot be placed along the track "
                "(no odometer, GPS fix or speed), so NOTHING IS BEING SCORED; connect the "
                "odometer/GPS or set align.position_source"
            )
            self._sink("display", lambda: self.display.message(msg, loud=True))
        self._record_coverage(now)
        if force_display or now - self._last_display_s >= 0.25:
            self._last_display_s = now
            st = self.status()
            self._sink("display", lambda: self.display.update(st))

    def _coverage_states(self, lossy: set[str]) -> dict[str, SensorState]:
        """States as coverage sees them: DEGRADED only for a sensor losing more of its
        frames than its health's ``lossy_rate`` (holes in its data); link noise that loses
        nothing (resyncs, garbage between frames) leaves its ground covered."""
        out = dict(self.states)
        for s, st in out.items():
            if st != SensorState.FAULT:
                out[s] = SensorState.DEGRADED if s in lossy else SensorState.OK
        return out

    def _scored_to_m(self) -> float:
        """Every window centre below this has been scored or skipped for good: the end of
        the ground the centre before the next one stands for (see :meth:`_score`), computed
        as :meth:`_score` computes it, so that its covered ground ends exactly here."""
        if self._next_centre is None:
            return -math.inf
        step_m = self.stride * self.spec.grid_m
        return float(self._next_centre - self.stride) * self.spec.grid_m + step_m / 2

    def _record_coverage(self, now: float) -> None:
        """Append the coverage that became final to the recording (at most every
        :attr:`coverage_record_every_s`), so a killed session keeps it."""
        rec = self.recorder
        if (
            rec is None
            or not rec.ok
            or now - self._last_coverage_record_s < self.coverage_record_every_s
        ):
            return
        self._last_coverage_record_s = now
        final = self.coverage.take_final(self._scored_to_m())
        if final is not None:
            rec.write_final_coverage(final, now, epoch=self.epoch)

    def record_coverage_rest(self) -> None:
        """End of the run: the coverage still open is final; record it (if recording)."""
        if self.recorder is not None and self.recorder.ok:
            self.recorder.write_final_coverage(
                self.coverage.take_rest(), self.clock(), epoch=self.epoch
            )

    def _rate_of(self, sensor: str, now: float) -> float:
        n = self.n_items.get(sensor, 0)
        t0, n0, rate = self._rate.get(sensor, (now, n, 0.0))
        if now - t0 >= 1.0:
            rate = (n - n0) / (now - t0)
            self._rate[sensor] = (now, n, rate)
        elif sensor not in self._rate:
            self._rate[sensor] = (now, n, 0.0)
        return rate

    def _health(self, ev: HealthEvent) -> None:
        if not math.isfinite(ev.position_m) and math.isfinite(self.aligner.head_position_m):
            ev = replace(
                ev, position_m=self.aligner.head_position_m + self.aligner.offset_m(ev.sensor)
            )
        self.health_events.append(ev)
        if ev.state == SensorState.FAULT:
            self.n_faults += 1
        self.states[ev.sensor] = ev.state
        if self.recorder is not None:
            self.recorder.write(ev)
        self._sink("display", lambda: self.display.health(ev))

    def status(self) -> Status:
        gps = self.aligner.gps
        fix = gps.last_fix
        gps_txt = "none" if fix is None else (fix.quality.name if fix.has_fix else "NO FIX")
        return Status(
            elapsed_s=self.clock() - self._t_start,
            head_position_m=self.aligner.head_position_m,
            speed_m_s=self.aligner.speed.speed_m_s,
            p_mine=self.last_p,
            p_mine_position_m=self.last_p_pos,
            sensors=list(self.health_snapshots.values())
            or [{"sensor": s, "state": "OK"} for s in self.sensors],
            alarms=self.alarms[-20:],
            n_alarms=len(self.alarms),
            distance_m=sum(c.distance_m for _, c in self._trackers()),
            not_covered_m=sum(c.not_covered_m() for _, c in self._trackers()),
            not_covered=self.coverage.not_covered(),
            recording=self.recorder.status() if self.recorder is not None else "off",
            recording_ok=self.recorder is None or self.recorder.writer is None or self.recorder.ok,
            gps=gps_txt,
            needed=self.needed,
            source=str(self.source_info.get("source", "")),
            model=str(self.scorer.info().get("name", "")),
        )

    def finish(self) -> list[Alarm]:
        """End of data: declare the alarms still held back by NMS."""
        new = self.alarm_logic.finish()
        for a in new:
            self._emit(a)
        return new

    def _never_started(self) -> list[str]:
        return [s for s in self.needed if self.n_items.get(s, 0) == 0]

    def coverage_summary(self) -> dict[str, Any]:
        """:meth:`CoverageTracker.summary` over every position epoch."""
        parts = [c.summary() for _, c in self._trackers()]
        out = {
            k: sum(p[k] for p in parts)
            for k in ("distance_m", "not_covered_m", "blind_s", "unplaced_s")
        }
        return {**out, "needed": list(self.needed), "epochs": len(parts)}

    def coverage_segments(self) -> list[dict[str, Any]]:
        """Every epoch's coverage segments, each with its ``epoch``."""
        return [{**seg, "epoch": k} for k, c in self._trackers() for seg in c.segments()]

    def summary(self) -> dict[str, Any]:
        cov = self.coverage_summary()
        return {
            "duration_s": self.clock() - self._t_start,
            "distance_m": cov["distance_m"],
            "n_alarms": len(self.alarms),
            # a needed sensor that never delivered was in FAULT all along, without an event
            "n_faults": self.n_faults + len(self._never_started()),
            "never_started": self._never_started(),
            "not_covered_m": cov["not_covered_m"],
            "blind_s": cov["blind_s"],
            "unplaced_s": cov["unplaced_s"],
            "position_epochs": cov["epochs"],
            "model_warnings": list(self.model_warnings),
            "items": dict(self.n_items),
            "suppressed_by_nms": self.alarm_logic.n_suppressed,
            "processing_errors": self.n_processing_errors,
            "stage_s": {k: round(v, 4) for k, v in self.stage_s.items()},
            "recording": self.recorder.status() if self.recorder is not None else "off",
            "sink_errors": dict(self._sink_errors),
            # link-error totals per sensor: the counters of its last health snapshot
            "link": {
                name: {k: int(v) for k, v in snap.items() if isinstance(v, (int, np.integer))}
                for name, snap in self.health_snapshots.items()
            },
        }

    def result(self) -> dict[str, Any]:
        return result_dict(
            self.alarms,
            np.frombuffer(self.track_pos, dtype=np.float64),
            np.frombuffer(self.track_p, dtype=np.float64),
            self.coverage_segments(),
            self.source_info,
            self.scorer.info(),
            self.summary(),
        )


# --------------------------------------------------------------------------- tasks


def _sensors_of(source: Any) -> tuple[str, ...]:
    return tuple(s for s in getattr(source, "sensors", ()) if s != "gps")


def _out_dir(cfg: Any, key: str, default_stem: str) -> OutDirLock:
    """The run's output directory, created and locked for this run alone (one line, exit 2,
    when it cannot be created or written, or another run holds it)."""
    node = cfg.run if key == "run" else cfg.output
    value = node.get("out_dir") if key == "run" else node.get("dir")
    what = "run.out_dir" if key == "run" else "output.dir"
    if value:
        return lock_dir(Path(str(value)), what)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return claim_default_dir(Path("runs"), f"{default_stem}-{stamp}", what)


def limit_threads(cfg: Any) -> None:
    """BLAS and torch thread pools to ``run.threads``.

    The live path multiplies small blocks: extra BLAS threads only spin between them (on a
    2-core laptop that was a whole core and a 4x worse p99 latency), and torch's intra-op
    threads fight over the same cores.
    """
    n = int((cfg.get("run") or {}).get("threads", 1))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        log.debug("threadpoolctl missing: BLAS threads not limited")
    import torch

    torch.set_num_threads(n)


def build_pipeline(
    cfg: Any,
    sensors: Sequence[str],
    display: Display | None = None,
    out_dir: Path | None = None,
    record: bool = False,
    source_info: Mapping[str, Any] | None = None,
    trace_spacing_m: float | None = None,
    scorer: Scorer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Pipeline:
    """The pipeline every command uses, from the composed config."""
    from detect.align import AlignError
    from detect.windows import window_spec_from_cfg

    if "gpr" in sensors and "emi" in sensors:
        prefer: tuple[str, ...] = ()
    elif "gpr" in sensors:
        prefer = ("gpr_only",)  # GPR-only files (DZT, DT1, RD3, gprMax) get the GPR model
    else:
        prefer = ("emi_only",)
    limit_threads(cfg)
    if scorer is None:
        scorer = load_scorer(cfg, window_spec_from_cfg(cfg), prefer)
    node = cfg.get("align") or {}
    try:
        aligner = Aligner.from_cfg(node, trace_spacing_m=trace_spacing_m)
    except AlignError as exc:
        raise TaskError(str(exc), EXIT_USAGE) from exc
    needed_cfg = (cfg.get("run") or {}).get("needed_sensors")
    needed = None if needed_cfg is None else [str(s) for s in needed_cfg]
    if needed is not None:
        unknown = [s for s in needed if s not in sensors]
        if unknown or not needed:
            raise TaskError(
                f"run.needed_sensors = {needed}: "
                + (f"'{unknown[0]}' is not delivered" if unknown else "it is empty")
                + f" (the source delivers: {', '.join(sensors)})",
                EXIT_USAGE,
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    pipe = Pipeline(
        scorer=scorer,
        aligner=aligner,
        alarm_config=AlarmConfig.from_cfg(cfg.alarm),
        sensors=sensors,
        needed=needed,
        chains=build_chains(cfg),
        display=display,
        stride_cells=int(node.get("stride_cells", 1)),
        id_prefix=f"A{stamp}",
        clock=clock,
        source_info=source_info,
        input_check=str(cfg.model.get("input_check", "refuse")),
    )
    if isinstance(scorer, InterimScorer):  # asked for with model.allow_interim=true
        try:
            pipe.display.uncalibrated = True  # type: ignore[attr-defined]
        except AttributeError:
            log.debug("display %r cannot mark alarms uncalibrated", pipe.display)
        pipe.display.message(UNCALIBRATED_NOTE, loud=True)
    if out_dir is not None:
        attach_outputs(pipe, cfg, out_dir, record)
    return pipe


def attach_outputs(pipe: Pipeline, cfg: Any, out_dir: Path, record: bool) -> None:
    """``alarms.jsonl`` and (``record``) the session recording in ``out_dir``.

    The live commands call this only once the source is open, so a source that cannot be
    opened leaves no recording that holds nothing (and blocks the next run)."""
    from detect.config import to_dict

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        pipe.jsonl = AlarmJsonl(out_dir / "alarms.jsonl", calibrated=pipe.scorer.calibrated)
    except OSError as exc:
        raise TaskError(f"cannot write to {out_dir}: {exc.strerror or exc}", EXIT_USAGE) from exc
    if record:
        pipe.recorder = open_recorder(
            out_dir / "session.h5",
            to_dict(cfg),
            {**pipe.source_info, "model": pipe.scorer.info()},
            pipe.on_recorder_error,
        )


class _Stop:
    """Ctrl-C / SIGTERM set a flag; the loop finishes the turn and closes cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.closing = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            sigs = [signal.SIGINT, signal.SIGTERM]
            if hasattr(signal, "SIGHUP"):
                sigs.append(signal.SIGHUP)  # the terminal went away: close cleanly too
            for sig in sigs:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.closing:
            return  # the recording and alarm files are being closed: let that finish
        if self.event.is_set():  # a second Ctrl-C: the operator really wants out
            raise KeyboardInterrupt
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def drive(
    pipe: Pipeline,
    source: Any,
    duration_s: float | None,
    stop: threading.Event | None = None,
    flush_every_s: float = 1.0,
) -> None:
    """Read the source until it is exhausted, ``duration_s`` passes or ``stop`` is set."""
    from detect.sources.base import SourceExhausted

    t0 = time.monotonic()
    last_flush = t0
    while stop is None or not stop.is_set():
        now = time.monotonic()
        if duration_s is not None and now - t0 >= duration_s:
            break
        try:
            items = source.read(0.05)
        except SourceExhausted:
            break
        if items:
            pipe.handle(items)
        pipe.poll([source])
        if pipe.recorder is not None and now - last_flush >= flush_every_s:
            pipe.recorder.flush()
            last_flush = now


def close_out(
    pipe: Pipeline,
    out_dir: Path | None,
    extra: Mapping[str, Any] | None = None,
    truth: list[dict[str, Any]] | None = None,
) -> dict:
    """Flush, close, write the alarm files; return the summary."""
    pipe.finish()
    if pipe.recorder is not None:
        pipe.record_coverage_rest()
        if truth:
            pipe.recorder.write_truth(list(truth))
        pipe.recorder.flush()
        pipe.recorder.close()
    if pipe.jsonl is not None:
        pipe.jsonl.close()
    summary = {**pipe.summary(), **dict(extra or {})}
    if not pipe.scorer.calibrated:
        summary["uncalibrated"] = UNCALIBRATED_NOTE
    summary["exit_status"], summary["exit_reason"] = exit_status(pipe, summary)
    if out_dir is not None:
        result = pipe.result()
        result["summary"] = summary
        try:
            write_all(out_dir, result, pipe.alarms)
            summary["out_dir"] = str(out_dir)
        except OSError as exc:
            log.error("cannot write the alarm files to %s: %s", out_dir, exc)
            summary["out_dir"] = f"FAILED: {exc}"
            summary["exit_status"], summary["exit_reason"] = exit_status(pipe, summary)
    return summary


#: not-covered ground this much beyond the half window (and the sensors' offset spread) at a
#: lane end still counts as the lane end: one scoring step plus rounding
_LANE_END_SLACK_M = 0.05


def _lane_end_allowance_m(pipe: Pipeline) -> float:
    """Ground at each end of the track that is never a window centre, in a healthy run."""
    offsets = [pipe.aligner.offset_m(s) for s in pipe.needed] or [0.0]
    step_m = pipe.stride * pipe.spec.grid_m
    spread_m = max(offsets) - min(offsets)
    return pipe.spec.half * pipe.spec.grid_m + spread_m + step_m + _LANE_END_SLACK_M


def not_covered_reasons(pipe: Pipeline, summary: Mapping[str, Any]) -> list[str]:
    """Why ground inside the lane was not covered; empty for a run where only the lane ends
    (never a window centre) are not covered."""
    needed = set(pipe.needed)
    out: list[str] = []
    never = set(summary.get("never_started") or ())
    faulted = sorted(
        {e.sensor for e in pipe.health_events if e.state == SensorState.FAULT} & (needed - never)
    )
    out.extend(f"{s} FAULT" for s in faulted)
    out.extend(f"no data from {s}" for s in summary.get("never_started") or ())
    if summary.get("processing_errors"):
        out.append(f"{summary['processing_errors']} blocks could not be processed")
    if summary.get("blind_s", 0.0) > 0.5:
        out.append(f"{summary['blind_s']:.1f} s blind")
    if summary.get("unplaced_s", 0.0) > 0.5:
        out.append(f"{summary['unplaced_s']:.1f} s of data without a position")
    segs = [g for g in pipe.coverage.segments() if g["end_m"] > g["start_m"]]
    if segs:
        lane_end_m = _lane_end_allowance_m(pipe)
        first, last = float(segs[0]["start_m"]), float(segs[-1]["end_m"])
        inner = 0.0
        gaps = merge(  # neighbours that miss different sensors are one stretch of ground
            (float(g["start_m"]), float(g["end_m"])) for g in segs if g["status"] == "not_covered"
        )
        for a, b in gaps:
            if a <= first:
                a = max(a, min(b, first + lane_end_m))
            if b >= last:
                b = min(b, max(a, last - lane_end_m))
            inner += max(0.0, b - a)
        if inner > 1e-6:
            out.append(f"{inner:.2f} m inside the lane not covered")
    return out


def exit_status(pipe: Pipeline, summary: Mapping[str, Any]) -> tuple[int, str]:
    """The exit status of a run that completed (see :mod:`detect.errors`) and why."""
    if summary.get("failed"):
        code = int(summary.get("failed_exit", EXIT_PROCESSING_FAILED))
        what = "REFUSED" if code == EXIT_USAGE else "PROCESSING FAILED"
        return code, f"{what}: {summary['failed']}"
    lost: list[str] = []
    rec = pipe.recorder
    if rec is not None and rec.error is not None:
        lost.append(f"recording {rec.path.name}: {rec.error}")
    if str(summary.get("out_dir", "")).startswith("FAILED"):
        lost.append(f"alarm files {summary['out_dir']}")
    lost.extend(
        f"{name} {why}" for name, why in (summary.get("sink_errors") or {}).items()
        if name != "display"
    )  # fmt: skip
    reasons = not_covered_reasons(pipe, summary)
    why = " / ".join(
        [*(["GROUND NOT COVERED: " + "; ".join(reasons)] if reasons else []),
         *(["RECORDING LOST: " + "; ".join(lost)] if lost else [])]
    )  # fmt: skip
    if reasons:  # the ground must be swept again: that matters more than the lost record
        return EXIT_NOT_COVERED, why
    if lost:
        return EXIT_RECORDING_LOST, why
    return EXIT_OK, "complete"


def _print_summary(summary: Mapping[str, Any], display: Display) -> None:
    for line in summary_lines(dict(summary)):
        print(line, flush=True)


def _open_source(spec: Mapping[str, Any]) -> Any:
    from detect.sources.base import SourceError
    from detect.sources.registry import UnknownSourceError, create_source

    try:
        return create_source(spec)
    except (UnknownSourceError, SourceError, OSError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc


def _threaded(source: Any) -> Any:
    """Paced sources read in their own thread (bounded queue); a fast source is read inline
    so that nothing is dropped when the pipeline is the slower side."""
    try:
        from detect.sources.threaded import ThreadedSource
    except ImportError:
        return source
    if not getattr(source, "paced", True) or isinstance(source, ThreadedSource):
        return source  # fast, or already threaded by the registry (`threaded: true`)
    return ThreadedSource(source)


def _failure(pipe: Pipeline, exc: BaseException, where: str) -> TaskError:
    """A source, reader, DSP or scorer failure that stopped a replay or scan: one line.

    A model-input mismatch or a DSP chain that does not fit the instrument is a refusal
    (exit 2, as before any data is scored); anything else is a processing failure (exit 6).
    The traceback goes to the debug log (``-v``)."""
    from detect.dsp.base import DspError

    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, ModelInputMismatch):
        return TaskError(f"{where}: {text}", EXIT_USAGE)
    if isinstance(exc, DspError):
        return TaskError(
            f"{where}: {text} (the dsp chain does not fit this instrument; set dsp.* overrides)",
            EXIT_USAGE,
        )
    log.debug("processing %s failed", where, exc_info=exc)
    head = pipe.aligner.head_position_m
    at = f" at {head:.2f} m" if math.isfinite(head) else ""
    return TaskError(
        f"{where}: processing failed{at}: {type(exc).__name__}: {text} (the files hold what "
        "was processed before)",
        EXIT_PROCESSING_FAILED,
    )


def _live(cfg: Any, source: Any, stem: str, duration_s: float | None, strict: bool = False) -> int:
    """Read ``source`` through the pipeline until it ends; returns the exit status.

    ``strict`` (replay): a block that cannot be processed, or a source that fails, stops
    the run with a one-line error after the files are closed; live (``run``) the sensor
    counts as FAULT meanwhile and the run goes on (exit 4 at the end)."""
    inner = getattr(source, "inner", source)
    source = _threaded(source)

    record = bool(cfg.run.get("record", True))
    display = make_display(bool(cfg.run.display), bool(cfg.run.bell))
    info = {**source.info(), "paced": bool(getattr(source, "paced", True))}
    try:  # the model first: a refusal leaves no output directory behind
        pipe = build_pipeline(cfg, _sensors_of(source), display, None, source_info=info)
        pipe.strict = strict
        lock = _out_dir(cfg, "run", stem) if record else None
    except BaseException:
        display.close()
        raise
    out_dir = None if lock is None else lock.directory
    try:
        if out_dir is not None and (out_dir / "session.h5").exists():
            raise TaskError(
                f"{out_dir} already holds a session.h5: choose a new run.out_dir "
                "(a recording is never overwritten)",
                EXIT_USAGE,
            )
        src_off = info.get("emi_offset_m")
        cfg_off = pipe.aligner.offset_m("emi")
        if src_off is not None and abs(float(src_off) - cfg_off) > 1e-6:
            display.message(
                f"align.offsets_m.emi = {cfg_off} m but the source says the EMI coil is at "
                f"{src_off} m: GPR and EMI windows will not line up",
                loud=True,
            )
        where = Path(str(info.get("path") or info.get("source") or stem)).name
        summary, error = _live_loop(cfg, pipe, source, inner, out_dir, duration_s, display, where)
    except BaseException:
        display.close()  # again is harmless
        if lock is not None:  # a run that wrote nothing leaves no directory behind
            lock.release(remove_empty_dir=True)
            lock = None
        raise
    finally:
        if lock is not None:
            lock.release()
    _print_summary(summary, display)
    if error is not None:
        raise error
    return int(summary["exit_status"])


def _live_loop(
    cfg: Any,
    pipe: Pipeline,
    source: Any,
    inner: Any,
    out_dir: Path | None,
    duration_s: float | None,
    display: Display,
    where: str,
) -> tuple[dict, TaskError | None]:
    """Open the source, then the files; drive; close everything. (summary, failure)."""
    with _Stop() as stop:
        try:
            source.open()
        except Exception as exc:  # one line for the operator; nothing was written
            display.close()
            raise TaskError(
                f"cannot open source {pipe.source_info.get('source')}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                EXIT_USAGE,
            ) from exc
        if out_dir is not None:
            try:
                attach_outputs(pipe, cfg, out_dir, record=True)
            except BaseException:
                source.close()
                display.close()
                raise
        error: TaskError | None = None
        try:
            drive(pipe, source, duration_s, stop.event)
        except Exception as exc:  # a source or (strict) processing failure: close, then say
            error = _failure(pipe, exc, where)
            error.__cause__ = exc
        finally:
            stop.closing = True  # from here on Ctrl-C cannot cut the files short
            try:
                pipe.poll([source], force_display=True)
            except Exception:  # the run is ending anyway: the files matter more
                log.debug("last poll failed", exc_info=True)
            source.close()  # a normal close is not a sensor fault: no poll after it
            extra = {} if error is None else {"failed": str(error), "failed_exit": error.exit_code}
            summary = close_out(pipe, out_dir, extra, truth=getattr(inner, "truth", None))
            display.close()
    return summary, error


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_task(cfg: Any) -> int:
    """``detect run``: the live pipeline on the configured sources."""
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(cfg.source, resolve=True)
    assert isinstance(spec, dict)
    source = _open_source({str(k): v for k, v in spec.items()})
    dur = cfg.run.get("duration_s")
    return _live(cfg, source, "run", None if dur is None else float(dur))


def replay_task(cfg: Any) -> int:
    """``detect replay FILE``: a recording through the live pipeline at its own pacing."""
    path = cfg.input.get("path")
    if not path:
        raise TaskError("replay needs a FILE", EXIT_USAGE)
    speed = cfg.replay.get("speed")
    from detect.io.formats import ReaderError, detect_format

    try:
        fmt = cfg.input.get("format") or detect_format(Path(str(path)))[0]
    except (ReaderError, OSError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    if fmt == "session":
        spec = {"kind": "replay", "path": str(path), "speed": speed}
    else:  # any GPR file format, paced at N x its trace rate
        spacing = cfg.input.get("trace_spacing_m")
        spec = {"kind": "file", "path": str(path), "format": fmt, "speed": speed,
                "trace_spacing_m": spacing,
                "channel": int(cfg.input.get("channel") or 0)}  # fmt: skip
    source = _open_source(spec)
    return _live(cfg, source, f"replay-{Path(str(path)).stem}", None, strict=True)


# --------------------------------------------------------------------------- scan


def file_items(
    path: Path,
    fmt: str | None,
    trace_spacing_m: float | None,
    chunk_s: float = 5.0,
    channel: int = 0,
) -> tuple[list[Any], dict[str, Any], float | None]:
    """(items in time order, source info, trace spacing) of any recorded file."""
    from detect.io.formats import ReaderError, detect_format, read_gpr

    try:
        kind = fmt or detect_format(path)[0]
    except (ReaderError, OSError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    if kind == "session":
        try:
            from detect.io.session import SessionReader
        except ImportError:
            SessionReader = None  # type: ignore[assignment,misc]
        if SessionReader is not None:
            try:
                with SessionReader(path) as rd:
                    info = {"source": str(path), "format": "session", **dict(rd.info)}
                    if rd.epochs():  # a head restarted: blocks as recorded, markers between
                        return list(rd.iter_items()), info, trace_spacing_m
                    blocks = [b for b in (rd.gpr(), rd.emi()) if b is not None]
                    fixes = list(rd.gps())
            except ReaderError as exc:
                raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
            return _interleave(blocks, fixes, chunk_s), info, trace_spacing_m
    try:
        f = read_gpr(path, fmt, trace_spacing_m, channel=channel)
    except ReaderError as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    for w in f.warnings:
        log.warning("%s: %s", path.name, w)
    block = f.block
    if not np.isfinite(block.position_m).any() and not trace_spacing_m:
        raise TaskError(
            f"{path}: the file gives no trace positions or spacing; pass --trace-spacing-m",
            EXIT_USAGE,
        )
    if not np.isfinite(block.host_time_s).all() or np.ptp(block.host_time_s) == 0:
        rate = f.trace_rate_hz or 100.0
        block = replace(block, host_time_s=np.arange(block.n, dtype=np.float64) / rate)
    info = {"source": str(path), **f.info()}
    return _interleave([block], list(f.gps), chunk_s), info, f.trace_spacing_m or trace_spacing_m


def _interleave(
    blocks: Sequence[Any], fixes: Sequence[GpsFix], chunk_s: float, chunk_m: float = 5.0
) -> list[Any]:
    """Whole-file blocks cut into pieces of at most ``chunk_s`` and ``chunk_m``, all streams
    merged in time order."""
    pieces: list[tuple[float, int, Any]] = []
    for b in blocks:
        t = b.host_time_s
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + chunk_s, chunk_s), side="left")
        pos = b.position_m
        if np.isfinite(pos).all() and len(pos) > 1:
            # also at most chunk_m of track per piece (coarse trace steps, fast heads)
            bins = np.floor((pos - pos[0]) / chunk_m)
            edges = np.append(edges, np.flatnonzero(np.diff(bins)) + 1)
        edges = np.unique(np.append(edges, [0, len(t)]))
        for a, c in pairwise(edges):
            if c > a:
                pieces.append((float(t[c - 1]), 1, _slice(b, int(a), int(c))))
    pieces.extend((f.host_time_s, 0, f) for f in fixes)
    pieces.sort(key=lambda x: (x[0], x[1]))
    return [p[2] for p in pieces]


def _slice(block: Any, a: int, b: int) -> Any:
    return replace(
        block,
        data=block.data[a:b],
        seq=block.seq[a:b],
        host_time_s=block.host_time_s[a:b],
        position_m=block.position_m[a:b],
    )


def scan_task(cfg: Any) -> int:
    """``detect scan FILE``: the pipeline on a recorded file, as fast as possible."""
    path = cfg.input.get("path")
    if not path:
        raise TaskError("scan needs a FILE", EXIT_USAGE)
    path = Path(str(path))
    spacing = cfg.input.get("trace_spacing_m")
    channel = int(cfg.input.get("channel") or 0)
    try:
        items, info, spacing = file_items(path, cfg.input.get("format"), spacing, channel=channel)
    except TaskError:
        raise
    except Exception as exc:  # a reader that breaks on this file: one line, never a traceback
        log.debug("reading %s failed", path, exc_info=True)
        why = f"{path}: cannot be read: {_one_line(exc)}"
        raise TaskError(why, EXIT_PROCESSING_FAILED) from exc
    sensors = tuple(sorted({i.header.sensor for i in items if isinstance(i, (GprBlock, MdBlock))}))
    info = {**info, "paced": False}
    grid_m = float(cfg.window.grid_m)
    if spacing and spacing > (TrackGrid(grid_m).max_fill_cells + 1) * grid_m:
        log.warning(
            "%s: trace spacing %.3g m is coarser than the model's %.3g m grid can bridge: "
            "no window will be scored and the whole track will be reported not covered",
            path.name,
            spacing,
            grid_m,
        )
    pipe = build_pipeline(
        cfg,
        sensors,
        PlainDisplay(period_s=math.inf),
        None,
        source_info=info,
        trace_spacing_m=spacing,
    )
    with _out_dir(cfg, "output", f"scan-{path.stem}") as lock:
        return _scan(pipe, items, path, lock.directory)


def _scan(pipe: Pipeline, items: Sequence[Any], path: Path, out_dir: Path) -> int:
    attach_outputs(pipe, {}, out_dir, record=False)
    pipe.kept = []
    pipe.strict = True
    t0 = time.perf_counter()
    error: TaskError | None = None
    try:
        for item in items:
            pipe.handle([item])
            pipe.coverage.update(
                pipe.aligner.head_position_m, pipe.states, pipe.aligner.head_time_s
            )
    except Exception as exc:  # the files keep what was scored; then one line
        error = _failure(pipe, exc, path.name)
        error.__cause__ = exc
    wall = time.perf_counter() - t0
    data_s = max(
        (float(b.host_time_s[-1]) for b in items if isinstance(b, (GprBlock, MdBlock))),
        default=0.0,
    ) - min(
        (float(b.host_time_s[0]) for b in items if isinstance(b, (GprBlock, MdBlock))),
        default=0.0,
    )
    extra: dict[str, Any] = {
        "wall_s": wall, "data_s": data_s, "x_real_time": data_s / max(wall, 1e-9)
    }  # fmt: skip
    if error is not None:
        extra.update({"failed": str(error), "failed_exit": error.exit_code})
    summary = close_out(pipe, out_dir, extra)
    if error is not None:
        for line in summary_lines(summary):
            print(line)
        raise error
    try:
        from detect.sinks.plot import plot_scan

        plot_scan(out_dir / "scan.png", pipe.kept or [], pipe.result())
    except Exception as exc:  # the plot is a convenience; the alarms are written
        log.error("scan.png not written: %s", exc)
    for line in summary_lines(summary):
        print(line)
    return int(summary["exit_status"])
