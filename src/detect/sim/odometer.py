"""Survey-wheel (odometer) error: what the head reports for its true along-track distance.

Three effects, drawn once per lane from the lane's own seeded generator:

* **scale**: a calibration error ``reported / true - 1`` (wheel diameter or tyre wear,
  ticks-per-metre set on other ground), ~N(0, ``scale_sigma``);
* **slip bursts**: stretches of ``slip_length_m`` whose starts form a Poisson process of
  ``slip_per_m`` along the ground; inside one the wheel counts only ``1 - slip_fraction``
  of the distance (skidding, bouncing off the ground; a negative fraction over-counts).
  Overlapping bursts add, and the count rate never drops below zero;
* **ticks**: the encoder reports whole ticks of ``tick_m`` (the count is floored).

The reading is a pure function of the true distance and the lane's draws, never of the
sample times, so the GPR and EMI streams agree at the same ground point and any chunking
of the stream gives the same positions. It is piecewise linear between the burst edges and
evaluated in closed form, vectorised over the samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detect.sim.settings import OdometerSettings

#: bound on the drawn scale error, so the reading always runs forwards with the head
MAX_SCALE_ERROR = 0.5


@dataclass(frozen=True)
class Odometer:
    """One lane's odometer; ``perfect`` reports the true distance unchanged."""

    scale: float = 0.0
    slip_start_m: np.ndarray = field(default_factory=lambda: np.empty(0))
    slip_length_m: float = 0.0
    slip_fraction: float = 0.0
    tick_m: float = 0.0
    perfect: bool = True

    @classmethod
    def draw(cls, s: OdometerSettings, rng: np.random.Generator, length_m: float) -> Odometer:
        """The lane's odometer, with slip bursts over true distances [0, ``length_m``].

        Bursts start anywhere in [-``slip_length_m``, ``length_m``], so one may already be
        under way at the lane start and every point is equally likely to be in a burst.
        """
        if s.perfect:
            return cls()
        scale = float(
            np.clip(s.scale_sigma * rng.standard_normal(), -MAX_SCALE_ERROR, MAX_SCALE_ERROR)
        )
        starts = np.empty(0)
        if s.slips:
            n = rng.poisson(s.slip_per_m * (length_m + s.slip_length_m))
            starts = np.sort(rng.uniform(-s.slip_length_m, length_m, n))
        return cls(scale, starts, s.slip_length_m, s.slip_fraction, s.tick_m, perfect=False)

    def _knots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Knots (true m) where the count rate changes, the unscaled count at each knot and
        the count rate from each knot on."""
        starts = np.sort(self.slip_start_m)
        ends = starts + self.slip_length_m
        edges = np.concatenate([starts, ends])
        knots = np.unique(np.concatenate([[0.0], edges[edges > 0.0]]))
        active = np.searchsorted(starts, knots, side="right") - np.searchsorted(
            ends, knots, side="right"
        )
        rate = np.maximum(1.0 - self.slip_fraction * active, 0.0)
        count = np.concatenate([[0.0], np.cumsum(rate[:-1] * np.diff(knots))])
        return knots, count, rate

    def counted_m(self, x_m: np.ndarray | float) -> np.ndarray:
        """Distance the wheel has counted (before ticks) at true distance ``x_m`` from the
        lane start; non-decreasing in ``x_m``."""
        x = np.asarray(x_m, dtype=np.float64)
        if self.perfect:
            return x
        if self.slip_start_m.size:
            knots, count, rate = self._knots()
            j = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, None)
            x = count[j] + rate[j] * (x - knots[j])
        return (1.0 + self.scale) * x

    def reading_m(self, x_m: np.ndarray | float, start_m: float = 0.0) -> np.ndarray:
        """Reported position at true distance ``x_m``: the reading ``start_m`` at the lane
        start plus the counted distance, in whole ticks of the position frame."""
        if self.perfect:
            return start_m + np.asarray(x_m, dtype=np.float64)
        r = start_m + self.counted_m(x_m)
        if self.tick_m > 0:
            r = self.tick_m * np.floor(r / self.tick_m)
        return r
