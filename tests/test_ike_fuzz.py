"""Fuzzing the IKE codec (hypothesis): random bytes, truncations, trailing garbage and
field mutations of valid messages give ParseError or a valid parse — nothing else — and
every valid parse re-serializes to a message that parses back equal.

About 10,500 examples in all; `deadline=None` because the machine is shared.
"""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vectors import VECTORS_DIR, load_strongswan_run
from wansim.ike.constants import (
    AuthMethod,
    CertEncoding,
    ExchangeType,
    IdType,
    KeMethod,
    NotifyType,
    PayloadType,
    ProtocolId,
)
from wansim.ike.errors import ParseError
from wansim.ike.message import (
    IkeHeader,
    Message,
    parse_payload_chain,
    serialize_payload_chain,
    strip_non_esp_marker,
)
from wansim.ike.payloads import (
    PAYLOAD_CLASSES,
    Attribute,
    Auth,
    Certificate,
    CertificateRequest,
    Delete,
    Encrypted,
    EncryptedFragment,
    IdInitiator,
    IdResponder,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
    Transform,
    UnknownPayload,
    VendorId,
)
from wansim.ike.proposals import parse_proposals, sa_payload

SPI_I, SPI_R = bytes.fromhex("0102030405060708"), bytes.fromhex("a1a2a3a4a5a6a7a8")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )


INNER = (
    IdInitiator(IdType.ID_FQDN, b"initiator.lab.example"),
    Notify(NotifyType.INITIAL_CONTACT),
    IdResponder(IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 2])),
    Certificate(CertEncoding.X509_SIGNATURE, bytes(range(40))),
    CertificateRequest(CertEncoding.X509_SIGNATURE, bytes(20)),
    Auth(AuthMethod.SHARED_KEY_MIC, bytes(32)),
    sa_payload(
        parse_proposals("aes256gcm16-x25519-ke1_mlkem768,aes256-sha256-esn", "esp"), b"abcd"
    ),
    TrafficSelectorsInitiator((TrafficSelector.from_network("198.51.100.0/24"),)),
    TrafficSelectorsResponder(
        (
            TrafficSelector.from_network("2001:db8::/64", 6),
            TrafficSelector(
                ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.9"), 17, 500, 4500
            ),
        )
    ),
    Delete(ProtocolId.ESP, (b"\x11\x11\x11\x11", b"\x22\x22\x22\x22")),
    Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, b"\x33\x33\x33\x33"),
    UnknownPayload(99, b"skip me"),
)


def _message(exchange, flags, mid, payloads) -> bytes:
    return Message(IkeHeader(SPI_I, SPI_R, exchange, flags, mid), tuple(payloads)).to_bytes()


def _corpus() -> list[bytes]:
    first, inner = serialize_payload_chain(INNER)
    synthetic = [
        _message(
            ExchangeType.IKE_SA_INIT,
            0x08,
            0,
            (
                sa_payload(parse_proposals("aes256-sha256-x25519-ke1_mlkem768-ke2_mlkem1024")),
                SecurityAssociation(
                    (
                        Proposal(
                            1, ProtocolId.IKE, b"", (Transform(1, 12, (Attribute(99, b"tlv"),)),)
                        ),
                    )
                ),
                KeyExchange(KeMethod.CURVE25519, bytes(32)),
                Nonce(bytes(32)),
                Notify(NotifyType.NAT_DETECTION_SOURCE_IP, bytes(20)),
                VendorId(b"strongSwan"),
                Delete(ProtocolId.IKE),
            ),
        ),
        _message(ExchangeType.IKE_AUTH, 0x08, 1, (Encrypted(first, inner),)),
        _message(ExchangeType.IKE_AUTH, 0x08, 1, INNER),  # inner payloads in the clear
        _message(ExchangeType.IKE_AUTH, 0x08, 1, (EncryptedFragment(1, 3, first, inner[:50]),)),
        _message(ExchangeType.INFORMATIONAL, 0x20, 9, ()),
    ]
    captured = []
    if VECTORS_DIR.is_dir():
        captured = [d.ike for d in load_strongswan_run().datagrams if d.ike is not None]
        captured = [m for m in captured if len(m) < 400]  # the small ones mutate faster
    return synthetic + captured


CORPUS = _corpus()
_, INNER_CHAIN = serialize_payload_chain(INNER)


def check_message(data: bytes) -> None:
    """ParseError, or a message whose serialization parses back to the same message."""
    try:
        message = Message.from_bytes(data)
    except ParseError:
        return
    assert Message.from_bytes(message.to_bytes()) == message


