"""``detect evaluate``: score detectors on labelled lanes, as a demining trial would.

Lanes are simulated (seeded, :func:`detect.sim.lane.simulate_lane`) or recorded (session
HDF5 files with their ground truth, or any GPR file plus a truth CSV). Each detector runs
through the *same* pipeline as ``detect scan`` (:func:`detect.engine.build.build_pipeline`), fed
by position-stamped blocks in time order. The scoring rules live in :mod:`detect.metrics`.

Thresholds are swept by re-running the pipeline's own alarm logic
(:func:`detect.alarms.pick_alarms`: hysteresis, peak picking, NMS) on each lane's score
profile at every threshold, so each FROC point is what the detector would declare at that
setting, not a thinned list of low-threshold alarms.

The operating point is chosen on *calibration* lanes (other seeds) and reported on the test
lanes. The classical baselines' probabilities are Platt-fitted on the calibration lanes'
score profiles (they are otherwise uncalibrated).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from detect import metrics as M
from detect.blocks import GprBlock, GpsFix, MdBlock, concat_blocks
from detect.errors import ModelError, SettingsError
from detect.io.truth import find_truth

Floats = Sequence[float] | np.ndarray

log = logging.getLogger("detect.evaluate")

#: detector name -> (sensors it is fed, model name in models/ or baseline name)
DETECTORS: dict[str, tuple[tuple[str, ...], str]] = {
    "fused": (("gpr", "emi"), "model:fused"),
    "gpr_only": (("gpr",), "model:gpr_only"),
    "emi_only": (("emi",), "model:emi_only"),
    "gpr_energy_cfar": (("gpr",), "baseline:gpr_energy_cfar"),
    "emi_threshold": (("emi",), "baseline:emi_threshold"),
}
#: files taken as lanes from a directory (sidecars such as .HD, .DZX, .csv are not lanes)
LANE_SUFFIXES = frozenset({".h5", ".hdf5", ".dzt", ".dt1", ".rd3", ".sgy", ".segy", ".out"})


# --------------------------------------------------------------------------- lanes


@dataclass
class LaneData:
    """One labelled lane: blocks with head-reference positions, GPS, truth, geometry."""

    lane_id: str
    blocks: list[GprBlock | MdBlock]
    gps: list[GpsFix]
    truth: list[dict[str, Any]]
    length_m: float
    width_m: float
    soil: str = ""
    start_m: float = 0.0
    #: each sensor's along-track offset from the head reference, when the lane knows it
    #: (simulated lanes: the simulated head geometry); else the config's align.offsets_m
    offsets_m: dict[str, float] | None = None


def sim_swept_width_m(s: Any) -> float:
    """The strip a simulated single-channel head interrogates: the coil's diameter, or wider
    where targets are scattered further off the track. False alarms per m² are counted over
    this width, not over the whole simulated lane (which would understate them)."""
    return float(max(2.0 * s.emi.coil_radius_m, 2.0 * s.target_y_max_m))


def settings_for_info(sim_info: Mapping[str, Any]) -> Any:
    from detect.sim.settings import settings_from

    return settings_from(dict(sim_info))


def simulated_lanes(
    sim_cfg: Mapping[str, Any], seed: int, n: int, soils: Sequence[str] | None = None
) -> list[LaneData]:
    """``n`` seeded lanes; with ``soils`` lane i uses soil ``soils[i % len(soils)]``."""
    from detect.sim.lane import simulate_lane
    from detect.sim.settings import settings_from, with_changes

    base = settings_from(dict(sim_cfg))
    offsets = {"gpr": 0.0, "emi": float(base.head.emi_offset_m)}
    out = []
    for i in range(n):
        s = with_changes(base, soils=(soils[i % len(soils)],)) if soils else base
        lane = simulate_lane(seed, s, lane_index=i)
        out.append(
            LaneData(
                lane_id=f"sim-{seed}-{i}",
                blocks=[lane.gpr, lane.emi],
                gps=list(lane.gps),
                truth=list(lane.truth),
                length_m=float(s.lane_length_m),
                width_m=sim_swept_width_m(s),
                soil=str(lane.scene.soil.name),
                offsets_m=offsets,
            )
        )
    return out


def recorded_lanes(
    path: Path,
    truth_csv: str | None,
    width_m: float | None,
    trace_spacing_m: float | None,
    walking_speed_m_s: float | None = None,
) -> list[LaneData]:
    """Session files (truth inside or beside) or other GPR files with a truth CSV."""
    if not path.exists():
        raise SettingsError(f"evaluate.lanes: {path} does not exist")
    files = (
        sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in LANE_SUFFIXES)
        if path.is_dir()
        else [path]
    )
    if not files:
        raise SettingsError(f"evaluate.lanes: no lane files in {path}")
    out = []
    for f in files:
        blocks, gps, truth, info = _read_lane_file(f, trace_spacing_m, walking_speed_m_s)
        t = find_truth(f, truth_csv)
        if t is not None:
            truth = t
        if truth is None:
            raise SettingsError(
                f"{f}: no ground truth (none in the file and no {f.stem}.truth.csv beside it)"
            )
        pos = np.concatenate([b.position_m[np.isfinite(b.position_m)] for b in blocks])
        if pos.size == 0:
            raise SettingsError(f"{f}: no along-track positions; set input.trace_spacing_m")
        sim_info = info.get("sim")
        w = (
            width_m
            or info.get("swept_width_m")
            or info.get("lane_width_m")
            or (
                sim_swept_width_m(settings_for_info(sim_info))
                if isinstance(sim_info, dict)
                else None
            )
        )
        if not w:
            raise SettingsError(f"{f}: swept width unknown; set evaluate.swept_width_m (m)")
        soils = {str(d.get("soil") or "") for d in truth} - {""}
        offsets = None
        if info.get("sim"):
            from detect.sim.settings import settings_from

            head = settings_from(dict(info["sim"])).head
            offsets = {"gpr": 0.0, "emi": float(head.emi_offset_m)}
        out.append(
            LaneData(
                lane_id=f.stem,
                blocks=blocks,
                gps=gps,
                truth=truth,
                length_m=float(pos.max() - pos.min()),
                width_m=float(w),
                soil=",".join(sorted(soils)),
                start_m=float(pos.min()),
                offsets_m=offsets,
            )
        )
    return out


def _read_lane_file(
    f: Path, trace_spacing_m: float | None, walking_speed_m_s: float | None = None
) -> tuple[list[Any], list[GpsFix], list[dict[str, Any]] | None, dict[str, Any]]:
    if f.suffix.lower() in (".h5", ".hdf5"):
        from detect.io.session import SessionReader

        try:
            with SessionReader(f) as rd:
                blocks = [b for b in (rd.gpr(), rd.emi()) if b is not None]
                truth = list(rd.truth()) or None
                info = {**dict(rd.info), "sim": (rd.config or {}).get("sim")}
                return blocks, list(rd.gps()), truth, info
        except (OSError, ValueError, KeyError) as exc:
            raise SettingsError(f"{f}: not a readable session file ({exc})") from exc
    from detect.engine.items import file_items

    items, info, _ = file_items(f, None, trace_spacing_m, walking_speed_m_s=walking_speed_m_s)
    blocks = [i for i in items if isinstance(i, (GprBlock, MdBlock))]
    return _merge_pieces(blocks), [i for i in items if isinstance(i, GpsFix)], None, info


def _merge_pieces(pieces: Sequence[Any]) -> list[Any]:
    by_sensor: dict[str, list[Any]] = {}
    for b in pieces:
        by_sensor.setdefault(b.header.sensor, []).append(b)
    return [concat_blocks(bs) for bs in by_sensor.values()]


def stream_items(
    blocks: Sequence[GprBlock | MdBlock],
    gps: Sequence[GpsFix],
    sensors: Sequence[str],
    chunk_s: float = 0.5,
) -> list[Any]:
    """The lane as a source would deliver it: ``chunk_s`` pieces of each wanted sensor and the
    GPS fixes, merged in time order."""
    pieces: list[tuple[float, int, Any]] = []
    for b in blocks:
        if b.header.sensor not in sensors or b.n == 0:
            continue
        t = b.host_time_s
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + chunk_s, chunk_s), side="left")
        edges = np.unique(np.append(edges, b.n))
        for a, c in itertools.pairwise(edges):
            if c > a:
                piece = replace(
                    b,
                    data=b.data[a:c],
                    seq=b.seq[a:c],
                    host_time_s=t[a:c],
                    position_m=b.position_m[a:c],
                )
                pieces.append((float(t[c - 1]), 1, piece))
    pieces.extend((f.host_time_s, 0, f) for f in gps)
    pieces.sort(key=lambda x: (x[0], x[1]))
    return [p[2] for p in pieces]


# --------------------------------------------------------------------------- detectors


@dataclass
class ScanOutput:
    """What one detector made of one lane."""

    track_x_m: np.ndarray
    track_p: np.ndarray
    alarms: list[dict[str, Any]]
    not_covered_m: list[tuple[float, float]]
    model: dict[str, Any] = field(default_factory=dict)


class DetectorUnavailable(RuntimeError):
    """The detector cannot run here (no shipped model, missing module); the reason is kept."""


def make_scorer(cfg: Any, name: str) -> Any:
    """The pipeline scorer for a detector name; never the interim stand-in."""
    if name not in DETECTORS:
        raise SettingsError(
            f"evaluate.detectors: unknown detector '{name}'; known: {', '.join(DETECTORS)}"
        )
    sensors, what = DETECTORS[name]
    kind, ref = what.split(":")
    try:
        from detect.model.scorers import ClassifierScorer, Scorer
        from detect.windows import window_spec_from_cfg
    except ImportError as exc:
        raise DetectorUnavailable(f"pipeline not importable: {exc}") from exc
    if kind == "model":
        try:
            from detect.model.classifier import Classifier

            return ClassifierScorer(Classifier.load(ref, cfg))
        except Exception as exc:
            raise DetectorUnavailable(
                f"model '{ref}' not loadable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from exc
    try:
        from detect.model import baselines
    except ImportError as exc:
        raise DetectorUnavailable(f"baselines not importable: {exc}") from exc
    spec = window_spec_from_cfg(cfg)
    impl = (
        baselines.GprEnergyCfar(spec) if ref == "gpr_energy_cfar" else baselines.EmiThreshold(spec)
    )

    class BaselineScorer(Scorer):
        calibrated = False

        def __init__(self) -> None:
            self.spec = spec
            self.sensors = sensors
            self.impl = impl

        def predict(self, gpr: np.ndarray | None, emi: np.ndarray | None) -> Any:
            return self.impl.predict(gpr, emi)

        def info(self) -> dict[str, Any]:
            return {
                "name": ref,
                "kind": "classical baseline",
                "calibrated": False,
                "sensors": list(sensors),
            }

    return BaselineScorer()


def scan_lane(cfg: Any, lane: LaneData, name: str, scorer: Any) -> ScanOutput:
    """Run the scan pipeline with one detector over one lane."""
    import contextlib
    import io

    from detect.engine.build import build_pipeline
    from detect.sinks.display import PlainDisplay

    sensors = DETECTORS[name][0]
    have = {b.header.sensor for b in lane.blocks}
    if not set(sensors) <= have:
        raise DetectorUnavailable(f"lane {lane.lane_id} has no {'/'.join(set(sensors) - have)}")
    display = PlainDisplay(period_s=math.inf, stream=io.StringIO())
    if lane.offsets_m is not None:
        from omegaconf import OmegaConf, open_dict

        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        with open_dict(cfg):
            for sensor, off in lane.offsets_m.items():
                OmegaConf.update(cfg, f"align.offsets_m.{sensor}", off, force_add=True)
    with contextlib.redirect_stdout(io.StringIO()):
        pipe = build_pipeline(cfg, sensors, display, None, scorer=scorer)
        for item in stream_items(lane.blocks, lane.gps, sensors):
            pipe.handle([item])
        pipe.finish()
    # the pipeline's own numbers, not alarms.json's (rounded for people to read: 3-digit
    # scores would tie windows and move AUC and calibration)
    not_cov = [
        (float(s["start_m"]), float(s["end_m"]))
        for s in pipe.coverage_segments()
        if s.get("status") == "not_covered"
    ]
    return ScanOutput(
        np.frombuffer(pipe.track_pos, dtype=np.float64).copy(),
        np.frombuffer(pipe.track_p, dtype=np.float64).copy(),
        [a.to_dict() for a in pipe.alarms if a.tier == "alarm"],
        not_cov,
        dict(pipe.scorer.info()),
    )


# --------------------------------------------------------------------------- scoring


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def fit_platt_on_tracks(
    scans: Sequence[ScanOutput], lanes: Sequence[LaneData], rule: M.HaloRule, guard_m: float
) -> tuple[float, float] | None:
    """Platt (a, b) on logit(p) of the calibration lanes' labelled track windows."""
    from detect.model.calibration import fit_platt

    zs, ys = [], []
    for sc, ln in zip(scans, lanes, strict=True):
        lane = to_metric_lane(ln, sc, [], [])
        keep, y = M.track_labels(lane, rule, guard_m)
        p = sc.track_p[keep]
        ok = np.isfinite(p)
        zs.append(_logit(p[ok]))
        ys.append(y[ok])
    if not zs:
        return None
    z, y = np.concatenate(zs), np.concatenate(ys)
    if y.all() or not y.any():
        return None
    a, b = fit_platt(z, y.astype(np.float64))
    return float(a), float(b)


