"""The simpy driver for a sans-I/O IKE endpoint (an `IkeSa` or a responder `Gateway`).

Feed a datagram or a timer in, drain what the engine wants to send and what happened,
re-arm the timer. simpy timeouts cannot be cancelled, so a timer callback that fires early,
late or twice only re-checks ``get_timer()`` — harmless by the engine's contract.

The owner decides *when* output leaves: ``on_output(datagrams, events)`` is called once per
step with everything the step produced, so a POP can hold a response until a core has
done the work and a site can add its own processing time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy

from wansim.net.timers import Timer, schedule

Addr = tuple[str, int]
Datagram = tuple[bytes, Addr]
OutputHandler = Callable[[list[Datagram], list[Any]], None]


class EngineDriver:
    """Runs one endpoint on a simpy clock."""

    __slots__ = ("env", "endpoint", "_on_output", "_armed_at", "_fire_callbacks")

    def __init__(self, env: simpy.Environment, endpoint: Any, on_output: OutputHandler) -> None:
        self.env = env
        self.endpoint = endpoint
        self._on_output = on_output
        self._armed_at: float | None = None
        self._fire_callbacks = (self._fire,)

    def receive(self, data: bytes, addr: Addr) -> None:
        self.endpoint.receive_datagram(data, addr, self.env._now)
        self.flush()

    def flush(self) -> None:
        """Hand the endpoint's pending output to the owner and re-arm the timer."""
        datagrams, events = self.endpoint.take_output(self.env._now)
        if datagrams or events:
            self._on_output(datagrams, events)
        self.rearm()

    def rearm(self) -> None:
        """Make sure a wake-up is pending for the endpoint's timer (for an owner that
        drained the endpoint's output itself)."""
        at = self.endpoint.get_timer()
        if at is None:
            return
        armed = self._armed_at
        if armed is not None and armed <= at:
            return  # an earlier (or equal) wake-up is pending; it will re-arm
        self._armed_at = at
        wake = Timer()
        wake.callbacks = self._fire_callbacks
        schedule(self.env, max(0.0, at - self.env._now), wake)

    def _fire(self, _event: Timer) -> None:
        if self._armed_at is not None and self._armed_at <= self.env.now:
            self._armed_at = None
        deadline = self.endpoint.get_timer()
        if deadline is not None and deadline <= self.env.now:
            self.endpoint.handle_timer(self.env.now)
        self.flush()
