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
    Rule("input.format", str, nullable=True),
    Rule("output.dir", str, nullable=True),
    Rule("output.path", str, nullable=True),
    Rule("replay.speed", _NUM, 0, lo_open=True, nullable=True),
    Rule("source.kind", str),
    Rule("source.stall_timeout_s", _NUM, 0, lo_open=True),
    Rule("alarm.threshold", _NUM, 0, 1),
    Rule("alarm.hysteresis", _NUM, 0, 1),
    Rule("alarm.nms_radius_m", _NUM, 0),
    Rule("model.name", str),
    Rule("model.device", str, choices=("cpu", "cuda", "auto")),
    Rule("train.epochs", int, 1),
    Rule("train.batch_size", int, 1),
    Rule("train.lr", _NUM, 0, lo_open=True),
    Rule("sim.*_m", _NUM, nullable=True),
]


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
