"""``detect train`` end to end: lanes -> windows -> fit -> calibrate -> evaluate -> models/<name>.

Splits are by lane and by seed range, never by window (neighbouring windows overlap):
train lanes (augmented), validation lanes (early stopping), calibration lanes (Platt fit),
and the fixed test set of :func:`held_out_recipes` (other seeds, plus a soil never trained on).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detect.config import ConfigError, to_dict
from detect.errors import SettingsError
from detect.model.card import preprocessing_from_cfg
from detect.model.dataset import LaneRecipe, WindowSet, build_windows, recipes
from detect.model.nets import CalibratedNet, NetConfig, ShippedNet
from detect.model.train import (
    TrainSettings,
    calibrate,
    fit,
    init_distributed_from_env,
    leave_process_group,
    resolve_device,
    world,
)
from detect.windows import WindowSpec, window_spec_from_cfg

log = logging.getLogger(__name__)

#: model variant -> (use_gpr, use_emi)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "fused": (True, True),
    "gpr_only": (True, False),
    "emi_only": (False, True),
}
TEST_SEED = 900_000
VAL_SEED = 500_000
CAL_SEED = 600_000
TEST_SOILS_HELD_OUT = ("moist_sand",)


@dataclass(frozen=True)
class DataPlan:
    train: list[LaneRecipe]
    val: list[LaneRecipe]
    cal: list[LaneRecipe]


#: Battle-area lanes: AP mines among dense metal clutter, closer together than the default.
CLUTTER_LANE: dict[str, Any] = {
    "min_spacing_m": 0.3,
    "n_targets_min": 10,
    "n_targets_max": 16,
    "mix": {
        **dict.fromkeys(("pmn", "pmn2", "pma2", "pma3", "vs50", "type72"), 1.0),
        **dict.fromkeys(("shrapnel", "nail", "wire", "can", "bottle_cap", "casing"), 2.0),
    },
}


def _sim_dict(cfg: Any) -> dict[str, Any]:
    """The ``sim`` config section, restricted to the simulator's lane settings."""
    node = cfg.get("sim")
    if node is None:
        return {}
    plain = to_dict(node) if not isinstance(node, dict) else dict(node)
    try:
        from dataclasses import fields

        from detect.sim.settings import SimSettings

        known = {f.name for f in fields(SimSettings)}
    except ImportError:  # pragma: no cover - simulator absent
        return plain
    return {k: v for k, v in plain.items() if k in known}


def offsets_from_cfg(cfg: Any) -> dict[str, float]:
    """Per-sensor offsets for simulated training lanes: the simulator's head geometry.

    Simulated lanes are aligned with the geometry they were simulated with, whatever the rig
    config says; a different ``align.offsets_m`` is reported, since the live pipeline would
    then place the EMI data somewhere else than the simulator put it.
    """
    sim = _sim_dict(cfg)
    head = dict(sim.get("head", {}) or {})
    offsets = {"gpr": 0.0, "emi": float(head.get("emi_offset_m", _default_emi_offset()))}
    align = cfg.get("align") if hasattr(cfg, "get") else None
    if align is not None and align.get("offsets_m") is not None:
        for k, v in dict(align.get("offsets_m")).items():
            if k in offsets and abs(float(v) - offsets[k]) > 1e-9:
                log.warning(
                    "align.offsets_m.%s = %s differs from the simulator's head geometry (%s); "
                    "training lanes use the simulator's",
                    k, v, offsets[k],
                )  # fmt: skip
    return offsets


def _default_emi_offset() -> float:
    try:
        from detect.sim.settings import HeadSettings

        return float(HeadSettings().emi_offset_m)
    except ImportError:  # pragma: no cover - simulator absent
        return 0.0


