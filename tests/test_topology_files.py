"""POP and site files: the shipped data, the derivation script, and every way to get
a file wrong (each error must name the row and the field)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.topology import (
    ACCESS_PROFILES,
    TopologyError,
    generate_sites,
    great_circle_km,
    load_pops,
    load_sites,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_COLOS = REPO.parent / "shared" / "data" / "cloudflare-colos.csv"
MISSING_FROM_AIRPORTSDATA = {"FRU", "JXG", "PNH", "ZGN", "KIV", "ITJ", "QWJ", "XNH", "ZDM"}


def csv_text(text: str, name: str = "pops.csv") -> io.StringIO:
    handle = io.StringIO(text)
    handle.name = name
    return handle


def test_builtin_cloudflare_list_has_360_located_pops():
    pops = load_pops("cloudflare")
    assert len(pops) == 360
    assert len(set(pops.codes)) == 360
    assert set(pops.regions) == {
        "Africa", "Asia", "Europe", "Latin America & the Caribbean", "Middle East",
        "North America", "Oceania",
    }
    fra = pops.index("FRA")
    assert abs(pops.lat[fra] - 50.03) < 0.05 and abs(pops.lon[fra] - 8.54) < 0.05
    for code in MISSING_FROM_AIRPORTSDATA:
        source = pops.sources[pops.index(code)]
        assert source and "airportsdata IATA" not in source
    assert all(s for s in pops.sources)
    # no two POPs on the same spot (ITJ is Itajaí city, NVT its airport across the river)
    assert len(set(zip(pops.lat, pops.lon, strict=True))) == 360


def test_topologies_folder_links_to_the_packaged_file():
    assert (REPO / "topologies" / "cloudflare-pops.csv").read_bytes() == (
        REPO / "wansim" / "data" / "cloudflare-pops.csv"
    ).read_bytes()


@pytest.mark.skipif(not SHARED_COLOS.exists(), reason="shared/data is not next to the repo")
def test_build_script_reproduces_the_committed_file(tmp_path):
    script = REPO / "topologies" / "build_pops.py"
    sys.path.insert(0, str(script.parent))
    try:
        import build_pops
    finally:
        sys.path.remove(str(script.parent))
    rows = build_pops.build(SHARED_COLOS)
    committed = load_pops("cloudflare")
    assert [r["code"] for r in rows] == list(committed.codes)
    assert [float(r["lat"]) for r in rows] == list(committed.lat)
    assert [r["source"] for r in rows] == list(committed.sources)


def test_small_european_topology_loads():
    pops = load_pops(REPO / "topologies" / "europe5.csv")
    assert pops.codes == ("LHR", "AMS", "FRA", "CDG", "MAD")
    assert pops.subset(["FRA", "AMS"]).codes == ("FRA", "AMS")


GOOD_HEADER = "code,city,region,lat,lon\n"


@pytest.mark.parametrize(
    ("text", "line", "row", "field", "words"),
    [
        (GOOD_HEADER + "FRA,Frankfurt,Europe,50.0,8.5\nFRA,Again,Europe,1,1\n",
         3, 2, "code", "repeats row 1"),
        (GOOD_HEADER + "FRA,Frankfurt,Europe,95.0,8.5\n", 2, 1, "lat", "out of range"),
        (GOOD_HEADER + "FRA,Frankfurt,Europe,50,8.5\nAMS,Amsterdam,Europe,52,-181\n",
         3, 2, "lon", "out of range"),
        (GOOD_HEADER + "FRA,Frankfurt,Europe,north,8.5\n", 2, 1, "lat", "not a number"),
        (GOOD_HEADER + "FRA,Frankfurt,Europe,nan,8.5\n", 2, 1, "lat", "out of range"),
        (GOOD_HEADER + "FRA,Frankfurt,Europe,,8.5\n", 2, 1, "lat", "empty"),
        (GOOD_HEADER + "FR A,Frankfurt,Europe,50,8.5\n", 2, 1, "code", "not a POP code"),
        ("code,city,region,lat,lon,capacity\nFRA,F,Europe,50,8,10\n", 1, None, "capacity",
         "unknown column"),
        ("code,city,region,lat\nFRA,F,Europe,50\n", 1, None, "lon", "missing"),
        ("code,lat,lat,lon\nFRA,1,2,3\n", 1, None, "lat", "twice"),
    ],
)
def test_malformed_pop_file_names_row_and_field(text, line, row, field, words):
    with pytest.raises(TopologyError) as caught:
        load_pops(csv_text(text))
    err = caught.value
    assert (err.line, err.row, err.field) == (line, row, field)
    assert words in str(err)
    assert "pops.csv" in str(err) and f"field {field!r}" in str(err)
    if row is not None:
        assert f"row {row}" in str(err)


def test_ragged_row_and_empty_files_are_errors(tmp_path):
    with pytest.raises(TopologyError) as caught:
        load_pops(csv_text(GOOD_HEADER + "FRA,Frankfurt,Europe,50\n"))
    assert caught.value.row == 1 and "cells" in str(caught.value)
    with pytest.raises(TopologyError, match="empty"):
        load_pops(csv_text(""))
    with pytest.raises(TopologyError, match="no data rows"):
        load_pops(csv_text(GOOD_HEADER))
    with pytest.raises(TopologyError, match="cannot open"):
        load_pops(tmp_path / "absent.csv")


def test_real_file_errors_name_the_file(tmp_path):
    path = tmp_path / "my-pops.csv"
    path.write_text(GOOD_HEADER + "FRA,Frankfurt,Europe,50,8.5\nAMS,Amsterdam,Europe,52,x\n")
    with pytest.raises(TopologyError, match=r"my-pops\.csv, line 3, row 2, field 'lon'"):
        load_pops(path)


def test_example_sites_load_with_profiles():
    sites = load_sites(REPO / "topologies" / "sites-example.csv")
    assert len(sites) == 5
    assert sites.profile(3).name == "lte"
    assert list(sites.profile_column("mtu_bytes")) == [1500, 1500, 1492, 1428, 1500]


SITE_HEADER = "name,lat,lon,access\n"


@pytest.mark.parametrize(
    ("text", "row", "field", "words"),
    [
        (SITE_HEADER + "a,1,2,fibre\na,3,4,fibre\n", 2, "name", "repeats"),
        (SITE_HEADER + "a,-90.5,2,fibre\n", 1, "lat", "out of range"),
        (SITE_HEADER + "a,1,2,fibre\nb,1,200,fibre\n", 2, "lon", "out of range"),
        (SITE_HEADER + "a,1,2,carrier-pigeon\n", 1, "access", "unknown access profile"),
        (SITE_HEADER + ",1,2,fibre\n", 1, "name", "empty"),
        (SITE_HEADER + "a,1,2e,fibre\n", 1, "lon", "not a number"),
        ("name,lat,lon,bandwidth\na,1,2,3\n", None, "bandwidth", "unknown column"),
        ("name,lon\na,1\n", None, "lat", "missing"),
    ],
)
def test_malformed_site_file_names_row_and_field(text, row, field, words):
    with pytest.raises(TopologyError) as caught:
        load_sites(csv_text(text, "sites.csv"))
    assert (caught.value.row, caught.value.field) == (row, field)
    assert words in str(caught.value) and "sites.csv" in str(caught.value)


def test_access_column_is_optional():
    sites = load_sites(csv_text("name,lat,lon\nx,1,2\n"))
    assert sites.access == ("fibre",)


@settings(deadline=None, max_examples=150)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200))
def test_arbitrary_text_either_loads_or_raises_topology_error(text):
    for loader in (load_pops, load_sites):
        try:
            loader(csv_text(text))
        except TopologyError:
            pass


def test_generated_sites_are_seeded_and_clustered():
    pops = load_pops("cloudflare")
    a = generate_sites(pops, 2000, np.random.default_rng(3))
    b = generate_sites(pops, 2000, np.random.default_rng(3))
    assert a.names == b.names and np.array_equal(a.lat, b.lat) and a.access == b.access
    assert set(a.access) <= set(ACCESS_PROFILES)
    nearest_km = great_circle_km(
        a.lat[:, None], a.lon[:, None], pops.lat[None, :], pops.lon[None, :]
    ).min(axis=1)
    assert nearest_km.max() <= 300.5
    assert 25 < np.median(nearest_km) < 40  # exponential, mean 40 km, median 27.7 km


def test_region_weights_steer_generation():
    pops = load_pops("cloudflare")
    sites = generate_sites(pops, 500, np.random.default_rng(1), region_weights={"Oceania": 1})
    in_oceania = [c for c, r in zip(pops.codes, pops.regions, strict=True) if r == "Oceania"]
    oceania = pops.subset(in_oceania)
    km = great_circle_km(
        sites.lat[:, None], sites.lon[:, None], oceania.lat[None, :], oceania.lon[None, :]
    )
    assert km.min(axis=1).max() <= 300.5
    with pytest.raises(ValueError, match="unknown regions"):
        generate_sites(pops, 5, np.random.default_rng(1), region_weights={"Atlantis": 1})
