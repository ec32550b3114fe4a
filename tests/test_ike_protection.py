"""SK/SKF protection, fragmentation, reassembly and A|P, against the strongSwan 6.1 capture.

With the keys recomputed from the charon log, every protected message of the capture
decrypts; re-sealing the plaintext with the captured IVs reproduces strongSwan's bytes
exactly (fragments included), which pins padding, AAD, lengths and fragment sizing.
"""

from __future__ import annotations

import itertools
import struct

import hypothesis.strategies as st
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from hypothesis import given, settings

from tests.vectors import load_strongswan_run, requires_vectors
from wansim.ike.ciphers import (
    ENCRYPTION_ALGORITHMS,
    INTEGRITY_ALGORITHMS,
    CipherSuite,
    IntegrityError,
    UnsupportedAlgorithm,
)
from wansim.ike.constants import EncrId, IntegId, PayloadType
from wansim.ike.errors import ParseError
from wansim.ike.keymat import IkeSuite, initial_keys, intermediate_keys, rekeyed_keys
from wansim.ike.protection import (
    Fragment,
    Opened,
    Reassembly,
    ReassemblyError,
    fragment_data_bytes,
    int_auth_chunk,
    max_message_bytes,
    protect,
    protect_fragments,
    sk_message_bytes,
    unprotect,
)

GCM256 = CipherSuite(EncrId.ENCR_AES_GCM_16, 256)
CBC256 = CipherSuite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)
SUITES = [
    GCM256,
    CipherSuite(EncrId.ENCR_AES_GCM_16, 128),
    CBC256,
    CipherSuite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_384_192),
    CipherSuite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_512_256),
]
LAB = IkeSuite(5, GCM256)
AT_1280_V4_4500 = max_message_bytes(1280, ip_version=4, nat_t=True)


def keys_for(suite: CipherSuite) -> tuple[bytes, bytes]:
    return bytes(range(suite.encr_key_bytes)), bytes(range(100, 100 + suite.integ_key_bytes))


def counter_random():
    """A deterministic stand-in for os.urandom: 0x00.., 0x01.., ... per call."""
    counter = itertools.count()
    return lambda n: bytes([next(counter) % 256]) * n


def header(exchange: int = 43, flags: int = 0x08, mid: int = 1) -> bytes:
    # Next Payload and Length are placeholders: protect() patches them.
    return b"I" * 8 + b"R" * 8 + struct.pack("!BBBBII", 0, 0x20, exchange, flags, mid, 0)


def ke_payload(data_bytes: int, method: int = 36) -> bytes:
    return struct.pack("!BBHHH", 0, 0, 8 + data_bytes, method, 0) + bytes(data_bytes)


# --- the strongSwan capture -----------------------------------------------------------


@pytest.fixture(scope="module")
def run():
    return load_strongswan_run()


@pytest.fixture(scope="module")
def key_sets(run):
    """Key sets 0, 1 (IKE_SA lab[1]) and 2 (rekeyed lab[2]) from the logged secrets."""
    ks = run.key_sets
    lab1, lab2 = run.frame(3).ike, run.frame(24).ike
    k0 = initial_keys(LAB, ks[0].secret, ks[0].ni, ks[0].nr, lab1[:8], lab1[8:16])
    k1 = intermediate_keys(k0, ks[1].secret, ks[1].ni, ks[1].nr, lab1[:8], lab1[8:16])
    secrets = [ks[2].secret, ks[2].additional_secret]
    k2 = rekeyed_keys(k1, LAB, secrets, ks[2].ni, ks[2].nr, lab2[:8], lab2[8:16])
    return k0, k1, k2


def frame_keys(run, key_sets, frame: int) -> tuple[bytes, bytes]:
    """SK_e for a captured frame: which key set protected it and in which direction."""
    message = run.frame(frame).ike
    keys = key_sets[0] if frame in (3, 4, 5) else key_sets[2] if frame >= 24 else key_sets[1]
    from_initiator = bool(message[19] & 0x08)
    return (keys.ei, keys.ai) if from_initiator else (keys.er, keys.ar)


PROTECTED_FRAMES = [3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]


