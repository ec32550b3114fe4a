"""IKEv2 payloads: one small frozen class per payload type, with its wire layout.

Each class knows its own body (everything after the 4-byte generic payload header,
RFC 7296 §3.2). `to_bytes(next_payload)` writes header + body; `from_bytes(data)` reads
exactly one whole payload; `from_body(body)` reads a body already cut out of a chain
(message.py walks chains). Reserved fields are written as zero and ignored on receipt;
every malformed body raises `ParseError` and nothing else.

Layouts: SA/proposal/transform/attributes RFC 7296 §3.3, KE §3.4, ID §3.5, CERT §3.6,
CERTREQ §3.7, AUTH §3.8, Nonce §3.9, Notify §3.10, Delete §3.11, Vendor ID §3.12,
TS §3.13, SK §3.14, SKF RFC 7383 §2.5.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from typing import ClassVar, Self

from wansim.ike.constants import (
    PAYLOAD_HEADER_BYTES,
    AuthMethod,
    CertEncoding,
    EncrId,
    EsnId,
    IdType,
    IntegId,
    KeMethod,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformAttribute,
    TransformType,
    TsType,
    coerce,
    members,
)
from wansim.ike.errors import ParseError
from wansim.ike.frozen import fast_init
from wansim.ike.memo import IdentityMemo

NONCE_MIN_BYTES = 16  # RFC 7296 §3.9
NONCE_MAX_BYTES = 256
_LAST = 0  # "last substructure" value of proposals and transforms (RFC 7296 §3.3.1)
_MORE_PROPOSALS = 2
_MORE_TRANSFORMS = 3
_ATTRIBUTE_TV = 0x8000  # AF bit: Type/Value format (RFC 7296 §3.3.5)


# Precompiled layouts: the engine encodes and parses every message with these.
# What coerce() looks up, bound once for the payloads every message carries.
_PAYLOAD_TYPES = members(PayloadType)
_KE_METHODS = members(KeMethod)
_NOTIFY_TYPES = members(NotifyType)
_PROTOCOLS = members(ProtocolId)
_GENERIC = struct.Struct("!BBH")  # generic payload header, also Notify/Delete/KE fields
_TYPE_BYTE = struct.Struct("!B3x")  # ID, AUTH and TS payloads: a byte, 3 reserved
_TRANSFORM = struct.Struct("!BBHBBH")
_PROPOSAL = struct.Struct("!BBHBBBB")
_ATTRIBUTE = struct.Struct("!HH")
_SELECTOR = struct.Struct("!BBHHH")
# Generic header and fixed body fields in one pack, for the payloads every message
# carries (their to_bytes falls back to Payload.to_bytes, and its errors, on bad fields).
_KE_HEAD = struct.Struct("!BBHHH")
_NOTIFY_HEAD = struct.Struct("!BBHBBH")
_TYPED_HEAD = struct.Struct("!BBHB3x")


def _need(body: bytes, size: int, what: str, offset: int = 0) -> None:
    """ParseError unless `body[offset:]` holds at least `size` bytes."""
    if len(body) - offset < size:
        raise ParseError(f"{what}: {len(body) - offset} bytes, need at least {size}")


def _u8(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} must fit in one byte, got {value}")
    return value


def _u16(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{what} must fit in two bytes, got {value}")
    return value


def payload_header(next_payload: int, body_bytes: int, critical: bool = False) -> bytes:
    """The 4-byte generic payload header (RFC 7296 §3.2)."""
    length = PAYLOAD_HEADER_BYTES + body_bytes
    if length > 0xFFFF:
        raise ValueError(f"payload of {length} bytes exceeds the 16-bit length field")
    return _GENERIC.pack(next_payload, 0x80 if critical else 0, length)


def split_payload_header(data: bytes, what: str = "payload") -> tuple[int, bool, int]:
    """(next payload, critical bit, payload length) of the generic header at `data[0:4]`."""
    _need(data, PAYLOAD_HEADER_BYTES, f"{what} header")
    next_payload, flags, length = _GENERIC.unpack_from(data)
    if length < PAYLOAD_HEADER_BYTES:
        raise ParseError(f"{what} length {length} is below the 4-byte generic header")
    return next_payload, bool(flags & 0x80), length


class Payload:
    """Base of every payload class: generic header handling around a body."""

    __slots__ = ()
    payload_type: ClassVar[int]

    def body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        raise NotImplementedError

    def chain_next(self, next_payload: int) -> int:
        """The Next Payload value this payload writes when followed by `next_payload`."""
        return next_payload

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        # chain_next(next_payload) is next_payload here; SK/SKF override this method.
        body = self.body()
        try:
            return _GENERIC.pack(next_payload, 0, 4 + len(body)) + body
        except struct.error:  # out of range: let payload_header say which way
            return payload_header(next_payload, len(body)) + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse exactly one whole payload (generic header included)."""
        _, _, length = split_payload_header(data, cls.__name__)
        if length != len(data):
            raise ParseError(f"{cls.__name__}: payload length {length} != {len(data)} bytes given")
        return cls.from_body(bytes(data[PAYLOAD_HEADER_BYTES:]))


