"""The material grid gprMax builds from an input text (``--geometry-only``), for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def material_grid(tmp_path: Path, text: str) -> tuple[np.ndarray, list[str]]:
    """gprMax's material grid (indexed z, y, x) and the material names of its ids; the text
    must hold ``#geometry_view`` writing ``geo``. Skips when gprMax is not installed."""
    pytest.importorskip("gprMax")
    import h5py

    (tmp_path / "g.in").write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "gprMax", "g.in", "--geometry-only", "--hide-progress-bars"],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )  # fmt: skip
    with h5py.File(tmp_path / "geo.vtkhdf") as f:
        grid = np.asarray(f["VTKHDF/CellData/Material"])
        ids = [
            x.decode() if isinstance(x, bytes) else str(x)
            for x in f["VTKHDF/FieldData/material_ids"][:]
        ]
    return grid, ids
