"""The records and small helpers shared by the IKE SA modules: states, errors, the
per-generation and per-exchange bookkeeping, Child SA and key-set records, and the
payload look-ups the exchanges use (see `wansim.ike.sa`)."""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wansim.ike import keymat
from wansim.ike.config import IkeConfig
from wansim.ike.constants import ExchangeType, HashAlgorithm, HeaderFlag, NotifyType
from wansim.ike.events import CryptoOp, Event
from wansim.ike.frozen import fast_init
from wansim.ike.memo import IdentityMemo
from wansim.ike.message import IkeHeader, Message, describe_payload
from wansim.ike.negotiation import all_ke_tokens, has_addke, identity, sa_payload, selectors
from wansim.ike.payloads import (
    IdInitiator,
    IdResponder,
    KeyExchange,
    Notify,
    Payload,
    SecurityAssociation,
    TrafficSelector,
    VendorId,
)
from wansim.ike.timers import RetransmitSchedule

Addr = tuple[str, int]
RandomBytes = Callable[[int], bytes]
_ZERO_SPI = bytes(8)
_INITIATOR = int(HeaderFlag.INITIATOR)  # plain ints: IntFlag arithmetic is slow
_RESPONSE = int(HeaderFlag.RESPONSE)
_IKE_SA_INIT = ExchangeType.IKE_SA_INIT  # bound once: Enum class attributes are slow


class _Outbox:
    """The output half of the driver API, shared by `IkeSa` and `Gateway`: datagrams
    queued in `_out` and events queued in `_events`, handed out on request."""

    _out: list[tuple[bytes, Addr]]
    _events: deque[Event]

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def take_output(self, now: float) -> tuple[list[tuple[bytes, Addr]], list[Event]]:
        """`datagrams_to_send(now)` and every queued event in order (what `next_event`
        hands out one by one until None), in one call: what a driver does after each
        datagram or timer."""
        out, self._out = self._out, []
        events = self._events
        if not events:
            return out, []
        taken = list(events)
        events.clear()
        return out, taken

    def _move_events_to(self, sink: deque[Event]) -> None:
        """Append every queued event to `sink`, in order, and forget them: what a loop
        over `next_event` does, in one call (a gateway collects its SAs' events so)."""
        events = self._events
        if events:
            sink.extend(events)
            events.clear()


class IkeStateError(RuntimeError):
    """The driver called a command that the IKE SA's state does not allow."""


class State(enum.Enum):
    IDLE = "idle"
    INIT = "init"  # initiator: IKE_SA_INIT request outstanding
    INTERMEDIATE = "intermediate"
    AUTH = "auth"
    ESTABLISHED = "established"
    REKEYED = "rekeyed"  # pseudo-state of an old generation awaiting its Delete
    CLOSED = "closed"


class _Violation(Exception):
    """A peer broke the protocol: answer `notify` (if any) and report `reason`."""

    def __init__(self, reason: str, notify: int | None = NotifyType.INVALID_SYNTAX) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notify = notify


# --- small records -----------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class WireMessage:
    """One IKE message put on the wire (all its fragments), for traces and the CLI."""

    at: float
    sender: str  # "initiator" | "responder" (original roles of the IKE SA)
    exchange: str
    message_id: int
    response: bool
    ike_spis: tuple[bytes, bytes]
    fragment_bytes: tuple[int, ...]  # IKE message length of each datagram
    marker: bool  # sent on UDP 4500 with the non-ESP marker
    payloads: str  # e.g. "SA, KE(CURVE25519), No" or "SK{IDi, AUTH, ...}"
    retransmission: bool = False

    @property
    def ike_bytes(self) -> int:
        return sum(self.fragment_bytes)


@fast_init
@dataclass(frozen=True, slots=True)
class ChildSa:
    """An installed Child SA (ESP): SPIs, traffic selectors and keys, from our side."""

    spi_in: bytes
    spi_out: bytes
    proposal: str
    keys: keymat.ChildKeys = field(repr=False)
    initiator: bool  # we were the initiator of the exchange that created it
    local_ts: tuple[str, ...]
    remote_ts: tuple[str, ...]

    @property
    def spis(self) -> tuple[bytes, bytes]:
        return (self.spi_in, self.spi_out)

    @property
    def outbound_keys(self) -> tuple[bytes, bytes]:
        """(encryption, integrity) key we send with."""
        k = self.keys
        return (k.ei, k.ai) if self.initiator else (k.er, k.ar)

    @property
    def inbound_keys(self) -> tuple[bytes, bytes]:
        k = self.keys
        return (k.er, k.ar) if self.initiator else (k.ei, k.ai)


@fast_init
@dataclass(frozen=True, slots=True)
class KeySet:
    """One IKE SA key set, in derivation order (for Wireshark decryption tables)."""

    spi_i: bytes
    spi_r: bytes
    keys: keymat.IkeKeys = field(repr=False)
    label: str  # "IKE_SA_INIT", "IKE_INTERMEDIATE 1", "IKE rekey", ...