# --- SA payload (RFC 7296 §3.3) -------------------------------------------------------

_TRANSFORM_ID_ENUMS: dict[int, type[IntEnum]] = {
    TransformType.ENCR: EncrId,
    TransformType.PRF: PrfId,
    TransformType.INTEG: IntegId,
    TransformType.KE: KeMethod,
    TransformType.ESN: EsnId,
    **{t: KeMethod for t in range(TransformType.ADDKE1, TransformType.ADDKE7 + 1)},
}


@fast_init
@dataclass(frozen=True, slots=True)
class Attribute:
    """A transform attribute (RFC 7296 §3.3.5): TV form when `value` is an int (16-bit),
    TLV form when it is bytes."""

    type: int
    value: int | bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0x7FFF:
            raise ValueError(f"attribute type {self.type} does not fit 15 bits")
        size = self.value if isinstance(self.value, int) else len(self.value)
        _u16(size, "attribute value (or TLV length)")

    def to_bytes(self) -> bytes:
        if isinstance(self.value, int):
            return _ATTRIBUTE.pack(_ATTRIBUTE_TV | self.type, self.value)
        return _ATTRIBUTE.pack(self.type, len(self.value)) + self.value


def _parse_attributes(data: bytes) -> tuple[Attribute, ...]:
    attributes = []
    offset = 0
    while offset < len(data):
        _need(data, 4, "transform attribute", offset)
        type_field, value = _ATTRIBUTE.unpack_from(data, offset)
        offset += 4
        attr_type = coerce(TransformAttribute, type_field & 0x7FFF)
        if type_field & _ATTRIBUTE_TV:
            attributes.append(Attribute(attr_type, value))
            continue
        if offset + value > len(data):
            raise ParseError(f"TLV attribute {attr_type}: {value} bytes overrun the transform")
        attributes.append(Attribute(attr_type, bytes(data[offset : offset + value])))
        offset += value
    return tuple(attributes)


