"""Kind ``spidar``: Sensors & Software SPIDAR / NIC-500 SDK client.

Follows the public SDK documentation and examples (github.com/SensoftInc/spidar-sdk):

* REST control on ``http://<host>:8080/api``: ``GET /api`` (``data.name`` is
  "NIC-500 SDK" in SDK mode), ``PUT nic/power`` ``{"state": 2}`` (GPR on),
  ``GET nic/gpr/system_information`` (``window_time_shift_reference_ps``),
  ``GET nic/gpr/data_socket`` (``data.data_socket.port``), ``PUT nic/setup``
  (``gpr0.parameters``: points_per_trace, time_sampling_interval_ps, point_stacks,
  window_time_shift_ps; ``timer.parameters.period_s``), ``PUT nic/acquisition``
  ``{"state": 1|0}``. PUT bodies are form-encoded ``data=<json>``; every reply has
  ``status.status_code`` (0 = success; 913 = input rounded, accepted).
* A TCP data socket carrying traces: a header (``tv_sec`` u32, ``tv_nsec`` u32,
  ``trace_number`` u32, ``status`` u32, ``stacks`` u16, ``header_size`` u16 = 20
  bytes, as in the SDK's example ``struct.unpack('<LLLLHH', ...)``; the prose table
  lists ``status`` as 2 bytes, which does not add up to the documented 20) followed
  by ``points_per_trace`` float32 amplitudes in mV. Traces arrive split across reads;
  trace numbers start at 1 and may skip (or repeat) when acquisition overruns.
  ``header_size`` is read from each trace, as the SDK asks, so a longer header in a
  later firmware is skipped.

Not public, hence configurable: how an odometer/wheel trigger maps to distance
(``trace_spacing_m`` with ``trigger_mode: Pulse``) and the antenna time zero
(``first_break_point`` used to set the window time shift, as in the SDK example).

The client talks only to ``host`` as configured; it never scans or follows
addresses from replies (the API returns only a port for the data socket).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader
from detect.sources.base import Item, Source, SourceError

from .stream import ClockSync

log = logging.getLogger(__name__)

TRACE_HEADER = struct.Struct("<IIIIHH")
HEADER_SIZE = TRACE_HEADER.size
_OK_CODES = frozenset({0, 912, 913})


def header_dtype(n_points: int, header_size: int = HEADER_SIZE) -> np.dtype:
    fields: list[tuple[Any, ...]] = [
        ("tv_sec", "<u4"),
        ("tv_nsec", "<u4"),
        ("trace_number", "<u4"),
        ("status", "<u4"),
        ("stacks", "<u2"),
        ("header_size", "<u2"),
    ]
    if header_size > HEADER_SIZE:
        fields.append(("extra", "u1", (header_size - HEADER_SIZE,)))
    fields.append(("data", "<f4", (n_points,)))
    return np.dtype(fields)


class SpidarError(SourceError):
    pass


class SpidarSource(Source):
    sensors = ("gpr",)
    paced = True

    def __init__(
        self,
        host: str,
        http_port: int = 8080,
        points_per_trace: int = 200,
        time_sampling_interval_ps: int = 100,
        point_stacks: int = 4,
        period_s: float = 0.01,
        trigger_mode: str = "Free",
        window_time_shift_ps: int | None = None,
        first_break_point: int = 20,
        frequency_mhz: float | None = None,
        trace_spacing_m: float | None = None,
        http_timeout_s: float = 2.0,
        power_on: bool = True,
        expect_sdk_name: str | None = "NIC-500 SDK",
        sensor: str = "gpr",
        **base: Any,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError("spidar source needs 'host' (the NIC-500 address you configured)")
        if not 1 <= points_per_trace <= 30000:
            raise ValueError(f"points_per_trace must be in [1, 30000], got {points_per_trace}")
        if time_sampling_interval_ps <= 0:
            raise ValueError("time_sampling_interval_ps must be > 0")
        if trigger_mode not in ("Free", "Pulse"):
            raise ValueError(f"trigger_mode must be Free or Pulse, got {trigger_mode!r}")
        self.sensors = (sensor,)
        super().__init__(**base)
        self.sensor = sensor
        self.host = host
        self.api = f"http://{host}:{int(http_port)}/api"
        self.points = int(points_per_trace)
        self.dt_ps = int(time_sampling_interval_ps)
        self.stacks = int(point_stacks)
        self.period_s = float(period_s)
        self.trigger_mode = trigger_mode
        self.window_time_shift_ps = window_time_shift_ps
        self.first_break_point = int(first_break_point)
        self.frequency_mhz = frequency_mhz
        self.trace_spacing_m = trace_spacing_m
        self.http_timeout_s = float(http_timeout_s)
        self.power_on = power_on
        self.expect_sdk_name = expect_sdk_name
        self.clock_sync = ClockSync()
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._last_trace: int | None = None
        self.system_info: dict[str, Any] = {}
        self.header_sizes_seen: set[int] = set()

    # -- REST ---------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.api}/{path}" if path else self.api
        data = None
        if body is not None:
            data = urllib.parse.urlencode({"data": json.dumps(body)}).encode()
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.http_timeout_s) as resp:
                reply = json.loads(resp.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SpidarError(f"spidar {method} {url}: {exc}") from exc
        status = reply.get("status", {}) if isinstance(reply, dict) else {}
        code = int(status.get("status_code", 0)) if isinstance(status, dict) else 0
        if code not in _OK_CODES:
            raise SpidarError(f"spidar {method} {url}: status {code}: {status.get('message', '')}")
        if code:
            log.warning("spidar %s %s: status %d: %s", method, path, code, status.get("message"))
        return reply.get("data", {}) if isinstance(reply, dict) else {}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "api": self.api, "system": self.system_info}

    def _open(self) -> None:
        root = self._request("GET", "")
        name = root.get("name") if isinstance(root, dict) else None
        if self.expect_sdk_name and name != self.expect_sdk_name:
            raise SpidarError(f"{self.api}: not in SDK mode (name {name!r})")
        if self.power_on:
            self._request("PUT", "nic/power", {"state": 2})
        gpr_info = self._request("GET", "nic/gpr/system_information")
        self.system_info = gpr_info if isinstance(gpr_info, dict) else {}
        shift = self.window_time_shift_ps
        if shift is None:
            ref = self.system_info.get("gpr", {}).get("window_time_shift_reference_ps")
            shift = int(ref) - self.first_break_point * self.dt_ps if ref is not None else -55000
        port = int(self._request("GET", "nic/gpr/data_socket")["data_socket"]["port"])
        sock = socket.create_connection((self.host, port), timeout=self.http_timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        params = {
            "points_per_trace": self.points,
            "window_time_shift_ps": shift,
            "point_stacks": self.stacks,
            "time_sampling_interval_ps": self.dt_ps,
            "trigger_mode": self.trigger_mode,
        }
        try:
            # A previous session that lost the link left acquisition running; setup would
            # then fail with 4004 (GPR Already Running) on every reconnect.
            self._request("PUT", "nic/acquisition", {"state": 0})
            setup = self._request(
                "PUT",
                "nic/setup",
                {
                    "gpr0": {"parameters": params},
                    "timer": {"parameters": {"period_s": self.period_s}},
                },
            )
            freq = None
            if isinstance(setup, dict):
                for key in ("gpr0", "gpr"):
                    p = setup.get(key, {}).get("parameters", {})
                    freq = p.get("frequency_MHz", freq)
            if self.frequency_mhz is None and isinstance(freq, (int, float)) and freq > 0:
                self.frequency_mhz = float(freq)
            self._request("PUT", "nic/acquisition", {"state": 1})
        except SourceError:
            sock.close()
            self._sock = None
            raise
        self._buf.clear()
        self._last_trace = None
        self.clock_sync.reset()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                self._request("PUT", "nic/acquisition", {"state": 0})
            except SourceError as exc:
                log.debug("spidar: stop acquisition failed: %s", exc)
            sock.close()

    # -- data -----------------------------------------------------------------------
    def _read(self, timeout_s: float) -> list[Item]:
        if self._sock is None:
            raise SpidarError("data socket not open")
        self._sock.settimeout(max(timeout_s, 1e-3))
        try:
            data = self._sock.recv(1 << 20)
        except TimeoutError:
            return []
        if not data:
            raise SpidarError("data socket closed by the NIC")
        now = self.clock()
        self._buf += data
        return self._parse(now)

    def _parse(self, rx_time_s: float) -> list[Item]:
        h = self.health[self.sensor]
        if len(self._buf) < HEADER_SIZE:
            return []
        header_size = int.from_bytes(self._buf[18:20], "little")
        if not HEADER_SIZE <= header_size <= 4096:
            h.count("corrupt_frames")
            self._buf.clear()
            raise SpidarError(f"trace header_size {header_size} is not plausible; stream lost")
        self.header_sizes_seen.add(header_size)
        dtype = header_dtype(self.points, header_size)
        n = len(self._buf) // dtype.itemsize
        if n == 0:
            return []
        nbytes = n * dtype.itemsize
        rec = np.frombuffer(bytes(self._buf[:nbytes]), dtype=dtype)
        del self._buf[:nbytes]
        same = rec["header_size"] == header_size
        if not same.all():
            first_bad = int(np.argmin(same))
            h.count("corrupt_frames", n - first_bad)
            rec = rec[:first_bad]
            self._buf.clear()
            if rec.size == 0:
                raise SpidarError("trace header_size changed mid-stream; stream lost")
        tn = rec["trace_number"].astype(np.int64)
        prev = np.concatenate(
            [[self._last_trace if self._last_trace is not None else tn[0] - 1], tn[:-1]]
        )
        step = tn - prev
        missing = int(np.clip(step - 1, 0, None).sum())
        gaps = int((step != 1).sum())
        if gaps:
            h.count("gaps", gaps)
        if missing:
            h.count("dropped_frames", missing)
        self._last_trace = int(tn[-1])
        h.frames_received(rec.size, rec.size * dtype.itemsize)
        dev_s = rec["tv_sec"].astype(np.float64) + rec["tv_nsec"] * 1e-9
        self.clock_sync.observe(float(dev_s[-1]), rx_time_s)
        host = dev_s + self.clock_sync.offset_s
        pos = (
            (tn - 1) * self.trace_spacing_m
            if self.trace_spacing_m is not None
            else np.full(rec.size, math.nan)
        )
        hdr = GprHeader(
            dt_ns=self.dt_ps * 1e-3,
            time_zero_ns=self.first_break_point * self.dt_ps * 1e-3
            if self.window_time_shift_ps is None
            else 0.0,
            antenna_hz=self.frequency_mhz * 1e6 if self.frequency_mhz else None,
            sensor=self.sensor,
        )
        return [GprBlock.build(rec["data"], hdr, seq=tn, host_time_s=host, position_m=pos)]
