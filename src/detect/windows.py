"""Windows along the track: the unit the classifier sees.

After the DSP chain and distance normalisation, a lane is a regular along-track grid:
GPR ``(n_pos, n_samples)`` and EMI ``(n_pos, n_channels)``, position ``i`` at
``origin_m + i * grid_m``. A window is ``spec.n_pos`` consecutive grid positions centred on a
grid position (for an even count the centre is the first position of the second half).
Windows are cut batch-wise as strided views, never with a Python loop per window.

Labels come from the ground truth: a window is labelled with the class of the nearest target
whose along-track position lies within ``halo_m`` of the window centre, else background.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detect.blocks import CLASSES, THREAT_CLASSES
from detect.conf_schema import WindowSettings

BACKGROUND = CLASSES.index("background")
#: Class indices that count as "a mine is there".
THREAT_INDEX = np.array([CLASSES.index(c) for c in CLASSES if c in THREAT_CLASSES])


class WindowError(ValueError):
    """Gridded arrays or centres that do not fit the window spec."""


#: defaults: the config schema's ``window`` section (one place)
_DEFAULT = WindowSettings()


@dataclass(frozen=True)
class WindowSpec:
    """Geometry of one classifier window.

    ``gpr_samples`` is the time-sample count after resampling the trace onto the model's time
    grid; ``emi_channels`` the decay-gate count; ``halo_m`` the labelling radius.
    """

    length_m: float = _DEFAULT.length_m
    grid_m: float = _DEFAULT.grid_m
    gpr_samples: int = _DEFAULT.gpr_samples
    emi_channels: int = _DEFAULT.emi_channels
    halo_m: float = _DEFAULT.halo_m
    guard_m: float = _DEFAULT.guard_m

    def __post_init__(self) -> None:
        if not (self.grid_m > 0 and math.isfinite(self.grid_m)):
            raise WindowError(f"WindowSpec.grid_m must be > 0, got {self.grid_m}")
        if not (self.length_m >= 2 * self.grid_m):
            raise WindowError(
                f"WindowSpec.length_m = {self.length_m} must cover at least 2 grid steps "
                f"of {self.grid_m} m"
            )
        if self.gpr_samples < 8 or self.emi_channels < 1:
            raise WindowError(
                f"WindowSpec needs gpr_samples >= 8 and emi_channels >= 1, got "
                f"{self.gpr_samples}, {self.emi_channels}"
            )
        if self.halo_m < 0 or self.guard_m < self.halo_m:
            raise WindowError(
                f"WindowSpec needs 0 <= halo_m <= guard_m, got {self.halo_m}, {self.guard_m}"
            )

    @property
    def n_pos(self) -> int:
        """Grid positions per window."""
        return round(self.length_m / self.grid_m)

    @property
    def half(self) -> int:
        """Positions before the centre position."""
        return self.n_pos // 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any]) -> WindowSpec:
        keys = cls.__dataclass_fields__.keys()
        return cls(**{k: node[k] for k in keys if k in node})


#: A window is scored with at least this many grid cells of data on its shorter side of the
#: centre (the end of a short scan): what training's edge cuts keep (``train.drop_edges``).
EDGE_CELLS = 4


def gpr_present(gpr: np.ndarray) -> np.ndarray:
    """Per GPR window ``(n, n_pos, samples)``: data on :data:`EDGE_CELLS` positions each side
    of the centre (NaN elsewhere is the network's validity mask). The one rule for whether a
    window has the GPR: the classifier's presence flag, coverage and the training sets."""
    h = gpr.shape[1] // 2
    return np.isfinite(gpr[:, h - EDGE_CELLS : h + EDGE_CELLS]).any(axis=2).all(axis=1)


def resample_time(gpr: np.ndarray, n_out: int) -> np.ndarray:
    """Traces ``(n, n_samples)`` onto ``n_out`` samples over the same time window.

    An integer decimation averages blocks of samples (a boxcar anti-alias filter); other ratios
    interpolate linearly at the output sample centres.
    """
    gpr = np.asarray(gpr, dtype=np.float32)
    n_in = gpr.shape[-1]
    if n_in == n_out:
        return gpr
    if n_in % n_out == 0:
        k = n_in // n_out
        return gpr.reshape(*gpr.shape[:-1], n_out, k).mean(axis=-1, dtype=np.float32)
    t_out = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    t_out = np.clip(t_out, 0, n_in - 1)
    i0 = np.floor(t_out).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (t_out - i0).astype(np.float32)
    return gpr[..., i0] * (1 - w) + gpr[..., i1] * w


def centre_indices(n_pos_total: int, spec: WindowSpec, stride: int = 1) -> np.ndarray:
    """Every ``stride``-th grid index whose full window lies inside the grid."""
    lo = spec.half
    hi = n_pos_total - (spec.n_pos - spec.half)
    if hi < lo:
        return np.zeros(0, dtype=np.int64)
    return np.arange(lo, hi + 1, max(1, int(stride)), dtype=np.int64)


def cut(grid: np.ndarray, centres: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Windows ``(n_win, spec.n_pos, m)`` of a gridded array ``(n_pos_total, m)``.

    ``centres`` are grid indices; a window that would run off either end raises
    :class:`WindowError` (use :func:`centre_indices` for the valid ones). The result is a
    copy, contiguous, float32.
    """
    grid = np.asarray(grid)
    if grid.ndim != 2:
        raise WindowError(f"gridded array must be 2-D (n_pos, m), got shape {grid.shape}")
    centres = np.asarray(centres, dtype=np.int64).reshape(-1)
    starts = centres - spec.half
    if centres.size and (starts.min() < 0 or starts.max() + spec.n_pos > grid.shape[0]):
        raise WindowError(
            f"window centres must lie in [{spec.half}, {grid.shape[0] - spec.n_pos + spec.half}]"
            f" for a grid of {grid.shape[0]} positions, got [{centres.min()}, {centres.max()}]"
        )
    if grid.shape[0] < spec.n_pos:
        return np.zeros((0, spec.n_pos, grid.shape[1]), dtype=np.float32)
    view = sliding_window_view(grid, spec.n_pos, axis=0)  # (n_start, m, n_pos)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1), dtype=np.float32)


def cut_gpr(gpr_grid: np.ndarray, centres: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """GPR windows ``(n_win, n_pos, gpr_samples)``; traces resampled to the model's time grid."""
    gpr_grid = np.asarray(gpr_grid, dtype=np.float32)
    if gpr_grid.ndim != 2:
        raise WindowError(f"GPR grid must be (n_pos, n_samples), got shape {gpr_grid.shape}")
    if gpr_grid.shape[1] != spec.gpr_samples:
        gpr_grid = resample_time(gpr_grid, spec.gpr_samples)
    return cut(gpr_grid, centres, spec)


def cut_emi(emi_grid: np.ndarray, centres: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """EMI windows ``(n_win, n_pos, emi_channels)``."""
    emi_grid = np.asarray(emi_grid, dtype=np.float32)
    if emi_grid.ndim != 2 or emi_grid.shape[1] != spec.emi_channels:
        raise WindowError(
            f"EMI grid must be (n_pos, {spec.emi_channels}) for this window spec, "
            f"got shape {emi_grid.shape}"
        )
    return cut(emi_grid, centres, spec)


@dataclass(frozen=True)
class WindowLabels:
    """Per-window targets for training and scoring."""

    class_index: np.ndarray  # (n,) int64 into CLASSES
    depth_m: np.ndarray  # (n,) float32, NaN for background
    target_id: np.ndarray  # (n,) object: truth id or ""
    offset_m: np.ndarray  # (n,) float32: target x - centre (NaN for background)
    ambiguous: np.ndarray  # (n,) bool: nearest target between halo_m and guard_m

    @property
    def is_mine(self) -> np.ndarray:
        return np.isin(self.class_index, THREAT_INDEX)


def label_windows(
    centres_m: np.ndarray,
    truth: Iterable[Mapping[str, Any]],
    halo_m: float,
    guard_m: float | None = None,
    from_edge: bool = False,
) -> WindowLabels:
    """Label windows centred at ``centres_m`` (lane frame, m) from the ground-truth list.

    A window takes the class of the target nearest its centre within ``halo_m``; a threat
    within the halo wins over nearer clutter, so a mine among clutter is labelled a mine.
    With ``from_edge`` the halo (and the guard band) are measured from each target's edge
    (``halo_m + size_m / 2``), the rule by which an alarm detects a target in evaluation.
    """
    centres_m = np.asarray(centres_m, dtype=np.float64).reshape(-1)
    n = centres_m.size
    targets = list(truth)
    cls = np.full(n, BACKGROUND, dtype=np.int64)
    depth = np.full(n, np.nan, dtype=np.float32)
    ids = np.full(n, "", dtype=object)
    off = np.full(n, np.nan, dtype=np.float32)
    amb = np.zeros(n, dtype=bool)
    if not targets or n == 0:
        return WindowLabels(cls, depth, ids, off, amb)
    unknown = {str(t["class"]) for t in targets} - set(CLASSES)
    if unknown:
        raise WindowError(f"ground truth has unknown class(es) {sorted(unknown)}")
    x = np.array([float(t["x_m"]) for t in targets])
    t_cls = np.array([CLASSES.index(str(t["class"])) for t in targets], dtype=np.int64)
    t_depth = np.array([float(t.get("depth_m", np.nan)) for t in targets], dtype=np.float32)
    t_ids = np.array([str(t.get("id", "")) for t in targets], dtype=object)
    t_threat = np.isin(t_cls, THREAT_INDEX)
    half = np.zeros(x.size)
    if from_edge:
        size = np.array([_float_or_nan(t.get("size_m")) for t in targets])
        half = np.where(np.isfinite(size) & (size > 0), size / 2.0, 0.0)
    dist = np.abs(centres_m[:, None] - x[None, :])  # (n, n_targets)
    edge = dist - half[None, :]
    inside = edge <= halo_m + 1e-9  # centres are i * grid_m: no float-rounding misses
    # threats first, then distance: rank = dist - big * threat
    rank = np.where(inside, dist - 1e6 * t_threat[None, :], np.inf)
    best = np.argmin(rank, axis=1)
    hit = np.isfinite(rank[np.arange(n), best])
    cls[hit] = t_cls[best[hit]]
    depth[hit] = t_depth[best[hit]]
    ids[hit] = t_ids[best[hit]]
    off[hit] = (x[best[hit]] - centres_m[hit]).astype(np.float32)
    if guard_m is not None:
        nearest = edge.min(axis=1)
        amb = ~hit & (nearest <= guard_m + 1e-9)
    return WindowLabels(cls, depth, ids, off, amb)


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def window_spec_from_cfg(cfg: Any) -> WindowSpec:
    """The ``window`` section of the composed config as a :class:`WindowSpec`."""
    node = cfg.get("window") if hasattr(cfg, "get") else None
    if node is None:
        return WindowSpec()
    return WindowSpec.from_mapping(node)


def positions_m(origin_m: float, n_pos_total: int, grid_m: float) -> np.ndarray:
    return origin_m + np.arange(n_pos_total, dtype=np.float64) * grid_m


def stack_optional(arrays: Sequence[np.ndarray | None]) -> np.ndarray | None:
    present = [a for a in arrays if a is not None]
    if not present:
        return None
    if len(present) != len(arrays):
        raise WindowError("cannot stack windows where some lanes lack the sensor")
    return np.concatenate(present, axis=0)
