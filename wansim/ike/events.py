"""What an IKE engine tells its driver: small frozen facts, named in the past tense.

The engine (`wansim.ike.sa`) queues these; a driver pulls them with `next_event()`.
Tests compare them by equality and the simulation turns them into metric records, so
they hold plain values only (bytes, ints, floats, strings, tuples) — never engine
objects or key material.

IKE SAs are named by their SPI pair ``(spi_i, spi_r)`` (8 bytes each, as on the wire);
Child SAs by ``(spi_in, spi_out)`` as seen from the side that reports the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wansim.ike.frozen import fast_init

IkeSpis = tuple[bytes, bytes]
ChildSpis = tuple[bytes, bytes]
# A crypto operation the simulation charges CPU time for: (method token, operation),
# e.g. ("mlkem768", "respond"); see interfaces.md and `wansim.crypto`.
CryptoOp = tuple[str, str]


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    """Base class of everything `next_event()` returns."""


@fast_init
@dataclass(frozen=True, slots=True)
class ExchangeCompleted(Event):
    """One request/response exchange finished, seen from one side.

    The requester reports it when the response arrives (``round_trip_s`` = now minus
    the first transmission of the request); the responder when it sends its response
    (``round_trip_s`` is None). Byte counts are IKE message bytes as on the wire
    (sum over fragments, without UDP/IP headers or the non-ESP marker); datagram counts
    are of the last transmission. ``crypto_ops`` are the key-exchange operations this
    side performed for the exchange.
    """

    exchange: str
    message_id: int
    side: str  # "requester" | "responder"
    request_bytes: int
    response_bytes: int
    request_datagrams: int
    response_datagrams: int
    started_at: float
    completed_at: float
    round_trip_s: float | None
    transmissions: int = 1
    crypto_ops: tuple[CryptoOp, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class RequestRetransmitted(Event):
    """A request got no response in time and was sent again (all its fragments)."""

    exchange: str
    message_id: int
    attempt: int  # 2 for the first retransmission
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class IkeSaEstablished(Event):
    """IKE_AUTH completed: the IKE SA is authenticated and usable."""

    ike_spis: IkeSpis
    initiator: bool
    at: float
    round_trips: int
    ke_methods: tuple[str, ...]  # main KE token first, then the ADDKE tokens in order
    proposal: str
    nat_detected: bool
    port: int  # remote UDP port after IKE_SA_INIT: 500, or 4500 after floating


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSaEstablished(Event):
    """A Child SA was created (with IKE_AUTH or by CREATE_CHILD_SA)."""

    ike_spis: IkeSpis
    child_spis: ChildSpis
    at: float
    proposal: str
    traffic_selectors: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSaRekeyed(Event):
    """A Child SA was replaced by a new one (CREATE_CHILD_SA with REKEY_SA)."""

    ike_spis: IkeSpis
    old_child_spis: ChildSpis
    new_child_spis: ChildSpis
    at: float
    ke_methods: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class IkeSaRekeyed(Event):
    """The IKE SA was replaced by a new one; the old one is deleted after this."""

    old_ike_spis: IkeSpis
    new_ike_spis: IkeSpis
    at: float
    ke_methods: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSaDeleted(Event):
    ike_spis: IkeSpis
    child_spis: ChildSpis
    at: float
    by_peer: bool


@fast_init
@dataclass(frozen=True, slots=True)
class IkeSaDeleted(Event):
    """The IKE SA is gone (Delete exchange, or abandoned after a failure)."""

    ike_spis: IkeSpis
    at: float
    by_peer: bool
    reason: str = "delete"


@fast_init
@dataclass(frozen=True, slots=True)
class AuthenticationFailed(Event):
    """IKE_AUTH failed: ``local`` is True when we rejected the peer's AUTH."""

    ike_spis: IkeSpis
    at: float
    local: bool
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class NegotiationFailed(Event):
    """The peers could not agree (or an exchange was refused).

    ``notify`` is the IKEv2 error notify name that was sent or received (e.g.
    "NO_PROPOSAL_CHOSEN", "INVALID_SYNTAX", "TEMPORARY_FAILURE"); ``exchange`` the
    exchange it concerned.
    """

    ike_spis: IkeSpis
    at: float
    exchange: str
    reason: str
    notify: str | None = None
    local: bool = True  # True: we refused; False: the peer refused


@fast_init
@dataclass(frozen=True, slots=True)
class PeerDeclaredDead(Event):
    """Every retransmission of a request went unanswered: the IKE SA is given up."""

    ike_spis: IkeSpis
    at: float
    exchange: str
    message_id: int
    transmissions: int
    first_sent_at: float


@fast_init
@dataclass(frozen=True, slots=True)
class CookieDemanded(Event):
    """The responder asked for a COOKIE (stateless DoS protection, RFC 7296 §2.6)."""

    ike_spis: IkeSpis
    at: float


@fast_init
@dataclass(frozen=True, slots=True)
class KeyExchangeRedirected(Event):
    """The responder answered INVALID_KE_PAYLOAD naming the method it wants."""

    ike_spis: IkeSpis
    at: float
    exchange: str
    wanted: str
    offered: str


@fast_init
@dataclass(frozen=True, slots=True)
class DatagramDropped(Event):
    """A received datagram was discarded; ``trigger`` says why (qlog style)."""

    at: float
    trigger: str
    length_bytes: int
    ike_spis: IkeSpis | None = None
    detail: str = field(default="", compare=False)
