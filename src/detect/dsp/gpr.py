"""GPR trace processing: pure functions on ``(n_traces, n_samples)`` arrays, and the steps.

Fast time (axis 1) is a whole trace, available at once, so per-trace filters along it may
be zero-phase; slow time (axis 0, trace after trace) is processed causally by the
streaming steps. Offline steps that need the whole profile are in :mod:`.migration` and
at the end of this module, and refuse to stream.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import scipy.fft as sp_fft
import scipy.signal as sps

from detect.blocks import GprBlock, GprHeader
from detect.dsp import kernels
from detect.dsp.base import LinearMap, Param, Step, gpr_time_ns, register

# --------------------------------------------------------------------------- pure functions


def pick_first_break(
    data: np.ndarray, threshold: float = 0.3, i0: int = 0, i1: int | None = None
) -> np.ndarray:
    """Sub-sample index per trace where ``|x - mean(x)|`` first reaches ``threshold`` of its
    peak within samples [i0, i1) (the first break of the direct wave). NaN for flat traces.
    """
    x = np.asarray(data, dtype=np.float64)
    n = x.shape[1]
    i1 = n if i1 is None else i1
    a = np.abs(x - x.mean(axis=1, keepdims=True))[:, i0:i1]
    peak = a.max(axis=1)
    level = threshold * peak
    above = a >= level[:, None]
    k = np.argmax(above, axis=1)
    rows = np.arange(x.shape[0])
    prev = a[rows, np.maximum(k - 1, 0)]
    cur = a[rows, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(k > 0, (level - prev) / (cur - prev), 1.0)
    pick = i0 + k - 1 + frac
    return np.where(peak > 0, pick, np.nan)


def shift_traces(data: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``out[j, k] = data[j, k + shifts[j]]`` with edge values beyond the trace."""
    n = data.shape[1]
    src = np.clip(np.arange(n)[None, :] + np.asarray(shifts, dtype=np.int64)[:, None], 0, n - 1)
    return np.take_along_axis(data, src, axis=1)


def remove_dc(data: np.ndarray, i0: int = 0, i1: int | None = None) -> np.ndarray:
    """Subtract each trace's mean over samples [i0, i1)."""
    return data - data[:, i0:i1].mean(axis=1, keepdims=True)


def dewow(data: np.ndarray, window: int) -> np.ndarray:
    """Subtract a centred running mean of ``window`` samples (shrinking at the ends)."""
    n = data.shape[1]
    half = window // 2
    c = np.zeros((data.shape[0], n + 1), dtype=np.float64)
    np.cumsum(data, axis=1, out=c[:, 1:])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    mean = (c[:, hi] - c[:, lo]) / (hi - lo)
    return data - mean


def bandpass_sos(low_hz: float, high_hz: float, order: int, fs_hz: float) -> np.ndarray:
    """Digital Butterworth band-pass (SOS) with edges at ``low_hz`` and ``high_hz``."""
    return np.asarray(
        sps.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs_hz, output="sos")
    )


def bandpass(
    data: np.ndarray,
    dt_ns: float,
    low_hz: float,
    high_hz: float,
    order: int = 4,
    zero_phase: bool = True,
) -> np.ndarray:
    """Butterworth band-pass along fast time; zero-phase (forward-backward) by default."""
    sos = bandpass_sos(low_hz, high_hz, order, 1e9 / dt_ns)
    if zero_phase:
        return np.asarray(sps.sosfiltfilt(sos, data, axis=1))
    return np.asarray(sps.sosfilt(sos, data, axis=1))


def gain_curve(
    time_ns: np.ndarray,
    power: float = 1.0,
    exp_db_per_ns: float = 0.0,
    t_ref_ns: float = 1.0,
    max_gain: float = 1e4,
) -> np.ndarray:
    """Spreading-and-exponential (SEC) gain ``(t/t_ref)^power * 10^(db/20 * t)``, >= 1.

    Time is from time zero; samples before ``t_ref_ns`` get gain 1.
    """
    t = np.maximum(np.asarray(time_ns, dtype=np.float64), t_ref_ns)
    g = (t / t_ref_ns) ** power * 10.0 ** (exp_db_per_ns * (t - t_ref_ns) / 20.0)
    return np.clip(g, 1.0, max_gain)


