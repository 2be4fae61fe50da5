"""Typed settings: the schema of every config key, its type, default and allowed range, once.

The dataclasses below are Hydra structured configs, registered in Hydra's ConfigStore
(:func:`register`). ``configs/config.yaml`` puts :class:`DetectConfig` first in its defaults
list, so Hydra merges the YAML groups *into* this schema: an unknown key, or a value of the
wrong type (``alarm.threshold=abc``), is refused while composing. What a type cannot say
(ranges, choices, checks across keys) is the :class:`Spec` in each field's metadata, checked
by :func:`problems`; the DSP step parameters (:class:`detect.dsp.base.Param`) are Specs too,
so config keys and step parameters go through one checker and read the same way.

Defaults: a field's default here equals the value in the YAML of the default option (a test
checks it); keys whose value is a choice between options (the source of each device, the
DSP chains, the model name) have no default here (``MISSING``): their YAML option is the one
place that says it. Source options differ by ``kind``; each kind's keys are a dataclass in
:data:`SOURCE_KINDS`, checked against the composed ``source`` node (and each ``parts`` entry
of ``kind: multi``).

This module imports only the standard library and OmegaConf/Hydra: every layer may use it.
"""

# ruff: noqa: RUF009  (val() builds a dataclasses.field: the schema's one way to declare a key)

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING as DC_MISSING
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from typing import Any

from omegaconf import MISSING

#: metadata key of a field's :class:`Spec`
SPEC = "spec"
_NUM = (int, float)


@dataclass(frozen=True)
class Spec:
    """Type and range of one value (a config key or a DSP step parameter).

    ``kind`` None takes the type from the dataclass annotation. Bounds are closed unless
    ``lo_open``/``hi_open``; ``choices`` lists the allowed values; ``check`` returns why a
    value (already of the right type and range) is wrong, or None.
    """

    kind: type | tuple[type, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None

    def kinds(self) -> tuple[type, ...]:
        if self.kind is None:
            return ()
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def convert(self, value: Any) -> Any:
        """Ints where a float is allowed become floats; tuples become lists."""
        kinds = self.kinds()
        if float in kinds and int not in kinds and type(value) is int:
            return float(value)
        if list in kinds and isinstance(value, tuple):
            return list(value)
        return value

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (e.g. "must be >= 1"), or None when it is."""
        if value is None:
            return None if self.nullable else "must not be null"
        value = self.convert(value)
        if self.choices is not None:
            if value not in self.choices:
                return "is not one of " + ", ".join(str(c) for c in self.choices if c is not None)
            return None
        kinds = self.kinds()
        if kinds:
            if isinstance(value, bool) and bool not in kinds:
                return f"must be {_kind_name(kinds)}"
            ok_num = float in kinds and isinstance(value, int) and not isinstance(value, bool)
            if not (isinstance(value, kinds) or ok_num):
                return f"must be {_kind_name(kinds)}"
        if isinstance(value, _NUM) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                return "must be finite"
            if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
                return f"must be {'>' if self.lo_open else '>='} {self.lo}"
            if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
                return f"must be {'<' if self.hi_open else '<='} {self.hi}"
        if self.check is not None:
            return self.check(value)
        return None

    def describe(self) -> str:
        """What is allowed, e.g. ``float in (0, 1]`` or ``one of cpu, cuda, auto``."""
        if self.choices is not None:
            txt = "one of " + ", ".join(str(c) for c in self.choices if c is not None)
        else:
            txt = _kind_name(self.kinds()) or "a value"
            lo_b, hi_b = ("(" if self.lo_open else "["), (")" if self.hi_open else "]")
            if self.lo is not None and self.hi is not None:
                txt += f" in {lo_b}{self.lo}, {self.hi}{hi_b}"
            elif self.lo is not None:
                txt += f" {'>' if self.lo_open else '>='} {self.lo}"
            elif self.hi is not None:
                txt += f" {'<' if self.hi_open else '<='} {self.hi}"
        if self.nullable:
            txt += " or null"
        return txt


def _kind_name(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def val(
    default: Any = MISSING,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field with a default and a :class:`Spec` (type and nullability come
    from the annotation)."""
    spec = Spec(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices, check=check)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={SPEC: spec})
    return field(default=default, metadata={SPEC: spec})


