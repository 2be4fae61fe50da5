"""Pulse-induction metal-detector processing on ``(n_readings, n_gates)`` blocks.

Readings arrive at about 1 kHz; a target passes under a hand-swept head in a few tenths
of a second (1-5 Hz), while soil and temperature drift over tens of seconds. The steps
here are causal along readings (IIR filters with carried state, a baseline tracker),
and per-reading maps across gates (ground balance, normalisation, decay features).
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import scipy.signal as sps

from detect.blocks import MdBlock, MdHeader
from detect.dsp import kernels
from detect.dsp.base import Param, Step, register

# --------------------------------------------------------------------------- pure functions


def mains_frequencies(
    fs_hz: float, base_hz: float = 50.0, n_harmonics: int = 10, guard_hz: float = 1.0
) -> list[float]:
    """Where mains and its first ``n_harmonics`` harmonics land after sampling at ``fs_hz``.

    Harmonics above Nyquist fold back into the band; folded copies at DC or at Nyquist
    (where a notch would remove the signal itself) and duplicates are dropped.
    """
    out: list[float] = []
    for h in range(1, n_harmonics + 1):
        f = h * base_hz
        fa = abs(f - fs_hz * round(f / fs_hz))
        if fa < guard_hz or fa > fs_hz / 2 - guard_hz:
            continue
        if all(abs(fa - g) > 1e-6 for g in out):
            out.append(fa)
    return sorted(out)


def notch_sos(fs_hz: float, freqs_hz: list[float], q: float) -> np.ndarray:
    """Cascade of second-order IIR notches (one SOS row each)."""
    rows = []
    for f in freqs_hz:
        b, a = sps.iirnotch(f, q, fs=fs_hz)
        rows.append(np.concatenate([b, a]))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


def highpass_sos(cutoff_hz: float, order: int, fs_hz: float) -> np.ndarray:
    return np.asarray(sps.butter(order, cutoff_hz, btype="highpass", fs=fs_hz, output="sos"))


def soil_signature(gate_times_s: np.ndarray, exponent: float = 1.0) -> np.ndarray:
    """Unit-norm gate response of viscous (magnetic) soil, ``t^-exponent``."""
    g = np.asarray(gate_times_s, dtype=np.float64) ** (-exponent)
    return g / np.linalg.norm(g)


def ground_balance(data: np.ndarray, signature: np.ndarray) -> np.ndarray:
    """Remove from each reading its component along the soil ``signature``."""
    s = np.asarray(signature, dtype=np.float64)
    s = s / np.linalg.norm(s)
    x = np.asarray(data, dtype=np.float64)
    return x - (x @ s)[:, None] * s[None, :]


def estimate_soil_signature(data: np.ndarray) -> np.ndarray:
    """Dominant gate shape of (target-free, drift-removed) soil readings: first PC."""
    x = np.asarray(data, dtype=np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    s = vt[0]
    return s * np.sign(s.sum()) / np.linalg.norm(s)


def decay_features(data: np.ndarray, gate_times_s: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Per reading: [early amplitude, late amplitude, log-log slope, time constant (s)].

    The slope is d ln|x| / d ln t (about -1 for viscous soil; steeper late for metal); the
    time constant is -1/(d ln|x| / dt) of an exponential fit over the gates (least squares).
    """
    x = np.asarray(data, dtype=np.float64)
    t = np.asarray(gate_times_s, dtype=np.float64)
    y = np.log(np.abs(x) + eps)
    lt = np.log(t)
    lt_c = lt - lt.mean()
    t_c = t - t.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ lt_c / (lt_c @ lt_c)
    rate = (y - y.mean(axis=1, keepdims=True)) @ t_c / (t_c @ t_c)
    with np.errstate(divide="ignore"):
        tau = np.where(rate < 0, -1.0 / rate, np.inf)
    return np.stack([x[:, 0], x[:, -1], slope, np.minimum(tau, 1.0)], axis=1)


def _fs(block: MdBlock) -> float:
    return float(block.header.sample_rate_hz)


class _SosAlongReadings(Step):
    """An SOS filter along readings, per channel, with carried ``zi``."""

    sensor = "emi"

    def design(self, fs_hz: float) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        self.sos: np.ndarray | None = None
        self.zi: np.ndarray | None = None
        self.key: tuple[float, int] | None = None

    def process(self, block: MdBlock) -> MdBlock:
        key = (_fs(block), block.data.shape[1])
        if self.key != key:
            self.sos = self.design(key[0])
            self.zi = None
            self.key = key
        assert self.sos is not None
        if self.sos.shape[0] == 0 or block.n == 0:
            return block
        x = block.data.astype(np.float64)
        if self.zi is None:
            self.zi = sps.sosfilt_zi(self.sos)[:, :, None] * x[0][None, None, :]
        y, self.zi = sps.sosfilt(self.sos, x, axis=0, zi=self.zi)
        return block.with_data(y.astype(np.float32))