@fast_init
@dataclass(frozen=True, slots=True)
class Transform:
    """A transform substructure: one algorithm of one type (RFC 7296 §3.3.2)."""

    type: int
    id: int
    attributes: tuple[Attribute, ...] = ()

    @classmethod
    def make(cls, type: int, id: int, key_length: int | None = None) -> Transform:
        """A transform with the usual TV Key Length attribute when `key_length` is given."""
        attrs = ()
        if key_length is not None:
            attrs = (Attribute(TransformAttribute.KEY_LENGTH, key_length),)
        id_enum = _TRANSFORM_ID_ENUMS.get(type)
        return cls(
            coerce(TransformType, type), id if id_enum is None else coerce(id_enum, id), attrs
        )

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute in bits (TV form, type 14), or None."""
        for attribute in self.attributes:
            if attribute.type == TransformAttribute.KEY_LENGTH and isinstance(attribute.value, int):
                return attribute.value
        return None

    def to_bytes(self, last: bool = True) -> bytes:
        attrs = b"".join([a.to_bytes() for a in self.attributes]) if self.attributes else b""
        more = _LAST if last else _MORE_TRANSFORMS
        try:
            return _TRANSFORM.pack(more, 0, 8 + len(attrs), self.type, 0, self.id) + attrs
        except struct.error:  # out of range: say which field
            _u8(self.type, "transform type")
            _u16(self.id, "transform id")
            raise


def _encode_transforms(transforms: tuple[Transform, ...]) -> bytes:
    """The transform substructures of one proposal, the last one flagged as last."""
    n = len(transforms)
    return b"".join([t.to_bytes(last=i == n - 1) for i, t in enumerate(transforms)])


transforms_bytes = IdentityMemo(_encode_transforms)
"""The wire bytes of a proposal's transforms; memoised by identity, as the same tuples
come back in every handshake (configured specs, memoised parses)."""


def _parse_transform(data: bytes, offset: int) -> tuple[Transform, int, bool]:
    """(transform, next offset, is last) for the transform at `data[offset:]`."""
    _need(data, 8, "transform", offset)
    last_more, _, length, t_type, _, t_id = _TRANSFORM.unpack_from(data, offset)
    if last_more not in (_LAST, _MORE_TRANSFORMS):
        raise ParseError(f"transform: last/more field {last_more} is neither 0 nor 3")
    if length < 8 or offset + length > len(data):
        raise ParseError(f"transform length {length} does not fit its proposal")
    attributes = _parse_attributes(data[offset + 8 : offset + length])
    t_type = coerce(TransformType, t_type)
    t_id = coerce(_TRANSFORM_ID_ENUMS[t_type], t_id) if t_type in _TRANSFORM_ID_ENUMS else t_id
    return Transform(t_type, t_id, attributes), offset + length, last_more == _LAST


# RFC 7296 §3.3.1: IKE SPIs are empty in IKE_SA_INIT and 8 bytes in rekeys; AH/ESP use 4.
_SPI_SIZES = {ProtocolId.IKE: (0, 8), ProtocolId.AH: (4,), ProtocolId.ESP: (4,)}


@fast_init
@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposal substructure: a protocol, an SPI and its transforms (RFC 7296 §3.3.1)."""

    number: int
    protocol: int
    spi: bytes = b""
    transforms: tuple[Transform, ...] = ()

    def __post_init__(self) -> None:
        allowed = _SPI_SIZES.get(self.protocol)
        if allowed is not None and len(self.spi) not in allowed:
            raise ValueError(f"{self.protocol!r} proposal SPI must be {allowed} bytes")

    def to_bytes(self, last: bool = True) -> bytes:
        transforms = transforms_bytes(self.transforms)
        spi, n = self.spi, len(self.transforms)
        more = _LAST if last else _MORE_PROPOSALS
        length = 8 + len(spi) + len(transforms)
        try:
            head = _PROPOSAL.pack(more, 0, length, self.number, self.protocol, len(spi), n)
        except struct.error:  # out of range: say which field
            _u8(self.number, "proposal number")
            _u8(self.protocol, "protocol id")
            _u8(n, "transform count")
            raise
        return head + spi + transforms


def _parse_proposal(data: bytes, offset: int) -> tuple[Proposal, int, bool]:
    _need(data, 8, "proposal", offset)
    last_more, _, length, number, protocol, spi_size, count = _PROPOSAL.unpack_from(data, offset)
    if last_more not in (_LAST, _MORE_PROPOSALS):
        raise ParseError(f"proposal: last/more field {last_more} is neither 0 nor 2")
    end = offset + length
    if length < 8 + spi_size or end > len(data):
        raise ParseError(f"proposal #{number}: length {length} does not fit its SA payload")
    protocol = coerce(ProtocolId, protocol)
    allowed = _SPI_SIZES.get(protocol)
    if allowed is None:
        raise ParseError(f"proposal #{number}: unknown protocol id {protocol}")
    if spi_size not in allowed:
        raise ParseError(
            f"proposal #{number}: {protocol.name} SPI size {spi_size} not in {allowed}"
        )
    spi = bytes(data[offset + 8 : offset + 8 + spi_size])
    transforms = _parse_transforms(bytes(data[offset + 8 + spi_size : end]), number, count)
    return Proposal._unchecked(number, protocol, spi, transforms), end, last_more == _LAST


