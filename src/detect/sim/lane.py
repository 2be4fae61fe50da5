"""One whole lane at once: scene, head walk, GPR traces, EMI readings, GPS fixes, truth."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix, MdBlock, MdHeader
from detect.geo import enu_to_lat_lon
from detect.sim.emi import simulate_emi
from detect.sim.gpr import simulate_gpr
from detect.sim.motion import Trajectory, walk
from detect.sim.odometer import Odometer
from detect.sim.scene import Scene, make_scene
from detect.sim.settings import SimSettings, settings_from


@dataclass(frozen=True)
class Lane:
    """A simulated lane. Blocks carry the *head reference* position (GPR at offset 0) as the
    odometer reports it; ``truth``, ``trajectory`` and the GPS fixes are true positions."""

    index: int
    scene: Scene
    gpr: GprBlock
    emi: MdBlock
    gps: list[GpsFix]
    truth: list[dict[str, Any]]
    trajectory: Trajectory
    duration_s: float
    odometer: Odometer = field(default_factory=Odometer)
    #: reading minus true position at the lane's true end (before ticks): the error the next
    #: lane starts with when the same wheel counts on (the live source)
    odometer_error_end_m: float = 0.0


def gpr_header(s: SimSettings) -> GprHeader:
    return GprHeader(
        dt_ns=s.gpr.dt_ns, time_zero_ns=s.gpr.time_zero_ns, antenna_hz=s.gpr.centre_hz, sensor="gpr"
    )


def emi_header(s: SimSettings) -> MdHeader:
    gates = s.gate_times_s
    return MdHeader(
        sample_rate_hz=s.emi.rate_hz,
        channel_names=tuple(f"gate{i}" for i in range(len(gates))),
        gate_times_s=gates,
        kind="pulse_induction",
        sensor="emi",
    )


def _interp(traj: Trajectory, t_s: np.ndarray) -> Trajectory:
    return Trajectory(
        t_s,
        np.interp(t_s, traj.time_s, traj.x_m),
        np.interp(t_s, traj.time_s, traj.y_m),
        np.interp(t_s, traj.time_s, traj.height_m),
    )


def gps_fixes(
    s: SimSettings, traj: Trajectory, x0_m: float, t0_s: float, rng: np.random.Generator
) -> list[GpsFix]:
    g = s.gps
    t = np.arange(0.0, traj.duration_s, 1.0 / g.rate_hz)
    if t.size == 0:
        return []
    p = _interp(traj, t + traj.time_s[0])
    along = x0_m + p.x_m + g.h_acc_m / math.sqrt(2) * rng.standard_normal(t.size)
    left = p.y_m + g.h_acc_m / math.sqrt(2) * rng.standard_normal(t.size)
    hd = math.radians(g.heading_deg)
    east = along * math.sin(hd) - left * math.cos(hd)
    north = along * math.cos(hd) + left * math.sin(hd)
    lat, lon = enu_to_lat_lon(g.lat0_deg, g.lon0_deg, east, north)
    speed = np.gradient(p.x_m, t) if t.size > 1 else np.zeros(1)
    return [
        GpsFix(
            host_time_s=float(t0_s + ti),
            lat_deg=float(la),
            lon_deg=float(lo),
            alt_m=200.0,
            quality=FixQuality.RTK_FIXED,
            n_sats=14,
            hdop=0.7,
            h_acc_m=g.h_acc_m,
            speed_m_s=float(sp),
            course_deg=g.heading_deg,
            source="gps",
        )
        for ti, la, lo, sp in zip(t, lat, lon, speed, strict=True)
    ]


def simulate_lane(
    seed: int,
    settings: SimSettings | dict[str, Any] | None = None,
    lane_index: int = 0,
    t0_s: float = 0.0,
    x0_m: float = 0.0,
    seq0_gpr: int = 0,
    seq0_emi: int = 0,
    scene: Scene | None = None,
    odometer_error_m: float = 0.0,
) -> Lane:
    """Simulate lane ``lane_index`` of ``seed``; exactly reproducible.

    ``t0_s``/``x0_m`` shift host time and along-track position (continuous streams
    over several lanes). ``scene`` replaces the seeded scene (canonical test scenes).
    ``odometer_error_m`` is the reading minus the true position at the lane start, carried
    over from earlier lanes (the previous lane's ``odometer_error_end_m``).
    """
    s = settings_from(settings)
    if scene is None:
        scene = make_scene(seed, s, lane_index)
    ss = np.random.SeedSequence([seed, lane_index, 0xD37EC7])
    r_walk, r_gpr, r_emi, r_gps, r_odo = (np.random.default_rng(c) for c in ss.spawn(5))
    traj = walk(r_walk, s.head, scene.length_m, s.emi.rate_hz)
    odo = Odometer.draw(s.odometer, r_odo, scene.length_m)
    start_m = x0_m + odometer_error_m
    duration = traj.duration_s + 1.0 / s.emi.rate_hz

    t_gpr = np.arange(0.0, duration, 1.0 / s.gpr.trace_rate_hz)
    head_gpr = _interp(traj, t_gpr)
    gpr_data = simulate_gpr(scene, head_gpr, s.gpr, r_gpr)

    coil = Trajectory(traj.time_s, traj.x_m + s.head.emi_offset_m, traj.y_m, traj.height_m)
    emi_data = simulate_emi(scene, coil, s.emi, np.asarray(s.gate_times_s), r_emi)

    gpr = GprBlock.build(
        gpr_data,
        gpr_header(s),
        seq=seq0_gpr + np.arange(t_gpr.size, dtype=np.int64),
        host_time_s=t0_s + t_gpr,
        position_m=odo.reading_m(head_gpr.x_m, start_m),
    )
    emi = MdBlock.build(
        emi_data,
        emi_header(s),
        seq=seq0_emi + np.arange(traj.time_s.size, dtype=np.int64),
        host_time_s=t0_s + traj.time_s,
        position_m=odo.reading_m(traj.x_m, start_m),
    )
    return Lane(
        index=lane_index,
        scene=scene,
        gpr=gpr,
        emi=emi,
        gps=gps_fixes(s, traj, x0_m, t0_s, r_gps),
        truth=scene.truth(x0_m),
        trajectory=traj,
        duration_s=duration,
        odometer=odo,
        odometer_error_end_m=float(
            odometer_error_m + odo.counted_m(scene.length_m) - scene.length_m
        ),
    )
