"""Scorers: what turns windows into a Prediction (the trained classifier, or the interim
energy detector when asked for explicitly), and loading one from the config."""

from __future__ import annotations

import logging
import math
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detect.blocks import (
    CLASSES,
)
from detect.errors import (
    DetectError,
    ModelError,
    SettingsError,
)
from detect.model.envelope import RadarEnvelope
from detect.model.prediction import Prediction
from detect.windows import WindowSpec

log = logging.getLogger(__name__)

MODEL_SENSORS = ("gpr", "emi")


class ModelInputMismatch(ValueError):
    """The instrument's GPR is not what the model was trained on (the API's refusal)."""


class Scorer:
    """What the pipeline needs from a model: its window geometry and ``predict``."""

    spec: WindowSpec
    sensors: tuple[str, ...]
    calibrated: bool
    #: the GPR input the weights were trained on ({"window_ns", "antenna_hz"}), when known
    gpr_input: Mapping[str, float] | None = None

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Prediction:
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
        env = clf.card.get("envelope")
        self.envelope = RadarEnvelope.from_mapping(env) if env else None
        sim_gpr = ((clf.card.get("data") or {}).get("sim") or {}).get("gpr") or {}
        if clf.has_gpr and sim_gpr.get("dt_ns") and sim_gpr.get("n_samples"):
            self.gpr_input = {
                "window_ns": float(sim_gpr["dt_ns"]) * float(sim_gpr["n_samples"]),
                "antenna_hz": float(sim_gpr.get("centre_hz") or 0.0),
            }

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Prediction:
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

    def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Prediction:
        n = (gpr if gpr is not None else emi).shape[0]  # type: ignore[union-attr]
        q = max(1, self.spec.n_pos // 8)
        c = self.spec.half
        p = {s: np.full(n, np.nan) for s in MODEL_SENSORS}
        depth = np.full(n, np.nan)
        if gpr is not None:
            # NaN samples are no data (a short record, the end of a short scan)
            ok = np.isfinite(gpr[:, c - q : c + q + 1]).any(axis=(1, 2))
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                resid = gpr - np.nanmean(gpr, axis=1, keepdims=True)
                centre = resid[:, c - q : c + q + 1]
                energy = np.where(ok, np.nanmean(centre**2, axis=(1, 2)), np.nan)
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
        return Prediction(p_mine, probs, depth, {"gpr": p["gpr"], "emi": p["emi"]})

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


#: what every output says when the interim detector runs (``model.allow_interim=true``)
UNCALIBRATED_NOTE = (
    "UNCALIBRATED: no trained model (model.allow_interim=true): alarms are anomaly-energy "
    "scores, not probabilities, and carry no class"
)


def load_scorer(cfg: Any, spec: WindowSpec, prefer: Sequence[str] = ()) -> Scorer:
    """The configured trained model (or a ``prefer``-red one that fits the sensors).

    A missing, truncated or mismatched model is a refusal (one line: ``ModelError``, or
    ``SettingsError`` when the config does not fit the model's card):
    running anyway on the uncalibrated interim detector must be asked for with
    ``model.allow_interim=true``, and then every output says UNCALIBRATED.
    """
    names = [*prefer, str(cfg.model.name)]
    allow = bool(cfg.model.get("allow_interim", False))
    why = ""
    kind: type[DetectError] = ModelError
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
            kind = SettingsError  # the config does not fit the model: a usage error
    if not allow:
        raise kind(
            f"model '{cfg.model.name}' cannot be loaded ({why}); refusing to run without a "
            "trained model (model.allow_interim=true runs the UNCALIBRATED interim detector)"
        )
    log.warning("model '%s' cannot be loaded (%s): %s", cfg.model.name, why, UNCALIBRATED_NOTE)
    return InterimScorer(spec)


def envelope_of(scorer: Scorer) -> RadarEnvelope | None:
    """The radars ``scorer``'s weights were trained on (None: a model without GPR, or the
    interim detector, which has no training input)."""
    if "gpr" not in scorer.sensors:
        return None
    env = getattr(scorer, "envelope", None)
    if env is not None:
        return env
    want = scorer.gpr_input
    if not want:
        return None
    fc = float(want.get("antenna_hz") or 1.5e9)
    # a card from before the envelope: the one simulated radar, its whole record
    return RadarEnvelope(
        centre_hz=(fc / 1.5, fc * 1.5), min_record_ns=0.9 * float(want["window_ns"]) - 2.0
    )


@dataclass
class RadarSeen:
    """What the check measured of a GPR stream, for the outputs."""

    centre_hz: float | None
    centre_from: str
    dt_ns: float
    record_ns: float
    trace_spacing_m: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre_hz": self.centre_hz,
            "centre_from": self.centre_from,
            "dt_ns": self.dt_ns,
            "record_ns": round(self.record_ns, 3),
            "trace_spacing_m": self.trace_spacing_m,
        }