# A memo of a pure function: every SA of a run offers and answers the same few transform
# lists (only the SPIs before them change), and the shared tuples it returns let the
# encoding and selection memos answer by identity. Errors are never memoised.
@lru_cache(maxsize=1024)
def _parse_transforms(data: bytes, number: int, count: int) -> tuple[Transform, ...]:
    """The `count` transforms that fill `data` exactly (proposal `number`)."""
    transforms = []
    cursor, end = 0, len(data)
    last = cursor == end
    while not last:
        transform, cursor, last = _parse_transform(data, cursor)
        transforms.append(transform)
        if last != (cursor == end):
            raise ParseError(f"proposal #{number}: last transform flag disagrees with length")
    if len(transforms) != count:
        raise ParseError(
            f"proposal #{number}: announces {count} transforms, holds {len(transforms)}"
        )
    return tuple(transforms)


@fast_init
@dataclass(frozen=True, slots=True)
class SecurityAssociation(Payload):
    """SA payload: one or more proposals (RFC 7296 §3.3)."""

    payload_type: ClassVar[int] = PayloadType.SA
    proposals: tuple[Proposal, ...]

    def body(self) -> bytes:
        n = len(self.proposals)
        return b"".join([p.to_bytes(last=i == n - 1) for i, p in enumerate(self.proposals)])

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        proposals = []
        offset, last = 0, False
        while not last:
            proposal, offset, last = _parse_proposal(body, offset)
            proposals.append(proposal)
            if last != (offset == len(body)):
                raise ParseError("SA: last proposal flag disagrees with the payload length")
        # RFC 7296 §3.3.1: numbered 1, 2, 3 ... in an offer; a single (chosen) proposal
        # keeps the number it had in the offer.
        numbers = [p.number for p in proposals]
        first = numbers[0] if len(numbers) == 1 else 1
        if first == 0 or numbers != list(range(first, first + len(numbers))):
            raise ParseError(f"SA: proposal numbers {numbers} are not 1, 2, 3, ...")
        return cls(tuple(proposals))


# --- simple payloads ------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class KeyExchange(Payload):
    """KE payload: method + key exchange data (RFC 7296 §3.4; RFC 9370 renames the
    group field "Key Exchange Method")."""

    payload_type: ClassVar[int] = PayloadType.KE
    method: int
    data: bytes

    def body(self) -> bytes:
        try:
            return _ATTRIBUTE.pack(self.method, 0) + self.data
        except struct.error:
            _u16(self.method, "KE method")
            raise

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        data = self.data
        try:
            return _KE_HEAD.pack(next_payload, 0, 8 + len(data), self.method, 0) + data
        except struct.error:
            return Payload.to_bytes(self, next_payload)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if len(body) < 4:
            _need(body, 4, "KE payload body")
        method = body[0] << 8 | body[1]
        return cls(_KE_METHODS.get(method, method), bytes(body[4:]))


@fast_init
@dataclass(frozen=True, slots=True)
class Nonce(Payload):
    """Nonce payload: 16..256 random bytes (RFC 7296 §3.9)."""

    payload_type: ClassVar[int] = PayloadType.NONCE
    data: bytes

    def __post_init__(self) -> None:
        if not NONCE_MIN_BYTES <= len(self.data) <= NONCE_MAX_BYTES:
            raise ValueError(f"nonce must be 16..256 bytes, got {len(self.data)}")

    def body(self) -> bytes:
        return self.data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if not NONCE_MIN_BYTES <= len(body) <= NONCE_MAX_BYTES:
            raise ParseError(f"Nonce of {len(body)} bytes; RFC 7296 §3.9 requires 16..256")
        return cls._unchecked(bytes(body))


