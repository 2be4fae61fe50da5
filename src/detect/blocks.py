"""Core data types that flow through the pipeline.

Data moves in *blocks*, never one object per sample: a GPR block is an
``(n_traces, n_samples)`` float32 array plus a small header and per-trace arrays,
an MD (metal detector / EMI) block is ``(n_readings, n_channels)`` with the same
per-reading arrays. Positions are along-track metres, NaN where not yet known
(``align`` fills them in).
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.integer[Any]]

#: Classes the models and the simulator agree on, in this order.
CLASSES: tuple[str, ...] = (
    "background",
    "ap_mine",
    "at_mine",
    "uxo",
    "metal_clutter",
    "nonmetal_clutter",
)
#: Classes that count as "a mine is there" for P(mine) and for scoring.
THREAT_CLASSES: frozenset[str] = frozenset({"ap_mine", "at_mine", "uxo"})


class BlockError(ValueError):
    """A block was built with inconsistent arrays or header values."""


def _per_item(name: str, values: Any, n: int, dtype: Any, fill: Any = None) -> np.ndarray:
    if values is None:
        if fill is None:
            raise BlockError(f"{name} is required")
        return np.full(n, fill, dtype=dtype)
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise BlockError(f"{name} has shape {arr.shape}, expected ({n},)")
    return arr


@dataclass(frozen=True)
class GprHeader:
    """What a GPR trace needs to be interpreted.

    ``dt_ns`` is the sample interval, ``time_zero_ns`` the time of the
    direct-wave/ground-coupling zero within the trace (0 when unknown or already
    corrected), ``antenna_hz`` the nominal centre frequency (None if unknown).
    """

    dt_ns: float
    time_zero_ns: float = 0.0
    antenna_hz: float | None = None
    channel: int = 0
    sensor: str = "gpr"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt_ns) and self.dt_ns > 0):
            raise BlockError(f"GprHeader.dt_ns must be a positive finite number, got {self.dt_ns}")
        if not math.isfinite(self.time_zero_ns):
            raise BlockError(f"GprHeader.time_zero_ns must be finite, got {self.time_zero_ns}")
        if self.antenna_hz is not None and not (self.antenna_hz > 0):
            raise BlockError(f"GprHeader.antenna_hz must be > 0 or None, got {self.antenna_hz}")


@dataclass(frozen=True)
class MdHeader:
    """Metal-detector channel description.

    For pulse induction each channel is a decay-time gate; ``gate_times_s`` gives
    the gate centre times after the transmitter turn-off (same length as the
    channel count). ``sample_rate_hz`` is the nominal reading rate.
    """

    sample_rate_hz: float
    channel_names: tuple[str, ...] = ("ch0",)
    gate_times_s: tuple[float, ...] | None = None
    kind: str = "pulse_induction"
    sensor: str = "emi"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise BlockError(
                "MdHeader.sample_rate_hz must be a positive finite number, "
                f"got {self.sample_rate_hz}"
            )
        if len(self.channel_names) == 0:
            raise BlockError("MdHeader.channel_names must name at least one channel")
        if self.gate_times_s is not None and len(self.gate_times_s) != len(self.channel_names):
            raise BlockError(
                f"MdHeader.gate_times_s has {len(self.gate_times_s)} entries for "
                f"{len(self.channel_names)} channels"
            )

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)


@dataclass(frozen=True)
class _BlockBase:
    data: np.ndarray
    seq: np.ndarray
    host_time_s: np.ndarray
    position_m: np.ndarray

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def n(self) -> int:
        return int(self.data.shape[0])


def _check_common(obj: Any, kind: str, n_cols: int | None) -> None:
    data = np.asarray(obj.data)
    if data.ndim != 2:
        raise BlockError(f"{kind}.data must be 2-D (n, m), got shape {data.shape}")
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    if n_cols is not None and data.shape[1] != n_cols:
        raise BlockError(f"{kind}.data has {data.shape[1]} columns, header says {n_cols}")
    n = data.shape[0]
    object.__setattr__(obj, "data", data)
    object.__setattr__(obj, "seq", _per_item(f"{kind}.seq", obj.seq, n, np.int64))
    object.__setattr__(
        obj, "host_time_s", _per_item(f"{kind}.host_time_s", obj.host_time_s, n, np.float64)
    )
    object.__setattr__(
        obj, "position_m", _per_item(f"{kind}.position_m", obj.position_m, n, np.float64, np.nan)
    )


@dataclass(frozen=True)
class GprBlock(_BlockBase):
    """``data`` is ``(n_traces, n_samples)`` float32."""

    header: GprHeader = field(default_factory=lambda: GprHeader(dt_ns=1.0))

    def __post_init__(self) -> None:
        _check_common(self, "GprBlock", None)

    @classmethod
    def build(
        cls,
        data: Any,
        header: GprHeader,
        seq: Any = None,
        host_time_s: Any = None,
        position_m: Any = None,
    ) -> GprBlock:
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim != 2:
            raise BlockError(f"GprBlock.data must be 2-D (n, m), got shape {arr.shape}")
        n = arr.shape[0]
        return cls(
            data=arr,
            seq=np.arange(n, dtype=np.int64) if seq is None else seq,
            host_time_s=np.zeros(n) if host_time_s is None else host_time_s,
            position_m=position_m,  # type: ignore[arg-type]
            header=header,
        )

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def time_ns(self) -> np.ndarray:
        """Sample times relative to time zero (ns)."""
        return (
            np.arange(self.n_samples, dtype=np.float64) * self.header.dt_ns
            - self.header.time_zero_ns
        )

    def with_data(self, data: np.ndarray, **header_changes: Any) -> GprBlock:
        """Same traces (seq, times, positions), new samples and optionally header fields."""
        hdr = replace(self.header, **header_changes) if header_changes else self.header
        return GprBlock(
            data=data,
            seq=self.seq,
            host_time_s=self.host_time_s,
            position_m=self.position_m,
            header=hdr,
        )

    def with_positions(self, position_m: np.ndarray) -> GprBlock:
        return replace(self, position_m=position_m)


@dataclass(frozen=True)
class MdBlock(_BlockBase):
    """``data`` is ``(n_readings, n_channels)`` float32."""

    header: MdHeader = field(default_factory=lambda: MdHeader(sample_rate_hz=1.0))

    def __post_init__(self) -> None:
        _check_common(self, "MdBlock", self.header.n_channels)

    @classmethod
    def build(
        cls,
        data: Any,
        header: MdHeader,
        seq: Any = None,
        host_time_s: Any = None,
        position_m: Any = None,
    ) -> MdBlock:
        arr = np.asarray(data, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise BlockError(f"MdBlock.data must be 2-D (n, m), got shape {arr.shape}")
        n = arr.shape[0]
        return cls(
            data=arr,
            seq=np.arange(n, dtype=np.int64) if seq is None else seq,
            host_time_s=np.zeros(n) if host_time_s is None else host_time_s,
            position_m=position_m,  # type: ignore[arg-type]
            header=header,
        )

    def with_data(self, data: np.ndarray, **header_changes: Any) -> MdBlock:
        hdr = replace(self.header, **header_changes) if header_changes else self.header
        return MdBlock(
            data=data,
            seq=self.seq,
            host_time_s=self.host_time_s,
            position_m=self.position_m,
            header=hdr,
        )

    def with_positions(self, position_m: np.ndarray) -> MdBlock:
        return replace(self, position_m=position_m)


class FixQuality(enum.IntEnum):
    """NMEA GGA fix quality indicator."""

    NONE = 0
    GPS = 1
    DGPS = 2
    PPS = 3
    RTK_FIXED = 4
    RTK_FLOAT = 5
    DEAD_RECKONING = 6
    MANUAL = 7
    SIMULATED = 8


@dataclass(frozen=True)
class GpsFix:
    """One position fix with its quality, stored alongside sensor data."""

    host_time_s: float
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None = None
    quality: FixQuality = FixQuality.NONE
    n_sats: int | None = None
    hdop: float | None = None
    h_acc_m: float | None = None
    correction_age_s: float | None = None
    utc_s: float | None = None
    speed_m_s: float | None = None
    course_deg: float | None = None
    source: str = "gps"

    def __post_init__(self) -> None:
        if self.lat_deg is not None and not (-90.0 <= self.lat_deg <= 90.0):
            raise BlockError(f"GpsFix.lat_deg out of range [-90, 90]: {self.lat_deg}")
        if self.lon_deg is not None and not (-180.0 <= self.lon_deg <= 180.0):
            raise BlockError(f"GpsFix.lon_deg out of range [-180, 180]: {self.lon_deg}")
        if (self.lat_deg is None) != (self.lon_deg is None):
            raise BlockError("GpsFix needs both lat_deg and lon_deg, or neither")

    @property
    def has_fix(self) -> bool:
        return self.lat_deg is not None and self.quality != FixQuality.NONE


class SensorState(enum.IntEnum):
    """A sensor's state. The numbers are stored in recordings: never renumber them.

    OK < DEGRADED < FAULT by loudness. STARTING (added later, hence 3) is the time from the
    start until a sensor's first data or its start-up timeout: not a fault to shout about,
    but its ground is not covered either (:func:`detect.coverage.coverage_states`).
    """

    OK = 0
    DEGRADED = 1
    FAULT = 2
    STARTING = 3


@dataclass(frozen=True)
class HealthEvent:
    """A change of a sensor's state, with the reason, for the record and the display."""

    host_time_s: float
    sensor: str
    state: SensorState
    reason: str = ""
    position_m: float = math.nan