def base_recipe(cfg: Any) -> LaneRecipe:
    t = cfg.train
    dsp = to_dict(cfg.dsp) if cfg.get("dsp") is not None else {}
    return LaneRecipe(
        seed=0,
        lane_id=0,
        sim=_sim_dict(cfg),
        dsp={"gpr": dsp.get("gpr", []) or [], "emi": dsp.get("emi", []) or []},
        offsets_m=offsets_from_cfg(cfg),
        spec=window_spec_from_cfg(cfg),
        stride=int(t.get("stride", 1)),
        bg_keep=float(t.get("bg_keep", 1.0)),
        soils=tuple(t.get("soils") or ()),
        wavelet_jitter=float(t.get("wavelet_jitter", 0.0)),
        stretch_jitter=float(t.get("stretch_jitter", 0.0)),
        radar_jitter=float(t.get("radar_jitter", 0.0)),
        domain_jitter=float(t.get("domain_jitter", 0.0)),
        label_from_edge=str(t.get("label_halo_from", "centre")) == "edge",
        label_guard_m=None if t.get("label_guard_m") is None else float(t.label_guard_m),
    )


def data_plan(cfg: Any) -> DataPlan:
    t = cfg.train
    base = base_recipe(cfg)
    seed = int(t.get("seed", 0))
    share = float(t.get("clutter_share", 0.0))
    plain = {"bg_keep": 1.0, "wavelet_jitter": 0.0, "stretch_jitter": 0.0, "domain_jitter": 0.0}

    def split(seed_: int, n: int, **kw: Any) -> list[LaneRecipe]:
        n_clutter = round(n * share)
        out = recipes(base, [seed_] * (n - n_clutter), first_lane=0, **kw)
        return out + recipes(
            base, [seed_ + 50_000] * n_clutter, first_lane=0, sim=_clutter_sim(base.sim), **kw
        )

    return DataPlan(
        split(seed, int(t.lanes)),
        split(VAL_SEED + seed, int(t.val_lanes), **plain),
        split(CAL_SEED + seed, int(t.cal_lanes), **plain),
    )


def _clutter_sim(sim: Mapping[str, Any]) -> dict[str, Any]:
    return {**dict(sim), **CLUTTER_LANE}


def held_out_recipes(cfg: Any, n_lanes: int) -> list[LaneRecipe]:
    """The fixed held-out test set, all seeds unseen in training.

    Half the lanes in the training soils, a quarter in a soil never trained on, a quarter
    battle-area lanes (mines among dense metal clutter) over all soils.
    """
    base = base_recipe(cfg)
    from detect.sim.soil import SOILS

    trained = set(base.soils) if base.soils else set(SOILS)
    unseen = tuple(s for s in TEST_SOILS_HELD_OUT if s in SOILS and s not in trained)
    plain = {"bg_keep": 1.0, "wavelet_jitter": 0.0, "stretch_jitter": 0.0, "domain_jitter": 0.0}
    n_unseen = n_lanes // 4 if unseen else 0
    n_clutter = n_lanes // 4
    n_plain = n_lanes - n_unseen - n_clutter
    out = recipes(base, [TEST_SEED] * n_plain, first_lane=0, **plain)
    out += recipes(base, [TEST_SEED + 1] * n_unseen, first_lane=n_plain, soils=unseen, **plain)
    out += recipes(
        base,
        [TEST_SEED + 2] * n_clutter,
        first_lane=n_plain + n_unseen,
        sim=_clutter_sim(base.sim),
        soils=tuple(SOILS),
        **plain,
    )
    return out


def _windows(name: str, rs: list[LaneRecipe], workers: int, cache: Path | None) -> WindowSet:
    key = f"{name}-{hashlib.sha1(repr(rs).encode()).hexdigest()[:16]}.npz"
    if cache is not None and (cache / key).is_file():
        log.info("%s windows from cache %s", name, cache / key)
        return WindowSet.load(cache / key)
    t0 = time.monotonic()
    ws = build_windows(rs, workers=workers)
    log.info(
        "%s: %d lanes -> %d windows (%d mine) in %.1fs",
        name, len(rs), len(ws), int(ws.is_mine.sum()), time.monotonic() - t0,
    )  # fmt: skip
    if cache is not None and world()[0] == 0:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".{key}.{os.getpid()}.npz"
        ws.save(tmp)
        os.replace(tmp, cache / key)
    return ws


