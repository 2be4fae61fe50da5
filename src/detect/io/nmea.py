"""Just enough NMEA 0183 (GGA) to read the GPS side files of GPR instruments.

Sentences with a bad checksum are counted and skipped; a GGA without a fix (quality 0)
becomes a :class:`GpsFix` with no position, never a position of 0, 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detect.blocks import FixQuality, GpsFix


@dataclass
class NmeaStats:
    sentences: int = 0
    bad_checksum: int = 0
    malformed: int = 0
    no_fix: int = 0


def checksum_ok(sentence: str) -> bool | None:
    """True/False when the sentence has a ``*hh`` checksum, None when it has none."""
    s = sentence.strip()
    if not s.startswith("$") or "*" not in s:
        return None
    body, _, given = s[1:].partition("*")
    calc = 0
    for ch in body.encode("ascii", "replace"):
        calc ^= ch
    try:
        return calc == int(given[:2], 16)
    except ValueError:
        return False


def _float(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _deg(value: str, hemi: str, width: int) -> float | None:
    """ddmm.mmmm / dddmm.mmmm -> signed degrees."""
    if not value or len(value) < width + 2:
        return None
    deg = _float(value[:width])
    minutes = _float(value[width:])
    if deg is None or minutes is None or minutes >= 60:
        return None
    out = deg + minutes / 60.0
    if hemi in ("S", "W"):
        out = -out
    elif hemi not in ("N", "E"):
        return None
    return out


def _utc_s(hhmmss: str) -> float | None:
    if len(hhmmss) < 6:
        return None
    h, m, s = _float(hhmmss[:2]), _float(hhmmss[2:4]), _float(hhmmss[4:])
    if h is None or m is None or s is None:
        return None
    return h * 3600.0 + m * 60.0 + s


def parse_gga(sentence: str, host_time_s: float, stats: NmeaStats, source: str) -> GpsFix | None:
    """One GGA sentence -> GpsFix (None if it is not a usable GGA)."""
    stats.sentences += 1
    ok = checksum_ok(sentence)
    if ok is False:
        stats.bad_checksum += 1
        return None
    body = sentence.strip()[1:].split("*")[0]
    f = body.split(",")
    if len(f) < 10 or not f[0].endswith("GGA"):
        stats.malformed += 1
        return None
    try:
        quality = FixQuality(int(f[6])) if f[6] else FixQuality.NONE
    except ValueError:
        stats.malformed += 1
        return None
    lat = _deg(f[2], f[3], 2)
    lon = _deg(f[4], f[5], 3)
    if quality == FixQuality.NONE or lat is None or lon is None:
        stats.no_fix += 1
        lat = lon = None
        quality = FixQuality.NONE
    if lat is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):  # type: ignore[operator]
        stats.malformed += 1
        return None
    n_sats = int(f[7]) if f[7].isdigit() else None
    return GpsFix(
        host_time_s=host_time_s,
        lat_deg=lat,
        lon_deg=lon,
        alt_m=_float(f[9]) if lat is not None and f[9] else None,
        quality=quality,
        n_sats=n_sats,
        hdop=_float(f[8]) if f[8] else None,
        utc_s=_utc_s(f[1]),
        source=source,
    )