@dataclass(slots=True)
class _Request:
    exchange: int
    mid: int
    datagrams: list[bytes]  # IKE messages (no marker)
    on_response: Callable[[_Generation, IkeHeader, tuple[Payload, ...], float], None]
    first_sent_at: float
    ops: list[CryptoOp]
    ap_chunk: bytes = b""  # RFC 9242 A|P of the request, IKE_INTERMEDIATE only
    response_ap: bytes = b""  # ... and of its response
    response: bytes = b""  # the response as received, IKE_SA_INIT only (AUTH signs it)
    transmissions: int = 1
    command: tuple[str, Any] | None = None  # to re-issue if its IKE SA is rekeyed away
    deadline: float = 0.0  # retransmit or give up then: kept up to date with transmissions


@dataclass(slots=True)
class _Cached:
    mid: int
    request: bytes  # its (first) datagram: a retransmission repeats it byte for byte
    datagrams: list[bytes]


@dataclass(slots=True)
class _Generation:
    """One IKE SA's keys and exchange bookkeeping (a rekey makes a new generation)."""

    spi_i: bytes
    spi_r: bytes
    original_initiator: bool
    keys: keymat.IkeKeys | None = None
    proposal: Any = None  # the chosen IKE proposal (proposals.py object)
    next_mid: int = 0
    peer_mid: int = 0
    outstanding: _Request | None = None
    cache: _Cached | None = None
    reassembly: dict[tuple[int, bool], Any] = field(default_factory=dict)
    first_fragment: dict[tuple[int, bool], bytes] = field(default_factory=dict)
    fragment_bytes: dict[tuple[int, bool], int] = field(default_factory=dict)
    retired: bool = False
    # SK protection of what we send and what the peer sends, bound to `channels_of`
    # (the key set they were made for: `keys` changes during a handshake).
    sealer: Any = field(default=None, compare=False, repr=False)
    opener: Any = field(default=None, compare=False, repr=False)
    channels_of: Any = field(default=None, compare=False, repr=False)

    @property
    def spis(self) -> tuple[bytes, bytes]:
        return (self.spi_i, self.spi_r)

    @property
    def local_spi(self) -> bytes:
        return self.spi_i if self.original_initiator else self.spi_r


@dataclass(slots=True)
class _Rekey:
    """A CREATE_CHILD_SA (+ IKE_FOLLOWUP_KE) run, on either side."""

    kind: str  # "child" | "ike"
    requester: bool
    new_spi: bytes  # our new inbound ESP SPI, or our new IKE SPI
    nonce: bytes
    old_child: ChildSa | None = None
    proposal: Any = None
    peer_spi: bytes = b""
    peer_nonce: bytes = b""
    pending: Any = None  # initiator side of the current key exchange
    methods: list[str] = field(default_factory=list)  # KE tokens, main first
    secrets: list[bytes] = field(default_factory=list)
    link: bytes = b""
    local_ts: tuple[str, ...] = ()
    remote_ts: tuple[str, ...] = ()


@fast_init
@dataclass(frozen=True)
class _Fixed:
    """What an `IkeSa` derives from its config alone: the retransmission schedule, the key
    exchange methods, and the immutable payloads every handshake sends unchanged (the
    IKE_SA_INIT offer, status notifies, identities). Built once per config object
    (configs are frozen) and shared by every SA made from it."""

    schedule: RetransmitSchedule
    ke_tokens: frozenset[str]
    offers_addke: bool
    sa_init_offer: SecurityAssociation
    init_notifies: dict[tuple[bool, bool, bool], tuple[Payload, ...]]
    auth_notifies: dict[bool, tuple[Payload, ...]]  # by request
    id_i: IdInitiator  # our identity as IDi, IDr and the peer's expected one as IDr
    id_r: IdResponder
    peer_id_r: IdResponder | None
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]

    @classmethod
    def of(cls, config: IkeConfig) -> _Fixed:
        ike, esp = config.ike_specs, config.esp_specs
        offers_addke = any(has_addke(p) for p in ike)
        flags = [(a, b, c) for a in (True, False) for b in (True, False) for c in (True, False)]
        peer_id_r = None
        if config.remote_id:
            peer_id_r = IdResponder(*identity(config.remote_id))
        return cls(
            schedule=config.retransmit_schedule,
            ke_tokens=frozenset(all_ke_tokens((*ike, *esp))),
            offers_addke=offers_addke,
            sa_init_offer=sa_payload(ike),
            init_notifies={f: _init_notifies(config, offers_addke, *f) for f in flags},
            auth_notifies={r: _auth_notifies(config, r) for r in (True, False)},
            id_i=IdInitiator(*identity(config.local_id)),
            id_r=IdResponder(*identity(config.local_id)),
            peer_id_r=peer_id_r,
            local_ts=selectors(config.local_ts),
            remote_ts=selectors(config.remote_ts),
        )


