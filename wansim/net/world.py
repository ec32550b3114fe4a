"""The world a simulation runs in: POPs, sites, backbone, paths and anycast catchments.

    world = build_world("cloudflare", 10_000, seed=7)
    pop = world.catchment()[site]                 # healthy-world POP, first address
    world.site_pop_path(site, pop).delay_s        # one-way delay (s)
    world.rtt_s(site, pop)

`build_world` splits its seed into independent streams (sites, anycast, per-site
fragment policy), so changing the number of sites does not change the route
inflations of another stream. Everything here is static; `AnycastRouting`
(`world.new_routing(rng)`) holds the state that failures change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path as FilePath

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from wansim.net.anycast import AnycastParams, Catchment, compute_catchments
from wansim.net.paths import Path, PathParams, combined_loss
from wansim.net.routing import AnycastRouting, RoutingParams
from wansim.topology.backbone import Backbone, build_backbone, fibre_delay_s, load_backbone
from wansim.topology.geo import great_circle_km
from wansim.topology.pops import PopTable, load_pops
from wansim.topology.sites import SiteTable, generate_sites, load_sites

SITE_NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
"""Site i has address 10.0.0.1 + i."""
POP_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
"""POP i's unicast address is 198.18.0.1 + i (RFC 2544 benchmarking range)."""


@dataclass(frozen=True, eq=False)
class World:
    """Static geography and routing preferences; index sites and POPs by position."""

    pops: PopTable
    sites: SiteTable
    backbone: Backbone
    paths: PathParams
    catchments: dict[str, Catchment]
    routing_params: RoutingParams
    drops_fragments: NDArray[np.bool_]
    """(sites,) paths of these sites drop IP fragments."""

    # -- addresses -------------------------------------------------------------
    @property
    def anycast_addresses(self) -> tuple[str, ...]:
        return tuple(self.catchments)

    def site_ip(self, site: int) -> str:
        return str(SITE_NETWORK.network_address + 1 + site)

    def pop_ip(self, pop: int) -> str:
        return str(POP_NETWORK.network_address + 1 + pop)

    def locate(self, ip: str) -> tuple[str, int | str]:
        """("site", i), ("pop", i) or ("anycast", address) for an IP; KeyError otherwise."""
        if ip in self.catchments:
            return ("anycast", ip)
        addr = ipaddress.IPv4Address(ip)
        if addr in SITE_NETWORK and 0 <= int(addr) - int(SITE_NETWORK[1]) < len(self.sites):
            return ("site", int(addr) - int(SITE_NETWORK[1]))
        if addr in POP_NETWORK and 0 <= int(addr) - int(POP_NETWORK[1]) < len(self.pops):
            return ("pop", int(addr) - int(POP_NETWORK[1]))
        raise KeyError(f"no site, POP or anycast address {ip}")

    def site_index(self, name: str) -> int:
        return self._site_index[name]

    @cached_property
    def _site_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.sites.names)}

    # -- routing ---------------------------------------------------------------
    def catchment(self, address: str | None = None) -> NDArray[np.intp]:
        """Each site's POP for `address` (default: the first) with every POP healthy."""
        address = address or self.anycast_addresses[0]
        cache = self.__dict__.setdefault("_catchment_cache", {})
        if address not in cache:
            best = self.catchments[address].best(np.ones(len(self.pops), dtype=bool))
            best.flags.writeable = False
            cache[address] = best
        return cache[address]

    def nearest_pop(self) -> NDArray[np.intp]:
        """Each site's geographically nearest POP (announcing the first address)."""
        return self.catchments[self.anycast_addresses[0]].nearest

    def new_routing(
        self, rng: np.random.Generator, params: RoutingParams | None = None
    ) -> AnycastRouting:
        """Fresh routing state (all POPs healthy) drawing convergence delays from `rng`;
        `params` overrides the world's routing parameters (e.g. for a what-if run)."""
        return AnycastRouting(self.catchments, self.pops, params or self.routing_params, rng)

    def sites_frame(self) -> pd.DataFrame:
        """One row per site: name, lat, lon, access, nearest POP, and per anycast address
        its healthy-world POP and RTT (ms) — for notebooks and catchment maps."""
        frame = self.sites.to_frame()
        sites = np.arange(len(self.sites))
        codes = np.array(self.pops.codes)
        frame["nearest_pop"] = codes[self.nearest_pop()]
        for k, address in enumerate(self.anycast_addresses, start=1):
            pops = self.catchment(address)
            frame[f"pop_{k}"] = codes[pops]
            frame[f"rtt_{k}_ms"] = 1000 * self.rtt_s(sites, pops)
        return frame

    # -- paths -----------------------------------------------------------------
    def site_pop_km(self, site, pop) -> NDArray[np.float64]:
        """Geodesic km between sites and POPs (indices or index arrays, broadcasting)."""
        return great_circle_km(
            self.sites.lat[site], self.sites.lon[site], self.pops.lat[pop], self.pops.lon[pop]
        )

    def site_pop_delay_s(self, site, pop) -> NDArray[np.float64]:
        """One-way delay site↔POP without jitter or serialization (vectorised):
        km × internet stretch ÷ fibre speed + the site's access delay."""
        return fibre_delay_s(
            self.site_pop_km(site, pop), self.paths.internet_stretch, self.paths.fibre_km_per_ms
        ) + self._access("delay_s")[site]

    def rtt_s(self, site, pop) -> NDArray[np.float64]:
        """Round-trip time site↔POP without jitter or serialization."""
        return 2 * self.site_pop_delay_s(site, pop)

    def site_pop_path(self, site: int, pop: int) -> Path:
        """The path between a site and a POP (same both ways).

        The delay to a site's healthy-world POP of any anycast address comes from one
        vectorised computation over all sites (most paths a run uses; one numpy call per
        site would cost more than the rest of its handshake's routing); other POPs are
        computed one by one. Which of the two a pair uses depends only on the world.
        """
        profile = self.sites.profile(site)
        delay = self._catchment_delay_s(site, pop)
        return Path(
            delay_s=float(self.site_pop_delay_s(site, pop)) if delay is None else delay,
            jitter_s=profile.jitter_s,
            loss=combined_loss(profile.loss, self.paths.internet_loss),
            mtu_bytes=min(profile.mtu_bytes, self.paths.pop_mtu_bytes),
            bandwidth_bps=profile.bandwidth_bps,
            drops_fragments=bool(self.drops_fragments[site]),
        )

    def _catchment_delay_s(self, site: int, pop: int) -> float | None:
        for pops, delays in self._catchment_delays:
            if pops[site] == pop:
                return delays[site]
        return None

    @cached_property
    def _catchment_delays(self) -> tuple[tuple[list[int], list[float]], ...]:
        """Per anycast address: every site's healthy-world POP and its one-way delay."""
        sites = np.arange(len(self.sites))
        out = []
        for address in self.anycast_addresses:
            pops = self.catchment(address)
            out.append((pops.tolist(), self.site_pop_delay_s(sites, pops).tolist()))
        return tuple(out)

    def pop_pop_path(self, a: int, b: int) -> Path:
        """POP to POP over the backbone's shortest path."""
        return Path(
            delay_s=float(self.backbone.delay_matrix_s[a, b]),
            loss=self.paths.backbone_loss,
            mtu_bytes=self.paths.pop_mtu_bytes,
        )

    def site_site_path(self, a: int, b: int, via: tuple[int, int] | None = None) -> Path:
        """Site a → its POP → backbone → b's POP → site b (POPs: healthy catchments)."""
        if via is None:
            catchment = self.catchment()
            via = (int(catchment[a]), int(catchment[b]))
        first, last = self.site_pop_path(a, via[0]), self.site_pop_path(b, via[1])
        middle = self.pop_pop_path(*via)
        return Path(
            delay_s=first.delay_s + middle.delay_s + last.delay_s,
            jitter_s=first.jitter_s + last.jitter_s,
            loss=combined_loss(first.loss, middle.loss, last.loss),
            mtu_bytes=min(first.mtu_bytes, middle.mtu_bytes, last.mtu_bytes),
            bandwidth_bps=min(first.bandwidth_bps, last.bandwidth_bps),
            drops_fragments=first.drops_fragments or last.drops_fragments,
        )

    def _access(self, attribute: str) -> NDArray:
        cache = self.__dict__.setdefault("_access_cache", {})
        if attribute not in cache:
            cache[attribute] = self.sites.profile_column(attribute)
        return cache[attribute]


