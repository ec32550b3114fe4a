"""POP lists: the anycast edge's data centres, their cities, regions and coordinates.

The built-in list (`load_pops("cloudflare")`) is the 360 Cloudflare locations of
2026, derived by `topologies/build_pops.py` and shipped in `wansim/data/`. Users
may load their own CSV with the same columns: `code`, `lat`, `lon` required;
`city`, `region`, `country`, `source` optional.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from wansim.topology.errors import TopologyError
from wansim.topology.geo import unit_vectors
from wansim.topology.tables import LATITUDE, LONGITUDE, Column, read_csv, text

BUILTIN_POPS = {"cloudflare": "cloudflare-pops.csv"}
"""Names accepted by `load_pops` instead of a path -> file in `wansim/data/`."""

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,15}$")


def pop_code(cell: str) -> str:
    """A POP code: 1–16 letters, digits, '_', '.', '-' (IATA codes such as FRA)."""
    if not _CODE.match(cell):
        raise ValueError(f"{cell!r} is not a POP code (1-16 letters, digits, '_', '.', '-')")
    return cell


POP_COLUMNS = [
    Column("code", pop_code),
    Column("city", text, required=False, default=""),
    Column("region", text, required=False, default=""),
    Column("country", text, required=False, default=""),
    Column("lat", LATITUDE),
    Column("lon", LONGITUDE),
    Column("source", text, required=False, default=""),
]


def _frozen(values: Iterable[float]) -> NDArray[np.float64]:
    array = np.array(list(values), dtype=float)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class PopTable:
    """An immutable, ordered set of POPs; index i is the POP's id everywhere else."""

    codes: tuple[str, ...]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    cities: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.codes)
        for name in ("cities", "regions", "countries", "sources"):
            if not getattr(self, name):
                object.__setattr__(self, name, ("",) * n)
        object.__setattr__(self, "lat", _frozen(self.lat))
        object.__setattr__(self, "lon", _frozen(self.lon))
        for name in ("lat", "lon", "cities", "regions", "countries", "sources"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PopTable.{name} has {len(getattr(self, name))} items, not {n}")
        index: dict[str, int] = {}
        for i, code in enumerate(self.codes):
            if code in index:
                raise TopologyError(f"{code!r} repeats row {index[code] + 1}",
                                    row=i + 1, field="code")
            index[code] = i
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.codes)

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def index(self, code: str) -> int:
        """Row of a POP code; KeyError naming the code if unknown."""
        try:
            return self._index[code]
        except KeyError:
            raise KeyError(f"unknown POP code {code!r}") from None

    def indices(self, codes: Iterable[str]) -> NDArray[np.intp]:
        return np.array([self.index(c) for c in codes], dtype=np.intp)

    def subset(self, codes: Iterable[str]) -> PopTable:
        """A smaller POP table with the given codes, in the given order."""
        rows = self.indices(codes)
        return PopTable(
            codes=tuple(self.codes[i] for i in rows),
            lat=self.lat[rows],
            lon=self.lon[rows],
            cities=tuple(self.cities[i] for i in rows),
            regions=tuple(self.regions[i] for i in rows),
            countries=tuple(self.countries[i] for i in rows),
            sources=tuple(self.sources[i] for i in rows),
        )

    @cached_property
    def unit_vectors(self) -> NDArray[np.float64]:
        """(n, 3) points on the unit sphere, for nearest-neighbour queries."""
        return unit_vectors(self.lat, self.lon)

    def to_frame(self) -> pd.DataFrame:
        """One row per POP: code, city, region, country, lat, lon, source."""
        return pd.DataFrame(
            {
                "code": self.codes,
                "city": self.cities,
                "region": self.regions,
                "country": self.countries,
                "lat": self.lat,
                "lon": self.lon,
                "source": self.sources,
            }
        )

    @classmethod
    def from_rows(cls, rows: list[dict]) -> PopTable:
        return cls(
            codes=tuple(r["code"] for r in rows),
            lat=[r["lat"] for r in rows],
            lon=[r["lon"] for r in rows],
            cities=tuple(r["city"] for r in rows),
            regions=tuple(r["region"] for r in rows),
            countries=tuple(r["country"] for r in rows),
            sources=tuple(r["source"] for r in rows),
        )


def load_pops(source: str | Path | io.TextIOBase = "cloudflare") -> PopTable:
    """Load a POP list: a built-in name (`"cloudflare"`), a CSV path, or open text.

    Raises TopologyError naming file, line, row and column on any malformed input:
    unknown or missing columns, empty cells, bad codes, duplicate codes,
    latitudes/longitudes that are not numbers or out of range.
    """
    if isinstance(source, str) and source in BUILTIN_POPS:
        resource = resources.files("wansim") / "data" / BUILTIN_POPS[source]
        with resources.as_file(resource) as path:
            rows = read_csv(path, POP_COLUMNS, unique="code")
    else:
        rows = read_csv(source, POP_COLUMNS, unique="code")
    return PopTable.from_rows(rows)