def section(cls: type) -> Any:
    return field(default_factory=cls)


# --------------------------------------------------------------------------- pure checks


def device_name_error(name: str) -> str | None:
    """Why ``name`` is not a training device name (auto, cpu, cuda, cuda:N), or None."""
    n = name.strip().lower()
    if n in ("auto", "cpu", "cuda") or (n.startswith("cuda:") and n[5:].isdigit()):
        return None
    return "expected auto, cpu, cuda or cuda:N"


def lever_arm_error(value: Any) -> str | None:
    """[forward_m, right_m], each a finite number within 5 m (like align.offsets_m)."""
    ok = len(value) == 2 and all(
        isinstance(v, _NUM) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= 5
        for v in value
    )
    return None if ok else "expected [forward_m, right_m], two numbers in [-5, 5]"


# --------------------------------------------------------------------------- top level


@dataclass
class RunSettings:
    #: stop after this long; None: until stopped (Ctrl-C), except the simulator demo
    duration_s: float | None = val(None, 0, lo_open=True)
    #: ``detect run`` on the simulator with no duration_s stops after this long (a demo)
    demo_duration_s: float = val(30.0, 0, lo_open=True)
    display: bool = val(True)
    bell: bool = val(True)
    record: bool = val(True)
    out_dir: str | None = val(None)
    needed_sensors: list[str] | None = val(None)
    threads: int = val(1, 1, 64)


@dataclass
class AlignSettings:
    position_source: str = val("odometer", choices=("odometer", "gps", "speed"))
    speed_m_s: float | None = val(None, 0, lo_open=True)
    stride_cells: int = val(1, 1, 64)
    #: each sensor's along-track offset; the yaml's emi entry follows the simulated head
    offsets_m: dict[str, float] = val({"gpr": 0.0, "emi": "${sim.head.emi_offset_m}"}, -5, 5)
    gps_antenna_m: list[float] = val([0.0, 0.0], check=lever_arm_error)


@dataclass
class InputSettings:
    path: str | None = val(None)
    format: str | None = val(None, choices=(None, "dzt", "dt1", "rd3", "gprmax", "segy", "session"))
    trace_spacing_m: float | None = val(None, 0, lo_open=True)
    #: a time-triggered file without a spacing: trace interval x this speed (engine.items)
    walking_speed_m_s: float = val(0.5, 0, 50.0, lo_open=True)
    channel: int = val(0, 0)


@dataclass
class OutputSettings:
    dir: str | None = val(None)
    path: str | None = val(None)


@dataclass
class ReplaySettings:
    speed: float | None = val(1.0, 0, lo_open=True)


@dataclass
class InfoSettings:
    json: bool = val(False)


@dataclass
class FaultSettings:
    corrupt_byte_rate: float = val(0.0, 0, 1)
    drop_frame_rate: float = val(0.0, 0, 1)
    garbage_rate_hz: float = val(0.0, 0)
    garbage_bytes: int = val(64, 1, 65536)
    stall_every_s: float = val(0.0, 0)
    stall_s: float = val(1.0, 0)
    unplug_every_s: float = val(0.0, 0)
    unplug_s: float = val(2.0, 0)
    seed: int = val(0, 0)


@dataclass
class ConsoleSettings:
    """The operator's browser console (``detect run`` / ``replay``; README "Console")."""

    #: None: on when run.display is (an operator's run), off for headless runs
    enabled: bool | None = val(None)
    host: str = val("127.0.0.1")
    port: int = val(8765, 0, 65535)
    #: required when host is not loopback; the page and the feed then need ?token=...
    token: str | None = val(None)
    #: open the page in the laptop's default browser at the start
    open_browser: bool = val(False)


@dataclass
class SoundSettings:
    """The console's sounds on the laptop's own speaker (``detect run`` / ``replay``;
    README "Console"): needs the ``sound`` extra (sounddevice + PortAudio)."""

    speaker: bool = val(False)
    volume: float = val(0.6, 0, 1)
    #: None: the default output; an index or part of a name (``python -m sounddevice``)
    device: str | None = val(None)


