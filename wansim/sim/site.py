"""A branch site: the IKE initiator of one tunnel (two for ``dual-tunnel``) to the anycast edge.

Lifecycle of each tunnel, strongSwan style:

* initial establishment at a uniformly random instant of the start window;
* Child SA rekey ``child.rekey_time - U(0, child.rand_time)`` after the Child SA was
  created, IKE SA rekey likewise with the IKE timers — so zero ``rand_time`` keeps tunnels
  created together rekeying together;
* liveness (DPD) only when it matters: traffic is continuous, so a DPD request is due
  ``dpd_delay`` after inbound traffic stopped — the instant the data plane went down — and
  is scheduled then, never ticked; with DPD off a dead POP is found by the next rekey;
* when the engine declares the peer dead, ``dpd_action = "restart"`` (or ``"trap"``: with
  continuous traffic the next packet comes at once) re-establishes immediately — a new
  IKE_SA_INIT to the anycast address, landing wherever routing says; ``"clear"`` stays down.

The site's own CPU is a delay, not a queue (a branch router has its tunnel to itself):
when an exchange completes, the site waits the cost-table price of its crypto operations
and of the exchange before sending what comes next. Metrics rows (``handshakes``) are
written when a handshake or rekey ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import simpy

from wansim.crypto.signatures import make_credentials
from wansim.ike.config import IkeConfig
from wansim.ike.events import (
    AuthenticationFailed,
    ChildSaRekeyed,
    ExchangeCompleted,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
    NegotiationFailed,
    PeerDeclaredDead,
    RequestRetransmitted,
)
from wansim.ike.sa import IkeSa
from wansim.net.timers import schedule
from wansim.sim.costs import CostTable
from wansim.sim.dataplane import DataPlane
from wansim.sim.driver import Addr, EngineDriver
from wansim.sim.failover import FailoverLog
from wansim.sim.metrics import HandshakeRecord, MetricsRecorder

_HANDSHAKE_EXCHANGES = frozenset({"IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH"})
_REKEY_EXCHANGES = frozenset({"CREATE_CHILD_SA", "IKE_FOLLOWUP_KE"})


@dataclass(frozen=True)
class SitePolicy:
    """Everything a site needs from the experiment's ``[ike]`` table, in seconds."""

    ike: IkeConfig
    proposal: str
    ike_rekey_s: float
    ike_rand_s: float
    child_rekey_s: float
    child_rand_s: float
    dpd_delay_s: float
    dpd_action: str
    start_window_s: float
    health_interval_s: float = 0.0
    """Tunnel health-check probe interval (dual tunnels only); 0 = off."""
    health_failures: int = 3
    """Consecutive missed probes that declare a tunnel down."""


class _Later:
    """A site's scheduled action: the simpy event that calls ``action(*args)``."""

    __slots__ = ("callbacks", "action", "args")
    _ok = True


def _run_later(later: _Later) -> None:
    later.action(*later.args)


_RUN_LATER = (_run_later,)


class SiteContext(Protocol):
    """What a site uses from the run it belongs to."""

    env: simpy.Environment
    strategy: str
    costs: CostTable
    recorder: MetricsRecorder
    dataplane: DataPlane
    failovers: FailoverLog

    def send(self, site: BranchSite, data: bytes, dest: Addr) -> None: ...

    def replicated_at(self, pop_spi: bytes) -> float | None: ...

    def on_detected(self, site: BranchSite, tunnel: Tunnel, now: float) -> None: ...

    def on_unhealthy(self, site: BranchSite, tunnel: Tunnel, now: float) -> None: ...

    def take_reply_state(self, site: BranchSite, address: str) -> tuple[str | None, float]: ...


