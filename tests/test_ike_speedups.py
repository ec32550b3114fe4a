"""The engine's speed helpers change nothing observable: `fast_init` builds the same
objects as the `__init__` dataclasses writes, and `IdentityMemo` answers by identity only."""

from __future__ import annotations

import dataclasses
import functools
import hmac
import inspect
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.ike import keymat
from wansim.ike.ciphers import UnsupportedAlgorithm
from wansim.ike.constants import PrfId, ProtocolId
from wansim.ike.errors import ParseError
from wansim.ike.events import ExchangeCompleted
from wansim.ike.frozen import fast_init
from wansim.ike.memo import IdentityMemo
from wansim.ike.message import IkeHeader, _parse_notify, _parse_sa
from wansim.ike.payloads import (
    EncryptedFragment,
    IdInitiator,
    Notify,
    Proposal,
    SecurityAssociation,
)
from wansim.ike.proposals import parse_proposal


def _zoo():
    """Frozen dataclasses of every shape: defaults, factories, init=False, slots,
    inheritance, keyword-only fields, __post_init__ checks."""

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: bytes = b"x"
        c: list = dataclasses.field(default_factory=list)
        d: int = dataclasses.field(default=3, init=False)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int
        b: tuple = ()

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a must not be negative")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Child(Slotted):
        c: str = "s"

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        a: int
        b: int = 2

    return Plain, Slotted, Child, KeywordOnly


