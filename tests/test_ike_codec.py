"""IKE codec: (object, bytes) pairs both ways, strict rejections, and the real strongSwan
6.1 capture parsed and re-serialized byte for byte (cross-checked with tshark's decode)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from tests.vectors import VECTORS_DIR, load_strongswan_run, requires_vectors
from wansim.ike.ciphers import CipherSuite
from wansim.ike.constants import (
    AuthMethod,
    CertEncoding,
    EncrId,
    ExchangeType,
    IdType,
    KeMethod,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
)
from wansim.ike.errors import InvalidMajorVersion, ParseError, UnsupportedCriticalPayload
from wansim.ike.message import (
    IkeHeader,
    Message,
    add_non_esp_marker,
    classify_nat_t_datagram,
    parse_payload_chain,
    serialize_payload_chain,
    strip_non_esp_marker,
)
from wansim.ike.payloads import (
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
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
    Transform,
    UnknownPayload,
    VendorId,
)
from wansim.ike.protection import Fragment, unprotect


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


SPI_I = h("0102030405060708")
IPV4 = ipaddress.IPv4Address
IPV6 = ipaddress.IPv6Address

# (payload object, its bytes with Next Payload 0), written by hand from RFC 7296 §3.
PAYLOAD_TABLE = [
    (
        SecurityAssociation(
            (
                Proposal(
                    1,
                    ProtocolId.IKE,
                    b"",
                    (
                        Transform.make(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 256),
                        Transform(TransformType.PRF, PrfId.PRF_HMAC_SHA2_256),
                    ),
                ),
            )
        ),
        # SA hdr | proposal: last, len 28, #1, IKE, SPI size 0, 2 transforms
        # | ENCR 20 + TV key length 256 (more) | PRF 5 (last)
        "00 00 0020  00 00 001c 01 01 00 02  03 00 000c 01 00 0014 800e 0100"
        "  00 00 0008 02 00 0005",
    ),
    (
        SecurityAssociation(
            (
                Proposal(1, ProtocolId.ESP, h("c0ffee01"), (Transform(TransformType.ESN, 0),)),
                Proposal(
                    2,
                    ProtocolId.ESP,
                    h("c0ffee01"),
                    (Transform(TransformType.ADDKE1, KeMethod.ML_KEM_768),),
                ),
            )
        ),
        "00 00 002c  02 00 0014 01 03 04 01 c0ffee01  00 00 0008 05 00 0000"
        "  00 00 0014 02 03 04 01 c0ffee01  00 00 0008 06 00 0024",
    ),
    (  # TLV attribute (unknown type 99) kept verbatim next to the TV key length
        SecurityAssociation(
            (
                Proposal(
                    3,
                    ProtocolId.IKE,
                    h("1111111111111111"),
                    (Transform(TransformType.ENCR, 12, (Attribute(99, b"xy"),)),),
                ),
            )
        ),
        "00 00 0022  00 00 001e 03 01 08 01 1111111111111111  00 00 000e 01 00 000c 0063 0002 7879",
    ),
    (KeyExchange(KeMethod.CURVE25519, h("deadbeef")), "00 00 000c 001f 0000 deadbeef"),
    (KeyExchange(KeMethod.ML_KEM_768, b""), "00 00 0008 0024 0000"),
    (Nonce(bytes(range(16))), "00 00 0014 000102030405060708090a0b0c0d0e0f"),
    (
        Notify(NotifyType.NAT_DETECTION_SOURCE_IP, h("a1a2a3a4")),
        "00 00 000c 00 00 4004 a1a2a3a4",
    ),
    (Notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED), "00 00 0008 00 00 402e"),
    (
        Notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, h("12345678")),
        "00 00 000c 03 04 4009 12345678",
    ),
    (Notify(NotifyType.INVALID_KE_PAYLOAD, h("0014")), "00 00 000a 00 00 0011 0014"),
    (Notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, b"\x42"), "00 00 0009 00 00 4039 42"),
    (IdInitiator(IdType.ID_FQDN, b"a.example"), "00 00 0011 02 000000 612e6578616d706c65"),
    (IdResponder(IdType.ID_IPV4_ADDR, h("c0000202")), "00 00 000c 01 000000 c0000202"),
    (Auth(AuthMethod.SHARED_KEY_MIC, h("cafebabe")), "00 00 000c 02 000000 cafebabe"),
    (
        TrafficSelectorsInitiator((TrafficSelector.from_network("198.51.100.0/24"),)),
        "00 00 0018 01 000000  07 00 0010 0000 ffff c6336400 c63364ff",
    ),
    (
        TrafficSelectorsResponder(
            (
                TrafficSelector(IPV6("2001:db8::1"), IPV6("2001:db8::ff"), 6, 443, 443),
                TrafficSelector(IPV4("10.0.0.1"), IPV4("10.0.0.1"), 17, 500, 500),
            )
        ),
        "00 00 0040 02 000000  08 06 0028 01bb 01bb"
        " 20010db8000000000000000000000001 20010db80000000000000000000000ff"
        "  07 11 0010 01f4 01f4 0a000001 0a000001",
    ),
    (Delete(ProtocolId.IKE), "00 00 0008 01 00 0000"),
    (
        Delete(ProtocolId.ESP, (h("11111111"), h("22222222"))),
        "00 00 0010 03 04 0002 11111111 22222222",
    ),
    (VendorId(h("cafe0000")), "00 00 0008 cafe0000"),
    (Certificate(CertEncoding.X509_SIGNATURE, h("308201")), "00 00 0008 04 308201"),
    (CertificateRequest(CertEncoding.X509_SIGNATURE, h("a1b2c3d4")), "00 00 0009 04 a1b2c3d4"),
    (Encrypted(PayloadType.IDi, h("0011223344556677")), "23 00 000c 0011223344556677"),
    (
        EncryptedFragment(1, 2, PayloadType.KE, h("deadbeef")),
        "22 00 000c 0001 0002 deadbeef",
    ),
    (EncryptedFragment(2, 2, PayloadType.NONE, h("beef")), "00 00 000a 0002 0002 beef"),
]


@pytest.mark.parametrize(("payload", "wire"), PAYLOAD_TABLE)
def test_payload_both_ways(payload, wire):
    data = h(wire)
    assert payload.to_bytes() == data
    assert type(payload).from_bytes(data) == payload


def test_header_both_ways():
    header = IkeHeader(SPI_I, bytes(8), ExchangeType.IKE_SA_INIT, 0x08, 0, PayloadType.SA, 28)
    wire = h("0102030405060708 0000000000000000 21 20 22 08 00000000 0000001c")
    assert header.to_bytes() == wire
    assert IkeHeader.from_bytes(wire) == header
    assert header.is_initiator and not header.is_response


def test_message_both_ways_fills_next_payload_and_length():
    header = IkeHeader(SPI_I, h("a0a1a2a3a4a5a6a7"), ExchangeType.INFORMATIONAL, 0x20, 7)
    message = Message(header, (Notify(NotifyType.COOKIE, h("c0c0")), Nonce(bytes(16))))
    wire = h(
        "0102030405060708 a0a1a2a3a4a5a6a7 29 20 25 20 00000007 0000003a"
        " 28 00 000a 00 00 4006 c0c0  00 00 0014" + "00" * 16
    )
    assert message.to_bytes() == wire
    parsed = Message.from_bytes(wire)
    assert parsed.payloads == message.payloads
    assert parsed.header.length == 58 and parsed.header.next_payload == PayloadType.NOTIFY
    assert parsed.raw == wire and parsed.encrypted is None
    assert parsed.notify(NotifyType.COOKIE).data == h("c0c0")
    assert parsed.find(Nonce) == Nonce(bytes(16))


def test_inner_chain_round_trip_and_sk_offset():
    inner = (
        IdInitiator(IdType.ID_FQDN, b"initiator.lab.example"),
        Auth(AuthMethod.SHARED_KEY_MIC, bytes(32)),
        UnknownPayload(200, b"opaque"),
    )
    first, chain = serialize_payload_chain(inner)
    assert first == PayloadType.IDi
    assert parse_payload_chain(first, chain) == inner
    header = IkeHeader(SPI_I, SPI_I, ExchangeType.IKE_AUTH, 0x08, 1)
    message = Message(header, (Notify(NotifyType.COOKIE, b"x"), Encrypted(first, bytes(40))))
    parsed = Message.from_bytes(message.to_bytes())
    assert parsed.encrypted == Encrypted(PayloadType.IDi, bytes(40))
    assert parsed.encrypted_offset == 28 + 9
    assert serialize_payload_chain(()) == (PayloadType.NONE, b"")


def test_reserved_bits_ignored_and_cleared():
    # critical bit on a known payload, reserved header flag bits and minor version 5
    wire = (
        h("0102030405060708 0000000000000000 28 25 22 c9 00000000 00000030")
        + h("00 ff 0014")
        + bytes(16)
    )
    message = Message.from_bytes(wire)
    assert message.header.flags == 0x08 and message.header.version == 0x25
    assert message.payloads == (Nonce(bytes(16)),)
    assert message.to_bytes()[19] == 0x08 and message.to_bytes()[29] == 0


def test_unknown_payloads():
    base = h("0102030405060708 0000000000000000 63 20 22 08 00000000 00000024")
    skipped = Message.from_bytes(base + h("00 00 0008 01020304"))
    assert skipped.payloads == (UnknownPayload(99, h("01020304")),)
    assert skipped.to_bytes() == base + h("00 00 0008 01020304")
    with pytest.raises(UnsupportedCriticalPayload) as caught:
        Message.from_bytes(base + h("00 80 0008 01020304"))
    assert caught.value.payload_type == 99 and caught.value.notify_data == b"\x63"
    assert caught.value.header.spi_i == SPI_I
    with pytest.raises(UnsupportedCriticalPayload):
        parse_payload_chain(99, h("00 80 0004"))


def test_major_version_is_distinguishable():
    wire = h("0102030405060708 0000000000000000 00 30 22 08 00000000 0000001c")
    with pytest.raises(InvalidMajorVersion) as caught:
        Message.from_bytes(wire)
    assert caught.value.major_version == 3
    assert caught.value.header.exchange_type == ExchangeType.IKE_SA_INIT
    with pytest.raises(ParseError) as ikev1:
        Message.from_bytes(wire[:17] + b"\x10" + wire[18:])
    assert not isinstance(ikev1.value, InvalidMajorVersion)


GOOD_HEADER = "0102030405060708 0000000000000000 {np} 20 22 08 00000000 {length:08x}"


def message_bytes(first: str, chain: str) -> bytes:
    body = h(chain)
    return h(GOOD_HEADER.format(np=first, length=28 + len(body))) + body


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (h("0102030405060708"), "header"),
        (h(GOOD_HEADER.format(np="00", length=29)), "datagram length"),
        (h(GOOD_HEADER.format(np="00", length=28)) + b"\0", "datagram length"),
        (bytes(8) + h(GOOD_HEADER.format(np="00", length=28))[8:], "initiator SPI is zero"),
        (message_bytes("28", "00 00 0013" + "00" * 15), "16..256"),
        (message_bytes("28", "00 00 0105" + "00" * 257), "16..256"),
        (message_bytes("28", "00 00 0003"), "below"),
        (message_bytes("28", "00 00 0020" + "00" * 16), "does not fit"),
        (message_bytes("28", "29 00 0014" + "00" * 16), "announced"),
        (message_bytes("28", "00 00 0014" + "00" * 16 + "00"), "trailing"),
        (message_bytes("2e", "00 00 0008 00000000 28 00 0014" + "00" * 16), "follow"),
        (message_bytes("35", "00 00 0008 0000 0002"), "fragment number 0"),
        (message_bytes("35", "00 00 0008 0003 0002"), "fragment number 3"),
        (
            message_bytes("21", "00 00 0014 02 00 0008 01 01 00 00 00 00 0008 03 01 00 00"),
            "numbers",
        ),
        (message_bytes("21", "00 00 000c 00 00 0008 01 01 00 01"), "announces 1"),
        (message_bytes("21", "00 00 0010 00 00 000c 01 01 04 00 00000000"), "SPI size"),
        (message_bytes("21", "00 00 0014 00 00 0010 01 01 00 01 03 00 0008 01 00 000c"), "flag"),
        (
            message_bytes("21", "00 00 0014 00 00 0010 01 01 00 01 01 00 0008 01 00 000c"),
            "last/more",
        ),
        (
            message_bytes("21", "00 00 0014 00 00 0010 01 07 00 01 00 00 0008 01 00 000c"),
            "protocol",
        ),
        (
            message_bytes("21", "00 00 0014 00 00 0010 01 01 00 01 00 00 000c 01 00 000c"),
            "does not fit",
        ),
        (
            message_bytes(
                "21", "00 00 0018 00 00 0014 01 01 00 01 00 00 000c 01 00 000c 000e 0010"
            ),
            "overrun",
        ),
        (message_bytes("2a", "00 00 000c 03 04 0002 11111111"), "Delete"),
        (message_bytes("2c", "00 00 0014 01 000000 07 00 0010 0000 ffff 00000000"), "length"),
        (
            message_bytes("2c", "00 00 0018 01 000000 09 00 0010 0000 ffff 0000000000000000"),
            "type 9",
        ),
        (
            message_bytes("2c", "00 00 0018 02 000000 07 00 0010 0000 ffff 0000000000000000"),
            "announces 2",
        ),
        (message_bytes("29", "00 00 0008 00 08 4000"), "SPI"),
        (message_bytes("22", "00 00 0006 0000"), "KE"),
    ],
)
def test_malformed_is_parse_error(wire, reason):
    with pytest.raises(ParseError, match=reason):
        Message.from_bytes(wire)


def test_encrypted_payload_not_allowed_inside():
    with pytest.raises(ParseError, match="inside"):
        parse_payload_chain(PayloadType.SK, h("00 00 0008 00000000"))
    with pytest.raises(ValueError, match="last"):
        serialize_payload_chain((Encrypted(0, b""), Nonce(bytes(16))))


def test_local_misuse_is_a_local_error():
    with pytest.raises(ValueError):
        Nonce(bytes(8))
    with pytest.raises(ValueError):
        Proposal(1, ProtocolId.ESP, b"")
    with pytest.raises(ValueError):
        EncryptedFragment(0, 1, 0, b"")
    with pytest.raises(ValueError):
        IkeHeader(b"short", bytes(8), 34, 0, 0)
    with pytest.raises(ValueError, match="one byte"):
        IkeHeader(SPI_I, bytes(8), 300, 0, 0)
    with pytest.raises(ValueError, match="15 bits"):
        Attribute(0x8000, 1)
    with pytest.raises(ValueError):
        Attribute(14, 0x10000)


def test_non_esp_marker():
    ike = h(GOOD_HEADER.format(np="00", length=28))
    datagram = add_non_esp_marker(ike)
    assert datagram[:4] == bytes(4) and strip_non_esp_marker(datagram) == ike
    assert classify_nat_t_datagram(datagram) == "ike"
    assert classify_nat_t_datagram(h("c0ffee01 00000001") + bytes(16)) == "esp"
    assert classify_nat_t_datagram(b"\xff") == "keepalive"
    for bad in (h("c0ffee01 00000001"), b"\xff", b"\0\0"):
        with pytest.raises(ParseError):
            strip_non_esp_marker(bad)


# --- the real strongSwan 6.1 capture -------------------------------------------------


def tshark_frames() -> dict[int, str]:
    text = (VECTORS_DIR / "tshark-decoded.txt").read_text()
    frames = re.split(r"^Frame (\d+): ", text, flags=re.M)
    return {int(frames[i]): frames[i + 1] for i in range(1, len(frames), 2)}


@requires_vectors
def test_every_ike_datagram_round_trips_byte_for_byte():
    run = load_strongswan_run()
    ike = [d for d in run.datagrams if d.ike is not None]
    assert len(ike) == 23
    for datagram in ike:
        message = Message.from_bytes(datagram.ike)
        assert message.to_bytes() == datagram.ike, datagram.frame
        if datagram.dport == 4500 or datagram.sport == 4500:
            assert strip_non_esp_marker(datagram.udp_payload) == datagram.ike
    for datagram in run.datagrams:
        if datagram.esp is not None:
            assert classify_nat_t_datagram(datagram.udp_payload) == "esp"


@requires_vectors
@pytest.mark.parametrize("frame", [1, 2])
def test_ike_sa_init_matches_tshark(frame):
    run = load_strongswan_run()
    decoded = tshark_frames()[frame]
    message = Message.from_bytes(run.frame(frame).ike)
    sa = message.find(SecurityAssociation)
    (proposal,) = sa.proposals
    transforms = [(int(t.type), int(t.id)) for t in proposal.transforms]
    assert transforms == [
        (int(a), int(b))
        for a, b in re.findall(
            r"Transform Type: .*\((\d+)\)\n.*\n.*Transform ID.*?(\d+)\)?\n", decoded
        )
    ]
    assert transforms == [(1, 20), (2, 5), (4, 31), (6, 36)]
    assert proposal.transforms[0].key_length == int(re.search(r"Key Length: (\d+)", decoded)[1])
    ke = message.find(KeyExchange)
    assert ke.method == int(re.search(r"Key Exchange Method: .*\((\d+)\)", decoded)[1])
    assert ke.data.hex() == re.search(r"Key Exchange Data: (\w+)", decoded)[1]
    assert message.find(Nonce).data.hex() == re.search(r"Nonce DATA: (\w+)", decoded)[1]
    notifies = [
        (int(t), "" if d == "<MISSING>" else d)
        for t, d in re.findall(
            r"Notify Message Type: .*\((\d+)\)\n\s+Notification DATA: (\S+)", decoded
        )
    ]
    assert [(int(n.type), n.data.hex()) for n in message.find_all(Notify)] == notifies
    assert len(notifies) == (6 if frame == 1 else 7)


# --- inner payload chains of the capture, opened with the logged keys ----------------

SK_FRAMES = [5, 6, 7, 10, 11, 14, 15, 16, 17, 18, 21, 22, 23, 24, 25]
SKF_PAIRS = [(3, 4), (12, 13), (19, 20)]


def inner_chain(run, frames) -> tuple[int, bytes]:
    """(first inner type, plaintext chain) of a captured SK message or SKF pair."""
    suite = CipherSuite(EncrId.ENCR_AES_GCM_16, 256)
    key_set = run.key_sets[0 if frames[0] <= 5 else 2 if frames[0] >= 24 else 1]
    parts = []
    for frame in frames:
        message = run.frame(frame).ike
        initiator = bool(message[19] & 0x08)
        keys = (key_set.sk_ei, key_set.sk_ai) if initiator else (key_set.sk_er, key_set.sk_ar)
        parts.append(unprotect(message, suite, *keys))
    first = parts[0].first_inner
    return first, b"".join(p.data if isinstance(p, Fragment) else p.inner for p in parts)


def tshark_inner(decoded: str) -> list[int]:
    """Payload types tshark shows inside the decrypted data (substructures left out)."""
    types = [int(t) for t in re.findall(r"^\s+Payload: .*?\((\d+)\)", decoded, flags=re.M)]
    return [t for t in types if t not in (2, 3, 46, 53)]


@requires_vectors
@pytest.mark.parametrize("frames", [(f,) for f in SK_FRAMES] + SKF_PAIRS)
def test_decrypted_inner_chains_match_tshark(frames):
    run = load_strongswan_run()
    first, chain = inner_chain(run, frames)
    payloads = parse_payload_chain(first, chain)
    assert serialize_payload_chain(payloads) == (first, chain)  # byte for byte
    decoded = tshark_frames()[frames[-1]]
    assert [int(p.payload_type) for p in payloads] == tshark_inner(decoded)
    shown_notifies = [int(t) for t in re.findall(r"Notify Message Type: .*\((\d+)\)", decoded)]
    assert [int(n.type) for n in payloads if isinstance(n, Notify)] == shown_notifies
    for ts in [p for p in payloads if isinstance(p, TrafficSelectorsInitiator)]:
        assert str(ts.selectors[0].start_address) in decoded
    for auth in [p for p in payloads if isinstance(p, Auth)]:
        assert auth.data.hex() in decoded
    for ident in [p for p in payloads if isinstance(p, IdInitiator | IdResponder)]:
        assert f"Identification Data:{ident.data.decode()}" in decoded


@requires_vectors
def test_describe_like_tshark_and_strongswan():
    run = load_strongswan_run()
    request = Message.from_bytes(run.frame(1).ike)
    assert str(request) == (
        "IKE_SA_INIT request 0 [ HDR, SA, KE(CURVE25519), Nonce, N(NAT_DETECTION_SOURCE_IP), "
        "N(NAT_DETECTION_DESTINATION_IP), N(IKEV2_FRAGMENTATION_SUPPORTED), "
        "N(SIGNATURE_HASH_ALGORITHMS), N(REDIRECT_SUPPORTED), N(INTERMEDIATE_EXCHANGE_SUPPORTED) ]"
    )
    fragment = Message.from_bytes(run.frame(4).ike)
    assert fragment.describe() == "IKE_INTERMEDIATE request 1 [ HDR, SKF(2/2) ]"
    first, chain = inner_chain(run, (22,))
    delete = Message.from_bytes(run.frame(22).ike)
    inner = parse_payload_chain(first, chain)
    assert delete.describe(inner) == "INFORMATIONAL request 8 [ HDR, SK{D} ]"
