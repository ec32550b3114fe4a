"""One-shot simpy timers at a fraction of a ``Timeout``'s price, in exactly its order.

simpy processes events by (time, priority, insertion id). A ``Timeout`` whose only use is
one callback costs an Event object, a constructor, a ``schedule`` call and a callbacks
list; a run schedules a few of these per datagram. `call_later` puts an event straight
on the environment's queue under the key the equivalent ``env.timeout(delay)`` would get
(same instant ``now + delay``, ``NORMAL`` priority, the next insertion id), so the order
of everything, ties included, is unchanged.

`run_until` is ``env.run(until=…)`` with ``Environment.step``'s loop inline (no method
call per event): same order, same stop (an urgent event at ``until``), same crash on a
failed event nobody defused.

An event is any object with a ``callbacks`` slot and a true ``_ok`` (what
``Environment.step`` reads): a :class:`Timer`, or an object of the caller's that carries
the state its callback needs (a datagram in flight, a CPU job), so nothing else is built.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT

Callback = Callable[[Any], None]


class Timer:
    """A bare event: ``callbacks`` is a tuple of functions, each called with the event."""

    __slots__ = ("callbacks",)
    _ok = True  # a timer never fails (Environment.step checks this after the callbacks)


def call_later(env: simpy.Environment, delay: float, callback: Callback) -> None:
    """Call ``callback(event)`` ``delay`` seconds from now, where ``env.timeout(delay)``'s
    callbacks would run."""
    if delay < 0:
        raise ValueError(f"Negative delay {delay}")
    timer = Timer()
    timer.callbacks = (callback,)
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), timer))


def schedule(env: simpy.Environment, delay: float, event: Any) -> None:
    """Queue ``event`` (its ``callbacks`` already set) as ``env.timeout(delay)`` would be;
    ``delay`` must not be negative (the caller's invariant)."""
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))


def run_until(env: simpy.Environment, until: float) -> None:
    """Process events until simulated time ``until``, exactly as ``env.run(until=until)``."""
    at = float(until)
    if at <= env._now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    stop = simpy.Event(env)
    stop._ok, stop._value = True, None
    env.schedule(stop, URGENT, at - env._now)  # before every event scheduled for `at`
    queue = env._queue
    while True:  # `stop` is queued until it is popped: the queue is never empty here
        env._now, _, _, event = heappop(queue)
        if event is stop:
            stop.callbacks = None
            return
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):  # as Environment.step
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc
