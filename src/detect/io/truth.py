"""Ground-truth CSV files: one row per buried object of a lane (what ``detect simulate``
writes beside each lane, a survey team's truth for a field recording, an operator's checked
alarms). Columns :data:`TRUTH_COLUMNS`; ``class`` and ``x_m`` are required."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from detect import metrics as M
from detect.errors import SettingsError

TRUTH_COLUMNS = ("id", "class", "kind", "x_m", "y_m", "depth_m", "size_m", "metal_mass_g", "soil")


def write_truth_csv(path: Path, truth: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in truth:
            w.writerow(row)


def read_truth_csv(path: Path) -> list[dict[str, Any]]:
    """Ground truth CSV (columns as :data:`TRUTH_COLUMNS`; class and x_m required)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise SettingsError(f"cannot read truth CSV {path}: {exc.strerror}") from exc
    out = []
    for i, row in enumerate(rows, start=2):
        row = {str(k).strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        try:
            M.Target.from_dict(row, where=f"{path}:{i}")
        except M.ScoringError as exc:
            raise SettingsError(str(exc)) from exc
        out.append(row)
    return out


def find_truth(path: Path, explicit: str | None) -> list[dict[str, Any]] | None:
    """The truth CSV ``explicit``, else the one beside ``path`` (``<file>.truth.csv`` or
    ``<stem>_truth.csv``), read and checked; None when there is none."""
    if explicit:
        return read_truth_csv(Path(explicit))
    for cand in (path.with_suffix(".truth.csv"), path.parent / f"{path.stem}_truth.csv"):
        if cand.is_file():
            return read_truth_csv(cand)
    return None