def check_chain(first_type: int, data: bytes) -> None:
    try:
        payloads = parse_payload_chain(first_type, data)
    except ParseError:
        return
    again_first, again = serialize_payload_chain(payloads)
    assert parse_payload_chain(again_first, again) == payloads


def with_length(data: bytes) -> bytes:
    """`data` with the IKE header's length field set to its real length."""
    return data[:24] + struct.pack("!I", len(data)) + data[28:]


def test_corpus_is_valid():
    assert len(CORPUS) >= 4
    for data in CORPUS:
        assert Message.from_bytes(data).to_bytes() == data
    assert parse_payload_chain(INNER[0].payload_type, INNER_CHAIN) == INNER


@fuzz(1500)
@given(st.binary(max_size=600))
def test_random_bytes(data):
    check_message(data)


@fuzz(1200)
@given(
    st.sampled_from(list(PayloadType) + [0, 1, 99, 255]),
    st.sampled_from([0x20, 0x21, 0x30, 0x10]),
    st.binary(max_size=400),
)
def test_valid_header_random_body(first_type, version, body):
    header = SPI_I + SPI_R + bytes([first_type, version, 34, 0x08]) + bytes(4)
    check_message(with_length(header + bytes(4) + body))


@fuzz(1000)
@given(st.sampled_from(list(PayloadType) + [0, 7, 99]), st.binary(max_size=300))
def test_random_inner_chain(first_type, data):
    check_chain(first_type, data)


@fuzz(1000)
@given(st.data())
def test_truncation_and_trailing_garbage(data):
    message = data.draw(st.sampled_from(CORPUS))
    cut = data.draw(st.integers(0, len(message) - 1))
    garbage = data.draw(st.binary(min_size=1, max_size=40))
    for broken in (message[:cut], message + garbage):
        try:
            Message.from_bytes(broken)
        except ParseError:
            pass
        else:
            raise AssertionError("a truncated or padded message parsed")
    if cut >= 28:  # header length made consistent: now the payload chain must notice
        check_message(with_length(message[:cut]))
        check_message(with_length(message + garbage))


@fuzz(2000)
@given(st.data())
def test_field_mutations(data):
    message = bytearray(data.draw(st.sampled_from(CORPUS)))
    for _ in range(data.draw(st.integers(1, 3))):
        offset = data.draw(st.integers(0, len(message) - 1))
        kind = data.draw(st.sampled_from(["byte", "u16", "bit"]))
        if kind == "byte":
            message[offset] = data.draw(st.integers(0, 255))
        elif kind == "u16" and offset + 2 <= len(message):
            message[offset : offset + 2] = struct.pack("!H", data.draw(st.integers(0, 0xFFFF)))
        else:
            message[offset] ^= 1 << data.draw(st.integers(0, 7))
    check_message(bytes(message))
    if data.draw(st.booleans()):
        check_message(with_length(bytes(message)))


@fuzz(600)
@given(st.data())
def test_inner_chain_mutations(data):
    chain = bytearray(INNER_CHAIN)
    offset = data.draw(st.integers(0, len(chain) - 1))
    chain[offset] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(chain)))
    check_chain(INNER[0].payload_type, bytes(chain[:cut]))


PAYLOAD_SAMPLES = [p.to_bytes() for p in INNER] + [
    Nonce(bytes(16)).to_bytes(),
    KeyExchange(KeMethod.ECP_256, bytes(64)).to_bytes(),
    VendorId(b"v").to_bytes(),
    Encrypted(PayloadType.IDi, bytes(24)).to_bytes(),
    EncryptedFragment(2, 2, 0, bytes(24)).to_bytes(),
    sa_payload(
        parse_proposals("aes256-sha256-x25519-ke1_mlkem768,aes128gcm16-prfsha256-ecp256")
    ).to_bytes(),
]


@fuzz(1000)
@given(st.sampled_from(sorted(PAYLOAD_CLASSES.items())), st.binary(max_size=120))
def test_random_payload_bodies(entry, body):
    _, cls = entry
    try:
        payload = cls.from_body(body)
    except ParseError:
        return
    assert type(payload).from_bytes(payload.to_bytes()) == payload


