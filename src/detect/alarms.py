"""Alarm logic: the model's score profile along the track -> declared alarms.

The model gives one decision per window centre (a point of the *score profile*).
An alarm is declared from that profile by

1. a threshold with hysteresis: a region opens when ``p_mine >= threshold`` and
   closes only when ``p_mine < threshold - hysteresis``, so a score that hovers
   around the threshold gives one region, not a burst;
2. peak picking: the region's highest point is its candidate (position, class,
   depth and per-sensor scores are taken there; a flat, saturated top gives its middle);
3. non-maximum suppression within ``nms_radius_m``: of candidates closer than the
   radius only the strongest is kept. Live, a declared alarm is never taken back, so a
   candidate is held until the head has moved ``nms_radius_m`` past it; a later,
   weaker candidate within the radius of a declared alarm is suppressed.

A region gives one alarm per *distinct* peak: a broad response stays one alarm (its
score never dips deep), but where the score between two maxima more than ``nms_radius_m``
apart falls below ``split_fraction`` of the lower one, the region is split, so two mines
close together in clutter are two alarms even when the score never falls below the re-arm
level between them. A peak is also declared once the head is past the radius and the
score has fallen below ``split_fraction`` of it, without waiting for the region to close.

The same :class:`AlarmLogic` runs live, in replay and in ``scan`` (where the whole
profile is fed at once, see :func:`pick_alarms`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from detect.blocks import CLASSES, Alarm
from detect.conf_schema import AlarmSettings, section_problems

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


@dataclass(frozen=True)
class AlarmConfig:
    """Alarm settings for the library API; defaults and allowed values are the config
    schema's (:class:`detect.conf_schema.AlarmSettings`, ``configs/alarm/default.yaml``)."""

    threshold: float = _DEFAULT.threshold
    hysteresis: float = _DEFAULT.hysteresis
    nms_radius_m: float = _DEFAULT.nms_radius_m
    split_fraction: float = _DEFAULT.split_fraction

    def __post_init__(self) -> None:
        for key, value, why, expected in section_problems(AlarmSettings, asdict(self), "alarm."):
            raise ValueError(f"{key} = {value!r} is not allowed: {why}; expected {expected}")

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any]) -> AlarmConfig:
        """From the composed config's ``alarm`` section (keys it leaves out: the defaults)."""
        return cls(**{f.name: float(node[f.name]) for f in fields(cls) if f.name in node})


