"""The console as a pipeline :class:`Sink`: turns the pipeline's outputs into small
messages for the browser (:class:`Hub`). Runs in the pipeline thread, so it only does
cheap array work, and the radargram only while a browser is watching.

It also runs the early cue (:class:`detect.alarms.EarlyCue`) on the processed blocks ("CUE"
on the console, never an alarm nor recorded), and hands the operator's outcomes to the
session recording through the pipeline's sinks (``emit("on_outcome", ...)``) at each flush:
the recording is only ever written from the pipeline thread."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from detect.alarms import EarlyCue
from detect.blocks import Alarm, GprBlock, GpsFix, HealthEvent, MdBlock
from detect.sinks.base import Sink
from detect.sinks.console.hub import Hub

#: radargram rows sent per trace, and traces per message at most
WATERFALL_ROWS = 96
MAX_COLUMNS = 24
_EARTH_M_PER_DEG = 111_320.0


def _int8_b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.int8).tobytes()).decode("ascii")


class LevelScale:
    """A slowly adapting robust amplitude scale (so the picture and the tone follow the
    ground, not one strong target)."""

    def __init__(self) -> None:
        self.value = math.nan

    def update(self, level: float) -> float:
        if math.isfinite(level) and level > 0:
            if not math.isfinite(self.value):
                self.value = level
            else:
                self.value += 0.05 * (level - self.value)
        return self.value if math.isfinite(self.value) and self.value > 0 else 1.0


def gpr_tone_level(data: np.ndarray, scale: LevelScale) -> tuple[float, float]:
    """The radar tone's level (the block's strongest trace rms, NaN for no data) and the
    scale it is heard against (the running median trace rms): the console and the speaker."""
    energy = np.sqrt(np.nanmean(data * data, axis=1))
    level = float(np.nanmax(energy)) if np.isfinite(energy).any() else math.nan
    return level, scale.update(float(np.nanmedian(energy)))


def emi_tone_level(data: np.ndarray, scale: LevelScale) -> tuple[np.ndarray, float, float]:
    """The gates over the block's last quarter, the metal tone's level (the early gates'
    mean |value|) and its running scale: the console and the speaker."""
    gates = np.nanmean(data[-max(1, data.shape[0] // 4) :], axis=0)
    level = float(np.nanmean(np.abs(gates[: max(1, len(gates) // 2)])))
    return gates, level, scale.update(level)


class ConsoleSink(Sink):
    """Pipeline outputs -> browser messages. Never raises for a slow or missing browser:
    publishing only appends to the hub's bounded ring."""

    name = "console"

    def __init__(self, hub: Hub, server: Any = None, uncalibrated: bool = False,
                 emit: Callable[..., None] | None = None,
                 cue: EarlyCue | None = None) -> None:  # fmt: skip
        self.hub = hub
        #: the pipeline's ``SinkSet.emit``: outcomes go to the recording through it
        self.emit = emit
        #: the early cue (``alarm.cue`` settings: :meth:`EarlyCue.from_config`)
        self.cue = cue if cue is not None else EarlyCue()
        self.server = server
        self.uncalibrated = uncalibrated
        self._gpr_scale = LevelScale()
        self._emi_scale = LevelScale()
        self._origin: tuple[float, float] | None = None
        self._last_track_s = -math.inf

    # -- data ------------------------------------------------------------------------
    def on_block(self, item: Any) -> None:
        fresh = isinstance(item, GpsFix) and item.host_time_s - self._last_track_s > 0.5
        if fresh and item.has_fix:
            self._last_track_s = item.host_time_s
            assert item.lat_deg is not None and item.lon_deg is not None
            if self._origin is None:
                self._origin = (item.lat_deg, item.lon_deg)
            lat0, lon0 = self._origin
            x = (item.lon_deg - lon0) * _EARTH_M_PER_DEG * math.cos(math.radians(lat0))
            y = (item.lat_deg - lat0) * _EARTH_M_PER_DEG
            self.hub.publish({"type": "track", "x_m": x, "y_m": y})

    def on_processed(self, block: Any) -> None:
        for c in self.cue.feed(block):
            self.hub.publish({"type": "cue", "sensor": c.sensor, "position_m": c.position_m,
                              "ratio": c.ratio, "time_s": c.host_time_s})  # fmt: skip
        if isinstance(block, GprBlock):
            self._gpr(block)
        elif isinstance(block, MdBlock):
            self._emi(block)

    def _gpr(self, block: GprBlock) -> None:
        data = np.asarray(block.data, dtype=np.float32)
        if data.size == 0:
            return
        level, scale = gpr_tone_level(data, self._gpr_scale)
        msg: dict[str, Any] = {"type": "gpr", "level": level / scale if math.isfinite(level)
                               else None, "position_m": float(block.position_m[-1])}  # fmt: skip
        if self.hub.watched:
            step = max(1, math.ceil(data.shape[0] / MAX_COLUMNS))
            cols = data[::step]
            n_s = cols.shape[1]
            k = max(1, n_s // WATERFALL_ROWS)
            rows = cols[:, : (n_s // k) * k].reshape(cols.shape[0], -1, k).mean(axis=2)
            amp = np.clip(np.nan_to_num(rows / (3.0 * scale)) * 127.0, -127, 127)
            msg.update({"n": int(amp.shape[0]), "rows": int(amp.shape[1]), "data": _int8_b64(amp)})
        self.hub.publish(msg)

    def _emi(self, block: MdBlock) -> None:
        data = np.asarray(block.data, dtype=np.float64)
        if data.size == 0:
            return
        gates, level, scale = emi_tone_level(data, self._emi_scale)
        self.hub.publish({"type": "emi", "gates": (gates / scale).tolist(), "level": level / scale,
                          "position_m": float(block.position_m[-1])})  # fmt: skip

    # -- events ----------------------------------------------------------------------
    def on_alarm(self, alarm: Alarm) -> None:
        d = alarm.to_dict()
        if self.uncalibrated:
            d.update({"class": None, "class_certain": False, "calibration": "UNCALIBRATED"})
        self.hub.publish({"type": "alarm", "alarm": d})

    def on_health(self, event: HealthEvent) -> None:
        self.hub.publish({"type": "health", "sensor": event.sensor, "state": event.state.name,
                          "reason": event.reason, "time_s": event.host_time_s})  # fmt: skip

    def on_status(self, status: Any) -> None:
        sensors = [
            {k: s.get(k) for k in ("sensor", "state", "reason", "rate_hz", "last_frame_age_s")}
            for s in status.sensors
        ]
        self.hub.publish(
            {
                "type": "status",
                "elapsed_s": status.elapsed_s,
                "head_m": status.head_position_m,
                "speed_m_s": status.speed_m_s,
                "p_mine": status.p_mine,
                "p_position_m": status.p_mine_position_m,
                "threshold": status.threshold,
                "sensors": sensors,
                "faults": [s["sensor"] for s in status.faults],
                "needed": list(status.needed or [s["sensor"] for s in status.sensors]),
                "n_alarms": status.n_alarms,
                "distance_m": status.distance_m,
                "not_covered": status.not_covered_final,
                "not_covered_m": status.not_covered_final_m,
                "pending": status.pending,
                "recording": status.recording,
                "recording_ok": status.recording_ok,
                "gps": status.gps,
                "source": status.source,
                "model": status.model,
                "uncalibrated": self.uncalibrated,
            },
            latest="status",
        )

    def on_message(self, text: str, loud: bool = False) -> None:
        self.hub.publish({"type": "message", "text": text, "loud": loud})

    def flush(self) -> None:
        self._record_outcomes()

    def _record_outcomes(self) -> None:
        """Outcomes acknowledged since the last flush -> the recording (``/outcomes``)."""
        if self.emit is None:
            return
        for rec in self.hub.take_outcomes():
            self.emit("on_outcome", rec)

    def close(self) -> None:
        self._record_outcomes()  # before the recording closes (it is added after this sink)
        self.hub.publish({"type": "end"}, latest="end")
        self.hub.closed = True

    def stopped(self, error: str) -> str:
        return f"CONSOLE STOPPED: {error} (detection and recording go on)"
