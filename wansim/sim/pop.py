"""A POP: the IKE responder of every tunnel whose anycast route ends here.

Each datagram that survives admission control becomes a job on the POP's CPU pool; the
core that picks it up feeds it to the engine's responder :class:`~wansim.ike.gateway.Gateway`
and holds the core for the cost-table price of what the engine reports (every crypto
operation plus per-exchange processing), then the response leaves. Work the engine does
without reporting an exchange — a COOKIE demand, a retransmitted response from its cache,
a dropped datagram — is not charged (strongSwan answers these in its receiver thread).

Admission control, in the order a real daemon applies it: an optional cap on new
IKE_SA_INIT requests per second (a token bucket, excess dropped), then the gateway's own
COOKIE challenge once its half-open count reaches the threshold.

State: under ``replicated`` every POP shares one gateway (one replicated SA database) and
:class:`SaRegistry` decides whether the state of an SA has reached this POP; otherwise each
POP has its own gateway, lost when the POP dies.
Either way a POP's COOKIE threshold counts only the half-open SAs it admitted itself
(the gateway's per-ingress count): a daemon admits against its own load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import simpy

from wansim.ike.constants import NON_ESP_MARKER
from wansim.ike.events import ExchangeCompleted, IkeSaEstablished, IkeSaRekeyed
from wansim.ike.gateway import Gateway
from wansim.sim.costs import CostTable
from wansim.sim.cpu import CpuPool
from wansim.sim.driver import Addr, EngineDriver
from wansim.sim.metrics import PopCounters

_ZERO_SPI = bytes(8)
_IKE_SA_INIT = 34


def ike_spis(data: bytes) -> tuple[bytes, bytes, int] | None:
    """(SPIi, SPIr, exchange type) of an IKE datagram, or None if it is too short."""
    if data[:4] == NON_ESP_MARKER:
        data = data[4:]
    if len(data) < 28:
        return None
    return data[:8], data[8:16], data[18]


@dataclass
class _Entry:
    home: str
    replicated_at: float | None = None


class SaRegistry:
    """Where each responder IKE SA's state is usable (``replicated`` strategy).

    Keyed by the POP-side SPI (SPIr: sites always initiate). A half-open SA lives only at
    the POP that answered its IKE_SA_INIT; once established (or rekeyed) its state reaches
    every POP ``delay_s`` later. A POP that dies silently takes with it the SAs whose state
    had not left it yet.
    """

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._entries: dict[bytes, _Entry] = {}

    def half_open(self, spi: bytes, pop: str) -> None:
        self._entries.setdefault(spi, _Entry(pop))

    def established(self, spi: bytes, pop: str, now: float) -> float:
        """Record an authenticated SA at ``pop``; returns when every POP holds it."""
        at = now + self.delay_s
        self._entries[spi] = _Entry(pop, at)
        return at

    def replicated_at(self, spi: bytes) -> float | None:
        entry = self._entries.get(spi)
        return entry.replicated_at if entry is not None else None

    def usable(self, spi: bytes, pop: str, now: float) -> bool:
        entry = self._entries.get(spi)
        if entry is None:
            return False
        return entry.home == pop or (entry.replicated_at is not None and now >= entry.replicated_at)

    def pop_lost(self, pop: str, now: float) -> None:
        lost = [
            spi
            for spi, e in self._entries.items()
            if e.home == pop and (e.replicated_at is None or e.replicated_at > now)
        ]
        for spi in lost:
            del self._entries[spi]


class TokenBucket:
    """At most ``rate`` admissions per second on average, bursts up to ``burst``."""

    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._at = 0.0

    def admit(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Responder:
    """One anycast address's responder at a POP: a gateway and its timer driver."""

    __slots__ = ("gateway", "driver")

    def __init__(self, env: simpy.Environment, gateway: Gateway) -> None:
        self.gateway = gateway
        self.driver = EngineDriver(env, gateway, _ignore_timer_output)


def _ignore_timer_output(datagrams: list, events: list) -> None:
    """A responder sends nothing on a timer: only half-open expiry happens there."""


