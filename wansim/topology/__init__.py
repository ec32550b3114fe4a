"""The static world: POPs, branch sites, access profiles, the backbone graph, geodesy.

    from wansim.topology import load_pops, generate_sites, build_backbone
    pops = load_pops("cloudflare")                  # 360 POPs, or a CSV path
    sites = generate_sites(pops, 10_000, np.random.default_rng(7))
    backbone = build_backbone(pops)                  # or load_backbone("bb.graphml", pops)

Malformed files raise `TopologyError` naming file, line, row and field.
"""

from __future__ import annotations

from wansim.topology.access import ACCESS_PROFILES, DEFAULT_ACCESS, AccessProfile
from wansim.topology.backbone import (
    BACKBONE_STRETCH,
    FIBRE_KM_PER_MS,
    Backbone,
    build_backbone,
    fibre_delay_s,
    load_backbone,
)
from wansim.topology.errors import TopologyError
from wansim.topology.geo import great_circle_km, unit_vectors
from wansim.topology.pops import BUILTIN_POPS, PopTable, load_pops
from wansim.topology.sites import SiteTable, generate_sites, load_sites

__all__ = [
    "ACCESS_PROFILES",
    "BACKBONE_STRETCH",
    "BUILTIN_POPS",
    "DEFAULT_ACCESS",
    "FIBRE_KM_PER_MS",
    "AccessProfile",
    "Backbone",
    "PopTable",
    "SiteTable",
    "TopologyError",
    "build_backbone",
    "fibre_delay_s",
    "generate_sites",
    "great_circle_km",
    "load_backbone",
    "load_pops",
    "load_sites",
    "unit_vectors",
]
