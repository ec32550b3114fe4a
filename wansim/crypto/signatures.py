"""Signature schemes for IKEv2 "Digital Signature" authentication (RFC 7427), by token.

    scheme = get_signature_scheme("mldsa65")     # ecdsa-p256, ecdsa-p384, mldsa44/65/87
    key = scheme.generate()
    signature = scheme.sign(key, octets)         # the AUTH payload's Signature Value
    scheme.verify(key.public_key(), octets, signature)   # raises SignatureError
    cert = self_signed_certificate(scheme, key, "pop-fra1")   # DER X.509, for CERT payloads

RFC 7427 §3 puts an ASN.1 length octet and the scheme's DER AlgorithmIdentifier before the
signature value (`auth_data` / `parse_auth_data`); the peers announce the hash algorithms
they accept in SIGNATURE_HASH_ALGORITHMS (§4, IANA "IKEv2 Hash Algorithms").

* ECDSA: ecdsa-with-SHA256 on P-256, ecdsa-with-SHA384 on P-384 (RFC 5758 §3.2); the
  signature value is the DER Ecdsa-Sig-Value, as in certificates.
* ML-DSA (FIPS 204) in pure mode with an empty context, AlgorithmIdentifier id-ml-dsa-44/65/87
  with absent parameters (RFC 9881), announced with the Identity hash (5, RFC 8420) because
  ML-DSA hashes the whole message itself (draft-ietf-ipsecme-ikev2-pqc-auth).

pyca/cryptography 50 builds and verifies X.509 certificates signed with ML-DSA, so every
scheme gets a genuine self-signed certificate; no ECDSA-CA workaround is needed.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa
from cryptography.x509.oid import NameOID

from wansim.crypto.errors import UnknownMethod

# IANA "IKEv2 Hash Algorithms" (RFC 7427 §7, RFC 8420 §2)
HASH_SHA2_256 = 2
HASH_SHA2_384 = 3
HASH_IDENTITY = 5

# A fixed validity window keeps certificates (and their sizes) reproducible; the simulation's
# clock never reaches a real date, so only the encoding matters.
DEFAULT_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DEFAULT_LIFETIME_S = 10 * 365 * 86400


class SignatureError(ValueError):
    """A signature, public key, certificate or AUTH payload from the peer does not verify."""


@dataclass(frozen=True)
class SignatureScheme(ABC):
    """One signature algorithm as IKEv2 names it on the wire."""

    token: str
    name: str
    algorithm_identifier: bytes  # DER AlgorithmIdentifier, RFC 7427 §3
    hash_algorithm: int  # for SIGNATURE_HASH_ALGORITHMS, RFC 7427 §4

    @abstractmethod
    def generate(self) -> Any:
        """A fresh pyca private key for this scheme."""

    @abstractmethod
    def sign(self, private_key: Any, data: bytes) -> bytes:
        """The signature value over `data` (RFC 7427 §3 Signature Value)."""

    @abstractmethod
    def _verify(self, public_key: Any, data: bytes, signature: bytes) -> None:
        """pyca verification; raises InvalidSignature."""

    @abstractmethod
    def owns(self, key: Any) -> bool:
        """Whether a pyca public or private key belongs to this scheme."""

    def verify(self, public_key: Any, data: bytes, signature: bytes) -> None:
        """Check `signature` over `data`; raise SignatureError if it does not verify."""
        if not self.owns(public_key):
            raise SignatureError(f"{type(public_key).__name__} is not a {self.name} key")
        try:
            self._verify(public_key, data, signature)
        except (InvalidSignature, ValueError):
            raise SignatureError(f"{self.name} signature does not verify") from None

    def _certificate_hash(self) -> hashes.HashAlgorithm | None:
        return None


@dataclass(frozen=True)
class EcdsaScheme(SignatureScheme):
    curve: type[ec.EllipticCurve] = ec.SECP256R1
    digest: type[hashes.HashAlgorithm] = hashes.SHA256

    def generate(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(self.curve())

    def sign(self, private_key: Any, data: bytes) -> bytes:
        return private_key.sign(data, ec.ECDSA(self.digest()))

    def _verify(self, public_key: Any, data: bytes, signature: bytes) -> None:
        public_key.verify(signature, data, ec.ECDSA(self.digest()))

    def owns(self, key: Any) -> bool:
        return (
            isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
            and key.curve.name == self.curve.name
        )

    def _certificate_hash(self) -> hashes.HashAlgorithm:
        return self.digest()


@dataclass(frozen=True)
class MldsaScheme(SignatureScheme):
    level: int = 65

    def _classes(self) -> tuple[Any, Any]:
        return (
            getattr(mldsa, f"MLDSA{self.level}PrivateKey"),
            getattr(mldsa, f"MLDSA{self.level}PublicKey"),
        )

    def generate(self) -> Any:
        return self._classes()[0].generate()

    def sign(self, private_key: Any, data: bytes) -> bytes:
        return private_key.sign(data)  # pure ML-DSA, empty context (FIPS 204 Algorithm 2)

    def _verify(self, public_key: Any, data: bytes, signature: bytes) -> None:
        public_key.verify(signature, data)

    def owns(self, key: Any) -> bool:
        return isinstance(key, self._classes())


def _der_algorithm_identifier(oid: str) -> bytes:
    """DER of SEQUENCE { OBJECT IDENTIFIER oid } with absent parameters (X.690 §8.19)."""
    first, second, *rest = (int(arc) for arc in oid.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    encoded_oid = bytes([0x06, len(body)]) + body
    return bytes([0x30, len(encoded_oid)]) + encoded_oid


SIGNATURE_SCHEMES: dict[str, SignatureScheme] = {
    s.token: s
    for s in (
        EcdsaScheme(
            "ecdsa-p256",
            "ECDSA P-256 with SHA-256",
            _der_algorithm_identifier("1.2.840.10045.4.3.2"),
            HASH_SHA2_256,
            ec.SECP256R1,
            hashes.SHA256,
        ),
        EcdsaScheme(
            "ecdsa-p384",
            "ECDSA P-384 with SHA-384",
            _der_algorithm_identifier("1.2.840.10045.4.3.3"),
            HASH_SHA2_384,
            ec.SECP384R1,
            hashes.SHA384,
        ),
        *(
            MldsaScheme(
                f"mldsa{level}",
                f"ML-DSA-{level}",
                _der_algorithm_identifier(f"2.16.840.1.101.3.4.3.{oid_arc}"),
                HASH_IDENTITY,
                level,
            )
            for level, oid_arc in ((44, 17), (65, 18), (87, 19))
        ),
    )
}


def get_signature_scheme(token: str) -> SignatureScheme:
    """The scheme for a token: ecdsa-p256, ecdsa-p384, mldsa44, mldsa65 or mldsa87."""
    scheme = SIGNATURE_SCHEMES.get(token.strip().lower())
    if scheme is None:
        raise UnknownMethod(
            f"unknown signature scheme {token!r}; known: {', '.join(SIGNATURE_SCHEMES)}"
        )
    return scheme


def scheme_for_key(key: Any) -> SignatureScheme:
    """The scheme a pyca public or private key belongs to."""
    for scheme in SIGNATURE_SCHEMES.values():
        if scheme.owns(key):
            return scheme
    raise SignatureError(f"no supported signature scheme uses a {type(key).__name__}")


def auth_data(scheme: SignatureScheme, signature: bytes) -> bytes:
    """RFC 7427 §3 Authentication Data: ASN.1 length octet | AlgorithmIdentifier | signature."""
    return bytes([len(scheme.algorithm_identifier)]) + scheme.algorithm_identifier + signature


def parse_auth_data(data: bytes) -> tuple[SignatureScheme, bytes]:
    """Split RFC 7427 Authentication Data into (scheme, signature value)."""
    if not data:
        raise SignatureError("empty RFC 7427 authentication data")
    length = data[0]
    identifier = data[1 : 1 + length]
    for scheme in SIGNATURE_SCHEMES.values():
        if scheme.algorithm_identifier == identifier:
            return scheme, data[1 + length :]
    raise SignatureError(f"unsupported signature AlgorithmIdentifier {identifier.hex()}")


def self_signed_certificate(
    scheme: SignatureScheme | str,
    private_key: Any,
    subject: str,
    *,
    not_before: dt.datetime = DEFAULT_NOT_BEFORE,
    lifetime_s: float = DEFAULT_LIFETIME_S,
) -> bytes:
    """A DER X.509 v3 certificate for `subject` (CN and DNS SAN), signed by its own key."""
    if isinstance(scheme, str):
        scheme = get_signature_scheme(scheme)
    if not scheme.owns(private_key):
        raise ValueError(f"{type(private_key).__name__} is not a {scheme.name} key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(seconds=lifetime_s))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    certificate = builder.sign(private_key, scheme._certificate_hash())
    return certificate.public_bytes(serialization.Encoding.DER)


def make_credentials(scheme: SignatureScheme | str, subject: str) -> tuple[Any, bytes]:
    """(new private key, its self-signed DER certificate): what one endpoint holds."""
    if isinstance(scheme, str):
        scheme = get_signature_scheme(scheme)
    key = scheme.generate()
    return key, self_signed_certificate(scheme, key, subject)


def certificate_public_key(der: bytes) -> tuple[SignatureScheme, Any]:
    """The (scheme, public key) of a DER certificate from a peer's CERT payload."""
    try:
        public_key = x509.load_der_x509_certificate(der).public_key()
    except ValueError as error:
        raise SignatureError(f"malformed certificate: {error}") from None
    return scheme_for_key(public_key), public_key
