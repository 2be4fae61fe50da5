"""The Sink protocol: what an output of the pipeline receives.

A sink implements only what it needs (this base class ignores the rest). The engine calls
them through :class:`detect.engine.sinks.SinkSet`, which switches a failing sink off loudly
while alarming goes on.
"""

from __future__ import annotations

from typing import Any


class Sink:
    """Base of every output. ``name`` says which one in messages and the summary."""

    name = "sink"

    def on_block(self, item: Any) -> None:
        """An item as it arrived from the sources (block, GPS fix, position epoch)."""

    def on_processed(self, block: Any) -> None:
        """A block after the DSP chain and alignment (positions on the track): what the
        model's windows are cut from (a live radargram, a plot)."""

    def on_alarm(self, alarm: Any) -> None:
        """A declared alarm."""

    def on_health(self, event: Any) -> None:
        """A sensor's change of state."""

    def on_coverage(self, final: Any, host_time_s: float, epoch: int) -> None:
        """Coverage that became final (:class:`detect.coverage.FinalCoverage`)."""

    def on_status(self, status: Any) -> None:
        """The live picture (:class:`detect.sinks.display.Status`), a few times a second."""

    def on_message(self, text: str, loud: bool = False) -> None:
        """A line for the operator."""

    def on_outcome(self, outcome: dict[str, Any]) -> None:
        """An operator's outcome for an alarm (the console's acknowledgement record)."""

    def on_truth(self, truth: list[dict[str, Any]]) -> None:
        """Ground truth of a simulated or labelled run, at its end."""

    def flush(self) -> None:
        """Make what was written durable (called about once a second)."""

    def close(self) -> None:
        """End of the run."""

    def stopped(self, error: str) -> str:
        """Switched off after ``error``: the line to announce (a sink may also clean up)."""
        return f"SINK {self.name} STOPPED: {error}"
