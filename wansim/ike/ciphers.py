"""Encryption and integrity transforms that protect SK/SKF payloads (and size ESP keys).

Two registries keyed by IANA IDs (RFC 7296 §3.3.2): ENCR_AES_GCM_16 (20, RFC 5282) and
ENCR_AES_CBC (12, RFC 3602) for encryption; AUTH_HMAC_SHA2_256_128 / 384_192 / 512_256
(12 / 13 / 14, RFC 4868) for integrity. A `CipherSuite` combines one of each (no integrity
for AEAD) and works on the body of an Encrypted payload: `IV | ciphertext | ICV`.

Associated data is the caller's job (protection.py builds it): for AES-GCM it is the IKE
header through the SK/SKF payload header (RFC 5282 §5.1); for CBC + HMAC the ICV covers the
same bytes followed by IV and ciphertext (RFC 7296 §3.14). Padding is the caller's job too:
a CBC plaintext must already be a whole number of blocks.

IVs are never drawn here: the caller passes them (from a random source it was given).
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wansim.ike.constants import EncrId, IntegId
from wansim.ike.errors import ParseError


class IntegrityError(ParseError):
    """The ICV of an SK or SKF payload did not verify: wrong keys, or bytes changed in transit."""


class UnsupportedAlgorithm(ValueError):
    """A transform ID or key length this implementation does not provide."""


@dataclass(frozen=True)
class Integrity:
    """An INTEG transform: HMAC-SHA2 truncated to half the hash (RFC 4868 §2.1)."""

    transform_id: int
    name: str
    hash_name: str
    key_bytes: int
    icv_bytes: int

    def mac(self, key: bytes, data: bytes) -> bytes:
        return hmac.digest(key, data, self.hash_name)[: self.icv_bytes]


@dataclass(frozen=True)
class Encryption:
    """An ENCR transform: allowed key lengths and the sizes it adds to the wire."""

    transform_id: int
    name: str
    key_bits: tuple[int, ...]
    iv_bytes: int
    block_bytes: int  # padding granularity inside SK (1: no alignment needed)
    salt_bytes: int  # extra key bytes taken from prf+ (RFC 5282 §7.1, RFC 4106 §8.1)
    aead_icv_bytes: int  # 0 for a non-AEAD cipher (its ICV comes from INTEG)

    @functools.cached_property
    def aead(self) -> bool:
        return self.aead_icv_bytes > 0


INTEGRITY_ALGORITHMS: dict[int, Integrity] = {
    alg.transform_id: alg
    for alg in (
        Integrity(IntegId.AUTH_HMAC_SHA2_256_128, "AUTH_HMAC_SHA2_256_128", "sha256", 32, 16),
        Integrity(IntegId.AUTH_HMAC_SHA2_384_192, "AUTH_HMAC_SHA2_384_192", "sha384", 48, 24),
        Integrity(IntegId.AUTH_HMAC_SHA2_512_256, "AUTH_HMAC_SHA2_512_256", "sha512", 64, 32),
    )
}

ENCRYPTION_ALGORITHMS: dict[int, Encryption] = {
    alg.transform_id: alg
    for alg in (
        # RFC 5282 §3 and §8: 8-byte explicit IV, 16-byte ICV, 4-byte salt, no alignment.
        Encryption(EncrId.ENCR_AES_GCM_16, "ENCR_AES_GCM_16", (128, 256), 8, 1, 4, 16),
        # RFC 3602 / RFC 7296 §3.14: the IV is one cipher block, padding to the block.
        Encryption(EncrId.ENCR_AES_CBC, "ENCR_AES_CBC", (128, 256), 16, 16, 0, 0),
    )
}


def get_encryption(transform_id: int) -> Encryption:
    try:
        return ENCRYPTION_ALGORITHMS[transform_id]
    except KeyError:
        raise UnsupportedAlgorithm(f"unsupported ENCR transform {transform_id}") from None


def get_integrity(transform_id: int) -> Integrity:
    try:
        return INTEGRITY_ALGORITHMS[transform_id]
    except KeyError:
        raise UnsupportedAlgorithm(f"unsupported INTEG transform {transform_id}") from None


_KEPT_CIPHERS = 64  # AES-GCM objects kept per suite (suites are shared by IKE SAs)


@dataclass(frozen=True)
class CipherSuite:
    """ENCR + key length + INTEG as negotiated; sizes keys and seals/opens payload bodies.

    `integ` is None (or 0, "NONE") for AEAD ciphers and required otherwise. The same suite
    sizes ESP keys for Child SAs (RFC 7296 §2.17), which use the same transform IDs.
    """

    encr: int
    key_bits: int
    integ: int | None = None

    def __post_init__(self) -> None:
        encryption = get_encryption(self.encr)
        if self.key_bits not in encryption.key_bits:
            raise UnsupportedAlgorithm(
                f"{encryption.name} does not take a {self.key_bits}-bit key "
                f"(allowed: {', '.join(map(str, encryption.key_bits))})"
            )
        if encryption.aead and self.integ:
            raise UnsupportedAlgorithm(
                f"{encryption.name} is AEAD and takes no INTEG transform (RFC 5282 §8)"
            )
        if not encryption.aead:
            if not self.integ:
                raise UnsupportedAlgorithm(f"{encryption.name} needs an INTEG transform")
            get_integrity(self.integ)
        object.__setattr__(self, "integ", self.integ or None)

    @functools.cached_property
    def encryption(self) -> Encryption:
        return ENCRYPTION_ALGORITHMS[self.encr]

    @functools.cached_property
    def integrity(self) -> Integrity | None:
        return INTEGRITY_ALGORITHMS[self.integ] if self.integ else None

    @functools.cached_property
    def aead(self) -> bool:
        return self.encryption.aead

    @functools.cached_property
    def iv_bytes(self) -> int:
        return self.encryption.iv_bytes

    @functools.cached_property
    def block_bytes(self) -> int:
        return self.encryption.block_bytes

    @functools.cached_property
    def icv_bytes(self) -> int:
        integrity = self.integrity
        return integrity.icv_bytes if integrity else self.encryption.aead_icv_bytes

    @functools.cached_property
    def encr_key_bytes(self) -> int:
        """SK_e / ESP encryption key length, salt included (36 for AES-GCM-256)."""
        return self.key_bits // 8 + self.encryption.salt_bytes

    @functools.cached_property
    def integ_key_bytes(self) -> int:
        """SK_a / ESP integrity key length; 0 for AEAD (RFC 5282 §7.1: SK_a* are absent)."""
        integrity = self.integrity
        return integrity.key_bytes if integrity else 0

    @functools.cached_property
    def overhead_bytes(self) -> int:
        """IV + ICV: what the transform adds around the (padded) plaintext."""
        return self.iv_bytes + self.icv_bytes

    def seal(
        self, encr_key: bytes, integ_key: bytes, iv: bytes, aad: bytes, plaintext: bytes
    ) -> bytes:
        """Encrypt and authenticate; returns `IV | ciphertext | ICV`."""
        if len(encr_key) != self.encr_key_bytes or len(integ_key) != self.integ_key_bytes:
            self._check_keys(encr_key, integ_key)
        if len(iv) != self.iv_bytes:
            raise ValueError(f"IV must be {self.iv_bytes} bytes, got {len(iv)}")
        if self.aead:
            aead, salt = self._gcm(encr_key)
            return iv + aead.encrypt(salt + iv, plaintext, aad)
        if len(plaintext) % self.block_bytes:
            raise ValueError("CBC plaintext must be padded to the block size first")
        encryptor = Cipher(algorithms.AES(encr_key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext) + encryptor.finalize()
        body = iv + ciphertext
        return body + self.integrity.mac(integ_key, aad + body)

    def open(self, encr_key: bytes, integ_key: bytes, aad: bytes, body: bytes) -> bytes:
        """Verify and decrypt `IV | ciphertext | ICV`; IntegrityError if the ICV is wrong."""
        if len(encr_key) != self.encr_key_bytes or len(integ_key) != self.integ_key_bytes:
            self._check_keys(encr_key, integ_key)
        if len(body) < self.iv_bytes + self.icv_bytes:
            raise ParseError(
                f"encrypted payload body of {len(body)} bytes is shorter than IV + ICV "
                f"({self.iv_bytes + self.icv_bytes})"
            )
        iv = body[: self.iv_bytes]
        if self.aead:
            aead, salt = self._gcm(encr_key)
            try:
                return aead.decrypt(salt + iv, body[self.iv_bytes :], aad)
            except InvalidTag:
                raise IntegrityError("ICV mismatch (AES-GCM tag did not verify)") from None
        ciphertext = body[self.iv_bytes : len(body) - self.icv_bytes]
        icv = body[len(body) - self.icv_bytes :]
        expected = self.integrity.mac(integ_key, aad + body[: len(body) - self.icv_bytes])
        if not hmac.compare_digest(icv, expected):
            raise IntegrityError(f"ICV mismatch ({self.integrity.name})")
        if not ciphertext or len(ciphertext) % self.block_bytes:
            raise ParseError(
                f"CBC ciphertext of {len(ciphertext)} bytes is not a positive multiple "
                f"of {self.block_bytes}"
            )
        decryptor = Cipher(algorithms.AES(encr_key), modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    @functools.cached_property
    def _gcm_by_key(self) -> dict[bytes, tuple[AESGCM, bytes]]:
        """SK_e -> (AES-GCM cipher, salt): see `_gcm`. Not pickled (`__getstate__`)."""
        return {}

    def _gcm(self, encr_key: bytes) -> tuple[AESGCM, bytes]:
        """(AES-GCM cipher, salt) for SK_e. Both ends seal and open several messages
        with one key, so the cipher objects of the last few keys are kept on the suite."""
        ciphers = self._gcm_by_key
        found = ciphers.get(encr_key)
        if found is None:
            # RFC 5282 §7.1: the salt is the last 4 octets of SK_e; nonce = salt | IV (§4).
            cut = self.key_bits // 8
            if len(ciphers) >= _KEPT_CIPHERS:
                ciphers.clear()
            found = ciphers[encr_key] = (AESGCM(encr_key[:cut]), encr_key[cut:])
        return found

    def __getstate__(self) -> dict:
        # Pickle (e.g. to a worker process) without the cached cipher objects.
        return {k: v for k, v in self.__dict__.items() if k != "_gcm_by_key"}

    def _check_keys(self, encr_key: bytes, integ_key: bytes) -> None:
        if len(encr_key) != self.encr_key_bytes:
            raise ValueError(
                f"encryption key must be {self.encr_key_bytes} bytes, got {len(encr_key)}"
            )
        if len(integ_key) != self.integ_key_bytes:
            raise ValueError(
                f"integrity key must be {self.integ_key_bytes} bytes, got {len(integ_key)}"
            )

    def __str__(self) -> str:
        name = f"{self.encryption.name}_{self.key_bits}"
        return f"{name}/{self.integrity.name}" if self.integrity else name
