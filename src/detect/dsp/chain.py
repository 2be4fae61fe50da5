"""Processing chains built from config: ``build_chain(steps, sensor).process(block)``.

``steps`` is a list of ``{step: name, ...params}`` (``configs/dsp/*.yaml`` keys ``gpr`` and
``emi``). A streaming chain (the default) is causal and stateful: feeding a recording in
any chunking gives the same output as one call. Offline-only steps are refused there;
``build_chain(..., streaming=False)`` or :func:`process_offline` runs them on a whole profile.

Runs of consecutive per-trace linear GPR steps (dc_remove, dewow, bandpass, gain,
resample) are multiplied into one fast-time matrix when the chain first sees a trace
length, so they cost one matrix product together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader, MdBlock
from detect.dsp import emi as _emi  # noqa: F401  (registers the EMI steps)
from detect.dsp import gpr as _gpr  # noqa: F401  (registers the GPR steps)
from detect.dsp import migration as _migration  # noqa: F401  (registers offline GPR steps)
from detect.dsp.base import DspError, LinearMap, Step, make_step

SENSORS = ("gpr", "emi")


class FusedLinear:
    """Several fast-time linear steps applied as one matrix product."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self._cache: dict[tuple[int, float, float, float | None], tuple[np.ndarray, float, float]]
        self._cache = {}

    def reset(self) -> None:
        """Stateless along slow time; the matrices are kept."""

    def matrix(self, n_samples: int, header: GprHeader) -> tuple[np.ndarray, float, float]:
        key = (n_samples, header.dt_ns, header.time_zero_ns, header.antenna_hz)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        m = np.eye(n_samples)
        h = header
        n = n_samples
        for step in self.steps:
            lm = step.linear_map(n, h)
            assert isinstance(lm, LinearMap)
            m = m @ lm.matrix
            n = lm.matrix.shape[1]
            h = GprHeader(
                dt_ns=lm.dt_ns, time_zero_ns=lm.time_zero_ns, antenna_hz=h.antenna_hz,
                channel=h.channel, sensor=h.sensor,
            )  # fmt: skip
        hit = self._cache[key] = (
            np.ascontiguousarray(m, dtype=np.float32),
            h.dt_ns,
            h.time_zero_ns,
        )
        return hit

    def process(self, block: GprBlock) -> GprBlock:
        m, dt_ns, t0_ns = self.matrix(block.n_samples, block.header)
        out = np.empty((block.n, m.shape[1]), dtype=np.float32)
        np.matmul(block.data, m, out=out)
        return block.with_data(out, dt_ns=dt_ns, time_zero_ns=t0_ns)

    def __repr__(self) -> str:
        return f"FusedLinear({', '.join(s.name for s in self.steps)})"


class Chain:
    """A configured sequence of steps for one sensor; ``process`` one block at a time."""

    def __init__(self, steps: Sequence[Step], sensor: str, streaming: bool, fuse: bool = True):
        self.steps = list(steps)
        self.sensor = sensor
        self.streaming = streaming
        self.stages: list[Any] = []
        run: list[Step] = []
        for step in self.steps:
            linear = fuse and sensor == "gpr" and type(step).linear_map is not Step.linear_map
            if linear:
                run.append(step)
                continue
            self._flush(run)
            run = []
            self.stages.append(step)
        self._flush(run)

    def _flush(self, run: list[Step]) -> None:
        if run:
            self.stages.append(FusedLinear(run))

    def process(self, block: Any) -> Any:
        want = GprBlock if self.sensor == "gpr" else MdBlock
        if not isinstance(block, want):
            raise DspError(
                f"dsp {self.sensor} chain got a {type(block).__name__}, expected {want.__name__}"
            )
        for stage in self.stages:
            block = stage.process(block)
        return block

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        mode = "streaming" if self.streaming else "offline"
        return f"Chain({self.sensor}, {mode}: {', '.join(map(repr, self.stages))})"


def build_chain(
    steps: Iterable[Mapping[str, Any]] | None,
    sensor: str,
    streaming: bool = True,
    fuse: bool = True,
) -> Chain:
    """Build the chain for ``sensor`` ("gpr" or "emi") from ``[{step: name, ...}, ...]``.

    Raises :class:`DspError` (a ValueError) naming the step and parameter at fault, or an
    offline-only step in a streaming chain.
    """
    if sensor not in SENSORS:
        raise DspError(f"dsp chain: unknown sensor '{sensor}' (known: {', '.join(SENSORS)})")
    specs = _plain(steps) if steps is not None else []
    if not isinstance(specs, list):
        raise DspError(f"dsp {sensor} chain: expected a list of steps, got {type(specs).__name__}")
    built = []
    for i, spec in enumerate(specs):
        step = make_step(spec, sensor, i)
        if streaming and not step.streaming:
            raise DspError(
                f"dsp {sensor} step #{i} '{step.name}' is offline-only (it needs the whole "
                "profile) and cannot run in a streaming chain"
            )
        built.append(step)
    return Chain(built, sensor, streaming, fuse)


def process_offline(steps: Iterable[Mapping[str, Any]], block: Any, sensor: str) -> Any:
    """Run any steps, offline ones included, on one whole profile."""
    return build_chain(steps, sensor, streaming=False).process(block)


def _plain(obj: Any) -> Any:
    """OmegaConf containers to plain Python."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return list(obj) if isinstance(obj, tuple) else obj


def chains_from_config(cfg: Any, streaming: bool = True) -> dict[str, Chain]:
    """``{"gpr": Chain, "emi": Chain}`` from the composed config's ``dsp`` section."""
    dsp = cfg.dsp if hasattr(cfg, "dsp") else cfg["dsp"]
    return {s: build_chain(dsp.get(s) or [], s, streaming) for s in SENSORS}
