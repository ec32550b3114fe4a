"""Anycast routing over time: POP failure, detection, per-site reconvergence, recovery.

Nothing ticks. Each (address, site) holds its current POP and, at most, one
pending switch (target POP and the instant it takes effect); a query at time t
first applies switches due by t. A POP failure is detected after a delay set by
the failure kind (graceful withdrawal 0; BFD ≈0.15–3 s; BGP hold timer 90–180 s),
then every affected site converges after its own delay drawn from the
convergence distribution (default lognormal, median 3 s, 80 % within 10 s — the
shape the ANRW 2024 anycast study measured; docs/model.md). Until its switch a
site's packets still go to the dead POP and are blackholed. On recovery the POP
re-announces at once and each site that prefers it moves back after its own
convergence delay, staying on its (healthy) current POP meanwhile.

`fail_pop` / `recover_pop` return one `RouteChange` per affected (address, site)
with the instants a simulation can schedule directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from wansim.net.anycast import NO_POP, Catchment
from wansim.topology.pops import PopTable

FailureKind = Literal["graceful", "bfd", "hold-timer", "silent"]
"""How neighbours learn a POP is gone; "silent" means `silent_detection`."""


class LognormalDelay(BaseModel):
    """Lognormal convergence delay fixed by its median and 80th percentile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["lognormal"] = "lognormal"
    median_s: float = Field(3.0, gt=0)
    """Half the sites have converged by this delay."""
    p80_s: float = Field(10.0, gt=0)
    """80 % of the sites have converged by this delay."""

    @model_validator(mode="after")
    def _ordered(self) -> LognormalDelay:
        if self.p80_s <= self.median_s:
            raise ValueError("p80_s must exceed median_s")
        return self

    def distribution(self) -> stats.rv_continuous:
        sigma = math.log(self.p80_s / self.median_s) / stats.norm.ppf(0.8)
        return stats.lognorm(s=sigma, scale=self.median_s)


class FixedDelay(BaseModel):
    """Every site converges after the same delay (for what-if runs and tests)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["fixed"] = "fixed"
    delay_s: float = Field(ge=0)

    def distribution(self) -> _Interpolated:
        return _Interpolated(np.array([0.0, 1.0]), np.array([self.delay_s, self.delay_s]))


class EmpiricalDelay(BaseModel):
    """A measured CDF given as quantile points, linearly interpolated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["empirical"] = "empirical"
    quantiles: tuple[tuple[float, float], ...]
    """(probability, delay_s) pairs; must start at probability 0 and end at 1."""

    @model_validator(mode="after")
    def _cdf(self) -> EmpiricalDelay:
        p = [q[0] for q in self.quantiles]
        d = [q[1] for q in self.quantiles]
        if len(p) < 2 or p[0] != 0 or p[-1] != 1 or np.any(np.diff(p) <= 0):
            raise ValueError("quantiles need increasing probabilities from 0 to 1")
        if d[0] < 0 or np.any(np.diff(d) < 0):
            raise ValueError("quantile delays must be >= 0 and non-decreasing")
        return self

    def distribution(self) -> _Interpolated:
        p = np.array([q[0] for q in self.quantiles])
        d = np.array([q[1] for q in self.quantiles])
        return _Interpolated(p, d)


ConvergenceDelay = Annotated[
    LognormalDelay | FixedDelay | EmpiricalDelay, Field(discriminator="kind")
]


