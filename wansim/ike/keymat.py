"""The IKEv2 key schedule, including hybrid post-quantum key exchanges.

Implements, byte for byte like strongSwan's `keymat_v2.c`:

- `prf` / `prf_plus` (RFC 7296 §2.13) behind a PRF registry keyed by IANA ID;
- SKEYSEED and the SK_* split after IKE_SA_INIT (RFC 7296 §2.14);
- the update after each IKE_INTERMEDIATE key exchange (RFC 9370 §2.2.2);
- IKE SA rekey keys with additional key exchanges (RFC 7296 §2.18, RFC 9370 §2.2.4);
- Child SA KEYMAT from IKE_AUTH and from CREATE_CHILD_SA with PFS and additional key
  exchanges (RFC 7296 §2.17, RFC 9370 §2.2.3);
- the IntAuth chain of intermediate exchanges (RFC 9242 §3.1);
- MACedID, the signed octets and the PSK AUTH value (RFC 7296 §2.15).

Every function is pure: bytes in, bytes out. Which key protects what, and when keys
switch, is the engine's business.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from wansim.ike.ciphers import CipherSuite, UnsupportedAlgorithm
from wansim.ike.constants import PrfId
from wansim.ike.frozen import fast_init

try:  # OpenSSL's HMAC, which hmac.digest / hmac.new call after a few Python layers
    from _hashlib import hmac_digest as _hmac_digest
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # a Python built without OpenSSL: the same bytes, slower
    _hmac_digest = hmac.digest

    def _hmac_new(key: bytes, digestmod: str):
        return hmac.new(key, digestmod=digestmod)


KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15, 17 ASCII bytes, no terminator
PRF_PLUS_MAX_BLOCKS = 255  # RFC 7296 §2.13: the counter is one octet


class KeyScheduleError(ValueError):
    """A derivation was asked for something the RFCs forbid (e.g. prf+ past 255 blocks)."""


@fast_init
@dataclass(frozen=True)
class Prf:
    """An HMAC-SHA2 PRF (RFC 4868 §2.1.2): its preferred key length equals its output."""

    transform_id: int
    name: str
    hash_name: str
    output_bytes: int

    @property
    def key_bytes(self) -> int:
        """Length of SK_d, SK_pi and SK_pr (RFC 7296 §2.14: the PRF's preferred key size)."""
        return self.output_bytes

    def __call__(self, key: bytes, data: bytes) -> bytes:
        return _hmac_digest(key, data, self.hash_name)


PRF_ALGORITHMS: dict[int, Prf] = {
    alg.transform_id: alg
    for alg in (
        Prf(PrfId.PRF_HMAC_SHA2_256, "PRF_HMAC_SHA2_256", "sha256", 32),
        Prf(PrfId.PRF_HMAC_SHA2_384, "PRF_HMAC_SHA2_384", "sha384", 48),
        Prf(PrfId.PRF_HMAC_SHA2_512, "PRF_HMAC_SHA2_512", "sha512", 64),
    )
}


def get_prf(alg: int | Prf) -> Prf:
    """The PRF for an IANA transform ID (or the PRF itself)."""
    if isinstance(alg, Prf):
        return alg
    try:
        return PRF_ALGORITHMS[alg]
    except KeyError:
        raise UnsupportedAlgorithm(f"unsupported PRF transform {alg}") from None


# Hash name by IANA PRF ID: the key schedule's calls look it up without get_prf.
_HASH_NAMES = {transform_id: alg.hash_name for transform_id, alg in PRF_ALGORITHMS.items()}
_COUNTERS = [bytes([n]) for n in range(PRF_PLUS_MAX_BLOCKS + 1)]  # prf+ block counters


def prf(alg: int | Prf, key: bytes, data: bytes) -> bytes:
    """prf(K, S) of the negotiated PRF."""
    name = _HASH_NAMES.get(alg) if type(alg) is not Prf else alg.hash_name
    if name is None:
        name = get_prf(alg).hash_name  # raises UnsupportedAlgorithm
    return _hmac_digest(key, data, name)


def prf_plus(alg: int | Prf, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+(K, S) = T1 | T2 | ..., T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), cut
    to `length` bytes (RFC 7296 §2.13). More than 255 blocks is an error.

    Every block uses the same K, so HMAC is keyed once and each block continues from a
    copy of that state (the same bytes as a fresh HMAC, without re-hashing the key pads)."""
    function = get_prf(alg)
    blocks = -(-length // function.output_bytes)
    if length < 0 or blocks > PRF_PLUS_MAX_BLOCKS:
        raise KeyScheduleError(
            f"prf+ of {function.name} yields at most {PRF_PLUS_MAX_BLOCKS} blocks "
            f"({PRF_PLUS_MAX_BLOCKS * function.output_bytes} bytes); {length} requested"
        )
    keyed = _hmac_new(key, digestmod=function.hash_name)
    out = []
    block = b""
    for counter in _COUNTERS[1 : blocks + 1]:
        mac = keyed.copy()
        mac.update(block + seed + counter)
        block = mac.digest()
        out.append(block)
    return b"".join(out)[:length]


@fast_init
@dataclass(frozen=True)
class IkeSuite:
    """The IKE SA's negotiated PRF and ENCR/INTEG: they size every SK_* key."""

    prf: int
    cipher: CipherSuite

    def __post_init__(self) -> None:
        get_prf(self.prf)

    @property
    def prf_alg(self) -> Prf:
        return PRF_ALGORITHMS[self.prf]

    @property
    def keymat_bytes(self) -> int:
        """|SK_d| + 2|SK_a| + 2|SK_e| + 2|SK_p|."""
        return (
            3 * self.prf_alg.key_bytes
            + 2 * self.cipher.integ_key_bytes
            + 2 * self.cipher.encr_key_bytes
        )

    @functools.cached_property
    def key_sizes(self) -> tuple[int, ...]:
        """Sizes of SK_d, SK_ai, SK_ar, SK_ei, SK_er, SK_pi, SK_pr, in prf+ order."""
        prf, integ, encr = (
            self.prf_alg.key_bytes,
            self.cipher.integ_key_bytes,
            self.cipher.encr_key_bytes,
        )
        return (prf, integ, integ, encr, encr, prf, prf)


@fast_init
@dataclass(frozen=True, slots=True)
class IkeKeys:
    """One IKE SA key set: SK_d, SK_ai/ar (empty for AEAD), SK_ei/er (salt included for
    AES-GCM), SK_pi/pr; and the suite that sized them. Secrets stay out of repr()."""

    d: bytes = field(repr=False)
    ai: bytes = field(repr=False)
    ar: bytes = field(repr=False)
    ei: bytes = field(repr=False)
    er: bytes = field(repr=False)
    pi: bytes = field(repr=False)
    pr: bytes = field(repr=False)
    suite: IkeSuite


@fast_init
@dataclass(frozen=True, slots=True)
class ChildKeys:
    """Child SA keys per direction, in KEYMAT order (RFC 7296 §2.17): initiator-to-responder
    encryption then integrity, then responder-to-initiator."""

    ei: bytes = field(repr=False)
    ai: bytes = field(repr=False)
    er: bytes = field(repr=False)
    ar: bytes = field(repr=False)
    suite: CipherSuite


def _spis(spi_i: bytes, spi_r: bytes) -> bytes:
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise ValueError("IKE SPIs are 8 bytes each (RFC 7296 §3.1)")
    return spi_i + spi_r


def split_ike_keys(
    suite: IkeSuite,
    skeyseed: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    *,
    prf_id: int | None = None,
) -> IkeKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi |
    SPIr) (RFC 7296 §2.14). `prf_id` overrides the PRF (an IKE rekey uses the old one)."""
    sizes = suite.key_sizes
    stream = prf_plus(
        suite.prf if prf_id is None else prf_id,
        skeyseed,
        ni + nr + _spis(spi_i, spi_r),
        sum(sizes),
    )
    parts, at = [], 0
    for size in sizes:
        parts.append(stream[at : at + size])
        at += size
    return IkeKeys(*parts, suite=suite)


def initial_skeyseed(prf_id: int | Prf, ni: bytes, nr: bytes, shared_secret: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir): the nonces are the key (RFC 7296 §2.14). Only HMAC
    PRFs are offered, so the full nonces are used (no 8-byte cut as for XCBC/CMAC)."""
    return prf(prf_id, ni + nr, shared_secret)