def apply_platt(scan: ScanOutput, ab: tuple[float, float]) -> ScanOutput:
    a, b = ab
    p = 1.0 / (1.0 + np.exp(-(a * _logit(scan.track_p) + b)))
    p[~np.isfinite(scan.track_p)] = np.nan
    alarms = []
    for d in scan.alarms:
        q = float(1.0 / (1.0 + math.exp(-(a * float(_logit(np.array([d["confidence"]]))[0]) + b))))
        alarms.append({**d, "confidence": q})
    return replace(scan, track_p=p, alarms=alarms)


def to_metric_lane(
    lane: LaneData,
    scan: ScanOutput,
    alarm_x: Floats,
    alarm_conf: Floats,
    alarm_depth: Floats | None = None,
) -> M.Lane:
    targets = [M.Target.from_dict(d, where=f"lane {lane.lane_id}") for d in lane.truth]
    return M.Lane(
        lane_id=lane.lane_id,
        length_m=lane.length_m,
        width_m=lane.width_m,
        targets=targets,
        alarm_x_m=np.asarray(alarm_x, dtype=np.float64),
        alarm_conf=np.asarray(alarm_conf, dtype=np.float64),
        alarm_depth_m=None if alarm_depth is None else np.asarray(alarm_depth, dtype=np.float64),
        track_x_m=scan.track_x_m,
        track_p=scan.track_p,
        not_covered_m=list(scan.not_covered_m),
        soil=lane.soil,
        start_m=lane.start_m,
    )


