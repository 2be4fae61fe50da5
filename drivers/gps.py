"""GPS receivers: NMEA 0183 (kind ``gps_nmea``) and u-blox UBX NAV-PVT (kind ``gps_ubx``).

Every :class:`GpsFix` carries its fix quality, horizontal accuracy (GST standard
deviations or UBX hAcc) and correction age, so that later stages can tell an RTK
fixed position from a 5 m autonomous one. A fix without a valid position keeps
lat/lon None: a no-fix sentence still repeats the last position on many receivers
and must not be used as one.

:func:`interpolate_fixes` puts positions onto sensor host times (used by align).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pynmea2

from detect.blocks import FixQuality, GpsFix
from detect.sources.base import Item

from .framing import FrameStats
from .stream import StreamSource

log = logging.getLogger(__name__)

KNOT_M_S = 1852.0 / 3600.0
MAX_LINE = 512
NMEA_TYPES = frozenset({"GGA", "RMC", "GST", "VTG"})


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _seconds_of_day(t: dt.time | None) -> float | None:
    if t is None:
        return None
    return t.hour * 3600.0 + t.minute * 60.0 + t.second + t.microsecond * 1e-6


@dataclass
class LineStats:
    """``bytes_in == line_bytes + garbage_bytes + pending`` always holds."""

    bytes_in: int = 0
    line_bytes: int = 0
    garbage_bytes: int = 0
    lines: int = 0
    ignored: int = 0
    crc_errors: int = 0
    corrupt: int = 0


@dataclass
class LineSplitter:
    """Bytes -> complete lines (``\\n``-terminated, ``\\r`` stripped); overlong lines dropped."""

    max_line: int = MAX_LINE
    stats: LineStats = field(default_factory=LineStats)
    _buf: bytearray = field(default_factory=bytearray)
    _overlong: bool = False

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self.stats.garbage_bytes += len(self._buf)
        self._buf.clear()
        self._overlong = False

    def feed(self, data: bytes) -> list[bytes]:
        self.stats.bytes_in += len(data)
        self._buf += data
        *lines, rest = bytes(self._buf).split(b"\n")
        self._buf = bytearray(rest)
        out: list[bytes] = []
        for line in lines:
            if self._overlong or len(line) > self.max_line:
                self.stats.garbage_bytes += len(line) + 1
                self.stats.corrupt += 1
                self._overlong = False
                continue
            self.stats.line_bytes += len(line) + 1
            out.append(line.rstrip(b"\r"))
        if len(self._buf) > self.max_line:
            self.stats.garbage_bytes += len(self._buf)
            self._buf.clear()
            self._overlong = True
        return out


class NmeaParser:
    """NMEA lines -> :class:`GpsFix`, one per GGA, merged with the epoch's GST/RMC/VTG."""

    def __init__(self, require_checksum: bool = True, source: str = "gps") -> None:
        self.require_checksum = require_checksum
        self.source = source
        self.splitter = LineSplitter()
        self._gst: tuple[float | None, float] | None = None
        self._rmc: tuple[float | None, dt.date | None, float | None, float | None] | None = None
        self._vtg: tuple[float | None, float | None] | None = None

    @property
    def stats(self) -> LineStats:
        return self.splitter.stats

    def feed(self, data: bytes, host_time_s: float) -> list[GpsFix]:
        fixes: list[GpsFix] = []
        for raw in self.splitter.feed(data):
            fix = self.line(raw, host_time_s)
            if fix is not None:
                fixes.append(fix)
        return fixes

    def line(self, raw: bytes, host_time_s: float) -> GpsFix | None:
        st = self.stats
        text = raw.strip().decode("ascii", "replace")
        if not text:
            return None
        if not text.startswith("$") or len(text) < 7:
            st.ignored += 1
            return None
        kind = text[3:6]
        if kind not in NMEA_TYPES:
            st.ignored += 1
            return None
        if self.require_checksum and "*" not in text:
            st.corrupt += 1
            return None
        try:
            msg = pynmea2.parse(text, check=self.require_checksum)
        except pynmea2.ChecksumError:
            st.crc_errors += 1
            return None
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError, IndexError):
            st.corrupt += 1
            return None
        st.lines += 1
        try:
            return self._use(msg, kind, host_time_s)
        except (ValueError, TypeError, AttributeError, IndexError):
            st.corrupt += 1
            return None

    def _use(self, msg: Any, kind: str, host_time_s: float) -> GpsFix | None:
        if kind == "GST":
            sd_lat, sd_lon = _float(msg.std_dev_latitude), _float(msg.std_dev_longitude)
            if sd_lat is not None and sd_lon is not None:
                self._gst = (_seconds_of_day(msg.timestamp), math.hypot(sd_lat, sd_lon))
            return None
        if kind == "RMC":
            spd = _float(msg.spd_over_grnd)
            self._rmc = (
                _seconds_of_day(msg.timestamp),
                msg.datestamp,
                None if spd is None else spd * KNOT_M_S,
                _float(msg.true_course),
            )
            return None
        if kind == "VTG":
            kmh = _float(msg.spd_over_grnd_kmph)
            self._vtg = (None if kmh is None else kmh / 3.6, _float(msg.true_track))
            return None
        return self._gga(msg, host_time_s)

    def _gga(self, msg: Any, host_time_s: float) -> GpsFix:
        try:
            quality = FixQuality(int(msg.gps_qual or 0))
        except ValueError:
            quality = FixQuality.NONE
        sod = _seconds_of_day(msg.timestamp)
        lat = lon = None
        if quality not in (FixQuality.NONE,) and msg.lat and msg.lon:
            lat, lon = float(msg.latitude), float(msg.longitude)
        h_acc = None
        if self._gst is not None and (
            self._gst[0] is None or sod is None or abs(self._gst[0] - sod) <= 1.5
        ):
            h_acc = self._gst[1]
        speed = course = None
        utc_s = None
        if self._rmc is not None:
            r_sod, date, speed, course = self._rmc
            if date is not None and sod is not None:
                day = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC).timestamp()
                utc_s = day + sod - (86400.0 if r_sod is not None and sod - r_sod > 43200 else 0)
        if self._vtg is not None:
            speed = self._vtg[0] if self._vtg[0] is not None else speed
            course = self._vtg[1] if self._vtg[1] is not None else course
        sats = msg.num_sats
        return GpsFix(
            host_time_s=host_time_s,
            lat_deg=lat,
            lon_deg=lon,
            alt_m=_float(msg.altitude) if lat is not None else None,
            quality=quality,
            n_sats=int(sats) if sats not in (None, "") and str(sats).isdigit() else None,
            hdop=_float(msg.horizontal_dil),
            h_acc_m=h_acc if lat is not None else None,
            correction_age_s=_float(msg.age_gps_data),
            utc_s=utc_s if utc_s is not None else sod,
            speed_m_s=speed,
            course_deg=course,
            source=self.source,
        )