def initial_keys(
    suite: IkeSuite, shared_secret: bytes, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes
) -> IkeKeys:
    """SK_*(0): the keys after IKE_SA_INIT."""
    seed = initial_skeyseed(suite.prf, ni, nr, shared_secret)
    return split_ike_keys(suite, seed, ni, nr, spi_i, spi_r)


def intermediate_skeyseed(keys: IkeKeys, shared_secret: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr) (RFC 9370 §2.2.2); Ni, Nr from
    IKE_SA_INIT."""
    return prf(keys.suite.prf, keys.d, shared_secret + ni + nr)


def intermediate_keys(
    keys: IkeKeys, shared_secret: bytes, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes
) -> IkeKeys:
    """SK_*(n) after the key exchange of IKE_INTERMEDIATE n; same suite and SPIs."""
    seed = intermediate_skeyseed(keys, shared_secret, ni, nr)
    return split_ike_keys(keys.suite, seed, ni, nr, spi_i, spi_r)


def _rekey_material(secrets: Iterable[bytes], ni: bytes, nr: bytes) -> bytes:
    """SK(0) | Ni | Nr | SK(1) | ... | SK(k) (RFC 9370 §2.2.3 and §2.2.4)."""
    secrets = list(secrets)
    if not secrets:
        return ni + nr
    return secrets[0] + ni + nr + b"".join(secrets[1:])


def rekey_skeyseed(old: IkeKeys, secrets: Iterable[bytes], ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d(old), SK(0) | Ni | Nr | SK(1) | ... | SK(k)) with the OLD SA's
    PRF (RFC 7296 §2.18, RFC 9370 §2.2.4); Ni, Nr of the CREATE_CHILD_SA exchange."""
    secrets = list(secrets)
    if not secrets:
        raise KeyScheduleError("an IKE SA rekey always carries a key exchange (RFC 7296 §1.3.2)")
    return prf(old.suite.prf, old.d, _rekey_material(secrets, ni, nr))