@requires_vectors
def test_every_protected_message_of_the_capture_opens(run, key_sets):
    kinds = {}
    for frame in PROTECTED_FRAMES:
        opened = unprotect(run.frame(frame).ike, GCM256, *frame_keys(run, key_sets, frame))
        kinds[frame] = type(opened)
    fragments = {3, 4, 12, 13, 19, 20}
    assert {f for f, kind in kinds.items() if kind is Fragment} == fragments


@requires_vectors
def test_intermediate_fragments_reassemble_to_the_mlkem_key_share(run, key_sets):
    """Frames 3 and 4: IKE_INTERMEDIATE request 1 in two SKF fragments (1248 + 66 bytes)."""
    ek, ak = frame_keys(run, key_sets, 3)
    first, second = (unprotect(run.frame(f).ike, GCM256, ek, ak) for f in (3, 4))
    assert (first.number, first.total, first.first_inner) == (1, 2, PayloadType.KE)
    assert (second.number, second.total, second.first_inner) == (2, 2, PayloadType.NONE)
    assert (len(first.data), len(second.data)) == (1187, 5)  # digest §5.2: 1187 per fragment
    buffer = Reassembly()
    assert buffer.add(second, now=0.0) is None  # out of order is fine
    message = buffer.add(first, now=0.001)
    assert isinstance(message, Opened) and message.fragments == 2
    assert message.first_inner == PayloadType.KE and len(message.inner) == 1192
    assert struct.unpack("!HH", message.inner[4:8])[0] == 36  # ML-KEM-768 encapsulation key
    # RFC 9242: A|P as if unfragmented, exactly what strongSwan fed into IntAuth_i1.
    assert message.int_auth_chunk() == run.values("IntAuth_A|P")[0]
    assert buffer.pending == 0


@requires_vectors
def test_intermediate_response_a_p_matches_strongswan(run, key_sets):
    response = unprotect(run.frame(5).ike, GCM256, *frame_keys(run, key_sets, 5))
    assert isinstance(response, Opened) and response.fragments == 0
    assert response.int_auth_chunk() == run.values("IntAuth_A|P")[1]
    assert (
        int_auth_chunk(response.header, response.first_inner, response.inner)
        == (run.values("IntAuth_A|P")[1])
    )


@requires_vectors
def test_ike_auth_decrypts_and_carries_the_logged_auth(run, key_sets):
    request = unprotect(run.frame(6).ike, GCM256, *frame_keys(run, key_sets, 6))
    response = unprotect(run.frame(7).ike, GCM256, *frame_keys(run, key_sets, 7))
    assert request.first_inner == PayloadType.IDi and response.first_inner == PayloadType.IDr
    auth_i, auth_r = run.values("AUTH = ")
    assert auth_i in request.inner and auth_r in response.inner
    assert b"initiator.lab.example" in request.inner


@requires_vectors
@pytest.mark.parametrize("frame", [f for f in PROTECTED_FRAMES if f not in (3, 4, 12, 13, 19, 20)])
def test_resealing_with_the_captured_iv_reproduces_strongswan_bytes(run, key_sets, frame):
    message = run.frame(frame).ike
    ek, ak = frame_keys(run, key_sets, frame)
    opened = unprotect(message, GCM256, ek, ak)
    iv = message[32:40]
    resealed = protect(
        opened.header, GCM256, ek, ak, opened.first_inner, opened.inner, lambda n: iv
    )
    assert resealed == message


@requires_vectors
@pytest.mark.parametrize("frames", [(3, 4), (12, 13), (19, 20)])
def test_refragmenting_reproduces_strongswan_fragments(run, key_sets, frames):
    """strongSwan's sizing at fragment_size 1280, IPv4, port 4500: 1248-byte limit."""
    ek, ak = frame_keys(run, key_sets, frames[0])
    captured = [run.frame(f).ike for f in frames]
    buffer = Reassembly()
    message = None
    for data in captured:
        message = buffer.add(unprotect(data, GCM256, ek, ak), now=0.0)
    ivs = iter(data[36:44] for data in captured)
    rebuilt = protect_fragments(
        message.header, GCM256, ek, ak, message.first_inner, message.inner,
        lambda n: next(ivs), max_message=AT_1280_V4_4500,
    )  # fmt: skip
    assert rebuilt == captured
    assert [len(x) for x in rebuilt][0] == 1248


