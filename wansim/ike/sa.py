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
(recognised by its raw datagram, fragment 1 only) arrives again — which also
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

Where things are: this module holds the driver-facing API, the command queue and
randomness; `IkeSa` gets the rest from one mixin per job: `sa_transport` (receive and
send paths, dispatch, response cache, fragments), `sa_handshake` (IKE_SA_INIT,
IKE_INTERMEDIATE, IKE_AUTH), `sa_rekey` (CREATE_CHILD_SA, IKE_FOLLOWUP_KE) and
`sa_informational` (liveness, Delete); `sa_records` holds the records they share.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

from wansim.crypto import get_kex
from wansim.ike import keymat
from wansim.ike.config import IkeConfig
from wansim.ike.constants import ExchangeType, ProtocolId, name_of
from wansim.ike.events import Event, IkeSaDeleted, PeerDeclaredDead, RequestRetransmitted
from wansim.ike.negotiation import ke_tokens
from wansim.ike.payloads import Delete
from wansim.ike.sa_handshake import _Handshake
from wansim.ike.sa_informational import _Informational
from wansim.ike.sa_records import (
    _ZERO_SPI,
    Addr,
    ChildSa,
    IkeStateError,
    KeySet,
    RandomBytes,
    State,
    WireMessage,
    _fixed_for,
    _Generation,
    _Outbox,
    _Rekey,
)
from wansim.ike.sa_rekey import _Rekeys
from wansim.ike.sa_transport import _Transport
from wansim.ike.timers import RetransmitSchedule

# Bound once: attribute access on an Enum class is slow in Python 3.11, and drivers ask
# for the timer after every datagram.
_CLOSED = State.CLOSED
_ESTABLISHED = State.ESTABLISHED
_INFORMATIONAL = ExchangeType.INFORMATIONAL
_ESP, _IKE = ProtocolId.ESP, ProtocolId.IKE


class IkeSa(_Transport, _Handshake, _Rekeys, _Informational, _Outbox):
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
        self._fixed = _fixed_for(config)
        self._schedule: RetransmitSchedule = self._fixed.schedule
        self._ike_specs = config.ike_specs
        self._esp_specs = config.esp_specs
        # One key exchange object per method, made now: BackendUnavailable here, not
        # mid-handshake (and no factory call on every message).
        self._kexes = {t: factory(t) for t in self._fixed.ke_tokens}
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
        return self.state is _ESTABLISHED

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
        self._receive_routed(bytes(data), addr, now, None)

    def get_timer(self) -> float | None:
        """The next instant `handle_timer` has work to do, or None."""
        if self.state is _CLOSED:
            return None
        req = self._gen.outstanding
        at = None if req is None else req.deadline
        if not (
            self._old_gens
            or self._retry_at is not None
            or (self.established_at is None and not self.initiator)
        ):
            return at  # the usual case: at most the current request's deadline
        deadlines = [] if at is None else [at]
        for gen in self._old_gens:
            req = gen.outstanding
            if req is not None:
                deadlines.append(req.deadline)
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
            if now < req.deadline:
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
            req.deadline = self._schedule.deadline_at(req.first_sent_at, req.transmissions)
            self._emit(gen, req.exchange, req.mid, False, req.datagrams, now, again=True)
            self._events.append(
                RequestRetransmitted(
                    name_of(ExchangeType, req.exchange), req.mid, req.transmissions, now
                )
            )
        if self._retry_at is not None and now >= self._retry_at:
            cmd, self._retry_cmd, self._retry_at = self._retry_cmd, None, None
            if cmd is not None and self.state is _ESTABLISHED:
                self._queue.append(cmd)
                self._pump(now)

    # --- commands ------------------------------------------------------------------

    def _command(self, kind: str, arg: Any, now: float) -> None:
        if self.state is not _ESTABLISHED:
            raise IkeStateError(f"{kind} needs an established IKE SA, state is {self.state.value}")
        if kind in ("child", "delete_child") and not self.children:
            raise IkeStateError("there is no Child SA to rekey or delete")
        self._queue.append((kind, arg))
        self._pump(now)

    def _pump(self, now: float) -> None:
        """Start the next queued command once no request of ours is outstanding."""
        while (
            self._queue
            and self.state is _ESTABLISHED
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
                req = self._request(self._gen, _INFORMATIONAL, [], now, self._on_liveness_response)
                req.command = (kind, arg)
            elif kind == "delete":
                self._request(
                    self._gen,
                    _INFORMATIONAL,
                    [Delete(_IKE)],
                    now,
                    self._on_delete_response,
                )
            elif kind == "delete_child" and arg in self.children:
                req = self._request(
                    self._gen,
                    _INFORMATIONAL,
                    [Delete._unchecked(_ESP, (arg,))],  # one SPI: nothing to check
                    now,
                    self._on_child_delete_response,
                )
                req.command = (kind, arg)

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


__all__ = ["Addr", "ChildSa", "IkeSa", "IkeStateError", "KeySet", "State", "WireMessage"]
