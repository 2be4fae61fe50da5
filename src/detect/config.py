"""Config composition (Hydra's compose API) and the schema checks Hydra doesn't do.

Hydra already refuses unknown keys (the composed config is in struct mode) and
unknown group options; :func:`validate` adds types and ranges for the keys the
code relies on, so a wrong value is one line naming the key and what is allowed.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """A config key or value is wrong; the message is one line for the user."""


def config_dir() -> Path:
    """Directory holding ``config.yaml`` and the config groups."""
    env = os.environ.get("DETECT_CONFIG_DIR")
    if env:
        return Path(env).resolve()
    return Path(str(resources.files("detect.conf"))).resolve()


def repo_root() -> Path | None:
    """The source checkout (for ``models/``), when running from one."""
    here = config_dir().parent
    return here if (here / "models").is_dir() else None


def models_dir() -> Path:
    env = os.environ.get("DETECT_MODELS_DIR")
    if env:
        return Path(env).resolve()
    root = repo_root()
    if root is not None:
        return root / "models"
    return Path(str(resources.files("detect"))).resolve() / "models"


_OVERRIDE_NOT_IN_STRUCT = re.compile(r"Could not override '([^']+)'")
_KEY_NOT_IN_STRUCT = re.compile(r"Key '([^']+)' is not in struct")
_MISSING_GROUP = re.compile(r"Could not find '([^']+)'")


def _one_line(exc: BaseException, overrides: Sequence[str]) -> str:
    msg = str(exc)
    m = _OVERRIDE_NOT_IN_STRUCT.search(msg)
    if m:
        return f"unknown config key '{m.group(1)}' (see --cfg job for the composed config)"
    m = _MISSING_GROUP.search(msg)
    if m:
        group = m.group(1).split("/")[0]
        opts = _group_options(group)
        hint = f"; available: {', '.join(opts)}" if opts else ""
        return f"unknown config option '{m.group(1)}'{hint}"
    m = _KEY_NOT_IN_STRUCT.search(msg)
    if m:
        return f"unknown config key '{m.group(1)}' (see --cfg job for the composed config)"
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    return f"bad config override ({' '.join(overrides)}): {first}"


def _group_options(group: str) -> list[str]:
    d = config_dir() / group
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.yaml"))


def group_options() -> dict[str, list[str]]:
    return {
        g: _group_options(g)
        for g in ("source", "dsp", "model", "alarm", "sim", "train", "experiment")
    }


def compose(overrides: Iterable[str] = (), config_name: str = "config") -> DictConfig:
    """Compose the config with Hydra and validate it. Raises :class:`ConfigError`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override '{o}' is not of the form key=value")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except Exception as exc:  # Hydra raises several unrelated exception types
        raise ConfigError(_one_line(exc, overrides)) from exc
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:
        raise ConfigError(f"cannot resolve config: {str(exc).splitlines()[0]}") from exc
    validate(cfg)
    return cfg


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Rule:
    """Type and range of the keys matching ``pattern`` (fnmatch on dotted paths)."""

    pattern: str
    kind: type | tuple[type, ...]
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    lo_open: bool = False
    check: Callable[[Any], str | None] | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        txt = " or ".join(k.__name__ for k in kinds)
        if self.lo is not None and self.hi is not None:
            txt += f" in {'(' if self.lo_open else '['}{self.lo}, {self.hi}]"
        elif self.lo is not None:
            txt += f" {'>' if self.lo_open else '>='} {self.lo}"
        elif self.hi is not None:
            txt += f" <= {self.hi}"
        if self.nullable:
            txt += " or null"
        return txt


def _ok(rule: Rule, value: Any) -> bool:
    if value is None:
        return rule.nullable
    if rule.choices is not None:
        return value in rule.choices
    kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if float in kinds and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kinds):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if rule.lo is not None and (value <= rule.lo if rule.lo_open else value < rule.lo):
            return False
        if rule.hi is not None and value > rule.hi:
            return False
    return True


_NUM = (int, float)