EMULATED_DEVICES = ("sensor_head", "ascii_emi", "magnetometer", "gps_nmea", "gps_ubx", "spidar")


@dataclass
class EmulateSettings:
    device: str = val("sensor_head", choices=EMULATED_DEVICES)
    transport: str = val("pty", choices=("pty", "tcp"))
    host: str = val("127.0.0.1")
    port: int = val(0, 0, 65535)
    link_path: str | None = val(None)
    feed: str = val("synthetic", choices=("synthetic", "sim", "session"))
    session_path: str | None = val(None)
    duration_s: float | None = val(None, 0, lo_open=True)
    speed: float = val(1.0, 0, lo_open=True)
    seed: int = val(0, 0)
    faults: FaultSettings = section(FaultSettings)


@dataclass
class WindowSettings:
    length_m: float = val(0.64, 0, 10, lo_open=True)
    grid_m: float = val(0.02, 0, 1, lo_open=True)
    gpr_samples: int = val(128, 8, 4096)
    emi_channels: int = val(8, 1, 64)
    halo_m: float = val(0.10, 0, 2)
    guard_m: float = val(0.25, 0, 2)

    @staticmethod
    def cross_check(node: Mapping[str, Any]) -> tuple[str, str] | None:
        if node["length_m"] < 2 * node["grid_m"]:
            return (
                "length_m",
                f"must cover at least 2 grid steps of window.grid_m ({node['grid_m']})",
            )
        if node["guard_m"] < node["halo_m"]:
            return "guard_m", f"must be >= window.halo_m ({node['halo_m']})"
        return None


@dataclass
class EvaluateSettings:
    detectors: list[str] = val(
        ["fused", "gpr_only", "emi_only", "gpr_energy_cfar", "emi_threshold"]
    )
    lanes: str | None = val(None)
    truth_csv: str | None = val(None)
    swept_width_m: float | None = val(None, 0, lo_open=True)
    seed: int = val(900000, 0)
    n_lanes: int = val(8, 1)
    calibration_seed: int = val(700000, 0)
    calibration_lanes: int = val(8, 0)
    calibration_fraction: float = val(0.5, 0, 0.9)
    soils: list[str] | None = val(None)
    halo_m: float = val(0.10, 0)
    halo_from: str = val("edge", choices=("edge", "centre"))
    cross_track: bool = val(False)
    confidence: float = val(0.95, 0.5, 0.999)
    target_pd: float = val(0.99, 0, 0.9999, lo_open=True)
    roc_guard_m: float = val(0.15, 0)
    ece_bins: int = val(10, 2, 100)
    n_thresholds: int = val(41, 3, 1000)
    depth_bins_m: list[float] = val([0.0, 0.05, 0.10, 0.15, 0.20, 0.30])
    metal_bins_g: list[float] = val([0.0, 1.0, 10.0, 100.0])
    plots: bool = val(True)


# --------------------------------------------------------------------------- groups


@dataclass
class DspSettings:
    """Processing chains: lists of ``{step: name, ...params}``; each step checks its own
    parameters with :class:`Spec` (detect.dsp.base.Param), so they have no defaults here."""

    gpr: list[Any] = val()
    emi: list[Any] = val()


@dataclass
class ModelSettings:
    name: str = val()
    device: str = val("cpu", choices=("cpu", "cuda", "auto"))
    width: int = val(16, 4, 128)
    dropout: float = val(0.1, 0, 0.9)
    input_check: str = val("refuse", choices=("refuse", "warn"))
    allow_interim: bool = val(False)


@dataclass
class CueSettings:
    """The early cue (``detect.alarms.EarlyCue``): "CUE" on the console and terminal as the
    head passes, before the window-based alarm is final; never an alarm, never recorded."""

    #: smoothed level over the sensor's background at which it cues (null: no cue from it)
    emi_factor: float | None = val(5.0, 1, 1000, lo_open=True)
    gpr_factor: float | None = val(10.0, 1, 1000, lo_open=True)
    #: level smoothing, background time constant, and data before the first cue
    smooth_s: float = val(0.04, 0, 1, lo_open=True)
    background_s: float = val(2.0, 0, 600, lo_open=True)
    warmup_s: float = val(1.0, 0, 600)
    #: re-arm once the level is under this share of factor x background ...
    rearm: float = val(0.5, 0, 1, lo_open=True, hi_open=True)
    #: ... and the ground has moved this far from the last cue
    spacing_m: float = val(0.25, 0, 10)


