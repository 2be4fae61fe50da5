"""``detect run`` and ``detect replay``: the live pipeline on the configured sources or a
recording at its own pacing."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from detect.alarms import EarlyCue
from detect.app.common import command, failure, out_dir_lock
from detect.engine.build import attach_outputs, build_pipeline, limit_threads
from detect.engine.drive import close_out, drive
from detect.engine.pipeline import Pipeline
from detect.errors import (
    EXIT_USAGE,
    TaskError,
)
from detect.sinks.display import Display, make_display, summary_lines
from detect.sinks.gis import head_geometry

log = logging.getLogger(__name__)


def _sensors_of(source: Any) -> tuple[str, ...]:
    return tuple(s for s in getattr(source, "sensors", ()) if s != "gps")


class _Stop:
    """Ctrl-C / SIGTERM set a flag; the loop finishes the turn and closes cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.closing = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            sigs = [signal.SIGINT, signal.SIGTERM]
            if hasattr(signal, "SIGHUP"):
                sigs.append(signal.SIGHUP)  # the terminal went away: close cleanly too
            for sig in sigs:
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.closing:
            return  # the recording and alarm files are being closed: let that finish
        if self.event.is_set():  # a second Ctrl-C: the operator really wants out
            raise KeyboardInterrupt
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _print_summary(summary: Mapping[str, Any], display: Display) -> None:
    for line in summary_lines(dict(summary)):
        print(line, flush=True)