class NmeaGpsSource(StreamSource):
    """Kind ``gps_nmea``: any NMEA 0183 receiver on a serial port or TCP stream."""

    sensors = ("gps",)
    paced = True

    def __init__(
        self, url: str, baudrate: int = 9600, require_checksum: bool = True, **base: Any
    ) -> None:
        base.setdefault("stall_timeout_s", 2.0)
        super().__init__(url, baudrate, **base)
        self.require_checksum = require_checksum
        self.parser = NmeaParser(require_checksum)

    def _reset_decoder(self) -> None:
        self.parser.splitter.reset()

    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        st = self.parser.stats
        before = LineStats(**st.__dict__)
        fixes = self.parser.feed(data, rx_time_s)
        h = self.health["gps"]
        if fixes:
            h.frames_received(len(fixes), len(data))
        for name, d in (
            ("crc_errors", st.crc_errors - before.crc_errors),
            ("corrupt_frames", st.corrupt - before.corrupt),
            ("garbage_bytes", st.garbage_bytes - before.garbage_bytes),
        ):
            if d:
                h.count(name, d)
        return list(fixes)


# ------------------------------------------------------------------------- UBX

UBX_SYNC = b"\xb5\x62"
UBX_MAX_PAYLOAD = 4096
_LAST_CORRECTION_AGE_S = (None, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, math.inf)


def ubx_checksum(body: bytes | memoryview) -> bytes:
    """8-bit Fletcher over class, id, length and payload (u-blox interface description)."""
    b = np.frombuffer(body, dtype=np.uint8).astype(np.int64)
    ck_a = int(b.sum()) & 0xFF
    ck_b = int((np.arange(b.size, 0, -1) * b).sum()) & 0xFF
    return bytes((ck_a, ck_b))


