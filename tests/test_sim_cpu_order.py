"""The callback CPU pool serves jobs in exactly the order a ``simpy.Resource`` would.

The pool replaced one simpy process per job holding a ``Resource`` (a fifth of the events);
results must not move, so the oracle here is that process-based implementation, run on
workloads full of ties: arrivals and completions at the same instants, zero-cost jobs,
several cores, and follow-up jobs a finished job submits at once or one zero-delay event
later (as a reply that comes straight back would). Every start and end is logged with the
instant; the logs must be equal.
"""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.sim.cpu import CpuPool

#: (arrival instant, cost, follow-up) per job, in whole seconds; follow-up: none, a
#: zero-cost job submitted when this one ends ("now") or one zero-delay event later ("next")
Workload = list[tuple[int, int, str]]
FOLLOW_UPS = ("none", "now", "next")


def _arrive_at(env: simpy.Environment, at: float, action) -> None:
    env.timeout(at).callbacks.append(lambda _e: action())


def _follow(env: simpy.Environment, follow: str, submit) -> None:
    if follow == "now":
        submit()
    elif follow == "next":
        _arrive_at(env, 0, submit)


def resource_log(cores: int, jobs: Workload) -> list[tuple]:
    """The oracle: a simpy process per job around a ``Resource`` request."""
    env = simpy.Environment()
    resource = simpy.Resource(env, capacity=cores)
    log: list[tuple] = []

    def job(k, cost: int, follow: str):
        arrived_at = env.now
        with resource.request() as request:
            if not request.triggered:
                yield request
            started_at = env.now
            log.append(("start", k, started_at))
            if cost > 0:
                yield env.timeout(cost)
        log.append(("done", k, env.now, started_at - arrived_at))
        _follow(env, follow, lambda: env.process(job((k, "f"), 0, "none")))

    for k, (at, cost, follow) in enumerate(jobs):
        _arrive_at(env, at, lambda k=k, c=cost, f=follow: env.process(job(k, c, f)))
    env.run()
    return log


def pool_log(cores: int, jobs: Workload) -> list[tuple]:
    env = simpy.Environment()
    pool = CpuPool(env, cores, resolution_s=1.0)
    log: list[tuple] = []

    def submit(k, cost: int, follow: str) -> None:
        def work() -> tuple[float, None]:
            log.append(("start", k, env.now))
            return float(cost), None

        def done(wait_s: float, _result: None) -> None:
            log.append(("done", k, env.now, wait_s))
            _follow(env, follow, lambda: submit((k, "f"), 0, "none"))

        pool.submit(work, done)

    for k, (at, cost, follow) in enumerate(jobs):
        _arrive_at(env, at, lambda k=k, c=cost, f=follow: submit(k, c, f))
    env.run()
    return log


def test_simultaneous_arrivals_and_releases_keep_the_resource_order():
    # t=0: three jobs on two cores; t=1: a release and two arrivals at the same instant
    jobs = [(0, 1, "next"), (0, 1, "now"), (0, 0, "none"), (1, 0, "next"), (1, 2, "none"),
            (1, 1, "now"), (2, 0, "none")]  # fmt: skip
    assert pool_log(2, jobs) == resource_log(2, jobs)


@settings(max_examples=150, deadline=None)
@given(
    cores=st.integers(1, 3),
    jobs=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 2), st.sampled_from(FOLLOW_UPS)),
        min_size=1,
        max_size=14,
    ),
)
def test_any_tied_workload_is_served_in_the_resource_order(cores: int, jobs: Workload):
    assert pool_log(cores, jobs) == resource_log(cores, jobs)
