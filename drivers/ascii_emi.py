"""Kind ``ascii_emi``: metal detectors that print readings as text lines.

Two conventions are built in (``preset``), and any other is a ``regex``:

* ``pi_lines`` - the open-source pulse-induction detector convention: one reading
  per line, numbers separated by commas, semicolons or white space (one number per
  decay gate), and ``#`` lines carrying metadata as ``# key: value`` or
  ``# key=value`` (``rate_hz``, ``gates_us`` as a list, ``names``).
  With ``time_field`` set, that column is the device time (``time_unit_s`` per unit)
  and is not a channel.
* ``magnetometer`` - ``$value,signal`` records (fluxgate / Arduino magnetometer
  sketches): channels ``value`` and ``signal``.
* ``regex`` - named groups become channels, in order (``(?P<x>...)``).

Lines that do not parse (wrong field count, not numbers, not finite) are counted as
corrupt frames and skipped; an over-long line without newline is dropped as garbage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from detect.blocks import MdBlock, MdHeader
from detect.sources.base import Item

from .gps import LineSplitter, LineStats
from .stream import ClockSync, StreamSource

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
PRESETS: dict[str, str | None] = {
    "pi_lines": None,
    "magnetometer": rf"^\$(?P<value>{_NUM}),(?P<signal>{_NUM})\s*$",
}
_SPLIT = re.compile(r"[,;\s]+")
_META = re.compile(r"^#\s*([A-Za-z_][\w.]*)\s*[:=]\s*(.*?)\s*$")


class AsciiEmiParser:
    """Lines -> rows of floats plus metadata; no I/O, so it is fuzzed directly."""

    def __init__(
        self,
        preset: str = "pi_lines",
        regex: str | None = None,
        channels: Sequence[str] | None = None,
        time_field: int | None = None,
        comment: str = "#",
    ) -> None:
        if regex is None:
            if preset not in PRESETS:
                raise ValueError(f"unknown ascii_emi preset '{preset}'; one of {sorted(PRESETS)}")
            regex = PRESETS[preset]
        self.pattern = re.compile(regex) if regex else None
        if self.pattern is not None and not self.pattern.groupindex:
            raise ValueError(f"ascii_emi regex {regex!r} has no named groups")
        self.channels = tuple(channels) if channels else None
        if self.pattern is not None and self.channels is None:
            self.channels = tuple(self.pattern.groupindex)
        self.time_field = time_field
        self.comment = comment.encode()
        self.meta: dict[str, str] = {}
        self.splitter = LineSplitter()

    @property
    def stats(self) -> LineStats:
        return self.splitter.stats

    def reset(self) -> None:
        self.splitter.reset()

    def feed(self, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values (n, n_channels) float64, device_time or None)``."""
        rows: list[list[float]] = []
        times: list[float] = []
        for raw in self.splitter.feed(data):
            line = raw.strip()
            if not line:
                continue
            if line.startswith(self.comment):
                self._meta(line.decode("utf-8", "replace"))
                continue
            parsed = self._parse(line.decode("ascii", "replace"))
            if parsed is None:
                self.stats.corrupt += 1
                continue
            t, vals = parsed
            if self.channels is None:
                self.channels = tuple(self.meta_names(len(vals)))
            if len(vals) != len(self.channels):
                self.stats.corrupt += 1
                continue
            rows.append(vals)
            times.append(t)
            self.stats.lines += 1
        n_ch = len(self.channels) if self.channels else 0
        arr = np.array(rows, dtype=np.float64).reshape(len(rows), n_ch)
        tarr = np.array(times, dtype=np.float64) if self.time_field is not None else None
        return arr, tarr

    def meta_names(self, n: int) -> list[str]:
        names = self.meta.get("names") or self.meta.get("channels")
        if names:
            parts = [p for p in _SPLIT.split(names) if p]
            if len(parts) == n:
                return parts
        return [f"g{i}" for i in range(n)]

    def _meta(self, line: str) -> None:
        m = _META.match(line)
        if m:
            self.meta[m.group(1).lower()] = m.group(2)
            if m.group(1).lower() in ("names", "channels") and self.pattern is None:
                self.channels = None

    def _parse(self, text: str) -> tuple[float, list[float]] | None:
        try:
            if self.pattern is not None:
                m = self.pattern.match(text)
                if m is None:
                    return None
                vals = [float(m.group(k)) for k in self.pattern.groupindex]
            else:
                vals = [float(p) for p in _SPLIT.split(text) if p]
        except ValueError:
            return None
        if not vals or not all(math.isfinite(v) for v in vals):
            return None
        t = math.nan
        if self.time_field is not None:
            if not (-len(vals) <= self.time_field < len(vals)):
                return None
            t = vals.pop(self.time_field)
            if not vals:
                return None
        return t, vals

    def gate_times_s(self) -> tuple[float, ...] | None:
        g = self.meta.get("gates_us") or self.meta.get("gate_times_us")
        if not g:
            return None
        try:
            vals = tuple(float(x) * 1e-6 for x in _SPLIT.split(g) if x)
        except ValueError:
            return None
        return vals if self.channels and len(vals) == len(self.channels) else None

    def rate_hz(self, default: float) -> float:
        for key in ("rate_hz", "sample_rate_hz", "rate"):
            v = self.meta.get(key)
            if v:
                try:
                    f = float(v)
                except ValueError:
                    continue
                if math.isfinite(f) and f > 0:
                    return f
        return default