@dataclass
class UbxDecoder:
    """UBX frames out of a byte stream; same accounting as the sensor-head decoder."""

    stats: FrameStats = field(default_factory=FrameStats)
    _buf: bytearray = field(default_factory=bytearray)
    _synced: bool = False

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._garbage(len(self._buf))
        self._buf.clear()

    def _garbage(self, n: int) -> None:
        if n > 0:
            self.stats.garbage_bytes += n
            if self._synced:
                self.stats.resyncs += 1
                self._synced = False

    def feed(self, data: bytes) -> list[bytes]:
        self.stats.bytes_in += len(data)
        self._buf += data
        buf = bytes(self._buf)
        arr = np.frombuffer(buf, dtype=np.uint8)
        cands = np.flatnonzero((arr[:-1] == 0xB5) & (arr[1:] == 0x62)).tolist()
        out: list[bytes] = []
        pos = 0
        wait_at: int | None = None
        for c in cands:
            if c < pos:
                continue
            if c + 6 > len(buf):
                wait_at = c
                break
            length = buf[c + 4] | (buf[c + 5] << 8)
            if length > UBX_MAX_PAYLOAD:
                continue
            end = c + 6 + length + 2
            if end > len(buf):
                wait_at = c
                break
            if ubx_checksum(buf[c + 2 : end - 2]) != buf[end - 2 : end]:
                self.stats.crc_errors += 1
                continue
            self._garbage(c - pos)
            self._synced = True
            out.append(buf[c:end])
            self.stats.frames += 1
            self.stats.frame_bytes += end - c
            pos = end
        if wait_at is not None:
            keep = wait_at
        elif buf.endswith(b"\xb5"):
            keep = len(buf) - 1
        else:
            keep = len(buf)
        keep = max(keep, pos)
        self._garbage(keep - pos)
        del self._buf[:keep]
        return out


def nav_pvt_fix(msg: Any, host_time_s: float, source: str = "gps") -> GpsFix:
    """A pyubx2 NAV-PVT message -> GpsFix (RTK float/fixed from carrSoln, DGPS from diffSoln)."""
    fix_type = int(msg.fixType)
    ok = bool(msg.gnssFixOk) and fix_type in (2, 3, 4) and not getattr(msg, "invalidLlh", 0)
    carr = int(getattr(msg, "carrSoln", 0))
    if not ok:
        quality = FixQuality.DEAD_RECKONING if fix_type == 1 else FixQuality.NONE
    elif carr == 2:
        quality = FixQuality.RTK_FIXED
    elif carr == 1:
        quality = FixQuality.RTK_FLOAT
    elif getattr(msg, "diffSoln", 0):
        quality = FixQuality.DGPS
    else:
        quality = FixQuality.GPS
    code = int(getattr(msg, "lastCorrectionAge", 0))
    age = _LAST_CORRECTION_AGE_S[code] if 0 < code < len(_LAST_CORRECTION_AGE_S) else None
    has = quality not in (FixQuality.NONE, FixQuality.DEAD_RECKONING)
    utc_s = None
    if getattr(msg, "validDate", 0) and getattr(msg, "validTime", 0):
        try:
            utc_s = (
                dt.datetime(
                    msg.year, msg.month, msg.day, msg.hour, msg.min, msg.second, tzinfo=dt.UTC
                ).timestamp()
                + msg.nano * 1e-9
            )
        except ValueError:
            utc_s = None
    return GpsFix(
        host_time_s=host_time_s,
        lat_deg=float(msg.lat) if has else None,
        lon_deg=float(msg.lon) if has else None,
        alt_m=msg.height / 1000.0 if has else None,
        quality=quality,
        n_sats=int(msg.numSV),
        hdop=None,
        h_acc_m=msg.hAcc / 1000.0 if has else None,
        correction_age_s=None if age is None or math.isinf(age) else float(age),
        utc_s=utc_s,
        speed_m_s=msg.gSpeed / 1000.0,
        course_deg=float(msg.headMot),
        source=source,
    )