CALLS = [
    ("Plain", (1,), {}),
    ("Plain", (1, b"y", [1]), {}),
    ("Slotted", (2,), {"b": (1,)}),
    ("Child", (1, (), "z"), {}),
    ("KeywordOnly", (), {"a": 1}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
def test_fast_init_builds_what_the_dataclass_init_builds(name, args, kwargs):
    reference = {c.__name__: c for c in _zoo()}[name]
    fast = fast_init({c.__name__: c for c in _zoo()}[name])
    expected, got = reference(*args, **kwargs), fast(*args, **kwargs)
    assert repr(got) == repr(expected)
    assert dataclasses.astuple(got) == dataclasses.astuple(expected)
    assert _parameters(fast) == _parameters(reference)


def _parameters(cls) -> list[tuple]:
    return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(cls).parameters.values()]


def test_fast_init_keeps_checks_and_argument_errors():
    plain, slotted, *_ = (fast_init(c) for c in _zoo())
    with pytest.raises(ValueError, match="negative"):
        slotted(-1)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
        plain()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain(1).a = 2
    with pytest.raises(TypeError, match="not a frozen dataclass"):
        fast_init(dataclasses.dataclass(type("Loose", (), {"__annotations__": {"a": int}})))


def test_engine_records_keep_their_checks_and_equality():
    with pytest.raises(ValueError, match="fragment 3 of 2"):
        EncryptedFragment(3, 2, 0, b"")
    assert Notify(16388) == Notify(16388, b"", 0, b"")
    assert IdInitiator(2, b"x") == dataclasses.replace(IdInitiator(2, b"y"), data=b"x")
    event = ExchangeCompleted("IKE_AUTH", 1, "requester", 10, 20, 1, 1, 0.0, 0.1, 0.1)
    assert event.transmissions == 1 and event.crypto_ops == ()


def test_identity_memo_answers_the_same_object_only():
    calls = []
    memo = IdentityMemo(lambda t: calls.append(t) or len(t), size=2)
    a, b = tuple([1, 2]), tuple([1, 2])  # equal, but two objects
    assert memo(a) == memo(a) == 2 and len(calls) == 1
    assert memo(b) == 2 and len(calls) == 2
    memo((3,))  # a third object: the memo starts over rather than grow
    assert memo(a) == 2 and len(calls) == 4


def test_unchecked_builds_the_same_object_without_the_checks():
    plain, slotted, child, _ = (fast_init(c) for c in _zoo())
    assert child._unchecked(1, (), "z") == child(1, (), "z")
    assert plain._unchecked(1, b"y", [2]) == plain(1, b"y", [2])
    assert slotted._unchecked(-1, ()).a == -1  # no __post_init__: callers vouch for values
    header = IkeHeader(b"\x01" * 8, bytes(8), 34, 8, 0, 33, 300)
    assert IkeHeader.from_bytes(header.to_bytes() + bytes(272)) == header


_TRANSFORMS = parse_proposal("aes256gcm16-x25519-ke1_mlkem768", "esp").transforms
# ESP proposals with a 4-byte SPI, IKE ones (as in a rekey) with an 8-byte SPI.
_PROPOSALS = st.builds(
    lambda esp, spi: Proposal(
        1, ProtocolId.ESP if esp else ProtocolId.IKE, spi[: 4 if esp else 8], _TRANSFORMS
    ),
    st.booleans(),
    st.binary(min_size=8, max_size=8),
)


@settings(deadline=None, max_examples=200)
@given(st.lists(_PROPOSALS, min_size=1, max_size=3), st.binary(max_size=8), st.integers(0, 200))
def test_sa_parse_with_spis_zeroed_equals_the_plain_parse(proposals, noise, cut):
    """The memoised SA parse (SPIs zeroed, then put back) gives what from_body gives,
    for well-formed bodies and for damaged ones (same ParseError)."""
    numbered = tuple(
        Proposal(i, p.protocol, p.spi, p.transforms) for i, p in enumerate(proposals, 1)
    )
    body = SecurityAssociation(numbered).body()
    for data in (body, body[:cut] + noise + body[cut:], body[:cut]):
        _agrees(_parse_sa, SecurityAssociation.from_body, data)


def _agrees(fast, plain, data: bytes) -> None:
    """`fast(data)` answers what `plain(data)` answers: an equal object, or a ParseError
    with the same message."""
    try:
        expected = plain(data)
    except ParseError as error:
        with pytest.raises(ParseError) as raised:
            fast(data)
        assert str(raised.value) == str(error)
    else:
        assert fast(data) == expected


def _reference_prf_plus(hash_name: str, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+ of RFC 7296 §2.13 written plainly, one hmac.digest per block."""
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(key, block + seed + bytes([counter]), hash_name)
        out, counter = out + block, counter + 1
    return out[:length]


@settings(deadline=None, max_examples=100)
@given(
    st.sampled_from(sorted(keymat.PRF_ALGORITHMS)),
    st.binary(max_size=80),
    st.binary(max_size=300),
    st.integers(0, 400),
)
def test_key_schedule_prf_and_prf_plus_equal_plain_hmac(prf_id, key, seed, length):
    alg = keymat.PRF_ALGORITHMS[prf_id]
    expected = _reference_prf_plus(alg.hash_name, key, seed, length)
    assert keymat.prf_plus(prf_id, key, seed, length) == expected
    assert keymat.prf_plus(alg, key, seed, length) == expected
    assert keymat.prf(prf_id, key, seed) == hmac.digest(key, seed, alg.hash_name)
    assert keymat.prf(alg, key, seed) == alg(key, seed) == hmac.digest(key, seed, alg.hash_name)


def test_key_schedule_errors_are_unchanged():
    with pytest.raises(UnsupportedAlgorithm, match="unsupported PRF transform 99"):
        keymat.prf(99, b"k", b"d")
    with pytest.raises(UnsupportedAlgorithm):
        keymat.prf_plus(99, b"k", b"d", 32)
    with pytest.raises(keymat.KeyScheduleError, match="at most 255 blocks"):
        keymat.prf_plus(PrfId.PRF_HMAC_SHA2_256, b"k", b"d", 255 * 32 + 1)
    assert len(keymat.prf_plus(PrfId.PRF_HMAC_SHA2_256, b"k", b"d", 255 * 32)) == 255 * 32


def test_moving_events_keeps_their_order_and_empties_the_queue():
    from collections import deque

    from wansim.ike.sa_records import _Outbox

    box, sink = _Outbox(), deque(["earlier"])
    box._events = deque(["a", "b", "c"])
    box._move_events_to(sink)
    assert list(sink) == ["earlier", "a", "b", "c"]
    assert box.next_event() is None
    box._move_events_to(sink)  # nothing queued: nothing moves
    assert list(sink) == ["earlier", "a", "b", "c"]


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from([16388, 16389, 16390, 16430, 24, 7, 40000]),
    st.integers(0, 3),
    st.integers(0, 255),
    st.binary(max_size=24),
    st.integers(0, 30),
)
def test_notify_parse_with_or_without_the_memo_equals_from_body(kind, proto, spi, data, cut):
    """NAT-D, cookies and notifies with SPIs skip the memo, status notifies use it: the
    answer (or ParseError) is from_body's either way."""
    body = bytes([proto, spi & 7]) + kind.to_bytes(2, "big") + data
    for sample in (body, body[:cut], body, body[:cut]):  # twice: memo hits too
        _agrees(_parse_notify, Notify.from_body, sample)


def test_a_message_parsed_with_its_routed_header_equals_the_plain_parse():
    from wansim.ike.loopback import run_handshake
    from wansim.ike.message import Message

    run = run_handshake("aes256gcm16-prfsha256-x25519-ke1_mlkem768", seed=3)
    for *_, data in run.datagrams:
        ike = data[4:] if data[:4] == bytes(4) else data
        plain = Message.from_bytes(ike)
        routed = Message.from_bytes(ike, IkeHeader.from_bytes(ike))
        assert routed == plain and routed.raw == plain.raw


@settings(deadline=None, max_examples=200)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(min_size=16, max_size=32))
def test_payload_descriptions_from_the_tables_equal_the_general_rules(notify, method, data):
    from wansim.ike.message import _describe_any, describe_payload
    from wansim.ike.payloads import Auth, Encrypted, KeyExchange, Nonce, UnknownPayload

    payloads = [
        Notify(notify),
        KeyExchange(method, data),
        Nonce(data),
        Auth(2, data),
        Encrypted(notify & 0xFF, data),
        EncryptedFragment(1, 2, 0, data),
        UnknownPayload(notify & 0xFF, data),
        IdInitiator(2, data),
    ]
    for payload in payloads:
        assert describe_payload(payload) == _describe_any(payload)


def _bytes_or_error(function, *args):
    try:
        return function(*args)
    except (ValueError, struct.error) as error:
        return type(error), str(error)


@settings(deadline=None, max_examples=300)
@given(
    st.integers(-1, 0x10001),
    st.integers(-1, 300),
    st.binary(max_size=8),
    st.binary(max_size=40),
    st.sampled_from([0, 1, 0xFFFF - 7, 0xFFFF - 4]),
    st.integers(-1, 256),
)
def test_packed_at_once_payloads_equal_the_generic_header_plus_body(
    number, small, spi, data, pad, next_payload
):
    """KE, Notify, ID and AUTH write header and fixed fields in one pack: same bytes as
    the generic header + body(), and the same error when a field is out of range."""
    from wansim.ike.negotiation import selectors
    from wansim.ike.payloads import (
        Auth,
        IdResponder,
        KeyExchange,
        Nonce,
        Payload,
        TrafficSelectorsInitiator,
        TrafficSelectorsResponder,
    )

    data += bytes(pad)  # reach the 16-bit Payload Length limit and past it
    many = selectors(("10.0.0.0/8",) * (1 + len(data) % 300))  # past 255 selectors too
    payloads = [
        KeyExchange(number, data),
        Notify(number, data, small, spi),
        IdInitiator(small, data),
        IdResponder(small, data),
        Auth(small, data),
        Nonce._unchecked(data),
        SecurityAssociation((Proposal(1, ProtocolId.ESP, data[:4].ljust(4), _TRANSFORMS),)),
        SecurityAssociation(
            (Proposal(1, ProtocolId.IKE, b"", _TRANSFORMS), Proposal._unchecked(2, small, b"", ()))
        ),
        TrafficSelectorsInitiator(many),
        TrafficSelectorsResponder(list(many)),
    ]
    for payload in payloads:
        assert _bytes_or_error(payload.to_bytes, next_payload) == _bytes_or_error(
            Payload.to_bytes, payload, next_payload
        )


def _outcome(function, *args):
    """What a call answers: its value, or the type and text of the error it raises."""
    try:
        return function(*args)
    except (ValueError, struct.error, ParseError) as error:
        return type(error), str(error)


_SUITES = [(20, 256, None, 36, 0), (20, 128, None, 20, 0), (12, 256, 12, 32, 32)]


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from(_SUITES),
    st.binary(min_size=7, max_size=9),
    st.sampled_from([34, 35, 36, 37, 43, 256]),
    st.integers(0, 0x28),
    st.sampled_from([0, 1, 0xFFFFFFFF, 0x100000000]),
    st.sampled_from([0, 33, 41, 255, 256]),
    st.binary(max_size=64),
    st.sampled_from([0, 1300, 0x10000]),
    st.sampled_from([None, 60, 90, 1248]),
    st.integers(0, 2**32),
)
def test_sk_channel_seals_what_protect_and_protect_fragments_seal(
    suite_spec, spi, exchange, flags, mid, first, inner, extra, limit, seed
):
    """SkChannel.seal (short path for AES-GCM) gives the general functions' datagrams,
    or their error, and draws the same random bytes."""
    import random

    from wansim.ike import protection
    from wansim.ike.ciphers import CipherSuite
    from wansim.ike.message import header_bytes

    encr, bits, integ, encr_bytes, integ_bytes = suite_spec
    suite = CipherSuite(encr, bits, integ)
    keys = (bytes(range(encr_bytes)), bytes(range(integ_bytes)))
    inner += bytes(extra)
    spi_i, spi_r = b"\x01" * 8, spi

    def general(rng):
        header = header_bytes(spi_i, spi_r, exchange, flags, mid)
        if limit is None:
            return [protection.protect(header, suite, *keys, first, inner, rng)]
        return protection.protect_fragments(
            header, suite, *keys, first, inner, rng, max_message=limit
        )

    channel = protection.SkChannel(suite, *keys)
    expected_rng, got_rng = random.Random(seed), random.Random(seed)
    expected = _outcome(general, expected_rng.randbytes)
    got = _outcome(channel.seal, spi_i, spi_r, exchange, flags, mid, first, inner,
                   got_rng.randbytes, limit)  # fmt: skip
    assert got == expected
    assert got_rng.random() == expected_rng.random()


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from(_SUITES),
    st.binary(max_size=40),
    st.integers(0, 120),
    st.binary(max_size=3),
    st.sampled_from(["none", "flip", "cut", "insert", "length", "next", "pad", "number"]),
    st.integers(0, 3),
)
def test_sk_channel_opens_what_unprotect_opens(suite_spec, inner, at, noise, damage, fragment):
    """SkChannel.open (short path for AES-GCM) answers what unprotect answers, for SK
    messages and SKF fragments, intact and damaged (same ParseError text)."""
    from wansim.ike import protection
    from wansim.ike.ciphers import CipherSuite
    from wansim.ike.message import header_bytes

    encr, bits, integ, encr_bytes, integ_bytes = suite_spec
    suite = CipherSuite(encr, bits, integ)
    keys = (bytes(range(encr_bytes)), bytes(range(integ_bytes)))
    header = header_bytes(b"\x01" * 8, b"\x02" * 8, 37, 8, 5)
    message = protection.protect(header, suite, *keys, 41, inner, lambda n: bytes(n))
    if fragment:  # one SKF fragment of the message cut for a small limit
        fragments = protection.protect_fragments(
            header, suite, *keys, 41, inner + bytes(60), lambda n: bytes(n), max_message=100
        )
        message = fragments[(fragment - 1) % len(fragments)]
    if damage == "number":  # fragment number 0 or above the total, correctly sealed
        plaintext = b"a\x00" * suite.block_bytes
        body_bytes = suite.iv_bytes + len(plaintext) + suite.icv_bytes
        aad = (
            message[:16] + b"\x35" + message[17:24] + (36 + body_bytes).to_bytes(4, "big")
            + bytes([message[28], 0]) + (8 + body_bytes).to_bytes(2, "big")
            + (at % 3).to_bytes(2, "big") + (at % 2).to_bytes(2, "big")
        )  # fmt: skip
        message = aad + suite.seal(*keys, bytes(suite.iv_bytes), aad, plaintext)
    elif damage == "pad":  # a Pad Length beyond the plaintext, correctly sealed
        body = suite.seal(*keys, bytes(suite.iv_bytes), message[:32], b"\xff" * suite.block_bytes)
        message = message[:24] + (32 + len(body)).to_bytes(4, "big") + message[28:30]
        message += (4 + len(body)).to_bytes(2, "big") + body
    elif damage != "none":
        at %= len(message) + 1
        message = {
            "flip": message[:at] + bytes([message[at % len(message)] ^ 1]) + message[at + 1 :],
            "cut": message[:at],
            "insert": message[:at] + noise + message[at:],
            "length": message[:24] + (len(message) + 1).to_bytes(4, "big") + message[28:],
            "next": message[:16] + b"\x29" + message[17:],
        }[damage]
    channel = protection.SkChannel(suite, *keys)
    assert _outcome(channel.open, message) == _outcome(protection.unprotect, message, suite, *keys)


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=40), st.integers(0, 80), st.binary(max_size=3), st.integers(0, 255))
def test_an_sk_only_message_parses_as_the_chain_walk_parses_it(body, at, noise, first):
    """Message.from_bytes reads a message of one SK payload without the chain walk: same
    Message, or the same ParseError, as the walk."""
    from wansim.ike.message import IKE_HEADER_BYTES, Message, _walk_chain

    def walked(data: bytes) -> Message:
        header = IkeHeader.from_bytes(data)
        if header.length != len(data):
            return Message.from_bytes(data)  # the length error, before either path
        payloads = _walk_chain(header.next_payload, data, IKE_HEADER_BYTES, allow_encrypted=True)
        return Message(header, tuple(payloads), data)

    sk = bytes([first, 0]) + (4 + len(body)).to_bytes(2, "big") + body
    header = IkeHeader(b"\x01" * 8, b"\x02" * 8, 37, 8, 1, 46, 28 + len(sk)).to_bytes()
    message = header + sk
    at %= len(message) + 1
    for data in (message, message[:at] + noise + message[at:]):
        data = data[:24] + len(data).to_bytes(4, "big") + data[28:]  # Length matches
        assert _outcome(Message.from_bytes, data) == _outcome(walked, data)


