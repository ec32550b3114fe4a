"""Backbone graphs: the default k-nearest + hub mesh, and user GraphML/GML files."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.topology import TopologyError, great_circle_km, load_pops
from wansim.topology.backbone import build_backbone, load_backbone

EUROPE = ["LHR", "AMS", "FRA", "CDG", "MAD"]


@pytest.fixture(scope="module")
def pops():
    return load_pops("cloudflare")


def km_between(pops, a, b):
    i, j = pops.index(a), pops.index(b)
    return float(great_circle_km(pops.lat[i], pops.lon[i], pops.lat[j], pops.lon[j]))


def test_default_backbone_is_connected_with_formula_delays(pops):
    backbone = build_backbone(pops)
    assert nx.is_connected(backbone.graph)
    assert np.isfinite(backbone.delay_matrix_s).all()
    for u, v, data in backbone.graph.edges(data=True):
        assert data["delay_s"] == pytest.approx(km_between(pops, u, v) * 1.3 / 204 / 1000)
    # hubs are meshed, and each POP links to its nearest neighbour
    assert backbone.graph.has_edge("FRA", "SIN") and backbone.graph.has_edge("SYD", "IAD")
    assert backbone.graph.degree("ZDM") >= 3


def test_shortest_path_delay_is_the_sum_of_its_edges(pops):
    backbone = build_backbone(pops)
    hops = backbone.path("LHR", "NRT")
    assert hops[0] == "LHR" and hops[-1] == "NRT"
    total = sum(backbone.graph.edges[a, b]["delay_s"] for a, b in zip(hops, hops[1:], strict=False))
    assert backbone.delay_s("LHR", "NRT") == pytest.approx(total)
    # never faster than the stretched geodesic
    assert total >= km_between(pops, "LHR", "NRT") * 1.3 / 204 / 1000 - 1e-12


def test_small_topology_without_hubs_is_joined(pops):
    small = pops.subset(EUROPE + ["SYD", "AKL"])
    backbone = build_backbone(small, k=1, hubs=[])
    assert nx.is_connected(backbone.graph)


def write(tmp_path, name, graph):
    path = tmp_path / name
    (nx.write_graphml if name.endswith(".graphml") else nx.write_gml)(graph, path)
    return path


def test_user_graphml_with_explicit_lengths(tmp_path, pops):
    small = pops.subset(EUROPE)
    g = nx.Graph()
    g.add_edge("LHR", "AMS", delay_ms=4.0)
    g.add_edge("AMS", "FRA", km=500.0)
    g.add_edge("FRA", "CDG")
    g.add_edge("CDG", "MAD")
    backbone = load_backbone(write(tmp_path, "bb.graphml", g), small)
    assert backbone.delay_s("LHR", "AMS") == pytest.approx(0.004)
    assert backbone.delay_s("AMS", "FRA") == pytest.approx(500 / 204 / 1000)
    assert backbone.delay_s("FRA", "CDG") == pytest.approx(km_between(pops, "FRA", "CDG")
                                                           * 1.3 / 204 / 1000)
    assert backbone.path("LHR", "MAD") == ["LHR", "AMS", "FRA", "CDG", "MAD"]
    gml = load_backbone(write(tmp_path, "bb.gml", g), small)
    assert gml.delay_s("LHR", "MAD") == pytest.approx(backbone.delay_s("LHR", "MAD"))


def ring(**bad_edge):
    g = nx.Graph()
    for a, b in zip(EUROPE, EUROPE[1:] + EUROPE[:1], strict=True):
        g.add_edge(a, b)
    g.edges["LHR", "AMS"].update(bad_edge)
    return g


@pytest.mark.parametrize(
    ("graph", "element", "field", "words"),
    [
        (ring(km=-5.0), "edge LHR-AMS", "km", "positive"),
        (ring(delay_ms="soon"), "edge LHR-AMS", "delay_ms", "positive"),
        (ring(capacity=10.0), "edge LHR-AMS", "capacity", "unknown edge attribute"),
        (nx.relabel_nodes(ring(), {"MAD": "XXX"}), "node 'XXX'", "id", "not a POP"),
        (nx.Graph([("LHR", "AMS"), ("FRA", "CDG"), ("CDG", "MAD")]), "node 'AMS'", None,
         "not connected"),
        (nx.Graph([("LHR", "AMS"), ("AMS", "FRA"), ("FRA", "CDG")]), "node 'MAD'", "id",
         "without any backbone node"),
    ],
)
def test_malformed_backbone_names_element_and_field(tmp_path, pops, graph, element, field, words):
    small = pops.subset(EUROPE)
    path = write(tmp_path, "bad.graphml", graph)
    with pytest.raises(TopologyError) as caught:
        load_backbone(path, small)
    err = caught.value
    assert (err.element, err.field) == (element, field)
    assert words in str(err) and "bad.graphml" in str(err)


def test_unparsable_backbone_files(tmp_path, pops):
    bad = tmp_path / "broken.graphml"
    bad.write_text("<graphml><graph><node id='LHR'></graph>")
    with pytest.raises(TopologyError, match="not a valid GRAPHML"):
        load_backbone(bad, pops)
    other = tmp_path / "bb.json"
    other.write_text("{}")
    with pytest.raises(TopologyError, match=r"\.graphml or \.gml"):
        load_backbone(other, pops)
    with pytest.raises(TopologyError, match="cannot open"):
        load_backbone(tmp_path / "absent.gml", pops)


@settings(deadline=None, max_examples=60)
@given(st.binary(max_size=300), st.sampled_from([".graphml", ".gml"]))
def test_arbitrary_backbone_bytes_load_or_raise_topology_error(tmp_path_factory, data, suffix):
    pops = load_pops("cloudflare").subset(EUROPE)
    path = tmp_path_factory.mktemp("fuzz") / f"bb{suffix}"
    path.write_bytes(data)
    try:
        load_backbone(path, pops)
    except TopologyError:
        pass


def test_bundled_small_backbone_loads():
    topologies = Path(__file__).resolve().parents[1] / "topologies"
    pops = load_pops(topologies / "europe5.csv")
    backbone = load_backbone(topologies / "europe5-backbone.graphml", pops)
    assert backbone.graph.number_of_edges() == 6
    assert backbone.path("AMS", "MAD") in (["AMS", "LHR", "MAD"], ["AMS", "FRA", "CDG", "MAD"])