@dataclass
class AlarmSettings:
    threshold: float = val(0.1, 0, 1, lo_open=True)
    hysteresis: float = val(0.05, 0, 1, hi_open=True)
    nms_radius_m: float = val(0.2, 0)
    split_fraction: float = val(0.5, 0, 1, hi_open=True)
    #: "suspect" tier: peaks below the threshold but at or above this (null, or a floor at
    #: or above the threshold: no suspect tier)
    suspect_floor: float | None = val(0.03, 0, 1, lo_open=True, hi_open=True)
    #: an alarm names its class only when that class's probability reaches this
    class_min_prob: float = val(0.5, 0, 1)
    cue: CueSettings = section(CueSettings)

    @staticmethod
    def cross_check(node: Mapping[str, Any]) -> tuple[str, str] | None:
        if node["hysteresis"] >= node["threshold"]:
            return "hysteresis", f"must be below alarm.threshold ({node['threshold']})"
        return None


@dataclass
class SimHead:
    speed_m_s: float = val(0.5, 0)
    speed_variation: float = val(0.2, 0)
    height_min_m: float = val(0.02)
    height_max_m: float = val(0.10)
    wobble_m: float = val(0.02)
    emi_offset_m: float = val(0.3)


@dataclass
class SimGpr:
    centre_hz: float = val(1.5e9, 1e8, 5e9)
    n_samples: int = val(512, 16, 8192)
    dt_ns: float = val(0.0390625, 0, 1, lo_open=True)
    trace_rate_hz: float = val(100.0, 0, lo_open=True)
    time_zero_ns: float = val(1.5, 0)
    coupling: float = val(1.0, 0)
    ringing: float = val(0.25, 0)
    ringing_tau_ns: float = val(0.8, 0)
    beam_deg: float = val(35.0, -360, 360)
    noise: float = val(0.002, 0)
    gain_drift: float = val(0.02, 0)
    jitter_ns: float = val(0.002, 0)
    time_zero_drift_ns: float = val(0.01, 0)
    heterogeneity: bool = val(True)
    echo_gain_sigma: float = val(0.0, 0, 3)
    echo_phase_deg: float = val(0.0, 0, 180)
    spreading_power: float = val(1.0, 0, 2)


@dataclass
class SimEmi:
    rate_hz: float = val(1000.0, 0, lo_open=True)
    n_gates: int = val(8, 1, 64)
    gate_first_s: float = val(1.0e-5, 0, 1, lo_open=True)
    gate_last_s: float = val(1.0e-3, 0, 1, lo_open=True)
    coil_radius_m: float = val(0.10)
    noise_v: float = val(0.005, 0)
    hum_v: float = val(0.003, 0)
    mains_hz: float = val(50.0, 0, lo_open=True)
    drift_v: float = val(0.01, 0)
    soil_response: bool = val(True)


@dataclass
class SimGps:
    rate_hz: float = val(5.0, 0, lo_open=True)
    lat0_deg: float = val(44.8, -360, 360)
    lon0_deg: float = val(18.6, -360, 360)
    heading_deg: float = val(90.0, -360, 360)
    h_acc_m: float = val(0.02)


@dataclass
class SimOdometer:
    enabled: bool = val(True)
    scale_sigma: float = val(0.005, 0, 0.1)
    slip_per_m: float = val(0.05, 0, 100)
    slip_length_m: float = val(0.1, 0, 10)
    slip_fraction: float = val(0.3, -1, 1)
    tick_m: float = val(0.002, 0, 0.1)


TARGET_MIX = {
    "pmn": 1.0, "pmn2": 1.0, "pma2": 1.0, "pma3": 1.0, "vs50": 1.0, "type72": 1.0,
    "tm62m": 0.5, "tm62p": 0.5, "grenade40": 0.5, "mortar60": 0.3, "bomblet": 0.3,
    "hand_grenade": 0.3, "shrapnel": 2.0, "nail": 1.0, "wire": 0.5, "can": 0.5,
    "bottle_cap": 1.0, "casing": 1.0, "rock": 1.5, "root": 1.0, "void": 0.5, "brick": 0.5,
}  # fmt: skip