def _reference_walk(first_type, data, offset, allow_encrypted):
    """The payload chain walk written plainly (the codec's before it was tuned)."""
    from wansim.ike.errors import UnsupportedCriticalPayload
    from wansim.ike.message import _BODY_PARSERS, _ENCRYPTED_CLASSES, _chain_error
    from wansim.ike.payloads import UnknownPayload

    payloads, payload_type, end = [], first_type, len(data)
    while payload_type != 0:
        start = offset
        if end - offset < 4:
            raise _chain_error(
                payloads, payload_type, start, f"announced, {end - offset} bytes left"
            )
        next_type, flags, length = struct.unpack_from("!BBH", data, offset)
        if length < 4:
            raise _chain_error(
                payloads, payload_type, start, f"length {length} is below the 4-byte header"
            )
        if offset + length > end:
            raise _chain_error(
                payloads, payload_type, start, f"length {length} does not fit in {end - offset}"
            )
        body = data[offset + 4 : offset + length]
        offset += length
        parse = _BODY_PARSERS.get(payload_type)
        if parse is None:
            encrypted = _ENCRYPTED_CLASSES.get(payload_type)
            if encrypted is None:
                if flags & 0x80:
                    raise UnsupportedCriticalPayload(payload_type)
                payloads.append(UnknownPayload(payload_type, body))
                payload_type = next_type
                continue
            if not allow_encrypted:
                raise _chain_error(payloads, payload_type, start, "inside an encrypted payload")
            if offset != end:
                raise _chain_error(
                    payloads,
                    payload_type,
                    start,
                    f"{end - offset} bytes follow it; it must be last",
                )
            try:
                payloads.append(encrypted.from_body(body, next_type))
            except ParseError as error:
                raise _chain_error(payloads, payload_type, start, str(error)) from None
            return payloads
        try:
            payloads.append(parse(body))
        except ParseError as error:
            raise _chain_error(payloads, payload_type, start, str(error)) from None
        payload_type = next_type
    if offset != end:
        raise ParseError(f"{end - offset} trailing bytes after the last payload")
    return payloads


