"""Signature schemes for RFC 7427 authentication, and self-signed certificates for each."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.crypto import (
    SIGNATURE_SCHEMES,
    SignatureError,
    UnknownMethod,
    get_signature_scheme,
)
from wansim.crypto.signatures import (
    HASH_IDENTITY,
    auth_data,
    certificate_public_key,
    parse_auth_data,
    scheme_for_key,
    self_signed_certificate,
)

TOKENS = list(SIGNATURE_SCHEMES)


@pytest.fixture(scope="module")
def keys() -> dict:
    return {token: SIGNATURE_SCHEMES[token].generate() for token in TOKENS}


@pytest.mark.parametrize("token", TOKENS)
def test_sign_and_verify(keys: dict, token: str) -> None:
    scheme = get_signature_scheme(token)
    key = keys[token]
    octets = b"InitiatorSignedOctets" * 10
    signature = scheme.sign(key, octets)
    scheme.verify(key.public_key(), octets, signature)
    assert scheme_for_key(key.public_key()) is scheme
    with pytest.raises(SignatureError, match="does not verify"):
        scheme.verify(key.public_key(), octets + b"!", signature)
    with pytest.raises(SignatureError, match="does not verify"):
        scheme.verify(key.public_key(), octets, bytes([signature[0] ^ 1]) + signature[1:])
    other = next(t for t in TOKENS if t != token)
    with pytest.raises(SignatureError, match="is not a"):
        scheme.verify(keys[other].public_key(), octets, signature)


def test_algorithm_identifiers() -> None:
    # RFC 7427 Appendix A: ecdsa-with-sha256 / -sha384 AlgorithmIdentifiers, parameters absent
    assert SIGNATURE_SCHEMES["ecdsa-p256"].algorithm_identifier.hex() == "300a06082a8648ce3d040302"
    assert SIGNATURE_SCHEMES["ecdsa-p384"].algorithm_identifier.hex() == "300a06082a8648ce3d040303"
    for token in ("mldsa44", "mldsa65", "mldsa87"):
        assert SIGNATURE_SCHEMES[token].hash_algorithm == HASH_IDENTITY


@pytest.mark.parametrize("token", TOKENS)
def test_self_signed_certificate(keys: dict, token: str) -> None:
    scheme = SIGNATURE_SCHEMES[token]
    der = self_signed_certificate(token, keys[token], "pop-fra1.example")
    cert = x509.load_der_x509_certificate(der)
    cert.verify_directly_issued_by(cert)  # the signature over the TBS part is genuine
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pop-fra1.example"
    # the signature AlgorithmIdentifier appears in the TBS part and the outer certificate;
    # ML-DSA also names its public key with the same identifier (RFC 9881), ECDSA does not
    expected = 3 if token.startswith("mldsa") else 2
    assert der.count(scheme.algorithm_identifier) == expected
    found, public_key = certificate_public_key(der)
    assert found is scheme and public_key == keys[token].public_key()


def test_certificate_refuses_a_foreign_key(keys: dict) -> None:
    with pytest.raises(ValueError, match="is not a"):
        self_signed_certificate("mldsa65", keys["ecdsa-p256"], "x")


@pytest.mark.parametrize("token", TOKENS)
def test_auth_data_round_trip(keys: dict, token: str) -> None:
    scheme = SIGNATURE_SCHEMES[token]
    signature = scheme.sign(keys[token], b"octets")
    data = auth_data(scheme, signature)
    assert data[0] == len(scheme.algorithm_identifier)
    assert parse_auth_data(data) == (scheme, signature)


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownMethod, match="rsa-pss"):
        get_signature_scheme("rsa-pss")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_parse_auth_data_random_bytes(data: bytes) -> None:
    try:
        scheme, signature = parse_auth_data(data)
    except SignatureError:
        return
    assert data == auth_data(scheme, signature)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_certificate_random_bytes(data: bytes) -> None:
    with pytest.raises(SignatureError):
        certificate_public_key(data)