@dataclass
class SimConf:
    """The simulator (detect.sim.settings.SimSettings holds the same defaults, tested)."""

    #: analytic: the fast forward models; gprmax: full-wave scenes (the fdtd group)
    engine: str = val("analytic", choices=("analytic", "gprmax"))
    lane_length_m: float = val(10.0)
    lane_width_m: float = val(1.0)
    margin_m: float = val(0.8)
    min_spacing_m: float = val(0.6)
    target_y_max_m: float = val(0.1)
    n_targets_min: int = val(4, 0, 50)
    n_targets_max: int = val(8, 0, 50)
    n_lanes: int = val(10, 1)
    soils: list[str] = val(["dry_sand", "moist_sand", "wet_sand", "loam", "wet_clay", "laterite"])
    mix: dict[str, float] = val(TARGET_MIX, 0)
    head: SimHead = section(SimHead)
    gpr: SimGpr = section(SimGpr)
    emi: SimEmi = section(SimEmi)
    gps: SimGps = section(SimGps)
    odometer: SimOdometer = section(SimOdometer)


def _scheduler_error(value: str) -> str | None:
    ok = value in ("local-processes", "dask-local") or value.startswith("tcp://")
    return None if ok else "expected local-processes, dask-local or tcp://HOST:PORT"


@dataclass
class FdtdConf:
    """Full-wave (gprMax) scenes: ``detect simulate sim.engine=gprmax`` (docs/fullwave.md;
    detect.sim.fdtd.settings.FdtdSettings holds the same defaults, tested)."""

    mode: str = val("2d", choices=("2d", "3d"))
    dx_m: float = val(0.002, 0.0002, 0.02)
    time_window_ns: float = val(8.0, 0.5, 100)
    centre_hz: float = val(1.5e9, 1e8, 1e10)
    antenna_height_m: float = val(0.05, 0, 1, lo_open=True)
    antenna_offset_m: float = val(0.04, 0, 1)
    trace_step_m: float = val(0.014, 0, 1, lo_open=True)
    n_traces: int = val(40, 1, 10_000)
    margin_m: float = val(0.06, 0, 10)
    soil_depth_m: float = val(0.30, 0, 10, lo_open=True)
    air_m: float = val(0.05, 0, 10)
    cross_track_m: float = val(0.30, 0, 10, lo_open=True)
    pml_cells: int = val(10, 4, 40)
    soil_model: str = val("peplinski", choices=("peplinski", "homogeneous"))
    n_materials: int = val(20, 1, 200)
    fractal_dim: float = val(1.5, 1, 3)
    water_spread: float = val(0.3, 0, 1, hi_open=True)
    roughness: bool = val(True)
    moisture_layer_m: float | None = val(None, 0, 10, lo_open=True)
    output_dt_ns: float = val(0.02, 0, 1, lo_open=True)
    omp_threads: int = val(1, 1, 256)
    scheduler: str = val("local-processes", check=_scheduler_error)
    workers: int = val(0, 0, 1024)
    cache_dir: str | None = val(None)
    n_scenes: int = val(48, 1, 100_000)
    seed: int = val(500_000, 0)
    session: bool = val(True)


