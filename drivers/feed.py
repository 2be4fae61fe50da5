"""What the emulators send: items from the simulator, a recording, or a small generator.

Every feed yields data items in time order (``host_time_s`` relative to the start of
the feed) in chunks of about ``chunk_s``; the emulators pace them at real rate.

The built-in ``synthetic`` generator is deliberately simple (a Ricker ground
reflection, one diffraction hyperbola per target, exponential EMI decays over a
metal target and white noise): it exercises the drivers at the real rates and sizes
without depending on :mod:`detect.sim`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detect.blocks import FixQuality, GprBlock, GprHeader, GpsFix, MdBlock, MdHeader
from detect.geo import enu_to_lat_lon
from detect.sources.base import Item

C_M_NS = 0.299792458


@dataclass(frozen=True)
class SyntheticSettings:
    speed_m_s: float = 0.5
    gpr_rate_hz: float = 100.0
    n_samples: int = 512
    dt_ns: float = 0.0390625
    antenna_hz: float = 1.5e9
    emi_rate_hz: float = 1000.0
    n_gates: int = 8
    gps_rate_hz: float = 5.0
    lat0_deg: float = 45.0
    lon0_deg: float = 15.0
    heading_deg: float = 90.0
    targets_m: tuple[float, ...] = (2.0, 5.0)
    target_depth_m: float = 0.1
    eps_r: float = 6.0
    noise: float = 0.01
    chunk_s: float = 0.05
    seed: int = 0


def gate_times_s(n: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.geomspace(10e-6, 1e-3, n))


def lane_to_latlon(
    x_m: np.ndarray, lat0: float, lon0: float, heading_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Along-track metres on a straight lane -> lat/lon (local tangent plane)."""
    h = math.radians(heading_deg)
    north, east = np.cos(h) * x_m, np.sin(h) * x_m
    lat, lon = enu_to_lat_lon(lat0, lon0, east, north)
    return np.asarray(lat), np.asarray(lon)


def synthetic(s: SyntheticSettings, duration_s: float | None = None) -> Iterator[list[Item]]:
    rng = np.random.default_rng(s.seed)
    t_ns = np.arange(s.n_samples) * s.dt_ns
    v_m_ns = C_M_NS / math.sqrt(s.eps_r)
    gates = np.array(gate_times_s(s.n_gates))
    ghdr = GprHeader(dt_ns=s.dt_ns, time_zero_ns=2.0, antenna_hz=s.antenna_hz)
    mhdr = MdHeader(
        sample_rate_hz=s.emi_rate_hz,
        channel_names=tuple(f"g{i}" for i in range(s.n_gates)),
        gate_times_s=tuple(gates),
    )
    f_ghz = s.antenna_hz * 1e-9
    n_gpr = n_emi = n_gps = 0
    k = 0
    while duration_s is None or k * s.chunk_s < duration_s:
        t1 = (k + 1) * s.chunk_s
        items: list[Item] = []
        tg = np.arange(n_gpr, int(t1 * s.gpr_rate_hz)) / s.gpr_rate_hz
        if tg.size:
            x = tg * s.speed_m_s
            arrivals = [np.full(x.shape, 2.0)]
            amps = [np.ones(x.shape)]
            for xt in s.targets_m:
                r = np.hypot(x - xt, s.target_depth_m)
                arrivals.append(2.0 + 2 * r / v_m_ns)
                amps.append(0.4 * s.target_depth_m / np.maximum(r, s.target_depth_m))
            data = rng.normal(0, s.noise, (tg.size, s.n_samples))
            for a, amp in zip(arrivals, amps, strict=True):
                arg = (np.pi * f_ghz * (t_ns[None, :] - a[:, None])) ** 2
                data += amp[:, None] * (1 - 2 * arg) * np.exp(-arg)
            seq = np.arange(n_gpr, n_gpr + tg.size)
            items.append(GprBlock.build(data, ghdr, seq=seq, host_time_s=tg, position_m=x))
            n_gpr += tg.size
        te = np.arange(n_emi, int(t1 * s.emi_rate_hz)) / s.emi_rate_hz
        if te.size:
            x = te * s.speed_m_s
            amp = np.zeros(x.shape)
            for xt in s.targets_m:
                amp += 1.0 / (1.0 + ((x - xt) / 0.15) ** 2) ** 3
            decay = np.exp(-gates / 2e-4)
            data = amp[:, None] * decay[None, :] + rng.normal(
                0, s.noise * 0.1, (te.size, s.n_gates)
            )
            seq = np.arange(n_emi, n_emi + te.size)
            items.append(MdBlock.build(data, mhdr, seq=seq, host_time_s=te, position_m=x))
            n_emi += te.size
        for tp in np.arange(n_gps, int(t1 * s.gps_rate_hz)) / s.gps_rate_hz:
            lat, lon = lane_to_latlon(
                np.array([tp * s.speed_m_s]), s.lat0_deg, s.lon0_deg, s.heading_deg
            )
            items.append(
                GpsFix(
                    host_time_s=float(tp),
                    lat_deg=float(lat[0]),
                    lon_deg=float(lon[0]),
                    alt_m=100.0,
                    quality=FixQuality.RTK_FIXED,
                    n_sats=14,
                    hdop=0.7,
                    h_acc_m=0.02,
                    correction_age_s=1.0,
                    utc_s=1.7e9 + float(tp),
                    speed_m_s=s.speed_m_s,
                    course_deg=s.heading_deg,
                )
            )
            n_gps += 1
        n_gps = int(t1 * s.gps_rate_hz)
        k += 1
        yield items