# --- tampering ------------------------------------------------------------------------


def _flip_everywhere(message: bytes, suite: CipherSuite, ek: bytes, ak: bytes, framing: set[int]):
    for position in range(len(message)):
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        expected = ParseError if position in framing else IntegrityError
        with pytest.raises(expected):
            unprotect(bytes(tampered), suite, ek, ak)


@requires_vectors
@pytest.mark.parametrize("frame", [3, 4, 6])
def test_flipped_byte_in_captured_message_or_fragment_is_caught(run, key_sets, frame):
    """Every byte is covered by the ICV except the framing that locates the SK/SKF payload
    (header Next Payload, SK Payload Length), which gives a ParseError instead."""
    ek, ak = frame_keys(run, key_sets, frame)
    _flip_everywhere(run.frame(frame).ike, GCM256, ek, ak, framing={16, 30, 31})


@pytest.mark.parametrize("suite", SUITES, ids=str)
def test_flipped_byte_anywhere_is_caught_for_every_suite(suite):
    ek, ak = keys_for(suite)
    unencrypted = struct.pack("!BBH", 0, 0, 8) + b"VIDx"  # a Vendor ID left in clear
    head = bytearray(header(37, 0x08, 5))
    head[16] = PayloadType.VENDOR_ID
    message = protect(
        bytes(head), suite, ek, ak, PayloadType.NOTIFY, b"\0\0\0\x08\0\0\0\0",
        counter_random(), unencrypted=unencrypted,
    )  # fmt: skip
    _flip_everywhere(message, suite, ek, ak, framing={16, 28, 30, 31, 38, 39})
    for fragment in protect_fragments(
        header(), suite, ek, ak, PayloadType.KE, ke_payload(1184), counter_random(),
        max_message=600,
    ):  # fmt: skip
        _flip_everywhere(fragment, suite, ek, ak, framing={16, 30, 31})


def test_wrong_key_is_an_integrity_error():
    ek, ak = keys_for(CBC256)
    message = protect(header(), CBC256, ek, ak, PayloadType.KE, ke_payload(32), counter_random())
    with pytest.raises(IntegrityError):
        unprotect(message, CBC256, ek, bytes(len(ak)))
    with pytest.raises(IntegrityError):
        unprotect(message, GCM256, bytes(36), b"")


# --- round trips and sizes ------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES, ids=str)
@pytest.mark.parametrize("inner_bytes", [0, 1, 15, 16, 17, 1192, 3000])
def test_round_trip_whole_and_fragmented(suite, inner_bytes):
    ek, ak = keys_for(suite)
    inner = bytes((i * 7) % 256 for i in range(inner_bytes))
    message = protect(header(), suite, ek, ak, PayloadType.KE, inner, counter_random())
    assert len(message) == sk_message_bytes(suite, inner_bytes)
    opened = unprotect(message, suite, ek, ak)
    assert (opened.first_inner, opened.inner, opened.header[:16]) == (34, inner, header()[:16])
    assert struct.unpack("!I", message[24:28])[0] == len(message)

    limit = max_message_bytes(1280, nat_t=True)
    sent = protect_fragments(
        header(), suite, ek, ak, PayloadType.KE, inner, counter_random(), max_message=limit
    )
    assert all(len(datagram) <= limit for datagram in sent)
    if sk_message_bytes(suite, inner_bytes) <= limit:
        assert len(sent) == 1 and isinstance(unprotect(sent[0], suite, ek, ak), Opened)
        return
    buffer = Reassembly()
    results = [buffer.add(unprotect(d, suite, ek, ak), now=0.0) for d in reversed(sent)]
    assert results[:-1] == [None] * (len(sent) - 1)
    assert results[-1].inner == inner and results[-1].fragments == len(sent)
    if suite.aead:  # no block alignment: every fragment but the last fills the limit
        assert all(len(d) == limit for d in sent[:-1])


