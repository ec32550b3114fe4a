"""Anycast catchments: which POP each site's packets to an anycast address reach.

BGP does not deliver every site to its nearest POP: peering, AS-path length and
local preference pull some sites elsewhere (≈20 % of clients in CDN measurements,
docs/model.md "Anycast"). We model a site's preference for a POP as

    preference = one-way latency + σ · Z,   Z ~ Exp(1) per (site, POP, address)

— Z is the route's persistent inflation, drawn once — and serve each site from its
most preferred healthy POP. σ is calibrated in one pass, exactly: with Z fixed a
site leaves its nearest POP n once σ exceeds

    σ*_i = min over POPs j with Z_n > Z_j of (L_j − L_n) / (Z_n − Z_j),

so the σ that sends a fraction f of the sites elsewhere is the f-quantile of σ*.
Only each site's `candidates` nearest POPs are considered (default 16), which
keeps 100,000 sites × 360 POPs well under a second; a site whose candidates are
all down falls back to its nearest healthy POP.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.spatial import cKDTree

from wansim.topology.backbone import fibre_delay_s
from wansim.topology.geo import great_circle_km, lambert_km, reduced_latitude
from wansim.topology.pops import PopTable
from wansim.topology.sites import SiteTable

NO_POP = -1
"""Catchment value for a site that no healthy POP serves."""


class AnycastParams(BaseModel):
    """The account's anycast addresses and how far routing strays from the nearest POP."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    addresses: tuple[str, ...] = ("203.0.113.1", "203.0.113.2")
    """Anycast tunnel endpoints (two for dual-tunnel designs); each has its own catchments."""
    non_nearest_fraction: float = Field(0.2, ge=0, lt=1)
    """Share of sites whose healthy-world catchment is not their nearest POP."""
    perturbation_s: float | None = Field(None, ge=0)
    """Fix σ instead of calibrating it to `non_nearest_fraction` (e.g. to reuse one world's σ)."""
    candidates: int = Field(16, ge=1)
    """POPs considered per site (its nearest ones); more costs time, rarely changes routes."""
    announced_by: dict[str, tuple[str, ...]] = {}
    """Address -> POP codes that announce it; unlisted addresses are announced everywhere."""

    @field_validator("addresses")
    @classmethod
    def _ipv4(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one anycast address is needed")
        for a in value:
            ipaddress.IPv4Address(a)
        if len(set(value)) != len(value):
            raise ValueError("anycast addresses repeat")
        return value


@dataclass(frozen=True, eq=False)
class Catchment:
    """Routing preferences of every site for one anycast address."""

    address: str
    ranked: NDArray[np.intp]
    """(sites, K) candidate POP indices, most preferred first."""
    nearest: NDArray[np.intp]
    """(sites,) nearest announcing POP of each site."""
    sigma_s: float
    """Perturbation scale σ in use (calibrated or given)."""
    announced: NDArray[np.bool_]
    """(pops,) POPs announcing this address."""
    sites: SiteTable
    pops: PopTable

    def best(self, healthy: NDArray[np.bool_], sites: NDArray[np.intp] | None = None):
        """Most preferred healthy announcing POP per site (all sites, or those given)."""
        ranked = self.ranked if sites is None else self.ranked[sites]
        usable = healthy & self.announced
        ok = usable[ranked]
        first = np.argmax(ok, axis=1)
        out = ranked[np.arange(len(ranked)), first]
        stranded = ~ok.any(axis=1)
        if stranded.any():
            rows = np.flatnonzero(stranded)
            site_ids = rows if sites is None else np.asarray(sites)[rows]
            out[rows] = self._nearest_usable(site_ids, usable)
        return out

    def _nearest_usable(self, site_ids: NDArray[np.intp], usable: NDArray[np.bool_]):
        candidates = np.flatnonzero(usable)
        if len(candidates) == 0:
            return np.full(len(site_ids), NO_POP, dtype=np.intp)
        km = great_circle_km(
            self.sites.lat[site_ids][:, None], self.sites.lon[site_ids][:, None],
            self.pops.lat[candidates][None, :], self.pops.lon[candidates][None, :],
        )  # fmt: skip
        return candidates[np.argmin(km, axis=1)]

    def non_nearest_fraction(self, healthy: NDArray[np.bool_] | None = None) -> float:
        """Share of sites not served by their nearest announcing POP."""
        if healthy is None:
            healthy = np.ones(len(self.pops), dtype=bool)
        return float(np.mean(self.best(healthy) != self.nearest))


def compute_catchments(
    sites: SiteTable,
    pops: PopTable,
    params: AnycastParams,
    rng: np.random.Generator,
    *,
    internet_stretch: float,
    fibre_km_per_ms: float,
) -> dict[str, Catchment]:
    """One Catchment per anycast address, each with its own route inflations."""
    nearest_by_set: dict[bytes, tuple] = {}  # addresses announced alike share geometry
    streams = rng.spawn(len(params.addresses))  # so an address's draws ignore the site count
    out = {}
    for address, stream in zip(params.addresses, streams, strict=True):
        announced = np.zeros(len(pops), dtype=bool)
        codes = params.announced_by.get(address)
        announced[pops.indices(codes) if codes is not None else slice(None)] = True
        if not announced.any():
            raise ValueError(f"anycast address {address} is announced by no POP")
        key = announced.tobytes()
        if key not in nearest_by_set:
            nearest_by_set[key] = _candidates(
                sites, pops, announced, params.candidates, internet_stretch, fibre_km_per_ms
            )
        candidates, latency = nearest_by_set[key]
        inflation = stream.standard_exponential(latency.shape)
        sigma = (
            params.perturbation_s
            if params.perturbation_s is not None
            else calibrate_sigma(latency, inflation, params.non_nearest_fraction)
        )
        order = np.argsort(latency + sigma * inflation, axis=1, kind="stable")
        ranked = np.take_along_axis(candidates, order, axis=1)
        out[address] = Catchment(
            address, ranked, candidates[:, 0].copy(), float(sigma), announced, sites, pops
        )
    return out


def _candidates(sites, pops, announced, wanted, stretch, speed):
    """Each site's `wanted` nearest announcing POPs, by exact latency: (indices, latency_s)."""
    members = np.flatnonzero(announced)
    k = min(wanted, len(members))
    n = len(sites)
    if n == 0 or k == 0:
        return np.empty((n, k), dtype=np.intp), np.empty((n, k))
    _, local = cKDTree(pops.unit_vectors[members]).query(sites.unit_vectors(), k=k)
    candidates = members[np.asarray(local).reshape(n, k)]
    km = lambert_km(
        reduced_latitude(sites.lat)[:, None], sites.lon[:, None],
        reduced_latitude(pops.lat)[candidates], pops.lon[candidates],
    )  # fmt: skip
    by_latency = np.argsort(km, axis=1, kind="stable")
    candidates = np.take_along_axis(candidates, by_latency, axis=1)
    latency = fibre_delay_s(np.take_along_axis(km, by_latency, axis=1), stretch, speed)
    return candidates, latency


def calibrate_sigma(
    latency_s: NDArray[np.float64], inflation: NDArray[np.float64], fraction: float
) -> float:
    """σ that moves `fraction` of the rows off column 0 (latency sorted ascending per row)."""
    if fraction <= 0 or latency_s.shape[1] < 2:
        return 0.0
    gain = inflation[:, :1] - inflation[:, 1:]  # how much route j beats the nearest's inflation
    extra = latency_s[:, 1:] - latency_s[:, :1]  # how much farther j is
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(gain > 0, extra / gain, np.inf).min(axis=1)
    ordered = np.sort(threshold)
    m = int(round(fraction * len(ordered)))
    if m == 0:
        return 0.0
    if not np.isfinite(ordered[m - 1]):
        raise ValueError(
            f"non_nearest_fraction {fraction} is unreachable: at most "
            f"{np.isfinite(ordered).mean():.3f} of the sites have another candidate POP"
        )
    upper = ordered[m] if m < len(ordered) else ordered[m - 1] * 2
    return float((ordered[m - 1] + min(upper, ordered[m - 1] * 2)) / 2)
