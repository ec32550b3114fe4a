"""A responder that terminates many IKE SAs on one address: what a POP runs.

The `Gateway` has the same driver API as one `IkeSa` (`receive_datagram`,
`datagrams_to_send`, `next_event`, `get_timer`, `handle_timer`), so the simpy and socket
drivers do not care which one they feed. It

- demultiplexes datagrams to IKE SAs by our SPI (RFC 7296 §2.6), and IKE_SA_INIT
  requests (SPIr = 0) by (SPIi, peer IP) so retransmissions reach the same half-open SA;
- counts half-open SAs and, above `GatewayConfig.cookie_threshold`, answers IKE_SA_INIT
  statelessly with a COOKIE (RFC 7296 §2.6): SHA-256(Ni | IPi | SPIi | secret), the
  libreswan construction (digest §7.2), the secret drawn from the injected randomness.
  Counts are kept per *ingress* (the front end that took the datagram) so that POPs
  sharing one replicated SA database each admit against their own half-open SAs;
- keeps one timer heap over its SAs, so `get_timer` stays cheap with thousands of SAs.
"""

from __future__ import annotations

import hashlib
import heapq
import ipaddress
import os
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from wansim.ike.config import GatewayConfig, IkeConfig
from wansim.ike.constants import NON_ESP_MARKER, ExchangeType, HeaderFlag, NotifyType
from wansim.ike.errors import ParseError
from wansim.ike.events import CookieDemanded, DatagramDropped, Event
from wansim.ike.message import IkeHeader, Message
from wansim.ike.payloads import Nonce, Notify
from wansim.ike.sa import Addr, IkeSa, RandomBytes, State, WireMessage
from wansim.ike.sa_records import _Outbox, _stateless_init_reply

_ZERO_SPI = bytes(8)
# Bound once for the per-datagram path: Enum class attributes are slow to look up in
# Python 3.11, and `int & IntFlag` goes through IntFlag's Python-level operator.
_IKE_SA_INIT = ExchangeType.IKE_SA_INIT
_INITIATOR = int(HeaderFlag.INITIATOR)
_RESPONSE = int(HeaderFlag.RESPONSE)
_IDLE = State.IDLE
_CLOSED = State.CLOSED
_ESTABLISHED = State.ESTABLISHED


