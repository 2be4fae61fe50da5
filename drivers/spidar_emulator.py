"""A NIC-500 SDK stand-in: the REST resources the client uses plus the trace socket.

Binds to 127.0.0.1 by default. Traces come from a feed's GPR blocks (cropped or
zero-padded to ``points_per_trace``, sent in mV as float32) and are written in
randomly sized pieces so that traces arrive split across reads. The ``drop_frame_rate``
fault skips trace numbers (as the real NIC does when acquisition overruns).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from detect.blocks import GprBlock
from detect.sources.base import Item

from .emulate_base import FaultInjector, Faults, TcpLink
from .spidar import HEADER_SIZE, header_dtype

SDK_NAME = "NIC-500 SDK"


class SpidarEmulator:
    def __init__(
        self,
        feed: Iterator[list[Item]],
        host: str = "127.0.0.1",
        http_port: int = 0,
        data_port: int = 0,
        faults: Faults | None = None,
        speed: float = 1.0,
        mv_per_unit: float = 1000.0,
        max_piece: int = 1500,
    ) -> None:
        self.feed = feed
        self.host = host
        self.speed = speed
        self.mv_per_unit = mv_per_unit
        self.max_piece = max_piece
        self.faults = FaultInjector(faults or Faults())
        self.link = TcpLink(host, data_port)
        self.setup: dict[str, Any] = {
            "timer": {"parameters": {"period_s": 1}},
            "gpr0": {
                "parameters": {
                    "time_sampling_interval_ps": 100,
                    "frequency_MHz": 1000,
                    "point_stacks": 1,
                    "trigger_mode": "Free",
                    "window_time_shift_ps": -48000,
                    "points_per_trace": 100,
                }
            },
        }
        self.powered = False
        self.acquiring = False
        self.trace_number = 0
        self.traces_sent = 0
        self.requests: list[tuple[str, str]] = []
        self._http = ThreadingHTTPServer((host, http_port), self._handler())
        self._http.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.finished = threading.Event()
        self._rng = np.random.default_rng(0)
        self._stall_until = 0.0
        self._down_until = 0.0

    @property
    def http_port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/api"

    def start(self) -> SpidarEmulator:
        self.link.start()
        for target in (self._http.serve_forever, self._stream):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()
        for t in self._threads:
            t.join(timeout=3.0)
        self.link.close()

    def __enter__(self) -> SpidarEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stall(self, duration_s: float) -> None:
        self._stall_until = time.monotonic() + duration_s

    def unplug(self, duration_s: float) -> None:
        """Network gone for ``duration_s``: data socket closed, REST refused, then back."""
        self._down_until = time.monotonic() + duration_s
        self.link.unplug()
        timer = threading.Timer(duration_s, self.link.replug)
        timer.daemon = True
        timer.start()
        self._threads.append(timer)

    def disconnect_data(self) -> None:
        """Drop the data-socket client (the cable/Wi-Fi went away)."""
        with contextlib.suppress(OSError):
            if self.link._client is not None:
                self.link._client.close()
        self.link._client = None

    # -- REST ---------------------------------------------------------------------
    def _reply(self, path: str, method: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        self.requests.append((method, path))
        if time.monotonic() < self._down_until:
            return 503, {"data": {}, "status": {"status_code": 503, "message": "unreachable"}}
        ok = {"status_code": 0, "message": "Success"}
        if path == "/api" and method == "GET":
            return 200, {"data": {"name": SDK_NAME, "version": "emulated"}, "status": ok}
        if path == "/api/nic/power" and method == "PUT":
            self.powered = bool(body and body.get("state") == 2)
            return 200, {"data": {"state": 2 if self.powered else 0}, "status": ok}
        if path == "/api/nic/gpr/system_information" and method == "GET":
            if not self.powered:
                return 200, {
                    "data": {},
                    "status": {"status_code": 4001, "message": "GPR Not Powered"},
                }
            return 200, {
                "data": {
                    "gpr": {"window_time_shift_reference_ps": -36000, "unit_serial_number": "EMU"}
                },
                "status": ok,
            }
        if path == "/api/nic/gpr/data_socket" and method == "GET":
            return 200, {"data": {"data_socket": {"port": self.link.port}}, "status": ok}
        if path == "/api/nic/setup":
            if method == "PUT":
                if self.acquiring:
                    return 200, {
                        "data": {},
                        "status": {"status_code": 4004, "message": "GPR Already Running"},
                    }
                for key in ("gpr0", "gpr", "timer"):
                    params = (body or {}).get(key, {}).get("parameters")
                    if isinstance(params, dict):
                        tgt = "gpr0" if key in ("gpr0", "gpr") else "timer"
                        self.setup[tgt]["parameters"].update(params)
                self.trace_number = 0
            return 200, {"data": self.setup, "status": ok}
        if path == "/api/nic/acquisition" and method == "PUT":
            self.acquiring = bool(body and body.get("state") == 1)
            return 200, {"data": {"state": int(self.acquiring)}, "status": ok}
        return 404, {"data": {}, "status": {"status_code": 11, "message": f"no resource {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emu = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _go(self, method: str) -> None:
                body = None
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                    try:
                        body = json.loads(form.get("data", ["{}"])[0])
                    except ValueError:
                        body = None
                code, reply = emu._reply(self.path.rstrip("/") or "/", method, body)
                raw = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._go("GET")

            def do_PUT(self) -> None:
                self._go("PUT")

        return Handler

    # -- traces ---------------------------------------------------------------------
    def _traces(self) -> Iterator[tuple[float, np.ndarray]]:
        for chunk in self.feed:
            for item in chunk:
                if isinstance(item, GprBlock):
                    yield from zip(item.host_time_s.tolist(), item.data, strict=True)

    def _stream(self) -> None:
        try:
            start = time.monotonic()
            pending = b""
            for t, row in self._traces():
                due = start + t / self.speed
                while not self._stop.is_set() and time.monotonic() < due:
                    self._stop.wait(min(0.005, due - time.monotonic()))
                if self._stop.is_set():
                    return
                if not self.acquiring or not self.link.connected:
                    pending = b""
                    continue
                self.trace_number += 1
                if time.monotonic() < self._stall_until or self.faults.drop():
                    continue
                pending += self._encode(row)
                while pending:
                    k = int(self._rng.integers(1, self.max_piece + 1))
                    self.link.write(pending[:k])
                    pending = pending[k:]
                self.traces_sent += 1
        finally:
            self.finished.set()

    def _encode(self, row: np.ndarray) -> bytes:
        p = self.setup["gpr0"]["parameters"]
        n = int(p["points_per_trace"])
        rec = np.zeros(1, dtype=header_dtype(n))
        now = time.time()
        rec["tv_sec"] = int(now)
        rec["tv_nsec"] = int((now % 1) * 1e9)
        rec["trace_number"] = self.trace_number
        rec["stacks"] = int(p["point_stacks"])
        rec["header_size"] = HEADER_SIZE
        m = min(n, row.size)
        rec["data"][0, :m] = row[:m] * self.mv_per_unit
        return rec.tobytes()