@fast_init
@dataclass(frozen=True, slots=True)
class Notify(Payload):
    """Notify payload (RFC 7296 §3.10): protocol, optional SPI, type and data."""

    payload_type: ClassVar[int] = PayloadType.NOTIFY
    type: int
    data: bytes = b""
    protocol: int = ProtocolId.NONE
    spi: bytes = b""

    def body(self) -> bytes:
        try:
            head = _GENERIC.pack(self.protocol, len(self.spi), self.type)
        except struct.error:  # out of range: say which field
            _u8(self.protocol, "protocol id")
            _u8(len(self.spi), "SPI size")
            _u16(self.type, "notify type")
            raise
        return head + self.spi + self.data

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        spi, data = self.spi, self.data
        length = 8 + len(spi) + len(data)
        try:
            head = _NOTIFY_HEAD.pack(next_payload, 0, length, self.protocol, len(spi), self.type)
        except struct.error:
            return Payload.to_bytes(self, next_payload)
        return head + spi + data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if len(body) < 4:
            _need(body, 4, "Notify payload body")
        protocol, spi_size, notify_type = _GENERIC.unpack_from(body)
        if len(body) < 4 + spi_size:
            _need(body, 4 + spi_size, f"Notify with {spi_size}-byte SPI")
        return cls._unchecked(
            _NOTIFY_TYPES.get(notify_type, notify_type),
            bytes(body[4 + spi_size :]),
            _PROTOCOLS.get(protocol, protocol),
            bytes(body[4 : 4 + spi_size]),
        )


@fast_init
@dataclass(frozen=True, slots=True)
class _TypedData(Payload):
    """Shared layout of ID and AUTH: one type byte, 3 reserved bytes, data."""

    kind_enum: ClassVar[type[IntEnum]]
    kind: int
    data: bytes

    def body(self) -> bytes:
        try:
            return _TYPE_BYTE.pack(self.kind) + self.data
        except struct.error:
            _u8(self.kind, "type")
            raise

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        data = self.data
        try:
            return _TYPED_HEAD.pack(next_payload, 0, 8 + len(data), self.kind) + data
        except struct.error:
            return Payload.to_bytes(self, next_payload)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if len(body) < 4:
            _need(body, 4, f"{cls.__name__} body")
        return cls(coerce(cls.kind_enum, body[0]), bytes(body[4:]))


@fast_init
@dataclass(frozen=True, slots=True)
class IdInitiator(_TypedData):
    """IDi payload: `kind` is the ID type, `data` the identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[int] = PayloadType.IDi
    kind_enum: ClassVar[type[IntEnum]] = IdType


@fast_init
@dataclass(frozen=True, slots=True)
class IdResponder(_TypedData):
    """IDr payload: `kind` is the ID type, `data` the identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[int] = PayloadType.IDr
    kind_enum: ClassVar[type[IntEnum]] = IdType


@fast_init
@dataclass(frozen=True, slots=True)
class Auth(_TypedData):
    """AUTH payload: `kind` is the auth method, `data` the MIC/signature (RFC 7296 §3.8)."""

    payload_type: ClassVar[int] = PayloadType.AUTH
    kind_enum: ClassVar[type[IntEnum]] = AuthMethod


@fast_init
@dataclass(frozen=True, slots=True)
class _EncodedData(Payload):
    """Shared layout of CERT and CERTREQ: one encoding byte, then data."""

    encoding: int
    data: bytes

    def body(self) -> bytes:
        return bytes([_u8(self.encoding, "certificate encoding")]) + self.data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if not body:
            _need(body, 1, f"{cls.__name__} body")
        return cls(coerce(CertEncoding, body[0]), bytes(body[1:]))


