"""The IKEv2 state machine, sans-I/O: one `IkeSa` per tunnel end, and a `Gateway` that
terminates many of them (RFC 7296, RFC 9242, RFC 9370, RFC 7383, RFC 3948).

How this works
--------------
An `IkeSa` owns no socket, clock or event loop (aioquic style). A driver pushes input in
(`initiate`, `receive_datagram`, `handle_timer`, `rekey_child`, `rekey_ike`,
`send_liveness`, `delete`, always with `now`) and pulls output out
(`datagrams_to_send`, `next_event`, `get_timer`). Randomness (SPIs, nonces, IVs, link
values) comes from the injected `random_bytes`; key exchanges from `kex_factory`.

Every exchange is a request and a response with one Message ID. The requester keeps the
one outstanding request (`_Request`) and retransmits it on the `RetransmitSchedule`;
the responder keeps its last response (`_Cached`) and resends it when the same request
(recognised by a hash of the raw datagram, fragment 1 only) arrives again — which also
covers IKE_INTERMEDIATE, where the responder has already moved to new keys (digest
§2.2). Responses are routed to the outstanding request's `on_response` callback; requests
are dispatched from `_REQUEST_HANDLERS`, keyed by (state, exchange type):

    state          accepted requests                      next state
    IDLE           IKE_SA_INIT (responder)                INTERMEDIATE or AUTH
    INTERMEDIATE   IKE_INTERMEDIATE (one per ADDKE)       INTERMEDIATE or AUTH
    AUTH           IKE_AUTH                               ESTABLISHED (or CLOSED)
    ESTABLISHED    CREATE_CHILD_SA, IKE_FOLLOWUP_KE,      ESTABLISHED (or CLOSED)
                   INFORMATIONAL
    REKEYED        INFORMATIONAL (on an old IKE SA)       -

An IKE SA rekey creates a new key "generation" (`_Generation`: SPIs, keys, Message IDs,
outstanding request, response cache, reassembly); the old one lives on until its Delete
exchange is done. Three kinds of failure are kept apart (h11 style): malformed bytes
(`ParseError`) are dropped with a `DatagramDropped` trigger; a peer breaking the protocol
gets an error notify and a `NegotiationFailed`/`AuthenticationFailed` event; a caller
misusing the API gets `IkeStateError`. Nothing else escapes `receive_datagram`.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wansim.crypto import KeyExchangeError, SignatureError, get_kex, get_signature_scheme
from wansim.crypto.signatures import (
    auth_data,
    certificate_public_key,
    parse_auth_data,
    self_signed_certificate,
)
from wansim.ike import keymat, protection
from wansim.ike.config import IkeConfig
from wansim.ike.constants import (
    NAT_T_PORT,
    NON_ESP_MARKER,
    AuthMethod,
    CertEncoding,
    ExchangeType,
    HashAlgorithm,
    HeaderFlag,
    NotifyType,
    ProtocolId,
    name_of,
)
from wansim.ike.errors import ParseError, UnsupportedCriticalPayload
from wansim.ike.events import (
    AuthenticationFailed,
    ChildSaDeleted,
    ChildSaEstablished,
    ChildSaRekeyed,
    CookieDemanded,
    CryptoOp,
    DatagramDropped,
    Event,
    ExchangeCompleted,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
    KeyExchangeRedirected,
    NegotiationFailed,
    PeerDeclaredDead,
    RequestRetransmitted,
)
from wansim.ike.message import (
    IkeHeader,
    Message,
    describe_payload,
    parse_payload_chain,
    serialize_payload_chain,
)
from wansim.ike.negotiation import (
    all_ke_tokens,
    check_chosen,
    cipher_suite,
    has_addke,
    id_text,
    identity,
    ike_suite,
    ke_tokens,
    methods_of,
    narrow,
    sa_payload,
    select,
    selectors,
    ts_text,
)
from wansim.ike.payloads import (
    Auth,
    Certificate,
    Delete,
    EncryptedFragment,
    IdInitiator,
    IdResponder,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
    VendorId,
)
from wansim.ike.proposals import ProposalSpec
from wansim.ike.timers import RetransmitSchedule

Addr = tuple[str, int]
RandomBytes = Callable[[int], bytes]
_ZERO_SPI = bytes(8)
_INITIATOR = int(HeaderFlag.INITIATOR)  # plain ints: IntFlag arithmetic is slow
_RESPONSE = int(HeaderFlag.RESPONSE)


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


_REQUEST_HANDLERS: dict[tuple[State, int], str] = {
    (State.IDLE, ExchangeType.IKE_SA_INIT): "_on_sa_init_request",
    (State.INTERMEDIATE, ExchangeType.IKE_INTERMEDIATE): "_on_intermediate_request",
    (State.AUTH, ExchangeType.IKE_AUTH): "_on_auth_request",
    (State.ESTABLISHED, ExchangeType.CREATE_CHILD_SA): "_on_create_child_sa_request",
    (State.ESTABLISHED, ExchangeType.IKE_FOLLOWUP_KE): "_on_followup_ke_request",
    (State.ESTABLISHED, ExchangeType.INFORMATIONAL): "_on_informational_request",
    (State.REKEYED, ExchangeType.INFORMATIONAL): "_on_informational_request",
}


class _Violation(Exception):
    """A peer broke the protocol: answer `notify` (if any) and report `reason`."""

    def __init__(self, reason: str, notify: int | None = NotifyType.INVALID_SYNTAX) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notify = notify


# --- small records -----------------------------------------------------------------


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class KeySet:
    """One IKE SA key set, in derivation order (for Wireshark decryption tables)."""

    spi_i: bytes
    spi_r: bytes
    keys: keymat.IkeKeys = field(repr=False)
    label: str  # "IKE_SA_INIT", "IKE_INTERMEDIATE 1", "IKE rekey", ...


@dataclass
class _Request:
    exchange: int
    mid: int
    datagrams: list[bytes]  # IKE messages (no marker)
    on_response: Callable[[_Generation, Message, tuple[Payload, ...], float], None]
    first_sent_at: float
    ops: list[CryptoOp]
    ap_chunk: bytes = b""  # RFC 9242 A|P of the request, IKE_INTERMEDIATE only
    response_ap: bytes = b""  # ... and of its response
    transmissions: int = 1
    command: tuple[str, Any] | None = None  # to re-issue if its IKE SA is rekeyed away


@dataclass
class _Cached:
    mid: int
    fingerprint: bytes
    datagrams: list[bytes]


@dataclass
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

    @property
    def spis(self) -> tuple[bytes, bytes]:
        return (self.spi_i, self.spi_r)

    @property
    def local_spi(self) -> bytes:
        return self.spi_i if self.original_initiator else self.spi_r


@dataclass
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


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _nat_hash(spi_i: bytes, spi_r: bytes, addr: Addr) -> bytes:
    """NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port) (RFC 7296 §2.23)."""
    ip = _packed(addr[0])
    return hashlib.sha1(spi_i + spi_r + ip + addr[1].to_bytes(2, "big")).digest()


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


class IkeSa:
    """One IKE SA (and its Child SAs) seen from one end; survives its own IKE rekeys.

    `initiator` is the original role. Addresses are `(ip, port)` with port 500; after
    IKE_SA_INIT the SA floats to 4500 (with the non-ESP marker) when NAT is detected or
    `config.port_4500 == "always"`. Injected: `random_bytes(n)` for SPIs, nonces, IVs and
    link values; `kex_factory(token)` for key exchanges, asked once per method when the
    SA is made (default `wansim.crypto.get_kex` with `config.backend`);
    `trace(WireMessage)` called for every message sent; `credentials=(private key, DER
    certificate)` for signature auth (default: made on first use). State to read:
    `state`, `established`, `closed`, `ike_spis`, `keys`, `key_sets`, `children` (by our
    inbound SPI), `nat_detected`, `established_at`.
    """

    def __init__(
        self,
        config: IkeConfig,
        *,
        initiator: bool,
        local_addr: Addr,
        remote_addr: Addr,
        random_bytes: RandomBytes = os.urandom,
        kex_factory: Callable[[str], Any] | None = None,
        trace: Callable[[WireMessage], None] | None = None,
        created_at: float = 0.0,
        credentials: tuple[Any, bytes] | None = None,
    ) -> None:
        self.config = config
        self.initiator = initiator
        self.local_addr = local_addr
        self.remote_addr = remote_addr
        self._random = random_bytes
        factory = kex_factory or (lambda token: get_kex(token, backend=config.backend))
        self._trace = trace
        self._credentials = credentials  # (private key, DER certificate) for signature auth
        self._schedule: RetransmitSchedule = config.retransmit_schedule
        self._ike_specs = config.ike_specs
        self._esp_specs = config.esp_specs
        # One key exchange object per method, made now: BackendUnavailable here, not
        # mid-handshake (and no factory call on every message).
        self._kexes = {t: factory(t) for t in all_ke_tokens((*self._ike_specs, *self._esp_specs))}
        self._kex_factory = factory
        self.state = State.IDLE
        self.created_at = created_at
        self.established_at: float | None = None
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Addr]] = []
        self._gen = _Generation(
            self._new_ike_spi() if initiator else _ZERO_SPI, _ZERO_SPI, initiator
        )
        self._old_gens: list[_Generation] = []
        self.children: dict[bytes, ChildSa] = {}  # by our inbound SPI
        self.key_sets: list[KeySet] = []
        self.nat_detected = False
        self._floated = False
        # IKE_SA_INIT / handshake state
        self._ni = b""
        self._nr = b""
        self._init_request = b""  # RealMessage1 (last attempt)
        self._init_response = b""  # RealMessage2
        self._cookie: bytes | None = None
        self._init_tries = 0
        self._ke_token = ""
        self._pending = None
        self._addke: list[str] = []  # ADDKE tokens still to run in IKE_INTERMEDIATE
        self._ke_methods: list[str] = []
        self._peer_frag = False
        self._peer_intermediate = False
        self._int_auth = keymat.IntAuthChain()
        self._round_trips = 0
        self._child_spi = b""
        # rekeys, commands, retries
        self._rekey: _Rekey | None = None  # the run we requested
        self._superseded: set[bytes] = set()  # Child SAs rekeyed, awaiting their Delete
        self._peer_rekey: _Rekey | None = None  # the run the peer requested
        self._queue: deque[tuple[str, Any]] = deque()
        self._retry_at: float | None = None
        self._retry_cmd: tuple[str, Any] | None = None

    # --- public API ----------------------------------------------------------------

    @property
    def ike_spis(self) -> tuple[bytes, bytes]:
        return self._gen.spis

    @property
    def keys(self) -> keymat.IkeKeys | None:
        """The current IKE SA keys (None before IKE_SA_INIT completed)."""
        return self._gen.keys

    @property
    def local_spis(self) -> set[bytes]:
        """Our SPIs of every live generation: what a gateway demultiplexes on."""
        return {g.local_spi for g in (self._gen, *self._old_gens) if g.local_spi != _ZERO_SPI}

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    def initiate(self, now: float) -> None:
        """Start IKE_SA_INIT (initiator only, once)."""
        if not self.initiator or self.state is not State.IDLE:
            raise IkeStateError(f"initiate() needs a fresh initiator, state is {self.state.value}")
        self.created_at = now
        self._ni = self._random(self.config.nonce_bytes)
        self._ke_token = self.config.initial_ke or ke_tokens(self._offer())[0]
        self.state = State.INIT
        self._send_sa_init(now)

    def rekey_child(self, now: float, child_spi: bytes | None = None) -> None:
        """Rekey a Child SA (default: the oldest) with CREATE_CHILD_SA (RFC 7296 §1.3.3)."""
        self._command("child", child_spi, now)

    def rekey_ike(self, now: float) -> None:
        """Rekey the IKE SA with CREATE_CHILD_SA (RFC 7296 §1.3.2, RFC 9370 §2.2.4)."""
        self._command("ike", None, now)

    def send_liveness(self, now: float) -> None:
        """Send an empty INFORMATIONAL request (dead peer detection, RFC 7296 §1.4)."""
        self._command("liveness", None, now)

    def delete(self, now: float) -> None:
        """Delete the IKE SA (and with it every Child SA) with INFORMATIONAL (§1.4.1)."""
        self._command("delete", None, now)

    def delete_child(self, now: float, child_spi: bytes) -> None:
        self._command("delete_child", child_spi, now)

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one UDP payload received from `addr`. Never raises for bad input."""
        data = bytes(data)
        try:
            self._receive(data, addr, now)
        except ParseError as error:
            self._drop(now, "parse_error", len(data), str(error))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The next instant `handle_timer` has work to do, or None."""
        if self.state is State.CLOSED:
            return None
        deadlines = []
        for gen in (self._gen, *self._old_gens):
            req = gen.outstanding
            if req is not None:
                deadlines.append(self._schedule.deadline_at(req.first_sent_at, req.transmissions))
        if not self.initiator and self.established_at is None:
            deadlines.append(self.created_at + self.config.half_open_timeout_s)
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Retransmit, give up, expire a half-open SA or retry a refused rekey — whatever
        is due at `now`. Early, late or repeated calls are harmless."""
        if self.state is State.CLOSED:
            return
        if not self.initiator and self.established_at is None:
            if now >= self.created_at + self.config.half_open_timeout_s:
                self._close(now, IkeSaDeleted(self.ike_spis, now, False, "half_open_timeout"))
                return
        for gen in (self._gen, *self._old_gens):
            req = gen.outstanding
            if req is None:
                continue
            if now < self._schedule.deadline_at(req.first_sent_at, req.transmissions):
                continue
            if self._schedule.exhausted(req.transmissions) and gen.retired:
                # The old SA's Delete went unanswered (the peer already dropped it, e.g.
                # when our Delete's response was lost): forget it, the new SA lives on.
                gen.outstanding = None
                self._retire(gen, now, by_peer=False)
                continue
            if self._schedule.exhausted(req.transmissions):
                self._close(
                    now,
                    PeerDeclaredDead(
                        gen.spis,
                        now,
                        name_of(ExchangeType, req.exchange),
                        req.mid,
                        req.transmissions,
                        req.first_sent_at,
                    ),
                )
                return
            req.transmissions += 1
            self._emit(gen, req.exchange, req.mid, False, req.datagrams, now, again=True)
            self._events.append(
                RequestRetransmitted(
                    name_of(ExchangeType, req.exchange), req.mid, req.transmissions, now
                )
            )
        if self._retry_at is not None and now >= self._retry_at:
            cmd, self._retry_cmd, self._retry_at = self._retry_cmd, None, None
            if cmd is not None and self.state is State.ESTABLISHED:
                self._queue.append(cmd)
                self._pump(now)

    # --- commands ------------------------------------------------------------------

    def _command(self, kind: str, arg: Any, now: float) -> None:
        if self.state is not State.ESTABLISHED:
            raise IkeStateError(f"{kind} needs an established IKE SA, state is {self.state.value}")
        if kind in ("child", "delete_child") and not self.children:
            raise IkeStateError("there is no Child SA to rekey or delete")
        self._queue.append((kind, arg))
        self._pump(now)

    def _pump(self, now: float) -> None:
        """Start the next queued command once no request of ours is outstanding."""
        while (
            self._queue
            and self.state is State.ESTABLISHED
            and self._gen.outstanding is None
            and self._rekey is None
        ):
            kind, arg = self._queue.popleft()
            if kind == "child":
                live = [c for c in self.children.values() if c.spi_in not in self._superseded]
                child = self.children.get(arg) if arg else next(iter(live), None)
                if child is not None and child.spi_in not in self._superseded:
                    self._start_child_rekey(child, now)
            elif kind == "ike":
                self._start_ike_rekey(now)
            elif kind == "liveness":
                req = self._request(
                    self._gen, ExchangeType.INFORMATIONAL, [], now, self._on_liveness_response
                )
                req.command = (kind, arg)
            elif kind == "delete":
                self._request(
                    self._gen,
                    ExchangeType.INFORMATIONAL,
                    [Delete(ProtocolId.IKE)],
                    now,
                    self._on_delete_response,
                )
            elif kind == "delete_child" and arg in self.children:
                req = self._request(
                    self._gen,
                    ExchangeType.INFORMATIONAL,
                    [Delete(ProtocolId.ESP, (arg,))],
                    now,
                    self._on_child_delete_response,
                )
                req.command = (kind, arg)

    # --- receive path --------------------------------------------------------------

    def _receive(self, data: bytes, addr: Addr, now: float) -> None:
        if self.state is State.CLOSED:
            self._drop(now, "sa_closed", len(data))
            return
        marker = data[:4] == NON_ESP_MARKER
        if data == b"\xff":
            self._drop(now, "nat_keepalive", 1)
            return
        ike = data[4:] if marker else data
        message = Message.from_bytes(ike)
        header = message.header
        gen = self._generation_for(header)
        if gen is None:
            self._drop(now, "unknown_spi", len(data), header_spis=(header.spi_i, header.spi_r))
            return
        if header.is_initiator == gen.original_initiator:
            self._drop(now, "wrong_initiator_flag", len(data), header_spis=gen.spis)
            return
        if header.is_response:
            self._receive_response(gen, message, ike, now)
        else:
            self._receive_request(gen, message, ike, addr, marker, now)

    def _generation_for(self, header: IkeHeader) -> _Generation | None:
        """The key generation a message belongs to, by our own SPI in its header."""
        for gen in (self._gen, *self._old_gens):
            if gen.original_initiator:
                if header.spi_i == gen.spi_i:
                    return gen
            elif header.spi_r == gen.spi_r and gen.spi_r != _ZERO_SPI:
                return gen
            elif header.spi_r == _ZERO_SPI and gen.spi_i in (header.spi_i, _ZERO_SPI):
                return gen  # IKE_SA_INIT request (or its retransmission)
        return None

    def _receive_response(self, gen: _Generation, message: Message, ike: bytes, now: float):
        req = gen.outstanding
        header = message.header
        if req is None or header.message_id != req.mid or header.exchange_type != req.exchange:
            self._drop(now, "unexpected_response", len(ike), header_spis=gen.spis)
            return
        if header.exchange_type == ExchangeType.IKE_SA_INIT:
            inner, ap, total, count = message.payloads, b"", len(ike), 1
        else:
            opened = self._open(gen, message, ike, now)
            if opened is None:
                return
            inner, ap, total, count = opened
        gen.outstanding = None
        self._round_trips += 1
        mark = len(self._events)
        req.response_ap = ap
        self._responding_to = req
        try:
            req.on_response(gen, message, inner, now)
        except _Violation as violation:
            self._fail(now, violation.reason, name_of(ExchangeType, req.exchange), violation.notify)
        except (KeyExchangeError, keymat.KeyScheduleError) as error:
            self._fail(
                now, f"key exchange failed: {error}", name_of(ExchangeType, req.exchange), None
            )
        done = ExchangeCompleted(
            name_of(ExchangeType, req.exchange),
            req.mid,
            "requester",
            sum(len(d) for d in req.datagrams),
            total,
            len(req.datagrams),
            count,
            req.first_sent_at,
            now,
            now - req.first_sent_at,
            req.transmissions,
            tuple(req.ops),
        )
        self._events.insert(mark, done)
        self._pump(now)

    def _receive_request(
        self, gen: _Generation, message: Message, ike: bytes, addr: Addr, marker: bool, now: float
    ) -> None:
        header = message.header
        mid = header.message_id
        fragment = message.encrypted if isinstance(message.encrypted, EncryptedFragment) else None
        if gen.cache is not None and mid == gen.cache.mid:
            if _hash(ike) == gen.cache.fingerprint:
                # RFC 7296 §2.1 / RFC 7383 §2.6.1: answer a retransmission from the cache.
                datagrams = gen.cache.datagrams
                self._emit(gen, header.exchange_type, mid, True, datagrams, now, again=True)
            else:
                trigger = "retransmitted_fragment" if fragment is not None else "stale_request"
                self._drop(now, trigger, len(ike), header_spis=gen.spis)
            return
        if mid != gen.peer_mid:
            self._drop(now, "unexpected_message_id", len(ike), header_spis=gen.spis)
            return
        state = State.REKEYED if gen.retired else self.state
        handler_name = _REQUEST_HANDLERS.get((state, header.exchange_type))
        if header.exchange_type == ExchangeType.IKE_SA_INIT:
            if handler_name is None:
                self._drop(now, "unexpected_exchange", len(ike), header_spis=gen.spis)
                return
            inner, ap, total, count, first = message.payloads, b"", len(ike), 1, ike
        else:
            if gen.keys is None:
                self._drop(now, "no_keys", len(ike), header_spis=gen.spis)
                return
            if fragment is not None and fragment.fragment_number == 1:
                gen.first_fragment[(mid, False)] = ike
            opened = self._open(gen, message, ike, now)
            if opened is None:
                return
            inner, ap, total, count = opened
            first = gen.first_fragment.pop((mid, False), ike) if fragment is not None else ike
        # An authentic request: replies go where it came from (RFC 7296 §2.11).
        self.remote_addr = addr
        if marker:
            self._floated = True
        self._current = (gen, message, _hash(first), total, count, ap)
        if handler_name is None:
            self._refuse(
                gen,
                message,
                now,
                f"{name_of(ExchangeType, header.exchange_type)} "
                f"request not allowed in state {state.value}",
                NotifyType.INVALID_SYNTAX,
            )
            return
        try:
            getattr(self, handler_name)(gen, message, inner, now)
        except _Violation as violation:
            self._refuse(gen, message, now, violation.reason, violation.notify)
        except keymat.KeyScheduleError as error:
            self._refuse(gen, message, now, str(error), NotifyType.INVALID_SYNTAX)
        self._pump(now)

    def _open(self, gen: _Generation, message: Message, ike: bytes, now: float):
        """Decrypt an SK message or add an SKF fragment; (inner, A|P, bytes, datagrams)
        once complete, None while fragments are missing or when the datagram is dropped."""
        header = message.header
        if message.encrypted is None:
            self._drop(now, "unprotected_message", len(ike), header_spis=gen.spis)
            return None
        key = (header.message_id, header.is_response)
        try:
            opened = protection.unprotect(ike, *self._peer_keys(gen))
            if isinstance(opened, protection.Fragment):
                buffer = gen.reassembly.get(key)
                if buffer is None:
                    buffer = protection.Reassembly(
                        max_fragments=self.config.max_fragments,
                        max_bytes=self.config.max_message_bytes,
                        timeout_s=self.config.half_open_timeout_s,
                    )
                    gen.reassembly[key] = buffer
                    gen.fragment_bytes[key] = 0
                gen.fragment_bytes[key] += len(ike)
                opened = buffer.add(opened, now)
                if opened is None:
                    return None
                del gen.reassembly[key]
            inner = parse_payload_chain(opened.first_inner, opened.inner)
        except UnsupportedCriticalPayload as error:
            if header.is_response:
                self._drop(now, "unsupported_critical_payload", len(ike), str(error), gen.spis)
                return None
            # RFC 7296 §2.5: reject the request, answering UNSUPPORTED_CRITICAL_PAYLOAD.
            first = gen.first_fragment.pop(key, ike)
            self._current = (gen, message, _hash(first), len(ike), 1, b"")
            self._respond(gen, message, [Notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
                                                error.notify_data)], now)  # fmt: skip
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    name_of(ExchangeType, header.exchange_type),
                    str(error),
                    "UNSUPPORTED_CRITICAL_PAYLOAD",
                    True,
                )  # fmt: skip
            )
            return None
        except ParseError as error:
            trigger = (
                "icv_failure"
                if isinstance(error, protection.IntegrityError)
                else (
                    "reassembly_refused"
                    if isinstance(error, protection.ReassemblyError)
                    else "parse_error"
                )
            )
            self._drop(now, trigger, len(ike), str(error), header_spis=gen.spis)
            return None
        if opened.fragments:
            total, count = gen.fragment_bytes.pop(key, len(ike)), opened.fragments
        else:
            total, count = len(ike), 1
        ap = b""
        if header.exchange_type == ExchangeType.IKE_INTERMEDIATE:
            ap = opened.int_auth_chunk()
        return inner, ap, total, count

    def _peer_keys(self, gen: _Generation):
        """(suite, encryption key, integrity key) that protect what the peer sends."""
        k = gen.keys
        if gen.original_initiator:
            return k.suite.cipher, k.er, k.ar
        return k.suite.cipher, k.ei, k.ai

    def _own_keys(self, gen: _Generation):
        k = gen.keys
        if gen.original_initiator:
            return k.suite.cipher, k.ei, k.ai
        return k.suite.cipher, k.er, k.ar

    # --- send path -----------------------------------------------------------------

    def _header(self, gen: _Generation, exchange: int, mid: int, response: bool) -> IkeHeader:
        flags = (_INITIATOR if gen.original_initiator else 0) | (_RESPONSE if response else 0)
        return IkeHeader(gen.spi_i, gen.spi_r, exchange, flags, mid)

    def _build(self, gen, exchange, mid, response, payloads) -> tuple[list[bytes], bytes]:
        """IKE messages for `payloads` (fragmented when needed) and their RFC 9242 A|P."""
        header = self._header(gen, exchange, mid, response)
        if exchange == ExchangeType.IKE_SA_INIT:
            return [Message(header, tuple(payloads)).to_bytes()], b""
        suite, encr_key, integ_key = self._own_keys(gen)
        header_bytes = header.to_bytes()
        first_inner, inner = serialize_payload_chain(payloads)
        if self._fragmenting:
            limit = protection.max_message_bytes(
                self.config.fragment_size,
                ip_version=6 if len(_packed(self.remote_addr[0])) == 16 else 4,
                nat_t=self._floated,
            )
            messages = protection.protect_fragments(
                header_bytes,
                suite,
                encr_key,
                integ_key,
                first_inner,
                inner,
                self._random,
                max_message=limit,
            )
        else:
            messages = [
                protection.protect(
                    header_bytes, suite, encr_key, integ_key, first_inner, inner, self._random
                )
            ]
        ap = b""
        if exchange == ExchangeType.IKE_INTERMEDIATE:
            ap = protection.int_auth_chunk(header_bytes, first_inner, inner)
        return messages, ap

    @property
    def _fragmenting(self) -> bool:
        return self.config.fragmentation and self._peer_frag

    def _request(
        self,
        gen: _Generation,
        exchange: int,
        payloads: list[Payload],
        now: float,
        on_response,
        ops: list[CryptoOp] | None = None,
    ) -> _Request:
        mid = gen.next_mid
        gen.next_mid += 1
        datagrams, ap = self._build(gen, exchange, mid, False, payloads)
        req = _Request(exchange, mid, datagrams, on_response, now, ops or [], ap)
        gen.outstanding = req
        self._emit(gen, exchange, mid, False, datagrams, now, payloads)
        return req

    def _respond(
        self,
        gen: _Generation,
        message: Message,
        payloads: list[Payload],
        now: float,
        ops: list[CryptoOp] | None = None,
        *,
        keys_gen: _Generation | None = None,
    ) -> tuple[list[bytes], bytes]:
        """Send the response to the request being handled and cache it for retransmits."""
        header = message.header
        _, _, fingerprint, total, count, _ = self._current
        datagrams, ap = self._build(
            keys_gen or gen, header.exchange_type, header.message_id, True, payloads
        )
        gen.peer_mid = header.message_id + 1
        for key in [k for k in gen.reassembly if not k[1] and k[0] <= header.message_id]:
            del gen.reassembly[key]  # fragments of requests that are answered now
            gen.fragment_bytes.pop(key, None)
        if self.established_at is None:
            self._round_trips += 1
        gen.cache = _Cached(header.message_id, fingerprint, datagrams)
        self._emit(
            gen,
            header.exchange_type,
            header.message_id,
            True,
            datagrams,
            now,
            payloads,
        )
        self._events.append(
            ExchangeCompleted(
                name_of(ExchangeType, header.exchange_type),
                header.message_id,
                "responder",
                total,
                sum(len(d) for d in datagrams),
                count,
                len(datagrams),
                now,
                now,
                None,
                1,
                tuple(ops or ()),
            )
        )
        return datagrams, ap

    def _emit(self, gen, exchange, mid, response, datagrams, now, payloads=(), again=False):
        """Queue the datagrams of one message; `payloads` only feed the trace."""
        port_4500 = self._floated and exchange != ExchangeType.IKE_SA_INIT
        dest = self.remote_addr
        if port_4500 and self.initiator and dest[1] != NAT_T_PORT and not response:
            dest = (dest[0], NAT_T_PORT)
            self.remote_addr = dest
        for d in datagrams:
            self._out.append((NON_ESP_MARKER + d if port_4500 else d, dest))
        if self._trace is not None:
            sender_is_i = gen.original_initiator
            self._trace(
                WireMessage(
                    now,
                    "initiator" if sender_is_i else "responder",
                    name_of(ExchangeType, exchange),
                    mid,
                    response,
                    gen.spis,
                    tuple(len(d) for d in datagrams),
                    port_4500,
                    _describe(payloads, exchange),
                    again,
                )
            )

    def _drop(self, now, trigger, length, detail="", header_spis=None) -> None:
        self._events.append(DatagramDropped(now, trigger, length, header_spis, detail))

    def _refuse(self, gen, message, now, reason, notify) -> None:
        """Answer a protocol violation with an error notify and report it."""
        exchange = name_of(ExchangeType, message.header.exchange_type)
        payloads = [Notify(notify)] if notify is not None else []
        if message.header.exchange_type == ExchangeType.IKE_SA_INIT or gen.keys is not None:
            self._respond(gen, message, payloads, now)
        self._events.append(
            NegotiationFailed(
                gen.spis,
                now,
                exchange,
                reason,
                name_of(NotifyType, notify) if notify else None,
                True,
            )
        )

    def _fail(self, now, reason, exchange, notify, local=True) -> None:
        """Abandon the handshake (before IKE_AUTH completed) or the rekey in progress."""
        self._events.append(
            NegotiationFailed(
                self.ike_spis,
                now,
                exchange,
                reason,
                name_of(NotifyType, notify) if notify else None,
                local,
            )
        )
        if self.state is not State.ESTABLISHED:
            self._close(now, None)

    def _close(self, now: float, event: Event | None) -> None:
        if event is not None:
            self._events.append(event)
        self.state = State.CLOSED
        for gen in (self._gen, *self._old_gens):
            gen.outstanding = None
        self._queue.clear()
        self._retry_at = None

    # --- IKE_SA_INIT ---------------------------------------------------------------

    def _offer(self) -> tuple[ProposalSpec, ...]:
        return self._ike_specs

    def _offers_addke(self) -> bool:
        return any(has_addke(p) for p in self._offer())

    def _send_sa_init(self, now: float, *, new_ke: bool = True) -> None:
        """Send (or, after COOKIE / INVALID_KE_PAYLOAD, resend) the IKE_SA_INIT request.
        SPIi and Ni stay the same across retries; a COOKIE retry also keeps KEi (digest
        §7.2: "the rest unchanged"), an INVALID_KE retry needs a key of the wanted group."""
        gen = self._gen
        ops: list[CryptoOp] = []
        kex = self._kex(self._ke_token)
        if new_ke or self._pending is None:
            self._pending = kex.initiate()
            ops.append((self._ke_token, "initiate"))
        payloads: list[Payload] = []
        if self._cookie is not None:
            payloads.append(Notify(NotifyType.COOKIE, self._cookie))
        payloads += [
            sa_payload(self._offer()),
            KeyExchange(kex.method_id, self._pending.share),
            Nonce(self._ni),
            Notify(
                NotifyType.NAT_DETECTION_SOURCE_IP, _nat_hash(gen.spi_i, _ZERO_SPI, self.local_addr)
            ),
            Notify(
                NotifyType.NAT_DETECTION_DESTINATION_IP,
                _nat_hash(gen.spi_i, _ZERO_SPI, self.remote_addr),
            ),
        ]
        payloads += self._init_notifies(request=True, peer_int=True, peer_frag=True)
        gen.next_mid = 0
        self._init_tries += 1
        req = self._request(
            gen, ExchangeType.IKE_SA_INIT, payloads, now, self._on_sa_init_response, ops
        )
        self._init_request = req.datagrams[0]

    def _init_notifies(self, *, request: bool, peer_int: bool, peer_frag: bool) -> list[Payload]:
        """Status notifies of IKE_SA_INIT after NAT-D, in strongSwan's order (vector)."""
        strongswan = self.config.profile == "strongswan"
        out: list[Payload] = []
        if self.config.fragmentation and peer_frag:
            out.append(Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        if strongswan:
            out.append(Notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, _SIGNATURE_HASHES))
            out.append(
                Notify(
                    NotifyType.REDIRECT_SUPPORTED
                    if request
                    else NotifyType.CHILDLESS_IKEV2_SUPPORTED
                )
            )
        if self._offers_addke() if request else peer_int:
            out.append(Notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
        if strongswan and not request:
            out.append(Notify(NotifyType.MULTIPLE_AUTH_SUPPORTED))
        if self.config.vendor_id:
            out.append(VendorId(self.config.vendor_id))
        return out

    def _on_sa_init_request(self, gen: _Generation, message: Message, inner, now: float) -> None:
        """Responder: choose a proposal, run the main key exchange, send SAr1/KEr/Nr."""
        ops: list[CryptoOp] = []
        self.created_at = now  # the half-open timeout runs from here
        sa = message.find(SecurityAssociation)
        ke = message.find(KeyExchange)
        nonce = message.find(Nonce)
        if sa is None or ke is None or nonce is None:
            raise _Violation("IKE_SA_INIT request lacks SA, KE or Nonce")
        gen.spi_i = message.header.spi_i
        self._peer_frag = message.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
        self._peer_intermediate = (
            message.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None
        )
        chosen = select(
            sa.proposals,
            self._offer(),
            require_pq=self.config.require_pq,
            allow_addke=self._peer_intermediate,
            ke_method=ke.method,
        )
        if chosen is None:
            self._stateless_reply(gen, message, Notify(NotifyType.NO_PROPOSAL_CHOSEN), now)
            self._fail(
                now, "no acceptable IKE proposal", "IKE_SA_INIT", NotifyType.NO_PROPOSAL_CHOSEN
            )
            return
        methods = methods_of(chosen)
        wanted = self._kex(methods[0])
        if ke.method != wanted.method_id:
            # RFC 7296 §1.2: name the group we want; keep no state.
            self._stateless_reply(
                gen,
                message,
                Notify(NotifyType.INVALID_KE_PAYLOAD, wanted.method_id.to_bytes(2, "big")),
                now,
            )
            self._close(now, None)
            return
        try:
            share, secret = wanted.respond(ke.data)
        except KeyExchangeError as error:
            ops.append((methods[0], "respond"))
            # draft-ietf-ipsecme-ikev2-mlkem §3: a malformed key is answered INVALID_SYNTAX.
            self._stateless_reply(gen, message, Notify(NotifyType.INVALID_SYNTAX), now)
            self._fail(now, f"invalid KEi: {error}", "IKE_SA_INIT", NotifyType.INVALID_SYNTAX)
            return
        ops.append((methods[0], "respond"))
        gen.spi_r = self._new_ike_spi()
        gen.proposal = chosen
        self._ni = nonce.data
        self._nr = self._random(self.config.nonce_bytes)
        self._ke_methods = list(methods)
        self._addke = list(methods[1:])
        gen.keys = keymat.initial_keys(
            ike_suite(chosen), secret, self._ni, self._nr, gen.spi_i, gen.spi_r
        )
        self.key_sets.append(KeySet(gen.spi_i, gen.spi_r, gen.keys, "IKE_SA_INIT"))
        self._detect_nat(message, self.remote_addr)
        payloads: list[Payload] = [
            sa_payload([chosen]),
            KeyExchange(wanted.method_id, share),
            Nonce(self._nr),
            Notify(
                NotifyType.NAT_DETECTION_SOURCE_IP, _nat_hash(gen.spi_i, gen.spi_r, self.local_addr)
            ),
            Notify(
                NotifyType.NAT_DETECTION_DESTINATION_IP,
                _nat_hash(gen.spi_i, gen.spi_r, self.remote_addr),
            ),
        ]
        payloads += self._init_notifies(
            request=False, peer_int=self._peer_intermediate, peer_frag=self._peer_frag
        )
        self._init_request = message.raw or b""
        datagrams, _ = self._respond(gen, message, payloads, now, ops)
        self._init_response = datagrams[0]
        self.state = State.INTERMEDIATE if self._addke else State.AUTH

    def _stateless_reply(self, gen, message, notify: Notify, now) -> None:
        """An IKE_SA_INIT error response with SPIr = 0 and only one notify (§1.2, §2.6)."""
        header = IkeHeader(
            message.header.spi_i, _ZERO_SPI, ExchangeType.IKE_SA_INIT, int(HeaderFlag.RESPONSE), 0
        )
        data = Message(header, (notify,)).to_bytes()
        self._out.append((data, self.remote_addr))
        if self._trace is not None:
            self._trace(
                WireMessage(
                    now,
                    "responder",
                    "IKE_SA_INIT",
                    0,
                    True,
                    (message.header.spi_i, _ZERO_SPI),
                    (len(data),),
                    False,
                    describe_payload(notify),
                )
            )

    def _detect_nat(self, message: Message, peer_addr: Addr) -> None:
        """RFC 7296 §2.23: compare the peer's NAT-D hashes with the addresses we see."""
        header = message.header
        src = [
            n.data for n in message.find_all(Notify) if n.type == NotifyType.NAT_DETECTION_SOURCE_IP
        ]
        dst = message.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
        if not src or dst is None:
            self._peer_natd = False
            return
        self._peer_natd = True
        spi_r = header.spi_r
        expected_src = _nat_hash(header.spi_i, spi_r, peer_addr)
        expected_dst = _nat_hash(header.spi_i, spi_r, self.local_addr)
        self.nat_detected = expected_src not in src or dst.data != expected_dst

    def _on_sa_init_response(self, gen: _Generation, message: Message, inner, now: float) -> None:
        cookie = message.notify(NotifyType.COOKIE)
        invalid_ke = message.notify(NotifyType.INVALID_KE_PAYLOAD)
        if cookie is not None or invalid_ke is not None:
            if self._init_tries > self.config.max_init_retries:
                raise _Violation("too many IKE_SA_INIT retries", None)
            if cookie is not None:
                self._cookie = cookie.data
                self._events.append(CookieDemanded(gen.spis, now))
            else:
                wanted = (
                    int.from_bytes(invalid_ke.data[:2], "big") if len(invalid_ke.data) >= 2 else -1
                )
                token = next(
                    (t for t in ke_tokens(self._offer()) if self._kex(t).method_id == wanted),
                    None,
                )
                if token is None:
                    raise _Violation(
                        f"responder wants KE method {wanted}, which we did not offer", None
                    )
                self._events.append(
                    KeyExchangeRedirected(gen.spis, now, "IKE_SA_INIT", token, self._ke_token)
                )
                self._ke_token = token
            self._send_sa_init(now, new_ke=invalid_ke is not None)
            return
        error = _error_notify(message.payloads)
        if error is not None:
            self._fail(
                now,
                f"responder refused IKE_SA_INIT with {name_of(NotifyType, error.type)}",
                "IKE_SA_INIT",
                error.type,
                local=False,
            )
            return
        sa = message.find(SecurityAssociation)
        ke = message.find(KeyExchange)
        nonce = message.find(Nonce)
        if sa is None or ke is None or nonce is None or len(sa.proposals) != 1:
            raise _Violation("IKE_SA_INIT response lacks SA, KE or Nonce", None)
        chosen = check_chosen(sa.proposals[0], self._offer())
        if chosen is None:
            raise _Violation("responder chose a proposal we did not offer", None)
        methods = methods_of(chosen)
        if self.config.require_pq and not any(m.startswith("mlkem") for m in methods):
            raise _Violation("responder chose a proposal without ML-KEM", None)
        if methods[0] != self._ke_token or ke.method != self._kex(methods[0]).method_id:
            raise _Violation("responder's KE does not match the chosen proposal", None)
        req_ops = self._responding_to.ops
        secret = self._pending.finish(ke.data)
        req_ops.append((self._ke_token, "finish"))
        gen.spi_r = message.header.spi_r
        gen.proposal = chosen
        self._nr = nonce.data
        self._init_response = message.raw or b""
        self._peer_frag = message.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
        self._peer_intermediate = (
            message.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None
        )
        self._ke_methods = list(methods)
        self._addke = list(methods[1:])
        gen.keys = keymat.initial_keys(
            ike_suite(chosen), secret, self._ni, self._nr, gen.spi_i, gen.spi_r
        )
        self.key_sets.append(KeySet(gen.spi_i, gen.spi_r, gen.keys, "IKE_SA_INIT"))
        self._detect_nat(message, self.remote_addr)
        if self.nat_detected or (self.config.port_4500 == "always" and self._peer_natd):
            self._floated = True
        self._next_handshake_step(now)

    # --- IKE_INTERMEDIATE (RFC 9242, RFC 9370) -------------------------------------

    def _next_handshake_step(self, now: float) -> None:
        if self._addke:
            self.state = State.INTERMEDIATE
            token = self._addke[0]
            self._pending = self._kex(token).initiate()
            kex = self._kex(token)
            self._request(
                self._gen,
                ExchangeType.IKE_INTERMEDIATE,
                [KeyExchange(kex.method_id, self._pending.share)],
                now,
                self._on_intermediate_response,
                [(token, "initiate")],
            )
        else:
            self.state = State.AUTH
            self._send_auth(now)

    def _on_intermediate_request(self, gen: _Generation, message: Message, inner, now: float):
        token = self._addke[0]
        kex = self._kex(token)
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != kex.method_id:
            raise _Violation(f"IKE_INTERMEDIATE must carry KE({token})")
        ops: list[CryptoOp] = [(token, "respond")]
        try:
            share, secret = kex.respond(ke.data)
        except KeyExchangeError as error:
            self._respond(gen, message, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
            self._fail(
                now, f"invalid KEi({token}): {error}", "IKE_INTERMEDIATE", NotifyType.INVALID_SYNTAX
            )
            return
        request_ap = self._current[5]
        # The response still goes out under SK_*(n-1) (RFC 9370 §2.2.2).
        _, response_ap = self._respond(gen, message, [KeyExchange(kex.method_id, share)], now, ops)
        self._advance_keys(gen, secret, request_ap, response_ap)
        self.state = State.INTERMEDIATE if self._addke else State.AUTH

    def _on_intermediate_response(self, gen: _Generation, message: Message, inner, now: float):
        token = self._addke[0]
        error = _error_notify(inner)
        if error is not None:
            self._fail(
                now,
                f"peer refused IKE_INTERMEDIATE with {name_of(NotifyType, error.type)}",
                "IKE_INTERMEDIATE",
                error.type,
                local=False,
            )
            return
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != self._kex(token).method_id:
            raise _Violation(f"IKE_INTERMEDIATE response must carry KE({token})", None)
        req = self._responding_to
        req.ops.append((token, "finish"))
        # draft-ietf-ipsecme-ikev2-mlkem §3: a malformed ciphertext aborts the SA.
        secret = self._pending.finish(ke.data)
        self._advance_keys(gen, secret, req.ap_chunk, req.response_ap)
        self._next_handshake_step(now)

    def _advance_keys(self, gen: _Generation, secret: bytes, request_ap: bytes, response_ap: bytes):
        """IntAuth with the keys that protected exchange n, then SK_*(n) (RFC 9370 §2.2.2)."""
        self._int_auth = self._int_auth.extend(gen.keys, request_ap, response_ap)
        gen.keys = keymat.intermediate_keys(
            gen.keys, secret, self._ni, self._nr, gen.spi_i, gen.spi_r
        )
        self._addke.pop(0)
        n = self._int_auth.exchanges
        self.key_sets.append(KeySet(gen.spi_i, gen.spi_r, gen.keys, f"IKE_INTERMEDIATE {n}"))

    # --- IKE_AUTH (RFC 7296 §1.2, §2.15; RFC 9242 §3.1) ----------------------------

    def _auth_octets(self, gen: _Generation, *, ours: bool, id_body: bytes, mid: int) -> bytes:
        keys = gen.keys
        we_i = gen.original_initiator
        signer_is_i = we_i if ours else not we_i
        real = self._init_request if signer_is_i else self._init_response
        nonce = self._nr if signer_is_i else self._ni
        sk_p = keys.pi if signer_is_i else keys.pr
        return keymat.signed_octets(
            keys.suite.prf, sk_p, real, nonce, id_body, self._int_auth.value(mid)
        )

    def _psk_auth(self, octets: bytes) -> bytes:
        return keymat.psk_auth(self._gen.keys.suite.prf, self.config.psk.encode(), octets)

    def _signer(self) -> tuple[Any, Any, bytes]:
        """(scheme, private key, DER certificate): injected, or made on first use."""
        if self._credentials is None:
            scheme = get_signature_scheme(self.config.auth)
            key = scheme.generate()
            self._credentials = (key, self_signed_certificate(scheme, key, self.config.local_id))
        key, cert = self._credentials
        return get_signature_scheme(self.config.auth), key, cert

    def _auth_payloads(self, octets: bytes, ops: list[CryptoOp]) -> tuple[list, Auth]:
        """(CERT payloads, AUTH payload) proving our identity over `octets`."""
        if self.config.auth == "psk":
            return [], Auth(AuthMethod.SHARED_KEY_MIC, self._psk_auth(octets))
        # RFC 7427 §3: Digital Signature with the scheme's AlgorithmIdentifier.
        scheme, key, cert = self._signer()
        ops.append((scheme.token, "sign"))
        data = auth_data(scheme, scheme.sign(key, octets))
        return [Certificate(CertEncoding.X509_SIGNATURE, cert)], Auth(
            AuthMethod.DIGITAL_SIGNATURE, data
        )

    def _send_auth(self, now: float) -> None:
        gen = self._gen
        mid = gen.next_mid
        id_kind, id_data = identity(self.config.local_id)
        idi = IdInitiator(id_kind, id_data)
        octets = self._auth_octets(gen, ours=True, id_body=idi.body(), mid=mid)
        self._child_spi = self._new_child_spi()
        esp = self._esp_specs
        strongswan = self.config.profile == "strongswan"
        payloads: list[Payload] = [idi]
        if strongswan:
            payloads.append(Notify(NotifyType.INITIAL_CONTACT))
        if self.config.remote_id:
            kind, data = identity(self.config.remote_id)
            payloads.append(IdResponder(kind, data))
        ops: list[CryptoOp] = []
        certs, auth = self._auth_payloads(octets, ops)
        payloads[1:1] = certs  # IDi, CERT, ... as strongSwan orders them
        payloads += [
            auth,
            sa_payload(esp, spi=self._child_spi, skip_ke=True),
            TrafficSelectorsInitiator(selectors(self.config.local_ts)),
            TrafficSelectorsResponder(selectors(self.config.remote_ts)),
        ]
        payloads += self._auth_notifies(request=True)
        self._request(gen, ExchangeType.IKE_AUTH, payloads, now, self._on_auth_response, ops)

    def _auth_notifies(self, *, request: bool) -> list[Payload]:
        if self.config.profile != "strongswan":
            return []
        out: list[Payload] = []
        if self.config.port_4500 == "always":  # strongSwan's MOBIKE announcement
            out += [Notify(NotifyType.MOBIKE_SUPPORTED), Notify(NotifyType.NO_ADDITIONAL_ADDRESSES)]
        if request:
            out += [
                Notify(NotifyType.MULTIPLE_AUTH_SUPPORTED),
                Notify(NotifyType.EAP_ONLY_AUTHENTICATION),
                Notify(NotifyType.IKEV2_MESSAGE_ID_SYNC_SUPPORTED),
            ]
        return out

    def _verify_peer(self, gen, inner, id_class, mid, ops: list[CryptoOp]) -> str | None:
        """None when the peer's identity and AUTH check out, else the reason."""
        id_payload, auth = _find(inner, id_class), _find(inner, Auth)
        if id_payload is None or auth is None:
            return "IKE_AUTH lacks the peer's ID or AUTH payload"
        peer_id = id_text(id_payload.kind, id_payload.data)
        if self.config.remote_id is not None and peer_id != self.config.remote_id:
            return f"peer identity {peer_id!r} is not the expected {self.config.remote_id!r}"
        octets = self._auth_octets(gen, ours=False, id_body=id_payload.body(), mid=mid)
        if auth.kind == AuthMethod.SHARED_KEY_MIC and self.config.auth == "psk":
            if not _equal(auth.data, self._psk_auth(octets)):
                return "AUTH payload does not verify (wrong pre-shared key?)"
            return None
        if auth.kind != AuthMethod.DIGITAL_SIGNATURE or self.config.auth == "psk":
            return f"peer used auth method {name_of(AuthMethod, auth.kind)}, not ours"
        # RFC 7427: the public key comes from the peer's (self-signed) end-entity CERT;
        # wansim models no PKI, so any well-formed certificate is taken as trusted.
        cert = _find(inner, Certificate)
        if cert is None:
            return "signature AUTH without a CERT payload"
        try:
            cert_scheme, public_key = certificate_public_key(cert.data)
            scheme, signature = parse_auth_data(auth.data)
            if scheme != cert_scheme:
                return f"AUTH uses {scheme.token}, the certificate a {cert_scheme.token} key"
            ops.append((scheme.token, "verify"))
            scheme.verify(public_key, octets, signature)
        except SignatureError as error:
            return f"signature AUTH does not verify: {error}"
        return None

    def _on_auth_request(self, gen: _Generation, message: Message, inner, now: float) -> None:
        mid = message.header.message_id
        ops: list[CryptoOp] = []
        problem = self._verify_peer(gen, inner, IdInitiator, mid, ops)
        if problem is not None:
            self._respond(gen, message, [Notify(NotifyType.AUTHENTICATION_FAILED)], now, ops)
            self._close(now, AuthenticationFailed(gen.spis, now, True, problem))
            return
        id_kind, id_data = identity(self.config.local_id)
        idr = IdResponder(id_kind, id_data)
        octets = self._auth_octets(gen, ours=True, id_body=idr.body(), mid=mid)
        certs, auth = self._auth_payloads(octets, ops)
        payloads: list[Payload] = [idr, *certs, auth]
        child_payloads, child = self._accept_child(
            inner, keys=gen.keys, ni=self._ni, nr=self._nr, skip_ke=True
        )
        payloads += child_payloads
        if child is not None:
            payloads += self._auth_notifies(request=False)
        self._respond(gen, message, payloads, now, ops)
        self._established(now)
        if child is not None:
            self._install_child(child, now)

    def _accept_child(self, inner, *, keys, ni, nr, skip_ke, secrets=()):
        """Responder side of a Child SA negotiation: (payloads to send, ChildSa or None)."""
        sa = _find(inner, SecurityAssociation)
        tsi = _find(inner, TrafficSelectorsInitiator)
        tsr = _find(inner, TrafficSelectorsResponder)
        if sa is None or tsi is None or tsr is None:
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], None
        esp = self._esp_specs
        chosen = select(sa.proposals, esp, skip_ke=skip_ke)
        if chosen is None:
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], None
        # Their TSi is our remote side; their TSr our local side.
        remote = narrow(selectors(self.config.remote_ts), tsi.selectors)
        local = narrow(selectors(self.config.local_ts), tsr.selectors)
        if not remote or not local:
            return [Notify(NotifyType.TS_UNACCEPTABLE)], None
        spi_in = self._new_child_spi()
        child = ChildSa(
            spi_in,
            chosen.spi,
            str(chosen),
            keymat.child_keys(keys, cipher_suite(chosen), ni, nr, secrets),
            False,
            ts_text(local),
            ts_text(remote),
        )
        payloads = [
            sa_payload([chosen], spi=spi_in),
            TrafficSelectorsInitiator(remote),
            TrafficSelectorsResponder(local),
        ]
        return payloads, child

    def _on_auth_response(self, gen: _Generation, message: Message, inner, now: float) -> None:
        req = self._responding_to
        if _find_notify(inner, NotifyType.AUTHENTICATION_FAILED) is not None:
            self._close(
                now, AuthenticationFailed(gen.spis, now, False, "peer sent AUTHENTICATION_FAILED")
            )
            return
        problem = self._verify_peer(gen, inner, IdResponder, req.mid, req.ops)
        if problem is not None:
            # RFC 7296 §2.21.2: tell the peer in a new INFORMATIONAL, then give up.
            self._request(
                gen,
                ExchangeType.INFORMATIONAL,
                [Notify(NotifyType.AUTHENTICATION_FAILED)],
                now,
                lambda *a: None,
            )
            gen.outstanding = None
            self._close(now, AuthenticationFailed(gen.spis, now, True, problem))
            return
        self._established(now)
        child = self._finish_child(
            inner,
            gen.keys,
            self._ni,
            self._nr,
            self._child_spi,
            skip_ke=True,
            secrets=(),
            exchange="IKE_AUTH",
            now=now,
        )
        if child is not None:
            self._install_child(child, now)

    def _finish_child(
        self, inner, keys, ni, nr, spi_in, *, skip_ke, secrets, exchange, now, chosen=None
    ):
        """Initiator side: check the responder's Child SA answer and derive its keys."""
        error = _error_notify(inner)
        if error is not None:
            self._events.append(
                NegotiationFailed(
                    self.ike_spis,
                    now,
                    exchange,
                    "peer refused the Child SA",
                    name_of(NotifyType, error.type),
                    False,
                )
            )
            return None
        sa = _find(inner, SecurityAssociation)
        tsi = _find(inner, TrafficSelectorsInitiator)
        tsr = _find(inner, TrafficSelectorsResponder)
        if chosen is None:
            if sa is None or len(sa.proposals) != 1 or tsi is None or tsr is None:
                self._events.append(
                    NegotiationFailed(
                        self.ike_spis, now, exchange, "Child SA answer lacks SA or TS", None, True
                    )
                )
                return None
            esp = self._esp_specs
            chosen = check_chosen(sa.proposals[0], esp, skip_ke=skip_ke)
            if chosen is None:
                self._events.append(
                    NegotiationFailed(
                        self.ike_spis,
                        now,
                        exchange,
                        "peer chose an ESP proposal we did not offer",
                        None,
                        True,
                    )
                )
                return None
        local = tsi.selectors if tsi is not None else selectors(self.config.local_ts)
        remote = tsr.selectors if tsr is not None else selectors(self.config.remote_ts)
        return ChildSa(
            spi_in,
            chosen.spi,
            str(chosen),
            keymat.child_keys(keys, cipher_suite(chosen), ni, nr, secrets),
            True,
            ts_text(local),
            ts_text(remote),
        )

    def _established(self, now: float) -> None:
        self.state = State.ESTABLISHED
        self.established_at = now
        self._events.append(
            IkeSaEstablished(
                self.ike_spis,
                self.initiator,
                now,
                self._round_trips,
                tuple(self._ke_methods),
                str(self._gen.proposal),
                self.nat_detected,
                NAT_T_PORT if self._floated else 500,
            )
        )

    def _install_child(self, child: ChildSa, now: float) -> None:
        self.children[child.spi_in] = child
        self._events.append(
            ChildSaEstablished(
                self.ike_spis, child.spis, now, child.proposal, (child.local_ts, child.remote_ts)
            )
        )

    # --- CREATE_CHILD_SA and IKE_FOLLOWUP_KE (RFC 7296 §1.3, RFC 9370 §2.2.3-2.2.4) --

    def _start_child_rekey(self, child: ChildSa, now: float, ke: str | None = None) -> None:
        esp = self._esp_specs
        run = _Rekey(
            "child",
            True,
            self._new_child_spi(),
            self._random(self.config.nonce_bytes),
            old_child=child,
            local_ts=child.local_ts,
            remote_ts=child.remote_ts,
        )
        ops: list[CryptoOp] = []
        payloads: list[Payload] = [
            Notify(NotifyType.REKEY_SA, protocol=ProtocolId.ESP, spi=child.spi_in),
            sa_payload(esp, spi=run.new_spi),
            Nonce(run.nonce),
        ]
        tokens = ke_tokens(esp)
        if tokens:  # PFS (RFC 7296 §1.3.1): KEi for the first proposal's method
            payloads.append(self._rekey_ke(run, ke or tokens[0], ops))
        payloads += [
            TrafficSelectorsInitiator(selectors(child.local_ts)),
            TrafficSelectorsResponder(selectors(child.remote_ts)),
        ]
        self._rekey = run
        self._request(
            self._gen,
            ExchangeType.CREATE_CHILD_SA,
            payloads,
            now,
            self._on_create_child_sa_response,
            ops,
        )

    def _start_ike_rekey(self, now: float, ke: str | None = None) -> None:
        run = _Rekey("ike", True, self._new_ike_spi(), self._random(self.config.nonce_bytes))
        ops: list[CryptoOp] = []
        payloads: list[Payload] = [
            sa_payload(self._offer(), spi=run.new_spi),
            Nonce(run.nonce),
            self._rekey_ke(run, ke or methods_of(self._gen.proposal)[0], ops),
        ]
        self._rekey = run
        self._request(
            self._gen,
            ExchangeType.CREATE_CHILD_SA,
            payloads,
            now,
            self._on_create_child_sa_response,
            ops,
        )

    def _rekey_ke(self, run: _Rekey, token: str, ops: list[CryptoOp]) -> KeyExchange:
        kex = self._kex(token)
        run.pending = kex.initiate()
        run.methods = [token]
        ops.append((token, "initiate"))
        return KeyExchange(kex.method_id, run.pending.share)

    def _on_create_child_sa_request(self, gen, message, inner, now) -> None:
        if self._rekey is not None:
            # Simultaneous rekeys: refuse; both sides retry later (RFC 7296 §2.25).
            self._respond(gen, message, [Notify(NotifyType.TEMPORARY_FAILURE)], now)
            return
        # With one request in flight per direction, a new CREATE_CHILD_SA means the peer
        # abandoned any run of IKE_FOLLOWUP_KE exchanges it had started with us.
        self._peer_rekey = None
        rekey_sa = _find_notify(inner, NotifyType.REKEY_SA)
        sa = _find(inner, SecurityAssociation)
        nonce = _find(inner, Nonce)
        if sa is None or nonce is None:
            raise _Violation("CREATE_CHILD_SA lacks SA or Nonce")
        is_ike = bool(sa.proposals) and sa.proposals[0].protocol == ProtocolId.IKE
        ops: list[CryptoOp] = []
        if is_ike:
            offer = self._offer()
            chosen = select(
                sa.proposals,
                offer,
                require_pq=self.config.require_pq,
                allow_addke=True,
            )
            run = _Rekey("ike", False, self._new_ike_spi(), self._random(self.config.nonce_bytes))
        else:
            old = None
            if rekey_sa is not None:
                old = next((c for c in self.children.values() if c.spi_out == rekey_sa.spi), None)
                if old is None:
                    self._respond(
                        gen,
                        message,
                        [
                            Notify(
                                NotifyType.CHILD_SA_NOT_FOUND,
                                protocol=ProtocolId.ESP,
                                spi=rekey_sa.spi,
                            )
                        ],
                        now,
                    )
                    return
            if old is not None and old.spi_in in self._superseded:
                # RFC 7296 §2.25.1: this Child SA is already replaced and being deleted.
                self._respond(gen, message, [Notify(NotifyType.TEMPORARY_FAILURE)], now)
                return
            offer = self._esp_specs
            chosen = select(sa.proposals, offer, ke_method=_ke_method(inner))
            run = _Rekey(
                "child",
                False,
                self._new_child_spi(),
                self._random(self.config.nonce_bytes),
                old_child=old,
            )
        if chosen is None:
            self._respond(gen, message, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], now)
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "CREATE_CHILD_SA",
                    "no acceptable proposal",
                    "NO_PROPOSAL_CHOSEN",
                    True,
                )
            )
            return
        methods = methods_of(chosen)
        ke = _find(inner, KeyExchange)
        payloads: list[Payload] = [
            sa_payload([chosen], spi=run.new_spi),
            Nonce(run.nonce),
        ]
        if methods:
            kex = self._kex(methods[0])
            if ke is None or ke.method != kex.method_id:
                self._respond(
                    gen,
                    message,
                    [Notify(NotifyType.INVALID_KE_PAYLOAD, kex.method_id.to_bytes(2, "big"))],
                    now,
                )
                return
            ops.append((methods[0], "respond"))
            try:
                share, secret = kex.respond(ke.data)
            except KeyExchangeError as error:
                self._respond(gen, message, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
                self._events.append(
                    NegotiationFailed(
                        gen.spis,
                        now,
                        "CREATE_CHILD_SA",
                        f"invalid KEi: {error}",
                        "INVALID_SYNTAX",
                        True,
                    )
                )
                return
            payloads.append(KeyExchange(kex.method_id, share))
            run.secrets.append(secret)
        run.proposal = chosen
        run.methods = list(methods)
        run.peer_spi = chosen.spi
        run.peer_nonce = nonce.data
        if not is_ike:
            tsi = _find(inner, TrafficSelectorsInitiator)
            tsr = _find(inner, TrafficSelectorsResponder)
            remote = narrow(selectors(self.config.remote_ts), tsi.selectors if tsi else ())
            local = narrow(selectors(self.config.local_ts), tsr.selectors if tsr else ())
            if not remote or not local:
                self._respond(gen, message, [Notify(NotifyType.TS_UNACCEPTABLE)], now, ops)
                return
            run.local_ts, run.remote_ts = ts_text(local), ts_text(remote)
            payloads += [TrafficSelectorsInitiator(remote), TrafficSelectorsResponder(local)]
        remaining = methods[1:] if methods else []
        if remaining:
            run.link = self._random(1)
            payloads.append(Notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, run.link))
            self._peer_rekey = run
            self._respond(gen, message, payloads, now, ops)
        else:
            self._respond(gen, message, payloads, now, ops)
            self._complete_rekey(run, now)

    def _on_create_child_sa_response(self, gen, message, inner, now) -> None:
        run = self._rekey
        req = self._responding_to
        if run is None:
            return
        error = _error_notify(inner)
        if error is not None:
            self._rekey = None
            if error.type == NotifyType.INVALID_KE_PAYLOAD and len(error.data) >= 2:
                # RFC 7296 §1.3: retry once with the method the responder asks for,
                # if we offered it (INVALID_KE concerns KE(0) only, RFC 9370 §2.2.3).
                wanted = int.from_bytes(error.data[:2], "big")
                specs = self._offer() if run.kind == "ike" else self._esp_specs
                token = next(
                    (t for t in ke_tokens(specs) if self._kex(t).method_id == wanted),
                    None,
                )
                offered = run.methods[0] if run.methods else ""
                if token is not None and token != offered:
                    self._events.append(
                        KeyExchangeRedirected(gen.spis, now, "CREATE_CHILD_SA", token, offered)
                    )
                    if run.kind == "ike":
                        self._start_ike_rekey(now, ke=token)
                    elif run.old_child is not None and run.old_child.spi_in in self.children:
                        self._start_child_rekey(run.old_child, now, ke=token)
                    return
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "CREATE_CHILD_SA",
                    f"peer refused the {run.kind} rekey",
                    name_of(NotifyType, error.type),
                    False,
                )
            )
            if error.type == NotifyType.TEMPORARY_FAILURE:
                self._schedule_retry(run, now)
            return
        sa = _find(inner, SecurityAssociation)
        nonce = _find(inner, Nonce)
        if sa is None or nonce is None or len(sa.proposals) != 1:
            self._rekey = None
            raise _Violation("CREATE_CHILD_SA response lacks SA or Nonce", None)
        offer = self._offer() if run.kind == "ike" else self._esp_specs
        chosen = check_chosen(sa.proposals[0], offer)
        if chosen is None:
            self._rekey = None
            raise _Violation("peer chose a proposal we did not offer", None)
        methods = methods_of(chosen)
        run.proposal, run.peer_spi, run.peer_nonce = chosen, chosen.spi, nonce.data
        if methods:
            ke = _find(inner, KeyExchange)
            if not run.methods or run.methods[0] != methods[0] or ke is None:
                self._rekey = None
                raise _Violation("peer's KE does not match the chosen proposal", None)
            req.ops.append((methods[0], "finish"))
            try:
                run.secrets.append(run.pending.finish(ke.data))
            except KeyExchangeError as error:
                self._abort_rekey_with_delete(f"invalid KEr: {error}", now)
                return
        if run.kind == "child":
            tsi = _find(inner, TrafficSelectorsInitiator)
            tsr = _find(inner, TrafficSelectorsResponder)
            run.local_ts = ts_text(tsi.selectors) if tsi else run.local_ts
            run.remote_ts = ts_text(tsr.selectors) if tsr else run.remote_ts
        run.methods = list(methods)
        link = _find_notify(inner, NotifyType.ADDITIONAL_KEY_EXCHANGE)
        if len(methods) > 1:
            if link is None:
                self._rekey = None
                raise _Violation("additional key exchanges chosen but no link notify", None)
            run.link = link.data
            self._send_followup(run, 1, now)
        else:
            self._complete_rekey(run, now)

    def _send_followup(self, run: _Rekey, index: int, now: float) -> None:
        token = run.methods[index]
        ops: list[CryptoOp] = []
        kex = self._kex(token)
        run.pending = kex.initiate()
        ops.append((token, "initiate"))
        payloads = [
            KeyExchange(kex.method_id, run.pending.share),
            Notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, run.link),
        ]
        self._request(
            self._gen,
            ExchangeType.IKE_FOLLOWUP_KE,
            payloads,
            now,
            self._on_followup_ke_response,
            ops,
        )

    def _on_followup_ke_request(self, gen, message, inner, now) -> None:
        run = self._peer_rekey
        link = _find_notify(inner, NotifyType.ADDITIONAL_KEY_EXCHANGE)
        if run is None or link is None or link.data != run.link:
            # RFC 9370 §2.2.3: unknown or missing link.
            self._respond(gen, message, [Notify(NotifyType.STATE_NOT_FOUND)], now)
            return
        index = len(run.secrets)
        token = run.methods[index]
        kex = self._kex(token)
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != kex.method_id:
            raise _Violation(f"IKE_FOLLOWUP_KE must carry KE({token})")
        ops: list[CryptoOp] = [(token, "respond")]
        try:
            share, secret = kex.respond(ke.data)
        except KeyExchangeError as error:
            self._peer_rekey = None
            self._respond(gen, message, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "IKE_FOLLOWUP_KE",
                    f"invalid KEi: {error}",
                    "INVALID_SYNTAX",
                    True,
                )
            )
            return
        run.secrets.append(secret)
        payloads: list[Payload] = [KeyExchange(kex.method_id, share)]
        if len(run.secrets) < len(run.methods):
            run.link = self._random(1)
            payloads.append(Notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, run.link))
            self._respond(gen, message, payloads, now, ops)
        else:
            self._peer_rekey = None
            self._respond(gen, message, payloads, now, ops)
            self._complete_rekey(run, now)

    def _on_followup_ke_response(self, gen, message, inner, now) -> None:
        run = self._rekey
        req = self._responding_to
        if run is None:
            return
        error = _error_notify(inner)
        if error is not None:
            self._rekey = None
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "IKE_FOLLOWUP_KE",
                    f"peer refused the {run.kind} rekey",
                    name_of(NotifyType, error.type),
                    False,
                )
            )
            return
        index = len(run.secrets)
        token = run.methods[index]
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != self._kex(token).method_id:
            self._rekey = None
            raise _Violation(f"IKE_FOLLOWUP_KE response must carry KE({token})", None)
        req.ops.append((token, "finish"))
        try:
            run.secrets.append(run.pending.finish(ke.data))
        except KeyExchangeError as error:
            self._abort_rekey_with_delete(f"invalid KEr({token}): {error}", now)
            return
        if len(run.secrets) < len(run.methods):
            link = _find_notify(inner, NotifyType.ADDITIONAL_KEY_EXCHANGE)
            if link is None:
                self._rekey = None
                raise _Violation("more key exchanges pending but no link notify", None)
            run.link = link.data
            self._send_followup(run, len(run.secrets), now)
        else:
            self._complete_rekey(run, now)

    def _abort_rekey_with_delete(self, reason: str, now: float) -> None:
        """draft-ietf-ipsecme-ikev2-mlkem §3: a bad ciphertext in a rekey deletes the IKE SA."""
        self._rekey = None
        self._events.append(
            NegotiationFailed(self.ike_spis, now, "CREATE_CHILD_SA", reason, None, True)
        )
        self._queue.appendleft(("delete", None))

    def _complete_rekey(self, run: _Rekey, now: float) -> None:
        """Derive the new keys once every exchange of the run is done (strongSwan)."""
        gen = self._gen
        if run.requester:
            self._rekey = None
            ni, nr = run.nonce, run.peer_nonce
        else:
            ni, nr = run.peer_nonce, run.nonce
        if run.kind == "child":
            initiator = run.requester
            child = ChildSa(
                run.new_spi,
                run.peer_spi,
                str(run.proposal),
                keymat.child_keys(gen.keys, cipher_suite(run.proposal), ni, nr, run.secrets),
                initiator,
                run.local_ts or (run.old_child.local_ts if run.old_child else ()),
                run.remote_ts or (run.old_child.remote_ts if run.old_child else ()),
            )
            self.children[child.spi_in] = child
            if run.old_child is not None:
                self._superseded.add(run.old_child.spi_in)
                self._events.append(
                    ChildSaRekeyed(
                        gen.spis, run.old_child.spis, child.spis, now, tuple(run.methods)
                    )
                )
                if run.requester:
                    self._queue.appendleft(("delete_child", run.old_child.spi_in))
            else:
                self._install_child(child, now)
            return
        spi_i, spi_r = (run.new_spi, run.peer_spi) if run.requester else (run.peer_spi, run.new_spi)
        new = _Generation(spi_i, spi_r, run.requester, proposal=run.proposal)
        new.keys = keymat.rekeyed_keys(
            gen.keys, ike_suite(run.proposal), run.secrets, ni, nr, spi_i, spi_r
        )
        self.key_sets.append(KeySet(spi_i, spi_r, new.keys, "IKE rekey"))
        gen.retired = True
        self._old_gens.append(gen)
        self._gen = new
        self._ke_methods = list(run.methods)
        self._events.append(IkeSaRekeyed(gen.spis, new.spis, now, tuple(run.methods)))
        if run.requester:
            # RFC 7296 §1.3.2: the rekey's initiator deletes the old IKE SA.
            self._request(
                gen,
                ExchangeType.INFORMATIONAL,
                [Delete(ProtocolId.IKE)],
                now,
                self._on_old_sa_deleted,
            )

    def _on_old_sa_deleted(self, gen, message, inner, now) -> None:
        self._retire(gen, now, by_peer=False)

    def _retire(self, gen: _Generation, now: float, *, by_peer: bool) -> None:
        """Forget an old IKE SA; a request of ours still pending on it moves to the new
        SA (a Child SA Delete or liveness check), or its rekey run starts over."""
        if gen in self._old_gens:
            self._old_gens.remove(gen)
        req, gen.outstanding = gen.outstanding, None
        if req is not None and req.command is not None:
            self._queue.appendleft(req.command)
        elif (
            req is not None
            and self._rekey is not None
            and req.exchange
            in (
                ExchangeType.CREATE_CHILD_SA,
                ExchangeType.IKE_FOLLOWUP_KE,
            )
        ):
            run, self._rekey = self._rekey, None
            child = run.old_child.spi_in if run.old_child is not None else None
            self._queue.appendleft(("child", child) if run.kind == "child" else ("ike", None))
        self._events.append(IkeSaDeleted(gen.spis, now, by_peer, "rekeyed"))
        self._pump(now)

    def _schedule_retry(self, run: _Rekey, now: float) -> None:
        """Retry a rekey refused with TEMPORARY_FAILURE after a role-dependent random
        back-off, so two colliding rekeys cannot collide forever."""
        u = int.from_bytes(self._random(2), "big") / 65536
        base = 1.0 if self._gen.original_initiator else 2.0
        self._retry_at = now + base * (1.0 + u)
        child = run.old_child.spi_in if run.old_child is not None else None
        self._retry_cmd = ("child", child) if run.kind == "child" else ("ike", None)

    # --- INFORMATIONAL (RFC 7296 §1.4) ---------------------------------------------

    def _on_informational_request(self, gen, message, inner, now) -> None:
        deletes = [p for p in inner if isinstance(p, Delete)]
        if any(d.protocol == ProtocolId.IKE for d in deletes):
            self._respond(gen, message, [], now)
            if gen.retired:
                self._retire(gen, now, by_peer=True)
            else:
                self._close(now, IkeSaDeleted(gen.spis, now, True, "delete"))
            return
        ours = []
        for d in deletes:
            if d.protocol != ProtocolId.ESP:
                continue
            for spi in d.spis:
                child = next((c for c in self.children.values() if c.spi_out == spi), None)
                if child is not None:
                    del self.children[child.spi_in]
                    self._superseded.discard(child.spi_in)
                    ours.append(child.spi_in)
                    self._events.append(ChildSaDeleted(gen.spis, child.spis, now, True))
        payloads = [Delete(ProtocolId.ESP, tuple(ours))] if ours else []
        if _find_notify(inner, NotifyType.AUTHENTICATION_FAILED) is not None:
            self._respond(gen, message, payloads, now)
            self._close(
                now, AuthenticationFailed(gen.spis, now, False, "peer sent AUTHENTICATION_FAILED")
            )
            return
        self._respond(gen, message, payloads, now)

    def _on_liveness_response(self, gen, message, inner, now) -> None:
        """The peer is alive; nothing else to do."""

    def _on_delete_response(self, gen, message, inner, now) -> None:
        self._close(now, IkeSaDeleted(gen.spis, now, False, "delete"))

    def _on_child_delete_response(self, gen, message, inner, now) -> None:
        """RFC 7296 §1.4.1: once answered, the Child SA is gone on both ends — also when
        the peer had already dropped its half (an earlier answer was lost) and lists none."""
        _, spi_in = self._responding_to.command
        gone = {spi_in} if spi_in in self.children else set()
        for d in (p for p in inner if isinstance(p, Delete)):
            gone |= {c.spi_in for c in self.children.values() if c.spi_out in d.spis}
        for spi in sorted(gone):
            child = self.children.pop(spi)
            self._superseded.discard(spi)
            self._events.append(ChildSaDeleted(gen.spis, child.spis, now, False))

    def _kex(self, token: str) -> Any:
        """The key exchange of a method token (`kex_factory` is asked once per method)."""
        kex = self._kexes.get(token)
        if kex is None:
            kex = self._kexes[token] = self._kex_factory(token)
        return kex

    # --- randomness ----------------------------------------------------------------

    def _new_ike_spi(self) -> bytes:
        # Non-zero first 4 bytes keep IKE distinguishable from the non-ESP marker.
        while True:
            spi = self._random(8)
            if spi[:4] != bytes(4):
                return spi

    def _new_child_spi(self) -> bytes:
        while True:
            spi = self._random(4)
            if int.from_bytes(spi, "big") > 255:  # RFC 4303 §2.1: 1..255 reserved
                return spi


def _ke_method(payloads) -> int | None:
    ke = _find(payloads, KeyExchange)
    return None if ke is None else ke.method


def _find(payloads, cls):
    return next((p for p in payloads if isinstance(p, cls)), None)


def _find_notify(payloads, notify_type: int) -> Notify | None:
    return next((p for p in payloads if isinstance(p, Notify) and p.type == notify_type), None)


def _error_notify(payloads) -> Notify | None:
    return next((p for p in payloads if isinstance(p, Notify) and 0 < p.type < 16384), None)


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _describe(payloads, exchange: int) -> str:
    names = ", ".join(describe_payload(p) for p in payloads)
    if exchange == ExchangeType.IKE_SA_INIT:
        return names
    return "SK{" + names + "}"


__all__ = ["Addr", "ChildSa", "IkeSa", "IkeStateError", "KeySet", "State", "WireMessage"]