class RoutingParams(BaseModel):
    """Failure detection and route convergence (docs/model.md, "Reconvergence")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bfd_detection_s: tuple[float, float] = (0.15, 3.0)
    """BFD detect time range: 50 ms × 3 up to 1 s × 3 (drawn uniformly per failure)."""
    hold_timer_detection_s: tuple[float, float] = (90.0, 180.0)
    """BGP hold-timer expiry range (90 s common, 180 s Cisco/Juniper default)."""
    silent_detection: Literal["bfd", "hold-timer"] = "bfd"
    """What detects a "silent" failure (a POP that dies without withdrawing)."""
    convergence: ConvergenceDelay = LognormalDelay()
    """Per-site delay from detection (or re-announcement) to the new route."""

    @model_validator(mode="after")
    def _ranges(self) -> RoutingParams:
        for name in ("bfd_detection_s", "hold_timer_detection_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high")
        return self

    def detection_delay_s(self, kind: FailureKind, rng: np.random.Generator) -> float:
        """Draw how long neighbours take to notice a failure of this kind."""
        if kind == "silent":
            kind = self.silent_detection
        if kind == "graceful":
            return 0.0
        if kind == "bfd":
            return float(rng.uniform(*self.bfd_detection_s))
        if kind == "hold-timer":
            return float(rng.uniform(*self.hold_timer_detection_s))
        raise ValueError(f"unknown failure kind {kind!r}; use graceful, bfd, hold-timer, silent")


@dataclass(frozen=True)
class RouteChange:
    """One site's route for one anycast address moving after a POP event."""

    address: str
    site: str
    cause: Literal["failure", "recovery"]
    pop: str
    """The POP that failed or recovered."""
    from_pop: str | None
    """POP the site used before (None: it had no route)."""
    to_pop: str | None
    """POP the site converges to (None: no healthy POP announces the address)."""
    event_at: float
    detected_at: float
    converged_at: float

    @property
    def blackholed_s(self) -> float:
        """Time the site's packets to this address were lost to the dead POP."""
        if self.cause == "failure" and self.from_pop == self.pop:
            return self.converged_at - self.event_at
        return 0.0


def route_changes_frame(changes: list[RouteChange]) -> pd.DataFrame:
    """Tidy table of route changes, one row each, with a `blackholed_s` column."""
    columns = ["address", "site", "cause", "pop", "from_pop", "to_pop", "event_at",
               "detected_at", "converged_at"]  # fmt: skip
    frame = pd.DataFrame([{c: getattr(rc, c) for c in columns} for rc in changes],
                         columns=columns)
    on_dead_pop = (frame["cause"] == "failure") & (frame["from_pop"] == frame["pop"])
    frame["blackholed_s"] = np.where(on_dead_pop, frame["converged_at"] - frame["event_at"], 0.0)
    return frame