@fast_init
@dataclass(frozen=True, slots=True)
class Certificate(_EncodedData):
    """CERT payload (RFC 7296 §3.6), e.g. encoding X509_SIGNATURE with DER data."""

    payload_type: ClassVar[int] = PayloadType.CERT


@fast_init
@dataclass(frozen=True, slots=True)
class CertificateRequest(_EncodedData):
    """CERTREQ payload (RFC 7296 §3.7): data = concatenated SHA-1 hashes of CA keys."""

    payload_type: ClassVar[int] = PayloadType.CERTREQ


@fast_init
@dataclass(frozen=True, slots=True)
class Delete(Payload):
    """Delete payload (RFC 7296 §3.11): no SPI for IKE, 4-byte SPIs for AH/ESP."""

    payload_type: ClassVar[int] = PayloadType.DELETE
    protocol: int
    spis: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if len({len(s) for s in self.spis}) > 1:
            raise ValueError("all SPIs of one Delete payload must have the same size")

    def body(self) -> bytes:
        spis = self.spis
        try:
            head = _GENERIC.pack(self.protocol, len(spis[0]) if spis else 0, len(spis))
        except struct.error:  # out of range: say which field
            _u8(self.protocol, "protocol id")
            _u16(len(spis), "SPI count")
            raise
        return head + b"".join(spis)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if len(body) < 4:
            _need(body, 4, "Delete payload body")
        protocol, spi_size, count = _GENERIC.unpack_from(body)
        if len(body) != 4 + spi_size * count:
            raise ParseError(f"Delete: {count} SPIs of {spi_size} bytes != {len(body) - 4} bytes")
        if count and not spi_size:
            raise ParseError(f"Delete: {count} SPIs of size 0")
        if count == 1:  # the usual Child SA Delete
            spis: tuple[bytes, ...] = (bytes(body[4:]),)
        else:
            spis = tuple(
                [bytes(body[4 + i * spi_size : 4 + (i + 1) * spi_size]) for i in range(count)]
            )
        # Every SPI has spi_size bytes: what __post_init__ checks holds.
        return cls._unchecked(_PROTOCOLS.get(protocol, protocol), spis)


@fast_init
@dataclass(frozen=True, slots=True)
class VendorId(Payload):
    """Vendor ID payload: opaque bytes (RFC 7296 §3.12)."""

    payload_type: ClassVar[int] = PayloadType.VENDOR_ID
    data: bytes

    def body(self) -> bytes:
        return self.data

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        return cls(bytes(body))


# --- traffic selectors (RFC 7296 §3.13) -----------------------------------------------

_TS_LAYOUT = {TsType.TS_IPV4_ADDR_RANGE: (4, 16), TsType.TS_IPV6_ADDR_RANGE: (16, 40)}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@fast_init
@dataclass(frozen=True, slots=True)
class TrafficSelector:
    """One address range with protocol and port range; the TS type follows the
    address family (7 = IPv4, 8 = IPv6)."""

    start_address: IpAddress
    end_address: IpAddress
    ip_protocol: int = 0  # 0 = any
    start_port: int = 0
    end_port: int = 0xFFFF

    def __post_init__(self) -> None:
        if self.start_address.version != self.end_address.version:
            raise ValueError("traffic selector mixes IPv4 and IPv6 addresses")

    @classmethod
    def from_network(cls, network: str, ip_protocol: int = 0) -> TrafficSelector:
        """The whole range of a CIDR like '198.51.100.0/24', any port."""
        start, end = _network_range(network)
        return cls(start, end, ip_protocol)

    @property
    def ts_type(self) -> TsType:
        if self.start_address.version == 4:
            return TsType.TS_IPV4_ADDR_RANGE
        return TsType.TS_IPV6_ADDR_RANGE

    def to_bytes(self) -> bytes:
        return _selector_bytes(self)

    def __str__(self) -> str:
        proto = "" if self.ip_protocol == 0 else f" proto {self.ip_protocol}"
        ports = (
            ""
            if (self.start_port, self.end_port) == (0, 0xFFFF)
            else (f" ports {self.start_port}-{self.end_port}")
        )
        return f"{self.start_address}-{self.end_address}{proto}{ports}"


