"""IKE messages: the 28-byte header (RFC 7296 §3.1), payload chains (§3.2) and the
non-ESP marker that precedes IKE on UDP port 4500 (RFC 3948 §2.2).

`Message.from_bytes` reads the header and the cleartext payload chain; an SK or SKF
payload stays opaque and must be the last payload (RFC 7296 §3.14, RFC 7383 §2.5).
Once protection.py has decrypted it, `parse_payload_chain(first_type, plaintext)`
reads the inner chain; `serialize_payload_chain` is its inverse. Any malformed input
raises `ParseError` (or one of its subclasses) and nothing else.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

from wansim.ike.constants import (
    IKE_HEADER_BYTES,
    IKE_VERSION,
    NON_ESP_MARKER,
    PAYLOAD_HEADER_BYTES,
    ExchangeType,
    HeaderFlag,
    KeMethod,
    NotifyType,
    PayloadType,
    members,
    name_of,
)
from wansim.ike.errors import InvalidMajorVersion, ParseError, UnsupportedCriticalPayload
from wansim.ike.frozen import fast_init
from wansim.ike.payloads import (
    PAYLOAD_CLASSES,
    Encrypted,
    EncryptedFragment,
    IdInitiator,
    IdResponder,
    KeyExchange,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
    UnknownPayload,
)

_HEADER = struct.Struct("!8s8sBBBBII")
_PAYLOAD_HEADER = struct.Struct("!BBH")
# Plain ints: IntFlag arithmetic is slow, and every message tests these bits.
_INITIATOR = int(HeaderFlag.INITIATOR)
_RESPONSE = int(HeaderFlag.RESPONSE)
_KNOWN_FLAGS = int(HeaderFlag.INITIATOR | HeaderFlag.VERSION | HeaderFlag.RESPONSE)
_ENCRYPTED = (Encrypted, EncryptedFragment)
# Enum members bound once: attribute access on an Enum class is slow in Python 3.11
# (EnumType.__getattr__ makes every class attribute lookup go through Python code).
_NONE = PayloadType.NONE
_SK, _SKF = PayloadType.SK, PayloadType.SKF
_ZERO_SPI = bytes(8)
_EXCHANGE_TYPES = members(ExchangeType)  # what coerce() looks up, without the call
_PAYLOAD_TYPES = members(PayloadType)

P = TypeVar("P", bound=Payload)


@fast_init
@dataclass(frozen=True, slots=True)
class IkeHeader:
    """The IKE header. `next_payload` and `length` are filled in by `Message.to_bytes`;
    set them yourself only when building header bytes by hand (e.g. as AEAD data)."""

    spi_i: bytes
    spi_r: bytes
    exchange_type: int
    flags: int
    message_id: int
    next_payload: int = PayloadType.NONE
    length: int = IKE_HEADER_BYTES
    version: int = IKE_VERSION

    def __post_init__(self) -> None:
        if len(self.spi_i) != 8 or len(self.spi_r) != 8:
            raise ValueError("IKE SPIs are 8 bytes each")
        if not 0 <= self.message_id <= 0xFFFFFFFF or not 0 <= self.length <= 0xFFFFFFFF:
            raise ValueError("message ID and length are 32-bit fields")
        if (
            0 <= self.exchange_type <= 0xFF
            and 0 <= self.flags <= 0xFF
            and 0 <= self.next_payload <= 0xFF
            and 0 <= self.version <= 0xFF
        ):
            return
        for name in ("exchange_type", "flags", "next_payload", "version"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} {getattr(self, name)} does not fit one byte")

    @property
    def is_initiator(self) -> bool:
        """Sent by the original initiator of the IKE SA (I flag)."""
        return bool(self.flags & _INITIATOR)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _RESPONSE)

    @property
    def major_version(self) -> int:
        return self.version >> 4

    def to_bytes(self) -> bytes:
        return _HEADER.pack(
            self.spi_i,
            self.spi_r,
            self.next_payload,
            self.version,
            self.exchange_type,
            self.flags,
            self.message_id,
            self.length,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> IkeHeader:
        """Parse the first 28 bytes of `data` (the rest is not looked at).

        Raises `InvalidMajorVersion` for a major version above 2, so a responder can
        answer INVALID_MAJOR_VERSION (RFC 7296 §2.5); the minor version is ignored.
        """
        if len(data) < IKE_HEADER_BYTES:
            raise ParseError(f"IKE header: {len(data)} bytes, need {IKE_HEADER_BYTES}")
        spi_i, spi_r, next_payload, version, exchange, flags, message_id, length = (
            _HEADER.unpack_from(data)
        )
        # Unpacked fields always fit (8-byte SPIs, one-byte and 32-bit fields): no checks.
        header = cls._unchecked(
            spi_i,
            spi_r,
            _EXCHANGE_TYPES.get(exchange, exchange),
            flags & _KNOWN_FLAGS,
            message_id,
            _PAYLOAD_TYPES.get(next_payload, next_payload),
            length,
            version,
        )
        if version >> 4 == 2 and length >= IKE_HEADER_BYTES and spi_i != _ZERO_SPI:
            return header  # the usual header: none of the errors below applies
        major = version >> 4
        if major > 2:
            raise InvalidMajorVersion(major, header=header)
        if major < 2:
            raise ParseError(f"IKE major version {major} is not IKEv2", header=header)
        if spi_i == _ZERO_SPI:
            raise ParseError("IKE header: initiator SPI is zero (RFC 7296 §3.1)", header=header)
        if length < IKE_HEADER_BYTES:
            raise ParseError(f"IKE header: length {length} is below 28", header=header)
        return header


def header_bytes(spi_i: bytes, spi_r: bytes, exchange_type: int, flags: int, mid: int) -> bytes:
    """`IkeHeader(spi_i, spi_r, exchange_type, flags, mid).to_bytes()` for a message we
    protect (protection.py patches Next Payload and Length), without building the object."""
    if (
        len(spi_i) == 8
        and len(spi_r) == 8
        and 0 <= mid <= 0xFFFFFFFF
        and 0 <= exchange_type <= 0xFF
        and 0 <= flags <= 0xFF
    ):
        return _HEADER.pack(
            spi_i, spi_r, _NONE, IKE_VERSION, exchange_type, flags, mid, IKE_HEADER_BYTES
        )
    return IkeHeader(spi_i, spi_r, exchange_type, flags, mid).to_bytes()  # says what is wrong


def _walk_chain(
    first_type: int, data: bytes, offset: int, *, allow_encrypted: bool
) -> list[Payload]:
    """Parse payloads from `data[offset:]` until Next Payload 0 or an SK/SKF payload;
    the chain must end exactly at the end of `data`. Errors say which payload failed
    and at which byte offset (of the message, or of the decrypted chain)."""
    payloads: list[Payload] = []
    append = payloads.append
    payload_type = first_type
    end = len(data)
    unpack_header = _PAYLOAD_HEADER.unpack_from
    parsers = _BODY_PARSERS
    while payload_type != _NONE:
        try:
            next_type, flags, length = unpack_header(data, offset)
        except struct.error:  # fewer than 4 bytes left
            raise _chain_error(
                payloads, payload_type, offset, f"announced, {end - offset} bytes left"
            ) from None
        if length < PAYLOAD_HEADER_BYTES or offset + length > end:
            raise _chain_error(
                payloads,
                payload_type,
                offset,
                f"length {length} is below the 4-byte header"
                if length < PAYLOAD_HEADER_BYTES
                else f"length {length} does not fit in {end - offset}",
            )
        parse = parsers.get(payload_type)
        if parse is not None:
            try:
                append(parse(data[offset + PAYLOAD_HEADER_BYTES : offset + length]))
            except ParseError as error:
                raise _chain_error(payloads, payload_type, offset, str(error)) from None
        elif _unusual(payloads, payload_type, data, offset, allow_encrypted):
            return payloads  # it was SK or SKF: the last payload
        offset += length
        payload_type = next_type
    if offset != end:
        raise ParseError(f"{end - offset} trailing bytes after the last payload")
    return payloads


def _unusual(
    payloads: list[Payload], payload_type: int, data: bytes, offset: int, allow_encrypted: bool
) -> bool:
    """`_walk_chain` at a payload without a body parser (its header already checked): an
    unknown type, kept or refused by its critical bit, or SK/SKF, which must end the
    chain (True: the walk is over)."""
    next_type, flags, length = _PAYLOAD_HEADER.unpack_from(data, offset)
    body, end = data[offset + PAYLOAD_HEADER_BYTES : offset + length], len(data)
    encrypted = _ENCRYPTED_CLASSES.get(payload_type)
    if encrypted is None:
        if flags & 0x80:  # RFC 7296 §2.5: reject the whole message
            raise UnsupportedCriticalPayload(payload_type)
        payloads.append(UnknownPayload(payload_type, body))
        return False
    if not allow_encrypted:
        raise _chain_error(payloads, payload_type, offset, "inside an encrypted payload")
    if offset + length != end:
        raise _chain_error(
            payloads,
            payload_type,
            offset,
            f"{end - offset - length} bytes follow it; it must be last",
        )
    try:
        payloads.append(encrypted.from_body(body, next_type))
    except ParseError as error:
        raise _chain_error(payloads, payload_type, offset, str(error)) from None
    return True


# Payloads that every handshake of a run repeats byte for byte (identities, traffic
# selectors; SA payloads go through _parse_sa, status notifies through _parse_notify).
# Parsing is a pure function of the bytes and payloads are immutable, so a memo answers
# the repeats; key exchange data, nonces and ciphertext are always new and skip it.
# Errors are never memoised.
_MEMOISED = frozenset(
    {
        IdInitiator,
        IdResponder,
        TrafficSelectorsInitiator,
        TrafficSelectorsResponder,
    }
)
_parse_sa_memoised = functools.lru_cache(maxsize=1024)(SecurityAssociation.from_body)


def _parse_sa(body: bytes) -> SecurityAssociation:
    """An SA body repeats byte for byte from one handshake to the next except for the
    SPIs (random per Child SA and IKE rekey), and SPI values play no part in parsing or
    its errors: parse it with the SPIs zeroed (memoised), then put the SPIs back."""
    spans = _spi_spans(body)
    if not spans:
        return _parse_sa_memoised(body)
    if len(spans) == 1:  # the usual case: one chosen proposal, or a one-proposal offer
        start, end = spans[0]
        parsed = _parse_sa_memoised(body[:start] + bytes(end - start) + body[end:])
        if len(parsed.proposals) == 1:  # else cannot happen, and the general path copes
            p = parsed.proposals[0]
            proposal = Proposal._unchecked(p.number, p.protocol, body[start:end], p.transforms)
            return SecurityAssociation._unchecked((proposal,))
    blank = bytearray(body)
    for start, end in spans:
        blank[start:end] = bytes(end - start)
    parsed = _parse_sa_memoised(bytes(blank))  # the ParseError the real body would raise
    if len(parsed.proposals) != len(spans):  # cannot happen: both walks read the same fields
        return SecurityAssociation.from_body(body)
    return SecurityAssociation._unchecked(
        tuple(
            Proposal._unchecked(p.number, p.protocol, body[start:end], p.transforms)
            for p, (start, end) in zip(parsed.proposals, spans, strict=True)
        )
    )


def _spi_spans(body: bytes) -> list[tuple[int, int]] | None:
    """Where the proposals' non-empty SPIs sit, walking the proposal headers the way the
    parser does; None when there are none or the walk meets anything unusual."""
    spans, offset, end, any_spi = [], 0, len(body), 0
    while offset + 8 <= end:
        last_more, length, spi_size = (
            body[offset],
            body[offset + 2] << 8 | body[offset + 3],
            body[offset + 6],
        )
        if length < 8 + spi_size or offset + length > end:
            return None
        spans.append((offset + 8, offset + 8 + spi_size))
        any_spi |= spi_size
        if last_more == 0:
            return spans if any_spi else None
        offset += length
    return None


_parse_notify_memoised = functools.lru_cache(maxsize=1024)(Notify.from_body)
# Notifies whose contents are new in every handshake: NAT-D hashes over fresh SPIs and
# cookies (RFC 7296 §2.23, §2.6). Parsing them through the memo would only evict the
# status notifies that do repeat.
_FRESH_NOTIFIES = frozenset(
    {
        NotifyType.NAT_DETECTION_SOURCE_IP,
        NotifyType.NAT_DETECTION_DESTINATION_IP,
        NotifyType.COOKIE,
    }
)


def _parse_notify(body: bytes) -> Notify:
    """A Notify body: memoised unless it is one of the fresh kinds or carries an SPI."""
    if len(body) >= 4 and (body[1] or (body[2] << 8 | body[3]) in _FRESH_NOTIFIES):
        return Notify.from_body(body)
    return _parse_notify_memoised(body)


_ENCRYPTED_CLASSES = {cls.payload_type: cls for cls in _ENCRYPTED}
# Payload type -> body parser: the class's from_body, memoised (per class) where it pays.
_BODY_PARSERS = {
    payload_type: functools.lru_cache(maxsize=1024)(cls.from_body)
    if cls in _MEMOISED
    else cls.from_body
    for payload_type, cls in PAYLOAD_CLASSES.items()
    if cls not in _ENCRYPTED
}
_BODY_PARSERS[PayloadType.SA] = _parse_sa
_BODY_PARSERS[PayloadType.NOTIFY] = _parse_notify


def _chain_error(parsed: list[Payload], payload_type: int, offset: int, what: str) -> ParseError:
    """'payload #3 (NONCE) at byte 76: ...', built only when something is wrong."""
    name = name_of(PayloadType, payload_type)
    return ParseError(f"payload #{len(parsed) + 1} ({name}) at byte {offset}: {what}")


def parse_payload_chain(first_type: int, data: bytes) -> tuple[Payload, ...]:
    """Parse a decrypted inner payload chain whose first payload is `first_type` (the
    Next Payload field of the SK/SKF header). SK/SKF may not appear inside."""
    return tuple(_walk_chain(first_type, bytes(data), 0, allow_encrypted=False))


def serialize_payload_chain(payloads: Iterable[Payload]) -> tuple[int, bytes]:
    """(type of the first payload, chained bytes): the inverse of `parse_payload_chain`,
    also used for the cleartext part of a message. An SK/SKF payload must come last."""
    payloads = tuple(payloads)
    if not payloads:
        return _NONE, b""
    for payload in payloads[:-1]:
        if isinstance(payload, _ENCRYPTED):
            raise ValueError(f"{type(payload).__name__} must be the last payload")
    parts = []
    payload = payloads[0]
    for following in payloads[1:]:
        parts.append(payload.to_bytes(following.payload_type))
        payload = following
    parts.append(payload.to_bytes(_NONE))
    return payloads[0].payload_type, b"".join(parts)


def message_payloads(data: bytes, header: IkeHeader) -> tuple[Payload, ...]:
    """The cleartext payloads of the IKE message `data` (bytes) whose header is `header`
    (`IkeHeader.from_bytes(data)`): what `Message.from_bytes` holds, without the Message
    (an engine reads the header and the payloads, nothing else)."""
    size = len(data)
    if header.length != size:
        raise ParseError(
            f"IKE header length {header.length} != datagram length {size}", header=header
        )
    if header.next_payload == _SK and size >= 32 and data[30] << 8 | data[31] == size - 28:
        # The usual protected message, one SK payload and nothing in clear: what the
        # chain walk makes of it (SK is not critical-checked: its type is known).
        first = data[28]
        return (Encrypted._unchecked(_PAYLOAD_TYPES.get(first, first), data[32:]),)
    if header.next_payload == _SKF and size >= 36 and data[30] << 8 | data[31] == size - 28:
        number, total = data[32] << 8 | data[33], data[34] << 8 | data[35]
        if 1 <= number <= total:  # else the chain walk raises what EncryptedFragment does
            first = data[28]
            first = _PAYLOAD_TYPES.get(first, first)
            return (EncryptedFragment._unchecked(number, total, first, data[36:]),)
    try:
        payloads = _walk_chain(header.next_payload, data, IKE_HEADER_BYTES, allow_encrypted=True)
    except ParseError as error:
        error.header = header
        raise
    return tuple(payloads)


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """An IKE message: header plus its cleartext payloads; an SK/SKF payload, if any,
    is the last one and still encrypted. `raw` keeps the received bytes (for ICV and
    AEAD checks, which must use the bytes as sent)."""

    header: IkeHeader
    payloads: tuple[Payload, ...] = ()
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes, header: IkeHeader | None = None) -> Message:
        """Parse a whole IKE message. `header`, if given, is `IkeHeader.from_bytes(data)`
        already made by the caller (a gateway reads it to route the datagram)."""
        data = bytes(data)
        if header is None:
            header = IkeHeader.from_bytes(data)
        return cls._unchecked(header, message_payloads(data, header), data)

    def to_bytes(self) -> bytes:
        first, chain = serialize_payload_chain(self.payloads)
        h, length = self.header, IKE_HEADER_BYTES + len(chain)
        if 0 <= first <= 0xFF and length <= 0xFFFFFFFF:  # else the header says what is wrong
            header = _HEADER.pack(h.spi_i, h.spi_r, first, h.version, h.exchange_type, h.flags,
                                  h.message_id, length)  # fmt: skip
            return header + chain
        return replace(h, next_payload=first, length=length).to_bytes() + chain

    # --- convenience accessors -------------------------------------------------------

    @property
    def exchange_type(self) -> int:
        return self.header.exchange_type

    @property
    def message_id(self) -> int:
        return self.header.message_id

    @property
    def is_response(self) -> bool:
        return self.header.is_response

    @property
    def encrypted(self) -> Encrypted | EncryptedFragment | None:
        """The trailing SK or SKF payload, if the message has one."""
        if self.payloads and isinstance(self.payloads[-1], _ENCRYPTED):
            return self.payloads[-1]  # type: ignore[return-value]
        return None

    @property
    def encrypted_offset(self) -> int | None:
        """Offset of the SK/SKF generic payload header in the wire bytes: everything
        before it, plus that header, is what RFC 5282 §5.1 authenticates as AAD."""
        sk = self.encrypted
        if sk is None:
            return None
        total = self.header.length if self.raw is not None else len(self.to_bytes())
        return total - PAYLOAD_HEADER_BYTES - len(sk.body())

    def find(self, payload_class: type[P]) -> P | None:
        """The first payload of this class, or None."""
        for payload in self.payloads:
            if isinstance(payload, payload_class):
                return payload
        return None

    def find_all(self, payload_class: type[P]) -> tuple[P, ...]:
        return tuple(p for p in self.payloads if isinstance(p, payload_class))

    def notify(self, notify_type: int) -> Notify | None:
        """The first Notify of `notify_type`, or None."""
        for payload in self.payloads:
            if isinstance(payload, Notify) and payload.type == notify_type:
                return payload
        return None

    def describe(self, inner: Iterable[Payload] | None = None) -> str:
        """Exchange, direction, message ID and the payload list, like tshark's and
        strongSwan's summaries, e.g. 'IKE_SA_INIT request 0 [ HDR, SA, KE(CURVE25519),
        Nonce, N(NAT_DETECTION_SOURCE_IP) ]'. `inner` lists decrypted payloads to show
        inside SK{...}."""
        return describe_message(self, inner)

    def __str__(self) -> str:
        return self.describe()


# --- describe: payload lists like tshark / strongSwan logs --------------------------

_SHORT = {
    PayloadType.SA: "SA",
    PayloadType.KE: "KE",
    PayloadType.IDi: "IDi",
    PayloadType.IDr: "IDr",
    PayloadType.CERT: "CERT",
    PayloadType.CERTREQ: "CERTREQ",
    PayloadType.AUTH: "AUTH",
    PayloadType.NONCE: "Nonce",
    PayloadType.DELETE: "D",
    PayloadType.VENDOR_ID: "V",
    PayloadType.TSi: "TSi",
    PayloadType.TSr: "TSr",
    PayloadType.CP: "CP",
    PayloadType.EAP: "EAP",
}


# Texts that depend on the payload's class alone (exact codec classes; SK included), and
# those of every registered notify type and key exchange method: traces describe every
# message sent, so the usual answers are one dict lookup.
_CLASS_TEXT = {
    cls: _SHORT[cls.payload_type]
    for cls in PAYLOAD_CLASSES.values()
    if cls not in (Notify, KeyExchange, Encrypted, EncryptedFragment)
} | {Encrypted: "SK"}
_NOTIFY_TEXT = {value: f"N({name_of(NotifyType, value)})" for value in members(NotifyType)}
_KE_TEXT = {value: f"KE({name_of(KeMethod, value)})" for value in members(KeMethod)}


def describe_payload(payload: Payload) -> str:
    """'SA', 'KE(CURVE25519)', 'N(NAT_DETECTION_SOURCE_IP)', 'SKF(1/2)', 'UNKNOWN(99)'."""
    cls = type(payload)
    text = _CLASS_TEXT.get(cls)
    if text is not None:
        return text
    if cls is Notify:
        text = _NOTIFY_TEXT.get(payload.type)
    elif cls is KeyExchange:
        text = _KE_TEXT.get(payload.method)
    return text if text is not None else _describe_any(payload)


def _describe_any(payload: Payload) -> str:
    """`describe_payload` for anything: subclasses, unregistered numbers, fragments."""
    if isinstance(payload, Notify):
        return f"N({name_of(NotifyType, payload.type)})"
    if isinstance(payload, KeyExchange):
        return f"KE({name_of(KeMethod, payload.method)})"
    if isinstance(payload, EncryptedFragment):
        return f"SKF({payload.fragment_number}/{payload.total_fragments})"
    if isinstance(payload, Encrypted):
        return "SK"
    if isinstance(payload, UnknownPayload):
        return _SHORT.get(payload.type, f"UNKNOWN({payload.type})")
    return _SHORT.get(payload.payload_type, str(payload.payload_type))


def describe_message(message: Message, inner: Iterable[Payload] | None = None) -> str:
    header = message.header
    direction = "response" if header.is_response else "request"
    parts = ["HDR"]
    for payload in message.payloads:
        text = describe_payload(payload)
        if isinstance(payload, _ENCRYPTED) and inner is not None:
            text += "{" + ", ".join(describe_payload(p) for p in inner) + "}"
        parts.append(text)
    exchange = name_of(ExchangeType, header.exchange_type)
    return f"{exchange} {direction} {header.message_id} [ {', '.join(parts)} ]"


# --- UDP port 4500: non-ESP marker (RFC 3948 §2.2) ---------------------------------


def add_non_esp_marker(ike_message: bytes) -> bytes:
    """Prefix an IKE message with the 4 zero bytes required on UDP port 4500."""
    return NON_ESP_MARKER + ike_message


def classify_nat_t_datagram(datagram: bytes) -> Literal["ike", "esp", "keepalive"]:
    """What a UDP datagram received on port 4500 carries (RFC 3948 §2.2, §2.3):
    IKE after a zero non-ESP marker, ESP when the first 4 bytes (the SPI) are
    non-zero, a NAT keepalive when it is the single byte 0xFF."""
    if datagram == b"\xff":
        return "keepalive"
    if len(datagram) < len(NON_ESP_MARKER):
        raise ParseError(f"{len(datagram)}-byte datagram on port 4500 is neither IKE nor ESP")
    return "ike" if datagram[:4] == NON_ESP_MARKER else "esp"


def strip_non_esp_marker(datagram: bytes) -> bytes:
    """The IKE message inside a port-4500 datagram; ParseError if it is ESP or a keepalive."""
    kind = classify_nat_t_datagram(datagram)
    if kind != "ike":
        raise ParseError(f"datagram on port 4500 is {kind}, not IKE (no non-ESP marker)")
    return bytes(datagram[4:])
