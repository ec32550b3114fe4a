"""The simulated network: paths, anycast catchments, reconvergence and datagram transport.

    from wansim.net import build_world, Network
    world = build_world("cloudflare", 10_000, seed=7)
    net = Network(env, world, rng=np.random.default_rng(7))

See `world.py` (static geography and path delays), `anycast.py` (catchments),
`routing.py` (failure → detection → per-site convergence) and `network.py` (simpy).
"""

from __future__ import annotations

from wansim.net.anycast import NO_POP, AnycastParams, Catchment, compute_catchments
from wansim.net.network import DatagramDelivered, DatagramDropped, Endpoint, Network
from wansim.net.paths import Path, PathParams, ip_fragment_count, wire_bytes
from wansim.net.routing import (
    AnycastRouting,
    EmpiricalDelay,
    FixedDelay,
    LognormalDelay,
    RouteChange,
    RoutingParams,
    route_changes_frame,
)
from wansim.net.world import World, build_world

__all__ = [
    "NO_POP",
    "AnycastParams",
    "AnycastRouting",
    "Catchment",
    "DatagramDelivered",
    "DatagramDropped",
    "EmpiricalDelay",
    "Endpoint",
    "FixedDelay",
    "LognormalDelay",
    "Network",
    "Path",
    "PathParams",
    "RouteChange",
    "RoutingParams",
    "World",
    "build_world",
    "compute_catchments",
    "ip_fragment_count",
    "route_changes_frame",
    "wire_bytes",
]