class AlarmLogic:
    """Streaming threshold + hysteresis + peak picking + NMS over a score profile."""

    def __init__(
        self,
        config: AlarmConfig | None = None,
        locate: Locator | None = None,
        id_prefix: str = "A",
    ) -> None:
        self.config = config or AlarmConfig()
        self.locate = locate
        self.id_prefix = id_prefix
        #: position epoch of the points fed (``Alarm.epoch``)
        self.epoch = 0
        self.n_declared = 0
        self.n_suppressed = 0
        self._active = False
        self._peak: ScorePoint | None = None
        self._plateau_end: ScorePoint | None = None
        #: lowest score since the current peak, and whether that peak is already a candidate
        self._valley = math.inf
        self._peak_taken = False
        self._pending: list[ScorePoint] = []
        self._declared_positions: list[float] = []

    @property
    def rearm_level(self) -> float:
        return self.config.threshold - self.config.hysteresis

    def reset(self) -> None:
        self._active = False
        self._peak = None
        self._pending.clear()

    def feed(self, point: ScorePoint) -> list[Alarm]:
        """Add one profile point (in the order the head passes them); return new alarms."""
        if not math.isfinite(point.position_m) or not math.isfinite(point.p_mine):
            return []
        cfg = self.config
        if self._active:
            assert self._peak is not None
            peak = self._peak
            if point.p_mine < self.rearm_level:
                self._active = False
                if not self._peak_taken:
                    self._add_candidate(peak)
                self._peak = None
            elif (
                self._valley < cfg.split_fraction * min(peak.p_mine, point.p_mine)
                and point.position_m - peak.position_m > cfg.nms_radius_m
                and point.p_mine >= cfg.threshold
            ):
                # a second, distinct peak in the same region: the score fell deep between
                if not self._peak_taken:
                    self._add_candidate(peak)
                self._new_peak(point)
            elif point.p_mine > peak.p_mine and not self._peak_taken:
                self._new_peak(point)
            elif point.p_mine == peak.p_mine and not self._peak_taken:
                self._plateau_end = point
            else:
                self._valley = min(self._valley, point.p_mine)
                if (
                    not self._peak_taken
                    and point.position_m - peak.position_m > cfg.nms_radius_m
                    and point.p_mine < cfg.split_fraction * peak.p_mine
                ):
                    # well down the far flank: declare without waiting for the region to end
                    self._add_candidate(peak)
                    self._peak_taken = True
        elif point.p_mine >= cfg.threshold:
            self._active = True
            self._new_peak(point)
        return self._release(point.position_m)

    def _new_peak(self, point: ScorePoint) -> None:
        self._peak = point
        self._plateau_end = point
        self._valley = math.inf
        self._peak_taken = False

    def feed_many(self, points: Iterable[ScorePoint]) -> list[Alarm]:
        out: list[Alarm] = []
        for p in points:
            out.extend(self.feed(p))
        return out

    def finish(self) -> list[Alarm]:
        """End of the track: declare what is still held."""
        if self._active and self._peak is not None and not self._peak_taken:
            self._add_candidate(self._peak)
        self._active = False
        self._peak = None
        return self._release(None)

    def _add_candidate(self, cand: ScorePoint) -> None:
        end = self._plateau_end
        if end is not None and end.position_m != cand.position_m:
            # A saturated score (a flat top): the middle of the flat top is the peak. Its time
            # is the mean of the ends' only when one sensor timed both (the alarm's lat/lon is
            # placed from that sensor's time; another sensor passes the ground earlier).
            same_clock = end.time_sensor == cand.time_sensor
            cand = replace(
                cand,
                position_m=0.5 * (cand.position_m + end.position_m),
                host_time_s=0.5 * (cand.host_time_s + end.host_time_s)
                if same_clock
                else cand.host_time_s,
            )
        self._plateau_end = None
        r = self.config.nms_radius_m
        keep: list[ScorePoint] = []
        for p in self._pending:
            if abs(p.position_m - cand.position_m) <= r:
                if p.p_mine >= cand.p_mine:
                    self.n_suppressed += 1
                    return
                self.n_suppressed += 1
                continue
            keep.append(p)
        keep.append(cand)
        self._pending = keep

    def _release(self, head_position_m: float | None) -> list[Alarm]:
        r = self.config.nms_radius_m
        out: list[Alarm] = []
        still: list[ScorePoint] = []
        for cand in self._pending:
            ready = head_position_m is None or abs(head_position_m - cand.position_m) > r
            if self._active and self._peak is not None and not self._peak_taken:
                # A peak still growing within the radius may yet beat this candidate.
                ready = ready and abs(self._peak.position_m - cand.position_m) > r
            if not ready:
                still.append(cand)
                continue
            if any(abs(cand.position_m - x) <= r for x in self._declared_positions):
                self.n_suppressed += 1
                continue
            out.append(self._declare(cand))
        self._pending = still
        return out

    def _declare(self, cand: ScorePoint) -> Alarm:
        self.n_declared += 1
        self._declared_positions.append(cand.position_m)
        lat = lon = h_acc = None
        if self.locate is not None and math.isfinite(cand.host_time_s):
            where = self.locate(cand.host_time_s, cand.time_sensor)
            if where is not None:
                lat, lon, h_acc = where
        return Alarm(
            alarm_id=f"{self.id_prefix}-{self.n_declared:04d}",
            position_m=float(cand.position_m),
            confidence=float(min(max(cand.p_mine, 0.0), 1.0)),
            class_name=cand.class_name,
            sensor_scores={k: float(v) for k, v in cand.sensor_scores.items()},
            depth_m=None if cand.depth_m is None else float(cand.depth_m),
            host_time_s=float(cand.host_time_s),
            lat_deg=lat,
            lon_deg=lon,
            h_acc_m=h_acc,
            class_probs={k: float(v) for k, v in cand.class_probs.items()},
            epoch=self.epoch,
        )

    def start_epoch(self, epoch: int, locate: Locator | None) -> None:
        """Positions restart in a new frame: forget the profile (call :meth:`finish` first);
        alarm ids keep counting so they stay unique."""
        self.reset()
        self._valley = math.inf
        self._peak_taken = False
        self._plateau_end = None
        self._declared_positions.clear()
        self.epoch = epoch
        self.locate = locate


def pick_alarms(
    points: Iterable[ScorePoint],
    config: AlarmConfig | None = None,
    locate: Locator | None = None,
    id_prefix: str = "A",
) -> list[Alarm]:
    """Whole-profile form (scan, evaluation): the same logic as live."""
    logic = AlarmLogic(config, locate, id_prefix)
    return logic.feed_many(points) + logic.finish()