def agc(data: np.ndarray, window: int, eps: float = 1e-12) -> np.ndarray:
    """Automatic gain control: divide by the centred running RMS over ``window`` samples."""
    p = dewow_mean(np.asarray(data, dtype=np.float64) ** 2, window)
    return data / np.sqrt(p + eps)


def dewow_mean(data: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean (shrinking at the ends); ``dewow`` subtracts it."""
    return data - dewow(data, window)


def envelope(data: np.ndarray) -> np.ndarray:
    """Instantaneous amplitude ``|x + i H(x)|`` along fast time."""
    return np.abs(sps.hilbert(data, axis=1))


def centre_frequency_hz(data: np.ndarray, dt_ns: float) -> float | None:
    """The antenna's centre frequency measured from the data: the peak of the mean amplitude
    spectrum over traces, after each trace's mean and slow "wow" (below a tenth of the
    record's bandwidth) are removed. None for flat data."""
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 8 or x.shape[0] == 0:
        return None
    x = x - x.mean(axis=1, keepdims=True)
    n_fft = int(2 ** math.ceil(math.log2(4 * x.shape[1])))
    amp = np.abs(np.fft.rfft(x * np.hanning(x.shape[1])[None, :], n_fft, axis=1)).mean(axis=0)
    f_hz = np.fft.rfftfreq(n_fft, dt_ns * 1e-9)
    floor_hz = 2.0 / (x.shape[1] * dt_ns * 1e-9)
    amp[f_hz < floor_hz] = 0.0
    if not np.isfinite(amp).all() or amp.max() <= 0:
        return None
    k = max(1, n_fft // x.shape[1])
    smooth = np.convolve(amp, np.ones(k) / k, mode="same")
    return float(f_hz[int(np.argmax(smooth))])


def analytic(data: np.ndarray, upsample: int = 1) -> np.ndarray:
    """Analytic signal ``x + i H(x)`` along fast time, padded to twice the trace so the
    FFT's wrap-around does not fold the end of a trace onto its start; ``upsample`` > 1
    gives it band-limited-interpolated on a grid that many times finer."""
    x = np.asarray(data, dtype=np.float64)
    n = x.shape[1]
    spec = sp_fft.fft(x, 2 * n, axis=1)
    spec[:, 1:n] *= 2.0  # positive frequencies doubled, negative ones zeroed
    spec[:, n + 1 :] = 0.0
    if upsample > 1:
        padded = np.zeros((x.shape[0], 2 * n * upsample), np.complex128)
        padded[:, : n + 1] = spec[:, : n + 1]
        return np.asarray(sp_fft.ifft(padded, axis=1)[:, : n * upsample] * upsample)
    return np.asarray(sp_fft.ifft(spec, axis=1)[:, :n])


def direct_wave_phasors(
    data: np.ndarray, i0: int = 0, i1: int | None = None, upsample: int = 8
) -> np.ndarray:
    """Per trace, the complex amplitude of its strongest arrival (the direct wave of a raw
    radar trace): the analytic signal at the envelope peak within samples ``i0:i1``,
    after the trace's mean is removed. ``|z|`` is its amplitude, ``angle(z)`` its phase
    (0 for a zero-phase positive wavelet, +-pi/2 for a doublet, pi for a negative one).
    The analytic signal is taken ``upsample`` times finer than the samples, so the peak is
    not missed by up to half a sample (at 4 samples a period that would turn the phase by
    up to 45 degrees)."""
    x = np.asarray(data, dtype=np.float64)[:, i0:i1]
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan, np.complex128)
    a = analytic(x - x.mean(axis=1, keepdims=True), upsample)
    k = np.argmax(np.abs(a), axis=1)
    return a[np.arange(a.shape[0]), k]


def rotate_and_scale(data: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``Re(analytic(x) * conj(ref)) / |ref|^2`` per trace: amplitude in units of the
    reference, its phase turned to zero (``ref``: one complex value per trace; a trace
    with no reference yet, 0, becomes zeros: flat traces before the first arrival)."""
    a = analytic(data)
    r = np.asarray(ref, dtype=np.complex128)[:, None]
    mag2 = np.abs(r) ** 2
    return np.where(mag2 > 0, np.real(a * np.conj(r)) / np.where(mag2 > 0, mag2, 1.0), 0.0)


def resample_fast_time(data: np.ndarray, n_out: int) -> np.ndarray:
    """Resample each trace to ``n_out`` samples over the same window, with anti-alias FIR
    (polyphase, Kaiser window; zero-phase, so sample 0 stays at the same time).
    """
    n_in = data.shape[1]
    r = Fraction(n_out, n_in)
    y = sps.resample_poly(data, r.numerator, r.denominator, axis=1)
    return np.asarray(y[:, :n_out])


def background_mean(data: np.ndarray) -> np.ndarray:
    return data - data.mean(axis=0, keepdims=True)


def background_median(data: np.ndarray) -> np.ndarray:
    return data - np.median(data, axis=0, keepdims=True)


def svd_background(data: np.ndarray, n_components: int = 1) -> np.ndarray:
    """Remove the first ``n_components`` eigenimages (flat layers, ringing, direct wave)."""
    x = np.asarray(data, dtype=np.float64)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(n_components, s.size)
    return x - (u[:, :k] * s[:k]) @ vt[:k]


def background_moving(
    data: np.ndarray,
    position_m: np.ndarray | None = None,
    length_m: float = 1.0,
    length_traces: float = 100.0,
) -> np.ndarray:
    """Causal moving-background removal (see :func:`kernels.background_ema`)."""
    x = np.ascontiguousarray(data, dtype=np.float32)
    pos = np.full(x.shape[0], np.nan) if position_m is None else np.asarray(position_m, float)
    out = np.empty_like(x)
    kernels.background_ema(
        x, pos, float(length_m), float(length_traces), np.zeros(x.shape[1], np.float32),
        np.array([0.0, np.nan, 0.0]), out,
    )  # fmt: skip
    return out


def stack_traces(data: np.ndarray, n: int) -> np.ndarray:
    """Mean of each run of ``n`` consecutive traces (a trailing partial run is dropped)."""
    m = data.shape[0] // n
    return data[: m * n].reshape(m, n, data.shape[1]).mean(axis=1)


def _linear_matrix(fn: Any, n: int) -> np.ndarray:
    """Matrix ``M`` with ``fn(x) == x @ M`` for a per-trace linear ``fn``."""
    return np.asarray(fn(np.eye(n)), dtype=np.float64)


# --------------------------------------------------------------------------- streaming steps


@register
class TimeZero(Step):
    """Time-zero correction: first-break pick per trace, smoothed over traces, then shift.

    Picks are smoothed causally (EMA over ``smooth_traces``) so noise does not jitter the
    traces; the smoothed pick is moved to ``target_ns`` (header ``time_zero_ns`` becomes
    that time). Traces with no break (flat) keep the last pick, or the header's time zero.
    """

    name = "time_zero"
    PARAMS: ClassVar[dict[str, Param]] = {
        "threshold": Param(0.3, float, 0.0, 1.0, lo_open=True),
        "search_start_ns": Param(0.0, float, 0.0),
        "search_end_ns": Param(None, float, 0.0, lo_open=True, nullable=True),
        "smooth_traces": Param(20.0, float, 1.0),
        "target_ns": Param(1.0, float, 0.0),
        "max_shift_ns": Param(None, float, 0.0, nullable=True),
    }

    def reset(self) -> None:
        self.state = np.array([np.nan])
        self.last_picks_samples = np.empty(0)

    def process(self, block: GprBlock) -> GprBlock:
        h = block.header
        n = block.n_samples
        i0 = min(round(self.p["search_start_ns"] / h.dt_ns), n - 1)
        end = self.p["search_end_ns"]
        i1 = n if end is None else min(max(round(end / h.dt_ns), i0 + 1), n)
        target = round(self.p["target_ns"] / h.dt_ns)
        ms = self.p["max_shift_ns"]
        max_shift = n if ms is None else round(ms / h.dt_ns)
        out = np.empty_like(block.data)
        picks = np.empty(block.n)
        kernels.time_zero_stream(
            np.ascontiguousarray(block.data), i0, i1, float(self.p["threshold"]),
            1.0 / float(self.p["smooth_traces"]), target, max_shift,
            h.time_zero_ns / h.dt_ns, self.state, out, picks,
        )  # fmt: skip
        self.last_picks_samples = picks
        return block.with_data(out, time_zero_ns=target * h.dt_ns)


@register
class Background(Step):
    """Causal moving background removal, advancing with distance moved (see kernel)."""

    name = "background"
    PARAMS: ClassVar[dict[str, Param]] = {
        "length_m": Param(1.0, float, 0.0, lo_open=True),
        "length_traces": Param(100.0, float, 1.0),
    }

    def reset(self) -> None:
        self.bg: np.ndarray | None = None
        self.scalars = np.array([0.0, np.nan, 0.0])

    def process(self, block: GprBlock) -> GprBlock:
        n = block.n_samples
        if self.bg is None or self.bg.shape[0] != n:
            self.reset()
            self.bg = np.zeros(n, np.float32)
        out = np.empty_like(block.data)
        kernels.background_ema(
            np.ascontiguousarray(block.data), np.asarray(block.position_m, np.float64),
            float(self.p["length_m"]), float(self.p["length_traces"]), self.bg, self.scalars, out,
        )  # fmt: skip
        return block.with_data(out)


class _LinearStep(Step):
    """A fixed per-trace linear map along fast time, applied as one matrix product."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._cache: dict[tuple[int, float, float, float | None], LinearMap] = {}

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        raise NotImplementedError

    def out_header(self, n_samples: int, header: GprHeader) -> tuple[float, float]:
        return header.dt_ns, header.time_zero_ns

    def linear_map(self, n_samples: int, header: GprHeader) -> LinearMap:
        key = (n_samples, header.dt_ns, header.time_zero_ns, header.antenna_hz)
        lm = self._cache.get(key)
        if lm is None:
            m = _linear_matrix(lambda x: self.apply(x, header), n_samples)
            dt, t0 = self.out_header(n_samples, header)
            lm = self._cache[key] = LinearMap(m, dt, t0)
        return lm

    def process(self, block: GprBlock) -> GprBlock:
        """Direct (unfused) application; a chain applies the matrix instead."""
        out = self.apply(block.data.astype(np.float64), block.header).astype(np.float32)
        dt, t0 = self.out_header(block.n_samples, block.header)
        return block.with_data(out, dt_ns=dt, time_zero_ns=t0)


@register
class DcRemove(_LinearStep):
    """Subtract each trace's mean (over the whole trace, or ``[start_ns, end_ns)``)."""

    name = "dc_remove"
    PARAMS: ClassVar[dict[str, Param]] = {
        "start_ns": Param(0.0, float, 0.0),
        "end_ns": Param(None, float, 0.0, lo_open=True, nullable=True),
    }

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        i0 = round(self.p["start_ns"] / header.dt_ns)
        e = self.p["end_ns"]
        i1 = None if e is None else max(round(e / header.dt_ns), i0 + 1)
        return remove_dc(data, i0, i1)


@register
class Dewow(_LinearStep):
    """Remove the low-frequency "wow" with a centred running mean of ``window_ns``."""

    name = "dewow"
    PARAMS: ClassVar[dict[str, Param]] = {
        "window_ns": Param(2.0, float, 0.0, lo_open=True),
        "window_periods": Param(None, float, 0.0, lo_open=True, nullable=True),
    }

    def window_ns(self, header: GprHeader) -> float:
        """``window_periods`` antenna periods when set (the instrument's own scale), else
        ``window_ns``."""
        periods = self.p["window_periods"]
        if periods is None:
            return float(self.p["window_ns"])
        return float(periods) * 1e9 / _antenna_hz(self, header)

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        w = max(1, round(self.window_ns(header) / header.dt_ns) | 1)
        return dewow(data, w)


@register
class Bandpass(_LinearStep):
    """Butterworth band-pass along fast time (SOS; zero-phase unless ``zero_phase: false``)."""

    name = "bandpass"
    PARAMS: ClassVar[dict[str, Param]] = {
        "low_hz": Param(500e6, float, 0.0, lo_open=True),
        "high_hz": Param(3e9, float, 0.0, lo_open=True),
        "low_rel": Param(None, float, 0.0, lo_open=True, nullable=True),
        "high_rel": Param(None, float, 0.0, lo_open=True, nullable=True),
        "order": Param(4, int, 1, 12),
        "zero_phase": Param(True, bool),
    }
    NYQUIST_SHARE = 0.9

    def validate(self) -> None:
        lo, hi = self.p["low_rel"], self.p["high_rel"]
        if (lo is None) != (hi is None):
            raise self.fail("parameters 'low_rel' and 'high_rel' go together")
        if lo is not None and lo >= hi:
            raise self.fail("parameter 'low_rel' must be below 'high_rel'")
        if lo is None and self.p["low_hz"] >= self.p["high_hz"]:
            raise self.fail("parameter 'low_hz' must be below 'high_hz'")

    def corners_hz(self, header: GprHeader) -> tuple[float, float]:
        """The pass band for this instrument: relative to its centre frequency when
        ``low_rel``/``high_rel`` are set; the top corner is held below Nyquist (a band-pass
        above the sampled band is a high-pass), never an error for a valid file."""
        if self.p["low_rel"] is not None:
            f_hz = _antenna_hz(self, header)
            lo, hi = self.p["low_rel"] * f_hz, self.p["high_rel"] * f_hz
        else:
            lo, hi = float(self.p["low_hz"]), float(self.p["high_hz"])
        hi = min(hi, self.NYQUIST_SHARE * 0.5e9 / header.dt_ns)
        if lo >= hi:
            raise self.fail(
                f"the pass band {lo / 1e6:.0f}-{hi / 1e6:.0f} MHz is empty for a "
                f"{header.dt_ns:g} ns sample interval (Nyquist {0.5e3 / header.dt_ns:.0f} MHz)"
            )
        return lo, hi

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        lo, hi = self.corners_hz(header)
        return bandpass(data, header.dt_ns, lo, hi, self.p["order"], self.p["zero_phase"])


@register
class Gain(_LinearStep):
    """Time gain from time zero: ``(t/t_ref)^power * 10^(exp_db_per_ns * t / 20)``."""

    name = "gain"
    PARAMS: ClassVar[dict[str, Param]] = {
        "power": Param(1.0, float, 0.0, 4.0),
        "exp_db_per_ns": Param(0.0, float, 0.0, 20.0),
        "t_ref_ns": Param(1.0, float, 0.0, lo_open=True),
        "max_gain": Param(1e4, float, 1.0),
    }

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        g = gain_curve(
            gpr_time_ns(data.shape[1], header), self.p["power"], self.p["exp_db_per_ns"],
            self.p["t_ref_ns"], self.p["max_gain"],
        )  # fmt: skip
        return data * g[None, :]


@register
class Resample(_LinearStep):
    """Resample each trace onto ``n_samples`` over the same time window (anti-aliased)."""

    name = "resample"
    PARAMS: ClassVar[dict[str, Param]] = {"n_samples": Param(128, int, 8, 65536)}

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        return resample_fast_time(data, self.p["n_samples"])

    def out_header(self, n_samples: int, header: GprHeader) -> tuple[float, float]:
        return header.dt_ns * n_samples / self.p["n_samples"], header.time_zero_ns


@register
class TimeAxis(_LinearStep):
    """Each trace onto the model's time axis in physical units: ``n_samples`` from
    ``start_ns`` to ``end_ns`` relative to time zero, whatever the instrument's sample
    interval. Anti-aliased (zero-phase low-pass at 0.8 x the output Nyquist) when the
    output is coarser, cubic interpolation otherwise. Output samples the record does not
    reach are NaN: the model's validity mask (a short record is scored on what it has)."""

    name = "time_axis"
    PARAMS: ClassVar[dict[str, Param]] = {
        "start_ns": Param(-1.0, float),
        "end_ns": Param(19.0, float),
        "n_samples": Param(256, int, 8, 65536),
    }

    def validate(self) -> None:
        if self.p["end_ns"] <= self.p["start_ns"]:
            raise self.fail("parameter 'end_ns' must be after 'start_ns'")

    def out_dt_ns(self) -> float:
        return float(self.p["end_ns"] - self.p["start_ns"]) / self.p["n_samples"]

    def apply(self, data: np.ndarray, header: GprHeader) -> np.ndarray:
        from scipy.interpolate import CubicSpline

        n_in = data.shape[1]
        dt_out = self.out_dt_ns()
        x = np.asarray(data, dtype=np.float64)
        if dt_out > header.dt_ns * 1.0001:
            cut_hz = 0.8 * 0.5e9 / dt_out
            sos = sps.butter(8, cut_hz, btype="lowpass", fs=1e9 / header.dt_ns, output="sos")
            x = sps.sosfiltfilt(sos, x, axis=1)
        t_in = np.arange(n_in) * header.dt_ns - header.time_zero_ns
        t_out = self.p["start_ns"] + np.arange(self.p["n_samples"]) * dt_out
        if n_in < 4:
            return np.full((x.shape[0], t_out.size), np.nan)
        return CubicSpline(t_in, x, axis=1, extrapolate=False)(t_out)

    def out_header(self, n_samples: int, header: GprHeader) -> tuple[float, float]:
        return self.out_dt_ns(), -float(self.p["start_ns"])


@register
class DirectWaveReference(Step):
    """Puts every radar's amplitudes and phase in one frame: the direct wave's.

    The raw units of a radar are its own (16- or 32-bit counts, volts, V/m of a
    simulation) and so is its wavelet's phase (a Ricker, a doublet, an inverted antenna).
    The model sees data divided by the amplitude of the direct wave (transmitter to
    receiver, the strongest arrival of a raw trace) and turned by its phase, so that the
    direct wave is a zero-phase positive pulse of height 1 and a reflection keeps its sign
    relative to it (metal, and a plastic case in wet soil, of opposite signs). The
    reference is measured on the first ``n_traces`` traces of the stream that have an
    arrival (amplitude: the median; phase: the mean direction), trace by trace: trace
    ``i`` uses those up to ``i``, so any chunking gives the same output; then it is
    fixed. Flat traces before the first arrival become zeros.
    """

    name = "reference"
    PARAMS: ClassVar[dict[str, Param]] = {
        "n_traces": Param(16, int, 1),
        "search_start_ns": Param(0.0, float, 0.0),
        "search_end_ns": Param(None, float, 0.0, lo_open=True, nullable=True),
    }

    def reset(self) -> None:
        self.seen = np.empty(0, np.complex128)
        self.reference: complex | None = None

    def process(self, block: GprBlock) -> GprBlock:
        if block.n == 0:
            return block
        n_ref = int(self.p["n_traces"])
        if self.seen.size < n_ref:
            h = block.header
            i0 = min(round(self.p["search_start_ns"] / h.dt_ns), block.n_samples - 1)
            end = self.p["search_end_ns"]
            i1 = None if end is None else max(round(end / h.dt_ns), i0 + 1)
            z = direct_wave_phasors(block.data, i0, i1)
            ok = np.isfinite(z) & (np.abs(z) > 0)
            count = np.minimum(self.seen.size + np.cumsum(ok), n_ref)
            self.seen = np.concatenate([self.seen, z[ok]])[:n_ref]
            table = prefix_references(self.seen)
            refs = np.where(count > 0, table[np.maximum(count - 1, 0)], 0)
            self.reference = complex(table[-1]) if table.size else None
        else:
            refs = np.full(block.n, self.reference, np.complex128)
        return block.with_data(rotate_and_scale(block.data, refs).astype(np.float32))


def prefix_references(z: np.ndarray) -> np.ndarray:
    """Entry ``k``: the reference from ``z[0..k]`` (median amplitude, mean direction)."""
    m = z.size
    if m == 0:
        return np.zeros(0, np.complex128)
    tri = np.tril(np.ones((m, m), bool))
    amp = np.nanmedian(np.where(tri, np.abs(z)[None, :], np.nan), axis=1)
    unit = z / np.abs(z)
    return np.asarray(amp * np.exp(1j * np.angle(np.where(tri, unit[None, :], 0).sum(axis=1))))


@register
class CentreFrequency(Step):
    """Sets the header's antenna centre frequency where the instrument gives none (or,
    with ``source: measured``, always), measured once from the data's spectrum
    (:func:`centre_frequency_hz`) and kept for the rest of the stream. Steps set relative
    to the centre frequency (band-pass ``*_rel``, dewow ``window_periods``) read it."""

    name = "centre_frequency"
    PARAMS: ClassVar[dict[str, Param]] = {
        "source": Param("header", str, choices=("header", "measured")),
        "n_traces": Param(16, int, 1),
    }

    def reset(self) -> None:
        self.measured_hz: float | None = None

    def process(self, block: GprBlock) -> GprBlock:
        """Measured on the first ``n_traces`` traces of the first non-empty block (a
        stream cut into blocks of at least that many traces gives the same output)."""
        h = block.header
        if h.antenna_hz is not None and self.p["source"] == "header":
            return block
        if self.measured_hz is None and block.n:
            self.measured_hz = centre_frequency_hz(block.data[: self.p["n_traces"]], h.dt_ns)
        f_hz = self.measured_hz or h.antenna_hz
        if f_hz is None:
            return block
        return block.with_data(block.data, antenna_hz=f_hz)


def _antenna_hz(step: Step, header: GprHeader) -> float:
    if header.antenna_hz is None:
        raise step.fail(
            "needs the antenna centre frequency: the file gives none (put a "
            "'centre_frequency' step before it to measure it from the data)"
        )
    return float(header.antenna_hz)


@register
class Agc(Step):
    """Automatic gain control (running RMS over ``window_ns``); destroys true amplitudes."""

    name = "agc"
    PARAMS: ClassVar[dict[str, Param]] = {
        "window_ns": Param(2.0, float, 0.0, lo_open=True),
        "eps": Param(1e-12, float, 0.0),
    }

    def process(self, block: GprBlock) -> GprBlock:
        w = max(1, round(self.p["window_ns"] / block.header.dt_ns) | 1)
        return block.with_data(agc(block.data, w, self.p["eps"]).astype(np.float32))


@register
class Envelope(Step):
    """Instantaneous amplitude (Hilbert envelope) along fast time."""

    name = "envelope"

    def process(self, block: GprBlock) -> GprBlock:
        return block.with_data(envelope(block.data).astype(np.float32))


@register
class Stack(Step):
    """Mean of each ``n_traces`` consecutive traces; the remainder waits for the next block."""

    name = "stack"
    PARAMS: ClassVar[dict[str, Param]] = {"n_traces": Param(4, int, 1, 1024)}

    def reset(self) -> None:
        self.pending: GprBlock | None = None

    def process(self, block: GprBlock) -> GprBlock:
        if self.pending is not None and self.pending.n:
            p = self.pending
            block = GprBlock(
                data=np.concatenate([p.data, block.data]),
                seq=np.concatenate([p.seq, block.seq]),
                host_time_s=np.concatenate([p.host_time_s, block.host_time_s]),
                position_m=np.concatenate([p.position_m, block.position_m]),
                header=block.header,
            )
        n = self.p["n_traces"]
        m = block.n // n
        used = m * n
        self.pending = GprBlock(
            data=block.data[used:], seq=block.seq[used:], host_time_s=block.host_time_s[used:],
            position_m=block.position_m[used:], header=block.header,
        )  # fmt: skip
        return GprBlock(
            data=stack_traces(block.data, n).astype(np.float32),
            seq=block.seq[n - 1 : used : n],
            host_time_s=block.host_time_s[:used].reshape(m, n).mean(axis=1),
            position_m=block.position_m[:used].reshape(m, n).mean(axis=1),
            header=block.header,
        )


# --------------------------------------------------------------------------- offline steps


class _OfflineStep(Step):
    streaming = False


@register
class BackgroundMean(_OfflineStep):
    """Subtract the mean trace of the whole profile (offline)."""

    name = "background_mean"

    def process(self, block: GprBlock) -> GprBlock:
        return block.with_data(background_mean(block.data).astype(np.float32))


@register
class BackgroundMedian(_OfflineStep):
    """Subtract the median trace of the whole profile (offline; robust to strong targets)."""

    name = "background_median"

    def process(self, block: GprBlock) -> GprBlock:
        return block.with_data(background_median(block.data).astype(np.float32))


@register
class SvdBackground(_OfflineStep):
    """Remove the first eigenimages of the whole profile (offline)."""

    name = "svd_background"
    PARAMS: ClassVar[dict[str, Param]] = {"n_components": Param(1, int, 1, 64)}

    def process(self, block: GprBlock) -> GprBlock:
        return block.with_data(
            svd_background(block.data, self.p["n_components"]).astype(np.float32)
        )