_CHAIN_PAYLOADS = st.sampled_from(
    [
        (40, b"\x00" * 16 + b"n" * 16),  # Nonce (body after the generic header's 4 bytes)
        (34, b"\x00\x24\x00\x00" + b"k" * 8),  # KE
        (41, b"\x00\x00\x40\x04" + b"d" * 4),  # Notify
        (42, b"\x03\x04\x00\x01" + b"s" * 4),  # Delete
        (99, b"x" * 5),  # unknown, not critical
        (46, b"i" * 24),  # SK
        (53, b"\x00\x02\x00\x00" + b"f" * 20),  # SKF
    ]
)


@settings(deadline=None, max_examples=400)
@given(
    st.lists(st.tuples(_CHAIN_PAYLOADS, st.booleans()), max_size=5),
    st.integers(0, 120),
    st.binary(max_size=3),
    st.booleans(),
)
def test_the_chain_walk_answers_what_the_plain_walk_answers(chain, at, noise, allow_encrypted):
    """Same payloads, or the same error (type and text), for chains of every kind of
    payload, critical bits, and damaged bytes."""
    from wansim.ike.message import _walk_chain

    data = b""
    for i, ((_kind, body), critical) in enumerate(chain):
        following = chain[i + 1][0][0] if i + 1 < len(chain) else 0
        data += bytes([following, 0x80 if critical else 0]) + (4 + len(body)).to_bytes(2, "big")
        data += body
    first = chain[0][0][0] if chain else 0
    at %= len(data) + 1
    for sample in (data, data[:at] + noise + data[at:], data[:at]):
        expected = _outcome(_reference_walk, first, sample, 0, allow_encrypted)
        walk = functools.partial(_walk_chain, allow_encrypted=allow_encrypted)
        assert _outcome(walk, first, sample, 0) == expected


