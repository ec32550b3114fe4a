"""The private backbone between POPs: a networkx graph whose edges carry fibre delay.

By default each POP is linked to its k nearest POPs and a set of hub POPs (the big
interconnection metros of each region) is meshed; components left apart are joined
to the rest by their shortest possible link, so every POP reaches every other.
Alternatively a user GraphML/GML file names the links (nodes are POP codes; an
edge may carry `km` or `delay_ms`, otherwise its length is the geodesic).
Edge delay = km × stretch ÷ fibre speed; POP-to-POP delay is the shortest path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from wansim.topology.errors import TopologyError
from wansim.topology.geo import great_circle_km
from wansim.topology.pops import PopTable

FIBRE_KM_PER_MS = 204.0
"""Speed of light in silica fibre, c / n with group index n ≈ 1.468 (docs/model.md)."""
BACKBONE_STRETCH = 1.3
"""Fibre route length over geodesic on a well-built backbone (docs/model.md)."""
DEFAULT_HUBS = (
    "FRA", "AMS", "LHR", "CDG", "MRS", "IAD", "ORD", "DFW", "LAX", "SJC", "MIA", "GRU",
    "SIN", "HKG", "NRT", "BOM", "DXB", "JNB", "SYD",
)  # fmt: skip
"""Large interconnection metros (major IXPs and cable landings) meshed by default."""


def fibre_delay_s(km: NDArray | float, stretch: float, fibre_km_per_ms: float = FIBRE_KM_PER_MS):
    """One-way propagation delay over `km` of geodesic at the given path stretch."""
    return np.asarray(km) * stretch / fibre_km_per_ms / 1000.0


@dataclass(frozen=True, eq=False)
class Backbone:
    """POP-to-POP links and shortest-path delays; node names are POP codes."""

    pops: PopTable
    graph: nx.Graph
    """Undirected; every edge has `km` and `delay_s`."""
    _order: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_order", list(self.pops.codes))

    @cached_property
    def _shortest(self) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
        n = len(self.pops)
        rows, cols, delays = [], [], []
        for u, v, d in self.graph.edges(data="delay_s"):
            i, j = self.pops.index(u), self.pops.index(v)
            rows += [i, j]
            cols += [j, i]
            delays += [d, d]
        matrix = csr_matrix((delays, (rows, cols)), shape=(n, n))
        dist, pred = dijkstra(matrix, directed=True, return_predecessors=True)
        dist.flags.writeable = False
        return dist, pred

    @property
    def delay_matrix_s(self) -> NDArray[np.float64]:
        """(n_pops, n_pops) one-way delay along the shortest backbone path."""
        return self._shortest[0]

    def delay_s(self, a: str, b: str) -> float:
        return float(self._shortest[0][self.pops.index(a), self.pops.index(b)])

    def path(self, a: str, b: str) -> list[str]:
        """POP codes along the shortest backbone path from a to b (both included)."""
        i, j = self.pops.index(a), self.pops.index(b)
        pred = self._shortest[1]
        hops = [j]
        while hops[-1] != i:
            hops.append(int(pred[i, hops[-1]]))
        return [self.pops.codes[k] for k in reversed(hops)]


def build_backbone(
    pops: PopTable,
    *,
    k: int = 3,
    hubs: Iterable[str] | None = None,
    stretch: float = BACKBONE_STRETCH,
    fibre_km_per_ms: float = FIBRE_KM_PER_MS,
) -> Backbone:
    """k-nearest-neighbour links plus a hub mesh, then joined into one component.

    `hubs=None` uses those of `DEFAULT_HUBS` present in `pops`; an explicit list must
    name known POPs.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    n = len(pops)
    hub_codes = (
        [h for h in DEFAULT_HUBS if h in pops] if hubs is None else [pops.codes[i] for i in
                                                                     pops.indices(hubs)]
    )
    graph = nx.Graph()
    graph.add_nodes_from(pops.codes)
    if n > 1:
        _, neighbours = cKDTree(pops.unit_vectors).query(pops.unit_vectors, k=min(k, n - 1) + 1)
        for i, row in enumerate(np.atleast_2d(neighbours)):
            for j in row[1:]:
                graph.add_edge(pops.codes[i], pops.codes[int(j)])
    for a_pos, a in enumerate(hub_codes):
        for b in hub_codes[a_pos + 1 :]:
            graph.add_edge(a, b)
    _join_components(graph, pops)
    _set_lengths(graph, pops, stretch, fibre_km_per_ms)
    return Backbone(pops, graph)