class Pop:
    """One POP: CPU pool, a responder per anycast address, admission control, up or down."""

    def __init__(
        self,
        env: simpy.Environment,
        code: str,
        *,
        cpu: CpuPool,
        counters: PopCounters,
        costs: CostTable,
        addresses: tuple[str, ...],
        make_gateway: Callable[[str], Gateway],
        send: Callable[[str, str, bytes, Addr, float], None],
        registry: SaRegistry | None = None,
        shared: dict[str, Responder] | None = None,
        rate_cap: float | None = None,
    ) -> None:
        self.env = env
        self.code = code
        self.cpu = cpu
        self.counters = counters
        self.costs = costs
        self.addresses = addresses
        self._make_gateway = make_gateway
        self._send = send
        self.registry = registry
        self._shared = shared
        self._bucket = TokenBucket(rate_cap) if rate_cap else None
        self.alive = True
        self._epoch = 0
        self.drops: dict[str, int] = {}
        self.responders = shared if shared is not None else self._fresh()

    def _fresh(self) -> dict[str, Responder]:
        return {a: Responder(self.env, self._make_gateway(a)) for a in self.addresses}

    # -- network side -------------------------------------------------------------------
    def receive(self, address: str, data: bytes, addr: Addr) -> None:
        """A datagram for anycast ``address`` arrived from a site."""
        if not self.alive:
            return self._drop("pop_down")
        if self._bucket is not None or self.registry is not None:  # admission needs the SPIs
            spis = ike_spis(data)
            if spis is not None and spis[1] == _ZERO_SPI and spis[2] == _IKE_SA_INIT:
                if self._bucket is not None and not self._bucket.admit(self.env._now):
                    return self._drop("rate_cap")
            elif self.registry is not None and spis is not None:
                if not self.registry.usable(spis[1], self.code, self.env._now):
                    return self._drop("state_not_here")
        self.cpu.submit(self._work, self._reply, address, data, addr, self._epoch)

    def _drop(self, why: str) -> None:
        self.drops[why] = self.drops.get(why, 0) + 1

    def _work(
        self, address: str, data: bytes, addr: Addr, epoch: int
    ) -> tuple[float, tuple[str, int, list]]:
        """A core picked the datagram up: the gateway handles it; returns the cost and
        (address, epoch, replies) for `_reply`."""
        if epoch != self._epoch:
            return 0.0, (address, epoch, [])
        responder = self.responders[address]
        gateway, now = responder.gateway, self.env._now
        gateway.receive_datagram(data, addr, now, ingress=self.code)
        out, events = gateway.take_output(now)
        cost = 0.0
        exchanges = 0
        for event in events:
            if isinstance(event, ExchangeCompleted) and event.side == "responder":
                cost += self.costs.cost_s(event.crypto_ops, event.exchange)
                exchanges += 1
        responder.driver.rearm()  # the gateway's timer (half-open expiry)
        self._note(out, events)
        self.counters.add(now, exchanges, len(data))
        return cost, (address, epoch, out)

    def _reply(self, wait_s: float, work_done: tuple[str, int, list]) -> None:
        """The core is done: the replies leave (unless the POP died meanwhile)."""
        address, epoch, out = work_done
        if epoch != self._epoch or not self.alive:
            return
        now = self.env._now
        for reply, dest in out:
            self.counters.add(now, 0, len(reply))
            self._send(self.code, address, reply, dest, wait_s)
            wait_s = 0.0  # charge a job's wait once, not per fragment

    def _note(self, out: list, events: list) -> None:
        registry = self.registry
        if registry is not None:
            for reply, _ in out:
                spis = ike_spis(reply)
                if spis is not None and spis[2] == _IKE_SA_INIT and spis[1] != _ZERO_SPI:
                    registry.half_open(spis[1], self.code)
            for event in events:
                if isinstance(event, IkeSaEstablished):
                    registry.established(event.ike_spis[1], self.code, self.env.now)
                elif isinstance(event, IkeSaRekeyed):
                    registry.established(event.new_ike_spis[1], self.code, self.env.now)

    # -- failures -------------------------------------------------------------------------
    def fail(self, now: float) -> None:
        """The POP stops: queued work is lost, and so is its SA state unless replicated."""
        self.alive = False
        self._epoch += 1
        if self.registry is not None:
            self.registry.pop_lost(self.code, now)

    def recover(self, now: float) -> None:
        self.alive = True
        if self._shared is None:  # a restarted daemon knows no SA
            self.responders = self._fresh()
