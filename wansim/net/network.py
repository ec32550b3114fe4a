"""The simulated network on simpy: real datagram bytes between sites and POPs.

    net = Network(env, world, rng=np.random.default_rng(1))
    pop_end = net.attach(anycast_ip, pop_driver.receive, pop="FRA")  # one per POP
    site_end = net.attach(world.site_ip(i), site_driver.receive)
    site_end.send(data, (anycast_ip, 500))        # handler(data, src_addr) at arrival

Each datagram is delivered once, after the path's delay, by a single simpy event
(no per-hop processes, no ticks). Per datagram: the destination POP of an anycast
address is looked up in `AnycastRouting` at send time (no healthy route: dropped
"blackholed"); it is IP-fragmented when larger than the path MTU and then dropped
on fragment-filtering paths ("fragments-dropped") or lost if any fragment is
("lost", per-fragment probability = path loss); it waits for the site's access
link (FIFO, serialization at the access bandwidth, queue order = send order) and
gets exponential jitter. A datagram still in flight to a POP that fails is
dropped at arrival ("pop-down"). Every drop is recorded with its reason.

Loss and jitter are drawn from `rng`, or, given `site_streams`, from the stream of
the site at either end: then a site's draws do not depend on other sites' traffic,
which lets a run be split across processes by site without changing any result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import simpy

from wansim.net.anycast import NO_POP
from wansim.net.paths import IPV4_HEADER_BYTES, UDP_HEADER_BYTES, Path, ip_fragment_count
from wansim.net.routing import AnycastRouting, FailureKind, RouteChange
from wansim.net.timers import schedule
from wansim.net.world import World

Addr = tuple[str, int]
Handler = Callable[[bytes, Addr], None]
_IP_UDP_HEADER_BYTES = IPV4_HEADER_BYTES + UDP_HEADER_BYTES


@dataclass(frozen=True)
class DatagramDelivered:
    kind = "delivered"
    sent_at: float
    at: float
    src: Addr
    dst: Addr
    size_bytes: int
    fragments: int
    pop: str | None
    """The POP at either end (None for site-to-site)."""


@dataclass(frozen=True)
class DatagramDropped:
    kind = "dropped"
    sent_at: float
    at: float
    src: Addr
    dst: Addr
    size_bytes: int
    fragments: int
    reason: str
    """blackholed | fragments-dropped | lost | pop-down | no-endpoint | no-route"""


class Endpoint:
    """Where an attached party sends from: knows its address and location.

    ``send(data, dst, src_port=None)`` sends ``data`` to ``dst``; the source port defaults
    to the destination port (IKE). It is the network's own send bound to this endpoint
    (one call per datagram, no forwarding method).
    """

    __slots__ = ("network", "ip", "location", "send")

    def __init__(self, network: Network, ip: str, location: tuple[str, int]) -> None:
        self.network = network
        self.ip = ip
        self.location = location
        self.send: Callable[..., None] = partial(network._send, self)


class _InFlight:
    """A datagram on its way: the simpy event that delivers it (see `wansim.net.timers`)."""

    __slots__ = ("callbacks", "data", "src", "dst", "handler_key", "pop", "sent_at", "fragments",
                 "pop_code")  # fmt: skip
    _ok = True


class Network:
    """Datagram transport over a World, with anycast routing that failures change."""

    def __init__(
        self,
        env: simpy.Environment,
        world: World,
        *,
        rng: np.random.Generator,
        routing: AnycastRouting | None = None,
        trace: Callable[[DatagramDelivered | DatagramDropped], None] | None = None,
        site_streams: Callable[[int], np.random.Generator] | None = None,
    ) -> None:
        self.env = env
        self.world = world
        self.routing = routing or world.new_routing(rng.spawn(1)[0])
        self._rng = rng
        self._site_streams = site_streams
        self._site_rngs: dict[int, np.random.Generator] = {}
        self._trace = trace
        self._handlers: dict[tuple[str, int | None], Handler] = {}
        self._located: dict[str, tuple[str, int | str]] = {}  # memo: ip -> location
        self._paths: dict[tuple, Path] = {}  # memo: the fixed part of each path
        self._site_pop: dict[tuple[int, int], Path] = {}  # the same for the busiest kind
        self._pop_codes = tuple(world.pops.codes)
        n = len(world.sites)
        self._uplink_free_at = [0.0] * n  # lists: scalar access is faster than numpy's
        self._downlink_free_at = [0.0] * n
        self.drops: list[DatagramDropped] = []
        self.delivered_count = 0
        self._deliver_callbacks = (self._deliver,)  # every datagram's event shares it

    # -- attaching and failing ------------------------------------------------
    def attach(self, ip: str, handler: Handler, *, pop: str | None = None) -> Endpoint:
        """Register `handler(data, src_addr)` for datagrams to `ip`.

        Site and POP unicast addresses take no `pop`; an anycast address is attached
        once per POP that serves it, naming the POP.
        """
        kind, where = self._locate(ip)
        if kind == "anycast":
            if pop is None:
                raise ValueError(f"{ip} is anycast: attach it per POP with pop=<code>")
            location = ("pop", self.world.pops.index(pop))
        else:
            if pop is not None and (kind != "pop" or self.world.pops.codes[where] != pop):
                raise ValueError(f"{ip} is a {kind} address, not POP {pop}'s")
            location = (kind, int(where))
        key = (ip, location[1] if kind == "anycast" else None)
        if key in self._handlers:
            raise ValueError(f"{ip} is already attached" + (f" at {pop}" if pop else ""))
        self._handlers[key] = handler
        return Endpoint(self, ip, location)

    def fail_pop(self, pop: str, kind: FailureKind = "silent") -> list[RouteChange]:
        """POP `pop` fails now; returns each site's route change with its instants."""
        return self.routing.fail_pop(pop, self.env.now, kind)

    def recover_pop(self, pop: str) -> list[RouteChange]:
        """POP `pop` is back now; returns the sites moving back and when."""
        return self.routing.recover_pop(pop, self.env.now)

    # -- transport ---------------------------------------------------------------
    def _send(
        self, origin: Endpoint, data: bytes, dst: Addr, src_port: int | None = None
    ) -> None:
        data = bytes(data)
        src = (origin.ip, dst[1] if src_port is None else src_port)
        now = self.env._now
        size = len(data)
        dst_ip = dst[0]
        located = self._located.get(dst_ip)
        if located is None:
            try:
                located = self._locate(dst_ip)
            except (KeyError, ValueError):
                self._drop(now, src, dst, size, 1, "no-route")
                return
        dst_kind, dst_where = located
        src_kind, src_index = origin.location
        routing = self.routing
        if src_kind == "pop" and not routing.healthy[src_index]:
            self._drop(now, src, dst, size, 1, "pop-down")  # a dead POP sends nothing
            return
        handler_key: tuple[str, int | None] = (dst_ip, None)
        if dst_kind == "anycast":
            if src_kind != "site":
                self._drop(now, src, dst, size, 1, "no-route")
                return
            pop = routing.pop_at(dst_ip, src_index, now)
            if pop == NO_POP:
                self._drop(now, src, dst, size, 1, "blackholed")
                return
            dst_kind, dst_where, handler_key = "pop", pop, (dst_ip, pop)
        # the two kinds every handshake uses, inline; the path is symmetric and memoised
        if src_kind == "site" and dst_kind == "pop":
            up, down, pop_index = src_index, None, dst_where
            path = self._site_pop_path(src_index, dst_where)
        elif src_kind == "pop" and dst_kind == "site":
            up, down, pop_index = None, dst_where, src_index
            path = self._site_pop_path(dst_where, src_index)
        else:
            path, pop_index = self._other_path(src_kind, src_index, dst_kind, int(dst_where))
            if path is None:  # site to site while either site's POP route is down
                self._drop(now, src, dst, size, 1, "blackholed")
                return
            up = src_index if src_kind == "site" else None
            down = int(dst_where) if dst_kind == "site" else None

        mtu = path.mtu_bytes
        # one IPv4 packet (the usual case) needs no fragment arithmetic
        k = 1 if size + _IP_UDP_HEADER_BYTES <= mtu else ip_fragment_count(size, mtu)
        serialization_s = (size + UDP_HEADER_BYTES + k * IPV4_HEADER_BYTES) * 8 / path.bandwidth_bps
        depart_at = now
        if up is not None:  # the datagram occupies the site's uplink even if lost later
            free_at = self._uplink_free_at[up]
            depart_at = (now if now > free_at else free_at) + serialization_s
            self._uplink_free_at[up] = depart_at
        if k > 1 and path.drops_fragments:
            self._drop(now, src, dst, size, k, "fragments-dropped")
            return
        arrive_at = depart_at + path.delay_s
        loss, jitter_s = path.loss, path.jitter_s
        if loss > 0 or jitter_s > 0:  # a stream is made only for a site that draws
            rng = self._rng_of(up if up is not None else down)
            if loss > 0 and (rng.random() < loss if k == 1 else _lost(rng, k, loss)):
                self._drop(now, src, dst, size, k, "lost")
                return
            if jitter_s > 0:
                arrive_at += float(rng.exponential(jitter_s))
        if down is not None:
            free_at = self._downlink_free_at[down]
            arrive_at = (arrive_at if arrive_at > free_at else free_at) + serialization_s
            self._downlink_free_at[down] = arrive_at
        flight = _InFlight()
        flight.callbacks = self._deliver_callbacks
        flight.data, flight.src, flight.dst = data, src, dst
        flight.handler_key = handler_key
        flight.pop = dst_where if dst_kind == "pop" else None  # checked alive at arrival
        flight.sent_at, flight.fragments = now, k
        flight.pop_code = self._pop_codes[pop_index] if pop_index is not None else None
        schedule(self.env, arrive_at - now, flight)

    def _rng_of(self, site: int | None) -> np.random.Generator:
        """The generator for a datagram to or from `site` (None: POP to POP)."""
        if site is None or self._site_streams is None:
            return self._rng
        rng = self._site_rngs.get(site)
        if rng is None:
            rng = self._site_rngs[site] = self._site_streams(site)
        return rng

    def _locate(self, ip: str) -> tuple[str, int | str]:
        where = self._located.get(ip)
        if where is None:
            where = self._located[ip] = self.world.locate(ip)
        return where

    def _other_path(
        self, src_kind: str, src: int, dst_kind: str, dst: int
    ) -> tuple[Path | None, int | None]:
        """POP to POP or site to site (`_send` handles site and POP itself): the path and
        the destination POP, if any."""
        w = self.world
        if src_kind == "pop" and dst_kind == "pop":
            return self._memo(("pop-pop", src, dst), lambda: w.pop_pop_path(src, dst)), dst
        # site to site: via each site's current POP for the first anycast address
        address = w.anycast_addresses[0]
        via = (self.routing.pop_at(address, src, self.env.now),
               self.routing.pop_at(address, dst, self.env.now))
        if NO_POP in via:
            return None, None
        key = ("site-site", src, dst, *via)
        return self._memo(key, lambda: w.site_site_path(src, dst, via)), None

    def _site_pop_path(self, site: int, pop: int) -> Path:
        """The path between a site and a POP (either way: it is symmetric), memoised."""
        path = self._site_pop.get((site, pop))
        if path is None:
            path = self._site_pop[(site, pop)] = self.world.site_pop_path(site, pop)
        return path

    def _memo(self, key: tuple, build: Callable[[], Path]) -> Path:
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = build()
        return path

    def _deliver(self, flight: _InFlight) -> None:
        now = self.env._now
        pop = flight.pop
        if pop is not None and not self.routing.healthy[pop]:
            self._drop(flight.sent_at, flight.src, flight.dst, len(flight.data), flight.fragments,
                       "pop-down", at=now)  # fmt: skip
            return
        handler = self._handlers.get(flight.handler_key)
        if handler is None:
            self._drop(flight.sent_at, flight.src, flight.dst, len(flight.data), flight.fragments,
                       "no-endpoint", at=now)  # fmt: skip
            return
        self.delivered_count += 1
        if self._trace is not None:
            self._trace(DatagramDelivered(flight.sent_at, now, flight.src, flight.dst,
                                          len(flight.data), flight.fragments, flight.pop_code))
        handler(flight.data, flight.src)

    def _drop(self, sent_at, src, dst, size, k, reason, at=None) -> None:
        record = DatagramDropped(sent_at, sent_at if at is None else at, src, dst, size, k, reason)
        self.drops.append(record)
        if self._trace is not None:
            self._trace(record)


def _lost(rng: np.random.Generator, fragments: int, loss: float) -> bool:
    """Whether any of the datagram's fragments is lost (independently, each w.p. loss)."""
    if fragments == 1:
        return rng.random() < loss
    return bool((rng.random(fragments) < loss).any())