def _session_set(cfg: Any, entries: list[str]) -> WindowSet:
    """Labelled recordings added to a window set (lane ids: ``session_lane_id``)."""
    from detect.model.dataset import session_lane_id, session_paths, session_windows

    base = base_recipe(cfg)
    try:
        paths = session_paths(entries)
        parts = [
            session_windows(
                p,
                base.dsp,
                base.spec,
                base.offsets_m,
                base.stride,
                session_lane_id(i),
                base.label_from_edge,
                base.label_guard_m,
            )
            for i, p in enumerate(paths)
        ]
    except (OSError, ValueError) as exc:
        raise SettingsError(str(exc).splitlines()[0]) from exc
    ws = WindowSet.concat(parts)
    log.info("sessions: %d files -> %d windows (%d mine)", len(paths), len(ws), ws.is_mine.sum())
    return ws


def net_config(cfg: Any, variant: str, spec: WindowSpec) -> NetConfig:
    if variant not in VARIANTS:
        raise SettingsError(f"unknown model variant '{variant}'; available: {', '.join(VARIANTS)}")
    use_gpr, use_emi = VARIANTS[variant]
    m = cfg.model
    return NetConfig(
        n_pos=spec.n_pos,
        gpr_samples=spec.gpr_samples,
        emi_channels=spec.emi_channels,
        use_gpr=use_gpr,
        use_emi=use_emi,
        width=int(m.get("width", 16)),
        dropout=float(m.get("dropout", 0.1)),
        gpr_mask=bool(m.get("gpr_mask", True)),
    )


def _scorable(ws: WindowSet, net_cfg: NetConfig) -> WindowSet:
    from detect.model.dataset import sensors_present

    have = sensors_present(ws)
    keep = (have["gpr"] & net_cfg.use_gpr) | (have["emi"] & net_cfg.use_emi)
    return ws if keep.all() else ws.subset(np.flatnonzero(keep))


def train_variant(
    cfg: Any,
    variant: str,
    train: WindowSet,
    val: WindowSet,
    cal: WindowSet,
    out_dir: Path | None,
    resume: Path | None = None,
) -> tuple[CalibratedNet, dict[str, Any]]:
    spec = window_spec_from_cfg(cfg)
    s = TrainSettings.from_mapping(to_dict(cfg.train))
    net_cfg = net_config(cfg, variant, spec)
    # windows at a lane's end that none of this model's sensors can score (the EMI has no
    # validity mask) teach nothing: left out
    train, val, cal = (_scorable(ws, net_cfg) for ws in (train, val, cal))
    t0 = time.monotonic()
    net, hist = fit(net_cfg, train, val, s, out_dir, resume)
    model = CalibratedNet(net)
    cal_report = calibrate(model, cal)
    info = {
        "epochs_run": len(hist.rows),
        "best_epoch": hist.best_epoch,
        "stopped_early": hist.stopped_early,
        "train_seconds": time.monotonic() - t0,
        "device": str(resolve_device(s.device)),
        "history": hist.rows,
        "calibration": cal_report,
    }
    return model, info


def _envelope(cfg: Any) -> dict[str, Any] | None:
    """The radars the weights were trained on (None: the nominal simulated radar only)."""
    from detect.model.envelope import RadarEnvelope

    if float(cfg.train.get("radar_jitter", 0.0)) <= 0:
        return None
    return RadarEnvelope().to_dict()