@register
class Notch(_SosAlongReadings):
    """Mains notch at ``base_hz`` and harmonics (folded below Nyquist), quality ``q``."""

    name = "notch"
    PARAMS: ClassVar[dict[str, Param]] = {
        "base_hz": Param(50.0, float, 0.0, lo_open=True),
        "n_harmonics": Param(10, int, 1, 100),
        "q": Param(30.0, float, 0.5, 1000.0),
    }

    def design(self, fs_hz: float) -> np.ndarray:
        f = mains_frequencies(fs_hz, self.p["base_hz"], self.p["n_harmonics"])
        return notch_sos(fs_hz, f, self.p["q"])


@register
class Highpass(_SosAlongReadings):
    """Butterworth high-pass along readings (drift removal by filtering)."""

    name = "highpass"
    PARAMS: ClassVar[dict[str, Param]] = {
        "cutoff_hz": Param(0.1, float, 0.0, lo_open=True),
        "order": Param(2, int, 1, 8),
    }

    def design(self, fs_hz: float) -> np.ndarray:
        if self.p["cutoff_hz"] >= fs_hz / 2:
            raise self.fail(f"parameter 'cutoff_hz' is not below Nyquist ({fs_hz / 2:g} Hz)")
        return highpass_sos(self.p["cutoff_hz"], self.p["order"], fs_hz)


@register
class Lowpass(_SosAlongReadings):
    """Butterworth low-pass along readings: keeps the 1-10 Hz of a target pass, drops the
    rest before the readings are put on a distance grid.
    """

    name = "lowpass"
    PARAMS: ClassVar[dict[str, Param]] = {
        "cutoff_hz": Param(25.0, float, 0.0, lo_open=True),
        "order": Param(2, int, 1, 8),
    }

    def design(self, fs_hz: float) -> np.ndarray:
        if self.p["cutoff_hz"] >= fs_hz / 2:
            raise self.fail(f"parameter 'cutoff_hz' is not below Nyquist ({fs_hz / 2:g} Hz)")
        return np.asarray(
            sps.butter(
                self.p["order"], self.p["cutoff_hz"], btype="lowpass", fs=fs_hz, output="sos"
            )
        )


@register
class Baseline(Step):
    """Drift removal by a slow baseline that holds while a target is under the head.

    Unlike a high-pass, it does not eat a slow pass nor leave an undershoot behind it.
    See :func:`detect.dsp.kernels.baseline_track`.
    """

    name = "baseline"
    sensor = "emi"
    PARAMS: ClassVar[dict[str, Param]] = {
        "tau_s": Param(2.0, float, 0.0, lo_open=True),
        "noise_tau_s": Param(10.0, float, 0.0, lo_open=True),
        "threshold": Param(5.0, float, 0.0, lo_open=True),
        "max_hold_s": Param(5.0, float, 0.0),
        "noise_floor": Param(1e-6, float, 0.0, lo_open=True),
    }

    def reset(self) -> None:
        self.base: np.ndarray | None = None
        self.noise = np.empty(0)
        self.scalars = np.zeros(2)
        self.last_held = np.empty(0, dtype=bool)

    def process(self, block: MdBlock) -> MdBlock:
        n_c = block.data.shape[1]
        if self.base is None or self.base.shape[0] != n_c:
            self.reset()
            self.base = np.zeros(n_c)
            self.noise = np.zeros(n_c)
        fs = _fs(block)
        out = np.empty(block.data.shape, dtype=np.float32)
        held = np.empty(block.n, dtype=np.bool_)
        kernels.baseline_track(
            np.ascontiguousarray(block.data), min(1.0, 1.0 / (self.p["tau_s"] * fs)),
            min(1.0, 1.0 / (self.p["noise_tau_s"] * fs)), float(self.p["threshold"]),
            round(self.p["max_hold_s"] * fs), round(self.p["tau_s"] * fs),
            float(self.p["noise_floor"]), self.base, self.noise, self.scalars, out, held,
        )  # fmt: skip
        self.last_held = held
        return block.with_data(out)


