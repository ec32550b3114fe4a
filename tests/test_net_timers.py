"""Cheap timers run in exactly the order simpy Timeouts would, ties and nesting included."""

from __future__ import annotations

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.net.timers import Timer, call_later, run_until, schedule

#: per timer: (delay in whole seconds, delays of the timers its callback starts)
Plan = list[tuple[int, list[int]]]
plans = st.lists(st.tuples(st.integers(0, 3), st.lists(st.integers(0, 2), max_size=3)), max_size=12)


def _log(plan: Plan, kinds: list[str]) -> list[tuple]:
    """Run `plan`, starting each timer with the mechanism `kinds` names (cycled)."""
    env = simpy.Environment()
    log: list[tuple] = []
    counter = iter(range(10**6))

    def start(name: tuple, delay: int, children: list[int]) -> None:
        kind = kinds[next(counter) % len(kinds)]

        def fire(_event) -> None:
            log.append((env.now, name))
            for j, child in enumerate(children):
                start((*name, j), child, [])

        if kind == "timeout":
            env.timeout(delay).callbacks.append(fire)
        elif kind == "call_later":
            call_later(env, delay, fire)
        else:
            timer = Timer()
            timer.callbacks = (fire,)
            schedule(env, delay, timer)

    for i, (delay, children) in enumerate(plan):
        start((i,), delay, children)
    env.run()
    return log


@settings(deadline=None, max_examples=150)
@given(plans)
def test_same_order_as_timeouts(plan: Plan) -> None:
    expected = _log(plan, ["timeout"])
    assert _log(plan, ["call_later"]) == expected
    assert _log(plan, ["schedule", "timeout", "call_later"]) == expected


def test_negative_delay_is_refused_like_a_timeout() -> None:
    env = simpy.Environment()
    with pytest.raises(ValueError, match="Negative delay"):
        call_later(env, -1.0, lambda _e: None)


def _process_log(plan: Plan, run) -> tuple[list[tuple], float]:
    """Processes and callbacks mixed, run in two slices by `run(env, until)`."""
    env = simpy.Environment()
    log: list[tuple] = []

    def proc(i: int, delays: list[int]):
        for d in delays:
            yield env.timeout(d)
            log.append((env.now, "p", i))

    for i, (delay, children) in enumerate(plan):
        env.process(proc(i, [delay, *children]))
        call_later(env, delay, lambda _e, i=i: log.append((env.now, "c", i)))
    run(env, 2)
    run(env, 5)
    return log, env.now


@settings(deadline=None, max_examples=100)
@given(plans)
def test_run_until_is_env_run(plan: Plan) -> None:
    expected = _process_log(plan, lambda env, at: env.run(until=at))
    assert _process_log(plan, run_until) == expected


def test_run_until_crashes_on_a_failed_process_as_env_run_does() -> None:
    def boom(env):
        yield env.timeout(1)
        raise KeyError("x")

    for run in (lambda env, at: env.run(until=at), run_until):
        env = simpy.Environment()
        env.process(boom(env))
        with pytest.raises(KeyError, match="x"):
            run(env, 3)
        assert env.now == 1
    with pytest.raises(ValueError, match="greater than the current"):
        run_until(simpy.Environment(), 0)