def _encode_selector(selector: TrafficSelector) -> bytes:
    ts_type = selector.ts_type
    _, size = _TS_LAYOUT[ts_type]
    return (
        _SELECTOR.pack(
            ts_type,
            _u8(selector.ip_protocol, "IP protocol"),
            size,
            _u16(selector.start_port, "start port"),
            _u16(selector.end_port, "end port"),
        )
        + selector.start_address.packed
        + selector.end_address.packed
    )


# Our configured selectors and the memoised parses of the peer's are the same objects in
# every handshake of a run.
_selector_bytes = IdentityMemo(_encode_selector)


@lru_cache(maxsize=1024)  # memo: parsing CIDR strings is slow and every SA repeats a few
def _network_range(network: str) -> tuple[IpAddress, IpAddress]:
    net = ipaddress.ip_network(network, strict=False)
    return net.network_address, net.broadcast_address


def _parse_selector(data: bytes, offset: int) -> tuple[TrafficSelector, int]:
    _need(data, 8, "traffic selector", offset)
    ts_type, ip_protocol, length, start_port, end_port = _SELECTOR.unpack_from(data, offset)
    layout = _TS_LAYOUT.get(ts_type)
    if layout is None:
        raise ParseError(f"traffic selector type {ts_type} is not supported (only 7 and 8)")
    address_bytes, size = layout
    if length != size or offset + size > len(data):
        raise ParseError(f"traffic selector type {ts_type}: length {length}, must be {size}")
    start = offset + 8
    make = ipaddress.IPv4Address if ts_type == TsType.TS_IPV4_ADDR_RANGE else ipaddress.IPv6Address
    return TrafficSelector(
        make(bytes(data[start : start + address_bytes])),
        make(bytes(data[start + address_bytes : start + 2 * address_bytes])),
        ip_protocol,
        start_port,
        end_port,
    ), offset + size


def _encode_selectors(selectors) -> bytes:
    """A TS payload body: count, 3 reserved bytes, the selectors (RFC 7296 §3.13)."""
    try:
        head = _TYPE_BYTE.pack(len(selectors))
    except struct.error:
        _u8(len(selectors), "TS count")
        raise
    return head + b"".join([_selector_bytes(s) for s in selectors])


# Every Child SA of a run sends the same few selector tuples (same objects).
_selectors_body = IdentityMemo(_encode_selectors)


@fast_init
@dataclass(frozen=True, slots=True)
class _TrafficSelectors(Payload):
    selectors: tuple[TrafficSelector, ...]

    def body(self) -> bytes:
        selectors = self.selectors
        if type(selectors) is tuple:  # our config's and the memoised parses' tuples
            return _selectors_body(selectors)
        return _encode_selectors(selectors)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        if len(body) < 4:
            _need(body, 4, f"{cls.__name__} body")
        count = body[0]
        selectors = []
        offset = 4
        while offset < len(body):
            selector, offset = _parse_selector(body, offset)
            selectors.append(selector)
        if len(selectors) != count:
            raise ParseError(f"{cls.__name__}: announces {count} selectors, holds {len(selectors)}")
        return cls(tuple(selectors))


@fast_init
@dataclass(frozen=True, slots=True)
class TrafficSelectorsInitiator(_TrafficSelectors):
    """TSi payload (RFC 7296 §3.13)."""

    payload_type: ClassVar[int] = PayloadType.TSi


@fast_init
@dataclass(frozen=True, slots=True)
class TrafficSelectorsResponder(_TrafficSelectors):
    """TSr payload (RFC 7296 §3.13)."""

    payload_type: ClassVar[int] = PayloadType.TSr


# --- encrypted payloads (opaque here; protection.py opens them) ---------------------