#: alarm tiers, loudest first: at the operating point; below it but above the suspect floor
ALARM_TIERS = ("alarm", "suspect")


@dataclass(frozen=True)
class Alarm:
    """A declared detection: where, how sure, what, and which sensor saw it."""

    alarm_id: str
    position_m: float
    confidence: float
    class_name: str
    sensor_scores: Mapping[str, float]
    depth_m: float | None
    host_time_s: float
    lat_deg: float | None = None
    lon_deg: float | None = None
    h_acc_m: float | None = None
    class_probs: Mapping[str, float] = field(default_factory=dict)
    #: position epoch (:class:`PositionEpoch`): ``position_m`` is in that epoch's frame
    epoch: int = 0
    #: UTC of ``host_time_s`` (ISO 8601, ms, ``Z``): the wall clock read at the run's start
    #: plus the monotonic time since then (a wall-clock step during the run moves nothing)
    utc: str | None = field(default=None, compare=False)
    #: ``alarm`` (at the operating point) or ``suspect`` (below it, above the floor)
    tier: str = "alarm"
    #: the class's probability reached the bar (``alarm.class_min_prob``): else show
    #: "class uncertain" (``class_name`` stays the model's best guess, e.g. for truth CSVs)
    class_certain: bool = True

    def __post_init__(self) -> None:
        if not math.isfinite(self.position_m):
            raise BlockError(f"Alarm.position_m must be finite, got {self.position_m}")
        if self.tier not in ALARM_TIERS:
            raise BlockError(f"Alarm.tier {self.tier!r} is not one of {ALARM_TIERS}")
        if not (0.0 <= self.confidence <= 1.0):
            raise BlockError(f"Alarm.confidence must be in [0, 1], got {self.confidence}")
        if self.class_name not in CLASSES:
            raise BlockError(f"Alarm.class_name {self.class_name!r} is not one of {CLASSES}")
        if (self.lat_deg is None) != (self.lon_deg is None):
            raise BlockError("Alarm needs both lat_deg and lon_deg, or neither")

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by alarms.json / alarms.jsonl."""
        return {
            "id": self.alarm_id,
            "position_m": self.position_m,
            "confidence": self.confidence,
            "class": self.class_name,
            "class_probs": dict(self.class_probs),
            "depth_m": self.depth_m,
            "sensors": dict(self.sensor_scores),
            "time_s": self.host_time_s,
            "utc": self.utc,
            "lat": self.lat_deg,
            "lon": self.lon_deg,
            "h_acc_m": self.h_acc_m,
            "epoch": self.epoch,
            "tier": self.tier,
            "class_certain": self.class_certain,
        }


def utc_text(host_time_s: float, anchor: tuple[float, float]) -> str | None:
    """UTC (ISO 8601, ms, ``Z``) of a monotonic ``host_time_s``, from ``anchor`` = (monotonic
    s, UTC s) read together; None for a time that is not finite."""
    if not math.isfinite(host_time_s):
        return None
    utc_s = anchor[1] + (host_time_s - anchor[0])
    t = _dt.datetime.fromtimestamp(utc_s, _dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PositionEpoch:
    """From here on, positions are in a new along-track frame.

    A sensor head that restarted (its clock and odometer began again from zero) places its
    traces in a frame unrelated to the one before: the pipeline closes the current epoch
    (its unscored end is not covered), and alarms and coverage of the next one carry its
    number. ``host_time_s``: when the new frame began (our monotonic clock).
    """

    host_time_s: float
    source: str
    reason: str = ""


Block = GprBlock | MdBlock

_B = GprBlock | MdBlock


def concat_blocks(blocks: Sequence[_B]) -> _B:
    """One block from consecutive blocks of one stream (same type and header)."""
    if not blocks:
        raise BlockError("concat_blocks needs at least one block")
    first = blocks[0]
    if len(blocks) == 1:
        return first
    for b in blocks[1:]:
        if type(b) is not type(first) or b.header != first.header:
            raise BlockError("concat_blocks: blocks differ in type or header")
    return replace(
        first,
        data=np.concatenate([b.data for b in blocks]),
        seq=np.concatenate([b.seq for b in blocks]),
        host_time_s=np.concatenate([b.host_time_s for b in blocks]),
        position_m=np.concatenate([b.position_m for b in blocks]),
    )


def coalesce(items: Sequence[Any]) -> list[Any]:
    """Adjacent blocks of one stream (same type and header) merged; other items kept in order.

    A driver that hands over a few readings per read (a text-line detector at 1 kHz) then
    costs one pass through DSP, alignment and the recorder per batch, not one per line.
    """
    out: list[Any] = []
    run: list[Any] = []
    for it in items:
        if isinstance(it, (GprBlock, MdBlock)):
            if run and (type(it) is not type(run[0]) or it.header != run[0].header):
                out.append(concat_blocks(run))
                run = []
            run.append(it)
            continue
        if run:
            out.append(concat_blocks(run))
            run = []
        out.append(it)
    if run:
        out.append(concat_blocks(run))
    return out
