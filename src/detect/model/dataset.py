"""Training and test data: labelled lanes through the live preprocessing into windows.

A lane (GPR block, EMI block, ground truth) goes through exactly what the live pipeline runs:
the configured DSP chains (:func:`detect.dsp.chain.build_chain`, ``configs/dsp``), the aligner
(head reference position + per-sensor offsets, :class:`detect.align.Aligner`), the streaming
along-track grid (:class:`detect.align.TrackGrid`), and windows cut by :mod:`detect.windows`.
Labels come from the truth table. Lanes come from the simulator (generated on the fly, in
DataLoader workers when ``workers > 0``) or from session files written by ``detect simulate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import CLASSES, GprBlock, MdBlock
from detect.windows import (
    EDGE_CELLS,
    THREAT_INDEX,
    WindowLabels,
    WindowSpec,
    cut_emi,
    cut_gpr,
    gpr_present,
    label_windows,
    resample_time,
)

METAL_CLUTTER = CLASSES.index("metal_clutter")
#: A mine window "among metal clutter": a metal-clutter target within this distance.
CLUTTER_NEAR_M = 0.5
#: Minimum-metal mine: less metal than this.
MIN_METAL_G = 1.0


def session_lane_id(i: int) -> int:
    """Lane id of the ``i``-th labelled recording of a window set: negative, where a
    simulated lane's id (``seed * 10_000 + lane``) never is."""
    return -1 - i


def is_recorded(lane: np.ndarray) -> np.ndarray:
    """Which windows come from labelled recordings (see :func:`session_lane_id`)."""
    return np.asarray(lane) < 0