@register
class GroundBalance(Step):
    """Ground balance for viscous (magnetic) soil along the soil's gate response.

    The signature is ``t^-exponent`` of the header's gate times (viscous soil, exponent
    about 1), or an explicit ``signature`` list (e.g. from :func:`estimate_soil_signature`
    on a soil-only pass). ``mode: project`` removes that component outright, as a fixed
    detector ground balance does; it also takes the part of a small fast-decaying target
    that looks like soil, which costs sensitivity on quiet soil. ``mode: adaptive``
    whitens it instead: the component is shrunk by ``1 - sqrt(noise / soil variance)``,
    from running statistics over ``tau_s``, so it is left alone on quiet soil and removed
    on mineralised soil (see :func:`detect.dsp.kernels.adaptive_ground_balance`).
    """

    name = "ground_balance"
    sensor = "emi"
    PARAMS: ClassVar[dict[str, Param]] = {
        "mode": Param("adaptive", str, choices=("adaptive", "project")),
        "exponent": Param(1.0, float, 0.0, 3.0),
        "signature": Param(None, list, nullable=True),
        "tau_s": Param(5.0, float, 0.0, lo_open=True),
    }

    def reset(self) -> None:
        self._sig: np.ndarray | None = None
        self._state = np.zeros(0)
        self.last_beta = np.empty(0)

    def _signature(self, header: MdHeader, n_c: int) -> np.ndarray:
        if self.p["signature"] is not None:
            s = np.asarray(self.p["signature"], dtype=np.float64)
            if s.shape != (n_c,) or not np.all(np.isfinite(s)) or not np.any(s):
                raise self.fail(f"parameter 'signature' must be {n_c} finite numbers, not all 0")
        else:
            if header.gate_times_s is None:
                raise self.fail("the block has no gate_times_s; set parameter 'signature'")
            s = soil_signature(np.asarray(header.gate_times_s), self.p["exponent"])
        return s / np.linalg.norm(s)

    def process(self, block: MdBlock) -> MdBlock:
        n_c = block.data.shape[1]
        if self._sig is None or self._sig.shape[0] != n_c:
            self._sig = self._signature(block.header, n_c)
            self._state = np.zeros(4 + n_c)
        if self.p["mode"] == "project":
            p = (np.eye(n_c) - np.outer(self._sig, self._sig)).astype(np.float32)
            return block.with_data((block.data @ p).astype(np.float32))
        out = np.empty(block.data.shape, dtype=np.float32)
        beta = np.empty(block.n)
        alpha = min(1.0, 1.0 / (self.p["tau_s"] * _fs(block)))
        kernels.adaptive_ground_balance(
            np.ascontiguousarray(block.data), self._sig, alpha, self._state, out, beta
        )
        self.last_beta = beta
        return block.with_data(out)


@register
class Normalize(Step):
    """Divide by a fixed ``scale`` (one number or one per channel)."""

    name = "normalize"
    sensor = "emi"
    PARAMS: ClassVar[dict[str, Param]] = {"scale": Param(1.0, (float, list))}

    def process(self, block: MdBlock) -> MdBlock:
        s = np.asarray(self.p["scale"], dtype=np.float64)
        if s.ndim == 1 and s.shape[0] != block.data.shape[1]:
            raise self.fail(f"parameter 'scale' has {s.shape[0]} values for {block.data.shape[1]}")
        if np.any(s == 0) or not np.all(np.isfinite(s)):
            raise self.fail("parameter 'scale' must be finite and non-zero")
        return block.with_data((block.data / s).astype(np.float32))


@register
class DecayFeatures(Step):
    """Replace the gates by [early, late, log-log slope, time constant] per reading."""

    name = "decay_features"
    sensor = "emi"
    PARAMS: ClassVar[dict[str, Param]] = {"eps": Param(1e-9, float, 0.0, lo_open=True)}

    def process(self, block: MdBlock) -> MdBlock:
        if block.header.gate_times_s is None or len(block.header.gate_times_s) < 2:
            raise self.fail("needs at least two gates with gate_times_s in the header")
        f = decay_features(block.data, np.asarray(block.header.gate_times_s), self.p["eps"])
        header = replace(
            block.header,
            channel_names=("early", "late", "log_slope", "tau_s"),
            gate_times_s=None,
            kind="pi_decay_features",
        )
        return MdBlock(
            data=f.astype(np.float32), seq=block.seq, host_time_s=block.host_time_s,
            position_m=block.position_m, header=header,
        )  # fmt: skip
