"""Many full-wave scenes as independent tasks: local processes or a Dask cluster.

Each scene is one task (:func:`detect.sim.fdtd.run.run_scene`: its own gprMax process
with ``omp_threads`` threads); scenes whose hash-named folder is finished are skipped
before anything starts, so an interrupted build resumes where it stopped. ``scheduler``:

* ``local-processes``: a process pool on this machine (``workers``, 0 = one per core);
* ``dask-local``: a Dask ``LocalCluster`` of ``workers`` single-threaded worker processes;
* ``tcp://HOST:PORT``: an existing Dask scheduler. Its workers must see ``cache_dir`` at
  the same path (a shared file system) and have the ``fdtd`` extra installed.

Every finished scene prints one progress line; the report gives the throughput in
A-scans per core-second (CPU seconds of the gprMax processes) and per worker-second. A
scene gprMax refuses or fails on is reported (``FarmReport.failed``, one line each) and the
others go on: one bad scene does not cost a night of computed ones.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from detect.io.truth import write_truth_csv
from detect.sim.fdtd.run import BSCAN, FdtdRunError, SceneJob, is_done, run_scene, scene_dir
from detect.sim.fdtd.settings import FdtdSettings

log = logging.getLogger(__name__)

INDEX_COLUMNS = (
    "name", "kind", "soil", "seed", "hash", "n_traces", "n_samples", "dt_ns",
    "trace_step_m", "wall_s", "cpu_s", "cached",
)  # fmt: skip


@dataclass
class FarmReport:
    results: list[dict[str, Any]] = field(default_factory=list)  # finished, in job order
    wall_s: float = 0.0
    workers: int = 1
    scheduler: str = ""
    failed: list[tuple[str, str]] = field(default_factory=list)  # (scene, why), one line

    @property
    def computed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r.get("cached")]

    @property
    def ascans_per_core_s(self) -> float | None:
        done = self.computed
        cpu = sum(float(r["cpu_s"]) for r in done)
        return sum(int(r["n_traces"]) for r in done) / cpu if cpu > 0 else None

    @property
    def ascans_per_worker_s(self) -> float | None:
        n = sum(int(r["n_traces"]) for r in self.computed)
        return n / (self.wall_s * self.workers) if n and self.wall_s > 0 else None

    def summary(self) -> str:
        n_new = len(self.computed)
        txt = (
            f"{len(self.results)} scenes ({n_new} computed, {len(self.results) - n_new} cached) "
            f"in {self.wall_s:.1f} s on {self.workers} worker(s), {self.scheduler}"
        )
        if self.ascans_per_core_s is not None:
            txt += f"; {self.ascans_per_core_s:.3f} A-scans per core-second"
        if self.ascans_per_worker_s is not None:
            txt += f", {self.ascans_per_worker_s:.3f} per worker-second"
        if self.failed:
            txt += f"; {len(self.failed)} FAILED ({', '.join(n for n, _ in self.failed)})"
        return txt


def n_workers(s: FdtdSettings) -> int:
    return s.workers or max(1, (os.cpu_count() or 1) // s.omp_threads)


def clean_stale(cache: Path) -> None:
    """Remove work folders of runs that were killed (their process is gone)."""
    if not cache.is_dir():
        return
    for p in cache.glob(".*.tmp*"):
        pid = p.name.rpartition(".tmp")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_jobs(
    jobs: Sequence[SceneJob],
    s: FdtdSettings,
    cache: Path,
    progress: Callable[[str], None] | None = print,
) -> FarmReport:
    """Compute every job not yet in ``cache``; results in the order of ``jobs``, scenes
    that failed (:class:`FdtdRunError`) in ``failed`` instead."""
    cache.mkdir(parents=True, exist_ok=True)
    clean_stale(cache)
    workers = n_workers(s)
    report = FarmReport(workers=workers, scheduler=s.scheduler)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for i, job in enumerate(jobs):
        if is_done(scene_dir(cache, job)):
            results[i] = run_scene(job, cache)  # reads result.json only
        else:
            todo.append(i)
    t0 = time.perf_counter()
    say = progress or (lambda _line: None)
    say(f"{len(jobs)} scenes: {len(jobs) - len(todo)} already in {cache}, {len(todo)} to compute")
    traces_done = 0
    runs = _execute([jobs[i] for i in todo], todo, s, cache, workers)
    for n_done, (i, res) in enumerate(runs, start=1):
        el = time.perf_counter() - t0
        eta = el / n_done * (len(todo) - n_done)
        head = f"[{n_done:>{len(str(len(todo)))}}/{len(todo)}] {jobs[i].name}:"
        if isinstance(res, FdtdRunError):
            why = str(res).splitlines()[0] if str(res) else type(res).__name__
            report.failed.append((jobs[i].name, why))
            say(f"{head} FAILED: {why}")
            continue
        results[i] = res
        traces_done += int(res["n_traces"])
        say(
            f"{head} {res['n_traces']} traces, {res['wall_s']:.1f} s; "
            f"{traces_done / el:.2f} A-scans/s, ETA {eta:.0f} s"
        )
    report.wall_s = time.perf_counter() - t0
    report.results = [results[i] for i in range(len(jobs)) if i in results]
    return report


def _outcome(get: Callable[[], dict[str, Any]]) -> dict[str, Any] | FdtdRunError:
    """A task's result, or the scene's own failure (any other error is a bug: raised)."""
    try:
        return get()
    except FdtdRunError as exc:
        return exc


def _execute(
    jobs: list[SceneJob], index: list[int], s: FdtdSettings, cache: Path, workers: int
) -> Iterator[tuple[int, dict[str, Any] | FdtdRunError]]:
    if not jobs:
        return
    if s.scheduler == "local-processes":
        ctx = get_context("spawn")  # no forked copies of a parent's threads or torch
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as ex:
            futs = {ex.submit(run_scene, job, cache): i for job, i in zip(jobs, index, strict=True)}
            for fut in as_completed(futs):
                yield futs[fut], _outcome(fut.result)
        return
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if s.scheduler == "dask-local":
        cluster = LocalCluster(
            n_workers=min(workers, len(jobs)),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        client = Client(s.scheduler)
    try:
        tasks = client.map(run_scene, jobs, cache=cache, pure=False)
        order = {t.key: i for t, i in zip(tasks, index, strict=True)}
        for task in dask_completed(tasks):
            yield order[task.key], _outcome(task.result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def export(report: FarmReport, jobs: Sequence[SceneJob], out_dir: Path) -> Path:
    """Each scene's session file (the gprMax-layout B-scan when sessions are off) and truth
    CSV into ``out_dir`` as ``<name>.h5`` + ``<name>_truth.csv`` (hard links where the file
    system allows, else copies: one recording per scene, as ``evaluate lanes=DIR`` expects)
    and ``scenes.csv`` indexing them (the scenes that finished); returns the index."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    done = {r["name"]: r for r in report.results}
    for job in jobs:
        res = done.get(job.name)
        if res is None:  # failed: not exported
            continue
        folder = Path(res["folder"])
        session = folder / "session.h5"
        _link_or_copy(session if session.is_file() else folder / BSCAN, out_dir / f"{job.name}.h5")
        write_truth_csv(out_dir / f"{job.name}_truth.csv", list(job.truth))
        rows.append(
            {
                "name": job.name,
                "kind": job.info.get("kind", ""),
                "soil": job.info.get("soil", ""),
                "seed": job.info.get("seed", ""),
                "hash": folder.name,
                **{k: res.get(k, "") for k in INDEX_COLUMNS[5:]},
            }
        )
    index = out_dir / "scenes.csv"
    with index.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=INDEX_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return index


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