def test_unencrypted_payloads_travel_in_clear_and_in_fragment_one():
    ek, ak = keys_for(GCM256)
    unencrypted = struct.pack("!BBH", 0, 0, 8) + b"abcd"
    head = bytearray(header())
    head[16] = PayloadType.VENDOR_ID
    message = protect(
        bytes(head), GCM256, ek, ak, PayloadType.KE, ke_payload(32), counter_random(),
        unencrypted=unencrypted,
    )  # fmt: skip
    assert message[16] == PayloadType.VENDOR_ID and message[28] == PayloadType.SK
    opened = unprotect(message, GCM256, ek, ak)
    assert opened.unencrypted == bytes([PayloadType.SK]) + unencrypted[1:]  # as on the wire
    a_p = opened.int_auth_chunk()
    assert a_p[28:36] == bytes([PayloadType.SK, 0, 0, 8]) + b"abcd"
    fragments = protect_fragments(
        bytes(head), GCM256, ek, ak, PayloadType.KE, ke_payload(2000), counter_random(),
        max_message=1248, unencrypted=unencrypted,
    )  # fmt: skip
    assert fragments[0][16] == PayloadType.VENDOR_ID and fragments[0][28] == PayloadType.SKF
    assert all(f[16] == PayloadType.SKF for f in fragments[1:])
    assert all(len(f) <= 1248 for f in fragments)
    buffer = Reassembly()
    for fragment in fragments:
        result = buffer.add(unprotect(fragment, GCM256, ek, ak), now=0.0)
    assert result.unencrypted == bytes([PayloadType.SKF]) + unencrypted[1:]
    assert result.inner == ke_payload(2000)
    assert result.int_auth_chunk() == int_auth_chunk(
        bytes(head), PayloadType.KE, ke_payload(2000), unencrypted
    )


def test_fragment_limits_of_digest_5_2():
    """1248-byte message limit at 1280 on IPv4 port 4500; 1187 inner bytes per fragment
    with AES-GCM, 1167 with AES-CBC + HMAC-SHA2-256-128."""
    assert AT_1280_V4_4500 == 1248
    assert max_message_bytes(1280) == 1252
    assert max_message_bytes(1280, ip_version=6, nat_t=True) == 1228
    assert fragment_data_bytes(GCM256, 1248) == 1187
    assert fragment_data_bytes(CBC256, 1248) == 1167
    with pytest.raises(ValueError):
        max_message_bytes(60)
    with pytest.raises(ValueError):
        max_message_bytes(1280, ip_version=5)


@pytest.mark.parametrize(
    "suite,inner,size",
    [
        (GCM256, 1192, 1249), (CBC256, 1192, 1264),  # ML-KEM-768 IKE_INTERMEDIATE req
        (GCM256, 1096, 1153), (CBC256, 1096, 1168),  # ML-KEM-768 resp
        (GCM256, 808, 865), (CBC256, 808, 880),  # ML-KEM-512 req
        (GCM256, 776, 833), (CBC256, 776, 848),  # ML-KEM-512 resp
        (GCM256, 1576, 1633), (CBC256, 1576, 1648),  # ML-KEM-1024 req / resp
        (GCM256, 0, 57), (CBC256, 0, 80),  # empty INFORMATIONAL
    ],
)  # fmt: skip
def test_sk_message_sizes_match_digest_1_6(suite, inner, size):
    assert sk_message_bytes(suite, inner) == size


@pytest.mark.parametrize(
    "suite,inner,fragment_size,ip_version,nat_t,count",
    [
        (GCM256, 1192, 1280, 4, False, 1), (GCM256, 1192, 1280, 4, True, 2),
        (GCM256, 1192, 1280, 6, True, 2), (CBC256, 1192, 1280, 4, False, 2),
        (GCM256, 1096, 1280, 4, True, 1), (GCM256, 808, 1280, 6, True, 1),
        (GCM256, 1576, 1280, 4, False, 2), (GCM256, 1576, 1280, 6, True, 2),
    ],
)  # fmt: skip
def test_fragment_counts_match_digest_5_2(suite, inner, fragment_size, ip_version, nat_t, count):
    ek, ak = keys_for(suite)
    limit = max_message_bytes(fragment_size, ip_version=ip_version, nat_t=nat_t)
    sent = protect_fragments(
        header(), suite, ek, ak, PayloadType.KE, bytes(inner), counter_random(), max_message=limit
    )
    assert len(sent) == count


