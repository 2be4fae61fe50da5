"""Config composition (Hydra's compose API) against the typed schema, one line per error.

The schema is :mod:`detect.conf_schema` (Hydra structured configs in the ConfigStore):
Hydra refuses unknown keys, unknown group options and values of the wrong type while
composing; :func:`validate` then checks ranges, choices and the checks across keys. Every
refusal is a :class:`ConfigError` whose message is one line naming the key and what is
allowed (the command line prints it and exits with status 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detect import conf_schema as S
from detect.conf_schema import device_name_error

__all__ = [
    "ConfigError",
    "compose",
    "config_dir",
    "device_name_error",
    "group_options",
    "models_dir",
    "repo_root",
    "to_dict",
    "to_yaml",
    "validate",
]

S.register()


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
_FULL_KEY = re.compile(r"full_key: (\S+)")
_VALUE = re.compile(r"Value '(.*?)' (?:of type|is not)")


_NOT_GIVEN = object()


def _override_value(overrides: Sequence[str], key: str) -> Any:
    """The value given to ``key`` on the command line, as Hydra parses it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return _NOT_GIVEN
    for o in reversed(parsed):
        if o.key_or_group == key and not o.is_delete():
            return o.value()
    return _NOT_GIVEN


def _type_error(exc: BaseException, overrides: Sequence[str]) -> str | None:
    """A value OmegaConf could not convert to the schema's type, as one line."""
    from omegaconf.errors import ValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    m = _FULL_KEY.search(str(cause))
    if m is None:
        return None
    key = re.sub(r"\[\d+\]$", "", m.group(1))  # an item of a list: name the list
    value = _override_value(overrides, key)
    if value is _NOT_GIVEN:
        v = _VALUE.search(str(cause))
        value = v.group(1) if v else None
    expected = S.describe(key)
    return _message(key, value, "wrong type", expected or "another type")


def _one_line(exc: BaseException, overrides: Sequence[str]) -> str:
    typed = _type_error(exc, overrides)
    if typed is not None:
        return typed
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
    _check_overrides(overrides)
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


# --------------------------------------------------------------------------- checks


def _message(key: str, value: Any, why: str, expected: str | None) -> str:
    """One line naming the key, the value, what is wrong and what is allowed."""
    if why.startswith("is not one of"):  # the choices are the expectation
        why = f"expected {expected}"
    if why.startswith("expected") or not expected:
        return f"config key '{key}' = {value!r} is not allowed: {why}"
    return f"config key '{key}' = {value!r} is not allowed: {why}; expected {expected}"


def _check_overrides(overrides: Sequence[str]) -> None:
    """Refuse a bool or int key given another kind of value on the command line.

    OmegaConf converts what it can while merging (``3`` to ``True`` for a bool, ``1.0`` to
    ``1`` for an int), so these are checked as written, before composing.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return  # Hydra's own parse error is reported by compose
    for o in parsed:
        if o.is_delete() or o.is_sweep_override():
            continue
        leaf = S.find_leaf(o.key_or_group)
        if leaf is None or leaf.container is not None or leaf.spec.kind not in (bool, int):
            continue
        value = o.value()
        if isinstance(value, (bool, int, float)):
            why = leaf.spec.problem(value)
            if why is not None:
                raise ConfigError(_message(o.key_or_group, value, why, leaf.spec.describe()))


def _library_problems(plain: dict[str, Any]) -> str | None:
    """Checks that need the library: each DSP chain is built once (every step checks its
    parameters with the schema's Spec), the simulator settings are built once."""
    from detect.dsp.chain import build_chain
    from detect.sim.settings import SimConfigError, settings_from

    for sensor in ("gpr", "emi"):
        steps = (plain.get("dsp") or {}).get(sensor)
        try:
            build_chain(steps, sensor)
        except ValueError as exc:
            return f"config key 'dsp.{sensor}' = {steps!r}: {exc}"
    if isinstance(plain.get("sim"), dict):
        try:
            settings_from(plain["sim"])
        except SimConfigError as exc:
            return f"config: {exc}"
    return None


def validate(cfg: DictConfig) -> None:
    """Check every value against the schema; raise :class:`ConfigError` on the first bad one."""
    plain = {str(k): v for k, v in to_dict(cfg).items()}
    for key, value, why, expected in S.problems(plain):
        raise ConfigError(_message(key, value, why, expected))
    library = _library_problems(plain)
    if library is not None:
        raise ConfigError(library)


def to_dict(cfg: DictConfig) -> dict[str, Any]:
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
