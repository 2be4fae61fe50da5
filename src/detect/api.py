"""The public Python API: read a file, scan it, open a session, load and export a model.

``import detect`` offers these names lazily (``detect.__getattr__``): importing the package
costs nothing, and torch is imported only once a model is loaded or a scan runs. Nothing
here prints or returns an exit status; bad input raises a :class:`DetectError` subclass
with a one-line message. Processing that stopped part-way raises too, with what was
processed before in the error's ``result``: nothing already scored is lost.

The same engine runs underneath as in ``detect scan`` (:mod:`detect.engine`); a scan
result says what was *not covered* and why, never a silent all clear. docs/api.md has the
tour, with examples that the tests run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detect.blocks import Alarm, GprBlock, HealthEvent, MdBlock

# ---- the engine and io functions this API builds on: the one place that names them ----
from detect.config import ConfigError
from detect.config import compose as _compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out
from detect.engine.items import data_span_s, file_items
from detect.engine.outcome import not_covered_reasons
from detect.engine.pipeline import Pipeline
from detect.errors import (
    DetectError,
    InputError,
    ModelError,
    ProcessingError,
    SettingsError,
)
from detect.io.formats import GprFile, ReaderError
from detect.io.formats import read_gpr as _read_gpr
from detect.io.session import SessionReader
from detect.model.scorers import ClassifierScorer, ModelInputMismatch, Scorer

# -----------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from detect.model.classifier import Classifier

log = logging.getLogger(__name__)

__all__ = [
    "DetectError",
    "Detector",
    "GprFile",
    "InputError",
    "ModelError",
    "ModelWindows",
    "OnnxExport",
    "ProcessingError",
    "ScanResult",
    "SessionReader",
    "SettingsError",
    "compose",
    "export_onnx",
    "load_model",
    "open_session",
    "read_gpr",
    "scan",
]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- errors


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


# --------------------------------------------------------------------------- reading


def compose(overrides: Iterable[str] = ()) -> DictConfig:
    """The configuration the commands use, with Hydra overrides (``["alarm.threshold=0.6"]``)."""
    try:
        return _compose(list(overrides))
    except ConfigError as exc:
        raise SettingsError(_one_line(exc)) from exc


def read_gpr(
    path: PathLike,
    format: str | None = None,
    *,
    trace_spacing_m: float | None = None,
    channel: int = 0,
    headers_only: bool = False,
) -> GprFile:
    """Any supported GPR file (DZT, DT1, RD3, gprMax, SEG-Y, session) as a :class:`GprFile`.

    The format comes from the content unless ``format`` forces one; ``trace_spacing_m``
    is used where the file gives none (and wins over the file's, with a warning in
    ``GprFile.warnings``); ``channel`` picks one channel of a multi-channel file.
    """
    try:
        return _read_gpr(path, format, trace_spacing_m, channel=channel, headers_only=headers_only)
    except ReaderError as exc:
        raise InputError(_one_line(exc)) from exc


def open_session(path: PathLike) -> SessionReader:
    """A session recording (``session.h5``, a simulated lane) for reading; use it in a
    ``with`` block. Readable while another process is still recording it."""
    try:
        return SessionReader(path)
    except ReaderError as exc:
        raise InputError(_one_line(exc)) from exc


def load_model(name_or_dir: PathLike, config: DictConfig | None = None) -> Classifier:
    """A shipped model by name (``fused``, ``gpr_only``, ``emi_only``) or a model directory.

    The result's ``card`` is the model card (preprocessing, calibration, metrics, limits);
    ``predict(gpr_windows, emi_windows)`` scores windows. With ``config``, weights trained
    with other preprocessing are refused (:class:`ModelError`).
    """
    from detect.model.card import ModelCardError
    from detect.model.classifier import Classifier

    try:
        return Classifier.load(
            name_or_dir if isinstance(name_or_dir, str) else Path(name_or_dir), config
        )
    except ModelCardError as exc:
        raise ModelError(_one_line(exc)) from exc


# --------------------------------------------------------------------------- results


@dataclass
class ModelWindows:
    """Every window the model scored, as the pipeline cut it: row ``i`` is the window
    centred at ``position_m[i]`` (the same order as :attr:`ScanResult.track_position_m`).

    ``gpr``: ``(n, n_pos, gpr_samples)``, ``emi``: ``(n, n_pos, emi_channels)``, or None
    when the model has no such branch; a window holds NaN where its sensor had no valid
    data (absent, in FAULT), and the model then scores it without that sensor.
    """

    position_m: np.ndarray
    gpr: np.ndarray | None
    emi: np.ndarray | None


@dataclass
class ScanResult:
    """What a scan (or a :class:`Detector`) found, and what it could not look at.

    ``coverage``: segments ``{start_m, end_m, status, missing, epoch}``; ground counts as
    covered only where a window centred there was scored with every needed sensor's data.
    ``not_covered_reasons`` is empty when only the lane ends (never a window centre) are
    not covered; otherwise it says why ground inside the lane was not, and that ground
    must be swept again. ``blocks``: the processed, aligned blocks (for plotting) when kept.
    """

    alarms: list[Alarm]
    track_position_m: np.ndarray
    track_p_mine: np.ndarray
    coverage: list[dict[str, Any]]
    not_covered_reasons: list[str]
    summary: dict[str, Any]
    source: dict[str, Any]
    model: dict[str, Any]
    messages: list[str] = field(default_factory=list)
    blocks: list[GprBlock | MdBlock] = field(default_factory=list)
    windows: ModelWindows | None = None
    document: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def fully_covered(self) -> bool:
        """True when every needed sensor covered the lane (lane ends aside)."""
        return not self.not_covered_reasons

    def not_covered(self) -> list[dict[str, Any]]:
        """The not-covered segments (lane ends included)."""
        return [s for s in self.coverage if s["status"] == "not_covered"]

    def to_dict(self) -> dict[str, Any]:
        """The ``alarms.json`` document that ``detect scan`` writes."""
        return dict(self.document)

    def save(self, out_dir: PathLike) -> dict[str, Path]:
        """Write ``alarms.json``, ``alarms.geojson`` and ``alarms.csv`` in ``out_dir``."""
        from detect.sinks.export import write_all

        return write_all(out_dir, self.document, self.alarms)


@dataclass(frozen=True)
class OnnxExport:
    """An exported model: the file, and how closely the ONNX graph reproduces PyTorch
    (``max_abs_diff`` over every output of 8 random windows, by ``runtime``)."""

    path: Path
    max_abs_diff: float
    runtime: str
    metadata: dict[str, str]


# --------------------------------------------------------------------------- pipeline


class _Quiet:
    """A display that prints nothing; it keeps the loud messages and health events."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.uncalibrated = False

    def update(self, status: Any) -> None:
        pass

    def alarm(self, alarm: Alarm) -> None:
        pass

    def health(self, event: HealthEvent) -> None:
        reason = f": {event.reason}" if event.reason else ""
        self.lines.append(f"SENSOR {event.sensor} {event.state.name}{reason}")

    def message(self, text: str, loud: bool = False) -> None:
        if loud:
            self.lines.append(text)

    def close(self) -> None:
        pass


