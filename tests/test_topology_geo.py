"""Geodesic distances against independent reference values, and point offsetting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.topology.geo import destination, great_circle_km

# Airport coordinates from airportsdata; reference distances (km) are WGS-84 geodesics
# from GeographicLib 2.1, Geodesic.WGS84.Inverse (C. F. F. Karney, "Algorithms for
# geodesics", J. Geodesy 87, 2013), accurate to nanometres — the modern successor to
# Vincenty's inverse method (both are millimetre-accurate for these pairs).
REFERENCE = [
    ("LHR-JFK", 51.4706, -0.46194, 40.639928, -73.778692, 5554.517),
    ("FRA-SIN", 50.0264, 8.54313, 1.35019, 103.994, 10284.601),
    ("SYD-LAX", -33.9461, 151.177, 33.942496, -118.408049, 12050.709),
    ("GRU-JNB", -23.43556, -46.47306, -26.13367, 28.24233, 7451.600),
    ("NRT-SFO", 35.7647, 140.386, 37.618806, -122.375417, 8246.250),
    ("CDG-AMS", 49.0128, 2.55, 52.3086, 4.76389, 398.603),
    ("DXB-BOM", 25.2528, 55.3644, 19.0887, 72.8679, 1927.844),
    ("SCL-AKL", -33.393, -70.7858, -37.0081, 174.79201, 9673.653),
    ("HEL-CPT", 60.3172, 24.9633, -33.9648, 18.6017, 10465.439),
    ("ANC-PER", 61.174085, -149.998138, -31.9403, 115.967, 13269.054),
]


@pytest.mark.parametrize("pair", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_distance_within_half_a_percent_of_reference_geodesic(pair):
    _, lat1, lon1, lat2, lon2, reference_km = pair
    got = float(great_circle_km(lat1, lon1, lat2, lon2))
    assert abs(got - reference_km) / reference_km < 0.005
    # Lambert's formula is in fact within ~20 m at these lengths.
    assert abs(got - reference_km) < 0.02


def test_vectorised_matches_scalar_and_broadcasts():
    lat1 = np.array([r[1] for r in REFERENCE])
    lon1 = np.array([r[2] for r in REFERENCE])
    lat2 = np.array([r[3] for r in REFERENCE])
    lon2 = np.array([r[4] for r in REFERENCE])
    matrix = great_circle_km(lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :])
    assert matrix.shape == (len(REFERENCE), len(REFERENCE))
    np.testing.assert_allclose(np.diag(matrix), [r[5] for r in REFERENCE], rtol=1e-5)


def test_zero_distance_and_antipodes_are_finite():
    assert great_circle_km(10.0, 20.0, 10.0, 20.0) == 0.0
    antipode = float(great_circle_km(0.0, 0.0, 0.0, 180.0))
    assert 20000 < antipode < 20040  # half the equator is 20037.5 km


@settings(deadline=None, max_examples=200)
@given(
    st.floats(-89, 89), st.floats(-180, 180), st.floats(0, 360), st.floats(0, 2000)
)
def test_destination_lands_at_the_requested_distance(lat, lon, bearing, km):
    lat2, lon2 = destination(lat, lon, bearing, km)
    assert -90 <= lat2 <= 90 and -180 <= lon2 < 180
    # destination() is spherical; the ellipsoid differs by well under 0.6 %.
    assert abs(float(great_circle_km(lat, lon, lat2, lon2)) - km) <= 0.006 * km + 1e-6


@settings(deadline=None, max_examples=300)
@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(-90, 90), st.floats(-180, 180))
def test_distance_is_symmetric_and_close_to_the_sphere(lat1, lon1, lat2, lon2):
    d = float(great_circle_km(lat1, lon1, lat2, lon2))
    assert d == pytest.approx(float(great_circle_km(lat2, lon2, lat1, lon1)), abs=1e-6)
    # the ellipsoid and the mean-radius sphere never differ by more than ~0.6 %
    p1, p2 = np.radians([lat1, lon1]), np.radians([lat2, lon2])
    h = np.sin((p2[0] - p1[0]) / 2) ** 2 + np.cos(p1[0]) * np.cos(p2[0]) * np.sin(
        (p2[1] - p1[1]) / 2) ** 2
    sphere = 2 * 6371.0088 * np.arcsin(np.sqrt(min(h, 1.0)))
    # (near-antipodal equatorial pairs may follow the equator: at most half of it)
    assert 0 <= d <= 20_037.6 and abs(d - sphere) <= 0.006 * sphere + 1.0
