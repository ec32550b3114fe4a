"""A POP's CPU: N cores as a FIFO simpy resource, with the load integrals metrics need.

Work arrives as jobs of known simulated duration (from the cost table); a job waits in
FIFO order for a free core and holds it for its duration. The pool keeps, per time bin,
the integral of busy cores and of queue length so utilisation and mean queue length come
out exact (not sampled), without ticking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import numpy as np
import simpy

from wansim.net.timers import schedule

T = TypeVar("T")


class BinnedIntegral:
    """Integral of a piecewise-constant quantity over fixed-width time bins.

    Bins are a Python list while the run adds to them (a scalar update of a list is several
    times cheaper than numpy's); ``per_bin`` hands out an array.
    """

    __slots__ = ("resolution_s", "values")

    def __init__(self, resolution_s: float) -> None:
        if not resolution_s > 0:
            raise ValueError(f"resolution must be positive, got {resolution_s!r}")
        self.resolution_s = resolution_s
        self.values: list[float] = []

    def add(self, start_at: float, end_at: float, level: float = 1.0) -> None:
        """Add ``level`` held over [start_at, end_at)."""
        if end_at <= start_at or level == 0:
            return
        res = self.resolution_s
        first, last = int(start_at // res), int(end_at // res)
        values = self.values
        if last >= len(values):
            values.extend([0.0] * (last + 1 - len(values)))
        if first == last:
            values[first] += level * (end_at - start_at)
            return
        values[first] += level * ((first + 1) * res - start_at)
        full = level * res
        for i in range(first + 1, last):
            values[i] += full
        values[last] += level * (end_at - last * res)

    def per_bin(self, n_bins: int) -> np.ndarray:
        """Bin integrals for bins 0..n_bins-1 (zero-padded)."""
        return padded(self.values, n_bins)


def padded(values: list[float], n_bins: int) -> np.ndarray:
    """The first ``n_bins`` of ``values`` as an array, zero-padded."""
    out = np.zeros(n_bins)
    n = min(n_bins, len(values))
    out[:n] = values[:n]
    return out


class CpuPool:
    """``cores`` identical cores serving jobs first-come first-served.

    Jobs are callbacks, not simpy processes: a job that finds a core runs at once and costs
    two events (its service time and its core's release) where a process holding a
    ``simpy.Resource`` costs five and a generator. Everything observable happens in the
    Resource's order, tie-breaks at one instant included, so results are the same:

    * an arrival grants the oldest waiting job a free core (only that one, as
      ``Resource``'s put queue does); if the arrival itself is granted it runs at once;
    * a finished job frees its core at once, and one zero-delay event later (the
      ``Release`` event's turn) the oldest waiting job is granted;
    * a granted waiting job starts one zero-delay event after its grant.
    """

    def __init__(self, env: simpy.Environment, cores: int, *, resolution_s: float = 60.0) -> None:
        if cores < 1:
            raise ValueError(f"a POP needs at least one core, got {cores!r}")
        self.env = env
        self.cores = cores
        self._free = cores
        self._queue: deque[_Job] = deque()
        self.busy = BinnedIntegral(resolution_s)
        self.queued = BinnedIntegral(resolution_s)
        self._waiting = 0
        self._waiting_since = 0.0
        self.jobs = 0
        self.busy_s = 0.0
        self.wait_s = 0.0
        self._resume_callbacks = (self._resume,)
        self._finish_callbacks = (self._finish,)
        self._release_callbacks = (self._grant_waiting,)

    @property
    def queue_length(self) -> int:
        """Jobs waiting for a core right now."""
        return self._waiting

    def _set_waiting(self, delta: int) -> None:
        now = self.env._now
        self.queued.add(self._waiting_since, now, self._waiting)
        self._waiting += delta
        self._waiting_since = now

    def submit(self, work: Callable[..., tuple[float, T]], done: Callable[[float, T], None],
               *args: Any) -> None:  # fmt: skip
        """Queue a job: the core that picks it up runs ``work(*args)`` — which returns
        ``(cost_s, result)`` — and is held ``cost_s``; then ``done(wait_s, result)``.

        The work runs when service starts, as in a daemon's job queue: a request is
        parsed and answered by the core that picks it up, not when it arrives.
        """
        job = _Job()
        job.arrived_at = self.env._now
        job.work, job.done, job.args = work, done, args
        if self._free and not self._queue:  # an idle core takes it at once (the usual case)
            self._free -= 1
            self._start(job)
            return
        self._queue.append(job)
        self._grant_waiting()  # a release may have left a core free: the oldest job gets it
        self._set_waiting(+1)

    def run(self, cost_s: float) -> Generator[Any, Any, float]:
        """simpy process body: wait for a core, hold it ``cost_s``; returns the wait."""
        finished = self.env.event()
        self.submit(lambda: (cost_s, None), lambda wait_s, _: finished.succeed(wait_s))
        return (yield finished)

    def flush(self) -> None:
        """Account the queue up to now (call before reading ``queued``)."""
        self._set_waiting(0)

    # -- job lifecycle ------------------------------------------------------------------
    # A job is its own simpy event (wansim.net.timers): scheduled once to resume (granted
    # while waiting), once to finish, and once more, finished, as its core's release.
    def _grant_waiting(self, _event: Any = None) -> None:
        """Give a free core to the oldest queued job; it starts one zero-delay event later."""
        if self._queue and self._free:
            self._free -= 1
            job = self._queue.popleft()
            job.callbacks = self._resume_callbacks
            schedule(self.env, 0, job)

    def _resume(self, job: _Job) -> None:
        """A waiting job got its core: it stops waiting and starts."""
        self._set_waiting(-1)
        self._start(job)

    def _start(self, job: _Job) -> None:
        job.started_at = self.env._now
        job.cost_s, job.result = job.work(*job.args)
        if job.cost_s > 0:
            job.callbacks = self._finish_callbacks
            schedule(self.env, job.cost_s, job)
        else:
            job.cost_s = 0.0
            self._finish(job)

    def _finish(self, job: _Job) -> None:
        started_at, cost_s = job.started_at, job.cost_s
        self.busy.add(started_at, started_at + cost_s)
        self._free += 1
        job.callbacks = self._release_callbacks  # the Release event's turn, one event later
        schedule(self.env, 0, job)
        wait_s = started_at - job.arrived_at
        self.jobs += 1
        self.busy_s += cost_s
        self.wait_s += wait_s
        job.done(wait_s, job.result)


class _Job:
    """One job's state between its arrival and its end, and the simpy event of each of
    its steps (``callbacks`` set to the pool's step before it is scheduled)."""

    __slots__ = ("callbacks", "arrived_at", "work", "done", "args", "started_at", "cost_s",
                 "result")  # fmt: skip
    _ok = True


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
