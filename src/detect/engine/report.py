"""The pipeline's reports: the live status for the display, the run's summary, and what
alarms.json holds. Read-only views of a :class:`detect.engine.pipeline.Pipeline` (typed
``Any`` here: the pipeline imports this module, never the other way)."""

from __future__ import annotations

from typing import Any

import numpy as np

from detect.blocks import SensorState
from detect.sinks.display import Status
from detect.sinks.export import result_dict
from detect.sinks.gis_reasons import health_records


def status(pipe: Any) -> Status:
    gps = pipe.aligner.gps
    fix = gps.last_fix
    gps_txt = "none" if fix is None else (fix.quality.name if fix.has_fix else "NO FIX")
    return Status(
        elapsed_s=pipe.clock() - pipe.t_start,
        head_position_m=pipe.aligner.head_position_m,
        speed_m_s=pipe.aligner.speed.speed_m_s,
        p_mine=pipe.last_p,
        p_mine_position_m=pipe.last_p_pos,
        sensors=list(pipe.health_snapshots.values())
        or [{"sensor": s, "state": "OK"} for s in pipe.sensors],
        alarms=pipe.alarms[-20:],
        n_alarms=sum(a.tier == "alarm" for a in pipe.alarms),
        distance_m=pipe.epochs.summary()["distance_m"],
        not_covered_m=pipe.epochs.summary()["not_covered_m"],
        not_covered=pipe.coverage.not_covered(),
        final_to_m=pipe.coverage.final_m(pipe.windows.scored_to_m()),
        utc_anchor=pipe.utc_anchor,
        threshold=float(pipe.alarm_logic.config.threshold),
        recording=pipe.recorder.status() if pipe.recorder is not None else "off",
        recording_ok=pipe.recorder is None or pipe.recorder.writer is None or pipe.recorder.ok,
        gps=gps_txt,
        needed=pipe.needed,
        source=str(pipe.source_info.get("source", "")),
        model=str(pipe.scorer.info().get("name", "")),
    )


def summary(pipe: Any) -> dict[str, Any]:
    cov = pipe.coverage_summary()
    return {
        "duration_s": pipe.clock() - pipe.t_start,
        "distance_m": cov["distance_m"],
        "n_alarms": sum(a.tier == "alarm" for a in pipe.alarms),
        "n_suspects": sum(a.tier == "suspect" for a in pipe.alarms),
        # a needed sensor that never delivered is a fault, counted once (its start-up
        # timeout may or may not have ended in a FAULT event before the run ended)
        "n_faults": pipe.n_faults
        + len(
            set(pipe.never_started())
            - {e.sensor for e in pipe.health_events if e.state == SensorState.FAULT}
        ),
        "never_started": pipe.never_started(),
        "not_covered_m": cov["not_covered_m"],
        "blind_s": cov["blind_s"],
        "unplaced_s": cov["unplaced_s"],
        "position_epochs": cov["epochs"],
        "model_warnings": list(pipe.input_check.warnings),
        "items": dict(pipe.n_items),
        "suppressed_by_nms": pipe.alarm_logic.n_suppressed,
        "processing_errors": pipe.n_processing_errors,
        "stage_s": {k: round(v, 4) for k, v in pipe.stage_s.items()},
        "recording": pipe.recorder.status() if pipe.recorder is not None else "off",
        "sink_errors": dict(pipe.sinks.errors),
        # link-error totals per sensor: the counters of its last health snapshot
        "link": {
            name: {k: int(v) for k, v in snap.items() if isinstance(v, (int, np.integer))}
            for name, snap in pipe.health_snapshots.items()
        },
    }


def model_verdict(pipe: Any) -> dict[str, Any]:
    """Whether the mine model scored this data (``applied``), why, and the radar seen."""
    scored = bool(np.isfinite(np.frombuffer(pipe.track_p, dtype=np.float64)).any())
    return dict(pipe.input_check.verdict(scored))


def result(pipe: Any) -> dict[str, Any]:
    doc = result_dict(
        pipe.alarms,
        np.frombuffer(pipe.track_pos, dtype=np.float64),
        np.frombuffer(pipe.track_p, dtype=np.float64),
        pipe.coverage_segments(),
        pipe.source_info,
        {**pipe.scorer.info(), **model_verdict(pipe)},
        pipe.summary(),
    )
    # the sensors' state changes, where and in which position epoch: why ground was not
    # covered (the survey package's reasons, as export-gis finds them in the session)
    doc["health"] = health_records(pipe.health_events, pipe.epoch_starts_s)
    return doc
