"""Alarm logic: the model's score profile along the track -> declared alarms.

The model gives one decision per window centre (a point of the *score profile*).
An alarm is declared from that profile by

1. a threshold with hysteresis: a region opens when ``p_mine >= threshold`` and
   closes only when ``p_mine < threshold - hysteresis``, so a score that hovers
   around the threshold gives one region, not a burst;
2. peak picking: a region gives one candidate per *distinct* peak. A local maximum at or
   above the threshold is distinct where, on each side, the score falls below
   ``split_fraction`` of it before it reaches a higher point or the region's end (the
   higher of its two prominence bases lies below that share of it). A broad response
   stays one candidate (its score never dips deep); two mines close together in clutter
   are two even when the score never falls below the re-arm level between them. The rule
   has no direction: a lane walked the other way gives the same candidates. Position,
   class, depth and per-sensor scores are the peak's; a flat, saturated top (equal maxima
   with no deep dip between) gives its middle, and also both its ends where it is longer
   than twice ``nms_radius_m`` (it may be two objects, and its middle neither);
3. non-maximum suppression within ``nms_radius_m``, greedy, strongest first: a candidate
   within the radius of a stronger kept one is dropped, and a dropped one drops no other
   candidate. Of two equally strong candidates within the radius, the one walked first is
   kept: with saturated scores, the one place where the direction of walking matters.

Live, a peak becomes a candidate as soon as both its sides are known deep (without
waiting for the region to close), and a declared alarm is never taken back, so a
candidate is held until the head has moved ``nms_radius_m`` past it and every stronger
peak within the radius is settled; a later, weaker candidate within the radius of a
declared alarm is suppressed.

Two tiers. An *alarm* is declared at the operating point (``threshold``) as above. A
*suspect* is a peak below the threshold but at or above ``suspect_floor``: the same logic
run a second time with the floor as its threshold, whose candidates are dropped where they
reach the threshold or lie within ``nms_radius_m`` of an alarm (declared or held) or of
any stretch of the profile at or above the threshold. The suspect logic never touches the
alarm logic's state, so the alarms at the operating point are exactly those without the
tier. Suspects carry their own ids (``A-S0001``) and are shown quietly; an uncalibrated
detector (an anomaly score, not a probability) has no suspect tier. An alarm names its
class only when that class's probability reaches ``class_min_prob``
(``Alarm.class_certain``), else "class uncertain".

The same :class:`AlarmLogic` runs live, in replay and in ``scan`` (where the whole
profile is fed at once, see :func:`pick_alarms`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from detect.blocks import CLASSES, Alarm
from detect.conf_schema import AlarmSettings, CueSettings, section_problems

#: Looks up (lat_deg, lon_deg, h_acc_m) of the ground under a sensor (None: the head
#: reference point) at a host time of that sensor's trace, or None without a fix.
Locator = Callable[[float, "str | None"], "tuple[float, float, float | None] | None"]


@dataclass(frozen=True)
class ScorePoint:
    """One model decision at a window centre (a point of the score profile)."""

    position_m: float
    p_mine: float
    host_time_s: float = math.nan
    class_probs: Mapping[str, float] = field(default_factory=dict)
    depth_m: float | None = None
    sensor_scores: Mapping[str, float] = field(default_factory=dict)
    #: the sensor whose trace time ``host_time_s`` is (its offset on the head places the alarm)
    time_sensor: str | None = None

    @property
    def class_name(self) -> str:
        """Most likely non-background class (an alarm always names a threat guess)."""
        probs = {k: v for k, v in self.class_probs.items() if k != "background" and k in CLASSES}
        if not probs:
            return "ap_mine"
        return max(probs, key=lambda k: probs[k])


_DEFAULT = AlarmSettings()
_CUE = CueSettings()


@dataclass(frozen=True)
class CueConfig:
    """Early-cue settings (:class:`EarlyCue`); defaults and allowed values are the config
    schema's ``alarm.cue`` (:class:`detect.conf_schema.CueSettings`)."""

    #: level over background at which a sensor cues (None: that sensor never cues)
    emi_factor: float | None = _CUE.emi_factor
    gpr_factor: float | None = _CUE.gpr_factor
    smooth_s: float = _CUE.smooth_s
    background_s: float = _CUE.background_s
    warmup_s: float = _CUE.warmup_s
    rearm: float = _CUE.rearm
    spacing_m: float = _CUE.spacing_m

    def __post_init__(self) -> None:
        for key, value, why, expected in section_problems(CueSettings, asdict(self), "alarm.cue."):
            raise ValueError(f"{key} = {value!r} is not allowed: {why}; expected {expected}")

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any] | None) -> CueConfig:
        """From the composed config's ``alarm.cue`` section (keys it leaves out: defaults)."""
        node = node or {}
        kw: dict[str, Any] = {
            f.name: None if node[f.name] is None else float(node[f.name])
            for f in fields(cls)
            if f.name in node
        }
        return cls(**kw)

    @property
    def factors(self) -> dict[str, float]:
        """Sensor -> factor, for the sensors that cue."""
        both = {"emi": self.emi_factor, "gpr": self.gpr_factor}
        return {k: float(v) for k, v in both.items() if v is not None}