def build_world(
    pops: PopTable | str | FilePath = "cloudflare",
    sites: SiteTable | int | str | FilePath = 1000,
    *,
    seed: int | np.random.SeedSequence = 0,
    region_weights: dict[str, float] | None = None,
    backbone: Backbone | str | FilePath | None = None,
    backbone_k: int = 3,
    paths: PathParams | None = None,
    anycast: AnycastParams | None = None,
    routing: RoutingParams | None = None,
    fragment_dropping_fraction: float = 0.0,
) -> World:
    """Assemble a world from tables, files or counts; reproducible from `seed`.

    `pops`: a PopTable, built-in name or CSV path. `sites`: a SiteTable, a CSV path,
    or a number of sites to generate around the POP cities (with `region_weights`).
    `backbone`: None (k-nearest + hub mesh), a Backbone, or a GraphML/GML path.
    `fragment_dropping_fraction`: share of sites (drawn at random) whose path drops
    IP fragments, on top of profiles that always do.
    """
    if not 0 <= fragment_dropping_fraction <= 1:
        raise ValueError("fragment_dropping_fraction must be within [0, 1]")
    paths = paths or PathParams()
    anycast = anycast or AnycastParams()
    routing = routing or RoutingParams()
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    site_seq, anycast_seq, fragment_seq = seq.spawn(3)

    pop_table = pops if isinstance(pops, PopTable) else load_pops(pops)
    if isinstance(sites, SiteTable):
        site_table = sites
    elif isinstance(sites, int):
        site_table = generate_sites(
            pop_table, sites, np.random.default_rng(site_seq), region_weights=region_weights
        )
    else:
        site_table = load_sites(sites)
    if backbone is None:
        backbone = build_backbone(
            pop_table, k=backbone_k, stretch=paths.backbone_stretch,
            fibre_km_per_ms=paths.fibre_km_per_ms,
        )  # fmt: skip
    elif not isinstance(backbone, Backbone):
        backbone = load_backbone(
            backbone, pop_table, stretch=paths.backbone_stretch,
            fibre_km_per_ms=paths.fibre_km_per_ms,
        )  # fmt: skip
    catchments = compute_catchments(
        site_table, pop_table, anycast, np.random.default_rng(anycast_seq),
        internet_stretch=paths.internet_stretch, fibre_km_per_ms=paths.fibre_km_per_ms,
    )  # fmt: skip
    drops = site_table.profile_column("drops_fragments").astype(bool)
    drops |= np.random.default_rng(fragment_seq).random(len(site_table)) < (
        fragment_dropping_fraction
    )
    drops.flags.writeable = False
    return World(pop_table, site_table, backbone, paths, catchments, routing, drops)