@dataclass
class TrainConf:
    epochs: int = val(14, 1)
    batch_size: int = val(64, 1)
    lr: float = val(0.002, 0, lo_open=True)
    weight_decay: float = val(1.0e-4, 0)
    patience: int = val(4, 1)
    modality_dropout: float = val(0.3, 0, 1)
    gain_db: float = val(6.0, 0, 40)
    time_shift_samples: int = val(2, 0, 64)
    noise: float = val(0.03, 0, 10)
    seed: int = val(0, 0)
    members: int = val(1, 1, 64)
    threads: int = val(0, 0, 256)
    device: str = val("auto", check=device_name_error)
    progress: bool = val(True)
    workers: int = val(0, 0, 64)
    lanes: int = val(60, 1)
    val_lanes: int = val(8, 1)
    cal_lanes: int = val(12, 1)
    test_lanes: int = val(24, 1)
    stride: int = val(1, 1, 64)
    label_halo_from: str = val("centre", choices=("centre", "edge"))
    label_guard_m: float | None = val(None, 0, 1)
    bg_keep: float = val(0.35, 0, 1, lo_open=True)
    clutter_share: float = val(0.25, 0, 1)
    soils: list[str] | None = val(["dry_sand", "wet_sand", "loam", "wet_clay", "laterite"])
    wavelet_jitter: float = val(0.2, 0, 1)
    stretch_jitter: float = val(0.03, 0, 0.5)
    radar_jitter: float = val(0.6, 0, 1)
    domain_jitter: float = val(0.5, 0, 1)
    edge_drop: float = val(0.2, 0, 1)
    mirror: float = val(0.0, 0, 1)
    sessions: list[str] | None = val(None)
    session_repeat: int = val(1, 1, 1000)
    cal_sessions: list[str] | None = val(None)
    val_sessions: list[str] | None = val(None)
    variants: list[str] | None = val(None)
    out_dir: str | None = val(None)
    models_dir: str | None = val(None)
    cache_dir: str | None = val(None)
    resume: str | None = val(None)
    export: bool = val(False)