@dataclass
class WindowSet:
    """Windows and labels. GPR is stored as float16 to halve memory (values are post-DSP)."""

    gpr: np.ndarray | None  # (n, n_pos, gpr_samples) float16
    emi: np.ndarray | None  # (n, n_pos, emi_channels) float32
    cls: np.ndarray  # (n,) int64
    depth_m: np.ndarray  # (n,) float32
    lane: np.ndarray  # (n,) int64 lane id
    metal_g: np.ndarray  # (n,) float32, NaN where no target
    clutter_near: np.ndarray  # (n,) bool: metal clutter within CLUTTER_NEAR_M of the centre
    soil: np.ndarray  # (n,) object

    def __len__(self) -> int:
        return int(self.cls.shape[0])

    @property
    def is_mine(self) -> np.ndarray:
        return np.isin(self.cls, THREAT_INDEX)

    def subset(self, idx: np.ndarray) -> WindowSet:
        kw: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = None if v is None else v[idx]
        return WindowSet(**kw)

    @staticmethod
    def concat(parts: Sequence[WindowSet]) -> WindowSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no windows: every lane was shorter than one window")
        kw: dict[str, Any] = {}
        for f in fields(WindowSet):
            vals = [getattr(p, f.name) for p in parts]
            have = [v for v in vals if v is not None]
            if not have:
                kw[f.name] = None
                continue
            # a sensor some parts lack (a GPR-only recording among simulated lanes) is NaN
            # there: absent for those windows only, as the classifier treats missing data
            like = have[0]
            kw[f.name] = np.concatenate(
                [
                    v if v is not None else np.full((len(p), *like.shape[1:]), np.nan, like.dtype)
                    for v, p in zip(vals, parts, strict=True)
                ]
            )
        return WindowSet(**kw)

    def save(self, path: Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        np.savez(
            path,
            **{
                k: (v.astype(str) if k == "soil" else v) for k, v in arrays.items() if v is not None
            },
        )

    @classmethod
    def load(cls, path: Path) -> WindowSet:
        with np.load(path, allow_pickle=False) as z:
            kw: dict[str, Any] = {
                f.name: (z[f.name] if f.name in z.files else None) for f in fields(cls)
            }
        kw["soil"] = kw["soil"].astype(object)
        return cls(**kw)


def _grid(block: GprBlock | MdBlock, grid_m: float) -> tuple[int, np.ndarray, np.ndarray]:
    """Whole-lane gridding with the live streaming grid: (first cell, values, valid)."""
    from detect.align import TrackGrid

    pos = block.position_m[np.isfinite(block.position_m)]
    if pos.size == 0:
        return 0, np.zeros((0, block.data.shape[1]), np.float32), np.zeros(0, bool)
    span = math.ceil((pos.max() - pos.min()) / grid_m) + 8
    g = TrackGrid(grid_m, capacity=max(2048, 4 * span))
    g.add(block.data, block.position_m, block.host_time_s)
    lo, hi = g.finalize()
    rows = g.rows(lo, hi)
    return lo, np.asarray(rows[0], dtype=np.float32), np.asarray(rows[1], dtype=bool)


def lane_windows(
    gpr: GprBlock | None,
    emi: MdBlock | None,
    truth: Sequence[Mapping[str, Any]],
    dsp: Mapping[str, Any],
    offsets_m: Mapping[str, float],
    spec: WindowSpec,
    stride: int = 1,
    lane_id: int = 0,
    soil: str = "",
    stretch: float = 1.0,
    label_from_edge: bool = False,
    label_guard_m: float | None = None,
) -> WindowSet:
    """Windows of one lane through DSP chain -> aligner -> grid -> windows, with labels.

    Labels: see :func:`detect.windows.label_windows`; windows in the guard band
    (``label_guard_m``, default ``spec.guard_m``) are left out, neither label being right.

    ``stretch`` scales the head positions and the truth together (an odometer that reads
    long or short): the ground is sampled at a different spacing, labels stay on the objects.
    Windows that touch an empty grid cell of a present sensor are dropped. As in the live
    pipeline, GPR traces go onto the model's time grid before the along-track grid.
    """
    from detect.align import Aligner
    from detect.dsp.chain import build_chain

    aligner = Aligner(offsets_m=offsets_m)
    grids: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for name, block in (("gpr", gpr), ("emi", emi)):
        if block is None:
            continue
        chain = build_chain(list(dsp.get(name, []) or []), name)
        out = chain.process(block)
        if stretch != 1.0:
            out = out.with_positions(out.position_m * stretch)
        out = aligner.apply(out)
        if isinstance(out, GprBlock) and out.n_samples != spec.gpr_samples:
            out = out.with_data(resample_time(out.data, spec.gpr_samples))
        grids[name] = _grid(out, spec.grid_m)
    if not grids:
        raise ValueError("lane has neither GPR nor EMI data")
    lo = max(g[0] for g in grids.values())
    hi = min(g[0] + g[1].shape[0] for g in grids.values())
    n = hi - lo
    # as the live scheduler: centres from EDGE_CELLS into the data to as many before its end,
    # NaN beyond the data (the lane's ends look like a short sweep's)
    centres = np.arange(EDGE_CELLS, n - EDGE_CELLS, max(1, int(stride)), dtype=np.int64)
    ok = np.ones(centres.size, dtype=bool)
    parts: dict[str, np.ndarray] = {}
    for name, (g_lo, values, valid) in grids.items():
        values = values[lo - g_lo : hi - g_lo]
        valid = valid[lo - g_lo : hi - g_lo]
        bad = np.concatenate([[0], np.cumsum(~valid)])
        starts = np.clip(centres - spec.half, 0, n)
        ends = np.clip(centres - spec.half + spec.n_pos, 0, n)
        ok &= (bad[ends] - bad[starts]) == 0
        pad = np.full((spec.n_pos, values.shape[1]), np.nan, dtype=np.float32)
        parts[name] = np.concatenate([pad, values.astype(np.float32), pad])
    centres = centres[ok]
    padded = centres + spec.n_pos
    win_gpr = cut_gpr(parts["gpr"], padded, spec).astype(np.float16) if "gpr" in parts else None
    win_emi = cut_emi(parts["emi"], padded, spec) if "emi" in parts else None
    centre_m = (lo + centres) * spec.grid_m
    t_scaled = [dict(t, x_m=float(t["x_m"]) * stretch) for t in truth]
    guard_m = spec.guard_m if label_guard_m is None else max(label_guard_m, spec.halo_m)
    labels = label_windows(centre_m, t_scaled, spec.halo_m, guard_m, label_from_edge)
    keep = ~labels.ambiguous
    centres, centre_m = centres[keep], centre_m[keep]
    win_gpr = None if win_gpr is None else win_gpr[keep]
    win_emi = None if win_emi is None else win_emi[keep]
    labels, metal, near = window_labels(centre_m, t_scaled, spec.halo_m, label_from_edge)
    return WindowSet(
        gpr=win_gpr,
        emi=win_emi,
        cls=labels.class_index,
        depth_m=labels.depth_m,
        lane=np.full(centres.size, lane_id, dtype=np.int64),
        metal_g=metal,
        clutter_near=near,
        soil=np.full(centres.size, soil, dtype=object),
    )


def sensors_present(ws: WindowSet) -> dict[str, np.ndarray]:
    """Per window, whether each sensor is present as the classifier decides it: GPR with data
    on :data:`EDGE_CELLS` positions each side of the centre (NaN beyond is its mask), EMI
    (no mask) with every value finite."""
    n = len(ws)
    out = {"gpr": np.zeros(n, bool), "emi": np.zeros(n, bool)}
    if ws.gpr is not None:
        out["gpr"] = gpr_present(ws.gpr)
    if ws.emi is not None:
        out["emi"] = np.isfinite(ws.emi).all(axis=(1, 2))
    return out


def full_windows(ws: WindowSet) -> np.ndarray:
    """Windows with data at every position for every sensor (none at a scan's end)."""
    keep = np.ones(len(ws), dtype=bool)
    if ws.gpr is not None:
        keep &= np.isfinite(ws.gpr).any(axis=2).all(axis=1)
    if ws.emi is not None:
        keep &= np.isfinite(ws.emi).all(axis=(1, 2))
    return keep


def window_labels(
    centre_m: np.ndarray,
    truth: Sequence[Mapping[str, Any]],
    halo_m: float,
    from_edge: bool = False,
) -> tuple[WindowLabels, np.ndarray, np.ndarray]:
    """(labels, metal mass of the labelled target in g or NaN, metal clutter within
    :data:`CLUTTER_NEAR_M`) of windows centred at ``centre_m``: training and the held-out
    test set label windows with this one function."""
    labels = label_windows(centre_m, truth, halo_m, from_edge=from_edge)
    metal = np.full(centre_m.size, np.nan, dtype=np.float32)
    by_id = {str(t.get("id", "")): t for t in truth}
    hit = labels.target_id != ""
    metal[hit] = [float(by_id[i].get("metal_mass_g", np.nan)) for i in labels.target_id[hit]]
    clutter_x = np.array(
        [t["x_m"] for t in truth if t["class"] == "metal_clutter"], dtype=np.float64
    )
    near: np.ndarray = np.zeros(centre_m.size, dtype=bool)
    if clutter_x.size:
        near = np.asarray(
            (np.abs(centre_m[:, None] - clutter_x[None, :]) <= CLUTTER_NEAR_M).any(axis=1)
        )
    return labels, metal, near


def subsample_background(ws: WindowSet, keep: float, seed: int) -> WindowSet:
    """Keep every target window and a random ``keep`` share of background windows."""
    if keep >= 1.0:
        return ws
    rng = np.random.default_rng(seed)
    bg = ws.cls == CLASSES.index("background")
    sel = ~bg | (rng.random(len(ws)) < keep)
    return ws.subset(np.flatnonzero(sel))


# --------------------------------------------------------------------------- simulated lanes


@dataclass(frozen=True)
class LaneRecipe:
    """How to make and window one simulated lane (picklable, for DataLoader workers)."""

    seed: int
    lane_id: int
    sim: Mapping[str, Any]
    dsp: Mapping[str, Any]
    offsets_m: Mapping[str, float]
    spec: WindowSpec
    stride: int = 1
    bg_keep: float = 1.0
    soils: tuple[str, ...] = ()
    wavelet_jitter: float = 0.0
    stretch_jitter: float = 0.0
    radar_jitter: float = 0.0
    domain_jitter: float = 0.0
    label_from_edge: bool = False
    label_guard_m: float | None = None


#: the simulator's domain randomisation on a ``domain_jitter`` lane (see GprSettings)
DOMAIN_RANDOM: dict[str, float] = {"echo_gain_sigma": 0.7, "echo_phase_deg": 45.0}
#: ... and its surface roughness scaled by up to this (a 2-D gprMax scene's rough surface
#: leaves 2-4x the fast simulator's ground-bounce residual: scripts/fullwave_compare.py)
ROUGHNESS_MAX = 3.0


def rougher_scene(seed: int, sim: Mapping[str, Any], lane_id: int, scale: float) -> Any:
    """The lane's own scene with its surface's relief scaled by ``scale``."""
    from dataclasses import replace

    from detect.sim.scene import Profile, make_scene
    from detect.sim.settings import settings_from

    scene = make_scene(seed, settings_from(sim), lane_id)
    s = scene.surface_m
    return replace(scene, surface_m=Profile(s.x0_m, s.step_m, s.values * scale))


@dataclass(frozen=True)
class RecipeLane:
    """A lane simulated from a recipe, with what windowing it needs."""

    lane: Any
    truth: list[dict[str, Any]]
    soil: str
    stretch: float
    group: int


def simulate_recipe_lane(r: LaneRecipe) -> RecipeLane:
    """The lane of a recipe, with its soil, wavelet and odometer-stretch draws (seeded)."""
    from detect.sim.lane import simulate_lane

    rng = np.random.default_rng([r.seed, r.lane_id, 7])
    sim = dict(r.sim)
    # positions and labels stay in one frame: the wheel's scale error is modelled by
    # stretch_jitter, which moves both; the simulator's odometer would move only the data
    sim["odometer"] = {"enabled": False}
    if r.soils:
        sim["soils"] = [r.soils[int(rng.integers(len(r.soils)))]]
    if r.wavelet_jitter > 0:
        gpr = dict(sim.get("gpr", {}) or {})
        base = float(gpr.get("centre_hz", 1.5e9))
        gpr["centre_hz"] = base * float(np.exp(rng.uniform(-1, 1) * r.wavelet_jitter))
        gpr["ringing"] = float(rng.uniform(0.1, 0.4))
        sim["gpr"] = gpr
    if r.radar_jitter > 0 and rng.uniform() < r.radar_jitter:
        from detect.model.envelope import RadarEnvelope, random_radar

        head = dict(sim.get("head", {}) or {})
        sim["gpr"] = random_radar(
            rng, dict(sim.get("gpr", {}) or {}), float(head.get("speed_m_s", 0.5)),
            RadarEnvelope(),
        )  # fmt: skip
    scene = None
    if r.domain_jitter > 0 and rng.uniform() < r.domain_jitter:
        sim["gpr"] = {**dict(sim.get("gpr", {}) or {}), **DOMAIN_RANDOM}
        sim["gpr"]["spreading_power"] = float(rng.uniform(0.5, 1.0))
        scene = rougher_scene(r.seed, sim, r.lane_id, float(rng.uniform(1.0, ROUGHNESS_MAX)))
    lane = simulate_lane(r.seed, sim, lane_index=r.lane_id, scene=scene)
    stretch = float(np.exp(rng.uniform(-1, 1) * r.stretch_jitter)) if r.stretch_jitter else 1.0
    truth = list(lane.truth)
    soil = str(truth[0].get("soil", "")) if truth else str(sim.get("soils", [""])[0])
    group = r.seed * 10_000 + r.lane_id  # unique lane id across seeds (bootstrap groups)
    return RecipeLane(lane, truth, soil, stretch, group)


def simulate_lane_windows(r: LaneRecipe) -> WindowSet:
    rl = simulate_recipe_lane(r)
    ws = lane_windows(
        rl.lane.gpr, rl.lane.emi, rl.truth, r.dsp, r.offsets_m, r.spec, r.stride, rl.group,
        rl.soil, rl.stretch, r.label_from_edge, r.label_guard_m,
    )  # fmt: skip
    return subsample_background(ws, r.bg_keep, r.seed * 100003 + r.lane_id)


class _RecipeDataset:
    def __init__(self, recipes: Sequence[LaneRecipe], fn: Callable[[LaneRecipe], WindowSet]):
        self.recipes = list(recipes)
        self.fn = fn

    def __len__(self) -> int:
        return len(self.recipes)

    def __getitem__(self, i: int) -> WindowSet:
        return self.fn(self.recipes[i])


def _first(batch: list[WindowSet]) -> WindowSet:
    return batch[0]


def build_windows(
    recipes: Sequence[LaneRecipe],
    workers: int = 0,
    fn: Callable[[LaneRecipe], WindowSet] = simulate_lane_windows,
    progress: Callable[[int], None] | None = None,
) -> WindowSet:
    """Simulate and window lanes, in ``workers`` DataLoader worker processes when > 0."""
    if workers <= 0:
        parts = []
        for r in recipes:
            parts.append(fn(r))
            if progress:
                progress(1)
        return WindowSet.concat(parts)
    from torch.utils.data import DataLoader

    dataset: Any = _RecipeDataset(recipes, fn)
    loader: DataLoader[WindowSet] = DataLoader(
        dataset, batch_size=1, num_workers=workers, collate_fn=_first
    )
    parts = []
    for ws in loader:
        parts.append(ws)
        if progress:
            progress(1)
    return WindowSet.concat(parts)


def recipes(
    base: LaneRecipe, seeds: Sequence[int], first_lane: int = 0, **changes: Any
) -> list[LaneRecipe]:
    return [
        replace(base, seed=int(s), lane_id=first_lane + i, **changes) for i, s in enumerate(seeds)
    ]


# --------------------------------------------------------------------------- recordings


def session_paths(entries: Sequence[str | Path]) -> list[Path]:
    """Session files from a list of files and directories (``*.h5`` inside directories)."""
    out: list[Path] = []
    for e in entries:
        p = Path(e)
        if p.is_dir():
            out.extend(sorted(p.glob("*.h5")))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"training session {p} does not exist")
    return out


