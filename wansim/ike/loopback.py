"""Two sans-I/O IKE endpoints wired together in memory on a fake clock.

Anything with the engine's driver API (`receive_datagram`, `datagrams_to_send`,
`get_timer`, `handle_timer`, `next_event`) can be an endpoint: an `IkeSa` or a
`Gateway`. Datagrams travel with a fixed one-way delay; a `tamper` hook may drop
(return None) or rewrite any datagram, so tests can inject loss and corruption. Every
datagram put on the wire is logged in `wire`. `run_handshake` is what `wansim handshake`
prints: one handshake (and optional rekeys) between two engines, message by message;
`engine_pair` builds the two engines and their harness for it and for tests.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Addr = tuple[str, int]


@dataclass(slots=True)
class Sent:
    at: float
    src: str  # "i" or "r"
    dst_addr: Addr
    data: bytes
    delivered: bool = True

    @property
    def ike_bytes(self) -> int:
        """The IKE message length on the wire, without a non-ESP marker."""
        return len(self.data) - (4 if self.data[:4] == b"\0\0\0\0" else 0)


# tamper(sent, index) -> None to drop, or the (possibly changed) bytes to deliver;
# index counts every datagram sent so far, starting at 0.
Tamper = Callable[[Sent, int], bytes | None]


@dataclass
class Harness:
    initiator: Any
    responder: Any
    initiator_addr: Addr = ("192.0.2.1", 500)
    responder_addr: Addr = ("192.0.2.2", 500)
    one_way_s: float = 0.010
    tamper: Tamper | None = None
    now: float = 0.0
    wire: list[Sent] = field(default_factory=list)
    events: dict[str, list] = field(default_factory=lambda: {"i": [], "r": []})
    _queue: list = field(default_factory=list)
    _seq: int = 0

    def endpoint(self, side: str) -> Any:
        return self.initiator if side == "i" else self.responder

    def flush(self) -> None:
        """Move every endpoint's output onto the wire and its events into `events`."""
        self._flush("i", self.initiator)
        self._flush("r", self.responder)

    def _flush(self, side: str, ep: Any) -> None:
        datagrams = ep.datagrams_to_send(self.now)
        if datagrams:
            self._send(side, datagrams)
        self.events[side].extend(iter(ep.next_event, None))

    def _send(self, side: str, datagrams: list[tuple[bytes, Addr]]) -> None:
        now, wire = self.now, self.wire
        base = self.initiator_addr if side == "i" else self.responder_addr
        target = "r" if side == "i" else "i"
        for data, dest in datagrams:
            sent = Sent(now, side, dest, data)
            index = len(wire)
            wire.append(sent)
            if self.tamper is not None:
                data = self.tamper(sent, index)
                if data is None:
                    sent.delivered = False
                    continue
            src_port = 4500 if dest[1] == 4500 else 500
            self._seq += 1
            heapq.heappush(
                self._queue, (now + self.one_way_s, self._seq, target, data, (base[0], src_port))
            )

    def run(self, until: float | None = None, max_steps: int = 100_000) -> None:
        """Deliver datagrams and fire timers in time order until idle (or `until`); at
        one instant a delivery goes first, then the initiator's timer, then the
        responder's."""
        self.flush()
        queue = self._queue
        endpoints = {"i": self.initiator, "r": self.responder}
        # An endpoint's timer and output change only when it is driven; only a tamper
        # hook could drive the other one meanwhile, so with one, ask both every step.
        timers = {side: ep.get_timer() for side, ep in endpoints.items()}
        for _ in range(max_steps):
            now = self.now
            at, what = (queue[0][0], "deliver") if queue else (None, None)
            for side in ("i", "r"):
                timer = timers[side]
                if timer is not None:
                    if timer < now:
                        timer = now
                    if at is None or timer < at:
                        at, what = timer, side
            if at is None:
                return
            if until is not None and at > until:
                self.now = until
                return
            self.now = at
            if what == "deliver":
                _, _, what, data, addr = heapq.heappop(queue)
                endpoint = endpoints[what]
                endpoint.receive_datagram(data, addr, at)
            else:
                endpoint = endpoints[what]
                endpoint.handle_timer(at)
            if self.tamper is None:
                self._flush(what, endpoint)
                timers[what] = endpoint.get_timer()
            else:
                self.flush()
                timers = {side: ep.get_timer() for side, ep in endpoints.items()}
        raise RuntimeError("harness did not settle: an endpoint keeps producing work")

    def of_type(self, side: str, cls: type) -> list:
        return [e for e in self.events[side] if isinstance(e, cls)]


def engine_pair(
    initiator_config: Any,
    responder_config: Any,
    random_bytes: Callable[[int], bytes],
    *,
    initiator_addr: Addr = ("192.0.2.1", 500),
    responder_addr: Addr = ("192.0.2.2", 500),
    initiator_options: dict | None = None,
    responder_options: dict | None = None,
    harness_options: dict | None = None,
    **options: Any,
) -> Harness:
    """An initiator and a responder `IkeSa` addressed to each other, wired into a
    `Harness`. `options` go to both engines, `initiator_options`/`responder_options` to
    one (e.g. its `trace`), `harness_options` to the harness (`one_way_s`, `tamper`).
    The initiator is made first: with a shared seeded `random_bytes` SPIs repeat."""
    from wansim.ike.sa import IkeSa

    i = IkeSa(initiator_config, initiator=True, local_addr=initiator_addr,
              remote_addr=responder_addr, random_bytes=random_bytes,
              **options, **(initiator_options or {}))  # fmt: skip
    r = IkeSa(responder_config, initiator=False, local_addr=responder_addr,
              remote_addr=initiator_addr, random_bytes=random_bytes,
              **options, **(responder_options or {}))  # fmt: skip
    return Harness(i, r, initiator_addr, responder_addr, **(harness_options or {}))


