"""A simulated ``detect run`` with the console on, in a thread, for the console tests."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from detect.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ConsoleRun:
    """``detect run`` (simulator, real time) with the console on ``port``, in a thread."""

    def __init__(self, out: Path, duration_s: float, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.out = out
        self.rc: dict[str, Any] = {}
        args = ["run", f"run.duration_s={duration_s}", "run.display=false", "run.bell=false",
                "console.enabled=true", f"console.port={self.port}", f"run.out_dir={out}",
                *extra]  # fmt: skip
        self.thread = threading.Thread(target=lambda: self.rc.setdefault("rc", main(args)))

    def __enter__(self) -> ConsoleRun:
        self.thread.start()
        self.wait_listening()
        return self

    def wait_listening(self, timeout_s: float = 60.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if not self.thread.is_alive():
                raise AssertionError(f"the run ended before its console listened: {self.rc}")
            time.sleep(0.05)
        raise AssertionError("the console did not start")

    def __exit__(self, *exc: object) -> None:
        self.thread.join(120)