class UbxGpsSource(StreamSource):
    """Kind ``gps_ubx``: u-blox receiver sending UBX NAV-PVT (other messages ignored)."""

    sensors = ("gps",)
    paced = True

    def __init__(self, url: str, baudrate: int = 115200, **base: Any) -> None:
        base.setdefault("stall_timeout_s", 2.0)
        super().__init__(url, baudrate, **base)
        self.decoder = UbxDecoder()
        self.ignored = 0

    def _reset_decoder(self) -> None:
        self.decoder.reset()

    def _decode(self, data: bytes, rx_time_s: float) -> list[Item]:
        from pyubx2 import UBXReader

        before = self.decoder.stats.copy()
        frames = self.decoder.feed(data)
        self.count_link(self.decoder.stats.minus(before))
        out: list[Item] = []
        h = self.health["gps"]
        for raw in frames:
            if raw[2:4] != b"\x01\x07":
                self.ignored += 1
                continue
            try:
                msg = UBXReader.parse(raw)
                out.append(nav_pvt_fix(msg, rx_time_s))
            except Exception:
                h.count("corrupt_frames")
        if out:
            h.frames_received(len(out), len(data))
        return out


# ------------------------------------------------------------------------- interpolation


@dataclass(frozen=True)
class FixTrack:
    """GPS positions put onto sensor times; NaN where no valid fix brackets the time."""

    lat_deg: np.ndarray
    lon_deg: np.ndarray
    h_acc_m: np.ndarray
    quality: np.ndarray


def interpolate_fixes(
    fixes: Sequence[GpsFix], host_time_s: np.ndarray, max_gap_s: float = 1.5
) -> FixTrack:
    """Linear interpolation of valid fixes at ``host_time_s``.

    Times outside the span of valid fixes, or inside a gap longer than ``max_gap_s``
    between two valid fixes, get NaN (never extrapolated across missing data).
    Accuracy is the worse of the two bracketing fixes; quality the lower of the two.
    """
    t = np.asarray(host_time_s, dtype=np.float64)
    valid = sorted((f for f in fixes if f.has_fix), key=lambda f: f.host_time_s)
    nan = np.full(t.shape, np.nan)
    if not valid:
        return FixTrack(nan, nan.copy(), nan.copy(), np.zeros(t.shape, np.int8))
    ft = np.array([f.host_time_s for f in valid])
    lat = np.array([f.lat_deg for f in valid], dtype=np.float64)
    lon = np.array([f.lon_deg for f in valid], dtype=np.float64)
    acc = np.array([np.nan if f.h_acc_m is None else f.h_acc_m for f in valid])
    q = np.array([int(f.quality) for f in valid])
    rank = np.array([_quality_rank(int(x)) for x in q])
    if ft.size == 1:
        hit = np.isclose(t, ft[0], rtol=0, atol=1e-9)
        return FixTrack(
            np.where(hit, lat[0], np.nan),
            np.where(hit, lon[0], np.nan),
            np.where(hit, acc[0], np.nan),
            np.where(hit, q[0], 0).astype(np.int8),
        )
    hi = np.clip(np.searchsorted(ft, t, side="left"), 1, ft.size - 1)
    lo = hi - 1
    inside = (t >= ft[0]) & (t <= ft[-1]) & (ft[hi] - ft[lo] <= max_gap_s)
    w = np.where(ft[hi] > ft[lo], (t - ft[lo]) / np.where(ft[hi] > ft[lo], ft[hi] - ft[lo], 1), 0)
    lon_lo, lon_hi = lon[lo], lon[hi]
    lon_hi = lon_lo + (lon_hi - lon_lo + 180.0) % 360.0 - 180.0
    out_lon = lon_lo + w * (lon_hi - lon_lo)
    out_lon = (out_lon + 180.0) % 360.0 - 180.0
    worse = np.where(rank[lo] <= rank[hi], lo, hi)
    return FixTrack(
        np.where(inside, lat[lo] + w * (lat[hi] - lat[lo]), np.nan),
        np.where(inside, out_lon, np.nan),
        np.where(inside, np.fmax(acc[lo], acc[hi]), np.nan),
        np.where(inside, q[worse], 0).astype(np.int8),
    )


_RANK = {
    FixQuality.RTK_FIXED: 6,
    FixQuality.RTK_FLOAT: 5,
    FixQuality.DGPS: 4,
    FixQuality.PPS: 4,
    FixQuality.GPS: 3,
    FixQuality.DEAD_RECKONING: 1,
    FixQuality.MANUAL: 1,
    FixQuality.SIMULATED: 2,
}


def _quality_rank(q: int) -> int:
    try:
        return _RANK.get(FixQuality(q), 0)
    except ValueError:
        return 0