def _split_block(b: GprBlock | MdBlock, edges: np.ndarray) -> list[Item]:
    cuts = np.searchsorted(b.host_time_s, edges[1:-1])
    out: list[Item] = []
    for idx in np.split(np.arange(b.n), cuts):
        if idx.size:
            out.append(
                type(b)(
                    data=b.data[idx],
                    seq=b.seq[idx],
                    host_time_s=b.host_time_s[idx],
                    position_m=b.position_m[idx],
                    header=b.header,  # type: ignore[arg-type]
                )
            )
    return out


def from_blocks(
    blocks: Sequence[GprBlock | MdBlock], fixes: Sequence[GpsFix], chunk_s: float = 0.05
) -> Iterator[list[Item]]:
    """Re-chunk whole recorded streams into time-ordered chunks starting at t = 0."""
    starts = [float(b.host_time_s[0]) for b in blocks if b.n] + [f.host_time_s for f in fixes]
    ends = [float(b.host_time_s[-1]) for b in blocks if b.n] + [f.host_time_s for f in fixes]
    if not starts:
        return
    t0, t_end = min(starts), max(ends)
    edges = t0 + np.arange(0, (t_end - t0) / chunk_s + 2) * chunk_s
    parts: list[list[Item]] = [[] for _ in range(edges.size - 1)]
    for b in blocks:
        if not b.n:
            continue
        shifted = type(b)(
            data=b.data,
            seq=b.seq,
            host_time_s=b.host_time_s - t0,
            position_m=b.position_m,
            header=b.header,  # type: ignore[arg-type]
        )
        for piece in _split_block(shifted, edges - t0):
            assert isinstance(piece, (GprBlock, MdBlock))
            i = min(int(piece.host_time_s[0] // chunk_s), len(parts) - 1)
            parts[i].append(piece)
    for f in fixes:
        i = min(int((f.host_time_s - t0) // chunk_s), len(parts) - 1)
        parts[i].append(_shift_fix(f, -t0))
    yield from parts


def _shift_fix(f: GpsFix, dt_s: float) -> GpsFix:
    from dataclasses import replace

    return replace(f, host_time_s=f.host_time_s + dt_s)


def session_feed(path: str, chunk_s: float = 0.05) -> Iterator[list[Item]]:
    from detect.io.session import SessionReader

    with SessionReader(path) as r:
        blocks = [b for b in (r.gpr(), r.emi()) if b is not None]
        fixes = list(r.gps())
    yield from from_blocks(blocks, fixes, chunk_s)


def sim_feed(params: dict[str, Any], duration_s: float | None) -> Iterator[list[Item]]:
    """Items from the simulator source (``kind: sim``), as fast as it makes them."""
    from detect.sources.registry import create_source

    src = create_source({"kind": "sim", **params})
    with src:
        t0: float | None = None
        for item in src.iter_items(0.1):
            t = (
                float(item.host_time_s[0])
                if isinstance(item, (GprBlock, MdBlock))
                else (item.host_time_s)
            )
            t0 = t if t0 is None else t0
            if duration_s is not None and t - t0 > duration_s:
                return
            yield [item]


def make_feed(
    kind: str,
    duration_s: float | None = None,
    session_path: str | None = None,
    seed: int = 0,
    sim_params: dict[str, Any] | None = None,
) -> Iterator[list[Item]]:
    if kind == "synthetic":
        return synthetic(SyntheticSettings(seed=seed), duration_s)
    if kind == "session":
        if not session_path:
            raise ValueError("emulate.feed=session needs emulate.session_path")
        return session_feed(session_path)
    if kind == "sim":
        return sim_feed({"realtime": False, **(sim_params or {})}, duration_s)
    raise ValueError(f"unknown emulator feed '{kind}'; one of synthetic, sim, session")
