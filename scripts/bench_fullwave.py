"""Full-wave validation benchmark: issue 15's "Done when" figures on the gprMax scene set.

    .venv/bin/python scripts/bench_fullwave.py [DIR] [--models auto,fused] [--json FILE]
        [--real DIR | --real none] [--bootstrap 2000] [--set KEY=VALUE ...]

DIR: the exported set (``<scene>.h5`` + ``<scene>_truth.csv`` + ``scenes.csv``, what
``scripts/fullwave_set.py`` writes into ``<cache>/validation``), any folder of GPR files with
truth CSVs beside them, or the scene cache itself (``~/.cache/detect/fullwave``), where the
scenes of the default 48-scene set that have finished so far are taken while the build runs.
Default: the export folder when it exists, else the cache.

Each scene is scored as ``detect scan`` scores it with default settings (``detect.scan``),
GPR alone: ``auto`` is the configured model (what ``detect scan`` picks for a GPR-only file),
other names load that shipped model (``fused`` then runs with EMI absent). Every model runs
at the shipped alarm threshold (``configs/alarm/default.yaml``) and at the benchmark
operating point 0.036 (``--op``), the pipeline declaring the alarms each time. Figures:

* scene AUC: each scene's score is the max P(mine) over its scored track; mines (ap_mine,
  at_mine, uxo) against everything else (clutter, empty soil); stratified bootstrap 95 % CI
  over scenes;
* Pd within the halo (``evaluate.halo_m`` = 10 cm from the threat's edge, the lane rule of
  ``detect.metrics.match_lane``), Clopper-Pearson 95 % CI; a threat on ground reported not
  covered (a scene the model refused) is missed;
* false alarms (alarms matching no threat) per metre of covered scan, over all scenes, over
  empty-soil scenes and over clutter scenes; a breakdown by kind and by soil;
* the real-data false-alarm figure: alarms per covered metre on the mine-free real GPR files
  (``--real`` or ``DETECT_REAL_DATA``) whose radar lies inside the model's envelope
  (``model.applied``); files outside it are listed, not scored.

About 1 s per scene, model and operating point on one busy core.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detect import metrics as M
from detect.errors import DetectError

REPO = Path(__file__).resolve().parent.parent
#: the fused model's mixed-lane operating point on the simulated benchmark (alarm/default.yaml)
BENCH_OPERATING_POINT = 0.036
#: the issue's "Done when" bars
TARGETS = {"auc": 0.95, "pd": 0.95, "fa_per_m": 0.3, "fa_per_m_empty": 0.1}
REAL_SUFFIXES = (".dzt", ".dt1", ".rd3", ".sgy", ".segy")


class BenchError(ValueError):
    """Bad input to the benchmark (one line naming what and where)."""


# --------------------------------------------------------------------------- scenes


@dataclass
class Scene:
    """One validation scene: a GPR file and its objects."""

    name: str
    path: Path
    truth: list[dict[str, Any]]
    kind: str
    soil: str

    @property
    def targets(self) -> list[M.Target]:
        return [M.Target.from_dict(d, where=f"scene {self.name}") for d in self.truth]

    @property
    def category(self) -> str:
        """mine (a threat in it), clutter (objects, none a threat) or empty."""
        ts = self.targets
        if any(t.is_threat for t in ts):
            return "mine"
        return "clutter" if ts else "empty"


def _session_info(path: Path) -> dict[str, Any]:
    """The session's info (kind, soil, scene), {} for other formats."""
    try:
        from detect.io.session import SessionReader

        with SessionReader(path) as rd:
            return dict(rd.info)
    except Exception:
        return {}


