"""Classical Diffie-Hellman on pyca/cryptography: MODP-2048, ECP-256/384, Curve25519.

Peer checks follow RFC 6989 (additional Diffie-Hellman tests for IKEv2): a MODP value must
satisfy 1 < y < p-1 (§2.1), an ECP point must lie on the curve (§2.3); a Curve25519 result of
all zeros is rejected (RFC 8031 §2). Any failure raises `KeyExchangeError`.

pyca/cryptography 50 deprecated finite-field DH. It still runs it on OpenSSL's constant-time
modular exponentiation, which is what strongSwan uses too, so MODP costs stay realistic; the
deprecated names are looked up once with the warning silenced so it never reaches users.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from wansim.crypto.errors import KeyExchangeError
from wansim.crypto.kex import KexMethod, KeyExchange

# RFC 3526 §3: the 2048-bit MODP group (IKEv2 group 14), generator 2.
MODP2048_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183"
    "995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
MODP2048_GENERATOR = 2
_UNCOMPRESSED = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@cache
def _ffdh() -> tuple[Any, Any]:
    """(group-14 parameters, DHPublicNumbers class), fetched without the deprecation warning."""
    from cryptography.hazmat.primitives.asymmetric import dh

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numbers = dh.DHParameterNumbers(MODP2048_PRIME, MODP2048_GENERATOR)
        return numbers, dh.DHPublicNumbers


def ffdh_unavailable_reason() -> str | None:
    """Why this pyca/cryptography cannot do MODP-2048, or None when it can."""
    try:
        _ffdh()[0].parameters().generate_private_key()
    except (ImportError, AttributeError, UnsupportedAlgorithm) as error:
        return f"this pyca/cryptography has no finite-field DH ({error})"
    return None


class Modp(KeyExchange):
    """MODP-2048: shares and secret are big-endian, padded to the prime length (RFC 7296 §2.14)."""

    backend = "pyca"

    def __init__(self, method: KexMethod) -> None:
        super().__init__(method)
        self._numbers, self._public_numbers = _ffdh()
        self._parameters = self._numbers.parameters()
        self._length = method.initiator_share_bytes

    def _keypair(self) -> tuple[Any, bytes]:
        private = self._parameters.generate_private_key()
        y = private.public_key().public_numbers().y
        return private, y.to_bytes(self._length, "big")

    def _peer(self, share: bytes) -> Any:
        y = int.from_bytes(share, "big")
        if not 1 < y < MODP2048_PRIME - 1:  # RFC 6989 §2.1
            raise KeyExchangeError("MODP-2048 peer value is outside 1 < y < p-1")
        return self._public_numbers(y, self._numbers).public_key()

    def _secret(self, private: Any, peer: Any) -> bytes:
        try:
            secret = private.exchange(peer)
        except ValueError as error:
            raise KeyExchangeError(f"MODP-2048 exchange failed: {error}") from None
        return secret.rjust(self._length, b"\0")

    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        peer = self._peer(peer_share)
        private, share = self._keypair()
        return share, self._secret(private, peer)

    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        return self._secret(private, self._peer(peer_share))


class Ecp(KeyExchange):
    """NIST prime curves: shares are x‖y without the 0x04 prefix, the secret is x (RFC 5903 §7)."""

    backend = "pyca"
    _CURVES = {"ecp256": ec.SECP256R1, "ecp384": ec.SECP384R1}

    def __init__(self, method: KexMethod) -> None:
        super().__init__(method)
        self._curve = self._CURVES[method.token]()

    def _keypair(self) -> tuple[Any, bytes]:
        private = ec.generate_private_key(self._curve)
        return private, private.public_key().public_bytes(*_UNCOMPRESSED)[1:]

    def _peer(self, share: bytes) -> ec.EllipticCurvePublicKey:
        try:  # RFC 6989 §2.3: the point must be on the curve (pyca checks it while loading)
            return ec.EllipticCurvePublicKey.from_encoded_point(self._curve, b"\x04" + share)
        except ValueError:
            raise KeyExchangeError(f"{self.method.name} peer point is not on the curve") from None

    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        peer = self._peer(peer_share)
        private, share = self._keypair()
        return share, private.exchange(ec.ECDH(), peer)

    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        return private.exchange(ec.ECDH(), self._peer(peer_share))


class X25519(KeyExchange):
    """Curve25519 (RFC 8031): raw 32-byte shares; an all-zero secret is refused (§2)."""

    backend = "pyca"

    def _keypair(self) -> tuple[Any, bytes]:
        private = x25519.X25519PrivateKey.generate()
        return private, private.public_key().public_bytes(*_RAW)

    def _secret(self, private: x25519.X25519PrivateKey, peer_share: bytes) -> bytes:
        peer = x25519.X25519PublicKey.from_public_bytes(peer_share)
        try:  # pyca refuses an all-zero result (low-order peer point) with ValueError
            return private.exchange(peer)
        except ValueError:
            raise KeyExchangeError("Curve25519 shared secret is all zeros (RFC 8031 §2)") from None

    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        private, share = self._keypair()
        return share, self._secret(private, peer_share)

    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        return self._secret(private, peer_share)


CLASSICAL: dict[str, type[KeyExchange]] = {
    "modp2048": Modp,
    "ecp256": Ecp,
    "ecp384": Ecp,
    "x25519": X25519,
}