@settings(deadline=None, max_examples=300)
@given(
    st.integers(-1, 256),
    st.lists(st.binary(min_size=4, max_size=4), max_size=3),
    st.integers(0, 20),
    st.binary(max_size=3),
)
def test_delete_payloads_encode_and_parse_as_the_plain_code_does(protocol, spis, cut, noise):
    """Delete body and parse, tuned, against the plain struct.pack / generator code."""
    from wansim.ike.constants import coerce
    from wansim.ike.payloads import Delete, _u8, _u16

    def plain_body(d):
        spi_size = len(d.spis[0]) if d.spis else 0
        return struct.pack(
            "!BBH", _u8(d.protocol, "protocol id"), spi_size, _u16(len(d.spis), "SPI count")
        ) + b"".join(d.spis)

    def plain_parse(body):
        if len(body) < 4:
            raise ParseError(f"Delete payload body: {len(body)} bytes, need at least 4")
        proto, spi_size, count = struct.unpack_from("!BBH", body)
        if len(body) != 4 + spi_size * count:
            raise ParseError(f"Delete: {count} SPIs of {spi_size} bytes != {len(body) - 4} bytes")
        if count and not spi_size:
            raise ParseError(f"Delete: {count} SPIs of size 0")
        found = tuple(bytes(body[4 + i * spi_size : 4 + (i + 1) * spi_size]) for i in range(count))
        return Delete(coerce(ProtocolId, proto), found)

    delete = Delete(protocol, tuple(spis))
    assert _outcome(delete.body) == _outcome(plain_body, delete)
    if 0 <= protocol <= 255:
        body = delete.body()
        for sample in (body, body[:cut], body[:cut] + noise + body[cut:]):
            _agrees(Delete.from_body, plain_parse, sample)