def card_for(
    cfg: Any, variant: str, info: Mapping[str, Any], plan: DataPlan, n: Mapping[str, int]
) -> dict[str, Any]:
    t = cfg.train
    return {
        "name": variant,
        "summary": (
            f"{variant} landmine classifier: windows of {window_spec_from_cfg(cfg).length_m} m "
            "along the track; outputs calibrated P(mine), class probabilities, depth and "
            "per-sensor scores."
        ),
        "classes": list(__import__("detect.blocks", fromlist=["CLASSES"]).CLASSES),
        "preprocessing": preprocessing_from_cfg(cfg),
        "envelope": _envelope(cfg),
        "offsets_m": dict(plan.train[0].offsets_m) if plan.train else {},
        "data": {
            "source": "simulated lanes (detect.sim), generated on the fly"
            + (", plus labelled recordings (sessions)" if t.get("sessions") else "")
            + (", calibrated with labelled recordings too" if t.get("cal_sessions") else ""),
            "sessions": [str(x) for x in (t.get("sessions") or [])],
            "cal_sessions": [str(x) for x in (t.get("cal_sessions") or [])],
            "val_sessions": [str(x) for x in (t.get("val_sessions") or [])],
            "train_lanes": len(plan.train),
            "val_lanes": len(plan.val),
            "cal_lanes": len(plan.cal),
            "train_windows": n["train"],
            "val_windows": n["val"],
            "cal_windows": n["cal"],
            "train_seed": int(t.get("seed", 0)),
            "soils": list(t.get("soils") or []) or "all simulator soils",
            "augmentation": {
                k: t.get(k)
                for k in (
                    "gain_db",
                    "time_shift_samples",
                    "noise",
                    "modality_dropout",
                    "wavelet_jitter",
                    "stretch_jitter",
                    "radar_jitter",
                    "domain_jitter",
                    "edge_drop",
                    "mirror",
                    "session_repeat",
                    "bg_keep",
                )
            },
            "sim": _sim_dict(cfg),
        },
        "training": {k: v for k, v in info.items() if k not in ("calibration", "history")},
        "train_config": to_dict(cfg.train),
        "model_config": to_dict(cfg.model),
        "calibration": info["calibration"],
        "known_limits": [
            (
                "Trained on simulated lanes and labelled recordings (data.sessions); "
                if t.get("sessions")
                else "Trained on simulated lanes only; "
            )
            + "not yet validated on labelled field recordings.",
            "Calibration holds for the simulated target mix and prevalence; a field with a "
            "different mine density shifts P(mine) and needs recalibration on local data.",
            "Along-track only (one GPR channel, one EMI coil); no cross-track localisation.",
            "Trained for the default DSP chain and window grid; the card refuses any other.",
            "Scores radars inside its envelope (see 'envelope'): measured from simulated "
            "Ricker-source radars, not from real antennas; a real antenna's spectrum, ringing "
            "and coupling differ, so a radar inside the envelope is scored but its figures "
            "are not measured.",
            "Window-level P(mine) >= 0.5 misses a share of mine windows (see pd_at_0.5): set "
            "the alarm threshold from the lane-level Pd / FAR trade-off (detect evaluate), "
            "not at 0.5.",
            "With one sensor missing (FAULT) the fused model falls back to the other sensor's "
            "evidence and is less sure (lower AUC, Pd): see the '(EMI missing)' and "
            "'(GPR missing)' rows; ground covered that way needs a second pass.",
        ],
    }


def _models_root(cfg: Any, out_dir: Path) -> Path:
    """``train.models_dir``, else ``<out_dir>/models``: a training run never overwrites the
    shipped models unless asked to (scripts/train_models.py asks)."""
    t = cfg.train
    return Path(str(t.models_dir)) if t.get("models_dir") else out_dir / "models"


def _member_cfg(cfg: Any, i: int) -> Any:
    """Member ``i`` of an ensemble: the run with ``train.seed + i`` (member 0 is the run itself)."""
    if i == 0:
        return cfg
    out = copy.deepcopy(cfg)
    out.train.seed = int(cfg.train.get("seed", 0)) + i
    return out


def _member_windows(
    cfg: Any, plan: DataPlan, cache: Path, sessions: Mapping[str, WindowSet]
) -> tuple[WindowSet, WindowSet, WindowSet]:
    """Train, early-stopping and calibration windows: the plan's lanes plus the recordings."""
    t = cfg.train
    workers = int(t.get("workers", 0))
    train = _windows("train", plan.train, workers, cache)
    val = _windows("val", plan.val, workers, cache)
    cal = _windows("cal", plan.cal, workers, cache)
    if "sessions" in sessions:
        train = WindowSet.concat([train] + [sessions["sessions"]] * int(t.get("session_repeat", 1)))
    if "cal_sessions" in sessions:
        cal = WindowSet.concat([cal, sessions["cal_sessions"]])
    if "val_sessions" in sessions:
        val = WindowSet.concat([val, sessions["val_sessions"]])
    return train, val, cal