class _EncryptedBase(Payload):
    """SK and SKF: the generic header's Next Payload names the first *inner* payload,
    so these payloads must be last in a message (RFC 7296 §3.14, RFC 7383 §2.5)."""

    __slots__ = ()
    first_payload: int

    def chain_next(self, next_payload: int) -> int:
        return self.first_payload

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        body = self.body()
        return payload_header(self.chain_next(next_payload), len(body)) + body

    @classmethod
    def from_body(cls, body: bytes, first_payload: int = PayloadType.NONE) -> Self:
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        first, _, length = split_payload_header(data, cls.__name__)
        if length != len(data):
            raise ParseError(f"{cls.__name__}: payload length {length} != {len(data)} bytes")
        return cls.from_body(bytes(data[PAYLOAD_HEADER_BYTES:]), first)


@fast_init
@dataclass(frozen=True, slots=True)
class Encrypted(_EncryptedBase):
    """SK payload (RFC 7296 §3.14): IV ‖ ciphertext ‖ ICV, kept opaque."""

    payload_type: ClassVar[int] = PayloadType.SK
    first_payload: int
    data: bytes

    def body(self) -> bytes:
        return self.data

    @classmethod
    def from_body(cls, body: bytes, first_payload: int = PayloadType.NONE) -> Self:
        return cls(_PAYLOAD_TYPES.get(first_payload, first_payload), bytes(body))


SKF_HEADER_BYTES = 8  # generic header + fragment number + total fragments


@fast_init
@dataclass(frozen=True, slots=True)
class EncryptedFragment(_EncryptedBase):
    """SKF payload (RFC 7383 §2.5): fragment number (from 1), total, then IV ‖
    ciphertext ‖ ICV. Only fragment 1 names the first inner payload; others carry 0."""

    payload_type: ClassVar[int] = PayloadType.SKF
    fragment_number: int
    total_fragments: int
    first_payload: int
    data: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.fragment_number <= self.total_fragments <= 0xFFFF:
            raise ValueError(
                f"fragment {self.fragment_number} of {self.total_fragments}: "
                "need 1 <= number <= total <= 65535"
            )

    def body(self) -> bytes:
        return struct.pack("!HH", self.fragment_number, self.total_fragments) + self.data

    @classmethod
    def from_body(cls, body: bytes, first_payload: int = PayloadType.NONE) -> Self:
        _need(body, 4, "SKF payload body")
        number, total = _ATTRIBUTE.unpack_from(body)  # two 16-bit fields
        # RFC 7383 §2.5: numbering starts at 1 and never exceeds the total.
        if not 1 <= number <= total:
            raise ParseError(f"SKF: fragment number {number} of total {total}")
        first = _PAYLOAD_TYPES.get(first_payload, first_payload)
        return cls._unchecked(number, total, first, bytes(body[4:]))  # numbers checked above


@fast_init
@dataclass(frozen=True, slots=True)
class UnknownPayload(Payload):
    """A payload type this codec does not model, sent with the critical bit clear
    (RFC 7296 §2.5: skip it). Kept so the message re-serializes unchanged."""

    type: int
    body_bytes: bytes = field(repr=False)
    critical: bool = False

    @property
    def payload_type(self) -> int:  # type: ignore[override]
        return self.type

    def body(self) -> bytes:
        return self.body_bytes

    def to_bytes(self, next_payload: int = PayloadType.NONE) -> bytes:
        return payload_header(next_payload, len(self.body_bytes), self.critical) + self.body_bytes


PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    cls.payload_type: cls
    for cls in (
        SecurityAssociation,
        KeyExchange,
        IdInitiator,
        IdResponder,
        Certificate,
        CertificateRequest,
        Auth,
        Nonce,
        Notify,
        Delete,
        VendorId,
        TrafficSelectorsInitiator,
        TrafficSelectorsResponder,
        Encrypted,
        EncryptedFragment,
    )
}
"""Payload type -> class for every payload this codec understands."""