def radar_seen(block: Any) -> RadarSeen:
    """Centre frequency (the measured spectrum's peak, as the network sees it; the header's
    nominal one only for flat data), sample interval, record length after time zero
    (header, else the median first-break pick) and median trace spacing of a block."""
    from detect.dsp.gpr import centre_frequency_hz, pick_first_break

    hdr = block.header
    data = np.asarray(block.data[:16], dtype=np.float64)
    fc, src = centre_frequency_hz(data, hdr.dt_ns), "measured"
    if fc is None:
        fc, src = hdr.antenna_hz, "header"
    t0_ns = float(hdr.time_zero_ns)
    if t0_ns <= 0 and data.size:
        picks = pick_first_break(data)
        if np.isfinite(picks).any():
            t0_ns = float(np.nanmedian(picks)) * hdr.dt_ns
    pos = np.asarray(block.position_m, dtype=np.float64)
    pos = pos[np.isfinite(pos)]
    steps = np.abs(np.diff(pos))
    steps = steps[steps > 0]
    spacing = float(np.median(steps)) if steps.size >= 2 else None
    return RadarSeen(fc, src, float(hdr.dt_ns), block.n_samples * hdr.dt_ns - t0_ns, spacing)


class InputCheck:
    """Each new GPR input (sample interval, samples, antenna) checked once against the
    radars the model was trained on (its envelope, :class:`RadarEnvelope`).

    Inside: scored. Outside: with ``refuse`` (the default) the model is not applied to that
    radar (:attr:`refused` holds why; the pipeline counts the sensor as FAULT, its ground
    not covered, and a scan says so); with ``refuse=False`` it is scored anyway, with the
    warning kept in :attr:`warnings` (returned once, for the operator)."""

    def __init__(self, scorer: Scorer, refuse: bool = True) -> None:
        self.scorer = scorer
        self.refuse = refuse
        self.envelope = envelope_of(scorer)
        self.warnings: list[str] = []
        self.refused: dict[str, str] = {}
        self.radar: dict[str, RadarSeen] = {}
        self.seen: tuple[float, int, float | None] | None = None

    def check(self, block: Any) -> str | None:
        """None, or a new warning line. After a refusal, :meth:`applies` is False."""
        hdr = block.header
        key = (hdr.dt_ns, block.n_samples, hdr.antenna_hz)
        if key == self.seen or block.n == 0:
            return None
        self.seen = key
        seen = radar_seen(block)
        self.radar[hdr.sensor] = seen
        if self.envelope is None:
            return None
        problems = self.envelope.problems(
            seen.centre_hz, seen.dt_ns, seen.record_ns, seen.trace_spacing_m
        )
        self.refused.pop(hdr.sensor, None)
        if not problems:
            return None
        what = f"the GPR gives {'; '.join(problems)}"
        if self.refuse:
            msg = (
                f"NO MINE MODEL FOR THIS RADAR: {what}: outside the radars model "
                f"'{self.scorer.info().get('name', '')}' was trained on; its ground is not "
                "scored (model.input_check=warn scores it anyway)"
            )
            self.refused[hdr.sensor] = msg
        else:
            msg = f"MODEL INPUT OUTSIDE ITS ENVELOPE: {what}; the GPR scores are not valid"
        if msg in self.warnings:
            return None
        self.warnings.append(msg)
        log.warning("%s", msg)
        return msg

    def applies(self, sensor: str) -> bool:
        return sensor not in self.refused

    def verdict(self, scored: bool) -> dict[str, Any]:
        """``applied`` and why, for alarms.json: did the mine model score this data?"""
        radar = {k: v.to_dict() for k, v in self.radar.items()}
        if not scored:
            why = "; ".join(self.refused.values()) or (
                "no window could be scored (too little data placed along the track)"
            )
            return {"applied": False, "reason": why, "radar": radar}
        if self.refused:
            why = "scored without " + "; ".join(self.refused.values())
        elif self.warnings:
            why = "; ".join(self.warnings)
        elif self.envelope is not None and self.radar:
            why = "the radar is inside the model's training envelope"
        else:
            why = "scored"
        return {"applied": True, "reason": why, "radar": radar}
