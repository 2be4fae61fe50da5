"""Pipeline benchmarks; PRINTS figures (no assertions).

- latency p50/p99 from the arrival of the block that completes a window to its decision,
  and CPU use (% of one core) of the live pipeline on the simulator at real-time pacing;
- ``scan`` throughput as a multiple of real time, on the session just recorded;
- RSS at start and end of ``--rss-data-s`` seconds of simulated data, as fast as possible.

    .venv/bin/python scripts/bench_pipeline.py [--live-s 20] [--rss-data-s 3600]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from detect.config import compose
from detect.engine.build import build_pipeline, limit_threads
from detect.engine.drive import close_out, drive
from detect.sinks.display import PlainDisplay
from detect.sources.registry import create_source


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source(cfg, realtime: bool):
    spec = OmegaConf.to_container(cfg.source, resolve=True)
    spec["realtime"] = realtime
    return create_source(spec)


def untrained_model(directory: Path) -> str:
    """The shipped architecture with random weights: same compute as the trained model."""
    from detect.model.card import preprocessing_from_cfg
    from detect.model.classifier import save_model
    from detect.model.nets import CalibratedNet, FusionNet, NetConfig

    save_model(
        directory,
        CalibratedNet(FusionNet(NetConfig())),
        {"name": "untrained-fused", "preprocessing": preprocessing_from_cfg(compose([]))},
    )
    return str(directory)


MODEL: list[str] = []


def overrides() -> list[str]:
    return ["run.display=false", *(f"model.name={m}" for m in MODEL)]


def _console(pipe: Any, out: Path) -> Any:
    """The browser console on the pipeline, with one client reading its feed as a browser
    would (a thread in this process: its CPU is counted too). Returns a stop function."""
    import threading

    from websockets.sync.client import connect

    from detect.sinks.console import ConsoleSink, Hub
    from detect.sinks.console.server import ConsoleServer

    hub = Hub(out)
    server = ConsoleServer(hub, port=0)
    server.start()
    pipe.add_sink(ConsoleSink(hub, server))
    stop = threading.Event()

    def client() -> None:
        with connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    ws.recv(timeout=0.2)

    t = threading.Thread(target=client, daemon=True)
    t.start()

    def done() -> None:
        stop.set()
        t.join(2.0)
        server.stop()

    return done


def live(live_s: float, out: Path, console: bool = False) -> tuple[Path, float]:
    from detect.app.live import _threaded

    cfg = compose(overrides())
    limit_threads(cfg)  # as `detect run` does
    src = _threaded(source(cfg, True))
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        PlainDisplay(period_s=1e9),
        out,
        record=True,
        source_info={**src.info(), "paced": True},
    )
    stop_console = _console(pipe, out) if console else None
    src.open()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    drive(pipe, src, live_s)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    src.close()
    close_out(pipe, out)
    if stop_console is not None:
        stop_console()
    lat = np.array(pipe.latency_s) * 1e3
    print(
        f"live {wall:.1f} s{' WITH the console and one client' if console else ''}, "
        f"model {pipe.scorer.info()['name']}: {len(lat)} decision batches"
    )
    print(
        f"  latency block->decision p50 {np.percentile(lat, 50):.2f} ms, "
        f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.2f} ms"
    )
    fl = np.array(pipe.frame_latency_s) * 1e3
    if fl.size:
        print(
            f"  latency newest-trace time stamp->decision p50 {np.percentile(fl, 50):.2f} ms, "
            f"p99 {np.percentile(fl, 99):.2f} ms (includes the reader thread and queue)"
        )
    print(f"  CPU {100 * cpu / wall:.1f} % of one core (pipeline + sim + recording, one process)")
    stages = ", ".join(f"{k} {100 * v / wall:.1f} %" for k, v in pipe.stage_s.items())
    print(f"  of which (wall share of one core): {stages}")
    sim = source_only(live_s)
    print(
        f"  the simulator alone (read and drop): {sim:.1f} % -> pipeline + recording "
        f"~{100 * cpu / wall - sim:.1f} % of one core"
    )
    return out / "session.h5", wall


def source_only(live_s: float) -> float:
    """CPU share of one core the simulator alone takes (read and drop), to subtract."""
    from detect.app.live import _threaded

    src = _threaded(source(compose(overrides()), True))
    src.open()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall0 < live_s:
        src.read(0.05)
        src.poll_health()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    src.close()
    return 100 * cpu / wall


def scan(session: Path, out: Path, data_s: float) -> None:
    """``data_s``: seconds of data in the session (the live run was paced in real time)."""
    from detect.app.scan import scan_task

    cfg = compose([f"input.path={session}", f"output.dir={out}", *overrides()[1:]])
    t0 = time.perf_counter()
    scan_task(cfg)
    wall = time.perf_counter() - t0
    print(f"  scan wall {wall:.2f} s (incl. reading + plot)")
    print(f"  scan {data_s / wall:.0f}x real time ({data_s:.1f} s of data)")


def rss(data_s: float) -> None:
    cfg = compose(overrides())
    limit_threads(cfg)
    src = source(cfg, False)
    pipe = build_pipeline(
        cfg, ("gpr", "emi"), PlainDisplay(period_s=1e9), None, source_info=src.info()
    )
    src.open()
    from detect.sources.base import SourceExhausted

    t_first = None
    start_mb = None
    wall0 = time.perf_counter()
    marks = []
    while True:
        try:
            items = src.read(0.05)
        except SourceExhausted:
            break
        pipe.handle(items)
        pipe.poll([src])
        t = pipe.aligner.head_time_s
        if t_first is None and np.isfinite(t):
            t_first = t
            start_mb = rss_mb()
        if t_first is not None and t - t_first >= data_s:
            break
        if t_first is not None and len(marks) < int((t - t_first) // 300) + 1:
            marks.append((t - t_first, rss_mb()))
    src.close()
    wall = time.perf_counter() - wall0
    done = (pipe.aligner.head_time_s - t_first) if t_first is not None else 0.0
    print(
        f"rss over {done:.0f} s of simulated data in {wall:.0f} s wall "
        f"({done / max(wall, 1e-9):.1f}x real time, sim included): "
        f"start {start_mb:.1f} MB, end {rss_mb():.1f} MB; "
        + ", ".join(f"{a:.0f}s:{b:.0f}MB" for a, b in marks)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--live-s", type=float, default=20.0)
    ap.add_argument("--rss-data-s", type=float, default=3600.0)
    ap.add_argument(
        "--model",
        default=None,
        help="model name/dir (default: config's, else "
        "an untrained network of the shipped architecture)",
    )
    ap.add_argument("--only-rss", action="store_true", help="only the long-run memory check")
    ap.add_argument(
        "--console",
        action="store_true",
        help="console overhead: the live run without, then with the browser console "
        "and one connected client (no scan / memory check)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            MODEL.append(args.model)
        else:
            from detect.errors import TaskError
            from detect.model.scorers import load_scorer
            from detect.windows import window_spec_from_cfg

            cfg = compose([])
            try:  # no shipped model: time an untrained network of the shipped architecture
                load_scorer(cfg, window_spec_from_cfg(cfg))
            except TaskError:
                MODEL.append(untrained_model(Path(tmp) / "untrained"))
        print(f"model: {MODEL[0] if MODEL else 'config default'}")
        if args.console:
            live(args.live_s, Path(tmp) / "live")
            live(args.live_s, Path(tmp) / "live-console", console=True)
            return
        if not args.only_rss:
            session, data_s = live(args.live_s, Path(tmp) / "live")
            scan(session, Path(tmp) / "scan", data_s)
        rss(args.rss_data_s)


if __name__ == "__main__":
    main()
