"""Shared fixtures: the real-instrument files in ../shared/data/real (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_dir() -> Path:
    env = os.environ.get("DETECT_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real recordings; the test is skipped when it is not there."""
    d = _real_dir()
    if not d.is_dir():
        pytest.skip(f"real data folder {d} is absent")
    return d


def real_file(rel: str) -> Path:
    """Path of one real file, skipping the calling test when it is absent."""
    p = _real_dir() / rel
    if not p.exists():
        pytest.skip(f"real file {p} is absent")
    return p