# --- reassembly -----------------------------------------------------------------------


def fragment(number: int, total: int, data: bytes = b"xy", mid: int = 1) -> Fragment:
    return Fragment(header(mid=mid), b"", number, total, 34 if number == 1 else 0, data)


def test_duplicates_are_ignored_and_counted():
    buffer = Reassembly()
    assert buffer.add(fragment(1, 2, b"ab"), now=0) is None
    assert buffer.add(fragment(1, 2, b"zz"), now=1) is None
    assert buffer.duplicates == 1 and buffer.pending == 1
    assert buffer.add(fragment(2, 2, b"cd"), now=2).inner == b"abcd"


def test_timeout_drops_a_stale_buffer():
    buffer = Reassembly(timeout_s=10)
    buffer.add(fragment(1, 2), now=100.0)
    assert buffer.deadline == 110.0
    assert buffer.expire(now=105.0) is False and buffer.pending == 1
    assert buffer.add(fragment(2, 2), now=111.0) is None  # fragment 1 has expired
    assert buffer.pending == 1 and buffer.deadline == 121.0
    assert buffer.expire(now=121.0) is True and buffer.pending == 0
    assert buffer.deadline is None and buffer.expire(now=500.0) is False


def test_larger_total_restarts_and_smaller_total_is_refused():
    """RFC 7383 §2.6: after a PMTU-driven re-fragmentation, a larger Total Fragments
    discards what was collected; a smaller one is a stale fragment."""
    buffer = Reassembly()
    buffer.add(fragment(1, 2, b"old"), now=0)
    buffer.add(fragment(2, 3, b"B"), now=0)
    assert buffer.pending == 1
    with pytest.raises(ReassemblyError, match="stale"):
        buffer.add(fragment(2, 2, b"old"), now=0)
    buffer.add(fragment(1, 3, b"A"), now=0)
    assert buffer.add(fragment(3, 3, b"C"), now=0).inner == b"ABC"


def test_another_message_restarts_the_buffer():
    buffer = Reassembly()
    buffer.add(fragment(1, 2, b"m1", mid=1), now=0)
    assert buffer.add(fragment(2, 2, b"m2", mid=2), now=0) is None
    assert buffer.pending == 1
    assert buffer.add(fragment(1, 2, b"M2", mid=2), now=0).inner == b"M2m2"


def test_limits_on_fragment_count_and_bytes():
    buffer = Reassembly(max_fragments=4, max_bytes=10)
    with pytest.raises(ReassemblyError, match="exceed the limit"):
        buffer.add(fragment(1, 5), now=0)
    buffer.add(fragment(1, 3, b"123456"), now=0)
    with pytest.raises(ReassemblyError, match="exceeds 10 bytes"):
        buffer.add(fragment(2, 3, b"12345"), now=0)
    assert buffer.pending == 0 and buffer.buffered_bytes == 0
    assert Reassembly().max_fragments == 255 and Reassembly().max_bytes == 10_000
    with pytest.raises(ValueError):
        Reassembly(timeout_s=0)


# --- structural errors and ciphers ----------------------------------------------------


def _seal_raw(suite, head: bytes, sk_header: bytes, plaintext: bytes) -> bytes:
    """Authenticated bytes with arbitrary framing, to reach checks behind the ICV."""
    ek, ak = keys_for(suite)
    sk_length = len(sk_header) + suite.iv_bytes + len(plaintext) + suite.icv_bytes
    head = head[:16] + bytes([53 if len(sk_header) == 8 else 46]) + head[17:24]
    head += (28 + sk_length).to_bytes(4, "big")
    sk_header = sk_header[:2] + sk_length.to_bytes(2, "big") + sk_header[4:]
    aad = head + sk_header
    return aad + suite.seal(ek, ak, bytes(suite.iv_bytes), aad, plaintext)