#: The keys the code relies on. Modules add their own with :func:`add_rules`.
RULES: list[Rule] = [
    Rule("seed", int, 0),
    Rule("log_level", str, choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Rule("run.duration_s", _NUM, 0, lo_open=True, nullable=True),
    Rule("run.display", bool),
    Rule("run.bell", bool),
    Rule("run.out_dir", str, nullable=True),
    Rule("run.record", bool),
    Rule("input.path", str, nullable=True),
    Rule("input.trace_spacing_m", _NUM, 0, lo_open=True, nullable=True),
    Rule("input.channel", int, 0),
    Rule(
        "input.format",
        str,
        nullable=True,
        choices=(None, "dzt", "dt1", "rd3", "gprmax", "segy", "session"),
    ),
    Rule("info.json", bool),
    Rule("source.block_traces", int, 1),
    Rule("output.dir", str, nullable=True),
    Rule("output.path", str, nullable=True),
    Rule("replay.speed", _NUM, 0, lo_open=True, nullable=True),
    Rule("source.kind", str),
    Rule("source.stall_timeout_s", _NUM, 0, lo_open=True),
    Rule("source.url", str),
    Rule("source.baudrate", int, 1),
    Rule("source.metres_per_tick", _NUM, 0, lo_open=True),
    Rule("source.max_hold_s", _NUM, 0, 5),
    Rule("source.host", str),
    Rule("source.http_port", int, 1, 65535),
    Rule("source.points_per_trace", int, 1, 30000),
    Rule("source.time_sampling_interval_ps", int, 50, 6400),
    Rule("source.period_s", _NUM, 0.00125, 60),
    Rule("source.trace_spacing_m", _NUM, 0, lo_open=True, nullable=True),
    Rule("source.preset", str, choices=("pi_lines", "magnetometer")),
    Rule("source.sample_rate_hz", _NUM, 0, lo_open=True),
    Rule("source.parts.*.url", str),
    Rule("source.parts.*.baudrate", int, 1),
    Rule("source.parts.*.stall_timeout_s", _NUM, 0, lo_open=True),
    Rule("source.queue_size", int, 1),
    Rule("source.threaded", bool),
    Rule(
        "emulate.device",
        str,
        choices=("sensor_head", "ascii_emi", "magnetometer", "gps_nmea", "gps_ubx", "spidar"),
    ),
    Rule("emulate.transport", str, choices=("pty", "tcp")),
    Rule("emulate.host", str),
    Rule("emulate.port", int, 0, 65535),
    Rule("emulate.link_path", str, nullable=True),
    Rule("emulate.feed", str, choices=("synthetic", "sim", "session")),
    Rule("emulate.session_path", str, nullable=True),
    Rule("emulate.duration_s", _NUM, 0, lo_open=True, nullable=True),
    Rule("emulate.speed", _NUM, 0, lo_open=True),
    Rule("emulate.seed", int, 0),
    Rule("emulate.faults.*_rate", _NUM, 0, 1),
    Rule("emulate.faults.garbage_rate_hz", _NUM, 0),
    Rule("emulate.faults.garbage_bytes", int, 1, 65536),
    Rule("emulate.faults.*_s", _NUM, 0),
    Rule("emulate.faults.seed", int, 0),
    Rule("alarm.threshold", _NUM, 0, 1),
    Rule("alarm.hysteresis", _NUM, 0, 1),
    Rule("alarm.nms_radius_m", _NUM, 0),
    Rule("alarm.split_fraction", _NUM, 0, 0.99),
    Rule("align.position_source", str, choices=("odometer", "gps", "speed")),
    Rule("align.speed_m_s", _NUM, 0, lo_open=True, nullable=True),
    Rule("align.stride_cells", int, 1, 64),
    Rule("align.offsets_m.*", _NUM, -5, 5),
    Rule("align.gps_antenna_m", list, check=lambda v: _lever_arm_error(v)),
    Rule("run.needed_sensors", list, nullable=True),
    Rule("run.threads", int, 1, 64),
    Rule("model.name", str),
    Rule("model.device", str, choices=("cpu", "cuda", "auto")),
    Rule("model.input_check", str, choices=("refuse", "warn")),
    Rule("model.allow_interim", bool),
    Rule("train.epochs", int, 1),
    Rule("train.batch_size", int, 1),
    Rule("train.lr", _NUM, 0, lo_open=True),
    Rule("train.weight_decay", _NUM, 0),
    Rule("train.patience", int, 1),
    Rule("train.modality_dropout", _NUM, 0, 1),
    Rule("train.gain_db", _NUM, 0, 40),
    Rule("train.time_shift_samples", int, 0, 64),
    Rule("train.noise", _NUM, 0, 10),
    Rule("train.workers", int, 0, 64),
    Rule("train.threads", int, 0, 256),
    Rule("train.device", str, check=lambda v: device_name_error(v)),
    Rule("train.lanes", int, 1),
    Rule("train.val_lanes", int, 1),
    Rule("train.cal_lanes", int, 1),
    Rule("train.test_lanes", int, 1),
    Rule("train.stride", int, 1, 64),
    Rule("train.label_halo_from", str, choices=("centre", "edge")),
    Rule("train.label_guard_m", _NUM, 0, 1, nullable=True),
    Rule("train.bg_keep", _NUM, 0, 1, lo_open=True),
    Rule("train.clutter_share", _NUM, 0, 1),
    Rule("train.wavelet_jitter", _NUM, 0, 1),
    Rule("train.stretch_jitter", _NUM, 0, 0.5),
    Rule("train.seed", int, 0),
    Rule("train.soils", list, nullable=True),
    Rule("train.variants", list, nullable=True),
    Rule("train.sessions", list, nullable=True),
    Rule("train.*_dir", str, nullable=True),
    Rule("train.resume", str, nullable=True),
    Rule("train.export", bool),
    Rule("train.progress", bool),
    Rule("model.width", int, 4, 128),
    Rule("model.dropout", _NUM, 0, 0.9),
    Rule("window.length_m", _NUM, 0, 10, lo_open=True),
    Rule("window.grid_m", _NUM, 0, 1, lo_open=True),
    Rule("window.gpr_samples", int, 8, 4096),
    Rule("window.emi_channels", int, 1, 64),
    Rule("window.halo_m", _NUM, 0, 2),
    Rule("window.guard_m", _NUM, 0, 2),
    Rule("sim.odometer.enabled", bool),
    Rule("sim.odometer.scale_sigma", _NUM, 0, 0.1),
    Rule("sim.odometer.slip_per_m", _NUM, 0, 100),
    Rule("sim.odometer.slip_length_m", _NUM, 0, 10),
    Rule("sim.odometer.slip_fraction", _NUM, -1, 1),
    Rule("sim.odometer.tick_m", _NUM, 0, 0.1),
    Rule("sim.*_m", _NUM, nullable=True),
    Rule("evaluate.detectors", list),
    Rule("evaluate.lanes", str, nullable=True),
    Rule("evaluate.truth_csv", str, nullable=True),
    Rule("evaluate.swept_width_m", _NUM, 0, lo_open=True, nullable=True),
    Rule("evaluate.seed", int, 0),
    Rule("evaluate.n_lanes", int, 1),
    Rule("evaluate.calibration_seed", int, 0),
    Rule("evaluate.calibration_lanes", int, 0),
    Rule("evaluate.calibration_fraction", _NUM, 0, 0.9),
    Rule("evaluate.soils", list, nullable=True),
    Rule("evaluate.halo_m", _NUM, 0),
    Rule("evaluate.halo_from", str, choices=("edge", "centre")),
    Rule("evaluate.cross_track", bool),
    Rule("evaluate.confidence", _NUM, 0.5, 0.999),
    Rule("evaluate.target_pd", _NUM, 0, 0.9999, lo_open=True),
    Rule("evaluate.roc_guard_m", _NUM, 0),
    Rule("evaluate.ece_bins", int, 2, 100),
    Rule("evaluate.n_thresholds", int, 3, 1000),
    Rule("evaluate.depth_bins_m", list),
    Rule("evaluate.metal_bins_g", list),
    Rule("evaluate.plots", bool),
    Rule("sim.n_lanes", int, 1),
    Rule("sim.n_targets_*", int, 0, 50),
    Rule("sim.soils", list, check=lambda v: _sim_names_error(v, "soils")),
    Rule("sim.mix.*", _NUM, 0),
    Rule("sim.gpr.centre_hz", _NUM, 1e8, 5e9),
    Rule("sim.gpr.n_samples", int, 16, 8192),
    Rule("sim.gpr.dt_ns", _NUM, 0, 1, lo_open=True),
    Rule("sim.*_hz", _NUM, 0, lo_open=True),
    Rule("sim.*_deg", _NUM, -360, 360),
    Rule("sim.gpr.heterogeneity", bool),
    Rule("sim.emi.soil_response", bool),
    Rule("sim.emi.n_gates", int, 1, 64),
    Rule("sim.emi.gate_*_s", _NUM, 0, 1, lo_open=True),
    Rule("sim.*", _NUM, 0),
    Rule("source.realtime", bool),
    Rule("source.n_lanes", int, 1, nullable=True),
    Rule("source.block_s", _NUM, 0, 10, lo_open=True),
    Rule("source.fault_*_s", _NUM, 0, nullable=True),
    Rule("dsp.gpr", list, check=lambda v: _dsp_chain_error(v, "gpr")),
    Rule("dsp.emi", list, check=lambda v: _dsp_chain_error(v, "emi")),
]


def _sim_names_error(names: Any, what: str) -> str | None:
    from detect.sim.soil import SOILS

    bad = [n for n in names if n not in SOILS]
    if not names:
        return f"sim.{what} must name at least one"
    return f"unknown soil {bad[0]!r}; available: {', '.join(SOILS)}" if bad else None


def device_name_error(name: str) -> str | None:
    """Why ``name`` is not a training device name (auto, cpu, cuda, cuda:N), or None."""
    n = name.strip().lower()
    if n in ("auto", "cpu", "cuda") or (n.startswith("cuda:") and n[5:].isdigit()):
        return None
    return "expected auto, cpu, cuda or cuda:N"


def _lever_arm_error(value: Any) -> str | None:
    """[forward_m, right_m], each a finite number within 5 m (like align.offsets_m)."""
    ok = len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= 5
        for v in value
    )
    return None if ok else "expected [forward_m, right_m], two numbers in [-5, 5]"