@dataclass(frozen=True)
class AlarmConfig:
    """Alarm settings for the library API; defaults and allowed values are the config
    schema's (:class:`detect.conf_schema.AlarmSettings`, ``configs/alarm/default.yaml``)."""

    threshold: float = _DEFAULT.threshold
    hysteresis: float = _DEFAULT.hysteresis
    nms_radius_m: float = _DEFAULT.nms_radius_m
    split_fraction: float = _DEFAULT.split_fraction
    #: peaks in [suspect_floor, threshold) are "suspect" alarms; None: no suspect tier
    suspect_floor: float | None = _DEFAULT.suspect_floor
    class_min_prob: float = _DEFAULT.class_min_prob
    #: the early cue's settings (``alarm.cue``; shown and sounded, never an alarm)
    cue: CueConfig = field(default_factory=CueConfig)

    def __post_init__(self) -> None:
        for key, value, why, expected in section_problems(AlarmSettings, asdict(self), "alarm."):
            raise ValueError(f"{key} = {value!r} is not allowed: {why}; expected {expected}")

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any], calibrated: bool = True) -> AlarmConfig:
        """From the composed config's ``alarm`` section (keys it leaves out: the defaults).

        ``calibrated`` False (the interim detector: an anomaly score, not a probability):
        no suspect tier, whose floor was chosen on the calibrated model's scores."""
        kw: dict[str, Any] = {
            f.name: None if node[f.name] is None else float(node[f.name])
            for f in fields(cls)
            if f.name in node and f.name != "cue"
        }
        kw["cue"] = CueConfig.from_cfg(node.get("cue"))
        if not calibrated:
            kw["suspect_floor"] = None
        return cls(**kw)

    def suspect_config(self) -> AlarmConfig | None:
        """The suspect tier's settings: the floor as threshold (None: no suspect tier)."""
        floor = self.suspect_floor
        if floor is None or floor >= self.threshold:
            return None
        return replace(self, threshold=floor, hysteresis=min(self.hysteresis, 0.5 * floor),
                       suspect_floor=None)  # fmt: skip


@dataclass(eq=False)
class _Peak:
    """A point (or a flat top) of the current region not yet exceeded by a later point."""

    start: ScorePoint
    end: ScorePoint
    value: float
    #: lowest score since ``end`` (kept up to date while the peak is open)
    right_min: float = math.inf
    #: lowest score after ``start`` up to the next peak above it on the stack (a flat top's
    #: inner dip included)
    gap: float = math.inf

    def candidates(self, radius_m: float) -> list[ScorePoint]:
        """The peak's point; a flat top (a saturated score) gives its middle, whose time is
        the mean of the ends' only when one sensor timed both (the alarm's lat/lon is placed
        from that sensor's time; another sensor passes the ground earlier). A flat top longer
        than twice ``radius_m`` also gives both its ends: equal maxima that far apart with no
        deep dip between may be two objects, and its middle neither."""
        a, b = self.start, self.end
        if b is a or b.position_m == a.position_m:
            return [a]
        same_clock = a.time_sensor == b.time_sensor
        middle = replace(
            a,
            position_m=0.5 * (a.position_m + b.position_m),
            host_time_s=0.5 * (a.host_time_s + b.host_time_s) if same_clock else a.host_time_s,
        )
        return [a, middle, b] if abs(b.position_m - a.position_m) > 2 * radius_m else [middle]

    def near(self, x_m: float, r_m: float) -> bool:
        """Whether the peak (which a flat top may still extend) could lie within r of x."""
        lo, hi = sorted((self.start.position_m, self.end.position_m))
        return lo <= x_m <= hi or min(abs(x_m - lo), abs(x_m - hi)) <= r_m