@pytest.mark.parametrize(
    "head_mutation,sk_header,plaintext,match",
    [
        (None, b"\x22\0\0\0", b"ab\x05", "Pad Length"),
        (None, b"\x22\0\0\0", b"", "Pad Length"),
        (None, b"\x22\0\0\0\0\0\0\x02", b"ab\x00", "fragment number 0"),
        (None, b"\x22\0\0\0\0\x03\0\x02", b"ab\x00", "fragment number 3"),
        (b"\0\0\0\x99", b"\x22\0\0\0", b"ab\x00", "Length"),
    ],
)
def test_authenticated_but_malformed_is_a_parse_error(head_mutation, sk_header, plaintext, match):
    ek, ak = keys_for(GCM256)
    message = bytearray(_seal_raw(GCM256, header(), sk_header, plaintext))
    if head_mutation:  # re-seal with a lying Length field so the ICV still verifies
        aad = bytes(message[:24]) + head_mutation + bytes(message[28 : 28 + len(sk_header)])
        body = GCM256.seal(ek, ak, bytes(8), aad, plaintext)
        message = bytearray(aad + body)
    with pytest.raises(ParseError, match=match) as caught:
        unprotect(bytes(message), GCM256, ek, ak)
    assert not isinstance(caught.value, IntegrityError)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"short", "shorter than its header"),
        (header()[:16] + b"\x00" + header()[17:], "no SK"),
        (header()[:16] + b"\x2b" + header()[17:] + b"\x00\x00\x00\x02", "below the 4-byte"),
        (header()[:16] + b"\x2b" + header()[17:] + b"\x00\x00", "truncated payload header"),
        (header()[:16] + b"\x2e" + header()[17:] + b"\x00\x00", "truncated SK"),
        (
            header()[:16] + b"\x2e" + header()[17:] + b"\x22\x00\x00\x09" + bytes(30),
            "does not reach",
        ),
        (header()[:16] + b"\x2e" + header()[17:] + b"\x22\x00\x00\x0a" + bytes(6), "shorter"),
    ],
)
def test_malformed_framing_is_a_parse_error(data, match):
    with pytest.raises(ParseError, match=match):
        unprotect(data, GCM256, *keys_for(GCM256))


def test_cbc_ciphertext_must_be_whole_blocks():
    ek, ak = keys_for(CBC256)
    aad = header()[:16] + b"\x2e" + header()[17:24] + (28 + 4 + 16 + 8 + 16).to_bytes(4, "big")
    aad += b"\x22\x00" + (4 + 16 + 8 + 16).to_bytes(2, "big")
    body = bytes(16) + bytes(8)
    body += CBC256.integrity.mac(ak, aad + body)
    with pytest.raises(ParseError, match="multiple of 16"):
        unprotect(aad + body, CBC256, ek, ak)


def test_aes_cbc_matches_rfc3602_case_1_and_icv_covers_aad_iv_ciphertext():
    """RFC 3602 §4 case #1 (AES-128-CBC); the ICV is HMAC-SHA2-256-128 over
    AAD | IV | ciphertext (RFC 7296 §3.14, RFC 4868 §2.1), recomputed with pyca's HMAC."""
    suite = CipherSuite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128)
    key = bytes.fromhex("06a9214036b8a15b512e03d534120006")
    iv = bytes.fromhex("3dafba429d9eb430b422da802c9fac41")
    integ_key = bytes(32)
    body = suite.seal(key, integ_key, iv, b"aad", b"Single block msg")
    assert body[16:32] == bytes.fromhex("e353779c1079aeb82708942dbe77181a")
    mac = pyca_hmac.HMAC(integ_key, hashes.SHA256())
    mac.update(b"aad" + body[:32])
    assert body[32:] == mac.finalize()[:16]
    assert suite.open(key, integ_key, b"aad", body) == b"Single block msg"


def test_integrity_macs_match_rfc4868_truncations():
    """RFC 4868 §2.7.2 reuses RFC 4231 test case 2 ("Jefe"), truncated to 128/192/256 bits."""
    data, key = b"what do ya want for nothing?", b"Jefe"
    expected = {
        12: "5bdcc146bf60754e6a042426089575c7",
        13: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47",
        14: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554",
    }
    for transform_id, icv in expected.items():
        assert INTEGRITY_ALGORITHMS[transform_id].mac(key, data).hex() == icv


