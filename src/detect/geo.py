"""Local geodesy on the WGS84 ellipsoid: metres on the ground <-> latitude/longitude.

Over the few metres to a few hundred metres a detector lane spans, a flat local frame with
the ellipsoid's radii of curvature at the reference latitude is exact to well under a
millimetre per metre. A sphere is not: its east-west scale is 0.3 % off at 45 degrees,
which is as large as a calibrated survey wheel's error. Heights are ignored (1e-4 relative
at 600 m above the ellipsoid).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

WGS84_A_M = 6_378_137.0
WGS84_E2 = 6.694_379_990_14e-3


def radii_of_curvature_m(lat_deg: float) -> tuple[float, float]:
    """WGS84 meridional (M) and prime-vertical (N) radii of curvature at a latitude."""
    s2 = math.sin(math.radians(lat_deg)) ** 2
    w = math.sqrt(1.0 - WGS84_E2 * s2)
    return WGS84_A_M * (1.0 - WGS84_E2) / w**3, WGS84_A_M / w


def wrap_lon_deg(lon_deg: Any) -> Any:
    """Longitude (or difference) into [-180, 180)."""
    return (lon_deg + 180.0) % 360.0 - 180.0


def enu_to_lat_lon(lat0_deg: float, lon0_deg: float, east_m: Any, north_m: Any) -> tuple[Any, Any]:
    """Points (east_m, north_m) from (lat0_deg, lon0_deg); scalars or arrays."""
    m_m, n_m = radii_of_curvature_m(lat0_deg)
    lat = lat0_deg + np.degrees(np.asarray(north_m, dtype=np.float64) / m_m)
    lon = lon0_deg + np.degrees(
        np.asarray(east_m, dtype=np.float64) / (n_m * math.cos(math.radians(lat0_deg)))
    )
    if np.ndim(lat) == 0:
        return float(lat), float(wrap_lon_deg(lon))
    return lat, wrap_lon_deg(lon)


def lat_lon_to_enu(
    lat0_deg: float, lon0_deg: float, lat_deg: Any, lon_deg: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(east_m, north_m) of points from (lat0_deg, lon0_deg); the inverse of enu_to_lat_lon."""
    m_m, n_m = radii_of_curvature_m(lat0_deg)
    north = np.radians(np.asarray(lat_deg) - lat0_deg) * m_m
    east = (
        np.radians(wrap_lon_deg(np.asarray(lon_deg) - lon0_deg))
        * n_m
        * math.cos(math.radians(lat0_deg))
    )
    return east, north


def ground_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance between two nearby points, with the radii at their mean latitude."""
    mid = 0.5 * (lat1 + lat2)
    m_m, n_m = radii_of_curvature_m(mid)
    north = math.radians(lat2 - lat1) * m_m
    east = math.radians(float(wrap_lon_deg(lon2 - lon1))) * n_m * math.cos(math.radians(mid))
    return math.hypot(east, north)
