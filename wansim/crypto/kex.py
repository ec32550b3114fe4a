"""The key-exchange interface every backend implements, and the methods wansim knows.

A key exchange has three operations, named as in the simulation's CPU cost table:

    pending = kex.initiate()                 # "initiate": fresh key pair, pending.share on the wire
    share, secret = kex.respond(peer_share)  # "respond": DH keygen + derive, or ML-KEM Encaps
    secret = pending.finish(peer_share)      # "finish": DH derive, or ML-KEM Decaps

Shares are IKEv2 KE payload data (RFC 7296 §3.4): MODP values padded to the prime length,
ECP x‖y (RFC 5903 §7), X25519 raw (RFC 8031 §2), ML-KEM the raw encapsulation key and
ciphertext (draft-ietf-ipsecme-ikev2-mlkem §2). Lengths are checked here, once, before any
backend sees the bytes: liboqs-python would silently zero-pad a short share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from wansim.crypto.errors import KeyExchangeError

OPERATIONS = ("initiate", "respond", "finish")


@dataclass(frozen=True)
class KexMethod:
    """One IKEv2 Key Exchange Method (Transform Type 4) and its wire sizes in bytes."""

    token: str
    method_id: int
    name: str
    kind: Literal["dh", "kem"]
    initiator_share_bytes: int
    responder_share_bytes: int
    secret_bytes: int


# IANA "Transform Type 4 - Key Exchange Method Transform IDs"; sizes: RFC 7296 §2.14 (MODP),
# RFC 5903 §7 (ECP: x‖y, secret = x), RFC 8031 §2, FIPS 203 Table 3 (ML-KEM).
METHODS: dict[str, KexMethod] = {
    m.token: m
    for m in (
        KexMethod("modp2048", 14, "MODP-2048", "dh", 256, 256, 256),
        KexMethod("ecp256", 19, "ECP-256", "dh", 64, 64, 32),
        KexMethod("ecp384", 20, "ECP-384", "dh", 96, 96, 48),
        KexMethod("x25519", 31, "Curve25519", "dh", 32, 32, 32),
        KexMethod("mlkem512", 35, "ML-KEM-512", "kem", 800, 768, 32),
        KexMethod("mlkem768", 36, "ML-KEM-768", "kem", 1184, 1088, 32),
        KexMethod("mlkem1024", 37, "ML-KEM-1024", "kem", 1568, 1568, 32),
    )
}


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes, not {type(data).__name__}")


class KeyExchange(ABC):
    """One method on one backend. Stateless: every `initiate()` makes a fresh key pair."""

    backend: ClassVar[str]

    def __init__(self, method: KexMethod) -> None:
        self.method = method
        # The method's fields, copied once: engines read them for every exchange.
        self.token = method.token
        self.method_id = method.method_id
        self.initiator_share_bytes = method.initiator_share_bytes
        self.responder_share_bytes = method.responder_share_bytes
        self.secret_bytes = method.secret_bytes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.token} ({self.method_id}) via {self.backend}>"

    def initiate(self) -> PendingKeyExchange:
        """Make the initiator's fresh key pair; its public half is `pending.share`."""
        private, share = self._keypair()
        return PendingKeyExchange(self, private, share)

    def respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        """Answer the initiator's share: return (our share, shared secret)."""
        if type(peer_share) is bytes and len(peer_share) == self.initiator_share_bytes:
            return self._respond(peer_share)  # the usual case, checked inline
        return self._respond(self._checked(peer_share, self.initiator_share_bytes, "initiator"))

    def _checked(self, share: Any, expected: int, role: str) -> bytes:
        share = _as_bytes(share, f"{role} share")
        if len(share) != expected:
            raise KeyExchangeError(
                f"{self.method.name} {role} share is {len(share)} bytes, expected {expected}"
            )
        return share

    @abstractmethod
    def _keypair(self) -> tuple[Any, bytes]:
        """Return (private state, public share in wire form)."""

    @abstractmethod
    def _respond(self, peer_share: bytes) -> tuple[bytes, bytes]:
        """Validate a correctly sized initiator share; return (our share, secret)."""

    @abstractmethod
    def _finish(self, private: Any, peer_share: bytes) -> bytes:
        """Validate a correctly sized responder share; return the secret."""


class PendingKeyExchange:
    """The initiator's half-done exchange: holds the private key until `finish()`."""

    __slots__ = ("share", "_kex", "_private")

    def __init__(self, kex: KeyExchange, private: Any, share: bytes) -> None:
        self.share = share
        self._kex = kex
        self._private = private

    def __repr__(self) -> str:
        return f"<PendingKeyExchange {self._kex.token} via {self._kex.backend}>"

    def finish(self, peer_share: bytes) -> bytes:
        """Combine the responder's share with our private key into the shared secret."""
        kex = self._kex
        if type(peer_share) is not bytes or len(peer_share) != kex.responder_share_bytes:
            peer_share = kex._checked(peer_share, kex.responder_share_bytes, "responder")
        return kex._finish(self._private, peer_share)