class AsciiEmiSource(StreamSource):
    sensors = ("emi",)

    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        preset: str = "pi_lines",
        regex: str | None = None,
        channels: Sequence[str] | None = None,
        sample_rate_hz: float = 1000.0,
        time_field: int | None = None,
        time_unit_s: float = 1e-6,
        scale: float = 1.0,
        gates_us: Sequence[float] | None = None,
        sensor: str = "emi",
        kind: str | None = None,
        **base: Any,
    ) -> None:
        if not (sample_rate_hz > 0):
            raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
        super().__init__(url, baudrate, sensors=(sensor,), **base)
        self.sensor = sensor
        self.parser = AsciiEmiParser(preset, regex, channels, time_field)
        if gates_us:
            # the device's own "# gates_us:" line, when it prints one, replaces this
            self.parser.meta["gates_us"] = ",".join(f"{float(g):g}" for g in gates_us)
        self.sample_rate_hz = float(sample_rate_hz)
        self.time_unit_s = float(time_unit_s)
        self.scale = float(scale)
        self.clock_sync = ClockSync()
        self._count = 0
        self.kind = kind or ("magnetometer" if preset == "magnetometer" else "pulse_induction")

    def _reset_decoder(self) -> None:
        self.parser.reset()
        self.clock_sync.reset()

    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        st = self.parser.stats
        before = LineStats(**st.__dict__)
        values, dev_t = self.parser.feed(data)
        h = self.health[self.sensor]
        for name, d in (
            ("corrupt_frames", st.corrupt - before.corrupt),
            ("garbage_bytes", st.garbage_bytes - before.garbage_bytes),
        ):
            if d:
                h.count(name, d)
        n = values.shape[0]
        if n == 0 or self.parser.channels is None:
            return []
        h.frames_received(n, st.line_bytes - before.line_bytes)
        rate = self.parser.rate_hz(self.sample_rate_hz)
        if dev_t is not None:
            dev_s = dev_t * self.time_unit_s
            self.clock_sync.observe(float(dev_s[-1]), rx_time_s)
            host = dev_s + self.clock_sync.offset_s
        else:
            host = rx_time_s - (n - 1 - np.arange(n)) / rate
        hdr = MdHeader(
            sample_rate_hz=rate,
            channel_names=tuple(self.parser.channels),
            gate_times_s=self.parser.gate_times_s(),
            kind=self.parser.meta.get("kind", self.kind),
            sensor=self.sensor,
        )
        seq = self._count + np.arange(n, dtype=np.int64)
        self._count += n
        return [MdBlock.build(values * self.scale, hdr, seq=seq, host_time_s=host)]