def _join_components(graph: nx.Graph, pops: PopTable) -> None:
    """Link every smaller component to the largest by its shortest geodesic edge."""
    components = sorted(nx.connected_components(graph), key=len, reverse=True)
    main = set(components[0]) if components else set()
    for component in components[1:]:
        inside = pops.indices(sorted(component))
        outside = pops.indices(sorted(main))
        km = great_circle_km(
            pops.lat[inside][:, None], pops.lon[inside][:, None],
            pops.lat[outside][None, :], pops.lon[outside][None, :],
        )  # fmt: skip
        a, b = np.unravel_index(np.argmin(km), km.shape)
        graph.add_edge(pops.codes[inside[a]], pops.codes[outside[b]])
        main |= component


def _set_lengths(graph: nx.Graph, pops: PopTable, stretch: float, speed: float) -> None:
    for u, v, data in graph.edges(data=True):
        if "km" not in data:
            i, j = pops.index(u), pops.index(v)
            data["km"] = float(great_circle_km(pops.lat[i], pops.lon[i], pops.lat[j], pops.lon[j]))
        if "delay_s" not in data:
            data["delay_s"] = float(fibre_delay_s(data["km"], stretch, speed))


def load_backbone(
    source: str | Path,
    pops: PopTable,
    *,
    stretch: float = BACKBONE_STRETCH,
    fibre_km_per_ms: float = FIBRE_KM_PER_MS,
) -> Backbone:
    """Read a GraphML or GML backbone whose node ids (or `label`s, for GML) are POP codes.

    Optional edge attributes: `km` (fibre route length → delay with `stretch` = 1)
    or `delay_ms` (one-way). Raises TopologyError naming the node or edge and the
    attribute at fault; the graph must reach every POP of `pops`.
    """
    name = str(source)
    suffix = Path(source).suffix.lower()
    try:
        if suffix == ".graphml":
            raw = nx.read_graphml(source)
        elif suffix == ".gml":
            raw = nx.read_gml(source)
        else:
            raise TopologyError("backbone files must end in .graphml or .gml", source=name)
    except TopologyError:
        raise
    except OSError as exc:
        raise TopologyError(f"cannot open: {exc.strerror or exc}", source=name) from None
    except Exception as exc:  # networkx raises assorted parse errors (XML, GML syntax)
        raise TopologyError(f"not a valid {suffix[1:].upper()} file: {exc}", source=name) from None

    graph = nx.Graph()
    for node in raw.nodes:
        if str(node) not in pops:
            raise TopologyError("node is not a POP code of the POP list", source=name,
                                element=f"node {node!r}", field="id")
        graph.add_node(str(node))
    for u, v, data in raw.edges(data=True):
        element = f"edge {u}-{v}"
        if u == v:
            raise TopologyError("an edge may not loop back to its node", source=name,
                                element=element)
        edge: dict[str, float] = {}
        for key in data:
            if key not in ("km", "delay_ms", "id", "label", "key"):
                raise TopologyError("unknown edge attribute; expected km or delay_ms",
                                    source=name, element=element, field=key)
        if "km" in data:
            km = _positive(data["km"], name, element, "km")
            edge["km"] = km
            edge["delay_s"] = float(fibre_delay_s(km, 1.0, fibre_km_per_ms))
        if "delay_ms" in data:
            edge["delay_s"] = _positive(data["delay_ms"], name, element, "delay_ms") / 1000.0
        graph.add_edge(str(u), str(v), **edge)
    missing = [c for c in pops.codes if c not in graph]
    if missing:
        raise TopologyError(f"POPs without any backbone node: {', '.join(missing[:10])}",
                            source=name, element=f"node {missing[0]!r}", field="id")
    if not nx.is_connected(graph):
        parts = sorted(nx.connected_components(graph), key=len)
        raise TopologyError(
            f"backbone is not connected: {', '.join(sorted(parts[0])[:10])} cannot reach "
            f"the other POPs", source=name, element=f"node {sorted(parts[0])[0]!r}",
        )
    _set_lengths(graph, pops, stretch, fibre_km_per_ms)
    return Backbone(pops, graph)


def _positive(value: object, name: str, element: str, key: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise TopologyError(f"{value!r} is not a positive number", source=name,
                            element=element, field=key)
    return number