def _ship(
    cfg: Any, variant: str, model: ShippedNet, card: dict[str, Any], out_dir: Path, run_dir: Path
) -> None:
    """Export (``train.export``) and write ``<models>/<variant>``."""
    from detect.model.classifier import save_model

    if cfg.train.get("export"):
        from detect.model.export import export_all

        card["export_check"] = export_all(model, run_dir / "export")
        log.info("exported %s: %s", variant, card["export_check"])
    target = _models_root(cfg, out_dir) / variant
    written = save_model(target, model, card)
    log.info("wrote %s (sha256 %s)", target, written["weights"]["sha256"][:12])
    runs = card["training"].get("members", [card["training"]])
    best = ", ".join(str(r["best_epoch"]) for r in runs)
    seconds = sum(float(r["train_seconds"]) for r in runs)
    print(f"{variant}: {target}  best epoch {best}  ({seconds:.0f}s)")


def run_training(cfg: Any) -> int:
    """Train the variants in ``train.variants`` (default: ``model.name``) and write them.

    With ``train.members`` > 1 each variant is trained that many times (member ``i`` as the
    run with ``train.seed + i``; each written under ``<out_dir>/<variant>/member<i>/model``)
    and shipped as their ensemble.
    """
    from detect.model.classifier import save_model

    t = cfg.train
    try:
        device = resolve_device(str(t.get("device", "cpu")))
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    distributed = init_distributed_from_env(device)
    rank, _ = world()
    threads = int(t.get("threads", 0))
    if threads > 0:
        torch.set_num_threads(threads)
    out_dir = (
        Path(str(t.out_dir))
        if t.get("out_dir")
        else Path("runs") / time.strftime("train-%Y%m%d-%H%M%S", time.gmtime())
    )
    if distributed:  # every rank uses rank 0's run directory
        import torch.distributed as dist

        box = [str(out_dir)]
        dist.broadcast_object_list(box, src=0)
        out_dir = Path(box[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(str(t.cache_dir)) if t.get("cache_dir") else out_dir / "data"
    variants = list(t.get("variants") or [cfg.model.name])
    try:
        plan = data_plan(cfg)
    except ConfigError as exc:
        raise SettingsError(str(exc)) from exc
    for key in ("sessions", "cal_sessions", "val_sessions"):
        if not t.get(key):
            continue
        from detect.model.dataset import session_paths

        try:
            session_paths(list(t[key]))
        except OSError as exc:
            raise SettingsError(str(exc)) from exc
    members = int(t.get("members", 1))
    sessions = {
        key: _session_set(cfg, list(t[key]))
        for key in ("sessions", "cal_sessions", "val_sessions")
        if t.get(key)
    }
    for i in range(members):
        cfg_i = _member_cfg(cfg, i)
        plan_i = plan if i == 0 else data_plan(cfg_i)
        train, val, cal = _member_windows(cfg_i, plan_i, cache, sessions)
        n = {"train": len(train), "val": len(val), "cal": len(cal)}
        for variant in variants:
            vdir = out_dir / variant / (f"member{i}" if members > 1 else "")
            vdir.mkdir(parents=True, exist_ok=True)
            resume = None
            if t.get("resume"):
                resume = Path(str(t.resume)) / vdir.relative_to(out_dir) / "last.pt"
            model, info = train_variant(cfg_i, variant, train, val, cal, vdir, resume)
            if rank != 0:
                continue
            card = card_for(cfg_i, variant, info, plan_i, n)
            (vdir / "history.json").write_text(json.dumps(info["history"], indent=1))
            if members == 1:
                _ship(cfg, variant, model, card, out_dir, vdir)
            else:
                written = save_model(vdir / "model", model, card)
                print(
                    f"{variant} member {i} (seed {cfg_i.train.seed}): best epoch "
                    f"{info['best_epoch']}  ({info['train_seconds']:.0f}s, "
                    f"sha256 {written['weights']['sha256'][:12]})"
                )
    if members > 1 and rank == 0:
        from detect.model.ensemble import load_ensemble

        for variant in variants:
            dirs = [out_dir / variant / f"member{i}" / "model" for i in range(members)]
            ensemble, card = load_ensemble(dirs)
            _ship(cfg, variant, ensemble, card, out_dir, out_dir / variant)
    if distributed:
        leave_process_group()
    return 0