def _index(folder: Path) -> dict[str, dict[str, str]]:
    idx = folder / "scenes.csv"
    if not idx.is_file():
        return {}
    with idx.open(newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


def folder_scenes(folder: Path) -> list[Scene]:
    """Every ``<name>.h5`` (or other GPR file) with ``<name>_truth.csv`` beside it; kind and
    soil from ``scenes.csv``, else the session's info, else the truth."""
    from detect.io.truth import read_truth_csv

    index = _index(folder)
    out = []
    for truth_csv in sorted(folder.glob("*_truth.csv")):
        name = truth_csv.name[: -len("_truth.csv")]
        files = [
            p
            for p in folder.glob(f"{name}.*")
            if p.suffix.lower() in (".h5", ".hdf5", *REAL_SUFFIXES)
        ]
        if not files:
            raise BenchError(f"{truth_csv}: no GPR file {name}.h5 beside it")
        truth = read_truth_csv(truth_csv)
        row = index.get(name) or {}
        info = _session_info(files[0])
        kind = row.get("kind") or info.get("kind") or (truth[0].get("kind") if truth else "empty")
        soil = row.get("soil") or info.get("soil") or (truth[0].get("soil") if truth else "")
        out.append(Scene(name, files[0], truth, str(kind).lower(), str(soil or "unknown")))
    return out


def cache_scenes(cache: Path, n: int | None = None) -> list[Scene]:
    """The finished scenes of the default validation set (``fdtd`` defaults) in ``cache``."""
    from detect.sim.fdtd.run import BSCAN, is_done, scene_dir
    from detect.sim.fdtd.scenes import validation_jobs
    from detect.sim.fdtd.settings import fdtd_settings_from

    s = fdtd_settings_from({})
    out = []
    for job in validation_jobs(s, n):
        folder = scene_dir(cache, job)
        if not is_done(folder):
            continue
        path = folder / "session.h5"
        out.append(
            Scene(
                job.name,
                path if path.is_file() else folder / BSCAN,
                [dict(t) for t in job.truth],
                str(job.info.get("kind", "")),
                str(job.info.get("soil", "")),
            )
        )
    return out


def find_scenes(folder: Path) -> tuple[list[Scene], str]:
    """Scenes in ``folder`` (an export folder, or the cache while the build runs)."""
    if not folder.is_dir():
        raise BenchError(f"scene folder {folder} does not exist")
    if any(folder.glob("*_truth.csv")):
        return folder_scenes(folder), "export folder"
    if any(folder.glob("*/result.json")):
        return cache_scenes(folder), "scene cache (finished scenes of the default set)"
    raise BenchError(f"{folder}: no scenes (no <scene>_truth.csv, no finished cache folder)")


def default_folder() -> Path:
    from detect.sim.fdtd.settings import fdtd_settings_from

    cache = fdtd_settings_from({}).cache_path()
    export = cache / "validation"
    return export if (export / "scenes.csv").is_file() else cache


# --------------------------------------------------------------------------- scoring


@dataclass
class Run:
    """One scan of one file: the score track, the alarms (tier ``alarm``), the coverage."""

    name: str
    model: str
    applied: bool
    reason: str
    track_x_m: np.ndarray
    track_p: np.ndarray
    alarm_x_m: np.ndarray
    alarm_conf: np.ndarray
    start_m: float
    length_m: float
    not_covered_m: list[tuple[float, float]] = field(default_factory=list)

    @property
    def score(self) -> float:
        """The scene score: max P(mine) over the scored track (NaN: nothing scored)."""
        p = self.track_p[np.isfinite(self.track_p)]
        return float(p.max()) if p.size else math.nan

    @property
    def covered_m(self) -> float:
        end = self.start_m + self.length_m
        gone = sum(max(0.0, min(b, end) - max(a, self.start_m)) for a, b in self.not_covered_m)
        return max(self.length_m - gone, 0.0)


def run_from_result(name: str, r: Any) -> Run:
    """A :class:`detect.api.ScanResult` as a :class:`Run`."""
    segs = r.coverage
    start = min((float(s["start_m"]) for s in segs), default=0.0)
    end = max((float(s["end_m"]) for s in segs), default=0.0)
    alarms = [a for a in r.alarms if getattr(a, "tier", "alarm") == "alarm"]
    return Run(
        name=name,
        model=str(r.model.get("name", "?")),
        applied=bool(r.model.get("applied", True)),
        reason=str(r.model.get("reason", "")),
        track_x_m=np.asarray(r.track_position_m, dtype=np.float64),
        track_p=np.asarray(r.track_p_mine, dtype=np.float64),
        alarm_x_m=np.array([a.position_m for a in alarms], dtype=np.float64),
        alarm_conf=np.array([a.confidence for a in alarms], dtype=np.float64),
        start_m=start,
        length_m=end - start,
        not_covered_m=[
            (float(s["start_m"]), float(s["end_m"])) for s in segs if s["status"] == "not_covered"
        ],
    )


def scan_config(threshold: float | None, extra: Sequence[str] = ()) -> Any:
    """The default config, at ``threshold`` when given (hysteresis then at most half of it,
    as ``detect evaluate`` re-declares alarms at other thresholds)."""
    import detect

    base = detect.compose(list(extra))
    if threshold is None or math.isclose(threshold, float(base.alarm.threshold)):
        return base
    hyst = min(float(base.alarm.hysteresis), 0.5 * threshold)
    return detect.compose([*extra, f"alarm.threshold={threshold}", f"alarm.hysteresis={hyst}"])


def scan_file(path: Path, name: str, cfg: Any, model: Any) -> Run:
    """Scan one file as ``detect scan`` does (``model`` None: the configured model)."""
    import detect

    try:
        r = detect.scan(path, config=cfg, model=model, keep_blocks=False)
    except detect.InputError as exc:
        if exc.result is None:  # this file cannot be scanned: nothing covered, said so
            empty = np.empty(0)
            return Run(name, "?", False, str(exc).splitlines()[0], empty, empty, empty, empty,
                       0.0, 0.0)  # fmt: skip
        r = exc.result
    except DetectError as exc:
        if exc.result is None:  # settings or model: the whole benchmark stops
            raise
        r = exc.result  # what was scored before the failure; its not-covered ground says so
    return run_from_result(name, r)


# --------------------------------------------------------------------------- figures


def bootstrap_auc(
    scores: np.ndarray, is_mine: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Scene AUC (Mann-Whitney, ties half) with a stratified percentile bootstrap 95 % CI:
    mine and other scenes resampled separately, so every resample has both."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_mine, dtype=bool)
    pos, neg = s[y], s[~y]
    out: dict[str, Any] = {"n_mine": int(pos.size), "n_other": int(neg.size)}
    if pos.size == 0 or neg.size == 0:
        return {**out, "auc": None, "ci": [None, None]}
    out["auc"] = M.auc(s, y)
    if n_boot <= 0:
        return {**out, "ci": [None, None]}
    rng = np.random.default_rng(seed)
    bp = pos[rng.integers(0, pos.size, (n_boot, pos.size))]
    bn = neg[rng.integers(0, neg.size, (n_boot, neg.size))]
    d = bp[:, :, None] - bn[:, None, :]
    boot = ((d > 0).mean(axis=(1, 2)) + 0.5 * (d == 0).mean(axis=(1, 2))).astype(np.float64)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {**out, "ci": [float(lo), float(hi)], "n_boot": n_boot}


@dataclass
class SceneOutcome:
    """One scene at one operating point: threats detected, false alarms, covered metres."""

    scene: Scene
    run: Run
    n_threats: int
    n_detected: int
    n_false_alarms: int

    @property
    def covered_m(self) -> float:
        return self.run.covered_m


def outcome(scene: Scene, run: Run, rule: M.HaloRule) -> SceneOutcome:
    """Match the run's alarms to the scene's objects with the lane rule (``match_lane``)."""
    targets = scene.targets
    lane = M.Lane(
        lane_id=scene.name,
        length_m=max(run.length_m, 1e-9),
        width_m=1.0,
        targets=targets,
        alarm_x_m=run.alarm_x_m,
        alarm_conf=run.alarm_conf,
        not_covered_m=list(run.not_covered_m),
        start_m=run.start_m,
    )
    m = M.match_lane(lane, rule, 0.0)
    threat = np.array([t.is_threat for t in targets], dtype=bool)
    detected = m.target_alarm >= 0
    if not run.applied:
        detected[:] = False
    elif run.not_covered_m and targets:
        detected &= ~lane.target_not_covered()
    return SceneOutcome(
        scene, run, int(threat.sum()), int((detected & threat).sum()), m.n_false_alarms
    )


def _fa(outs: Sequence[SceneOutcome]) -> dict[str, Any]:
    n = sum(o.n_false_alarms for o in outs)
    length = sum(o.covered_m for o in outs)
    return {
        "n_scenes": len(outs),
        "n_false_alarms": n,
        "covered_m": length,
        "per_m": n / length if length > 0 else None,
    }


def _group(
    outs: Sequence[SceneOutcome], key: Callable[[SceneOutcome], str], by_category: bool = False
) -> dict[str, Any]:
    """Pd and false alarms per group (mines first, then clutter, empty when ``by_category``)."""
    groups: dict[str, list[SceneOutcome]] = {}
    for o in outs:
        groups.setdefault(key(o), []).append(o)

    def order(g: str) -> tuple[int, str]:
        return (_CAT_ORDER.get(groups[g][0].scene.category, 9) if by_category else 0, g)

    table = {}
    for g in sorted(groups, key=order):
        os_ = groups[g]
        k = sum(o.n_detected for o in os_)
        n = sum(o.n_threats for o in os_)
        scores = [o.run.score for o in os_ if math.isfinite(o.run.score)]
        table[g] = {
            "category": os_[0].scene.category,
            "pd": M.proportion(k, n) if n else None,
            **_fa(os_),
            "mean_score": float(np.mean(scores)) if scores else None,
        }
    return table


_CAT_ORDER = {"mine": 0, "clutter": 1, "empty": 2}


def figures(
    scenes: Sequence[Scene],
    runs: Sequence[Run],
    rule: M.HaloRule,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure for one model at one operating point (``runs[i]`` scores ``scenes[i]``)."""
    if len(scenes) != len(runs):
        raise BenchError(f"{len(scenes)} scenes but {len(runs)} runs")
    outs = [outcome(s, r, rule) for s, r in zip(scenes, runs, strict=True)]
    scored = [o for o in outs if o.run.applied and math.isfinite(o.run.score)]
    scores = np.array([o.run.score for o in scored])
    is_mine = np.array([o.scene.category == "mine" for o in scored], dtype=bool)
    k = sum(o.n_detected for o in outs)
    n = sum(o.n_threats for o in outs)
    return {
        "scene_auc": bootstrap_auc(scores, is_mine, n_boot, seed),
        "pd": M.proportion(k, n),
        "false_alarms": _fa(outs),
        "false_alarms_empty": _fa([o for o in outs if o.scene.category == "empty"]),
        "false_alarms_clutter": _fa([o for o in outs if o.scene.category == "clutter"]),
        "not_scored": [
            {"scene": o.scene.name, "reason": o.run.reason} for o in outs if o not in scored
        ],
        "by_kind": _group(outs, lambda o: o.scene.kind, by_category=True),
        "by_soil": _group(outs, lambda o: o.scene.soil),
        "scenes": [
            {
                "scene": o.scene.name,
                "kind": o.scene.kind,
                "soil": o.scene.soil,
                "category": o.scene.category,
                "score": o.run.score,
                "alarms_m": o.run.alarm_x_m.round(3).tolist(),
                "threats": o.n_threats,
                "detected": o.n_detected,
                "false_alarms": o.n_false_alarms,
                "covered_m": o.covered_m,
            }
            for o in outs
        ],
    }


def real_figure(runs: Sequence[Run]) -> dict[str, Any]:
    """Alarms per covered metre on mine-free files the model was applied to."""
    used = [r for r in runs if r.applied]
    n = sum(int(r.alarm_x_m.size) for r in used)
    length = sum(r.covered_m for r in used)
    return {
        "n_files": len(used),
        "n_alarms": n,
        "covered_m": length,
        "alarms_per_m": n / length if length > 0 else None,
        "files": [
            {"file": r.name, "alarms": int(r.alarm_x_m.size), "covered_m": r.covered_m}
            for r in used
        ],
        "outside_envelope": [{"file": r.name, "reason": r.reason} for r in runs if not r.applied],
    }


def real_dir(arg: str | None) -> Path | None:
    if arg == "none":
        return None
    if arg:
        return Path(arg)
    env = os.environ.get("DETECT_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


def real_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in REAL_SUFFIXES)


# --------------------------------------------------------------------------- printing


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, fmt)


def _pd(p: dict[str, Any] | None) -> str:
    if not p or not p["n"]:
        return "-"
    lo, hi = p["ci"]
    return f"{p['k']}/{p['n']} {p['p']:.2f} [{lo:.2f},{hi:.2f}]"


def headline_rows(results: dict[str, Any]) -> list[str]:
    head = (
        f"{'model':<9} {'thr':>6}  {'scene AUC [95% CI]':<20} {'Pd (10 cm halo) [CI]':<24} "
        f"{'FA/m all':>8} {'FA/m empty':>10} {'FA/m clutter':>12} {'real FA/m (files)':>18}"
    )
    lines = [head, "-" * len(head)]
    for model, by_op in results.items():
        for op, fig in by_op.items():
            a = fig["scene_auc"]
            auc = (
                f"{_f(a['auc'])} [{_f(a['ci'][0], '.2f')},{_f(a['ci'][1], '.2f')}]"
                if a.get("auc") is not None
                else "-"
            )
            real = fig.get("real")
            rtxt = f"{_f(real['alarms_per_m'])} ({real['n_files']})" if real else "-"
            lines.append(
                f"{model:<9} {op:>6}  {auc:<20} {_pd(fig['pd']):<24} "
                f"{_f(fig['false_alarms']['per_m']):>8} "
                f"{_f(fig['false_alarms_empty']['per_m']):>10} "
                f"{_f(fig['false_alarms_clutter']['per_m']):>12} {rtxt:>18}"
            )
    t = TARGETS
    lines.append(
        f"{'target':<9} {'':>6}  {'>= ' + str(t['auc']):<20} {'>= ' + str(t['pd']):<24} "
        f"{'<= ' + str(t['fa_per_m']):>8} {'<= ' + str(t['fa_per_m_empty']):>10}"
    )
    return lines


def breakdown_rows(model: str, by_op: dict[str, Any], key: str) -> list[str]:
    ops = list(by_op)
    first = by_op[ops[0]][key]
    head = f"{model} by {key[3:]:<14} {'n':>3} {'mean max-p':>10}" + "".join(
        f"  {'Pd@' + op:>14} {'FA/m@' + op:>10}" for op in ops
    )
    lines = [head]
    for g, row in first.items():
        line = f"  {g:<22} {row['n_scenes']:>3} {_f(row['mean_score']):>10}"
        for op in ops:
            r = by_op[op][key][g]
            pd = r["pd"]
            pdt = f"{pd['k']}/{pd['n']}" if pd else "-"
            line += f"  {pdt:>14} {_f(r['per_m']):>10}"
        lines.append(line)
    return lines


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- main


def _counts(scenes: Iterable[Scene]) -> dict[str, int]:
    c: dict[str, int] = {"mine": 0, "clutter": 0, "empty": 0}
    for s in scenes:
        c[s.category] += 1
    return c


def main(argv: list[str] | None = None) -> int:
    """The command; the ``detect`` logger's level is put back afterwards."""
    det_log = logging.getLogger("detect")
    level = det_log.level
    try:
        return _main(argv)
    finally:
        det_log.setLevel(level)


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", help="scene folder (default: export, else the cache)")
    ap.add_argument("--models", default="auto,fused", help="auto = what detect scan picks")
    ap.add_argument("--op", type=float, default=BENCH_OPERATING_POINT,
                    help="benchmark operating point besides the shipped threshold")  # fmt: skip
    ap.add_argument("--real", help="real-data folder (default DETECT_REAL_DATA); 'none' skips")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="config override for each scan, e.g. alarm.nms_radius_m=0.25")  # fmt: skip
    a = ap.parse_args(argv)
    logging.getLogger("detect").setLevel(logging.ERROR)  # readers' notes: not the table's
    t0 = time.perf_counter()
    try:
        import detect
        from detect.evaluate import settings_from_cfg

        folder = Path(a.folder).expanduser() if a.folder else default_folder()
        scenes, layout = find_scenes(folder)
        if not scenes:
            raise BenchError(f"{folder}: no finished scenes yet")
        base = scan_config(None, a.set)
        rule = settings_from_cfg(base).rule
        shipped = float(base.alarm.threshold)
        ops = [shipped] + ([a.op] if not math.isclose(a.op, shipped) else [])
        cfgs = {op: scan_config(op, a.set) for op in ops}
        rdir = real_dir(a.real)
        if a.real and a.real != "none" and not (rdir and rdir.is_dir()):
            raise BenchError(f"--real {a.real}: no such folder")
        rfiles = real_files(rdir) if rdir is not None and rdir.is_dir() else []
        rroot = rdir or Path()
        results: dict[str, dict[str, Any]] = {}
        picked = ""
        for name in [m.strip() for m in a.models.split(",") if m.strip()]:
            model = None if name == "auto" else detect.load_model(name, base)
            by_op: dict[str, Any] = {}
            label = name
            for op in ops:
                runs = [scan_file(s.path, s.name, cfgs[op], model) for s in scenes]
                if name == "auto":  # the name the scans report (a refused file says "?")
                    picked = label = next((r.model for r in runs if r.model != "?"), "?")
                fig = figures(scenes, runs, rule, a.bootstrap)
                if rfiles:
                    rr = [scan_file(p, str(p.relative_to(rroot)), cfgs[op], model) for p in rfiles]
                    fig["real"] = real_figure(rr)
                by_op[f"{op:g}"] = fig
            key = label if label not in results else f"{label} ({name})"
            results[key] = by_op
    except (BenchError, DetectError, M.ScoringError) as exc:
        print(f"bench_fullwave: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    c = _counts(scenes)
    kinds: dict[str, int] = {}
    for s in scenes:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    from detect.config import models_dir

    print(
        f"full-wave validation: {len(scenes)} scenes from {folder} ({layout}): "
        f"{c['mine']} mine, {c['clutter']} clutter, {c['empty']} empty; "
        f"models {models_dir()}; detect scan picks '{picked or '?'}' for these files"
    )
    print(f"kinds: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}")
    print(
        f"halo {rule.halo_m:g} m from the {'edge' if rule.from_edge else 'centre'}; "
        f"thresholds: shipped {shipped:g}, benchmark {a.op:g}; real files: "
        f"{len(rfiles)} in {rdir if rfiles else '(none)'}"
    )
    if a.set:
        print(f"config overrides: {' '.join(a.set)}")
    print()
    for line in headline_rows(results):
        print(line)
    for model, by_op in results.items():
        for key in ("by_kind", "by_soil"):
            print()
            for line in breakdown_rows(model, by_op, key):
                print(line)
    for model, by_op in results.items():
        fig = next(iter(by_op.values()))
        if fig["not_scored"]:
            print(f"\n{model}: not scored (mines counted missed): {fig['not_scored']}")
        real = fig.get("real")
        if real:
            files = ", ".join(
                f"{f['file']} {f['alarms']}/{f['covered_m']:.2f} m" for f in real["files"]
            )
            print(
                f"\n{model} real files inside the envelope (alarms/covered at {shipped:g}): {files}"
            )
            print(f"  outside the envelope, not scored: {len(real['outside_envelope'])} files")
    wall = time.perf_counter() - t0
    print(f"\n{wall:.0f} s")
    if a.json:
        doc = {
            "folder": str(folder),
            "overrides": list(a.set),
            "layout": layout,
            "n_scenes": len(scenes),
            "by_category": c,
            "kinds": kinds,
            "models_dir": str(models_dir()),
            "scan_picks": picked,
            "halo": {"halo_m": rule.halo_m, "from_edge": rule.from_edge},
            "thresholds": {"shipped": shipped, "benchmark": a.op},
            "targets": TARGETS,
            "real_dir_files": len(rfiles),
            "results": results,
            "wall_s": wall,
        }
        Path(a.json).write_text(json.dumps(jsonable(doc), indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
