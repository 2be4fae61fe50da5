"""Small fakes for the pipeline tests: a sensor head with GPR + EMI + GPS on a fake clock."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix, MdBlock, MdHeader
from detect.sources.base import Source, SourceExhausted

GATES_S = tuple(np.geomspace(10e-6, 1e-3, 8).tolist())
LAT0, LON0 = 45.0, 15.0
M_PER_DEG_LAT = 6_371_008.8 * math.pi / 180.0


#: overrides for a pipeline on the fake head: no shipped model (the uncalibrated interim
#: detector, so nothing depends on trained weights), EMI 0.3 m behind the GPR, alarms at 0.5
INTERIM_HEAD = (
    "run.display=false",
    "model.name=__none__",
    "model.allow_interim=true",
    "align.offsets_m.emi=0.3",
    "alarm.threshold=0.5",
    "alarm.hysteresis=0.1",
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeHead(Source):
    """A head moving north at ``speed_m_s`` over targets at ``targets_m``.

    GPR: 128 samples/trace at ``gpr_hz``, a flat layer plus a pulse whose amplitude falls off
    with the horizontal distance to a target. EMI: 8 decaying gates at ``emi_hz`` with a
    Gaussian bump over each target, the coil ``emi_offset_m`` ahead of the head reference
    (blocks carry the head reference position, as every source does). GPS: 5 Hz fixes along
    a meridian from (LAT0, LON0).
    ``gpr_off_s``: (t0, t1) during which the GPR delivers nothing (unplugged);
    ``gps_off_after_s``: GPS delivers no fixes after this time.
    """

    sensors = ("gpr", "emi", "gps")
    paced = False

    def __init__(
        self,
        clock: FakeClock,
        duration_s: float = 12.0,
        speed_m_s: float = 0.5,
        targets_m: Sequence[float] = (1.5, 3.0, 4.5),
        gpr_off_s: tuple[float, float] | None = None,
        gps_off_after_s: float | None = None,
        step_s: float = 0.05,
        gpr_hz: float = 100.0,
        emi_hz: float = 1000.0,
        stall_timeout_s: float = 0.4,
        seed: int = 0,
        emi_offset_m: float = 0.3,
        all_off_s: tuple[float, float] | None = None,
        odometer_slip_m: float = 0.0,
    ) -> None:
        super().__init__("fake-head", stall_timeout_s=stall_timeout_s, clock=clock)
        self.all_off = all_off_s
        self.odometer_slip_m = odometer_slip_m
        self.lost_on_resume = 0
        self.fake_clock = clock
        self.duration_s = duration_s
        self.speed = speed_m_s
        self.targets = np.asarray(targets_m, dtype=np.float64)
        self.gpr_off = gpr_off_s
        self.gps_off_after = gps_off_after_s
        self.step_s = step_s
        self.gpr_hz, self.emi_hz = gpr_hz, emi_hz
        self.rng = np.random.default_rng(seed)
        self.emi_offset_m = emi_offset_m
        self.t_rel = 0.0
        self.n_gpr = self.n_emi = self.n_gps = 0
        self.gpr_positions: list[float] = []

    def _open(self) -> None:
        pass

    def head_m(self, t_rel: np.ndarray | float) -> Any:
        """Where the odometer says the head is (it slips by ``odometer_slip_m`` at the end of
        ``all_off_s``, unseen while nothing is sent)."""
        t = np.asarray(t_rel)
        slip = 0.0 if self.all_off is None else self.odometer_slip_m * (t >= self.all_off[1])
        return self.speed * t + slip

    def _gpr(self, t: np.ndarray) -> GprBlock:
        x = self.head_m(t)
        k = np.arange(128)
        layer = np.exp(-0.5 * ((k - 10) / 2.0) ** 2)
        d = np.abs(x[:, None] - self.targets[None, :]).min(axis=1)
        amp = np.exp(-0.5 * (d / 0.06) ** 2)
        pulse = np.exp(-0.5 * ((k - 60) / 3.0) ** 2) * np.cos(0.8 * (k - 60))
        data = layer[None, :] + amp[:, None] * pulse[None, :]
        data += 0.01 * self.rng.standard_normal(data.shape)
        return GprBlock.build(
            data,
            GprHeader(dt_ns=20.0 / 128, antenna_hz=1.5e9),
            seq=self.n_gpr + np.arange(len(t)),
            host_time_s=1000.0 + t,
            position_m=x,
        )

    def _emi(self, t: np.ndarray) -> MdBlock:
        x = self.head_m(t)
        coil = x + self.emi_offset_m  # the coil is ahead of the head reference
        d = np.abs(coil[:, None] - self.targets[None, :]).min(axis=1)
        bump = np.exp(-0.5 * (d / 0.08) ** 2)
        decay = np.exp(-np.asarray(GATES_S) / 2e-4)
        data = bump[:, None] * decay[None, :] + 0.005 * self.rng.standard_normal((len(t), 8))
        return MdBlock.build(
            data,
            MdHeader(
                sample_rate_hz=self.emi_hz,
                channel_names=tuple(f"g{i}" for i in range(8)),
                gate_times_s=GATES_S,
            ),
            seq=self.n_emi + np.arange(len(t)),
            host_time_s=1000.0 + t,
            position_m=x,
        )

    def _read(self, timeout_s: float) -> list[Any]:
        if self.t_rel >= self.duration_s:
            raise SourceExhausted(self.name)
        t0, t1 = self.t_rel, self.t_rel + self.step_s
        self.t_rel = t1
        self.fake_clock.t = 1000.0 + t1
        if self.data_clock is not None:  # not paced: its health runs on the data's time
            self.data_clock.advance(1000.0 + t1)
        out: list[Any] = []
        if self.all_off is not None and self.all_off[0] <= t0 < self.all_off[1]:
            self.lost_on_resume += round(self.step_s * self.gpr_hz)
            return out  # the link is down: nothing at all
        if self.lost_on_resume:  # the device's sequence numbers jumped: frames lost
            self.health["gpr"].count("dropped_frames", self.lost_on_resume)
            self.lost_on_resume = 0
        tg = np.arange(math.ceil(t0 * self.gpr_hz), math.ceil(t1 * self.gpr_hz)) / self.gpr_hz
        gpr_on = self.gpr_off is None or not (self.gpr_off[0] <= t0 < self.gpr_off[1])
        if gpr_on and len(tg):
            out.append(self._gpr(tg))
            self.gpr_positions.extend(self.head_m(tg).tolist())
            self.n_gpr += len(tg)
            self.health["gpr"].frames_received(len(tg))
        te = np.arange(math.ceil(t0 * self.emi_hz), math.ceil(t1 * self.emi_hz)) / self.emi_hz
        out.append(self._emi(te))
        self.n_emi += len(te)
        self.health["emi"].frames_received(len(te))
        tf = np.arange(math.ceil(t0 * 5), math.ceil(t1 * 5)) / 5.0
        for t in tf:
            if self.gps_off_after is not None and t > self.gps_off_after:
                fix = GpsFix(1000.0 + t, None, None, quality=FixQuality.NONE)
            else:
                fix = GpsFix(
                    1000.0 + t,
                    LAT0 + float(self.head_m(t)) / M_PER_DEG_LAT,
                    LON0,
                    quality=FixQuality.RTK_FIXED,
                    h_acc_m=0.02,
                )
            out.append(fix)
            self.health["gps"].frames_received(1)
        return out


def walk_until(pipe: Any, source: FakeHead, t_rel_s: float) -> None:
    """Feed ``pipe`` from ``source`` until the fake time reaches ``t_rel_s`` (what ``drive``
    does, without its wall-clock flushes: the writer then flushes on the fake clock only)."""
    while source.t_rel < t_rel_s - 1e-9:
        pipe.handle(source.read(source.step_s))
        pipe.poll([source])


class FullDisk:
    """A session writer whose disk fills up after ``ok_writes`` writes."""

    def __init__(self, ok_writes: int) -> None:
        self.n = ok_writes
        self.closed = False

    def write(self, item: Any) -> None:
        if self.n <= 0:
            raise OSError(28, "No space left on device")
        self.n -= 1

    def write_coverage(self, *args: Any) -> None:
        self.write(args)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
