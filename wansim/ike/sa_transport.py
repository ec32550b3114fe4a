"""Moving IKE messages for an `IkeSa`: the receive path (SPI demultiplexing, request
dispatch by state and exchange type, SK/SKF opening and fragment reassembly, the
response cache that answers retransmitted requests) and the send path (building,
protecting and fragmenting messages, the outstanding request, error notifies)."""

from __future__ import annotations

import functools

from wansim.crypto import KeyExchangeError
from wansim.ike import keymat, protection
from wansim.ike.constants import NAT_T_PORT, NON_ESP_MARKER, ExchangeType, NotifyType, name_of
from wansim.ike.errors import ParseError, UnsupportedCriticalPayload
from wansim.ike.events import CryptoOp, DatagramDropped, Event, ExchangeCompleted, NegotiationFailed
from wansim.ike.message import (
    IkeHeader,
    Message,
    header_bytes,
    message_payloads,
    parse_payload_chain,
    serialize_payload_chain,
)
from wansim.ike.payloads import Encrypted, EncryptedFragment, Notify, Payload
from wansim.ike.sa_records import (
    _INITIATOR,
    _RESPONSE,
    _ZERO_SPI,
    Addr,
    State,
    WireMessage,
    _Cached,
    _describe,
    _Generation,
    _packed,
    _Request,
    _Violation,
)

# Bound once: attribute access on an Enum class is slow in Python 3.11 (EnumType has a
# __getattr__), and these are tested for every datagram.
_ENCRYPTED = (Encrypted, EncryptedFragment)
_IKE_SA_INIT = ExchangeType.IKE_SA_INIT
_IKE_INTERMEDIATE = ExchangeType.IKE_INTERMEDIATE
_CLOSED = State.CLOSED
_REKEYED = State.REKEYED

# Keyed by the state's value: hashing an Enum member runs Python code (Enum.__hash__).
_REQUEST_HANDLERS: dict[tuple[str, int], str] = {
    (State.IDLE.value, ExchangeType.IKE_SA_INIT): "_on_sa_init_request",
    (State.INTERMEDIATE.value, ExchangeType.IKE_INTERMEDIATE): "_on_intermediate_request",
    (State.AUTH.value, ExchangeType.IKE_AUTH): "_on_auth_request",
    (State.ESTABLISHED.value, ExchangeType.CREATE_CHILD_SA): "_on_create_child_sa_request",
    (State.ESTABLISHED.value, ExchangeType.IKE_FOLLOWUP_KE): "_on_followup_ke_request",
    (State.ESTABLISHED.value, ExchangeType.INFORMATIONAL): "_on_informational_request",
    (State.REKEYED.value, ExchangeType.INFORMATIONAL): "_on_informational_request",
}


def _bind_channels(gen: _Generation) -> None:
    """SK channels for `gen`'s current keys: ours (SK_ei/ai when we are the original
    initiator) and the peer's."""
    k = gen.keys
    cipher = k.suite.cipher
    ours, theirs = ((k.ei, k.ai), (k.er, k.ar))[:: 1 if gen.original_initiator else -1]
    gen.sealer = protection.SkChannel(cipher, *ours)
    gen.opener = protection.SkChannel(cipher, *theirs)
    gen.channels_of = k


def _flags(gen: _Generation, response: bool) -> int:
    """The header flags of a message we send on `gen` (RFC 7296 §3.1)."""
    return (_INITIATOR if gen.original_initiator else 0) | (_RESPONSE if response else 0)


@functools.lru_cache(maxsize=64)
def _max_message_bytes(fragment_size: int, address_bytes: int, nat_t: bool) -> int:
    """`protection.max_message_bytes` for a peer address of `address_bytes` (memoised: the
    send path asks for every message)."""
    ip_version = 6 if address_bytes == 16 else 4
    return protection.max_message_bytes(fragment_size, ip_version=ip_version, nat_t=nat_t)


