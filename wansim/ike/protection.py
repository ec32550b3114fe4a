"""Protecting IKE messages: SK payloads, SKF fragments and their reassembly, and the A|P
chunks that IKE_INTERMEDIATE messages contribute to AUTH.

- `protect` / `unprotect`: one SK payload (RFC 7296 §3.14; AES-GCM per RFC 5282 §5.1).
  AAD is the IKE header through the SK payload header; padding follows strongSwan:
  `block - (len % block)` bytes including the Pad Length byte, i.e. a single zero
  Pad Length byte for AES-GCM (block size 1) and 1..16 bytes for AES-CBC.
- `protect_fragments`: RFC 7383 fragmentation sized like strongSwan's `message.c`
  (`fragment_size` is the whole IP datagram; see `max_message_bytes` and
  `fragment_data_bytes`). Each SKF fragment is protected on its own with the IKE header
  and the 8-byte SKF header as AAD; only fragment 1 names the first inner payload.
- `Reassembly`: collects verified fragments of one message with limits on count, bytes
  and age (RFC 7383 §2.6; strongSwan's defaults), `now` injected.
- `int_auth_chunk`: A|P of RFC 9242 §3.1, computed as if the message were unfragmented.
- `SkChannel`: one direction of one key set with its suite and keys bound once; `seal`
  and `open` are `protect(_fragments)` and `unprotect` with a short path for the message
  an engine sends and receives most (AES-GCM, one SK payload, nothing in clear), and the
  general functions for everything else (same bytes, same errors).

Everything works on bytes: the 28-byte IKE header comes from the codec (message.py),
inner payloads are a serialized chain plus the type of its first payload. The header's
Next Payload (or that of the last unencrypted payload) and its Length are patched here.
IVs come from the injected `random` callable (e.g. `os.urandom` or a seeded generator).
Malformed input raises `ParseError`; a failed ICV raises `IntegrityError` (a ParseError).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from wansim.ike.ciphers import CipherSuite, IntegrityError
from wansim.ike.constants import IKE_HEADER_BYTES, IKE_VERSION, PAYLOAD_HEADER_BYTES, PayloadType
from wansim.ike.errors import ParseError
from wansim.ike.frozen import fast_init
from wansim.ike.message import header_bytes

__all__ = [
    "Fragment",
    "IntegrityError",
    "Opened",
    "Reassembly",
    "ReassemblyError",
    "SkChannel",
    "fragment_data_bytes",
    "int_auth_chunk",
    "max_message_bytes",
    "protect",
    "protect_fragments",
    "sk_message_bytes",
    "unprotect",
]

RandomSource = Callable[[int], bytes]
# Bound once: attribute access on an Enum class is slow in Python 3.11.
_NONE, _SK, _SKF = PayloadType.NONE, PayloadType.SK, PayloadType.SKF

SK_HEADER_BYTES = PAYLOAD_HEADER_BYTES
SKF_HEADER_BYTES = PAYLOAD_HEADER_BYTES + 4  # + Fragment Number, Total Fragments
UDP_HEADER_BYTES = 8
IP_HEADER_BYTES = {4: 20, 6: 40}  # no options / extension headers, like strongSwan
NON_ESP_MARKER_BYTES = 4
DEFAULT_FRAGMENT_SIZE = 1280  # strongSwan charon.fragment_size default (whole IP datagram)
STRONGSWAN_MAX_FRAGMENTS = 255  # strongSwan message.c MAX_FRAGMENTS
STRONGSWAN_MAX_PACKET = 10_000  # strongSwan charon.max_packet default, reassembled bytes


class ReassemblyError(ParseError):
    """A verified fragment that the reassembly buffer refuses (limits, stale total)."""


@fast_init
@dataclass(frozen=True, slots=True)
class Opened:
    """A decrypted SK message (or a reassembled fragmented one).

    `header` is the IKE header as received (fragment 1's for a reassembled message);
    `inner` the plaintext inner payload chain starting with a payload of type
    `first_inner`; `fragments` is 0 when the message came unfragmented.
    """

    header: bytes
    unencrypted: bytes
    first_inner: int
    inner: bytes
    fragments: int = 0

    def int_auth_chunk(self) -> bytes:
        """A|P of this message for the RFC 9242 IntAuth chain."""
        return int_auth_chunk(self.header, self.first_inner, self.inner, self.unencrypted)


@fast_init
@dataclass(frozen=True, slots=True)
class Fragment:
    """One verified and decrypted SKF fragment (RFC 7383 §2.5)."""

    header: bytes
    unencrypted: bytes
    number: int
    total: int
    first_inner: int  # meaningful in fragment 1 only; later fragments carry 0
    data: bytes

    @property
    def message_key(self) -> bytes:
        """What all fragments of one message share: SPIs, exchange type, R flag and MID."""
        h = self.header
        return h[:16] + h[18:19] + bytes([h[19] & 0x20]) + h[20:24]


# --- sizes ----------------------------------------------------------------------------


def _padding_bytes(suite: CipherSuite, plaintext_bytes: int) -> int:
    """Padding including the Pad Length byte, as strongSwan's encrypted_payload.c does."""
    return suite.block_bytes - plaintext_bytes % suite.block_bytes


def sk_message_bytes(suite: CipherSuite, inner_bytes: int, unencrypted_bytes: int = 0) -> int:
    """Length of the whole IKE message carrying `inner_bytes` of payloads in one SK."""
    return (
        IKE_HEADER_BYTES
        + unencrypted_bytes
        + SK_HEADER_BYTES
        + suite.iv_bytes
        + inner_bytes
        + _padding_bytes(suite, inner_bytes)
        + suite.icv_bytes
    )


def max_message_bytes(
    fragment_size: int = DEFAULT_FRAGMENT_SIZE, *, ip_version: int = 4, nat_t: bool = False
) -> int:
    """Largest IKE message that fits `fragment_size`, the maximum IP datagram (strongSwan):
    minus the IP and UDP headers and, on port 4500, the non-ESP marker. 1248 for the
    defaults on IPv4 port 4500."""
    if ip_version not in IP_HEADER_BYTES:
        raise ValueError(f"ip_version must be 4 or 6, got {ip_version}")
    size = (
        fragment_size
        - IP_HEADER_BYTES[ip_version]
        - UDP_HEADER_BYTES
        - (NON_ESP_MARKER_BYTES if nat_t else 0)
    )
    if size <= IKE_HEADER_BYTES + SKF_HEADER_BYTES:
        raise ValueError(f"fragment_size {fragment_size} leaves no room for an IKE fragment")
    return size


def fragment_data_bytes(suite: CipherSuite, max_message: int) -> int:
    """Inner bytes per SKF fragment (strongSwan message.c): message limit minus IKE header,
    IV, ICV and SKF header, rounded down to the cipher block, minus the Pad Length byte.
    1187 for AES-GCM and 1167 for AES-CBC + HMAC-SHA2-256-128 at a 1248-byte limit."""
    room = max_message - IKE_HEADER_BYTES - suite.iv_bytes - suite.icv_bytes - SKF_HEADER_BYTES
    room -= room % suite.block_bytes
    if room - 1 < 1:
        raise ValueError(f"a {max_message}-byte message leaves no room for fragment data")
    return room - 1


# --- building -------------------------------------------------------------------------


def _last_payload_offset(chain: bytes) -> int:
    """Offset of the last payload in a serialized chain (generic headers only)."""
    at, last = 0, -1
    while at < len(chain):
        if at + PAYLOAD_HEADER_BYTES > len(chain):
            raise ValueError("truncated payload header in the unencrypted payloads")
        length = struct.unpack_from("!H", chain, at + 2)[0]
        if length < PAYLOAD_HEADER_BYTES or at + length > len(chain):
            raise ValueError(f"bad payload length {length} in the unencrypted payloads")
        last, at = at, at + length
    return last


def _lead(header: bytes, unencrypted: bytes, encrypted_type: int, total_length: int) -> bytes:
    """Header + unencrypted payloads, chained to the SK/SKF payload, Length patched."""
    if len(header) != IKE_HEADER_BYTES:
        raise ValueError(f"the IKE header is {IKE_HEADER_BYTES} bytes, got {len(header)}")
    if not unencrypted:  # the usual case: the header names the SK/SKF payload itself
        length = total_length.to_bytes(4, "big")
        return header[:16] + _NEXT_PAYLOAD[encrypted_type] + header[17:24] + length
    head = bytearray(header)
    head[24:28] = total_length.to_bytes(4, "big")
    chain = bytearray(unencrypted)
    if chain:
        chain[_last_payload_offset(unencrypted)] = encrypted_type
    else:
        head[16] = encrypted_type
    return bytes(head + chain)


_NEXT_PAYLOAD = {kind: bytes([kind]) for kind in (PayloadType.SK, PayloadType.SKF)}
_PAYLOAD_HEADER = struct.Struct("!BBH")
_FRAGMENT_FIELDS = struct.Struct("!HH")  # Fragment Number, Total Fragments
_LENGTH_FIELD = struct.Struct("!I")


def _padded(suite: CipherSuite, inner: bytes) -> bytes:
    block = suite.block_bytes
    pad = block - len(inner) % block  # _padding_bytes, inlined: every message comes here
    # RFC 7296 §3.14: padding content is up to the sender; zeros, then the Pad Length.
    if pad == 1:  # AES-GCM: just the Pad Length byte
        return inner + b"\x00"
    return inner + bytes(pad - 1) + bytes([pad - 1])


def _payload_header(next_type: int, length: int) -> bytes:
    if length > 0xFFFF:
        raise ValueError(f"payload of {length} bytes exceeds the 16-bit Payload Length")
    return _PAYLOAD_HEADER.pack(next_type, 0, length)


def _sealed(
    header: bytes,
    keys: tuple[CipherSuite, bytes, bytes, RandomSource],
    lead_payloads: bytes,
    encrypted_type: int,
    first_inner: int,
    inner: bytes,
    skf_fields: bytes = b"",
) -> bytes:
    """One message: header, `lead_payloads` in clear, then an SK payload (or, with its
    `skf_fields`, an SKF payload) whose header up to the IV is authenticated as AAD."""
    suite, encr_key, integ_key, random = keys
    plaintext = _padded(suite, inner)
    iv_bytes = suite.iv_bytes
    length = SK_HEADER_BYTES + len(skf_fields) + iv_bytes + len(plaintext) + suite.icv_bytes
    total = IKE_HEADER_BYTES + len(lead_payloads) + length
    aad = (
        _lead(header, lead_payloads, encrypted_type, total)
        + _payload_header(first_inner, length)
        + skf_fields
    )
    return aad + suite.seal(encr_key, integ_key, random(iv_bytes), aad, plaintext)


def protect(
    header: bytes,
    suite: CipherSuite,
    encr_key: bytes,
    integ_key: bytes,
    first_inner: int,
    inner: bytes,
    random: RandomSource,
    *,
    unencrypted: bytes = b"",
) -> bytes:
    """The whole IKE message with `inner` in one SK payload (RFC 7296 §3.14)."""
    keys = (suite, encr_key, integ_key, random)
    return _sealed(header, keys, unencrypted, _SK, first_inner, inner)


def protect_fragments(
    header: bytes,
    suite: CipherSuite,
    encr_key: bytes,
    integ_key: bytes,
    first_inner: int,
    inner: bytes,
    random: RandomSource,
    *,
    max_message: int,
    unencrypted: bytes = b"",
) -> list[bytes]:
    """The message as strongSwan sends it once fragmentation is negotiated: one SK message
    if it fits `max_message` (see `max_message_bytes`), else SKF fragments (RFC 7383 §2.5)
    of `fragment_data_bytes` inner bytes each; unencrypted payloads go in fragment 1."""
    keys = (suite, encr_key, integ_key, random)
    if sk_message_bytes(suite, len(inner), len(unencrypted)) <= max_message:
        return [_sealed(header, keys, unencrypted, _SK, first_inner, inner)]
    per_fragment = fragment_data_bytes(suite, max_message)
    first_room = per_fragment - len(unencrypted)
    if first_room < 1:
        raise ValueError("unencrypted payloads do not fit in the first fragment")
    chunks = [inner[:first_room]] + [
        inner[at : at + per_fragment] for at in range(first_room, len(inner), per_fragment)
    ]
    if len(chunks) > 0xFFFF:
        raise ValueError("message needs more than 65535 fragments")
    out = []
    for number, chunk in enumerate(chunks, start=1):
        # RFC 7383 §2.5: only fragment 1 carries the unencrypted payloads and the type
        # of the first inner payload.
        lead, first = (unencrypted, first_inner) if number == 1 else (b"", _NONE)
        fields = _FRAGMENT_FIELDS.pack(number, len(chunks))
        out.append(_sealed(header, keys, lead, _SKF, first, chunk, fields))
    return out


def int_auth_chunk(
    header: bytes, first_inner: int, inner: bytes, unencrypted: bytes = b""
) -> bytes:
    """A|P of RFC 9242 §3.1: IKE header and SK payload header with lengths rewritten as if
    the SK payload held only the plaintext `inner` (no IV, padding or ICV), Next Payload
    fields naming SK, then the unencrypted payloads and the plaintext; the same whether the
    message travelled in fragments or not."""
    sk_length = SK_HEADER_BYTES + len(inner)
    total = IKE_HEADER_BYTES + len(unencrypted) + sk_length
    return _lead(header, unencrypted, _SK, total) + _payload_header(first_inner, sk_length) + inner


# --- opening --------------------------------------------------------------------------


def unprotect(
    message: bytes, suite: CipherSuite, encr_key: bytes, integ_key: bytes
) -> Opened | Fragment:
    """Verify and decrypt a message whose last payload is SK (→ `Opened`) or SKF
    (→ `Fragment`). The ICV is checked before the header's Length and the fragment
    numbers are, so a changed byte anywhere outside the payload framing gives
    IntegrityError."""
    size = len(message)
    if size < IKE_HEADER_BYTES:
        raise ParseError(f"IKE message of {size} bytes is shorter than its header")
    kind, at = message[16], IKE_HEADER_BYTES
    while kind != _SK and kind != _SKF:
        if kind == _NONE:
            raise ParseError("message carries no SK or SKF payload")
        if at + PAYLOAD_HEADER_BYTES > size:
            raise ParseError("truncated payload header before the SK payload")
        length = message[at + 2] << 8 | message[at + 3]
        if length < PAYLOAD_HEADER_BYTES:
            raise ParseError(f"payload length {length} is below the 4-byte header")
        kind, at = message[at], at + length
    header_bytes = SK_HEADER_BYTES if kind == _SK else SKF_HEADER_BYTES
    if at + header_bytes > size:
        raise ParseError("truncated SK/SKF payload header")
    first_inner, _, payload_length = _PAYLOAD_HEADER.unpack_from(message, at)
    if payload_length != size - at:
        # RFC 7296 §3.14 / RFC 7383 §2.5: the encrypted payload is the last one.
        raise ParseError(
            f"encrypted payload length {payload_length} does not reach the end of the "
            f"message ({size - at} bytes left)"
        )
    aad = message[: at + header_bytes]
    plaintext = suite.open(encr_key, integ_key, aad, message[at + header_bytes :])
    if _LENGTH_FIELD.unpack_from(message, 24)[0] != size:
        raise ParseError("IKE header Length does not match the message size")
    if not plaintext or plaintext[-1] + 1 > len(plaintext):
        raise ParseError("Pad Length exceeds the decrypted data")
    inner = plaintext[: len(plaintext) - plaintext[-1] - 1]
    header, unencrypted = message[:IKE_HEADER_BYTES], message[IKE_HEADER_BYTES:at]
    if kind == _SK:
        return Opened(header, unencrypted, first_inner, inner)
    number, total = _FRAGMENT_FIELDS.unpack_from(message, at + SK_HEADER_BYTES)
    if not 1 <= number <= total:
        # RFC 7383 §2.6: numbers start at 1 and never exceed Total Fragments.
        raise ParseError(f"fragment number {number} outside 1..{total}")
    return Fragment(header, unencrypted, number, total, first_inner, inner)


class Reassembly:
    """Collects the fragments of one incoming message (RFC 7383 §2.6).

    Feed verified fragments with `add(fragment, now)`: it returns the reassembled
    `Opened` once every number 1..total is present, else None (duplicates are ignored and
    counted). A fragment of another message (SPIs, exchange, R flag or MID differ) or
    arriving after `timeout_s` starts a new buffer. A larger Total Fragments discards what
    was collected and restarts (RFC 7383 §2.6: the sender re-fragmented smaller, e.g. for
    PMTU discovery); a smaller one belongs to the older transmission and is refused.
    Exceeding `max_fragments` or `max_bytes` (strongSwan: 255 and charon.max_packet
    10 000) raises ReassemblyError and empties the buffer. `deadline` tells a driver when
    to call `expire(now)`; calling it early or twice is harmless. The 30 s timeout
    default is a choice of ours, not a strongSwan value.
    """

    def __init__(
        self,
        *,
        max_fragments: int = STRONGSWAN_MAX_FRAGMENTS,
        max_bytes: int = STRONGSWAN_MAX_PACKET,
        timeout_s: float = 30.0,
    ) -> None:
        if max_fragments < 1 or max_bytes < 1 or timeout_s <= 0:
            raise ValueError("reassembly limits must be positive")
        self.max_fragments = max_fragments
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.duplicates = 0
        self._reset()

    def _reset(self) -> None:
        self._key: bytes | None = None
        self._total = 0
        self._parts: dict[int, Fragment] = {}
        self._bytes = 0
        self._started_at: float | None = None

    @property
    def pending(self) -> int:
        """Fragments held for the message in progress."""
        return len(self._parts)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    @property
    def deadline(self) -> float | None:
        return None if self._started_at is None else self._started_at + self.timeout_s

    def expire(self, now: float) -> bool:
        """Drop a buffer older than `timeout_s`; True if one was dropped."""
        if self._started_at is not None and now >= self._started_at + self.timeout_s:
            self._reset()
            return True
        return False

    def add(self, fragment: Fragment, now: float) -> Opened | None:
        if fragment.total > self.max_fragments:
            self._reset()
            raise ReassemblyError(
                f"{fragment.total} fragments exceed the limit of {self.max_fragments}"
            )
        self.expire(now)
        key = fragment.message_key
        if self._key != key or fragment.total > self._total:
            self._reset()
            self._key, self._total, self._started_at = key, fragment.total, now
        elif fragment.total < self._total:
            raise ReassemblyError(
                f"fragment claims {fragment.total} fragments, {self._total} expected: stale"
            )
        if fragment.number in self._parts:
            self.duplicates += 1
            return None
        if self._bytes + len(fragment.data) > self.max_bytes:
            self._reset()
            raise ReassemblyError(f"fragmented message exceeds {self.max_bytes} bytes")
        self._parts[fragment.number] = fragment
        self._bytes += len(fragment.data)
        if len(self._parts) < self._total:
            return None
        parts = self._parts
        first = parts[1]
        inner = b"".join([parts[n].data for n in range(1, self._total + 1)])
        total = self._total
        self._reset()
        return Opened._unchecked(first.header, first.unencrypted, first.first_inner, inner, total)


# --- one direction of one key set -----------------------------------------------------

# The IKE header and the SK (SKF) payload header in one layout: what AES-GCM authenticates.
_SK_AAD = struct.Struct("!8s8sBBBBIIBBH")
_SK_AAD_BYTES = _SK_AAD.size  # 32
_SKF_AAD = struct.Struct("!8s8sBBBBIIBBHHH")
_SKF_AAD_BYTES = _SKF_AAD.size  # 36
_GCM_IV_BYTES = 8  # RFC 5282 §3
_GCM_ICV_BYTES = 16  # ENCR_AES_GCM_16
# Header, SK header, IV, the Pad Length byte and the ICV around the inner payloads.
_GCM_OVERHEAD = _SK_AAD_BYTES + _GCM_IV_BYTES + 1 + _GCM_ICV_BYTES


class SkChannel:
    """SK protection of what one end sends (or receives) under one IKE SA key set.

    `seal` is `protect_fragments` (or `protect` without `max_message`) for a message
    without unencrypted payloads, taking the IKE header as its fields; `open` is
    `unprotect`. The usual case, AES-GCM and a message in one SK payload, takes a short
    path on the AES-GCM object bound here (nonce = salt | IV, RFC 5282 §4; AAD = IKE
    header and SK payload header, §5.1; a single Pad Length byte of zero), and `open`
    takes it for an SKF fragment too; anything else (CBC suites, sealing fragments,
    unencrypted payloads, framing faults, out-of-range fields) goes through the general
    functions, so bytes and errors are theirs.
    """

    __slots__ = ("suite", "encr_key", "integ_key", "_encrypt", "_decrypt", "_salt")

    def __init__(self, suite: CipherSuite, encr_key: bytes, integ_key: bytes) -> None:
        self.suite, self.encr_key, self.integ_key = suite, encr_key, integ_key
        self._encrypt = self._decrypt = None
        self._salt = b""
        if (
            suite.aead
            and suite.iv_bytes == _GCM_IV_BYTES
            and suite.icv_bytes == _GCM_ICV_BYTES
            and suite.block_bytes == 1
            and len(encr_key) == suite.encr_key_bytes
            and len(integ_key) == suite.integ_key_bytes
        ):
            aead, self._salt = suite._gcm(encr_key)
            self._encrypt, self._decrypt = aead.encrypt, aead.decrypt

    def seal(
        self,
        spi_i: bytes,
        spi_r: bytes,
        exchange: int,
        flags: int,
        mid: int,
        first_inner: int,
        inner: bytes,
        random: RandomSource,
        max_message: int | None = None,
    ) -> list[bytes]:
        """The message's datagrams (one unless it is fragmented)."""
        encrypt = self._encrypt
        total = _GCM_OVERHEAD + len(inner)
        if (
            encrypt is not None
            and (max_message is None or total <= max_message)
            and len(spi_i) == 8
            and len(spi_r) == 8
        ):
            try:
                aad = _SK_AAD.pack(spi_i, spi_r, _SK, IKE_VERSION, exchange, flags, mid, total,
                                   first_inner, 0, total - IKE_HEADER_BYTES)  # fmt: skip
            except struct.error:
                pass  # a field out of range: the general path says which
            else:
                iv = random(_GCM_IV_BYTES)
                return [aad + iv + encrypt(self._salt + iv, inner + b"\x00", aad)]
        header = header_bytes(spi_i, spi_r, exchange, flags, mid)
        keys = (self.suite, self.encr_key, self.integ_key)
        if max_message is None:
            return [protect(header, *keys, first_inner, inner, random)]
        return protect_fragments(header, *keys, first_inner, inner, random, max_message=max_message)

    def open(self, message: bytes) -> Opened | Fragment:
        """`unprotect(message, suite, encr_key, integ_key)`."""
        size = len(message)
        marker = message[16] if self._decrypt is not None and size > IKE_HEADER_BYTES + 3 else 0
        aad_bytes = _SK_AAD_BYTES if marker == _SK else _SKF_AAD_BYTES if marker == _SKF else 0
        if (
            aad_bytes
            and size >= aad_bytes + _GCM_IV_BYTES + _GCM_ICV_BYTES
            and message[30] << 8 | message[31] == size - IKE_HEADER_BYTES
            and _LENGTH_FIELD.unpack_from(message, 24)[0] == size
        ):
            inner = self._gcm_inner(message, aad_bytes)
            header = message[:IKE_HEADER_BYTES]
            if marker == _SK:
                return Opened._unchecked(header, b"", message[28], inner, 0)
            number, total = _FRAGMENT_FIELDS.unpack_from(message, 32)
            if not 1 <= number <= total:
                raise ParseError(f"fragment number {number} outside 1..{total}")
            return Fragment._unchecked(header, b"", number, total, message[28], inner)
        return unprotect(message, self.suite, self.encr_key, self.integ_key)

    def _gcm_inner(self, message: bytes, aad_bytes: int) -> bytes:
        """Decrypt an SK/SKF payload whose AAD (IKE header and payload header, plus the
        fragment fields for SKF) is the first `aad_bytes` of `message`; the inner
        payloads without the padding (RFC 5282 §5.1, RFC 7383 §2.5)."""
        iv_end = aad_bytes + _GCM_IV_BYTES
        aad = message[:aad_bytes]
        try:
            plaintext = self._decrypt(self._salt + message[aad_bytes:iv_end], message[iv_end:], aad)
        except InvalidTag:
            raise IntegrityError("ICV mismatch (AES-GCM tag did not verify)") from None
        if not plaintext or plaintext[-1] + 1 > len(plaintext):
            raise ParseError("Pad Length exceeds the decrypted data")
        return plaintext[: len(plaintext) - plaintext[-1] - 1]
