"""POP failures: a plan drawn once from the seed, then replayed by a simpy actor.

The plan is a plain, sorted tuple of :class:`PopFailure` so the same failures can be
replayed under every failover strategy (common random numbers). Three sources:

* scheduled — ``(pop, at, duration)`` given by the user;
* random — per POP, up-times drawn from the MTBF distribution and repair times from the
  MTTR distribution (an alternating renewal process);
* regional — every POP of a region fails at the same instant (power, fibre cut, bad push).

A POP that is already down when another failure would hit it stays down until the later of
the two repairs (overlapping intervals are merged), so a POP never fails twice at once.
``kind`` says how the POP goes: ``"graceful"`` drains (routes withdrawn at once, then it
stops), ``"silent"`` dies and neighbours only notice through BFD / BGP hold timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import simpy

FailureKind = Literal["graceful", "silent"]
KINDS: tuple[str, ...] = ("graceful", "silent")


@dataclass(frozen=True, order=True)
class PopFailure:
    """One POP down from ``at`` for ``duration_s``."""

    at: float
    pop: str
    duration_s: float
    kind: FailureKind = "silent"
    cause: str = "scheduled"

    @property
    def recovered_at(self) -> float:
        return self.at + self.duration_s


class Sampler(Protocol):
    """A duration distribution (e.g. the experiment config's ``Distribution``)."""

    def sample(self, rng: np.random.Generator) -> float: ...


def random_failures(
    pops: Sequence[str],
    *,
    mtbf: Sampler,
    mttr: Sampler,
    horizon_s: float,
    rng: np.random.Generator,
    kind: FailureKind = "silent",
) -> list[PopFailure]:
    """Independent up/down renewal processes per POP, drawn in POP order from ``rng``."""
    out: list[PopFailure] = []
    for pop in pops:
        t = float(mtbf.sample(rng))
        while t < horizon_s:
            down = float(mttr.sample(rng))
            if down > 0:
                out.append(PopFailure(t, pop, down, kind, "random"))
            t += down + float(mtbf.sample(rng))
    return out


def regional_failures(
    region: str,
    regions: Mapping[str, str],
    *,
    at: float,
    duration_s: float,
    kind: FailureKind = "silent",
) -> list[PopFailure]:
    """Every POP whose region is ``region`` fails at ``at`` (correlated failure)."""
    members = sorted(pop for pop, r in regions.items() if r == region)
    if not members:
        known = ", ".join(sorted(set(regions.values())))
        raise ValueError(f"region {region!r} has no POPs (known regions: {known})")
    return [PopFailure(at, pop, duration_s, kind, f"regional:{region}") for pop in members]


def merge_failures(failures: Iterable[PopFailure]) -> tuple[PopFailure, ...]:
    """Sort failures and merge overlapping ones of the same POP (first one's kind wins)."""
    by_pop: dict[str, list[PopFailure]] = {}
    for f in sorted(failures):
        if f.duration_s <= 0:
            raise ValueError(f"failure of {f.pop} at {f.at} s has non-positive duration")
        runs = by_pop.setdefault(f.pop, [])
        if runs and f.at <= runs[-1].recovered_at:
            last = runs[-1]
            end = max(last.recovered_at, f.recovered_at)
            runs[-1] = PopFailure(last.at, last.pop, end - last.at, last.kind, last.cause)
        else:
            runs.append(f)
    return tuple(sorted(f for runs in by_pop.values() for f in runs))


class FailureInjector:
    """Replays a failure plan: calls ``on_fail(f)`` at ``f.at``, ``on_recover(f)`` after."""

    def __init__(
        self,
        env: simpy.Environment,
        failures: Iterable[PopFailure],
        on_fail: Callable[[PopFailure], None],
        on_recover: Callable[[PopFailure], None],
    ) -> None:
        self.env = env
        self.failures = merge_failures(failures)
        self._on_fail = on_fail
        self._on_recover = on_recover
        for failure in self.failures:
            env.process(self._run(failure))

    def _run(self, failure: PopFailure):
        yield self.env.timeout(max(0.0, failure.at - self.env.now))
        self._on_fail(failure)
        yield self.env.timeout(failure.duration_s)
        self._on_recover(failure)
