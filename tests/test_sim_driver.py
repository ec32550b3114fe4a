"""The simpy driver: timers fire at the engine's deadlines, stale wake-ups are harmless."""

from __future__ import annotations

import simpy

from wansim.sim.driver import EngineDriver


class ScriptedEndpoint:
    """A tiny endpoint with the engine's driver API: a list of deadlines, an echo."""

    def __init__(self, deadlines: list[float]) -> None:
        self.deadlines = sorted(deadlines)
        self.fired: list[float] = []
        self.handle_calls = 0
        self._out: list = []
        self._events: list = []

    def receive_datagram(self, data, addr, now):
        self._out.append((data[::-1], addr))
        self.deadlines.append(now + 0.5)
        self.deadlines.sort()

    def handle_timer(self, now):
        self.handle_calls += 1
        while self.deadlines and self.deadlines[0] <= now:
            self.fired.append(self.deadlines.pop(0))
            self._events.append(("fired", now))

    def get_timer(self):
        return self.deadlines[0] if self.deadlines else None

    def take_output(self, now):
        out, self._out = self._out, []
        events, self._events = self._events, []
        return out, events


def test_timers_fire_on_time_and_output_reaches_the_owner():
    env = simpy.Environment()
    endpoint = ScriptedEndpoint([3.0, 1.0])
    outputs: list = []
    driver = EngineDriver(env, endpoint, lambda d, e: outputs.append((env.now, d, e)))
    driver.flush()

    def poke():
        yield env.timeout(2.0)
        driver.receive(b"abc", ("192.0.2.1", 500))  # adds a deadline at 2.5

    env.process(poke())
    env.run()
    assert endpoint.fired == [1.0, 2.5, 3.0]
    assert outputs[0] == (1.0, [], [("fired", 1.0)])
    assert outputs[1] == (2.0, [(b"cba", ("192.0.2.1", 500))], [])
    # the stale wake-up armed for 3.0 before 2.5 existed did not call handle_timer early
    assert endpoint.handle_calls == 3
