"""Simulator settings: one frozen dataclass tree, built from the ``sim`` config node.

Unknown keys are refused with one line naming them, so a typo in a sweep never
silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from detect.sim.soil import SOILS
from detect.sim.targets import LIBRARY


class SimConfigError(ValueError):
    """A simulator setting is unknown or out of range (one line)."""


@dataclass(frozen=True)
class HeadSettings:
    speed_m_s: float = 0.5
    speed_variation: float = 0.2
    height_min_m: float = 0.02
    height_max_m: float = 0.10
    wobble_m: float = 0.02
    emi_offset_m: float = 0.3


@dataclass(frozen=True)
class GprSettings:
    centre_hz: float = 1.5e9
    n_samples: int = 512
    dt_ns: float = 0.0390625
    trace_rate_hz: float = 100.0
    time_zero_ns: float = 1.5
    coupling: float = 1.0
    ringing: float = 0.25
    ringing_tau_ns: float = 0.8
    beam_deg: float = 35.0
    noise: float = 0.002
    gain_drift: float = 0.02
    jitter_ns: float = 0.002
    time_zero_drift_ns: float = 0.01
    heterogeneity: bool = True
    #: domain randomisation (0 / 0 / 1: off): each object's echo gets a gain
    #: exp(N(0, echo_gain_sigma)) and a phase turned by U(-echo_phase_deg, +echo_phase_deg),
    #: and spreading falls as (r_ref / (r_ref + r))^spreading_power (1: 3-D, 0.5: a 2-D
    #: line source, as in a 2-D full-wave model)
    echo_gain_sigma: float = 0.0
    echo_phase_deg: float = 0.0
    spreading_power: float = 1.0


@dataclass(frozen=True)
class EmiSettings:
    rate_hz: float = 1000.0
    n_gates: int = 8
    gate_first_s: float = 1e-5
    gate_last_s: float = 1e-3
    coil_radius_m: float = 0.10
    noise_v: float = 0.005
    hum_v: float = 0.003
    mains_hz: float = 50.0
    drift_v: float = 0.01
    soil_response: bool = True


@dataclass(frozen=True)
class GpsSettings:
    rate_hz: float = 5.0
    lat0_deg: float = 44.8
    lon0_deg: float = 18.6
    heading_deg: float = 90.0
    h_acc_m: float = 0.02


@dataclass(frozen=True)
class OdometerSettings:
    """Survey-wheel error (:mod:`detect.sim.odometer`); ``enabled: false`` or all zeros is a
    perfect odometer. ``slip_fraction`` > 0 under-counts during a burst, < 0 over-counts."""

    enabled: bool = True
    scale_sigma: float = 0.005
    slip_per_m: float = 0.05
    slip_length_m: float = 0.1
    slip_fraction: float = 0.3
    tick_m: float = 0.002

    def __post_init__(self) -> None:
        for key, lo, hi in (
            ("scale_sigma", 0.0, 0.1),
            ("slip_per_m", 0.0, 100.0),
            ("slip_length_m", 0.0, 10.0),
            ("slip_fraction", -1.0, 1.0),
            ("tick_m", 0.0, 0.1),
        ):
            v = getattr(self, key)
            if not (lo <= v <= hi):
                raise SimConfigError(f"sim.odometer.{key} = {v}: must be in [{lo}, {hi}]")

    @property
    def slips(self) -> bool:
        return self.slip_per_m > 0 and self.slip_length_m > 0 and self.slip_fraction != 0

    @property
    def perfect(self) -> bool:
        return not self.enabled or (self.scale_sigma == 0 and not self.slips and self.tick_m == 0)


def _default_mix() -> dict[str, float]:
    return {k: 1.0 for k in LIBRARY}


@dataclass(frozen=True)
class SimSettings:
    engine: str = "analytic"  # analytic | gprmax (full-wave: detect.sim.fdtd)
    lane_length_m: float = 10.0
    lane_width_m: float = 1.0
    margin_m: float = 0.8
    min_spacing_m: float = 0.6
    target_y_max_m: float = 0.1
    n_targets_min: int = 4
    n_targets_max: int = 8
    n_lanes: int = 10
    soils: tuple[str, ...] = tuple(SOILS)
    mix: Mapping[str, float] = field(default_factory=_default_mix)
    head: HeadSettings = field(default_factory=HeadSettings)
    gpr: GprSettings = field(default_factory=GprSettings)
    emi: EmiSettings = field(default_factory=EmiSettings)
    gps: GpsSettings = field(default_factory=GpsSettings)
    odometer: OdometerSettings = field(default_factory=OdometerSettings)

    def __post_init__(self) -> None:
        if self.engine not in ("analytic", "gprmax"):
            raise SimConfigError(f"sim.engine = {self.engine!r}: must be analytic or gprmax")
        for name in self.soils:
            if name not in SOILS:
                raise SimConfigError(
                    f"sim.soils: unknown soil '{name}'; available: {', '.join(SOILS)}"
                )
        if not self.soils:
            raise SimConfigError("sim.soils must name at least one soil")
        for key, w in self.mix.items():
            if key not in LIBRARY:
                raise SimConfigError(
                    f"sim.mix: unknown target kind '{key}'; available: {', '.join(LIBRARY)}"
                )
            if not (w >= 0):
                raise SimConfigError(f"sim.mix.{key} = {w}: weights must be >= 0")
        if self.n_targets_max < self.n_targets_min:
            raise SimConfigError("sim.n_targets_max must be >= sim.n_targets_min")
        if self.n_targets_max > 0 and sum(self.mix.values()) <= 0:
            raise SimConfigError("sim.mix: all weights are zero")
        if self.head.height_max_m < self.head.height_min_m:
            raise SimConfigError("sim.head.height_max_m must be >= sim.head.height_min_m")
        usable = self.lane_length_m - 2 * self.margin_m
        if usable <= 0:
            raise SimConfigError("sim.lane_length_m must exceed 2 * sim.margin_m")
        if self.n_targets_max > 1 and (self.n_targets_max - 1) * self.min_spacing_m > usable:
            raise SimConfigError(
                f"sim: {self.n_targets_max} targets at {self.min_spacing_m} m spacing do not fit "
                f"in a {self.lane_length_m} m lane"
            )

    @property
    def gate_times_s(self) -> tuple[float, ...]:
        import numpy as np

        e = self.emi
        return tuple(float(t) for t in np.geomspace(e.gate_first_s, e.gate_last_s, e.n_gates))


_SECTIONS: dict[str, type] = {
    "head": HeadSettings,
    "gpr": GprSettings,
    "emi": EmiSettings,
    "gps": GpsSettings,
    "odometer": OdometerSettings,
}


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise SimConfigError(
                f"unknown simulator key '{where}{key}'; known: {', '.join(sorted(known))}"
            )
        if value is None and key not in _SECTIONS:
            raise SimConfigError(f"simulator key '{where}{key}' must not be null")
        if key in _SECTIONS and cls is SimSettings:
            kwargs[key] = _build(_SECTIONS[key], value or {}, f"{where}{key}.")
        elif key == "soils":
            kwargs[key] = (value,) if isinstance(value, str) else tuple(value)
        elif key == "mix":
            kwargs[key] = {str(k): float(v) for k, v in dict(value).items()}
        else:
            default = known[key].default
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            kwargs[key] = value
    return cls(**kwargs)


def settings_from(values: Mapping[str, Any] | SimSettings | None) -> SimSettings:
    """Build settings from a (possibly partial) ``sim`` config mapping."""
    if isinstance(values, SimSettings):
        return values
    if values is None:
        return SimSettings()
    plain: Any = values
    if hasattr(values, "items") and not isinstance(values, dict):
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(values, resolve=True)  # type: ignore[arg-type]
    if not isinstance(plain, Mapping):
        raise SimConfigError(f"sim settings must be a mapping, got {type(plain).__name__}")
    return _build(SimSettings, plain, "sim.")  # type: ignore[no-any-return]


def with_changes(s: SimSettings, **changes: Any) -> SimSettings:
    """Copy with top-level or dotted section changes, e.g. ``**{"gpr.noise": 0}``."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if "." in key:
            sec, sub = key.split(".", 1)
            sections.setdefault(sec, {})[sub] = value
        else:
            top[key] = value
    for sec, sub_changes in sections.items():
        top[sec] = dataclasses.replace(getattr(s, sec), **sub_changes)
    return dataclasses.replace(s, **top)