class AlarmLogic:
    """Streaming threshold + hysteresis + peak picking + NMS over a score profile."""

    def __init__(
        self,
        config: AlarmConfig | None = None,
        locate: Locator | None = None,
        id_prefix: str = "A",
        tier: str = "alarm",
    ) -> None:
        self.config = config or AlarmConfig()
        self.locate = locate
        self.id_prefix = id_prefix
        self.tier = tier
        #: position epoch of the points fed (``Alarm.epoch``)
        self.epoch = 0
        self.n_declared = 0
        self.n_suppressed = 0
        self._active = False
        #: the region's points not yet exceeded by a later one (values never rise upwards)
        self._stack: list[_Peak] = []
        #: the stack's peak distinct on the left, at the threshold, not yet a candidate (at
        #: most one: the dip that makes a later, lower peak distinct is deep for it too)
        self._open: _Peak | None = None
        self._pending: list[ScorePoint] = []
        #: positions of the alarms declared in this epoch, sorted
        self._declared_positions: list[float] = []
        #: stretches of the profile at or above the threshold (a suspect is no closer)
        self._hot: list[list[float]] = []
        #: the suspect tier below the threshold (None: none configured)
        self.suspects: AlarmLogic | None = None
        self._veto: Callable[[ScorePoint], bool] | None = None
        sub = self.config.suspect_config() if tier == "alarm" else None
        if sub is not None:
            self.suspects = AlarmLogic(sub, locate, id_prefix, tier="suspect")
            self.suspects._veto = self._covers

    def _covers(self, cand: ScorePoint) -> bool:
        """A suspect candidate this (alarm) logic already answers for: at the threshold, or
        within the radius of an alarm declared or held, or of any stretch of the profile at or
        above the threshold (which holds every alarm peak not yet settled)."""
        if cand.p_mine >= self.config.threshold:
            return True
        r = self.config.nms_radius_m
        x = cand.position_m
        if _any_within(self._declared_positions, x, r):
            return True
        if any(abs(x - p.position_m) <= r for p in self._pending):
            return True
        return any(lo <= x <= hi or min(abs(x - lo), abs(x - hi)) <= r for lo, hi in self._hot)

    @property
    def rearm_level(self) -> float:
        return self.config.threshold - self.config.hysteresis

    def reset(self) -> None:
        self._active = False
        self._stack.clear()
        self._open = None
        self._pending.clear()
        if self.suspects is not None:
            self.suspects.reset()

    def feed(self, point: ScorePoint) -> list[Alarm]:
        """Add one profile point (in the order the head passes them); return new alarms
        (both tiers: the alarm tier's first)."""
        out = self._feed(point)
        if self.suspects is not None:
            out.extend(self.suspects.feed(point))
        return out

    def _feed(self, point: ScorePoint) -> list[Alarm]:
        if not math.isfinite(point.position_m) or not math.isfinite(point.p_mine):
            return []
        cfg = self.config
        x = point.p_mine
        if self.suspects is not None and x >= cfg.threshold:
            pos = point.position_m
            if self._hot and pos - self._hot[-1][1] <= cfg.nms_radius_m:
                last = self._hot[-1]
                last[0], last[1] = min(last[0], pos), max(last[1], pos)
            else:
                self._hot.append([pos, pos])
        if self._active and x < self.rearm_level:
            self._close_region()
        elif self._active or x >= cfg.threshold:
            self._active = True
            self._climb(point)
        return self._release(point.position_m)

    def _climb(self, point: ScorePoint) -> None:
        """One point inside a region: settle the peaks it rises above, push it."""
        x = point.p_mine
        stack = self._stack
        between = math.inf  # lowest point since the nearest earlier point at or above x
        split = self.config.split_fraction
        while stack and stack[-1].value < x:
            top = stack.pop()
            between = min(between, top.value, top.gap)
            if top is self._open:  # a higher point came before a deep dip: not distinct
                self._open = None
        peak = self._open
        if peak is not None:
            peak.right_min = min(peak.right_min, x)
            if peak.right_min < split * peak.value:
                self._settle(peak)
        if stack:
            below = stack[-1]
            below.gap = min(below.gap, between)
            if below.value == x and below.gap >= split * x:
                # a flat top (a shallow dip between equal maxima): one peak; its gap keeps
                # the dip inside it (a higher point later must see it)
                below.end = point
                below.right_min = math.inf
                return
            left_min = below.gap
        else:
            left_min = -math.inf  # the region's start: as deep as can be
        stack.append(_Peak(point, point, x))
        if left_min < split * x and x >= self.config.threshold:
            self._open = stack[-1]

    def _settle(self, peak: _Peak) -> None:
        """``peak`` is distinct on both sides: its point(s) become candidates."""
        self._open = None
        for cand in peak.candidates(self.config.nms_radius_m):
            self._add_candidate(cand)

    def _close_region(self) -> None:
        """The score fell below re-arm: a peak still open is distinct on both sides."""
        if self._open is not None:
            self._settle(self._open)
        self._stack.clear()
        self._active = False

    def feed_many(self, points: Iterable[ScorePoint]) -> list[Alarm]:
        out: list[Alarm] = []
        for p in points:
            out.extend(self.feed(p))
        return out

    def finish(self) -> list[Alarm]:
        """End of the track: declare what is still held."""
        self._close_region()
        out = self._release(None)
        if self.suspects is not None:
            out.extend(self.suspects.finish())
        return out

    def _add_candidate(self, cand: ScorePoint) -> None:
        self._pending.append(cand)

    def _release(self, head_position_m: float | None) -> list[Alarm]:
        """Declare the candidates nothing can change any more: greedy non-maximum
        suppression, strongest first (the earlier of equals), decided live.

        A candidate is ready once the head is more than the radius away and no peak at least
        as strong within the radius is still unsettled (``_open``). A ready candidate within
        the radius of a declared alarm is suppressed; one with a stronger candidate within
        the radius still undecided waits for it, so a candidate that is itself suppressed
        never suppresses another (three peaks in a row, the middle one suppressed by the
        last: the first is still declared). Of two equally strong candidates within the
        radius the one walked first is kept, the one place where the direction of walking
        matters (saturated scores)."""
        r = self.config.nms_radius_m
        pending = self._pending
        if not pending or (
            head_position_m is not None
            and all(abs(head_position_m - c.position_m) <= r for c in pending)
        ):
            return []  # nothing ready: the usual case while the head is near its candidates
        decided: list[ScorePoint] = []
        unsettled = self._open
        order = sorted(range(len(pending)), key=lambda i: (-pending[i].p_mine, i))
        undecided = [True] * len(pending)
        waiting: list[float] = []  # sorted positions of stronger candidates still undecided
        for i in order:  # strongest first: stronger neighbours are decided first
            cand = pending[i]
            x = cand.position_m
            if (
                (head_position_m is not None and abs(head_position_m - x) <= r)
                or (unsettled is not None and unsettled.value >= cand.p_mine
                    and unsettled.near(x, r))
                or (not _any_within(self._declared_positions, x, r)
                    and _any_within(waiting, x, r))
            ):  # fmt: skip
                # not ready, a peak not yet settled within the radius may yet beat it, or a
                # stronger candidate within the radius is still undecided
                bisect.insort(waiting, x)
                continue
            if _any_within(self._declared_positions, x, r):
                self.n_suppressed += 1
            elif self._veto is None or not self._veto(cand):
                bisect.insort(self._declared_positions, x)
                decided.append(cand)
            undecided[i] = False
        self._pending = [c for c, u in zip(pending, undecided, strict=True) if u]
        # one release's alarms in track order (a candidate that waited comes out with them)
        return [self._declare(c) for c in sorted(decided, key=lambda c: c.position_m)]

    def _declare(self, cand: ScorePoint) -> Alarm:
        self.n_declared += 1
        lat = lon = h_acc = None
        if self.locate is not None and math.isfinite(cand.host_time_s):
            where = self.locate(cand.host_time_s, cand.time_sensor)
            if where is not None:
                lat, lon, h_acc = where
        cls = cand.class_name
        certain = cand.class_probs.get(cls, 0.0) >= self.config.class_min_prob
        return Alarm(
            alarm_id=f"{self.id_prefix}-{'S' if self.tier == 'suspect' else ''}"
            f"{self.n_declared:04d}",
            position_m=float(cand.position_m),
            confidence=float(min(max(cand.p_mine, 0.0), 1.0)),
            class_name=cls,
            sensor_scores={k: float(v) for k, v in cand.sensor_scores.items()},
            depth_m=None if cand.depth_m is None else float(cand.depth_m),
            host_time_s=float(cand.host_time_s),
            lat_deg=lat,
            lon_deg=lon,
            h_acc_m=h_acc,
            class_probs={k: float(v) for k, v in cand.class_probs.items()},
            epoch=self.epoch,
            tier=self.tier,
            class_certain=bool(certain),
        )

    def start_epoch(self, epoch: int, locate: Locator | None) -> None:
        """Positions restart in a new frame: forget the profile (call :meth:`finish` first);
        alarm ids keep counting so they stay unique."""
        self.reset()
        self._declared_positions.clear()
        self._hot.clear()
        self.epoch = epoch
        self.locate = locate
        if self.suspects is not None:
            self.suspects.start_epoch(epoch, locate)