def alarms_at(
    scan: ScanOutput,
    threshold: float,
    hysteresis: float,
    nms_radius_m: float,
    split_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and confidences the pipeline's alarm logic declares at ``threshold``."""
    from detect.alarms import AlarmConfig, ScorePoint, pick_alarms

    p = scan.track_p
    ok = np.isfinite(p)
    if not ok.any() or np.nanmax(p) < threshold:
        return np.empty(0), np.empty(0)
    hyst = min(hysteresis, 0.5 * threshold)
    cfg = AlarmConfig(threshold=threshold, hysteresis=hyst, nms_radius_m=nms_radius_m,
                      split_fraction=split_fraction, suspect_floor=None)  # fmt: skip
    pts = [
        ScorePoint(position_m=float(x), p_mine=float(v))
        for x, v in zip(scan.track_x_m[ok], p[ok], strict=True)
    ]
    al = pick_alarms(pts, cfg)
    return (
        np.array([a.position_m for a in al], dtype=np.float64),
        np.array([a.confidence for a in al], dtype=np.float64),
    )


def sweep(
    lanes: Sequence[LaneData],
    scans: Sequence[ScanOutput],
    rule: M.HaloRule,
    thresholds: Floats,
    hysteresis: float,
    nms_radius_m: float,
    confidence: float,
    split_fraction: float = 0.5,
) -> tuple[dict[str, Any], list[list[M.Lane]]]:
    """FROC over ``thresholds`` (descending) with alarms re-declared at each one."""
    per_thr: list[list[M.Lane]] = []
    ks, fas = [], []
    n = 0
    for t in thresholds:
        mls = []
        for ln, sc in zip(lanes, scans, strict=True):
            x, c = alarms_at(sc, float(t), hysteresis, nms_radius_m, split_fraction)
            mls.append(to_metric_lane(ln, sc, x, c))
        k, n, fa = M.counts_at(mls, rule, 0.0)
        ks.append(k)
        fas.append(fa)
        per_thr.append(mls)
    area = M.area_m2(per_thr[0]) if per_thr else 0.0
    length = M.length_m(per_thr[0]) if per_thr else 0.0
    return M.curve_from_counts(thresholds, ks, n, fas, area, length, confidence), per_thr


def threshold_grid(n_points: int) -> np.ndarray:
    """Descending thresholds in (0, 1), denser near both ends (logit-spaced)."""
    z = np.linspace(-6.0, 6.0, n_points)
    return np.sort(1.0 / (1.0 + np.exp(-z)))[::-1]


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


@dataclass
class EvalSettings:
    rule: M.HaloRule
    confidence: float
    target_pd: float
    guard_m: float
    ece_bins: int
    n_thresholds: int
    hysteresis: float
    nms_radius_m: float
    alarm_threshold: float
    depth_bins_m: tuple[float, ...]
    metal_bins_g: tuple[float, ...]
    split_fraction: float = 0.5


def settings_from_cfg(cfg: Any) -> EvalSettings:
    e = cfg.evaluate
    if bool(e.cross_track):
        raise SettingsError(
            "evaluate.cross_track=true needs alarms with a cross-track position; the pipeline "
            "reports along-track positions only"
        )
    return EvalSettings(
        rule=M.HaloRule(
            halo_m=float(e.halo_m),
            from_edge=str(e.halo_from) == "edge",
            cross_track=bool(e.cross_track),
        ),
        confidence=float(e.confidence),
        target_pd=float(e.target_pd),
        guard_m=float(e.roc_guard_m),
        ece_bins=int(e.ece_bins),
        n_thresholds=int(e.n_thresholds),
        hysteresis=float(cfg.alarm.hysteresis),
        nms_radius_m=float(cfg.alarm.nms_radius_m),
        alarm_threshold=float(cfg.alarm.threshold),
        depth_bins_m=(*(float(v) for v in e.depth_bins_m), math.inf),
        metal_bins_g=(*(float(v) for v in e.metal_bins_g), math.inf),
        split_fraction=float(cfg.alarm.split_fraction),
    )


def evaluate_detector(
    s: EvalSettings,
    test: Sequence[LaneData],
    test_scans: Sequence[ScanOutput],
    cal: Sequence[LaneData],
    cal_scans: Sequence[ScanOutput],
) -> dict[str, Any]:
    """All figures of one detector: FROC, operating point (from calibration lanes), scores at
    the operating point and at the configured alarm threshold, window ROC / calibration."""
    thr = np.unique(np.append(threshold_grid(s.n_thresholds), s.alarm_threshold))[::-1]

    def froc(
        lanes: Sequence[LaneData], scans: Sequence[ScanOutput]
    ) -> tuple[dict[str, Any], list[list[M.Lane]]]:
        return sweep(lanes, scans, s.rule, thr, s.hysteresis, s.nms_radius_m, s.confidence,
                     s.split_fraction)  # fmt: skip

    curve, per_thr = froc(test, test_scans)
    if cal:
        cal_curve, _ = froc(cal, cal_scans)
        op = M.operating_point(cal_curve, s.target_pd)
        op["chosen_on"] = "calibration lanes"
    else:
        op = M.operating_point(curve, s.target_pd)
        op["chosen_on"] = "test lanes (in-sample: no calibration lanes)"
    if not op["n"]:
        op["threshold"] = s.alarm_threshold
        op["chosen_on"] = "alarm.threshold (no mines to choose an operating point on)"
    op["calibration_pd"] = op.pop("pd")
    op["calibration_pd_ci"] = op.pop("pd_ci")
    op["calibration_far_m2"] = op.pop("far_m2")
    op.pop("far_m", None)
    op["min_mines_to_show_target"] = M.min_trials_for_lower_bound(s.target_pd, s.confidence)
    i_op = int(np.argmin(np.abs(thr - op["threshold"])))
    scored_kwargs: dict[str, Any] = {
        "confidence": s.confidence,
        "depth_bins_m": s.depth_bins_m,
        "metal_bins_g": s.metal_bins_g,
        "guard_m": s.guard_m,
        "ece_bins": s.ece_bins,
    }
    at_op = M.score_lanes(per_thr[i_op], s.rule, float(thr[i_op]), **scored_kwargs)
    nominal_lanes = []
    for ln, sc in zip(test, test_scans, strict=True):
        x, c = alarms_at(sc, s.alarm_threshold, s.hysteresis, s.nms_radius_m, s.split_fraction)
        depth = _depth_near(sc, x)
        nominal_lanes.append(to_metric_lane(ln, sc, x, c, depth))
    at_nominal = M.score_lanes(nominal_lanes, s.rule, s.alarm_threshold, **scored_kwargs)
    windows = at_op.pop("windows")
    at_nominal.pop("windows")
    return {
        "froc": {
            k: curve[k]
            for k in (
                "threshold",
                "k",
                "n",
                "pd",
                "pd_lo",
                "pd_hi",
                "n_false_alarms",
                "far_m2",
                "far_m",
            )
        },
        "operating_point": op,
        "at_operating_point": at_op,
        "at_alarm_threshold": at_nominal,
        "windows": windows,
    }


def _depth_near(scan: ScanOutput, x: np.ndarray) -> np.ndarray:
    """Depth of the pipeline's own alarm nearest each re-declared alarm (NaN if none near)."""
    out = np.full(x.size, np.nan)
    if not scan.alarms or x.size == 0:
        return out
    ax = np.array([float(a["position_m"]) for a in scan.alarms])
    ad = np.array(
        [np.nan if a.get("depth_m") is None else float(a["depth_m"]) for a in scan.alarms]
    )
    j = np.argmin(np.abs(x[:, None] - ax[None, :]), axis=1)
    near = np.abs(ax[j] - x) <= 0.05
    out[near] = ad[j[near]]
    return out


# --------------------------------------------------------------------------- task


def lanes_from_cfg(cfg: Any) -> tuple[list[LaneData], list[LaneData], dict[str, Any]]:
    from detect.config import to_dict

    e = cfg.evaluate
    if e.lanes:
        lanes = recorded_lanes(
            Path(str(e.lanes)),
            e.truth_csv,
            e.swept_width_m,
            cfg.input.get("trace_spacing_m"),
            cfg.input.get("walking_speed_m_s"),
        )
        n_cal = round(len(lanes) * float(e.calibration_fraction))
        if n_cal and n_cal == len(lanes):
            n_cal = len(lanes) - 1
        src: dict[str, Any] = {"kind": "recorded", "path": str(e.lanes)}
        return lanes[n_cal:], lanes[:n_cal], src
    sim = to_dict(cfg.sim) if cfg.get("sim") is not None else {}
    soils = list(e.soils) if e.soils else None
    try:
        test = simulated_lanes(sim, int(e.seed), int(e.n_lanes), soils)
        cal = simulated_lanes(sim, int(e.calibration_seed), int(e.calibration_lanes), soils)
    except ImportError as exc:
        raise ModelError(f"simulator not available ({exc}); pass evaluate.lanes=DIR") from exc
    except ValueError as exc:
        raise SettingsError(str(exc).splitlines()[0]) from exc
    if e.swept_width_m:
        for ln in [*test, *cal]:
            ln.width_m = float(e.swept_width_m)
    src = {
        "kind": "simulated",
        "seed": int(e.seed),
        "n_lanes": int(e.n_lanes),
        "calibration_seed": int(e.calibration_seed),
        "calibration_lanes": int(e.calibration_lanes),
        "soils": soils,
    }
    return test, cal, src


def run_evaluation(
    cfg: Any,
    test: Sequence[LaneData],
    cal: Sequence[LaneData],
    detectors: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Scan every lane with every detector and score; returns the metrics document."""
    s = settings_from_cfg(cfg)
    say = progress or (lambda _m: None)
    out: dict[str, Any] = {"detectors": {}, "unavailable": {}, "examples": {}}
    for name in detectors:
        t0 = time.perf_counter()
        try:
            scorer = make_scorer(cfg, name)
            test_scans = [scan_lane(cfg, ln, name, scorer) for ln in test]
            cal_scans = [scan_lane(cfg, ln, name, scorer) for ln in cal]
        except DetectorUnavailable as exc:
            out["unavailable"][name] = str(exc)
            say(f"{name}: UNAVAILABLE ({exc})")
            continue
        model = test_scans[0].model if test_scans else {}
        if DETECTORS[name][1].startswith("baseline:") and cal:
            ab = fit_platt_on_tracks(cal_scans, cal, s.rule, s.guard_m)
            if ab is not None:
                test_scans = [apply_platt(sc, ab) for sc in test_scans]
                cal_scans = [apply_platt(sc, ab) for sc in cal_scans]
                model = {**model, "platt_on_calibration_lanes": list(ab), "calibrated": True}
        res = evaluate_detector(s, test, test_scans, cal, cal_scans)
        res["model"] = model
        res["wall_s"] = time.perf_counter() - t0
        out["detectors"][name] = res
        if test_scans:
            sc = test_scans[0]
            out["examples"][name] = {"track_x_m": sc.track_x_m, "track_p": sc.track_p}
        op = res["at_operating_point"]
        say(
            f"{name}: Pd {op['pd']['k']}/{op['pd']['n']} FAR/m2 {op['far_m2']} "
            f"AUC {res['windows'].get('auc')} ({res['wall_s']:.1f} s)"
        )
    return out


def lane_summary(
    test: Sequence[LaneData], cal: Sequence[LaneData], src: Mapping[str, Any]
) -> dict[str, Any]:
    def stats(lanes: Iterable[LaneData]) -> dict[str, Any]:
        lanes = list(lanes)
        truth = [d for ln in lanes for d in ln.truth]
        by_class: dict[str, int] = {}
        for d in truth:
            by_class[str(d["class"])] = by_class.get(str(d["class"]), 0) + 1
        soils: dict[str, int] = {}
        for ln in lanes:
            soils[ln.soil] = soils.get(ln.soil, 0) + 1
        return {
            "n_lanes": len(lanes),
            "length_m": float(sum(ln.length_m for ln in lanes)),
            "area_m2": float(sum(ln.length_m * ln.width_m for ln in lanes)),
            "targets_by_class": by_class,
            "soils": soils,
        }

    return {"source": dict(src), "test": stats(test), "calibration": stats(cal)}


def scoring_summary(s: EvalSettings) -> dict[str, Any]:
    return {
        "halo_m": s.rule.halo_m,
        "halo_from": "edge" if s.rule.from_edge else "centre",
        "cross_track": s.rule.cross_track,
        "one_alarm_one_target": True,
        "extra_alarms_on_a_detected_target": "not false alarms (CWA 14747 practice)",
        "alarms_on_clutter": "false alarms",
        "not_covered_threats": "missed",
        "pd_interval": f"Clopper-Pearson {s.confidence:.0%} two-sided",
        "target_pd_lower_bound": s.target_pd,
        "roc_guard_m": s.guard_m,
        "ece_bins": s.ece_bins,
        "alarm_threshold": s.alarm_threshold,
        "hysteresis": s.hysteresis,
        "nms_radius_m": s.nms_radius_m,
        "split_fraction": s.split_fraction,
    }


def fmt_pd(pd: Mapping[str, Any]) -> str:
    if not pd.get("n"):
        return "n/a (0 mines)"
    lo, hi = pd["ci"]
    return f"{pd['k']}/{pd['n']} = {pd['p']:.3f} [{lo:.3f}, {hi:.3f}]"


def summary_table(doc: Mapping[str, Any]) -> list[str]:
    """One line per detector: Pd [CI], FAR/m², AUC, ECE at the operating point."""
    head = (
        f"{'detector':<16} {'thr':>6} {'Pd [95% CI]':<32} {'FAR/m2':>8} {'AUC':>6} "
        f"{'ECE':>6} {'clutter rej':>11}"
    )
    lines = [head, "-" * len(head)]
    for name, r in doc["detectors"].items():
        op = r["at_operating_point"]
        w = r["windows"]
        far = op.get("far_m2")
        auc = w.get("auc")
        ece = w.get("ece")
        cr = op["clutter_rejection"]["metal"]
        cr_txt = f"{cr['k']}/{cr['n']}" if cr["n"] else "n/a"
        lines.append(
            f"{name:<16} {r['operating_point']['threshold']:>6.3f} {fmt_pd(op['pd']):<32} "
            f"{'n/a' if far is None else f'{far:.3f}':>8} "
            f"{'n/a' if auc is None or not math.isfinite(auc) else f'{auc:.3f}':>6} "
            f"{'n/a' if ece is None or not math.isfinite(ece) else f'{ece:.3f}':>6} "
            f"{cr_txt:>11}"
        )
    for name, why in doc.get("unavailable", {}).items():
        lines.append(f"{name:<16} UNAVAILABLE: {why}")
    return lines