class _Transport:
    """Mixin of `IkeSa`: how requests and responses travel; no exchange logic."""

    # --- receive path --------------------------------------------------------------

    def _receive_routed(
        self, data: bytes, addr: Addr, now: float, header: IkeHeader | None
    ) -> None:
        """`receive_datagram`; `header` is the datagram's IKE header when the caller (a
        gateway routing it) has parsed it already. Malformed input is dropped."""
        try:
            if self.state is _CLOSED:
                self._drop(now, "sa_closed", len(data))
                return
            marker = data[:4] == NON_ESP_MARKER
            if data == b"\xff":
                self._drop(now, "nat_keepalive", 1)
                return
            ike = bytes(data[4:] if marker else data)
            if header is None:
                header = IkeHeader.from_bytes(ike)
            payloads = message_payloads(ike, header)
            gen = self._gen
            if gen.original_initiator:  # the usual case: our SPI names the current generation
                if header.spi_i != gen.spi_i:
                    gen = self._generation_for(header)
            elif header.spi_r != gen.spi_r or gen.spi_r == _ZERO_SPI:
                gen = self._generation_for(header)
            if gen is None:
                self._drop(now, "unknown_spi", len(data), header_spis=(header.spi_i, header.spi_r))
                return
            if bool(header.flags & _INITIATOR) == gen.original_initiator:
                self._drop(now, "wrong_initiator_flag", len(data), header_spis=gen.spis)
                return
            if header.flags & _RESPONSE:
                self._receive_response(gen, header, payloads, ike, now)
            else:
                self._receive_request(gen, header, payloads, ike, addr, marker, now)
        except ParseError as error:
            self._drop(now, "parse_error", len(data), str(error))

    def _generation_for(self, header: IkeHeader) -> _Generation | None:
        """The key generation a message belongs to, by our own SPI in its header."""
        for gen in (self._gen, *self._old_gens) if self._old_gens else (self._gen,):
            if gen.original_initiator:
                if header.spi_i == gen.spi_i:
                    return gen
            elif header.spi_r == gen.spi_r and gen.spi_r != _ZERO_SPI:
                return gen
            elif header.spi_r == _ZERO_SPI and gen.spi_i in (header.spi_i, _ZERO_SPI):
                return gen  # IKE_SA_INIT request (or its retransmission)
        return None

    def _receive_response(self, gen: _Generation, header: IkeHeader, payloads, ike: bytes, now):
        req = gen.outstanding
        if req is None or header.message_id != req.mid or header.exchange_type != req.exchange:
            self._drop(now, "unexpected_response", len(ike), header_spis=gen.spis)
            return
        if header.exchange_type == _IKE_SA_INIT:
            inner, ap, total, count = payloads, b"", len(ike), 1
            req.response = ike
        else:
            opened = self._open(gen, header, payloads, ike, now)
            if opened is None:
                return
            inner, ap, total, count = opened
        gen.outstanding = None
        self._round_trips += 1
        mark = len(self._events)
        req.response_ap = ap
        self._responding_to = req
        try:
            req.on_response(gen, header, inner, now)
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
            sum(map(len, req.datagrams)),
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
        if self._queue:  # else _pump has nothing to start
            self._pump(now)

    def _receive_request(
        self, gen: _Generation, header: IkeHeader, payloads, ike: bytes, addr, marker, now
    ) -> None:
        mid = header.message_id
        last = payloads[-1] if payloads else None
        fragment = last if isinstance(last, EncryptedFragment) else None
        if gen.cache is not None and mid == gen.cache.mid:
            if ike == gen.cache.request:
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
        state = _REKEYED if gen.retired else self.state
        handler_name = _REQUEST_HANDLERS.get((state._value_, header.exchange_type))
        if header.exchange_type == _IKE_SA_INIT:
            if handler_name is None:
                self._drop(now, "unexpected_exchange", len(ike), header_spis=gen.spis)
                return
            inner, ap, total, count, first = payloads, b"", len(ike), 1, ike
        else:
            if gen.keys is None:
                self._drop(now, "no_keys", len(ike), header_spis=gen.spis)
                return
            if fragment is not None and fragment.fragment_number == 1:
                gen.first_fragment[(mid, False)] = ike
            opened = self._open(gen, header, payloads, ike, now)
            if opened is None:
                return
            inner, ap, total, count = opened
            first = gen.first_fragment.pop((mid, False), ike) if fragment is not None else ike
        # An authentic request: replies go where it came from (RFC 7296 §2.11).
        self.remote_addr = addr
        if marker:
            self._floated = True
        self._current = (gen, header, first, total, count, ap)
        if handler_name is None:
            self._refuse(
                gen,
                header,
                now,
                f"{name_of(ExchangeType, header.exchange_type)} "
                f"request not allowed in state {state.value}",
                NotifyType.INVALID_SYNTAX,
            )
            return
        try:
            getattr(self, handler_name)(gen, header, inner, now)
        except _Violation as violation:
            self._refuse(gen, header, now, violation.reason, violation.notify)
        except keymat.KeyScheduleError as error:
            self._refuse(gen, header, now, str(error), NotifyType.INVALID_SYNTAX)
        if self._queue:  # else _pump has nothing to start
            self._pump(now)

    def _open(self, gen: _Generation, header: IkeHeader, payloads, ike: bytes, now: float):
        """Decrypt an SK message or add an SKF fragment (`payloads`: the message's cleartext
        ones); (inner, A|P, bytes, datagrams) once complete, None while fragments are
        missing or when the datagram is dropped."""
        if not payloads or not isinstance(payloads[-1], _ENCRYPTED):
            self._drop(now, "unprotected_message", len(ike), header_spis=gen.spis)
            return None
        key = (header.message_id, bool(header.flags & _RESPONSE))
        if gen.channels_of is not gen.keys:
            _bind_channels(gen)
        try:
            opened = gen.opener.open(ike)
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
            self._current = (gen, header, first, len(ike), 1, b"")
            self._respond(gen, header, [Notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
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
        if header.exchange_type == _IKE_INTERMEDIATE:
            ap = opened.int_auth_chunk()
        return inner, ap, total, count

    # --- send path -----------------------------------------------------------------

    def _header(self, gen: _Generation, exchange: int, mid: int, response: bool) -> IkeHeader:
        return IkeHeader(gen.spi_i, gen.spi_r, exchange, _flags(gen, response), mid)

    def _build(self, gen, exchange, mid, response, payloads) -> tuple[list[bytes], bytes]:
        """IKE messages for `payloads` (fragmented when needed) and their RFC 9242 A|P."""
        if exchange == _IKE_SA_INIT:
            header = self._header(gen, exchange, mid, response)
            return [Message(header, tuple(payloads)).to_bytes()], b""
        flags = _flags(gen, response)
        if gen.channels_of is not gen.keys:
            _bind_channels(gen)
        first_inner, inner = serialize_payload_chain(payloads)
        limit = None
        if self.config.fragmentation and self._peer_frag:
            limit = _max_message_bytes(
                self.config.fragment_size, len(_packed(self.remote_addr[0])), self._floated
            )
        messages = gen.sealer.seal(
            gen.spi_i, gen.spi_r, exchange, flags, mid, first_inner, inner, self._random, limit
        )
        ap = b""
        if exchange == _IKE_INTERMEDIATE:
            header = header_bytes(gen.spi_i, gen.spi_r, exchange, flags, mid)
            ap = protection.int_auth_chunk(header, first_inner, inner)
        return messages, ap

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
        req.deadline = self._schedule.deadline_at(now, 1)
        gen.outstanding = req
        self._emit(gen, exchange, mid, False, datagrams, now, payloads)
        return req

    def _respond(
        self,
        gen: _Generation,
        header: IkeHeader,
        payloads: list[Payload],
        now: float,
        ops: list[CryptoOp] | None = None,
        *,
        keys_gen: _Generation | None = None,
    ) -> tuple[list[bytes], bytes]:
        """Send the response to the request being handled (its header `header`) and cache
        it for retransmits."""
        _, _, request, total, count, _ = self._current
        datagrams, ap = self._build(
            keys_gen or gen, header.exchange_type, header.message_id, True, payloads
        )
        mid, exchange = header.message_id, header.exchange_type
        gen.peer_mid = mid + 1
        if gen.reassembly:
            for key in [k for k in gen.reassembly if not k[1] and k[0] <= mid]:
                del gen.reassembly[key]  # fragments of requests that are answered now
                gen.fragment_bytes.pop(key, None)
        if self.established_at is None:
            self._round_trips += 1
        gen.cache = _Cached(mid, request, datagrams)
        self._emit(gen, exchange, mid, True, datagrams, now, payloads)
        self._events.append(
            ExchangeCompleted(
                name_of(ExchangeType, exchange),
                mid,
                "responder",
                total,
                sum(map(len, datagrams)),
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
        port_4500 = self._floated and exchange != _IKE_SA_INIT
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

    def _refuse(self, gen, header, now, reason, notify) -> None:
        """Answer a protocol violation with an error notify and report it."""
        exchange = name_of(ExchangeType, header.exchange_type)
        payloads = [Notify(notify)] if notify is not None else []
        if header.exchange_type == _IKE_SA_INIT or gen.keys is not None:
            self._respond(gen, header, payloads, now)
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
