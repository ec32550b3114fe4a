"""One-shot simpy timers at a fraction of a ``Timeout``'s price, in exactly its order.

simpy processes events by (time, priority, insertion id). A ``Timeout`` whose only use is
one callback costs an Event object, a constructor, a ``schedule`` call and a callbacks
list; a run schedules a few of these per datagram. `call_later` puts an event straight
on the environment's queue under the key the equivalent ``env.timeout(delay)`` would get
(same instant ``now + delay``, ``NORMAL`` priority, the next insertion id), so the order
of everything, ties included, is unchanged.

An event is any object with a ``callbacks`` slot and a true ``_ok`` (what
``Environment.step`` reads): a :class:`Timer`, or an object of the caller's that carries
the state its callback needs (a datagram in flight, a CPU job), so nothing else is built.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

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
