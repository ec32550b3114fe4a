"""Split one strategy's sites into groups that never meet, to simulate them in parallel.

Sites interact only through the POPs they reach: a POP's CPU queue, admission control
and SA table. Everything else a site does draws from its own random streams (its timers,
its health probes, its datagrams' loss and jitter), and failures and route convergence
are the same plan in every process. So if no POP can ever be reached by sites of two
groups, simulating the groups separately and merging their rows gives exactly the
tables of one process.

Which POPs can a site reach? Anycast serves it from its most preferred healthy announcing
candidate, so only POPs that fail somewhere in the plan can make it move: its reach is
its candidates up to and including the first announcing one that never fails (and, if
all its candidates may fail, every failing POP plus its nearest announcing POP that
never fails — the fallback). Sites and POPs joined by reach form connected components,
packed into groups by site count (largest first into the lightest group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from wansim.net import World
from wansim.topology.geo import great_circle_km


def reach(world: World, addresses: tuple[str, ...], failing: set[str]) -> list[set[int]]:
    """Per site, the POP indices it could be served by on any of `addresses`."""
    n_pops = len(world.pops)
    may_fail = np.zeros(n_pops, dtype=bool)
    for code in failing:
        may_fail[world.pops.index(code)] = True
    out: list[set[int]] = [set() for _ in range(len(world.sites))]
    for address in addresses:
        catchment = world.catchments[address]
        announced = catchment.announced
        for site, ranked in enumerate(catchment.ranked):
            pops = out[site]
            for pop in ranked:
                if not announced[pop]:
                    continue
                pops.add(int(pop))
                if not may_fail[pop]:
                    break
            else:  # every candidate may be down at once: the nearest-usable fallback
                pops.update(int(p) for p in np.flatnonzero(may_fail & announced))
                steady = np.flatnonzero(~may_fail & announced)
                if len(steady):
                    km = great_circle_km(
                        world.sites.lat[site], world.sites.lon[site],
                        world.pops.lat[steady], world.pops.lon[steady],
                    )  # fmt: skip
                    pops.add(int(steady[int(np.argmin(km))]))
    return out


@dataclass(frozen=True)
class Shard:
    """A group of sites and the POPs only they can reach."""

    sites: NDArray[np.intp]
    """Site indices, ascending."""
    pops: frozenset[str]
    """Codes of every POP these sites could be served by (and, in the first shard, of
    the POPs no site can reach)."""


def shards(world: World, addresses: tuple[str, ...], failing: set[str], groups: int) -> list[Shard]:
    """At most `groups` shards whose POP sets are disjoint, balanced by site count; the
    first also holds the POPs no site can reach, so the shards' POPs are all the world's.

    Fewer come back when the sites form fewer components (e.g. a world of one POP).
    """
    reachable = reach(world, addresses, failing)
    parent = list(range(len(world.pops)))

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for pops in reachable:
        if pops:
            first, *rest = pops
            for p in rest:
                parent[root(p)] = root(first)
    members: dict[int, list[int]] = {}
    for site, pops in enumerate(reachable):
        key = root(next(iter(pops))) if pops else -1 - site  # a site reaching nothing
        members.setdefault(key, []).append(site)
    components = sorted(members.values(), key=lambda m: (-len(m), m[0]))
    bins: list[list[int]] = [[] for _ in range(max(1, min(groups, len(components))))]
    for component in components:
        min(bins, key=len).extend(component)
    codes = world.pops.codes
    pops = [{codes[p] for site in b for p in reachable[site]} for b in bins if b]
    pops[0] |= set(codes).difference(*pops)  # POPs no site reaches: simulated once, idle
    return [
        Shard(np.array(sorted(b), dtype=np.intp), frozenset(p))
        for b, p in zip([b for b in bins if b], pops, strict=True)
    ]


__all__ = ["Shard", "reach", "shards"]
