"""The survey package for GIS: alarms, the track, ground covered and ground NOT covered.

Mine-action information management (IMSMA, QGIS in the field) takes layers: the hazards
found (points), the survey track (lines) and the area covered and not covered (polygons of
the head's swept width). This module builds them from what a run knows:

- the alarms and coverage segments of ``alarms.json`` (along-track metres per position epoch);
- the head's track: (epoch, host time, ground position) samples of one sensor's processed
  traces (:class:`TrackLog`, filled by the ``alarms.jsonl`` sink or read from a session);
- the GPS fixes (host time, lat, lon).

A position on the ground ``x`` (along-track m in epoch ``e``) is put on the map through the
time the sensor was over it: fixes interpolated at the samples' host times give where the GPS
antenna was; the antenna's lever arm to that sensor (:class:`LeverArm`: ``align.gps_antenna_m``
and the sensor's ``align.offsets_m``, turned by the direction of travel) moves it onto the
ground under the sensor, which gives a centre line per epoch, and ``x`` is interpolated along
it (on the first pass over ground the operator went back over). Epochs are separate
along-track frames: each has its own line, never merged.
A point or stretch beyond the ground with a GPS position by more than
:data:`MAX_EXTRAPOLATE_M` is not placed: its feature has a null geometry and says why.
Without any GPS fix the layers are written in a **local frame** (x = along-track m, y = 0 for
epoch 0, ``-EPOCH_GAP_M`` per later epoch): every file and one log line say so.

Files: ``alarms.geojson``, ``track.geojson``, ``covered.geojson``, ``not_covered.geojson``
(RFC 7946; lon/lat rounded to 1e-7 deg, about 1 cm; a local frame to the mm),
``survey.gpkg`` with the four layers (needs the optional ``gis`` extra, pyogrio) and
``track.csv``: the track's vertices with UTC and the run's monotonic time side by side.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from detect.blocks import GprBlock, GpsFix, MdBlock, PositionEpoch
from detect.geo import enu_to_lat_lon, lat_lon_to_enu
from detect.sinks.gis_reasons import with_reasons

log = logging.getLogger(__name__)

#: Fixes further apart than this are not interpolated across (as :class:`detect.align.GpsTrack`).
MAX_FIX_GAP_S = 2.0
#: Ground this far beyond the GPS-placed track is still placed along the end direction
#: (a sensor mounted ahead of the reference); further is left unplaced.
MAX_EXTRAPOLATE_M = 0.5
#: Swept width when the source does not state one (``source.swept_width_m``).
DEFAULT_SWEPT_WIDTH_M = 0.5
#: Half the baseline over which a strip's direction is taken (see :meth:`_Line.strip`).
HEADING_BASELINE_M = 0.25
#: Local frame: epochs drawn this far apart across the track (their frames are unrelated).
EPOCH_GAP_M = 2.0
LAYERS = ("alarms", "track", "covered", "not_covered")
#: GeoPackage version written (read without warnings by GDAL >= 2.2 and QGIS 3.x).
GPKG_VERSION = "1.2"
WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AXIS["Latitude",NORTH],'
    'AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)
LOCAL_WKT = (
    'LOCAL_CS["detect along-track frame (m)",LOCAL_DATUM["survey lane",0],'
    'UNIT["metre",1],AXIS["along",EAST],AXIS["across",NORTH]]'
)
LOCAL_NOTE = (
    "no GPS fix: coordinates are a local along-track frame in metres (x = along-track "
    f"position, y = 0 for epoch 0 and -{EPOCH_GAP_M:g} m per later epoch), NOT WGS84 "
    "longitude/latitude"
)


# --------------------------------------------------------------------------------------------
# numbers as people read them
def r_m(v: Any) -> float | None:
    """Metres to the millimetre (None for missing / not finite)."""
    return None if v is None or not math.isfinite(float(v)) else round(float(v), 3)


def r_p(v: Any) -> float | None:
    """A confidence or probability to 3 digits."""
    return None if v is None or not math.isfinite(float(v)) else round(float(v), 3)


def r_deg(v: Any) -> float | None:
    """Latitude/longitude to 1e-7 degree (about 1 cm)."""
    return None if v is None or not math.isfinite(float(v)) else round(float(v), 7)


def iso_utc(epoch_s: float | None) -> str | None:
    """POSIX seconds -> ISO 8601 UTC with milliseconds, e.g. 2024-05-01T10:11:12.345Z."""
    if epoch_s is None or not math.isfinite(epoch_s):
        return None
    t = _dt.datetime.fromtimestamp(epoch_s, tz=_dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# UTC of host times
@dataclass(frozen=True)
class UtcClock:
    """host_time_s -> UTC: ``utc = offset_s + host_time_s``; ``source`` says where from."""

    offset_s: float
    source: str

    def utc(self, host_time_s: Any) -> str | None:
        t = float(host_time_s) if host_time_s is not None else math.nan
        return iso_utc(self.offset_s + t) if math.isfinite(t) else None


def host_clock_dates(source: Mapping[str, Any]) -> bool:
    """Whether the wall clock read during the run dates the items' host times: a paced source
    whose items this process stamps with its monotonic clock as they arrive (``paced`` and
    ``host_clock``, as the source's info says). Not a simulation faster than real time (its
    times count from its own start), a file or a recording (their own time bases). The one
    rule for the display's, the console's and the files' UTC, so they never disagree."""
    return bool(source.get("paced")) and bool(source.get("host_clock", True))