def session_windows(
    path: Path,
    dsp: Mapping[str, Any],
    spec: WindowSpec,
    offsets_m: Mapping[str, float],
    stride: int = 1,
    lane_id: int = 0,
    label_from_edge: bool = False,
    label_guard_m: float | None = None,
) -> WindowSet:
    """Windows of a labelled recording.

    The ground truth is a truth CSV beside the file, found as ``detect evaluate`` finds it
    (``<file>.truth.csv`` or ``<stem>_truth.csv``, columns as ``detect.io.truth.TRUTH_COLUMNS``;
    a field recording's labels, or a corrected table), else the session's own table
    (``detect simulate`` writes one).
    Sensor offsets: the recording's own (``info.emi_offset_m`` from ``detect simulate``, or
    the ``align.offsets_m`` it was recorded with), else ``offsets_m``.
    """
    from detect.io.session import SessionReader

    reader = SessionReader(path)
    beside = _truth_beside(Path(path))  # a CSV beside wins, as in evaluate; empty: no object
    truth = beside if beside is not None else reader.truth()
    if beside is None and not truth:
        raise ValueError(
            f"{path}: no ground-truth table in the file and no {Path(path).stem}_truth.csv "
            "beside it; only labelled recordings can train"
        )
    offsets = dict(offsets_m)
    recorded = (reader.config.get("align") or {}).get("offsets_m") or {}
    offsets.update({str(k): float(v) for k, v in recorded.items()})
    if "emi_offset_m" in reader.info:
        offsets["emi"] = float(reader.info["emi_offset_m"])
    soil = str(reader.info.get("soil", truth[0].get("soil", "") if truth else ""))
    return lane_windows(
        reader.gpr(), reader.emi(), truth, dsp, offsets, spec, stride, lane_id, soil,
        label_from_edge=label_from_edge, label_guard_m=label_guard_m,
    )  # fmt: skip


_TRUTH_NUMBERS = ("x_m", "y_m", "depth_m", "size_m", "metal_mass_g")


def _truth_beside(path: Path) -> list[dict[str, Any]] | None:
    """The truth CSV next to a recording, checked and with its numbers as floats (None if
    there is none; [] for a table with no rows: ground labelled free of objects)."""
    from detect.io.truth import find_truth

    rows = find_truth(path, None)
    if rows is None:
        return None
    out = []
    for row in rows:
        typed: dict[str, Any] = dict(row)
        for key in _TRUTH_NUMBERS:
            v = row.get(key)
            typed[key] = math.nan if v is None or v == "" else float(v)
        out.append(typed)
    return out