def _any_within(sorted_m: list[float], x_m: float, r_m: float) -> bool:
    """Whether a position of the sorted list lies within ``r_m`` of ``x_m``."""
    k = bisect.bisect_left(sorted_m, x_m)
    return (k < len(sorted_m) and abs(sorted_m[k] - x_m) <= r_m) or (
        k > 0 and abs(sorted_m[k - 1] - x_m) <= r_m
    )


def pick_alarms(
    points: Iterable[ScorePoint],
    config: AlarmConfig | None = None,
    locate: Locator | None = None,
    id_prefix: str = "A",
) -> list[Alarm]:
    """Whole-profile form (scan, evaluation): the same logic as live."""
    logic = AlarmLogic(config, locate, id_prefix)
    return logic.feed_many(points) + logic.finish()


# --------------------------------------------------------------------------- early cue


@dataclass(frozen=True)
class Cue:
    """A fast hint from one sensor's newest processed data, before the window-based alarm
    is final: "something here". Shown and sounded, never recorded nor counted as an alarm."""

    sensor: str
    #: ground under the sensor where its level rose (along-track m, the block's frame)
    position_m: float
    host_time_s: float
    #: the level over the sensor's background when it fired
    ratio: float


#: level over background at which a sensor cues by default (``alarm.cue.*_factor``; the
#: GPR's whole-trace energy follows the soil, so it cues only on strong reflectors)
CUE_FACTORS = CueConfig().factors