def parse_utc(text: str) -> float | None:
    """ISO 8601 (as ``created_utc``) -> POSIX seconds; None when absent or unreadable."""
    try:
        t = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.timestamp()


def utc_from_gps(
    fix_t: np.ndarray, fix_utc_s: np.ndarray, near_posix_s: float | None
) -> UtcClock | None:
    """From the fixes' UTC time of day: the median offset to host time, on the day that puts
    the first fix nearest ``near_posix_s`` (a time of day needs a date; none -> None)."""
    ok = np.isfinite(fix_t) & np.isfinite(fix_utc_s)
    if near_posix_s is None or not ok.any():
        return None
    d = np.asarray(fix_utc_s[ok], dtype=np.float64) - np.asarray(fix_t[ok], dtype=np.float64)
    d = d[0] + (d - d[0] + 43_200.0) % 86_400.0 - 43_200.0  # unwrap midnight
    off = float(np.median(d))
    first = off + float(fix_t[ok][0])  # seconds of day + k days of the first fix
    day = math.floor((near_posix_s - first) / 86_400.0 + 0.5)
    return UtcClock(off + day * 86_400.0, "GPS fixes (UTC time of day)")


def utc_from_session(
    attrs: Mapping[str, Any], first_host_time_s: float | None = None
) -> UtcClock | None:
    """From a session's ``created_utc`` and ``start_host_time_s`` (the same instant); None
    when its data begin long before it started (times not of the recording host's clock:
    a simulation faster than real time, a converted file)."""
    created = parse_utc(str(attrs.get("created_utc", "")))
    start = attrs.get("start_host_time_s")
    if created is None or start is None or not math.isfinite(float(start)):
        return None
    if first_host_time_s is not None and first_host_time_s < float(start) - 60.0:
        return None
    return UtcClock(created - float(start), "session start (created_utc + host time since)")


# --------------------------------------------------------------------------------------------
# the track as the run saw it
@dataclass
class TrackLog:
    """The head's track as a run saw it: GPS fixes and one sensor's ground positions.

    ``wall`` is (POSIX s, monotonic s) read together when the run began: the host clock,
    valid for items stamped live by this process.
    """

    fixes: list[tuple[float, float, float, float]] = field(default_factory=list)
    samples: dict[str, list[np.ndarray]] = field(default_factory=dict)
    epoch: int = 0
    wall: tuple[float, float] = field(default_factory=lambda: (time.time(), time.monotonic()))
    #: (host_time_s, epoch) of each position epoch's start
    epochs: list[tuple[float, int]] = field(default_factory=list)

    def on_item(self, item: Any) -> None:
        if isinstance(item, GpsFix):
            if item.has_fix and item.lat_deg is not None and item.lon_deg is not None:
                utc = math.nan if item.utc_s is None else float(item.utc_s)
                self.fixes.append((float(item.host_time_s), item.lat_deg, item.lon_deg, utc))
        elif isinstance(item, PositionEpoch):
            self.epoch += 1
            self.epochs.append((float(item.host_time_s), self.epoch))

    def on_processed(self, block: GprBlock | MdBlock) -> None:
        t, x = block.host_time_s, block.position_m
        ok = np.isfinite(t) & np.isfinite(x)
        if not ok.any():
            return
        t, x = t[ok], x[ok]
        step = np.median(np.abs(np.diff(x))) if len(x) > 2 else 0.0
        stride = max(1, int(0.005 / step)) if step > 0 else 1  # about one sample per 5 mm
        keep = np.unique(np.r_[np.arange(0, len(t), stride), len(t) - 1])
        rows = np.stack([np.full(len(keep), float(self.epoch)), t[keep], x[keep]])
        self.samples.setdefault(block.header.sensor, []).append(rows)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(fixes (n, 4): t, lat, lon, utc_s), (samples (3, m): epoch, t, x), their sensor.

        The samples are the GPR's (else the first sensor's); where it has a gap (a fault) the
        other sensors' samples fill it, moved by their measured offset from it."""
        fx = np.array(self.fixes, dtype=np.float64).reshape(-1, 4)
        if not self.samples:
            return fx, np.empty((3, 0)), ""
        sensor = "gpr" if "gpr" in self.samples else sorted(self.samples)[0]
        base = np.concatenate(self.samples[sensor], axis=1)
        parts = [base]
        for other in sorted(set(self.samples) - {sensor}):
            parts.append(_fill_gaps(base, np.concatenate(self.samples[other], axis=1)))
        sm = np.concatenate(parts, axis=1)
        return fx, sm[:, np.lexsort((sm[1], sm[0]))], sensor

    def save(self, path: str | os.PathLike[str]) -> None:
        fx, sm, sensor = self.arrays()
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, fixes=fx, samples=sm, sensor=np.array(sensor), wall=np.array(self.wall))
        os.replace(tmp, path)