@fuzz(1500)
@given(st.data())
def test_payload_mutations(data):
    """Each payload parser on its own: mutated bytes with a consistent generic header."""
    sample = bytearray(data.draw(st.sampled_from(PAYLOAD_SAMPLES)))
    for _ in range(data.draw(st.integers(1, 2))):
        offset = data.draw(st.integers(4, len(sample) - 1))
        sample[offset] = data.draw(st.integers(0, 255))
    sample = sample[: data.draw(st.integers(4, len(sample)))]
    sample[2:4] = struct.pack("!H", len(sample))
    cls = data.draw(st.sampled_from([c for _, c in sorted(PAYLOAD_CLASSES.items())]))
    try:
        payload = cls.from_bytes(bytes(sample))
    except ParseError:
        return
    assert type(payload).from_bytes(payload.to_bytes()) == payload


@fuzz(300)
@given(st.binary(max_size=80))
def test_non_esp_marker_helpers(data):
    try:
        inner = strip_non_esp_marker(data)
    except ParseError:
        return
    assert data[:4] == bytes(4) and inner == data[4:]


# --- generated valid messages round-trip exactly ---------------------------------------

blobs = st.binary(max_size=40)
u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
selectors = st.one_of(
    st.builds(TrafficSelector, ipv4, ipv4, u8, u16, u16),
    st.builds(TrafficSelector, ipv6, ipv6, u8, u16, u16),
)
attributes = st.one_of(
    st.builds(Attribute, st.integers(0, 0x7FFF), u16),
    st.builds(Attribute, st.integers(0, 0x7FFF), blobs),
)
transforms = st.builds(Transform, u8, u16, st.lists(attributes, max_size=2).map(tuple))
proposal_bodies = st.tuples(
    st.sampled_from([(ProtocolId.IKE, 0), (ProtocolId.IKE, 8), (ProtocolId.ESP, 4)]),
    st.lists(transforms, max_size=4).map(tuple),
)


@st.composite
def sa_payloads(draw) -> SecurityAssociation:
    bodies = draw(st.lists(proposal_bodies, min_size=1, max_size=3))
    first = 1 if len(bodies) > 1 else draw(st.integers(1, 255))
    return SecurityAssociation(
        tuple(
            Proposal(first + i, protocol, bytes(spi_size), ts)
            for i, ((protocol, spi_size), ts) in enumerate(bodies)
        )
    )


cleartext_payloads = st.one_of(
    sa_payloads(),
    st.builds(KeyExchange, u16, blobs),
    st.builds(Nonce, st.binary(min_size=16, max_size=64)),
    st.builds(Notify, u16, blobs, u8, st.sampled_from([b"", b"abcd", bytes(8)])),
    st.builds(IdInitiator, u8, blobs),
    st.builds(IdResponder, u8, blobs),
    st.builds(Auth, u8, blobs),
    st.builds(Certificate, u8, blobs),
    st.builds(CertificateRequest, u8, blobs),
    st.builds(Delete, u8, st.sampled_from([(), (b"abcd",), (b"abcd", b"efgh"), (bytes(8),)])),
    st.builds(VendorId, blobs),
    st.builds(TrafficSelectorsInitiator, st.lists(selectors, max_size=3).map(tuple)),
    st.builds(TrafficSelectorsResponder, st.lists(selectors, max_size=3).map(tuple)),
    st.builds(UnknownPayload, st.sampled_from([1, 32, 47, 48, 99, 200]), blobs),
)
encrypted_payloads = st.one_of(
    st.builds(Encrypted, st.sampled_from(list(PayloadType)), blobs),
    st.integers(1, 9).flatmap(
        lambda total: st.builds(EncryptedFragment, st.integers(1, total), st.just(total), u8, blobs)
    ),
)


@fuzz(400)
@given(
    st.lists(cleartext_payloads, max_size=5),
    st.one_of(st.none(), encrypted_payloads),
    st.sampled_from(list(ExchangeType)),
    st.sampled_from([0, 0x08, 0x20, 0x28]),
    st.integers(0, 2**32 - 1),
)
def test_generated_messages_round_trip(payloads, encrypted, exchange, flags, message_id):
    chain: tuple[Payload, ...] = tuple(payloads) + (() if encrypted is None else (encrypted,))
    message = Message(IkeHeader(SPI_I, SPI_R, exchange, flags, message_id), chain)
    wire = message.to_bytes()
    parsed = Message.from_bytes(wire)
    assert parsed.payloads == chain and parsed.to_bytes() == wire
    first, inner = serialize_payload_chain(payloads)
    assert parse_payload_chain(first, inner) == tuple(payloads)
