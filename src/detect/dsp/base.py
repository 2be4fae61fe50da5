"""The processing-step contract: parameters checked on build, state carried between blocks.

A step is a small object built from a config mapping (``{step: name, ...params}``):

* ``process(block) -> block`` applies it to one block (same type), keeping whatever state
  a causal filter needs between blocks, so that any chunking gives the same output;
* ``reset()`` forgets that state;
* ``streaming`` is False for steps that need the whole profile (SVD, migration, F-K): a
  streaming chain refuses them;
* ``linear_map(n_samples, header)`` is given by steps that are a fixed linear map of each
  trace along fast time (dewow, band-pass, gain, resampling). The chain multiplies runs of
  such steps into one matrix, so four passes over the data become one matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from detect.blocks import GprBlock, GprHeader, MdBlock
from detect.conf_schema import Spec

Block = GprBlock | MdBlock


class DspError(ValueError):
    """A DSP step was configured or used wrongly; the message is one line."""


@dataclass(frozen=True)
class Param:
    """Default, type and range of one step parameter, checked by the config schema's
    :class:`~detect.conf_schema.Spec` (one checker for config keys and step parameters)."""

    default: Any
    kind: type | tuple[type, ...] = float
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    lo_open: bool = False
    hi_open: bool = False

    @property
    def spec(self) -> Spec:
        return Spec(
            kind=self.kind, lo=self.lo, hi=self.hi, lo_open=self.lo_open, hi_open=self.hi_open,
            choices=self.choices, nullable=self.nullable,
        )  # fmt: skip

    def check(self, step: str, name: str, value: Any) -> Any:
        spec = self.spec
        why = spec.problem(value)
        if why is not None:
            raise DspError(
                f"dsp step '{step}': parameter '{name}' = {value!r} {why} "
                f"(expected {spec.describe()})"
            )
        return spec.convert(value)


@dataclass(frozen=True)
class LinearMap:
    """``out = data @ matrix`` along fast time, plus the header of the result."""

    matrix: np.ndarray  # (n_in, n_out) float64
    dt_ns: float
    time_zero_ns: float


class Step:
    """Base class of every processing step (see the module docstring)."""

    name: ClassVar[str] = ""
    sensor: ClassVar[str] = "gpr"
    streaming: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            allowed = ", ".join(sorted(self.PARAMS)) or "none"
            raise DspError(
                f"dsp step '{self.name}': unknown parameter '{unknown[0]}' (allowed: {allowed})"
            )
        self.p: dict[str, Any] = {}
        for key, spec in self.PARAMS.items():
            self.p[key] = spec.check(self.name, key, params.get(key, spec.default))
        self.validate()
        self.reset()

    def validate(self) -> None:
        """Cross-parameter checks; raise :class:`DspError`."""

    def fail(self, message: str) -> DspError:
        return DspError(f"dsp step '{self.name}': {message}")

    def reset(self) -> None:
        """Forget the state carried between blocks."""

    def process(self, block: Any) -> Any:
        raise NotImplementedError

    def linear_map(self, n_samples: int, header: GprHeader) -> LinearMap | None:
        """The fast-time matrix of a per-trace linear step, or None."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.p.items())
        return f"{type(self).__name__}({args})"


STEPS: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    key = f"{cls.sensor}:{cls.name}"
    if key in STEPS:
        raise RuntimeError(f"dsp step {key} registered twice")
    STEPS[key] = cls
    return cls


def step_names(sensor: str) -> list[str]:
    return sorted(k.split(":", 1)[1] for k in STEPS if k.startswith(f"{sensor}:"))


def make_step(spec: Mapping[str, Any], sensor: str, index: int = 0) -> Step:
    if not isinstance(spec, Mapping):
        raise DspError(f"dsp {sensor} step #{index}: expected a mapping {{step: name, ...}}")
    params = dict(spec)
    name = params.pop("step", None)
    if not isinstance(name, str):
        raise DspError(f"dsp {sensor} step #{index}: missing 'step: <name>'")
    cls = STEPS.get(f"{sensor}:{name}")
    if cls is None:
        known = ", ".join(step_names(sensor))
        raise DspError(f"dsp {sensor} step #{index}: unknown step '{name}' (known: {known})")
    return cls(**params)


def gpr_time_ns(n_samples: int, header: GprHeader) -> np.ndarray:
    return np.arange(n_samples, dtype=np.float64) * header.dt_ns - header.time_zero_ns


def trace_spacing_m(block: GprBlock, dx_m: float | None, step: str) -> float:
    """The trace step of a profile: the parameter if given, else from regular positions."""
    if dx_m is not None:
        return float(dx_m)
    pos = np.asarray(block.position_m, dtype=np.float64)
    d = np.diff(pos)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.all(d > 0):
        raise DspError(
            f"dsp step '{step}': the block has no regular increasing positions; "
            "set parameter 'dx_m' or grid with detect.align.TrackGrid first"
        )
    dx = float(np.median(d))
    if np.max(np.abs(d - dx)) > 0.01 * dx:
        raise DspError(
            f"dsp step '{step}': trace spacing varies by more than 1 %; "
            "put it on a regular grid (detect.align.TrackGrid) first or set 'dx_m'"
        )
    return dx