@dataclass
class DetectConfig:
    """The composed config of every ``detect`` command (``detect <cmd> --cfg job``)."""

    seed: int = val(0, 0)
    log_level: str = val("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    run: RunSettings = section(RunSettings)
    align: AlignSettings = section(AlignSettings)
    input: InputSettings = section(InputSettings)
    output: OutputSettings = section(OutputSettings)
    replay: ReplaySettings = section(ReplaySettings)
    console: ConsoleSettings = section(ConsoleSettings)
    sound: SoundSettings = section(SoundSettings)
    info: InfoSettings = section(InfoSettings)
    emulate: EmulateSettings = section(EmulateSettings)
    window: WindowSettings = section(WindowSettings)
    evaluate: EvaluateSettings = section(EvaluateSettings)
    #: one of :data:`SOURCE_KINDS`, by its ``kind`` (checked by :func:`problems`)
    source: Any = MISSING
    dsp: DspSettings = section(DspSettings)
    model: ModelSettings = section(ModelSettings)
    alarm: AlarmSettings = section(AlarmSettings)
    sim: SimConf = section(SimConf)
    fdtd: FdtdConf = section(FdtdConf)
    train: TrainConf = section(TrainConf)


# --------------------------------------------------------------------------- sources
# Keys of each source kind (defaults: the YAML option of the device, hence MISSING here).


@dataclass
class _Link:
    stall_timeout_s: float = val(MISSING, 0, lo_open=True)
    reconnect: bool = val()
    threaded: bool = val()
    queue_size: int = val(MISSING, 1)


@dataclass
class _Serial(_Link):
    url: str = val()
    baudrate: int = val(MISSING, 1)


@dataclass
class SimSourceConf(_Link):
    kind: str = val()
    realtime: bool = val()
    n_lanes: int | None = val(MISSING, 1)
    block_s: float = val(MISSING, 0, 10, lo_open=True)
    seed: int = val(MISSING, 0)
    sim: Any = val()
    fault_gpr_after_s: float | None = val(MISSING, 0)
    fault_gpr_for_s: float | None = val(MISSING, 0)
    fault_emi_after_s: float | None = val(MISSING, 0)
    fault_emi_for_s: float | None = val(MISSING, 0)


@dataclass
class FileSourceConf(_Link):
    kind: str = val()
    path: str | None = val()
    format: str | None = val()
    trace_spacing_m: float | None = val(MISSING, 0, lo_open=True)
    channel: int = val(MISSING, 0)
    block_traces: int = val(MISSING, 1)
    speed: float | None = val(MISSING, 0, lo_open=True)


@dataclass
class ReplaySourceConf(_Link):
    kind: str = val()
    path: str | None = val()
    speed: float | None = val(MISSING, 0, lo_open=True)


@dataclass
class SensorHeadConf(_Serial):
    kind: str = val()
    sensors: list[str] = val()
    metres_per_tick: float = val(MISSING, 0, lo_open=True)
    odometer: bool = val()
    max_hold_s: float = val(MISSING, 0, 5)
    gate_times_s: list[float] | None = val()
    start_on_open: bool = val()


@dataclass
class AsciiEmiConf(_Serial):
    kind: str = val()
    preset: str | None = val(MISSING, choices=(None, "pi_lines", "magnetometer"))
    regex: str | None = val()
    channels: list[str] | None = val()
    sample_rate_hz: float = val(MISSING, 0, lo_open=True)
    time_field: int | None = val(MISSING, 0)
    time_unit_s: float = val(MISSING, 0, lo_open=True)
    scale: float = val()
    gates_us: list[float] | None = val()


@dataclass
class GpsNmeaConf(_Serial):
    kind: str = val()
    require_checksum: bool = val()


@dataclass
class GpsUbxConf(_Serial):
    kind: str = val()


@dataclass
class SpidarConf(_Link):
    kind: str = val()
    host: str = val()
    http_port: int = val(MISSING, 1, 65535)
    points_per_trace: int = val(MISSING, 1, 30000)
    time_sampling_interval_ps: int = val(MISSING, 50, 6400)
    point_stacks: int = val(MISSING, 1)
    period_s: float = val(MISSING, 0.00125, 60)
    trigger_mode: str = val(MISSING, choices=("Free", "Pulse"))
    window_time_shift_ps: int | None = val()
    first_break_point: int = val(MISSING, 0)
    frequency_mhz: float | None = val(MISSING, 0, lo_open=True)
    trace_spacing_m: float | None = val(MISSING, 0, lo_open=True)
    http_timeout_s: float = val(MISSING, 0, lo_open=True)


@dataclass
class MultiSourceConf(_Link):
    kind: str = val()
    #: name -> a source node of its own kind (checked like ``source``)
    parts: dict[str, Any] = val()


SOURCE_KINDS: dict[str, type] = {
    "sim": SimSourceConf,
    "file": FileSourceConf,
    "replay": ReplaySourceConf,
    "sensor_head": SensorHeadConf,
    "ascii_emi": AsciiEmiConf,
    "gps_nmea": GpsNmeaConf,
    "gps_ubx": GpsUbxConf,
    "spidar": SpidarConf,
    "multi": MultiSourceConf,
}

#: the config groups whose option is merged into each top-level key
GROUPS: dict[str, type] = {
    "dsp": DspSettings,
    "model": ModelSettings,
    "alarm": AlarmSettings,
    "sim": SimConf,
    "fdtd": FdtdConf,
    "train": TrainConf,
}


def register() -> None:
    """Store the schema in Hydra's ConfigStore (``detect_schema`` is named by config.yaml)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="detect_schema", node=DetectConfig)
    for group, cls in GROUPS.items():
        cs.store(group=f"schema/{group}", name="base", node=cls)
    for kind, cls in SOURCE_KINDS.items():
        cs.store(group="schema/source", name=kind, node=cls)


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Leaf:
    """A typed key of the schema: its dotted path, its full Spec and its default."""

    path: str
    spec: Spec
    default: Any
    container: type | None = None  # list or dict for list/dict-valued keys


def _spec_of(f: Field[Any], hint: Any) -> tuple[Spec, type | None]:
    """The field's Spec with the kind and nullability of its annotation."""
    spec: Spec = f.metadata.get(SPEC, Spec())
    nullable = False
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        nullable = type(None) in args
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    container: type | None = None
    kind: type | tuple[type, ...] | None
    if origin in (list, dict):
        container = origin
        inner = typing.get_args(hint)[-1]
        kind = inner if inner in (bool, int, float, str) else None
    elif hint in (bool, int, float, str):
        kind = hint
    else:
        kind = None  # Any
    return replace(spec, kind=kind, nullable=nullable or spec.nullable), container


def leaves(cls: type, prefix: str = "") -> Iterator[Leaf]:
    """Every typed key under ``cls`` (sections recursed), with its Spec and default."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        path = f"{prefix}{f.name}"
        hint = hints[f.name]
        if is_dataclass(hint):
            yield from leaves(hint, f"{path}.")  # type: ignore[arg-type]
            continue
        spec, container = _spec_of(f, hint)
        if f.default is not DC_MISSING:
            default = f.default
        elif f.default_factory is not DC_MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        yield Leaf(path, spec, default, container)


def find_leaf(path: str) -> Leaf | None:
    """The schema entry of a dotted key (``alarm.threshold``, ``align.offsets_m.emi``)."""
    for leaf in _ROOT_LEAVES:
        if path == leaf.path or (leaf.container is dict and path.startswith(leaf.path + ".")):
            return leaf
    return None


def value_problem(leaf: Leaf, value: Any) -> tuple[str, Any, str, str] | None:
    """(key, value, why, what is allowed) of the first part of ``value`` that the leaf's
    Spec refuses, or None."""
    spec = leaf.spec
    expected = leaf_description(leaf)
    if value is None or leaf.container is None:
        why = spec.problem(value)
        return None if why is None else (leaf.path, value, why, expected)
    if leaf.container is list:
        if not isinstance(value, (list, tuple)):
            return leaf.path, value, "must be a list", expected
        if spec.kind is not None:
            item = Spec(kind=spec.kind, choices=spec.choices)
            for v in value:
                if (why := item.problem(v)) is not None:
                    return leaf.path, value, f"item {v!r} {why}", expected
        why = None if spec.check is None else spec.check(value)
        return None if why is None else (leaf.path, value, why, expected)
    if not isinstance(value, Mapping):
        return leaf.path, value, "must be a mapping", expected
    for k, v in value.items():
        if (why := spec.problem(v)) is not None:
            return f"{leaf.path}.{k}", v, why, spec.describe()
    return None


def problems(cfg: Mapping[str, Any]) -> Iterator[tuple[str, Any, str, str]]:
    """(key, value, why, what is allowed) of each value the schema refuses in a resolved,
    composed config."""
    yield from section_problems(DetectConfig, cfg, "")
    src = cfg.get("source")
    if isinstance(src, Mapping):
        yield from source_problems(src, "source.")


def section_problems(cls: type, node: Mapping[str, Any], prefix: str) -> Iterator[Any]:
    """(key, value, why, what is allowed) for the values of ``node`` (a plain mapping of
    the keys of schema class ``cls``) that its Specs or its ``cross_check`` refuse."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name not in node:
            continue
        value = node[f.name]
        hint = hints[f.name]
        if is_dataclass(hint):
            if isinstance(value, Mapping):
                yield from section_problems(hint, value, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            continue
        spec, container = _spec_of(f, hint)
        got = value_problem(Leaf(f"{prefix}{f.name}", spec, None, container), value)
        if got is not None:
            yield got
            return  # cross checks assume the single values are fine
    cross = getattr(cls, "cross_check", None)
    if cross is not None and all(f.name in node for f in fields(cls)):
        got = cross(node)
        if got is not None:
            key = got[0]
            f = next(f for f in fields(cls) if f.name == key)
            spec, container = _spec_of(f, hints[key])
            allowed = leaf_description(Leaf(key, spec, None, container))
            yield f"{prefix}{key}", node[key], got[1], allowed


def source_problems(node: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any, str, str]]:
    """Check a source node by its ``kind``; keys the schema does not list are left to the
    source class (an override of an unknown key is already refused by Hydra)."""
    cls = SOURCE_KINDS.get(str(node.get("kind")))
    if cls is None:
        return  # the source registry names the known kinds
    yield from section_problems(cls, node, prefix)
    if cls is MultiSourceConf and isinstance(node.get("parts"), Mapping):
        for name, part in node["parts"].items():
            if isinstance(part, Mapping):
                yield from source_problems(part, f"{prefix}parts.{name}.")


def leaf_description(leaf: Leaf) -> str:
    if leaf.container is list:
        kind = _kind_name(leaf.spec.kinds()) or "values"
        return f"a list of {kind}" + (" or null" if leaf.spec.nullable else "")
    if leaf.container is dict:
        return f"a mapping of names to {leaf.spec.describe()}"
    return leaf.spec.describe()


def describe(key: str) -> str | None:
    """What the schema allows for a dotted key (None: not a typed key)."""
    leaf = find_leaf(key)
    if leaf is None:
        return None
    if leaf.container is dict and key != leaf.path:
        return leaf.spec.describe()
    return leaf_description(leaf)


_ROOT_LEAVES: list[Leaf] = list(leaves(DetectConfig))