@dataclass
class _Level:
    """One sensor's background level and cue state."""

    factor: float
    background: float = math.nan
    seen_s: float = 0.0
    hot: bool = False
    last_cue_m: float = math.nan
    tail: Any = None  # the last readings' levels (smoothing across blocks)


class EarlyCue:
    """Early cue from the processed blocks as the head passes (array work per block).

    A reading's level is the mean absolute value of the early EMI gates (the metal
    response) or the RMS of a GPR trace; it is smoothed over ``smooth_s`` and compared with
    the sensor's background, a slowly adapting median level (time constant
    ``background_s``, learnt from readings that are not hot). A cue fires when the smoothed
    level first exceeds ``factor`` x background, after ``warmup_s`` of data; it re-arms once
    the level is back under ``rearm`` x factor x background and the ground has moved
    ``spacing_m`` from the last cue. The factors are per sensor: the GPR's whole-trace energy
    varies with the soil far more than the EMI's gates do, so it needs a larger one.

    The settings are ``alarm.cue.*`` (:class:`CueConfig`, :meth:`from_config`). The defaults
    (:data:`CUE_FACTORS`, 1 s warm-up) are the lowest round factors that gave no cue over
    empty simulated soil (loam, laterite, dry sand; scatterers, rough surface) while cueing
    PMN, PMA-2 and Type 72A mines 3-5 cm deep (``tests/test_early_cue.py``).
    """

    def __init__(
        self,
        factors: Mapping[str, float] | None = None,
        smooth_s: float = _CUE.smooth_s,
        background_s: float = _CUE.background_s,
        warmup_s: float = _CUE.warmup_s,
        rearm: float = _CUE.rearm,
        spacing_m: float = _CUE.spacing_m,
    ) -> None:
        self.factors = dict(CUE_FACTORS if factors is None else factors)
        self.smooth_s = smooth_s
        self.background_s = background_s
        self.warmup_s = warmup_s
        self.rearm = rearm
        self.spacing_m = spacing_m
        self._state: dict[str, _Level] = {}

    @classmethod
    def from_config(cls, config: CueConfig | None = None) -> EarlyCue:
        """The cue of ``alarm.cue`` (None: the defaults); a sensor without a factor never cues."""
        c = config or CueConfig()
        return cls(c.factors, smooth_s=c.smooth_s, background_s=c.background_s,
                   warmup_s=c.warmup_s, rearm=c.rearm, spacing_m=c.spacing_m)  # fmt: skip

    @staticmethod
    def levels(sensor: str, data: Any) -> Any:
        a = np.asarray(data, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] == 0:
            return np.empty(0)
        if sensor == "emi":
            return np.abs(a[:, : max(1, a.shape[1] // 2)]).mean(axis=1)
        return np.sqrt(np.nanmean(a * a, axis=1))

    def feed(self, block: Any) -> list[Cue]:
        """One processed block (GPR or EMI); returns the cues it fired (at most one)."""
        sensor = str(block.header.sensor)
        if sensor not in self.factors:
            return []
        lv = self.levels(sensor, block.data)
        pos = np.asarray(block.position_m, dtype=np.float64)
        t = np.asarray(block.host_time_s, dtype=np.float64)
        if lv.size == 0 or pos.size != lv.size:
            return []
        st = self._state.setdefault(sensor, _Level(self.factors[sensor]))
        dt = float(np.median(np.diff(t))) if t.size > 1 else 0.0
        if not (math.isfinite(dt) and dt > 0):
            dt = 1e-3 if sensor == "emi" else 1e-2
        n = max(1, round(self.smooth_s / dt))
        prev = np.empty(0) if st.tail is None else st.tail
        full = np.concatenate([prev, lv])
        csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(full))])
        k = np.arange(prev.size, full.size)
        lo = np.maximum(0, k - n + 1)
        smooth = (csum[k + 1] - csum[lo]) / (k + 1 - lo)
        st.tail = full[-(n - 1) :] if n > 1 else np.empty(0)
        out: list[Cue] = []
        quiet = lv
        if math.isfinite(st.background) and st.background > 0 and st.seen_s >= self.warmup_s:
            ratio = smooth / st.background
            above = ratio > st.factor
            start = 0
            if st.hot:  # still over the last cue's object: wait until the level drops
                cold = np.flatnonzero(ratio < self.rearm * st.factor)
                start = int(cold[0]) if cold.size else ratio.size
                st.hot = start >= ratio.size
            if not st.hot:
                far = ~(np.abs(pos - st.last_cue_m) <= self.spacing_m)  # NaN: no cue yet
                idx = np.flatnonzero(above[start:] & far[start:])
                if idx.size:
                    i = start + int(idx[0])
                    out.append(Cue(sensor, float(pos[i]), float(t[i]), float(ratio[i])))
                    st.last_cue_m = float(pos[i])
                    st.hot = bool(ratio[-1] >= self.rearm * st.factor)
            quiet = lv[~above]
        quiet = quiet[np.isfinite(quiet)]
        if quiet.size:
            level = float(np.median(quiet))
            w = 1.0 - math.exp(-quiet.size * dt / self.background_s)
            old = st.background
            st.background = level if not math.isfinite(old) else old + w * (level - old)
            st.seen_s += lv.size * dt
        return out