def _open_source(spec: Mapping[str, Any]) -> Any:
    from detect.sources.base import SourceError
    from detect.sources.registry import UnknownSourceError, create_source

    try:
        return create_source(spec)
    except (UnknownSourceError, SourceError, OSError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc


def _start_console(cfg: Any, pipe: Pipeline, display: Display, out_dir: Path | None) -> Any:
    """The browser console as one more sink (``console.*``); a console that cannot start
    is one loud line, and the run goes on without it."""
    c = cfg.get("console") or {}
    enabled = c.get("enabled")
    if not (bool(cfg.run.display) if enabled is None else bool(enabled)):
        return None
    try:
        from detect.sinks.console import ConsoleSink, Hub
        from detect.sinks.console.server import ConsoleServer

        hub = Hub(out_dir)
        server = ConsoleServer(hub, str(c.get("host", "127.0.0.1")), int(c.get("port", 8765)),
                               c.get("token"))  # fmt: skip
        url = server.start()
    except Exception as exc:  # missing package, port in use, a bad binding: say it, go on
        display.message(f"CONSOLE NOT STARTED: {exc} (detection and recording go on)", loud=True)
        return None
    pipe.add_sink(ConsoleSink(hub, server, uncalibrated=not pipe.scorer.calibrated,
                              emit=pipe.sinks.emit,
                              cue=EarlyCue.from_config(pipe.alarm_logic.config.cue)))  # fmt: skip
    display.message(f"console: {url}")
    print(f"console: {url}", flush=True)
    if c.get("open_browser"):
        import webbrowser

        webbrowser.open(url)
    return server


def _start_speaker(cfg: Any, pipe: Pipeline, display: Display) -> Any:
    """The console's sounds on the laptop's speaker (``sound.*``); a speaker that cannot
    play is one loud line (what to install, or the device's error), and the run goes on."""
    s = cfg.get("sound") or {}
    if not s.get("speaker"):
        return None
    from detect.sinks.speaker import SpeakerSink

    sink = SpeakerSink(float(s.get("volume", 0.6)), s.get("device"),
                       cue=EarlyCue.from_config(pipe.alarm_logic.config.cue))  # fmt: skip
    why = sink.start()
    if why is not None:
        display.message(why, loud=True)
        return None
    pipe.add_sink(sink)
    return sink


def _threaded(source: Any) -> Any:
    """Paced sources read in their own thread (bounded queue); a fast source is read inline
    so that nothing is dropped when the pipeline is the slower side."""
    try:
        from detect.sources.threaded import ThreadedSource
    except ImportError:
        return source
    if not getattr(source, "paced", True) or isinstance(source, ThreadedSource):
        return source  # fast, or already threaded by the registry (`threaded: true`)
    return ThreadedSource(source)


def _live(cfg: Any, source: Any, stem: str, duration_s: float | None, strict: bool = False) -> int:
    """Read ``source`` through the pipeline until it ends; returns the exit status.

    ``strict`` (replay): a block that cannot be processed, or a source that fails, stops
    the run with a one-line error after the files are closed; live (``run``) the sensor
    counts as FAULT meanwhile and the run goes on (exit 4 at the end)."""
    inner = getattr(source, "inner", source)
    source = _threaded(source)

    record = bool(cfg.run.get("record", True))
    display = make_display(bool(cfg.run.display), bool(cfg.run.bell))
    info = {**source.info(), "paced": bool(getattr(source, "paced", True)),
            **head_geometry(cfg.get("align") or {})}  # fmt: skip
    try:  # the model first: a refusal leaves no output directory behind
        limit_threads(cfg)
        pipe = build_pipeline(cfg, _sensors_of(source), display, None, source_info=info)
        pipe.strict = strict
        lock = out_dir_lock(cfg, "run", stem) if record else None
    except BaseException:
        display.close()
        raise
    out_dir = None if lock is None else lock.directory
    console = _start_console(cfg, pipe, display, out_dir)
    speaker = _start_speaker(cfg, pipe, display)
    try:
        if out_dir is not None and (out_dir / "session.h5").exists():
            raise TaskError(
                f"{out_dir} already holds a session.h5: choose a new run.out_dir "
                "(a recording is never overwritten)",
                EXIT_USAGE,
            )
        src_off = info.get("emi_offset_m")
        cfg_off = pipe.aligner.offset_m("emi")
        if src_off is not None and abs(float(src_off) - cfg_off) > 1e-6:
            display.message(
                f"align.offsets_m.emi = {cfg_off} m but the source says the EMI coil is at "
                f"{src_off} m: GPR and EMI windows will not line up",
                loud=True,
            )
        where = Path(str(info.get("path") or info.get("source") or stem)).name
        summary, error = _live_loop(cfg, pipe, source, inner, out_dir, duration_s, display, where)
    except BaseException:
        display.close()  # again is harmless
        if lock is not None:  # a run that wrote nothing leaves no directory behind
            lock.release(remove_empty_dir=True)
            lock = None
        raise
    finally:
        if console is not None:
            console.stop()
        if speaker is not None:
            speaker.close()  # after close_out this does nothing
        if lock is not None:
            lock.release()
    _print_summary(summary, display)
    if error is not None:
        raise error
    return int(summary["exit_status"])


def _live_loop(
    cfg: Any,
    pipe: Pipeline,
    source: Any,
    inner: Any,
    out_dir: Path | None,
    duration_s: float | None,
    display: Display,
    where: str,
) -> tuple[dict, TaskError | None]:
    """Open the source, then the files; drive; close everything. (summary, failure)."""
    with _Stop() as stop:
        try:
            source.open()
        except Exception as exc:  # one line for the operator; nothing was written
            display.close()
            raise TaskError(
                f"cannot open source {pipe.source_info.get('source')}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                EXIT_USAGE,
            ) from exc
        if out_dir is not None:
            try:
                attach_outputs(pipe, cfg, out_dir, record=True)
            except BaseException:
                source.close()
                display.close()
                raise
        error: TaskError | None = None
        try:
            drive(pipe, source, duration_s, stop.event)
        except Exception as exc:  # a source or (strict) processing failure: close, then say
            error = failure(pipe, exc, where)
            error.__cause__ = exc
        finally:
            stop.closing = True  # from here on Ctrl-C cannot cut the files short
            try:
                pipe.poll([source], force_display=True)
            except Exception:  # the run is ending anyway: the files matter more
                log.debug("last poll failed", exc_info=True)
            source.close()  # a normal close is not a sensor fault: no poll after it
            extra = {} if error is None else {"failed": str(error), "failed_exit": error.exit_code}
            summary = close_out(pipe, out_dir, extra, truth=getattr(inner, "truth", None))
            display.close()
    return summary, error


@command
def run_task(cfg: Any) -> int:
    """``detect run``: the live pipeline on the configured sources."""
    from omegaconf import OmegaConf

    spec = OmegaConf.to_container(cfg.source, resolve=True)
    assert isinstance(spec, dict)
    source = _open_source({str(k): v for k, v in spec.items()})
    dur = cfg.run.get("duration_s")
    if dur is None and spec.get("kind") == "sim":  # a demo; hardware runs until stopped
        dur = cfg.run.get("demo_duration_s")
    return _live(cfg, source, "run", None if dur is None else float(dur))


@command
def replay_task(cfg: Any) -> int:
    """``detect replay FILE``: a recording through the live pipeline at its own pacing."""
    path = cfg.input.get("path")
    if not path:
        raise TaskError("replay needs a FILE", EXIT_USAGE)
    speed = cfg.replay.get("speed")
    from detect.io.formats import ReaderError, detect_format

    try:
        fmt = cfg.input.get("format") or detect_format(Path(str(path)))[0]
    except (ReaderError, OSError) as exc:
        raise TaskError(str(exc).splitlines()[0], EXIT_USAGE) from exc
    if fmt == "session":
        spec = {"kind": "replay", "path": str(path), "speed": speed}
    else:  # any GPR file format, paced at N x its trace rate
        spacing = cfg.input.get("trace_spacing_m")
        spec = {"kind": "file", "path": str(path), "format": fmt, "speed": speed,
                "trace_spacing_m": spacing,
                "channel": int(cfg.input.get("channel") or 0)}  # fmt: skip
    source = _open_source(spec)
    return _live(cfg, source, f"replay-{Path(str(path)).stem}", None, strict=True)