# --- one handshake between two engines, message by message ---------------------------

IP_HEADER_BYTES = {4: 20, 6: 40}
UDP_HEADER_BYTES = 8


@dataclass(frozen=True)
class MessageRow:
    """One IKE message as it crossed the wire (all its fragments)."""

    at: float
    exchange: str
    direction: str  # "I->R" or "R->I", by the endpoints' original roles
    message_id: int
    response: bool
    ike_bytes: int  # IKE message(s), without the non-ESP marker
    fragments: int  # datagrams (1 when unfragmented)
    udp_bytes: int  # UDP payloads, non-ESP marker included
    ip_bytes: int  # whole IP packets (IP + UDP headers), no IP fragmentation
    payloads: str
    retransmission: bool = False


@dataclass
class HandshakeRun:
    """What `run_handshake` returns: rows, raw datagrams, keys and events."""

    rows: list[MessageRow]
    datagrams: list[tuple[float, Addr, Addr, bytes]]  # (at, src, dst, UDP payload)
    harness: Harness

    @property
    def initiator(self) -> Any:
        return self.harness.initiator

    @property
    def responder(self) -> Any:
        return self.harness.responder

    @property
    def key_sets(self) -> list:
        """Every IKE key set in derivation order (for Wireshark decryption tables)."""
        return list(self.initiator.key_sets)

    def records(self) -> list[dict]:
        return [asdict(row) for row in self.rows]


@functools.lru_cache(maxsize=64)  # configs are immutable; callers repeat the same few
def _configs(ike_proposals, esp_proposals, fragment_size, port_4500, backend, psk, auth):
    """The (initiator, responder) configs `run_handshake` uses."""
    from wansim.ike.config import IkeConfig

    common = dict(
        ike_proposals=ike_proposals, esp_proposals=esp_proposals, psk=psk,
        fragment_size=fragment_size, port_4500="always" if port_4500 else "auto",
        backend=backend, auth=auth,
    )  # fmt: skip
    ci = IkeConfig(**common, local_id="initiator.example", remote_id="responder.example",
                   local_ts=("198.51.100.0/24",), remote_ts=("203.0.113.0/24",))  # fmt: skip
    cr = IkeConfig(**common, local_id="responder.example", remote_id="initiator.example",
                   local_ts=("203.0.113.0/24",), remote_ts=("198.51.100.0/24",))  # fmt: skip
    return ci, cr


def run_handshake(
    ike_proposals: str | tuple[str, ...],
    esp_proposals: str | tuple[str, ...] = "aes256gcm16",
    *,
    fragment_size: int = 1280,
    port_4500: bool = False,
    rekey: bool = False,
    backend: str = "auto",
    seed: int = 0,
    one_way_s: float = 0.010,
    psk: str = "wansim-example-psk",
    auth: str = "psk",
    initiator_addr: Addr = ("192.0.2.1", 500),
    responder_addr: Addr = ("192.0.2.2", 500),
) -> HandshakeRun:
    """Run IKE_SA_INIT .. IKE_AUTH (and with `rekey` a Child SA rekey, then an IKE SA
    rekey) between two engines with strongSwan-like settings; raise ValueError for bad
    proposals. Randomness is seeded, so sizes and SPIs repeat from run to run."""
    ike_proposals, esp_proposals = (
        p if isinstance(p, str) else tuple(p) for p in (ike_proposals, esp_proposals)
    )
    ci, cr = _configs(ike_proposals, esp_proposals, fragment_size, port_4500, backend, psk, auth)
    rng = random.Random(seed)
    rows: list[MessageRow] = []
    ip_header = IP_HEADER_BYTES[ipaddress.ip_address(initiator_addr[0]).version]

    def tracer(direction: str):
        def record(message) -> None:
            overhead = UDP_HEADER_BYTES + ip_header + (4 if message.marker else 0)
            rows.append(
                MessageRow(
                    message.at,
                    message.exchange,
                    direction,
                    message.message_id,
                    message.response,
                    message.ike_bytes,
                    len(message.fragment_bytes),
                    message.ike_bytes + (4 if message.marker else 0) * len(message.fragment_bytes),
                    sum(b + overhead for b in message.fragment_bytes),
                    message.payloads,
                    message.retransmission,
                )  # fmt: skip
            )

        return record

    harness = engine_pair(
        ci, cr, rng.randbytes, initiator_addr=initiator_addr, responder_addr=responder_addr,
        initiator_options={"trace": tracer("I->R")}, responder_options={"trace": tracer("R->I")},
        harness_options={"one_way_s": one_way_s},
    )  # fmt: skip
    i = harness.initiator
    i.initiate(0.0)
    harness.run()
    if rekey and i.established:
        i.rekey_child(harness.now)
        harness.run()
        i.rekey_ike(harness.now)
        harness.run()
    datagrams = []
    for sent in harness.wire:
        base = initiator_addr if sent.src == "i" else responder_addr
        src = (base[0], 4500 if sent.dst_addr[1] == 4500 else base[1])
        datagrams.append((sent.at, src, sent.dst_addr, sent.data))
    return HandshakeRun(rows, datagrams, harness)
