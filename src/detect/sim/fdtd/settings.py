"""Full-wave settings (the ``fdtd`` config group): grid, radar, soil model and farm.

Defaults (2 mm cells, 8 ns, 40 traces at 1.4 cm, 1.5 GHz Ricker) give a 0.55 m B-scan in
about 80 s on one core (2 s per A-scan, measured; cost grows as 1/dx^3 in 2-D, 1/dx^4 in
3-D, where ``cross_track_m`` of soil across the track multiplies the cells). The
solver refuses meshes with fewer than 3 cells per shortest wavelength, so ``dx_m`` and
``centre_hz`` are checked together here (10 cells per wavelength at 3 fc in air/eps 25 soil
would be far too strict; we ask for >= 3 at 3 fc in the wettest soil, as gprMax does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

C0_M_S = 299_792_458.0


#: keys that may be null, and the type of their value otherwise
NULLABLE: dict[str, type] = {"moisture_layer_m": float, "cache_dir": str}


class FdtdConfigError(ValueError):
    """A full-wave setting is unknown or out of range (one line)."""


@dataclass(frozen=True)
class FdtdSettings:
    mode: str = "2d"  # 2d: TMz, one cell in z | 3d: cross_track_m of soil across the track
    dx_m: float = 0.002  # cell size (square cells)
    time_window_ns: float = 8.0
    centre_hz: float = 1.5e9  # Ricker centre frequency
    antenna_height_m: float = 0.05  # source and receiver above the mean surface
    antenna_offset_m: float = 0.04  # transmitter-receiver separation along track
    trace_step_m: float = 0.014  # along-track step of both antennas (rounded to cells)
    n_traces: int = 40
    margin_m: float = 0.06  # ground beyond the antennas at each scan end (besides the PML)
    soil_depth_m: float = 0.30  # soil below the mean surface (then the PML)
    air_m: float = 0.05  # air above the antennas (then the PML)
    cross_track_m: float = 0.30  # 3d only: soil across the track, centred on the scan line
    pml_cells: int = 10
    soil_model: str = "peplinski"  # peplinski (fractal, rough) | homogeneous (flat, eps_r)
    n_materials: int = 20  # Peplinski water-fraction bins of the fractal soil
    fractal_dim: float = 1.5
    water_spread: float = 0.3  # water fraction spans mean x (1 -/+ spread)
    roughness: bool = True  # fractal rough surface (rms: the soil's roughness_m)
    moisture_layer_m: float | None = None  # depth of a wetter layer (the soil's layer_eps_r)
    output_dt_ns: float = 0.02  # converted files are resampled (anti-aliased) to <= this
    omp_threads: int = 1  # OpenMP threads per scene
    scheduler: str = "local-processes"  # local-processes | dask-local | tcp://host:port
    workers: int = 0  # processes / Dask workers (0: one per core)
    cache_dir: str | None = None  # default ~/.cache/detect/fullwave
    n_scenes: int = 48  # scenes of `detect simulate sim.engine=gprmax`
    seed: int = 500_000  # validation seeds (training uses small seeds)
    session: bool = True  # also write a session file per scene

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise FdtdConfigError(f"fdtd.{key} = {getattr(self, key)!r}: {what}")

        need(self.mode in ("2d", "3d"), "mode", "must be 2d or 3d")
        need(0.0002 <= self.dx_m <= 0.02, "dx_m", "must be in [0.0002, 0.02] m")
        need(0.5 <= self.time_window_ns <= 100, "time_window_ns", "must be in [0.5, 100] ns")
        need(1e8 <= self.centre_hz <= 1e10, "centre_hz", "must be in [1e8, 1e10] Hz")
        need(0 < self.antenna_height_m <= 1, "antenna_height_m", "must be in (0, 1] m")
        need(0 <= self.antenna_offset_m <= 1, "antenna_offset_m", "must be in [0, 1] m")
        need(self.trace_step_m >= self.dx_m, "trace_step_m", f"must be >= dx_m ({self.dx_m})")
        need(1 <= self.n_traces <= 10_000, "n_traces", "must be in [1, 10000]")
        need(self.margin_m >= 0, "margin_m", "must be >= 0")
        need(self.soil_depth_m > 2 * self.dx_m, "soil_depth_m", "must exceed 2 cells")
        need(self.air_m >= 0, "air_m", "must be >= 0")
        need(self.cross_track_m > 0, "cross_track_m", "must be > 0 m")
        need(4 <= self.pml_cells <= 40, "pml_cells", "must be in [4, 40]")
        need(
            self.soil_model in ("peplinski", "homogeneous"),
            "soil_model",
            "must be peplinski or homogeneous",
        )
        need(1 <= self.n_materials <= 200, "n_materials", "must be in [1, 200]")
        need(1.0 <= self.fractal_dim <= 3.0, "fractal_dim", "must be in [1, 3]")
        need(0 <= self.water_spread < 1, "water_spread", "must be in [0, 1)")
        need(
            self.moisture_layer_m is None or self.moisture_layer_m > 0,
            "moisture_layer_m",
            "must be > 0 m or null",
        )
        need(self.output_dt_ns > 0, "output_dt_ns", "must be > 0")
        need(1 <= self.omp_threads <= 256, "omp_threads", "must be in [1, 256]")
        need(
            self.scheduler in ("local-processes", "dask-local")
            or self.scheduler.startswith("tcp://"),
            "scheduler",
            "must be local-processes, dask-local or tcp://HOST:PORT",
        )
        need(0 <= self.workers <= 1024, "workers", "must be in [0, 1024]")
        need(1 <= self.n_scenes <= 100_000, "n_scenes", "must be in [1, 100000]")
        need(self.seed >= 0, "seed", "must be >= 0")
        # gprMax refuses < 3 cells per shortest wavelength; a Ricker has energy to ~3 fc.
        cells = C0_M_S / (3 * self.centre_hz * math.sqrt(25.0)) / self.dx_m
        need(cells >= 3, "dx_m", f"{cells:.1f} cells per wavelength at 3 x centre_hz: need >= 3")

    @property
    def scan_length_m(self) -> float:
        return (self.n_traces - 1) * self.step_cells * self.dx_m

    @property
    def step_cells(self) -> int:
        return max(1, round(self.trace_step_m / self.dx_m))

    @property
    def ricker_peak_ns(self) -> float:
        """A gprMax Ricker of centre fc peaks at sqrt(2)/fc."""
        return math.sqrt(2.0) / self.centre_hz * 1e9

    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


def default_cache_dir() -> Path:
    return Path("~/.cache/detect/fullwave").expanduser()


def fdtd_settings_from(values: Mapping[str, Any] | FdtdSettings | None) -> FdtdSettings:
    """Settings from a (possibly partial) ``fdtd`` mapping; unknown keys are one line."""
    if isinstance(values, FdtdSettings):
        return values
    if values is None:
        return FdtdSettings()
    plain: Any = values
    if hasattr(values, "items") and not isinstance(values, dict):
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(values, resolve=True)  # type: ignore[arg-type]
    known = {f.name: f for f in fields(FdtdSettings)}
    kwargs: dict[str, Any] = {}
    for key, value in dict(plain).items():
        if key not in known:
            raise FdtdConfigError(f"unknown key 'fdtd.{key}'; known: {', '.join(sorted(known))}")
        default = known[key].default
        if value is None and key not in NULLABLE:
            raise FdtdConfigError(f"fdtd.{key} must not be null")
        try:
            if key in NULLABLE:
                kwargs[key] = None if value is None else NULLABLE[key](value)
            elif isinstance(default, bool):
                kwargs[key] = bool(value)
            elif isinstance(default, int):
                kwargs[key] = int(value)
            elif isinstance(default, float):
                kwargs[key] = float(value)
            else:
                kwargs[key] = str(value)
        except (TypeError, ValueError):
            raise FdtdConfigError(f"fdtd.{key} = {value!r}: wrong type") from None
    return FdtdSettings(**kwargs)
