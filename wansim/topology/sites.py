"""Branch sites: the tunnel initiators, loaded from a CSV or generated around POP cities.

Generated sites follow the assumptions in docs/model.md ("Branch sites"): a site
picks a region by weight, then one of that region's POP cities uniformly (POP
cities stand in for business metros), then lies at a random bearing and an
exponentially distributed distance from the city centre (mean 40 km by default,
capped at 300 km), with an access profile drawn by weight.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from wansim.topology.access import ACCESS_PROFILES, DEFAULT_ACCESS, AccessProfile
from wansim.topology.geo import destination, unit_vectors
from wansim.topology.pops import PopTable
from wansim.topology.tables import LATITUDE, LONGITUDE, Column, read_csv, text


@dataclass(frozen=True, eq=False)
class SiteTable:
    """An immutable, ordered set of branch sites; index i is the site's id everywhere."""

    names: tuple[str, ...]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    access: tuple[str, ...]
    """Access-profile name per site."""
    profiles: Mapping[str, AccessProfile]
    """Every profile the sites may name."""

    def __post_init__(self) -> None:
        for name in ("lat", "lon"):
            array = np.array(getattr(self, name), dtype=float)
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        n = len(self.names)
        if not len(self.lat) == len(self.lon) == len(self.access) == n:
            raise ValueError("SiteTable columns differ in length")
        unknown = set(self.access) - set(self.profiles)
        if unknown:
            raise ValueError(f"unknown access profiles {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.names)

    def profile(self, site: int) -> AccessProfile:
        return self.profiles[self.access[site]]

    def profile_column(self, attribute: str) -> NDArray:
        """One access-profile attribute per site, e.g. `profile_column("delay_s")`."""
        by_name = {name: getattr(p, attribute) for name, p in self.profiles.items()}
        return np.array([by_name[a] for a in self.access])

    def unit_vectors(self) -> NDArray[np.float64]:
        return unit_vectors(self.lat, self.lon)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"name": self.names, "lat": self.lat, "lon": self.lon, "access": self.access}
        )


def load_sites(
    source: str | Path | io.TextIOBase,
    profiles: Mapping[str, AccessProfile] = ACCESS_PROFILES,
) -> SiteTable:
    """Load branch sites from CSV: `name`, `lat`, `lon` required; `access` optional.

    Raises TopologyError naming file, line, row and column for unknown or missing
    columns, empty cells, duplicate names, bad coordinates or unknown access profiles.
    """

    def access(cell: str) -> str:
        if cell not in profiles:
            raise ValueError(f"unknown access profile {cell!r}; known: {', '.join(profiles)}")
        return cell

    columns = [
        Column("name", text),
        Column("lat", LATITUDE),
        Column("lon", LONGITUDE),
        Column("access", access, required=False, default=DEFAULT_ACCESS),
    ]
    rows = read_csv(source, columns, unique="name")
    return SiteTable(
        names=tuple(r["name"] for r in rows),
        lat=[r["lat"] for r in rows],
        lon=[r["lon"] for r in rows],
        access=tuple(r["access"] for r in rows),
        profiles=dict(profiles),
    )


DEFAULT_ACCESS_MIX = {"fibre": 0.5, "cable": 0.25, "dsl": 0.15, "lte": 0.1}
"""Share of generated sites per access profile (an assumption; see docs/model.md)."""


def generate_sites(
    pops: PopTable,
    n: int,
    rng: np.random.Generator,
    *,
    region_weights: Mapping[str, float] | None = None,
    mean_distance_km: float = 40.0,
    max_distance_km: float = 300.0,
    access_mix: Mapping[str, float] = DEFAULT_ACCESS_MIX,
    profiles: Mapping[str, AccessProfile] = ACCESS_PROFILES,
    name_prefix: str = "site",
) -> SiteTable:
    """`n` sites clustered around POP cities, reproducible from `rng`.

    `region_weights` maps POP regions to relative weights (regions left out get no
    sites); by default each region is weighted by its number of POPs, so sites
    spread like the edge itself.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if mean_distance_km < 0 or max_distance_km < 0:
        raise ValueError("site distances must be >= 0")
    regions = np.array(pops.regions)
    names = sorted(set(pops.regions))
    if region_weights is None:
        weights = {r: float(np.sum(regions == r)) for r in names}
    else:
        unknown = set(region_weights) - set(names)
        if unknown:
            raise ValueError(f"region_weights names unknown regions {sorted(unknown)}; "
                             f"the POP list has {names}")
        weights = dict(region_weights)
    _check_weights(weights, "region_weights")
    missing = set(access_mix) - set(profiles)
    if missing:
        raise ValueError(f"access_mix names unknown profiles {sorted(missing)}")
    _check_weights(access_mix, "access_mix")

    region_names = list(weights)
    p_region = np.array([weights[r] for r in region_names], dtype=float)
    chosen_region = rng.choice(len(region_names), size=n, p=p_region / p_region.sum())
    city = np.empty(n, dtype=np.intp)
    for k, region in enumerate(region_names):
        members = np.flatnonzero(regions == region)
        mask = chosen_region == k
        city[mask] = rng.choice(members, size=int(mask.sum()))
    distance = np.minimum(rng.exponential(mean_distance_km, size=n), max_distance_km)
    bearing = rng.uniform(0.0, 360.0, size=n)
    lat, lon = destination(pops.lat[city], pops.lon[city], bearing, distance)

    access_names = list(access_mix)
    p_access = np.array([access_mix[a] for a in access_names], dtype=float)
    access = rng.choice(len(access_names), size=n, p=p_access / p_access.sum())
    width = len(str(max(n - 1, 0)))
    return SiteTable(
        names=tuple(f"{name_prefix}-{i:0{width}d}" for i in range(n)),
        lat=lat,
        lon=lon,
        access=tuple(access_names[a] for a in access),
        profiles=dict(profiles),
    )


def _check_weights(weights: Mapping[str, float], what: str) -> None:
    values: Iterable[float] = weights.values()
    if any(not np.isfinite(w) or w < 0 for w in values) or sum(weights.values()) <= 0:
        raise ValueError(f"{what} must be finite, >= 0 and not all zero: {dict(weights)}")
