"""A POP's CPU: N cores as a FIFO simpy resource, with the load integrals metrics need.

Work arrives as jobs of known simulated duration (from the cost table); a job waits in
FIFO order for a free core and holds it for its duration. The pool keeps, per time bin,
the integral of busy cores and of queue length so utilisation and mean queue length come
out exact (not sampled), without ticking.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

import numpy as np
import simpy

T = TypeVar("T")


class BinnedIntegral:
    """Integral of a piecewise-constant quantity over fixed-width time bins."""

    __slots__ = ("resolution_s", "values")

    def __init__(self, resolution_s: float) -> None:
        if not resolution_s > 0:
            raise ValueError(f"resolution must be positive, got {resolution_s!r}")
        self.resolution_s = resolution_s
        self.values = np.zeros(64)

    def add(self, start_at: float, end_at: float, level: float = 1.0) -> None:
        """Add ``level`` held over [start_at, end_at)."""
        if end_at <= start_at or level == 0:
            return
        res = self.resolution_s
        first, last = int(start_at // res), int(end_at // res)
        if last >= len(self.values):
            grown = np.zeros(max(2 * len(self.values), last + 1))
            grown[: len(self.values)] = self.values
            self.values = grown
        if first == last:
            self.values[first] += level * (end_at - start_at)
            return
        self.values[first] += level * ((first + 1) * res - start_at)
        self.values[first + 1 : last] += level * res
        self.values[last] += level * (end_at - last * res)

    def per_bin(self, n_bins: int) -> np.ndarray:
        """Bin integrals for bins 0..n_bins-1 (zero-padded)."""
        out = np.zeros(n_bins)
        n = min(n_bins, len(self.values))
        out[:n] = self.values[:n]
        return out


class CpuPool:
    """``cores`` identical cores serving jobs first-come first-served."""

    def __init__(self, env: simpy.Environment, cores: int, *, resolution_s: float = 60.0) -> None:
        if cores < 1:
            raise ValueError(f"a POP needs at least one core, got {cores!r}")
        self.env = env
        self.cores = cores
        self._resource = simpy.Resource(env, capacity=cores)
        self.busy = BinnedIntegral(resolution_s)
        self.queued = BinnedIntegral(resolution_s)
        self._waiting = 0
        self._waiting_since = 0.0
        self.jobs = 0
        self.busy_s = 0.0
        self.wait_s = 0.0

    @property
    def queue_length(self) -> int:
        """Jobs waiting for a core right now."""
        return self._waiting

    def _set_waiting(self, delta: int) -> None:
        now = self.env.now
        self.queued.add(self._waiting_since, now, self._waiting)
        self._waiting += delta
        self._waiting_since = now

    def run(self, cost_s: float) -> Generator[Any, Any, float]:
        """simpy process body: wait for a core, hold it ``cost_s``; returns the wait."""
        wait_s, _ = yield from self.serve(lambda: (cost_s, None))
        return wait_s

    def serve(self, work: Callable[[], tuple[float, T]]) -> Generator[Any, Any, tuple[float, T]]:
        """simpy process body: wait for a core, then run ``work()`` — which returns
        ``(cost_s, result)`` — and hold the core for ``cost_s``; returns (wait, result).

        The work runs when service starts, as in a daemon's job queue: a request is
        parsed and answered by the core that picks it up, not when it arrives.
        """
        arrived_at = self.env.now
        with self._resource.request() as request:
            if not request.triggered:
                self._set_waiting(+1)
                yield request
                self._set_waiting(-1)
            started_at = self.env.now
            cost_s, result = work()
            if cost_s > 0:
                yield self.env.timeout(cost_s)
            self.busy.add(started_at, started_at + cost_s)
        wait_s = started_at - arrived_at
        self.jobs += 1
        self.busy_s += cost_s
        self.wait_s += wait_s
        return wait_s, result

    def flush(self) -> None:
        """Account the queue up to now (call before reading ``queued``)."""
        self._set_waiting(0)


def erlang_c_wait_s(arrival_rate: float, mean_service_s: float, cores: int) -> float:
    """Mean queueing delay of an M/M/c queue (Erlang C), for sizing and for tests.

    ``P(wait) = (a^c / c!) · c/(c − a) / (Σ_{k<c} a^k/k! + (a^c/c!) · c/(c − a))`` with offered
    load ``a = λ·s``; mean wait ``= P(wait) · s / (c − a)``.
    """
    a = arrival_rate * mean_service_s
    if not 0 <= a < cores:
        raise ValueError(f"offered load {a:.3f} Erlang needs more than {cores} cores")
    term, partial = 1.0, 0.0  # term = a^k / k!
    for k in range(cores):
        partial += term
        term *= a / (k + 1)
    top = term * cores / (cores - a)
    return top / (partial + top) * mean_service_s / (cores - a)
