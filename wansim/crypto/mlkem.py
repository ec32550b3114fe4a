"""ML-KEM-512/768/1024 (FIPS 203) on pyca/cryptography or liboqs-python.

In IKEv2 (draft-ietf-ipsecme-ikev2-mlkem §2) the initiator sends the raw encapsulation key,
the responder the raw ciphertext, and the 32-byte shared secret is used like g^ir.
Recipient checks (draft §2, FIPS 203 §7.2/§7.3): the responder runs the encapsulation-key
type (length) and modulus checks before Encaps; the initiator the ciphertext type check
before Decaps. A tampered ciphertext of the right length is not an error: Decaps then returns
the implicit-rejection secret and the next protected message fails its ICV.

pyca/cryptography runs the modulus check itself while loading a key; liboqs-python does not
promise it, so `encapsulation_key_error` does it here for that backend. The decapsulation-key
checks of §7.3 are skipped: the key is our own, generated in this process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wansim.crypto import liboqs
from wansim.crypto.errors import KeyExchangeError
from wansim.crypto.kex import KexMethod, KeyExchange

ML_KEM_Q = 3329  # FIPS 203 §2.4


def encapsulation_key_error(ek: bytes) -> str | None:
    """FIPS 203 §7.2: why `ek` fails the type or modulus check, or None if it passes.

    The modulus check ByteEncode12(ByteDecode12(ek[:384k])) == ek[:384k] holds exactly when
    every 12-bit little-endian coefficient (Algorithm 6) is below q.
    """
    k, rest = divmod(len(ek) - 32, 384)
    if rest or k not in (2, 3, 4):
        return f"ML-KEM encapsulation key has an invalid length of {len(ek)} bytes"
    packed = np.frombuffer(ek, dtype=np.uint8, count=384 * k).reshape(-1, 3).astype(np.uint16)
    low = packed[:, 0] | ((packed[:, 1] & 0x0F) << 8)
    high = (packed[:, 1] >> 4) | (packed[:, 2] << 4)
    if (low >= ML_KEM_Q).any() or (high >= ML_KEM_Q).any():
        return f"ML-KEM-{256 * k} encapsulation key fails the FIPS 203 §7.2 modulus check"
    return None


def _pyca_classes(method: KexMethod) -> tuple[Any, Any] | None:
    from cryptography.hazmat.primitives.asymmetric import mlkem

    size = method.name.removeprefix("ML-KEM-")
    private = getattr(mlkem, f"MLKEM{size}PrivateKey", None)
    public = getattr(mlkem, f"MLKEM{size}PublicKey", None)
    return None if private is None or public is None else (private, public)


def pyca_unavailable_reason(method: KexMethod) -> str | None:
    """Why pyca/cryptography cannot run this ML-KEM parameter set, or None when it can."""
    from cryptography.hazmat.backends.openssl.backend import backend

    if _pyca_classes(method) is None:
        return "pyca/cryptography implements ML-KEM-768 and ML-KEM-1024 only"
    if not backend.mlkem_supported():
        return f"pyca/cryptography's {backend.openssl_version_text()} lacks ML-KEM"
    return None


def liboqs_unavailable_reason(method: KexMethod) -> str | None:
    """Why liboqs cannot run this ML-KEM parameter set, or None when it can."""
    found = liboqs.status()
    if not found.available:
        return found.reason
    oqs = found.module
    if method.name not in oqs.get_enabled_kem_mechanisms():
        return f"liboqs {found.library_version} at {found.library_path} lacks {method.name}"
    with oqs.KeyEncapsulation(method.name) as kem:
        sizes = (kem.length_public_key, kem.length_ciphertext, kem.length_shared_secret)
    expected = (method.initiator_share_bytes, method.responder_share_bytes, method.secret_bytes)
    if sizes != expected:
        return f"liboqs {method.name} sizes {sizes} differ from FIPS 203 {expected}"
    return None


class PycaMlkem(KeyExchange):
    """ML-KEM on pyca/cryptography (OpenSSL); pyca returns (secret, ciphertext) from Encaps."""

    backend = "pyca"

    def __init__(self, method: KexMethod) -> None:
        super().__init__(method)
        classes = _pyca_classes(method)
        if classes is None:
            raise ValueError(pyca_unavailable_reason(method))
        self._private_cls, self._public_cls = classes

    def _keypair(self) -> tuple[Any, bytes]:
        private = self._private_cls.generate()
        return private, private.public_key().public_bytes_raw()

    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        try:  # the length is already right, so a ValueError here is the modulus check
            public = self._public_cls.from_public_bytes(peer_share)
        except ValueError:
            raise KeyExchangeError(
                f"{self.method.name} encapsulation key fails the FIPS 203 §7.2 modulus check"
            ) from None
        secret, ciphertext = public.encapsulate()
        return ciphertext, secret

    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        try:
            return private.decapsulate(peer_share)
        except ValueError as error:
            raise KeyExchangeError(f"{self.method.name} Decaps refused: {error}") from None


class LiboqsMlkem(KeyExchange):
    """ML-KEM on liboqs; liboqs-python returns (ciphertext, secret) and zero-pads short input,
    so lengths are checked before (in `KeyExchange`) and after every call."""

    backend = "liboqs"

    def __init__(self, method: KexMethod) -> None:
        super().__init__(method)
        found = liboqs.status()
        if not found.available:
            raise ValueError(found.reason)
        self._oqs = found.module

    def _exact(self, data: bytes, expected: int, what: str) -> bytes:
        if len(data) != expected:
            raise RuntimeError(f"liboqs returned a {len(data)}-byte {what}, expected {expected}")
        return data

    def _keypair(self) -> tuple[Any, bytes]:
        with self._oqs.KeyEncapsulation(self.method.name) as kem:
            ek = kem.generate_keypair()
            dk = kem.export_secret_key()  # copy out before free() wipes the buffer
        return dk, self._exact(ek, self.method.initiator_share_bytes, "encapsulation key")

    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        if reason := encapsulation_key_error(peer_share):
            raise KeyExchangeError(reason)
        with self._oqs.KeyEncapsulation(self.method.name) as kem:
            try:
                ciphertext, secret = kem.encap_secret(peer_share)
            except RuntimeError as error:
                raise KeyExchangeError(f"{self.method.name} Encaps refused: {error}") from None
        ciphertext = self._exact(ciphertext, self.method.responder_share_bytes, "ciphertext")
        return ciphertext, self._exact(secret, self.method.secret_bytes, "secret")

    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        with self._oqs.KeyEncapsulation(self.method.name, secret_key=private) as kem:
            try:
                secret = kem.decap_secret(peer_share)
            except RuntimeError as error:
                raise KeyExchangeError(f"{self.method.name} Decaps refused: {error}") from None
        return self._exact(secret, self.method.secret_bytes, "secret")