def test_cipher_suite_validation():
    assert sorted(ENCRYPTION_ALGORITHMS) == [12, 20]
    with pytest.raises(UnsupportedAlgorithm, match="AEAD"):
        CipherSuite(20, 256, 12)
    with pytest.raises(UnsupportedAlgorithm, match="needs an INTEG"):
        CipherSuite(12, 256)
    with pytest.raises(UnsupportedAlgorithm, match="192-bit"):
        CipherSuite(20, 192)
    with pytest.raises(UnsupportedAlgorithm):
        CipherSuite(28, 256)
    with pytest.raises(UnsupportedAlgorithm):
        CipherSuite(12, 128, 2)
    assert CipherSuite(20, 256, 0).integ is None  # INTEG "NONE" (0) reads as absent
    assert (GCM256.encr_key_bytes, GCM256.integ_key_bytes, GCM256.icv_bytes) == (36, 0, 16)
    assert (CBC256.encr_key_bytes, CBC256.integ_key_bytes, CBC256.iv_bytes) == (32, 32, 16)
    assert str(CBC256) == "ENCR_AES_CBC_256/AUTH_HMAC_SHA2_256_128"
    ek, ak = keys_for(CBC256)
    with pytest.raises(ValueError, match="padded"):
        CBC256.seal(ek, ak, bytes(16), b"", b"odd")
    with pytest.raises(ValueError, match="encryption key"):
        CBC256.seal(b"short", ak, bytes(16), b"", bytes(16))
    with pytest.raises(ValueError, match="IV"):
        GCM256.seal(bytes(36), b"", bytes(12), b"", b"")


# --- fuzzing --------------------------------------------------------------------------


def _valid_messages():
    out = []
    for suite in (GCM256, CBC256):
        ek, ak = keys_for(suite)
        out.append((suite, protect(header(), suite, ek, ak, 34, ke_payload(40), counter_random())))
        out += [
            (suite, f)
            for f in protect_fragments(
                header(), suite, ek, ak, 34, ke_payload(300), counter_random(), max_message=200
            )
        ]
    return out


VALID = _valid_messages()


@settings(deadline=None, max_examples=400)
@given(data=st.binary(max_size=400), suite=st.sampled_from([GCM256, CBC256]))
def test_fuzz_random_bytes_only_raise_parse_errors(data, suite):
    with pytest.raises(ParseError):
        unprotect(data, suite, *keys_for(suite))


@settings(deadline=None, max_examples=600)
@given(
    choice=st.sampled_from(VALID),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
    cut=st.integers(min_value=0, max_value=400),
    garbage=st.binary(max_size=8),
    mode=st.sampled_from(["set", "truncate", "append"]),
)
def test_fuzz_mutated_messages_only_raise_parse_errors(choice, position, value, cut, garbage, mode):
    suite, message = choice
    data = bytearray(message)
    if mode == "set":
        position %= len(data)
        if data[position] == value:
            return
        data[position] = value
    elif mode == "truncate":
        data = data[: cut % len(data)]
    else:
        data += garbage or b"\0"
    with pytest.raises(ParseError):
        unprotect(bytes(data), suite, *keys_for(suite))


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=6),
            st.integers(min_value=1, max_value=6),
            st.integers(min_value=1, max_value=3),
            st.binary(max_size=6),
            st.floats(min_value=0, max_value=50),
        ),
        max_size=25,
    )
)
def test_fuzz_reassembly_keeps_its_limits(events):
    buffer = Reassembly(max_fragments=5, max_bytes=12, timeout_s=10)
    for number, total, mid, data, now in events:
        number = min(number, total)
        try:
            result = buffer.add(fragment(number, total, data, mid=mid), now=now)
        except ReassemblyError:
            continue
        assert buffer.buffered_bytes <= 12 and buffer.pending <= 5
        if result is not None:
            assert len(result.inner) <= 12 and 1 <= result.fragments <= 5
