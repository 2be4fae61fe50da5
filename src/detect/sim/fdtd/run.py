"""Run one full-wave scene: gprMax, merge the A-scans, convert, cache by hash.

A scene's folder is named by the hash of its input text and the gprMax version
(:func:`scene_hash`), so a finished scene is never recomputed and a changed scene never
reuses a stale result. Work happens in a temporary folder beside it that is renamed into
place only when everything is written: a killed run leaves no half-finished folder under
the final name, and the next run starts that scene again.

A finished folder holds::

    scene.in            the gprMax input (what the hash names)
    merged.h5           gprMax's own merged B-scan (every field component, full rate)
    bscan.h5            the B-scan for ``detect scan``: gprMax layout (read by our gprMax
                        reader), Ez only, resampled to <= ``output_dt_ns`` with an
                        anti-aliasing filter; trace spacing = the antenna step
    bscan_truth.csv     objects along the scan (x_m from trace 0), for scan/evaluate
    session.h5          the same B-scan as a project session (GPR only) with its truth
    result.json         timings, CPU seconds, sizes, versions
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detect.io.truth import write_truth_csv
from detect.sim.fdtd.scene_to_gprmax import layout
from detect.sim.fdtd.settings import FdtdSettings

log = logging.getLogger(__name__)

RESULT = "result.json"
BSCAN = "bscan.h5"


class FdtdRunError(RuntimeError):
    """gprMax failed on a scene, or is not installed (one line naming the scene)."""


@dataclass(frozen=True)
class SceneJob:
    """Everything a worker needs to compute one scene (plain data: it crosses processes)."""

    name: str
    text: str  # the gprMax input
    truth: tuple[dict[str, Any], ...]
    info: dict[str, Any]
    settings: FdtdSettings


def gprmax_version() -> str:
    try:
        from importlib.metadata import version

        return version("gprMax")
    except Exception:
        return "none"


def scene_hash(text: str, version: str | None = None) -> str:
    v = version if version is not None else gprmax_version()
    return hashlib.sha256(f"gprMax {v}\n{text}".encode()).hexdigest()[:20]


def scene_dir(cache: Path, job: SceneJob) -> Path:
    return cache / scene_hash(_solver_text(job))


def _solver_text(job: SceneJob) -> str:
    """What determines the output: the input text and the trace count and output rate."""
    s = job.settings
    return f"{job.text}\nn_traces {s.n_traces}\noutput_dt_ns {s.output_dt_ns:g}\n"


def is_done(folder: Path) -> bool:
    return (folder / RESULT).is_file()


def run_scene(job: SceneJob, cache: Path) -> dict[str, Any]:
    """Compute ``job`` into its hash-named folder under ``cache`` unless it is there;
    return its result.json (plus ``cached``: True when nothing was computed)."""
    folder = scene_dir(cache, job)
    if is_done(folder):
        out = json.loads((folder / RESULT).read_text())
        return {**out, "folder": str(folder), "cached": True}
    try:
        import gprMax  # noqa: F401
    except ImportError:
        raise FdtdRunError(
            "gprMax is not installed: pip install -e .[fdtd] (gprMax==4.0.1)"
        ) from None
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".{folder.name}.tmp{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        result = _compute(job, work)
        result["hash"] = folder.name
        (work / RESULT).write_text(json.dumps(result, indent=1, default=str) + "\n")
        try:
            os.replace(work, folder)
        except OSError:
            if not is_done(folder):  # another worker finished it first: keep theirs
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**result, "folder": str(folder), "cached": False}


def _compute(job: SceneJob, work: Path) -> dict[str, Any]:
    s = job.settings
    (work / "scene.in").write_text(job.text)
    env = {**os.environ, "OMP_NUM_THREADS": str(s.omp_threads)}
    cmd = [sys.executable, "-m", "gprMax", "scene.in", "-n", str(s.n_traces)]
    cmd += ["--hide-progress-bars", "--log-level", "30"]
    t0 = time.perf_counter()
    with (work / "gprmax.log").open("w") as logf:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.perf_counter() - t0
    cpu_s = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        why = _log_reason((work / "gprmax.log").read_text(errors="replace"))
        raise FdtdRunError(f"scene {job.name}: gprMax exit {proc.returncode}: {why}")
    parts = [work / f"scene{i}.h5" for i in range(1, s.n_traces + 1)]
    if s.n_traces == 1:
        parts = [work / "scene.h5"] if (work / "scene.h5").is_file() else parts[:1]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise FdtdRunError(f"scene {job.name}: gprMax wrote no {missing[0]}")
    from gprMax.toolboxes.Utilities.outputfiles_merge import merge_files

    merge_files([str(p) for p in parts], str(work / "merged.h5"), removefiles=True)
    meta = convert(work / "merged.h5", work / BSCAN, s)
    write_truth_csv(work / "bscan_truth.csv", list(job.truth))
    if s.session:
        write_session(work / "session.h5", work / BSCAN, s, job)
    return {
        "name": job.name,
        "n_traces": s.n_traces,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "gprmax": gprmax_version(),
        "info": job.info,
        "settings": asdict(s),
        **meta,
    }


def _log_reason(log_text: str) -> str:
    """The most telling line of a failed gprMax log: one quoting a command, else the last."""
    lines = [
        ln.strip()
        for ln in log_text.splitlines()
        if ln.strip() and not ln.startswith((" ", "Traceback"))
    ]
    quoting = [ln for ln in lines if "'#" in ln]
    return (quoting or lines or ["no output"])[0 if quoting else -1]


def convert(merged: Path, out: Path, s: FdtdSettings) -> dict[str, Any]:
    """gprMax's merged B-scan as a compact gprMax-layout file: Ez, resampled with an
    anti-aliasing (polyphase FIR) filter to a sample interval <= ``output_dt_ns``."""
    import h5py
    from scipy.signal import resample_poly

    with h5py.File(merged, "r") as f:
        dt_s = float(f.attrs["dt"])
        ez = np.asarray(f["rxs/rx1/Ez"][()], dtype=np.float64)
        attrs = {k: f.attrs[k] for k in ("gprMax", "Title", "dx_dy_dz", "rxsteps", "srcsteps")}
        rx_pos = np.asarray(f["rxs/rx1"].attrs.get("Position", [0, 0, 0]))
    if ez.ndim == 1:
        ez = ez[:, None]
    factor = max(1, math.floor(s.output_dt_ns * 1e-9 / dt_s + 1e-9))
    data = resample_poly(ez, 1, factor, axis=0) if factor > 1 else ez
    out_dt_s = dt_s * factor
    lay = layout(s)
    with h5py.File(out, "w") as g:
        for k, v in attrs.items():
            g.attrs[k] = v
        g.attrs["dt"] = out_dt_s
        g.attrs["Iterations"] = data.shape[0]
        g.attrs["nrx"] = 1
        g.attrs["detect_resampled_from_dt"] = dt_s
        g.attrs["detect_centre_hz"] = s.centre_hz
        g.attrs["detect_time_zero_ns"] = s.ricker_peak_ns
        g.attrs["detect_antenna_offset_m"] = lay.rx_offset_cells * s.dx_m
        g.attrs["detect_antenna_height_m"] = (lay.antenna_cell_y - lay.surface_cell) * s.dx_m
        rx = g.create_group("rxs/rx1")
        rx.attrs["Position"] = rx_pos
        rx.create_dataset(
            "Ez", data=data.astype(np.float32), compression="gzip", shuffle=True, chunks=True
        )
    return {
        "dt_solver_ns": dt_s * 1e9,
        "dt_ns": out_dt_s * 1e9,
        "n_samples": int(data.shape[0]),
        "trace_step_m": s.step_cells * s.dx_m,
    }


def write_session(path: Path, bscan: Path, s: FdtdSettings, job: SceneJob) -> None:
    """The B-scan as a GPR-only session (walking at 0.5 m/s) with the scene's truth."""
    from detect.blocks import GprBlock, GprHeader
    from detect.io.gprmax import read_gprmax
    from detect.io.session import SessionWriter

    g = read_gprmax(bscan)
    block = g.blocks[0]
    step = s.step_cells * s.dx_m
    pos = np.arange(block.n) * step
    hdr = GprHeader(dt_ns=block.header.dt_ns, time_zero_ns=s.ricker_peak_ns, antenna_hz=s.centre_hz)
    info = {
        "source": "gprmax",
        "class": "detect.sim.fdtd",
        "sensors": ["gpr"],
        "scene": job.name,
        **job.info,
    }
    with SessionWriter(path, config={"fdtd": asdict(s)}, info=info) as w:
        w.write(GprBlock.build(block.data, hdr, host_time_s=pos / 0.5, position_m=pos))
        w.write_truth(list(job.truth))