_fixed_for = IdentityMemo(_Fixed.of, size=256)


def _init_notifies(
    config: IkeConfig, offers_addke: bool, request: bool, peer_int: bool, peer_frag: bool
) -> tuple[Payload, ...]:
    """Status notifies of IKE_SA_INIT after NAT-D, in strongSwan's order (vector)."""
    strongswan = config.profile == "strongswan"
    out: list[Payload] = []
    if config.fragmentation and peer_frag:
        out.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if strongswan:
        out.append(Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, _SIGNATURE_HASHES))
        second = NotifyType.REDIRECT_SUPPORTED if request else NotifyType.CHILDLESS_IKEV2_SUPPORTED
        out.append(Notify(second))
    if offers_addke if request else peer_int:
        out.append(Notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
    if strongswan and not request:
        out.append(Notify(NotifyType.MULTIPLE_AUTH_SUPPORTED))
    if config.vendor_id:
        out.append(VendorId(config.vendor_id))
    return tuple(out)


def _auth_notifies(config: IkeConfig, request: bool) -> tuple[Payload, ...]:
    """Status notifies at the end of IKE_AUTH, as strongSwan sends them (vector)."""
    if config.profile != "strongswan":
        return ()
    out: list[Payload] = []
    if config.port_4500 == "always":  # strongSwan's MOBIKE announcement
        out += [Notify(NotifyType.MOBIKE_SUPPORTED), Notify(NotifyType.NO_ADDITIONAL_ADDRESSES)]
    if request:
        out += [
            Notify(NotifyType.MULTIPLE_AUTH_SUPPORTED),
            Notify(NotifyType.EAP_ONLY_AUTHENTICATION),
            Notify(NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED),
        ]
    return tuple(out)


def _stateless_init_reply(spi_i: bytes, notify: Notify, now: float) -> tuple[bytes, WireMessage]:
    """An IKE_SA_INIT response with SPIr = 0 and only `notify` (RFC 7296 §1.2, §2.6),
    and its trace record; nothing about it is kept."""
    header = IkeHeader(spi_i, _ZERO_SPI, ExchangeType.IKE_SA_INIT, _RESPONSE, 0)
    data = Message(header, (notify,)).to_bytes()
    spis = (spi_i, _ZERO_SPI)
    record = WireMessage(now, "responder", "IKE_SA_INIT", 0, True, spis, (len(data),), False,
                         describe_payload(notify))  # fmt: skip
    return data, record


def _nat_hash(spi_i: bytes, spi_r: bytes, addr: Addr) -> bytes:
    """NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port) (RFC 7296 §2.23)."""
    return hashlib.sha1(spi_i + spi_r + _address_and_port(addr)).digest()


@functools.lru_cache(maxsize=4096)
def _address_and_port(addr: Addr) -> bytes:
    """IP | port as NAT-D hashes them (memoised: a pure function of its argument)."""
    return _packed(addr[0]) + addr[1].to_bytes(2, "big")


@functools.lru_cache(maxsize=4096)
def _packed(ip: str) -> bytes:
    """Address bytes of an IP string (memoised: a pure function of its argument)."""
    return ipaddress.ip_address(ip).packed


# SIGNATURE_HASH_ALGORITHMS data as strongSwan sends it (RFC 7427 §4, RFC 8420).
_SIGNATURE_HASHES = b"".join(
    h.to_bytes(2, "big")
    for h in (
        HashAlgorithm.SHA2_256,
        HashAlgorithm.SHA2_384,
        HashAlgorithm.SHA2_512,
        HashAlgorithm.IDENTITY,
    )
)


def _ke_method(payloads) -> int | None:
    ke = _find(payloads, KeyExchange)
    return None if ke is None else ke.method


def _index(payloads) -> tuple[dict[type, Payload], dict[int, Notify]]:
    """The first payload of each class and the first Notify of each type, in one pass
    over a parsed chain (whose payloads are of the exact codec classes)."""
    by_class: dict[type, Payload] = {}
    notifies: dict[int, Notify] = {}
    for p in payloads:
        cls = type(p)
        if cls not in by_class:
            by_class[cls] = p
        if cls is Notify and p.type not in notifies:
            notifies[p.type] = p
    return by_class, notifies


def _find(payloads, cls):
    for p in payloads:
        if isinstance(p, cls):
            return p
    return None


def _find_notify(payloads, notify_type: int) -> Notify | None:
    for p in payloads:
        if isinstance(p, Notify) and p.type == notify_type:
            return p
    return None


def _error_notify(payloads) -> Notify | None:
    for p in payloads:
        if isinstance(p, Notify) and 0 < p.type < 16384:
            return p
    return None


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _describe(payloads, exchange: int) -> str:
    names = ", ".join([describe_payload(p) for p in payloads])
    if exchange == _IKE_SA_INIT:
        return names
    return "SK{" + names + "}"