class Tunnel:
    """One IKE SA to one anycast address, re-created on re-establishment."""

    __slots__ = (
        "index", "address", "sa", "driver", "generation", "pop", "records", "up", "probe_phase"
    )  # fmt: skip

    def __init__(self, index: int, address: str, probe_phase: float = 0.0) -> None:
        self.index = index
        self.address = address
        self.sa: IkeSa | None = None
        self.driver: EngineDriver | None = None
        self.generation = 0
        self.pop: str | None = None
        self.records: deque[HandshakeRecord] = deque()
        self.up = False
        self.probe_phase = probe_phase
        """Health-check probes reach this tunnel at probe_phase + k × interval."""


class BranchSite:
    """One branch router with its tunnel(s); a simpy actor driven by callbacks."""

    def __init__(
        self,
        ctx: SiteContext,
        name: str,
        index: int,
        ip: str,
        addresses: tuple[str, ...],
        policy: SitePolicy,
        rng: np.random.Generator,
        probe_rng: np.random.Generator | None = None,
    ) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.name = name
        self.index = index
        self.ip = ip
        self.policy = policy
        self.rng = rng
        self._certificate: tuple | None = None  # (key, DER) under signature auth
        # health checks only steer between two tunnels; their phases have their own stream
        # (common random numbers: drawing them never shifts the rekey jitter)
        probes = len(addresses) > 1 and policy.health_interval_s > 0 and probe_rng is not None
        self.tunnels = [
            Tunnel(i, a, float(probe_rng.uniform(0, policy.health_interval_s)) if probes else 0.0)
            for i, a in enumerate(addresses)
        ]
        self._health_checks = probes
        self.active = 0  # the tunnel carrying traffic (dual-tunnel switches it)
        start_at = float(rng.uniform(0.0, policy.start_window_s)) if policy.start_window_s else 0.0
        self._at(start_at, self._start)

    # -- scheduling helpers ------------------------------------------------------------
    def _at(self, delay_s: float, action: Callable[..., None], *args: Any) -> None:
        """Call ``action(*args)`` after ``delay_s`` of simulated time."""
        later = _Later()
        later.callbacks = _RUN_LATER
        later.action, later.args = action, args
        schedule(self.env, max(0.0, delay_s), later)

    def _start(self) -> None:
        for tunnel in self.tunnels:
            self.establish(tunnel, "initial")

    # -- establishment and rekeys ---------------------------------------------------------
    def establish(self, tunnel: Tunnel, kind: str) -> None:
        now = self.env.now
        tunnel.generation += 1
        generation = tunnel.generation
        sa = IkeSa(
            self.policy.ike,
            initiator=True,
            local_addr=(self.ip, 500),
            remote_addr=(tunnel.address, 500),
            created_at=now,
            credentials=self._credentials(),
        )
        tunnel.sa = sa
        tunnel.pop = None
        tunnel.records = deque([HandshakeRecord(self.name, "", kind, self.policy.proposal, now)])
        tunnel.driver = EngineDriver(self.env, sa, partial(self._output, tunnel, generation))
        sa.initiate(now)
        tunnel.driver.flush()

    def _credentials(self) -> tuple | None:
        """The branch's one key and certificate under signature auth, made on first use."""
        if self.policy.ike.auth == "psk":
            return None
        if self._certificate is None:
            self._certificate = make_credentials(self.policy.ike.auth, self.policy.ike.local_id)
        return self._certificate

    def _schedule_rekey(self, tunnel: Tunnel, kind: str) -> None:
        p = self.policy
        if kind == "rekey_child":
            delay = p.child_rekey_s - p.child_rand_s * float(self.rng.random())
        else:
            delay = p.ike_rekey_s - p.ike_rand_s * float(self.rng.random())
        generation = tunnel.generation
        self._at(delay, self._rekey, tunnel, generation, kind)

    def _rekey(self, tunnel: Tunnel, generation: int, kind: str) -> None:
        sa = tunnel.sa
        if generation != tunnel.generation or sa is None or not sa.established:
            return  # this SA is gone: its successor has its own schedule
        now = self.env.now
        tunnel.records.append(HandshakeRecord(self.name, tunnel.pop or "", kind,
                                              self.policy.proposal, now))  # fmt: skip
        if kind == "rekey_child":
            sa.rekey_child(now)
        else:
            sa.rekey_ike(now)
        tunnel.driver.flush()

    # -- network side -------------------------------------------------------------------
    def receive(self, data: bytes, addr: Addr) -> None:
        """A datagram from the anycast address ``addr[0]`` arrived."""
        for tunnel in self.tunnels:
            if tunnel.address == addr[0] and tunnel.driver is not None:
                pop, wait_s = self.ctx.take_reply_state(self, tunnel.address)
                if pop is not None:
                    tunnel.pop = pop
                if wait_s and tunnel.records:
                    tunnel.records[0].cpu_wait_s += wait_s
                tunnel.driver.receive(data, addr)
                return

    def _output(self, tunnel: Tunnel, generation: int, datagrams: list, events: list) -> None:
        if generation != tunnel.generation:
            return  # an abandoned SA's late output
        cost = 0.0
        for event in events:
            cost += self._event(tunnel, event, cost)
        if not datagrams:
            return
        if cost > 0:
            self._at(cost, self._send_all, tunnel, generation, datagrams)
        else:
            self._send_all(tunnel, generation, datagrams)

    def _send_all(self, tunnel: Tunnel, generation: int, datagrams: list) -> None:
        if generation != tunnel.generation:
            return
        for data, dest in datagrams:
            self.ctx.send(self, data, dest)

    # -- engine events --------------------------------------------------------------------
    def _event(self, tunnel: Tunnel, event: object, cost_so_far: float) -> float:
        """Handle one engine event; returns the site CPU seconds it costs."""
        now = self.env._now
        if isinstance(event, ExchangeCompleted):
            cost = self.ctx.costs.cost_s(event.crypto_ops, event.exchange)
            record = self._record_for(tunnel, event.exchange)
            if record is not None:
                record.round_trips += 1
                record.datagrams += event.request_datagrams + event.response_datagrams
                record.bytes += event.request_bytes + event.response_bytes
            return cost
        if isinstance(event, RequestRetransmitted):
            record = self._record_for(tunnel, event.exchange)
            if record is not None:
                record.retransmissions += 1
                record.datagrams += 1
            return 0.0
        done_at = now + cost_so_far
        if isinstance(event, IkeSaEstablished):
            record = self._finish(tunnel, ("initial", "reestablish"), done_at, "established")
            if record is not None:
                record.round_trips = event.round_trips
            self._sa_up(tunnel, event.ike_spis[1], done_at)
            self._schedule_rekey(tunnel, "rekey_child")
            self._schedule_rekey(tunnel, "rekey_ike")
        elif isinstance(event, ChildSaRekeyed):
            self._finish(tunnel, ("rekey_child",), done_at, "established")
            self._schedule_rekey(tunnel, "rekey_child")
        elif isinstance(event, IkeSaRekeyed):
            self._finish(tunnel, ("rekey_ike",), done_at, "established")
            self._sa_up(tunnel, event.new_ike_spis[1], done_at)
            self._schedule_rekey(tunnel, "rekey_ike")
        elif isinstance(event, PeerDeclaredDead):
            self._lost(tunnel, now, "timeout", detected=True)
        elif isinstance(event, IkeSaDeleted):
            if event.reason != "rekeyed":
                self._lost(tunnel, now, "deleted", detected=event.by_peer)
        elif isinstance(event, AuthenticationFailed | NegotiationFailed):
            record = tunnel.records[0] if tunnel.records else None
            if record is None or getattr(event, "notify", None) == "TEMPORARY_FAILURE":
                return 0.0  # nothing in flight, or the engine retries the rekey itself
            if tunnel.sa is None or tunnel.sa.closed or record.kind.startswith("rekey"):
                self._finish(tunnel, (record.kind,), now, "failed")
        return 0.0

    def _record_for(self, tunnel: Tunnel, exchange: str) -> HandshakeRecord | None:
        if not tunnel.records:
            return None
        record = tunnel.records[0]
        if exchange in _HANDSHAKE_EXCHANGES and record.kind in ("initial", "reestablish"):
            return record
        if exchange in _REKEY_EXCHANGES and record.kind.startswith("rekey"):
            return record
        return None

    def _finish(
        self, tunnel: Tunnel, kinds: tuple[str, ...], at: float, outcome: str
    ) -> HandshakeRecord | None:
        for record in tunnel.records:
            if record.kind in kinds:
                tunnel.records.remove(record)
                if tunnel.pop is not None:
                    record.pop = tunnel.pop
                self.ctx.recorder.handshake(record, ended_at=at, outcome=outcome)
                return record
        return None

    # -- data plane and failures ----------------------------------------------------------
    def _sa_up(self, tunnel: Tunnel, pop_spi: bytes, at: float) -> None:
        if tunnel.pop is None:
            return
        key = (self.name, tunnel.index)
        replicated_at = self.ctx.replicated_at(pop_spi)
        self.ctx.dataplane.sa_established(key, tunnel.pop, at, replicated_at)
        if replicated_at is not None and replicated_at > at:  # re-check when replicas land
            self._at(replicated_at - self.env.now, self._refresh, key)

    def _refresh(self, key: tuple[str, int]) -> None:
        self.ctx.dataplane.refresh(key, self.env.now)

    def _lost(self, tunnel: Tunnel, now: float, outcome: str, *, detected: bool) -> None:
        """The tunnel's IKE SA is gone: fail what was in flight, then restart it."""
        for record in list(tunnel.records):
            self._finish(tunnel, (record.kind,), now, "failed" if outcome == "timeout" else outcome)
        tunnel.generation += 1  # stale timers and late output of the old SA are ignored
        tunnel.sa = None
        self.ctx.dataplane.sa_lost((self.name, tunnel.index), now)
        if detected:
            self.ctx.on_detected(self, tunnel, now)
        if self.policy.dpd_action != "clear":  # "trap" re-initiates on the next packet: now
            self.establish(tunnel, "reestablish")

    def on_dataplane(self, tunnel_index: int, up: bool, now: float) -> None:
        """Data-plane transition of one of our tunnels (from :class:`DataPlane`)."""
        tunnel = self.tunnels[tunnel_index]
        tunnel.up = up
        if up:
            return
        if self._health_checks:
            self._at(self.health_detect_at(tunnel, now) - now, self._unhealthy, tunnel, now)
        if self.policy.dpd_delay_s <= 0 or tunnel.sa is None:
            return
        generation = tunnel.generation
        self._at(self.policy.dpd_delay_s, self._liveness, tunnel, generation, now)

    def _liveness(self, tunnel: Tunnel, generation: int, down_at: float) -> None:
        sa = tunnel.sa
        state = self.ctx.dataplane.tunnels.get((self.name, tunnel.index))
        if generation != tunnel.generation or sa is None or not sa.established:
            return
        if state is None or state.up or state.down_since != down_at:
            return  # traffic came back (or went down again later): no DPD from this outage
        sa.send_liveness(self.env.now)
        tunnel.driver.flush()

    def health_detect_at(self, tunnel: Tunnel, down_at: float) -> float:
        """When health checks declare a tunnel that went down at ``down_at`` down: at its
        ``health_failures``-th consecutive missed probe (computed, never ticked)."""
        interval = self.policy.health_interval_s
        first_missed = down_at + (tunnel.probe_phase - down_at) % interval
        return first_missed + (self.policy.health_failures - 1) * interval

    def _unhealthy(self, tunnel: Tunnel, down_at: float) -> None:
        state = self.ctx.dataplane.tunnels.get((self.name, tunnel.index))
        if state is None or state.up or state.down_since != down_at:
            return  # a probe got through before enough of them were missed
        self.ctx.on_unhealthy(self, tunnel, self.env.now)