class AnycastRouting:
    """Per-address, per-site anycast routes as POPs fail and recover."""

    def __init__(
        self,
        catchments: Mapping[str, Catchment],
        pops: PopTable,
        params: RoutingParams,
        rng: np.random.Generator,
    ) -> None:
        self.catchments = dict(catchments)
        self.pops = pops
        self.params = params
        self._rng = rng
        self._convergence = params.convergence.distribution()
        self.healthy = np.ones(len(pops), dtype=bool)
        self._current: dict[str, NDArray[np.intp]] = {}
        self._pending: dict[str, NDArray[np.intp]] = {}
        self._switch_at: dict[str, NDArray[np.float64]] = {}
        for address, catchment in self.catchments.items():
            best = catchment.best(self.healthy)
            self._current[address] = best
            self._pending[address] = best.copy()
            self._switch_at[address] = np.full(len(best), np.inf)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(self.catchments)

    def is_healthy(self, pop: str) -> bool:
        return bool(self.healthy[self.pops.index(pop)])

    def pop_at(self, address: str, site: int, now: float) -> int:
        """POP index the site's packets to `address` reach at `now`; NO_POP if blackholed."""
        self._settle_one(address, site, now)
        pop = int(self._current[address][site])
        if pop == NO_POP or not self.healthy[pop]:
            return NO_POP
        return pop

    def routes(self, address: str, now: float) -> NDArray[np.intp]:
        """Every site's current POP for `address` (NO_POP where blackholed), read-only."""
        self._settle(address, now)
        out = self._current[address].copy()
        dead = out != NO_POP
        dead[dead] = ~self.healthy[out[dead]]
        out[dead] = NO_POP
        out.flags.writeable = False
        return out

    def next_switch_at(self, address: str, site: int) -> float:
        """When the site's route for `address` next changes (inf if nothing pending)."""
        return float(self._switch_at[address][site])

    def fail_pop(self, pop: str, now: float, kind: FailureKind = "silent") -> list[RouteChange]:
        """The POP stops serving at `now`; affected sites reroute after detection + convergence.

        Failing a POP that is already down changes nothing and returns no changes.
        """
        p = self.pops.index(pop)
        if not self.healthy[p]:
            return []
        detected_at = now + self.params.detection_delay_s(kind, self._rng)
        self.healthy[p] = False
        changes = []
        for address, catchment in self.catchments.items():
            self._settle(address, now)
            current, pending = self._current[address], self._pending[address]
            affected = np.flatnonzero((current == p) | (pending == p))
            if len(affected) == 0:
                continue
            target = catchment.best(self.healthy, affected)
            converge_at = detected_at + self._draw(len(affected))
            stays = (current[affected] == target) & (current[affected] != p)
            switch_at = np.where(stays, np.inf, converge_at)
            self._pending[address][affected] = target
            self._switch_at[address][affected] = switch_at
            for k in np.flatnonzero(~stays):
                changes.append(
                    self._change(address, int(affected[k]), "failure", pop, current[affected[k]],
                                 target[k], now, detected_at, float(converge_at[k]))
                )
        return changes

    def recover_pop(self, pop: str, now: float) -> list[RouteChange]:
        """The POP re-announces at `now`; sites preferring it move back, each in its own time.

        Recovering a POP that is up changes nothing and returns no changes.
        """
        p = self.pops.index(pop)
        if self.healthy[p]:
            return []
        self.healthy[p] = True
        changes = []
        for address, catchment in self.catchments.items():
            self._settle(address, now)
            current = self._current[address]
            # Sites still blackholed on this POP simply keep it: their pending move is void.
            back = np.flatnonzero((current == p) & (self._switch_at[address] < np.inf))
            self._pending[address][back] = p
            self._switch_at[address][back] = np.inf
            best = catchment.best(self.healthy)
            movers = np.flatnonzero((best == p) & (current != p))
            if len(movers) == 0:
                continue
            converge_at = now + self._draw(len(movers))
            self._pending[address][movers] = p
            self._switch_at[address][movers] = converge_at
            for k, site in enumerate(movers):
                changes.append(
                    self._change(address, int(site), "recovery", pop, current[site], p, now, now,
                                 float(converge_at[k]))
                )
        return changes

    def _draw(self, n: int) -> NDArray[np.float64]:
        return np.asarray(self._convergence.rvs(size=n, random_state=self._rng), dtype=float)

    def _change(self, address, site, cause, pop, from_pop, to_pop, event_at, detected_at,
                converged_at) -> RouteChange:
        def code(i) -> str | None:
            return None if int(i) == NO_POP else self.pops.codes[int(i)]

        return RouteChange(address, self.catchments[address].sites.names[site], cause, pop,
                           code(from_pop), code(to_pop), event_at, detected_at, converged_at)

    def _settle(self, address: str, now: float) -> None:
        due = self._switch_at[address] <= now
        if due.any():
            self._current[address][due] = self._pending[address][due]
            self._switch_at[address][due] = np.inf

    def _settle_one(self, address: str, site: int, now: float) -> None:
        if self._switch_at[address][site] <= now:
            self._current[address][site] = self._pending[address][site]
            self._switch_at[address][site] = np.inf


class _Interpolated:
    """Piecewise-linear CDF through quantile points; the scipy-like bits we use."""

    def __init__(self, p: NDArray[np.float64], d: NDArray[np.float64]) -> None:
        self._p, self._d = p, d

    def rvs(self, size: int, random_state: np.random.Generator) -> NDArray[np.float64]:
        return self.ppf(random_state.random(size))

    def ppf(self, q):
        return np.interp(q, self._p, self._d)

    def cdf(self, x):
        return np.interp(x, self._d, self._p, left=0.0, right=1.0)
