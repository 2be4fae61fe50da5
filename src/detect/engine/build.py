"""The pipeline every command uses, built from the composed config."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.alarms import AlarmConfig
from detect.align import Aligner
from detect.engine.pipeline import Pipeline
from detect.errors import (
    SettingsError,
)
from detect.model.scorers import (
    UNCALIBRATED_NOTE,
    InterimScorer,
    Scorer,
    load_scorer,
)
from detect.sinks.display import Display
from detect.sinks.export import AlarmJsonl, JsonlSink
from detect.sinks.recorder import open_recorder

log = logging.getLogger(__name__)


def build_chains(cfg: Any) -> dict[str, Any]:
    """Per-sensor streaming DSP chains from ``cfg.dsp`` (the same code training uses)."""
    from detect.dsp.chain import chains_from_config

    try:
        return dict(chains_from_config(cfg, streaming=True))
    except ValueError as exc:
        raise SettingsError(str(exc).splitlines()[0]) from exc


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
    if scorer is None:
        scorer = load_scorer(cfg, window_spec_from_cfg(cfg), prefer)
    node = cfg.get("align") or {}
    try:
        aligner = Aligner.from_cfg(node, trace_spacing_m=trace_spacing_m)
    except AlignError as exc:
        raise SettingsError(str(exc)) from exc
    needed_cfg = (cfg.get("run") or {}).get("needed_sensors")
    needed = None if needed_cfg is None else [str(s) for s in needed_cfg]
    if needed is not None:
        unknown = [s for s in needed if s not in sensors]
        if unknown or not needed:
            raise SettingsError(
                f"run.needed_sensors = {needed}: "
                + (f"'{unknown[0]}' is not delivered" if unknown else "it is empty")
                + f" (the source delivers: {', '.join(sensors)})"
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    pipe = Pipeline(
        scorer=scorer,
        aligner=aligner,
        alarm_config=AlarmConfig.from_cfg(cfg.alarm, bool(getattr(scorer, "calibrated", True))),
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
        jsonl = AlarmJsonl(out_dir / "alarms.jsonl", calibrated=pipe.scorer.calibrated)
    except OSError as exc:
        raise SettingsError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    pipe.add_sink(JsonlSink(jsonl))
    if record:
        rec = open_recorder(
            out_dir / "session.h5", to_dict(cfg), {**pipe.source_info, "model": pipe.scorer.info()}
        )
        pipe.add_sink(rec)
        if rec.error is not None:  # the run goes on without a recording, loudly
            pipe.sinks.switch_off(rec, rec.error)