def test_take_output_hands_out_what_datagrams_to_send_and_next_event_do():
    from collections import deque

    from wansim.ike.sa_records import _Outbox

    box = _Outbox()
    box._out, box._events = [(b"d1", ("192.0.2.1", 500))], deque(["a", "b"])
    assert box.take_output(0.0) == ([(b"d1", ("192.0.2.1", 500))], ["a", "b"])
    assert box.take_output(1.0) == ([], [])
    assert box.datagrams_to_send(2.0) == [] and box.next_event() is None


_ESP_TEXTS = ["aes256gcm16-ecp384-ke1_mlkem768", "aes128gcm16-x25519", "aes256gcm16"]


@settings(deadline=None, max_examples=150)
@given(
    st.sampled_from(_ESP_TEXTS),
    st.sampled_from(_ESP_TEXTS),
    st.lists(st.binary(min_size=4, max_size=4), min_size=1, max_size=4),
    st.sampled_from([None, 20, 31, 36]),
)
def test_one_proposal_choices_equal_the_full_choice_for_every_spi(offer, ours, spis, ke):
    """select / check_chosen of a one-proposal SA (answered from the zeroth-level memo
    after the first SPI) equal the unmemoised choice for each SPI."""
    from wansim.ike.negotiation import _check, _choose, check_chosen, select

    configured = (parse_proposal(ours, "esp"),)
    offered_spec = parse_proposal(offer, "esp")
    transforms = offered_spec.to_proposal(1, b"\0\0\0\1").transforms
    for spi in spis:
        proposal = Proposal(1, ProtocolId.ESP, spi, transforms)
        flags = (False, True, False, ke)
        assert select((proposal,), configured, ke_method=ke) == _choose(
            (proposal,), configured, flags
        )
        chosen = _choose((proposal,), configured, flags)
        if chosen is not None:
            answer = chosen.to_proposal(spi)
            assert check_chosen(answer, configured) == _check(answer, configured, (False, False))


def test_records_built_through_the_builder_have_their_own_class_and_stay_frozen():
    import pickle

    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Wide:
        a: int
        b: int
        c: int = 3
        d: tuple = dataclasses.field(default_factory=tuple)

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a must not be negative")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Narrower(Wide):  # inherits Wide's generated __init__
        pass

    for obj in (Wide(1, 2), Wide._unchecked(1, 2, 3, ()), Narrower(1, 2)):
        assert type(obj).__name__ in ("Wide", "Narrower")
        assert dataclasses.astuple(obj) == (1, 2, 3, ())
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.a = 5
    assert type(Narrower(1, 2)) is Narrower and Wide(1, 2) == Wide._unchecked(1, 2, 3, ())
    with pytest.raises(ValueError, match="negative"):
        Wide(-1, 2)
    assert Wide._unchecked(-1, 2, 3, ()).a == -1
    event = ExchangeCompleted("IKE_AUTH", 1, "requester", 10, 20, 1, 1, 0.0, 0.1, 0.1)
    again = pickle.loads(pickle.dumps(event))
    assert again == event and type(again) is ExchangeCompleted