class Gateway(_Outbox):
    """Many responder IKE SAs behind one local address.

    `config` is one `IkeConfig` for every peer, or a callable choosing it by the peer's
    address (e.g. a per-site PSK). `credentials` = (private key, DER certificate) that
    every SA signs with under signature auth, as one daemon holds one certificate
    (default: each SA makes its own on first use).
    """

    def __init__(
        self,
        config: IkeConfig | Callable[[Addr], IkeConfig],
        *,
        local_addr: Addr,
        gateway: GatewayConfig | None = None,
        random_bytes: RandomBytes = os.urandom,
        kex_factory: Callable[[str], Any] | None = None,
        trace: Callable[[WireMessage], None] | None = None,
        credentials: tuple[Any, bytes] | None = None,
    ) -> None:
        self._config_for = config if callable(config) else (lambda addr: config)
        self.local_addr = local_addr
        self.gateway = gateway or GatewayConfig()
        self._random = random_bytes
        self._kex_factory = kex_factory
        self._trace = trace
        self._credentials = credentials  # one (key, DER certificate) for every SA, if signing
        self._cookie_secret = random_bytes(32)
        self._by_spi: dict[bytes, IkeSa] = {}
        self._by_init: dict[tuple[bytes, str], IkeSa] = {}
        self._spis_of: dict[IkeSa, set[bytes]] = {}
        self._spi_key: dict[IkeSa, tuple] = {}  # what _spis_of was last indexed for
        self._half_open: dict[IkeSa, Hashable] = {}  # SA -> the ingress that admitted it
        self._half_open_at: dict[Hashable, int] = {}
        self._deadline: dict[IkeSa, float | None] = {}
        self._timers: list[tuple[float, int, IkeSa]] = []
        self._seq = 0
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Addr]] = []
        self.cookies_sent = 0

    # --- driver API ----------------------------------------------------------------

    @property
    def half_open_count(self) -> int:
        return len(self._half_open)

    def half_open_at(self, ingress: Hashable = None) -> int:
        """Half-open SAs admitted through `ingress` (what its COOKIE threshold sees)."""
        return self._half_open_at.get(ingress, 0)

    @property
    def sas(self) -> list[IkeSa]:
        """Live IKE SAs (half-open and established)."""
        return list(self._spis_of)

    def sa_for(self, spi: bytes) -> IkeSa | None:
        return self._by_spi.get(spi)

    def receive_datagram(
        self, data: bytes, addr: Addr, now: float, ingress: Hashable = None
    ) -> None:
        """Route one datagram to its IKE SA (or create one). Never raises for bad input.

        `ingress` names the front end that received it when several share this gateway
        (POPs with one replicated SA database); a new SA counts as half-open there.
        """
        data = bytes(data)
        try:
            self._route(data, addr, now, ingress)
        except ParseError as error:
            self._events.append(DatagramDropped(now, "parse_error", len(data), None, str(error)))

    def get_timer(self) -> float | None:
        while self._timers:
            at, _, sa = self._timers[0]
            if self._deadline.get(sa) == at:
                return at
            heapq.heappop(self._timers)
        return None

    def handle_timer(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            at, _, sa = heapq.heappop(self._timers)
            if self._deadline.get(sa) != at:
                continue
            self._deadline[sa] = None
            sa.handle_timer(now)
            self._collect(sa)

    # --- commands on one of its SAs (a POP may rekey, check or delete too) -----------

    def rekey_child(self, spi: bytes, now: float) -> None:
        self._command(spi, "rekey_child", now)

    def rekey_ike(self, spi: bytes, now: float) -> None:
        self._command(spi, "rekey_ike", now)

    def send_liveness(self, spi: bytes, now: float) -> None:
        self._command(spi, "send_liveness", now)

    def delete(self, spi: bytes, now: float) -> None:
        self._command(spi, "delete", now)

    def _command(self, spi: bytes, name: str, now: float) -> None:
        """Run an IkeSa command on the SA holding our SPI `spi`; KeyError if none does."""
        sa = self._by_spi[spi]
        getattr(sa, name)(now)
        self._collect(sa)

    # --- routing -------------------------------------------------------------------

    def _route(self, data: bytes, addr: Addr, now: float, ingress: Hashable) -> None:
        if data == b"\xff":
            self._events.append(DatagramDropped(now, "nat_keepalive", 1))
            return
        ike = data[4:] if data[:4] == NON_ESP_MARKER else data
        header = IkeHeader.from_bytes(ike)
        if (
            header.exchange_type == _IKE_SA_INIT
            and not header.flags & _RESPONSE
            and header.spi_r == _ZERO_SPI
        ):
            sa = self._by_init.get((header.spi_i, addr[0]))
            if sa is None:
                if not self._cookie_ok(ike, header, addr, now, ingress):
                    return
                sa = IkeSa(
                    self._config_for(addr), initiator=False, local_addr=self.local_addr,
                    remote_addr=addr, random_bytes=self._random, kex_factory=self._kex_factory,
                    trace=self._trace, created_at=now, credentials=self._credentials,
                )  # fmt: skip
                self._by_init[(header.spi_i, addr[0])] = sa
                self._spis_of[sa] = set()
                self._half_open[sa] = ingress
                self._half_open_at[ingress] = self._half_open_at.get(ingress, 0) + 1
        else:
            # Our SPI is SPIr in messages from the original initiator, else SPIi.
            spi = header.spi_r if header.flags & _INITIATOR else header.spi_i
            sa = self._by_spi.get(spi)
            if sa is None:
                self._events.append(
                    DatagramDropped(now, "unknown_spi", len(data), (header.spi_i, header.spi_r))
                )
                return
        sa._receive_routed(data, addr, now, header)  # receive_datagram, header parsed once
        if sa.state is _IDLE:  # its IKE_SA_INIT was malformed: keep no state
            self._out.extend(sa.datagrams_to_send(now))
            sa._move_events_to(self._events)
            self._forget(sa)
            return
        self._collect(sa)

    def _collect(self, sa: IkeSa) -> None:
        """Take an SA's output and events, and bring the indexes up to date."""
        self._out.extend(sa.datagrams_to_send(0.0))
        sa._move_events_to(self._events)
        state = sa.state
        if state is _CLOSED:
            self._forget(sa)
            return
        # Our SPIs change only with the current generation's SPIs (IKE_SA_INIT, a rekey)
        # or when an old generation is retired: re-index only then.
        gen = sa._gen
        key = (gen.spi_i, gen.spi_r, gen.original_initiator, len(sa._old_gens))
        if key != self._spi_key.get(sa):
            self._spi_key[sa] = key
            spis = sa.local_spis
            known = self._spis_of.get(sa)
            if spis != known:
                known = known or set()
                for spi in known - spis:
                    self._by_spi.pop(spi, None)
                for spi in spis - known:
                    self._by_spi[spi] = sa
                self._spis_of[sa] = spis
        if state is _ESTABLISHED and sa in self._half_open:  # established just now
            self._settled(sa)
            self._by_init.pop((sa.ike_spis[0], sa.remote_addr[0]), None)
        self._rearm(sa)

    def _forget(self, sa: IkeSa) -> None:
        self._spi_key.pop(sa, None)
        for spi in self._spis_of.pop(sa, set()):
            self._by_spi.pop(spi, None)
        self._settled(sa)
        self._deadline.pop(sa, None)
        for key in [k for k, v in self._by_init.items() if v is sa]:
            del self._by_init[key]

    def _settled(self, sa: IkeSa) -> None:
        """The SA is no longer half-open (established or gone)."""
        if sa in self._half_open:
            self._half_open_at[self._half_open.pop(sa)] -= 1

    def _rearm(self, sa: IkeSa) -> None:
        at = sa.get_timer()
        if at == self._deadline.get(sa):
            return
        self._deadline[sa] = at
        if at is not None:
            self._seq += 1
            heapq.heappush(self._timers, (at, self._seq, sa))

    # --- cookies (RFC 7296 §2.6) ---------------------------------------------------

    def _cookie(self, nonce: bytes, addr: Addr, spi_i: bytes) -> bytes:
        ip = ipaddress.ip_address(addr[0]).packed
        return hashlib.sha256(nonce + ip + spi_i + self._cookie_secret).digest()

    def _cookie_ok(
        self, ike: bytes, header: IkeHeader, addr: Addr, now: float, ingress: Hashable
    ) -> bool:
        """True to go on; False after answering with a COOKIE demand."""
        if self.half_open_at(ingress) < self.gateway.cookie_threshold:
            return True
        message = Message.from_bytes(ike)
        nonce = message.find(Nonce)
        if nonce is None:
            self._events.append(DatagramDropped(now, "init_without_nonce", len(ike)))
            return False
        expected = self._cookie(nonce.data, addr, header.spi_i)
        first = message.payloads[0] if message.payloads else None
        if isinstance(first, Notify) and first.type == NotifyType.COOKIE and first.data == expected:
            return True
        cookie = Notify(NotifyType.COOKIE, expected)
        data, record = _stateless_init_reply(header.spi_i, cookie, now)
        self._out.append((data, addr))
        self.cookies_sent += 1
        self._events.append(CookieDemanded((header.spi_i, _ZERO_SPI), now))
        if self._trace is not None:
            self._trace(record)
        return False