def rekeyed_keys(
    old: IkeKeys,
    new_suite: IkeSuite,
    secrets: Iterable[bytes],
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
) -> IkeKeys:
    """Keys of the new IKE SA after a rekey with main and additional key exchanges.

    Like strongSwan, the old SA's PRF drives both SKEYSEED and prf+; the new suite sizes
    the keys and the new SPIs enter the prf+ seed. Derive once, after the last
    IKE_FOLLOWUP_KE, with every shared secret in exchange order."""
    seed = rekey_skeyseed(old, secrets, ni, nr)
    return split_ike_keys(new_suite, seed, ni, nr, spi_i, spi_r, prf_id=old.suite.prf)


def child_keys(
    keys: IkeKeys,
    suite: CipherSuite,
    ni: bytes,
    nr: bytes,
    secrets: Iterable[bytes] = (),
) -> ChildKeys:
    """Child SA keys: KEYMAT = prf+(SK_d, Ni | Nr) for the first Child SA (IKE_AUTH) or
    without PFS; prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(k)) with PFS and additional
    key exchanges (RFC 7296 §2.17, RFC 9370 §2.2.3). Ni, Nr are that exchange's nonces."""
    encr, integ = suite.encr_key_bytes, suite.integ_key_bytes
    stream = prf_plus(keys.suite.prf, keys.d, _rekey_material(secrets, ni, nr), 2 * (encr + integ))
    return ChildKeys(
        ei=stream[:encr],
        ai=stream[encr : encr + integ],
        er=stream[encr + integ : 2 * encr + integ],
        ar=stream[2 * encr + integ :],
        suite=suite,
    )


@fast_init
@dataclass(frozen=True, slots=True)
class IntAuthChain:
    """The running IntAuth_iN / IntAuth_rN of RFC 9242 §3.1, one step per IKE_INTERMEDIATE.

    Start from `IntAuthChain()`, call `extend()` when exchange j completes, with the keys
    that protected it (SK_p*(j-1)) and the A|P chunks of its request and response (see
    protection.int_auth_chunk). `value()` is what AUTH appends: empty when no
    intermediate exchange actually happened (RFC 9242 §3.1, libreswan bug #2834).
    """

    i: bytes = b""
    r: bytes = b""
    exchanges: int = 0

    def extend(self, keys: IkeKeys, request_ap: bytes, response_ap: bytes) -> IntAuthChain:
        # IntAuth_ij = prf(SK_pij, IntAuth_i(j-1) | A_ij | P_ij); IntAuth_i0 is empty.
        return IntAuthChain(
            i=prf(keys.suite.prf, keys.pi, self.i + request_ap),
            r=prf(keys.suite.prf, keys.pr, self.r + response_ap),
            exchanges=self.exchanges + 1,
        )

    def value(self, ike_auth_mid: int) -> bytes:
        """IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (4 bytes), or b"" if N = 0."""
        if not self.exchanges:
            return b""
        return self.i + self.r + ike_auth_mid.to_bytes(4, "big")


def maced_id(prf_id: int, sk_p: bytes, id_body: bytes) -> bytes:
    """MACedIDForI/R = prf(SK_p, RestOfIDPayload): `id_body` is the ID payload without its
    4-byte generic header, i.e. ID Type | 3 reserved bytes | data (RFC 7296 §2.15)."""
    return prf(prf_id, sk_p, id_body)


def signed_octets(
    prf_id: int,
    sk_p: bytes,
    real_message: bytes,
    peer_nonce: bytes,
    id_body: bytes,
    int_auth: bytes = b"",
) -> bytes:
    """<SignedOctets> = RealMessage | NonceData of the peer | MACedID [| IntAuth].

    Used by PSK and signature AUTH alike (RFC 7296 §2.15, RFC 9242 §3.1). The initiator
    passes its IKE_SA_INIT request as sent (the last attempt), Nr, SK_pi and IDi'; the
    responder its response, Ni, SK_pr and IDr'. MACedID uses the final SK_p*."""
    return real_message + peer_nonce + maced_id(prf_id, sk_p, id_body) + int_auth


def psk_auth(prf_id: int, psk: bytes, octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15)."""
    return prf(prf_id, prf(prf_id, psk, KEY_PAD), octets)