def _scorer(model: Any, cfg: Any) -> Scorer | None:
    """``model`` as the pipeline's scorer: None (the configured model), a name or
    directory, a loaded :class:`Classifier` (checked against the config's preprocessing),
    or any object with the :class:`Scorer` interface (``spec``, ``sensors``, ``predict``)."""
    if model is None:
        return None
    if isinstance(model, (str, os.PathLike)):
        return ClassifierScorer(load_model(model, cfg))
    if hasattr(model, "check_preprocessing") and hasattr(model, "card"):
        from detect.model.card import ModelCardError

        try:
            model.check_preprocessing(cfg)
        except ModelCardError as exc:
            raise ModelError(_one_line(exc)) from exc
        return ClassifierScorer(model)
    if all(hasattr(model, a) for a in ("spec", "sensors", "predict", "info")):
        return model  # type: ignore[no-any-return]
    raise ModelError(f"model: a name, a directory, a loaded model or a Scorer, not {model!r}")


class Detector:
    """The detection pipeline as an object: feed it blocks and GPS fixes in time order,
    then :meth:`close` it for the :class:`ScanResult`.

    Built from a config (``config``, or ``overrides`` composed as the commands compose
    them) and optionally from objects: ``model`` (see :func:`_scorer`). ``sensors`` are the
    streams that will be fed (the model's sensors among them are needed for coverage).
    It runs as ``detect scan`` does: a block that cannot be processed raises (typed), and
    BLAS and torch use ``run.threads`` threads (default 1) in this process, as in the
    commands.
    """

    def __init__(
        self,
        config: DictConfig | None = None,
        *,
        overrides: Sequence[str] = (),
        sensors: Sequence[str] = ("gpr", "emi"),
        model: Any = None,
        trace_spacing_m: float | None = None,
        source: Mapping[str, Any] | None = None,
        keep_blocks: bool = False,
        keep_windows: bool = False,
    ) -> None:
        if config is not None and overrides:
            raise SettingsError("give a config or overrides, not both (compose(overrides))")
        cfg = config if config is not None else compose(overrides)
        self._display = _Quiet()
        self.pipeline: Pipeline = build_pipeline(
            cfg,
            tuple(sensors),
            self._display,  # type: ignore[arg-type]
            None,
            source_info={"paced": False, **dict(source or {})},
            trace_spacing_m=trace_spacing_m,
            scorer=_scorer(model, cfg),
        )
        self.pipeline.strict = True
        if keep_blocks:
            self.pipeline.kept = []
        self._windows: dict[str, list[np.ndarray]] | None = None
        if keep_windows:
            self._keep_windows()
        self.closed = False

    def _keep_windows(self) -> None:
        """Wrap the scorer's ``predict`` (on the instance: its class, and so the engine's
        checks of it, stay the same) to keep the windows it is given."""
        scorer = self.pipeline.scorer
        predict = scorer.predict
        kept: dict[str, list[np.ndarray]] = {"gpr": [], "emi": []}
        self._windows = kept

        def keeping(gpr: np.ndarray | None, emi: np.ndarray | None) -> Any:
            for name, arr in (("gpr", gpr), ("emi", emi)):
                if arr is not None:
                    kept[name].append(np.array(arr, dtype=np.float32, copy=True))
            return predict(gpr, emi)

        scorer.predict = keeping  # type: ignore[method-assign]

    def feed(self, items: Iterable[Any]) -> list[Alarm]:
        """Process items (GPR/EMI blocks, GPS fixes, position epochs); returns the alarms
        they declared. A failure raises :class:`InputError` (the model or the DSP chain
        does not fit this instrument) or :class:`ProcessingError`; :meth:`close` still
        gives what was processed before it."""
        from detect.dsp.base import DspError

        pipe = self.pipeline
        new: list[Alarm] = []
        try:
            new.extend(pipe.feed_offline(items))
        except ModelInputMismatch as exc:
            raise InputError(_one_line(exc)) from exc
        except DspError as exc:
            raise InputError(
                f"{_one_line(exc)} (the dsp chain does not fit this instrument; "
                "set dsp.* overrides)"
            ) from exc
        except Exception as exc:  # reader, scorer or bug: one line, the cause chained
            head = pipe.aligner.head_position_m
            at = f" at {head:.2f} m" if np.isfinite(head) else ""
            raise ProcessingError(
                f"processing failed{at}: {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        return new

    def close(self, **extra: Any) -> ScanResult:
        """End of data: declare the alarms still held back, settle the coverage; the
        result. ``extra`` goes into the summary."""
        if self.closed:
            raise SettingsError("this Detector is closed already")
        self.closed = True
        pipe = self.pipeline
        summary = close_out(pipe, None, extra)
        summary.pop("exit_status", None)
        summary.pop("exit_reason", None)
        reasons = not_covered_reasons(pipe, summary)
        doc = pipe.result()
        # never an empty list for a run that stopped or scored nothing: that is no all clear
        if summary.get("failed"):
            reasons.insert(0, f"stopped: {summary['failed']}")
        if not any(seg["status"] == "covered" for seg in doc["coverage"]):
            reasons.append("no ground was covered: no window was scored")
        summary["not_covered_reasons"] = reasons
        doc["summary"] = summary
        return ScanResult(
            alarms=list(pipe.alarms),
            # full precision here; alarms.json rounds them
            track_position_m=np.frombuffer(pipe.track_pos, dtype=np.float64).copy(),
            track_p_mine=np.frombuffer(pipe.track_p, dtype=np.float64).copy(),
            coverage=list(doc["coverage"]),
            not_covered_reasons=reasons,
            summary=summary,
            source=dict(doc["source"]),
            model=dict(doc["model"]),
            messages=list(self._display.lines),
            blocks=list(pipe.kept or []),
            windows=self._model_windows(),
            document=doc,
        )

    def _model_windows(self) -> ModelWindows | None:
        if self._windows is None:
            return None
        spec = self.pipeline.spec
        pos = np.frombuffer(self.pipeline.track_pos, dtype=np.float64).copy()

        def stack(name: str, m: int) -> np.ndarray | None:
            parts = self._windows[name] if self._windows else []
            if not parts:
                return None
            return np.concatenate(parts) if parts else np.zeros((0, spec.n_pos, m), np.float32)

        return ModelWindows(
            position_m=pos,
            gpr=stack("gpr", spec.gpr_samples),
            emi=stack("emi", spec.emi_channels),
        )


def scan(
    path: PathLike,
    *,
    config: DictConfig | None = None,
    overrides: Sequence[str] = (),
    model: Any = None,
    format: str | None = None,
    trace_spacing_m: float | None = None,
    channel: int = 0,
    keep_blocks: bool = True,
    keep_windows: bool = False,
) -> ScanResult:
    """Run the pipeline on a recorded file (any format :func:`read_gpr` knows, or a session)
    as ``detect scan`` does, as fast as possible; nothing is written or printed.

    ``model``: None for the configured model (a GPR-only file gets ``gpr_only``), a name,
    a directory, a loaded model or a Scorer. ``keep_windows``: keep every scored window
    (:class:`ModelWindows`), e.g. to feed them to an exported model.
    Raises :class:`InputError` (unreadable file, no trace positions, a radar unlike the
    model's training data), :class:`SettingsError`, :class:`ModelError`, or
    :class:`ProcessingError`; an error raised once scoring started carries the result of
    what was processed before it.
    """
    p = Path(path)
    walk = (config if config is not None else compose(overrides)).input.get("walking_speed_m_s")
    try:
        items, info, spacing = file_items(
            p, format, trace_spacing_m, channel=channel, walking_speed_m_s=walk
        )
    except DetectError:
        raise
    except Exception as exc:  # a reader that breaks on this file: one line, never a traceback
        raise InputError(f"{p}: cannot be read: {type(exc).__name__}: {_one_line(exc)}") from exc
    blocks = [i for i in items if isinstance(i, (GprBlock, MdBlock))]
    sensors = tuple(sorted({b.header.sensor for b in blocks}))
    if not sensors:
        raise InputError(f"{p}: holds no GPR or EMI data")
    det = Detector(
        config,
        overrides=overrides,
        sensors=sensors,
        model=model,
        trace_spacing_m=spacing,
        source=info,
        keep_blocks=keep_blocks,
        keep_windows=keep_windows,
    )
    t0 = time.perf_counter()
    try:
        det.feed(items)
    except DetectError as exc:
        exc.result = det.close(failed=str(exc))
        raise
    wall_s = time.perf_counter() - t0
    data_s = data_span_s(items)
    return det.close(wall_s=wall_s, data_s=data_s, x_real_time=data_s / max(wall_s, 1e-9))


# --------------------------------------------------------------------------- export

#: What the exported graph takes and gives (also in the ONNX file's metadata).
ONNX_CONTRACT = (
    "inputs: gpr float32 (B, n_pos, gpr_samples), emi float32 (B, n_pos, emi_channels), "
    "present float32 (B, 2) = [GPR used, EMI used]; a sensor's window is all zeros where "
    "present is 0. Windows are cut from the along-track grid after the card's DSP chains "
    "(preprocessing.dsp) and resampling of each trace to gpr_samples (preprocessing.window). "
    "outputs: p_mine (B,) calibrated, class_probs (B, 6) in the card's class order, "
    "depth_m (B,), p_gpr (B,), p_emi (B,); a window with present = [0, 0] has no score. "
    "See docs/api.md."
)


def export_onnx(model: Any, path: PathLike, *, check: bool = True) -> OnnxExport:
    """Write a model (a loaded model, or a name / directory) as an ONNX file.

    The file's metadata carries the model card (``detect.card``: preprocessing, window,
    calibration, classes, weights hash) and the input contract (``detect.inputs``), so the
    DSP and windowing it needs travel with it. ``check``: run the ONNX graph (onnxruntime
    when installed, else onnx's reference evaluator) on 8 random windows against PyTorch.
    Needs the ``export`` extra (onnx, onnxscript).
    """
    clf = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    try:
        from detect.model.export import example_inputs, max_abs_difference, run_onnx, to_onnx
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise DetectError(f"ONNX export is unavailable: {exc}") from exc
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise DetectError(
            f"ONNX export needs the 'export' extra (pip install 'detect[export]'): {exc}"
        ) from exc
    out = Path(path)
    card = dict(clf.card)
    metadata = {
        "detect.model": str(clf.name),
        "detect.card": json.dumps(card, sort_keys=True, default=str),
        "detect.inputs": ONNX_CONTRACT,
    }
    try:
        with _quiet_exporter():
            to_onnx(clf.model, out, metadata=metadata)
    except OSError as exc:
        raise DetectError(f"cannot write {out}: {exc.strerror or exc}") from exc
    diff, runtime = float("nan"), "not checked"
    if check:
        inputs = example_inputs(clf.model, n=8, seed=1)
        diff = max_abs_difference(clf.model, run_onnx(out, inputs), inputs)
        runtime = _onnx_runtime()
    return OnnxExport(out, diff, runtime, metadata)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's ONNX exporter logs and warns about its own internals (missing torchvision
    operators, deprecations): not the caller's business, so not on their terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _onnx_runtime() -> str:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnx.reference"
    return "onnxruntime"