def _dsp_chain_error(steps: Any, sensor: str) -> str | None:
    """Build the streaming chain once so a bad step or parameter is one line at compose time."""
    from detect.dsp.chain import build_chain

    try:
        build_chain(steps, sensor)
    except ValueError as exc:
        return str(exc)
    return None


def add_rules(rules: Iterable[Rule]) -> None:
    RULES.extend(rules)


def _leaves(node: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for k in node:
            key = f"{prefix}.{k!s}" if prefix else str(k)
            try:
                v = node[k]
            except Exception:
                continue
            yield from _leaves(v, key)
    elif isinstance(node, ListConfig):
        yield prefix, OmegaConf.to_container(node)
    else:
        yield prefix, node


def validate(cfg: DictConfig, rules: Sequence[Rule] | None = None) -> None:
    """Check every leaf matched by a rule; raise :class:`ConfigError` on the first bad one."""
    rules = RULES if rules is None else rules
    for key, value in _leaves(cfg):
        for rule in rules:
            if fnmatch.fnmatchcase(key, rule.pattern):
                if not _ok(rule, value):
                    raise ConfigError(
                        f"config key '{key}' = {value!r} is not allowed: expected {rule.describe()}"
                    )
                if rule.check is not None and (why := rule.check(value)) is not None:
                    raise ConfigError(f"config key '{key}' = {value!r}: {why}")
                break


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