#: A sensor's samples further apart in time than this leave a gap another sensor may fill.
GAP_S = 0.25


def _fill_gaps(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``other``'s samples (3, m) inside ``base``'s gaps (per epoch), moved onto ``base``'s
    frame by the median offset where both have samples (a sensor mounted ahead)."""
    out = []
    for ep in np.unique(other[0]):
        b, o = base[:, base[0] == ep], other[:, other[0] == ep]
        if b.shape[1] < 2:
            continue
        ob, ox = np.argsort(b[1]), o
        bt, bx = b[1, ob], b[2, ob]
        j = np.clip(np.searchsorted(bt, ox[1]), 1, len(bt) - 1)
        near = np.minimum(np.abs(bt[j] - ox[1]), np.abs(bt[j - 1] - ox[1]))
        inside = (ox[1] >= bt[0]) & (ox[1] <= bt[-1])
        both = inside & (near <= GAP_S / 2)
        if not both.any():
            continue
        off = float(np.median(ox[2, both] - np.interp(ox[1, both], bt, bx)))
        gap = (near > GAP_S) | ~inside
        out.append(np.stack([ox[0, gap], ox[1, gap], ox[2, gap] - off]))
    return np.concatenate(out, axis=1) if out else np.empty((3, 0))


@dataclass(frozen=True)
class Track:
    """What the layers are built from (arrays, see :meth:`TrackLog.arrays`)."""

    fixes: np.ndarray  # (n, 4): host_time_s, lat_deg, lon_deg, utc time of day (s) or NaN
    samples: np.ndarray  # (3, m): epoch, host_time_s, ground position_m
    sensor: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[Track, tuple[float, float] | None]:
        with np.load(path) as z:
            wall = tuple(float(v) for v in z["wall"]) if "wall" in z else None
            return cls(z["fixes"], z["samples"], str(z["sensor"])), wall  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# the head's geometry
@dataclass(frozen=True)
class LeverArm:
    """Where the ground under the track's sensor is from the GPS antenna, in the head frame
    (+forward = direction of travel, +right = the operator's right), as :meth:`detect.align.
    Aligner.locate` places alarms: (sensor offset - antenna forward, -antenna right)."""

    forward_m: float = 0.0
    right_m: float = 0.0

    def __bool__(self) -> bool:
        return self.forward_m != 0.0 or self.right_m != 0.0

    @classmethod
    def from_source(cls, source: Mapping[str, Any], sensor: str) -> LeverArm:
        """From the head geometry in ``alarms.json`` ``source`` (:func:`head_geometry`)."""
        ant = source.get("gps_antenna_m") or (0.0, 0.0)
        offsets = source.get("sensor_offsets_m") or {}
        fwd, right = (float(v) for v in ant)
        return cls(float(offsets.get(sensor, 0.0) or 0.0) - fwd, -right)


def head_geometry(align: Mapping[str, Any]) -> dict[str, Any]:
    """The head's geometry from the ``align`` settings, for ``alarms.json`` ``source``: the
    GPS antenna's place (``gps_antenna_m``) and each sensor's along-track offset."""
    fwd, right = (float(v) for v in (align.get("gps_antenna_m") or (0.0, 0.0)))
    offsets = {str(k): float(v) for k, v in (align.get("offsets_m") or {}).items()}
    return {"gps_antenna_m": [fwd, right], "sensor_offsets_m": offsets}


# --------------------------------------------------------------------------------------------
# geometry
class _Line:
    """One epoch's centre line: ground position x -> (east, north) m from the origin."""

    def __init__(self, x: np.ndarray, east: np.ndarray, north: np.ndarray) -> None:
        # first pass over the ground: the samples that set a new furthest position
        keep = np.r_[True, x[1:] > np.maximum.accumulate(x)[:-1]] if len(x) else x.astype(bool)
        self.x, self.e, self.n = x[keep], east[keep], north[keep]

    def __bool__(self) -> bool:
        return len(self.x) > 0

    def span(self) -> tuple[float, float]:
        return float(self.x[0]) - MAX_EXTRAPOLATE_M, float(self.x[-1]) + MAX_EXTRAPOLATE_M

    def at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(east, north) at ground positions ``x`` (within :meth:`span`)."""
        x = np.asarray(x, dtype=np.float64)
        e = np.interp(x, self.x, self.e)
        n = np.interp(x, self.x, self.n)
        if len(self.x) >= 2:
            for end, a, b in ((x < self.x[0], 0, 1), (x > self.x[-1], -1, -2)):
                if end.any():
                    dx = self.x[a] - self.x[b]
                    if dx != 0:
                        k = (x[end] - self.x[a]) / dx
                        e[end] = self.e[a] + k * (self.e[a] - self.e[b])
                        n[end] = self.n[a] + k * (self.n[a] - self.n[b])
        return e, n

    def direction(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit (east, north) of increasing ``x`` (NaN where the line does not move): over
        +-HEADING_BASELINE_M, so GPS noise between close fixes cannot turn it."""
        lo, hi = self.span()
        ea, na = self.at(np.clip(x - HEADING_BASELINE_M, lo, hi))
        eb, nb = self.at(np.clip(x + HEADING_BASELINE_M, lo, hi))
        de, dn = eb - ea, nb - na
        norm = np.hypot(de, dn)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(norm > 0, de / norm, np.nan), np.where(norm > 0, dn / norm, np.nan)

    def strip(self, a: float, b: float, width_m: float) -> np.ndarray | None:
        """Closed ring (k, 2) of the strip ``[a, b]`` of the swept width; None if degenerate."""
        inner = self.x[(self.x > a) & (self.x < b)]
        xs = np.r_[a, inner, b]
        e, n = self.at(xs)
        ue, un = self.direction(xs)
        if len(xs) < 2 or not np.isfinite(ue).all():
            return None
        le, ln = -un * width_m / 2, ue * width_m / 2  # left of travel
        ring = np.r_[np.c_[e + le, n + ln], np.c_[e - le, n - ln][::-1]]
        return np.vstack([ring, ring[:1]])


def _to_sensor(
    antenna: _Line, x: np.ndarray, e: np.ndarray, n: np.ndarray, lever: LeverArm
) -> tuple[np.ndarray, np.ndarray]:
    """Antenna positions (e, n) at ground positions ``x`` -> the ground under the sensor.

    The head faces the direction of increasing ``x`` along the antenna's first pass (so an
    operator backing up keeps the head's orientation); where that line does not move (one
    fix, standing still) no direction is invented and the antenna position is kept."""
    ue, un = antenna.direction(x)
    ok = np.isfinite(ue)
    de = np.where(ok, lever.forward_m * ue + lever.right_m * un, 0.0)
    dn = np.where(ok, lever.forward_m * un - lever.right_m * ue, 0.0)
    return e + de, n + dn


@dataclass
class _Frame:
    """WGS84 around an origin, or the local along-track frame."""

    origin: tuple[float, float] | None

    @property
    def local(self) -> bool:
        return self.origin is None

    def coords(self, east: np.ndarray, north: np.ndarray) -> list[list[float]]:
        if self.origin is None:
            return cast(list[list[float]], np.round(np.c_[east, north], 3).tolist())
        lat, lon = enu_to_lat_lon(*self.origin, east, north)
        xy = np.c_[np.atleast_1d(lon), np.atleast_1d(lat)]
        return cast(list[list[float]], np.round(xy, 7).tolist())


def _interp_fixes(fx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat, lon, placed) of the antenna at host times ``t`` (no interpolation over gaps)."""
    ft = fx[:, 0]
    i = np.searchsorted(ft, t, side="right") - 1
    j = np.clip(i + 1, 0, len(ft) - 1)
    ib = np.clip(i, 0, len(ft) - 1)
    placed = (i >= 0) & (((i < len(ft) - 1) & (ft[j] - ft[ib] <= MAX_FIX_GAP_S)) | (t == ft[ib]))
    return np.interp(t, ft, fx[:, 1]), np.interp(t, ft, fx[:, 2]), placed


def _lines(
    track: Track, frame: _Frame, lever: LeverArm | None = None
) -> dict[int, tuple[_Line, list[np.ndarray]]]:
    """Per epoch: its centre line, and the track as walked: parts (k, 4) of (east, north,
    host time s, ground position m), split where the GPS has a gap. With GPS the vertices are
    the fixes (and the epoch's ends), each at the ground position its time had (no 5-mm
    zig-zag between noisy fixes), moved from the antenna to the ground under the sensor."""
    out: dict[int, tuple[_Line, list[np.ndarray]]] = {}
    sm = track.samples
    if not sm.size or (frame.origin is not None and not len(track.fixes)):
        return out
    for ep in np.unique(sm[0]).astype(int):
        sel = sm[0] == ep
        order = np.argsort(sm[1, sel], kind="stable")
        t, x = sm[1, sel][order], sm[2, sel][order]
        if frame.origin is None:
            e, n = x, np.full_like(x, -EPOCH_GAP_M * ep)
            out[int(ep)] = (_Line(x, e, n), [np.c_[e, n, t, x]])
            continue
        ft = track.fixes[:, 0]
        tv = np.unique(np.r_[t[0], ft[(ft > t[0]) & (ft < t[-1])], t[-1]])
        lat, lon, ok = _interp_fixes(track.fixes, tv)
        xv = np.interp(tv, t, x)
        e, n = lat_lon_to_enu(*frame.origin, lat, lon)
        e, n = np.array(e, dtype=np.float64), np.array(n, dtype=np.float64)
        antenna = _Line(xv[ok], e[ok], n[ok])
        if antenna:  # the ends past the first/last fix (at most MAX_EXTRAPOLATE_M) as held
            lo, hi = antenna.span()
            first, last = np.flatnonzero(ok)[[0, -1]]
            ends = ~ok & (xv >= lo) & (xv <= hi)
            ends &= (np.arange(len(ok)) < first) | (np.arange(len(ok)) > last)
            if ends.any():
                e[ends], n[ends] = antenna.at(xv[ends])
                ok = ok | ends
            if lever:
                e[ok], n[ok] = _to_sensor(antenna, xv[ok], e[ok], n[ok], lever)
        line = _Line(xv[ok], e[ok], n[ok])
        cuts = np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1
        parts = [
            np.c_[e[a:b], n[a:b], tv[a:b], xv[a:b]]
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(tv)], strict=True)
            if ok[a]
        ]
        out[int(ep)] = (line, parts)
    return out


def _feature(fid: str, geom: dict[str, Any] | None, props: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "id": fid, "geometry": geom, "properties": dict(props)}


def _collection(
    features: list[dict[str, Any]], meta: Mapping[str, Any], frame: _Frame
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    props = dict(meta)
    if frame.local:
        props["frame"] = LOCAL_NOTE
    else:
        props["frame"] = "WGS84 longitude/latitude (RFC 7946), 1e-7 degree"
    out["properties"] = props
    return out


# --------------------------------------------------------------------------------------------
# the layers
def _frame_of(alarms: Sequence[Mapping[str, Any]], track: Track) -> _Frame:
    fx = track.fixes
    have_gps = len(fx) > 0 or any(a.get("lat") is not None for a in alarms)
    if len(fx):
        origin: tuple[float, float] | None = (float(fx[0, 1]), float(fx[0, 2]))
    else:
        first = next((a for a in alarms if a.get("lat") is not None), None)
        origin = (float(first["lat"]), float(first["lon"])) if first else None
    return _Frame(origin if have_gps else None)


def survey_layers(
    alarms: Sequence[Mapping[str, Any]],
    coverage: Sequence[Mapping[str, Any]],
    track: Track,
    utc: UtcClock | None,
    width_m: float = DEFAULT_SWEPT_WIDTH_M,
    meta: Mapping[str, Any] | None = None,
    lever: LeverArm | None = None,
    health: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The four layers as GeoJSON FeatureCollections (see the module doc). ``lever``: from
    the GPS antenna to the ground under ``track.sensor`` (None: the antenna is over it).
    ``health``: the run's health events (:func:`detect.sinks.gis_reasons.health_records`),
    for each not-covered stretch's ``reason``."""
    coverage = with_reasons(coverage, health)
    frame = _frame_of(alarms, track)
    lines = _lines(track, frame, lever)
    common = {
        **dict(meta or {}),
        "utc_from": utc.source if utc else "unknown: no GPS time nor run start known",
        "swept_width_m": r_m(width_m),
        "track_sensor": track.sensor or None,
        # the antenna -> sensor move applied to the centre line (alarm lat/lon: by the pipeline)
        "lever_arm_m": None if frame.local else [r_m(v) for v in astuple(lever or LeverArm())],
    }
    return {
        "alarms": _collection(_alarm_features(alarms, lines, frame, utc), common, frame),
        "track": _collection(_track_features(track, lines, frame, utc), common, frame),
        "covered": _collection(
            _strip_features(coverage, "covered", lines, frame, width_m), common, frame
        ),
        "not_covered": _collection(
            _strip_features(coverage, "not_covered", lines, frame, width_m), common, frame
        ),
    }


def _alarm_features(
    alarms: Sequence[Mapping[str, Any]],
    lines: Mapping[int, tuple[_Line, list[np.ndarray]]],
    frame: _Frame,
    utc: UtcClock | None,
) -> list[dict[str, Any]]:
    out = []
    for a in alarms:
        ep = int(a.get("epoch", 0) or 0)
        geom = None
        if a.get("lat") is not None and not frame.local:
            located = "gps (at the alarm's time)"
            geom = {"type": "Point", "coordinates": [r_deg(a["lon"]), r_deg(a["lat"])]}
        else:
            line = lines.get(ep, (None,))[0]
            x = float(a["position_m"])
            if line and line.span()[0] <= x <= line.span()[1]:
                e, n = line.at(np.array([x]))
                geom = {"type": "Point", "coordinates": frame.coords(e, n)[0]}
                located = "local frame" if frame.local else "track (position along the GPS track)"
            else:
                located = "unplaced: no GPS position for this ground"
        props = {
            "id": a.get("id"),
            "utc": a.get("utc") or (utc.utc(a.get("time_s")) if utc else None),
            "time_s": a.get("time_s"),
            "epoch": ep,
            "position_m": r_m(a.get("position_m")),
            "confidence": r_p(a.get("confidence")),
            "class": a.get("class"),
            **({"tier": a["tier"]} if "tier" in a else {}),
            **({"calibration": a["calibration"]} if "calibration" in a else {}),
            "depth_m": r_m(a.get("depth_m")),
            "h_acc_m": r_m(a.get("h_acc_m")),
            "located": located,
            **{f"score_{k}": r_p(v) for k, v in (a.get("sensors") or {}).items()},
        }
        out.append(_feature(str(a.get("id")), geom, props))
    return out


def _track_features(
    track: Track,
    lines: Mapping[int, tuple[_Line, list[np.ndarray]]],
    frame: _Frame,
    utc: UtcClock | None,
) -> list[dict[str, Any]]:
    """One (Multi)LineString per epoch, in time order as walked (backing up included)."""
    out = []
    sm = track.samples
    for ep, (_, parts) in lines.items():
        parts = [p for p in parts if len(p) >= 2]
        if not parts:
            continue
        t = np.sort(sm[1, sm[0] == ep])
        length = sum(float(np.hypot(*np.diff(p[:, :2], axis=0).T).sum()) for p in parts)
        props = {
            "epoch": ep,
            "start_utc": utc.utc(t[0]) if utc else None,
            "end_utc": utc.utc(t[-1]) if utc else None,
            "start_time_s": round(float(t[0]), 3),
            "end_time_s": round(float(t[-1]), 3),
            "length_m": r_m(length),
            "gps_gaps": len(parts) - 1,
        }
        coords = [frame.coords(p[:, 0], p[:, 1]) for p in parts]
        geom = (
            {"type": "LineString", "coordinates": coords[0]}
            if len(coords) == 1
            else {"type": "MultiLineString", "coordinates": coords}
        )
        out.append(_feature(f"track-{ep}", geom, props))
    return out


def _strip_features(
    coverage: Sequence[Mapping[str, Any]],
    status: str,
    lines: Mapping[int, tuple[_Line, list[np.ndarray]]],
    frame: _Frame,
    width_m: float,
) -> list[dict[str, Any]]:
    out = []
    for k, seg in enumerate(s for s in coverage if s.get("status") == status):
        ep = int(seg.get("epoch", 0) or 0)
        a, b = float(seg["start_m"]), float(seg["end_m"])
        missing = list(seg.get("missing") or [])
        props: dict[str, Any] = {
            "status": status,
            "epoch": ep,
            "start_m": r_m(a),
            "end_m": r_m(b),
            "length_m": r_m(b - a),
        }
        if status == "not_covered":
            props["sensor"] = ",".join(missing)
            props["reason"] = seg.get("reason") or "not covered (no reason recorded)"
        line = lines.get(ep, (None,))[0]
        geom = None
        if line:
            lo, hi = line.span()
            a2, b2 = max(a, lo), min(b, hi)
            if (a2, b2) != (a, b):
                props["unplaced_m"] = r_m((b - a) - max(0.0, b2 - a2))
            ring = line.strip(a2, b2, width_m) if b2 > a2 else None
            if ring is not None:
                geom = {"type": "Polygon", "coordinates": [frame.coords(ring[:, 0], ring[:, 1])]}
        if geom is None:
            props["located"] = "unplaced: no GPS position for this ground"
        out.append(_feature(f"{status}-{ep}-{k}", geom, props))
    return out


# --------------------------------------------------------------------------------------------
# files
TRACK_CSV_FIELDS = ("epoch", "time_s", "utc", "position_m")


def track_rows(
    alarms: Sequence[Mapping[str, Any]],
    track: Track,
    utc: UtcClock | None,
    lever: LeverArm | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of ``track.csv``: the track layer's vertices in the order walked, each
    with its epoch, the run's monotonic time (``time_s``: host monotonic, or the recording's
    own time base, as the alarms' ``time_s``), UTC (empty where unknown), along-track position
    and map position (lon/lat, or x_m/y_m in the local frame)."""
    frame = _frame_of(alarms, track)
    header = [*TRACK_CSV_FIELDS, *(("x_m", "y_m") if frame.local else ("lon", "lat"))]
    rows: list[list[Any]] = []
    for ep, (_, parts) in _lines(track, frame, lever).items():
        for p in parts:
            coords = frame.coords(p[:, 0], p[:, 1])
            t = np.round(p[:, 2], 6).tolist()
            x = np.round(p[:, 3], 3).tolist()
            rows += [
                [ep, ti, (utc.utc(ti) if utc else None) or "", xi, *c]
                for ti, xi, c in zip(t, x, coords, strict=True)
            ]
    return header, rows


def write_track_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    tmp = Path(str(path) + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def write_layers(out_dir: Path, layers: Mapping[str, Mapping[str, Any]]) -> dict[str, Path]:
    """``<layer>.geojson`` for each layer, and ``survey.gpkg`` when pyogrio is installed."""
    paths: dict[str, Path] = {}
    for name, fc in layers.items():
        p = out_dir / f"{name}.geojson"
        tmp = Path(str(p) + ".tmp")
        tmp.write_text(json.dumps(fc, separators=(",", ":"), allow_nan=False) + "\n")
        os.replace(tmp, p)
        paths[f"{name}.geojson"] = p
    gpkg = write_gpkg(out_dir / "survey.gpkg", paths, local=_is_local(layers))
    if gpkg is not None:
        paths["gpkg"] = gpkg
    return paths


def _is_local(layers: Mapping[str, Mapping[str, Any]]) -> bool:
    props = next(iter(layers.values()), {}).get("properties", {})
    return str(props.get("frame", "")).startswith("no GPS")


def write_gpkg(path: Path, geojson: Mapping[str, Path], local: bool) -> Path | None:
    """One GeoPackage, a layer per GeoJSON file, converted by GDAL (pyogrio); None (and one
    log line) when pyogrio is not installed (``pip install 'detect[gis]'``)."""
    try:
        from pyogrio import raw
    except ImportError:
        log.warning("survey.gpkg not written: GeoPackage needs the gis extra (pip install "
                    "'detect[gis]'); the .geojson layers hold the same features")  # fmt: skip
        return None
    logging.getLogger("pyogrio").setLevel(logging.WARNING)  # not a line per layer
    tmp = path.with_name(path.name + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    for key, src in geojson.items():
        name = key.removesuffix(".geojson")
        meta, _fids, geom, fields = raw.read(str(src))
        n = len(fields[0]) if len(fields) else (0 if geom is None else len(geom))
        if n == 0:
            continue  # an empty layer (no alarms) has no geometry type to create it with
        raw.write(
            str(tmp),
            geom,
            fields,
            meta["fields"],
            layer=name,
            driver="GPKG",
            geometry_type=_gpkg_type(name),
            crs=LOCAL_WKT if local else WGS84_WKT,
            append=tmp.exists(),
            # GeoPackage 1.2, not a recent GDAL's default 1.4: QGIS 3.22 / GDAL 3.6 (Debian 12)
            # warn "may only be partially supported" on every layer of a 1.4 file
            dataset_options=None if tmp.exists() else {"VERSION": GPKG_VERSION},
            promote_to_multi=name == "track",
            layer_metadata={"frame": LOCAL_NOTE if local else "WGS84"},
        )
    if not tmp.exists():
        return None
    os.replace(tmp, path)
    return path


def _gpkg_type(layer: str) -> str:
    return {"alarms": "Point", "track": "MultiLineString"}.get(layer, "Polygon")


def source_utc(
    source: Mapping[str, Any], out_dir: Path | None, track: Track, wall: tuple[float, float] | None
) -> UtcClock | None:
    """The UTC of the run's host times, best first: the GPS fixes' UTC (dated by the session
    or the run), the replayed/scanned session's start, this run's recording, the host clock
    of a live run (items stamped by this process)."""
    attrs: dict[str, Any] = {}
    for key in ("path", "source"):
        p = source.get(key)
        if p and str(p).lower().endswith((".h5", ".hdf5")) and Path(str(p)).is_file():
            attrs = _session_attrs(Path(str(p)))
            if attrs:
                break
    live = host_clock_dates(source) and not attrs and source.get("format") != "session"
    if not attrs and out_dir is not None and (out_dir / "session.h5").is_file() and live:
        attrs = _session_attrs(out_dir / "session.h5")
    first = float(track.samples[1].min()) if track.samples.size else None
    session = utc_from_session(attrs, first) if attrs else None
    host = UtcClock(wall[0] - wall[1], "host clock at run start") if wall and live else None
    ref = session or host
    fx = track.fixes
    if len(fx) and ref is not None:
        near = ref.offset_s + float(fx[0, 0])
        gps = utc_from_gps(fx[:, 0], fx[:, 3], near)
        if gps is not None:
            return gps
    return ref


def _session_attrs(path: Path) -> dict[str, Any]:
    try:
        from detect.io.session import SessionReader

        with SessionReader(path) as rd:
            return dict(rd.attrs)
    except Exception:  # not a session, or unreadable: no time reference from it
        log.debug("no session attributes in %s", path, exc_info=True)
        return {}


def write_survey(
    out_dir: Path,
    result: Mapping[str, Any],
    track: Track,
    wall: tuple[float, float] | None = None,
    utc: UtcClock | None = None,
) -> tuple[dict[str, Path], UtcClock | None, bool]:
    """The package from an ``alarms.json`` document and the track: (paths, utc, local)."""
    source = dict(result.get("source") or {})
    if utc is None:
        utc = source_utc(source, out_dir, track, wall)
    width = float(source.get("swept_width_m") or DEFAULT_SWEPT_WIDTH_M)
    meta: dict[str, Any] = {"source": str(source.get("source") or source.get("path") or "")}
    if not bool((result.get("model") or {}).get("calibrated", True)):
        meta["calibration"] = "UNCALIBRATED"  # an anomaly score, not a probability; no class
    alarms = list(result.get("alarms") or [])
    lever = LeverArm.from_source(source, track.sensor)
    coverage = list(result.get("coverage") or [])
    health = list(result.get("health") or [])
    layers = survey_layers(alarms, coverage, track, utc, width, meta, lever, health)
    local = _is_local(layers)
    paths = write_layers(out_dir, layers)
    paths["track.csv"] = write_track_csv(
        out_dir / "track.csv", *track_rows(alarms, track, utc, lever)
    )
    if local:
        log.warning("survey layers in %s: %s", out_dir, LOCAL_NOTE)
    log.info(
        "survey package in %s (%s); alarm UTC from %s",
        out_dir,
        ", ".join(p.name for p in paths.values()),
        utc.source if utc else "nowhere: no GPS time nor run start known (utc null)",
    )
    return paths, utc, local
