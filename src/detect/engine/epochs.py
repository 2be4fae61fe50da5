"""Coverage per position epoch.

A sensor head that restarts places its traces in a new along-track frame
(:class:`detect.blocks.PositionEpoch`): each epoch gets its own
:class:`detect.coverage.CoverageTracker`, and the run's figures add up over them (the
frames overlap, so their intervals are never merged across epochs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detect.coverage import CoverageTracker

_SUMMED = ("distance_m", "not_covered_m", "blind_s", "unplaced_s")


class EpochCoverage:
    """The current epoch's coverage tracker and the closed epochs' ones."""

    def __init__(self, needed: Sequence[str], offsets_m: Mapping[str, float]) -> None:
        self.needed = tuple(needed)
        self.offsets_m = dict(offsets_m)
        self.epoch = 0
        self.current = CoverageTracker(self.needed, self.offsets_m)
        self._closed: list[CoverageTracker] = []

    def next_epoch(self) -> None:
        """Close the current epoch (its coverage stays as it is) and start the next."""
        self._closed.append(self.current)
        self.epoch += 1
        self.current = CoverageTracker(self.needed, self.offsets_m)

    def trackers(self) -> list[tuple[int, CoverageTracker]]:
        """(epoch, tracker), oldest first."""
        return [*enumerate(self._closed), (self.epoch, self.current)]

    def summary(self) -> dict[str, Any]:
        """:meth:`CoverageTracker.summary` added up over the epochs."""
        parts = [c.summary() for _, c in self.trackers()]
        out: dict[str, Any] = {k: sum(p[k] for p in parts) for k in _SUMMED}
        return {**out, "needed": list(self.needed), "epochs": len(parts)}

    def segments(self) -> list[dict[str, Any]]:
        """Every epoch's coverage segments, each with its ``epoch``."""
        return [{**seg, "epoch": k} for k, c in self.trackers() for seg in c.segments()]
