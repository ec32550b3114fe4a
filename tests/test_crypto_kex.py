"""Key exchange: both ends agree on every method and backend; bad peer shares are refused."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wansim.crypto import (
    BACKENDS,
    METHODS,
    BackendUnavailable,
    KeyExchangeError,
    UnknownMethod,
    get_kex,
    kex_method,
    unavailable_reason,
)
from wansim.crypto.classical import MODP2048_PRIME
from wansim.crypto.mlkem import encapsulation_key_error

# every backend that could run a method; liboqs offers ML-KEM only
PAIRS = [
    (token, backend)
    for token, method in METHODS.items()
    for backend in BACKENDS
    if method.kind == "kem" or backend == "pyca"
]


def kex_or_skip(token: str, backend: str):
    reason = unavailable_reason(token, backend)
    if reason is not None:
        pytest.skip(f"{token} on {backend}: {reason}")
    return get_kex(token, backend)


@pytest.mark.parametrize(("token", "backend"), PAIRS)
def test_both_ends_agree(token: str, backend: str) -> None:
    kex = kex_or_skip(token, backend)
    method = METHODS[token]
    assert (kex.token, kex.method_id, kex.backend) == (token, method.method_id, backend)
    pending = kex.initiate()
    share, secret = kex.respond(pending.share)
    assert len(pending.share) == kex.initiator_share_bytes == method.initiator_share_bytes
    assert len(share) == kex.responder_share_bytes == method.responder_share_bytes
    assert len(secret) == kex.secret_bytes == method.secret_bytes
    assert pending.finish(share) == secret
    # a second exchange uses fresh keys on both sides
    again = kex.initiate()
    share2, secret2 = kex.respond(again.share)
    assert again.share != pending.share and share2 != share and secret2 != secret
    assert again.finish(share2) == secret2


def test_lookup_by_id_token_and_auto() -> None:
    for token, method in METHODS.items():
        assert kex_method(method.method_id) is method
        assert kex_method(token.upper()) is method
    assert get_kex(31) is get_kex("x25519")
    assert get_kex("ecp384").backend == "pyca"
    expected = "liboqs" if unavailable_reason("mlkem768", "liboqs") is None else "pyca"
    assert get_kex("mlkem768").backend == expected


def test_unknown_method_and_backend() -> None:
    with pytest.raises(UnknownMethod, match="x448"):
        get_kex("x448")
    with pytest.raises(UnknownMethod):
        get_kex(32)
    with pytest.raises(ValueError, match="unknown crypto backend"):
        get_kex("x25519", backend="openssl")
    with pytest.raises(BackendUnavailable, match="ML-KEM only"):
        get_kex("x25519", backend="liboqs")


def test_mlkem512_needs_liboqs() -> None:
    if unavailable_reason("mlkem512", "liboqs") is None:
        pytest.skip("liboqs is present here, so ML-KEM-512 is available")
    for backend in ("auto", "pyca", "liboqs"):
        with pytest.raises(BackendUnavailable, match="OQS_INSTALL_PATH"):
            get_kex("mlkem512", backend)


def test_non_bytes_share_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        get_kex("x25519").respond("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("token", "backend"), PAIRS)
def test_wrong_length_shares_are_refused(token: str, backend: str) -> None:
    kex = kex_or_skip(token, backend)
    pending = kex.initiate()
    share, _ = kex.respond(pending.share)
    for bad in (b"", pending.share[:-1], pending.share + b"\0"):
        with pytest.raises(KeyExchangeError, match="initiator share"):
            kex.respond(bad)
    for bad in (b"", share[:-1], share + b"\0"):
        with pytest.raises(KeyExchangeError, match="responder share"):
            pending.finish(bad)


@pytest.mark.parametrize(
    "y", [0, 1, MODP2048_PRIME - 1, MODP2048_PRIME, MODP2048_PRIME + 1, 2**2048 - 1]
)
def test_modp_value_out_of_range(y: int) -> None:
    kex = get_kex("modp2048")
    with pytest.raises(KeyExchangeError, match="1 < y < p-1"):
        kex.respond(y.to_bytes(256, "big"))
    with pytest.raises(KeyExchangeError):
        kex.initiate().finish(y.to_bytes(256, "big"))


@pytest.mark.parametrize("token", ["ecp256", "ecp384"])
def test_ecp_point_off_the_curve(token: str) -> None:
    kex = get_kex(token)
    good = kex.initiate().share
    half = len(good) // 2
    y = int.from_bytes(good[half:], "big")
    off_curve = good[:half] + ((y + 1) % 2 ** (8 * half)).to_bytes(half, "big")
    for bad in (bytes(len(good)), off_curve, b"\xff" * len(good)):
        with pytest.raises(KeyExchangeError, match="not on the curve"):
            kex.respond(bad)
        with pytest.raises(KeyExchangeError, match="not on the curve"):
            kex.initiate().finish(bad)


# Curve25519 points of small order (the all-zero share is the simplest); each makes the
# X25519 result all zeros, which RFC 8031 §2 requires the recipient to reject.
LOW_ORDER_X25519 = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
]


@pytest.mark.parametrize("share", LOW_ORDER_X25519)
def test_x25519_all_zero_secret_refused(share: bytes) -> None:
    kex = get_kex("x25519")
    with pytest.raises(KeyExchangeError, match="all zeros"):
        kex.respond(share)
    with pytest.raises(KeyExchangeError, match="all zeros"):
        kex.initiate().finish(share)


def _break_coefficient(ek: bytes, index: int, value: int) -> bytes:
    """Set 12-bit coefficient `index` of ek's t-hat part to `value` (FIPS 203 ByteEncode12)."""
    n = int.from_bytes(ek, "little")
    mask = 0xFFF << (12 * index)
    return ((n & ~mask) | (value << (12 * index))).to_bytes(len(ek), "little")


@pytest.mark.parametrize(("token", "backend"), [p for p in PAIRS if p[0].startswith("mlkem")])
def test_mlkem_modulus_check_and_implicit_rejection(token: str, backend: str) -> None:
    kex = kex_or_skip(token, backend)
    pending = kex.initiate()
    bad_key = _break_coefficient(pending.share, 5, 3329)
    with pytest.raises(KeyExchangeError, match="modulus check"):
        kex.respond(bad_key)
    ciphertext, secret = kex.respond(pending.share)
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    # FIPS 203 implicit rejection: right length, wrong bytes -> a different secret, no error
    assert pending.finish(tampered) != secret
    assert pending.finish(ciphertext) == secret


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    token=st.sampled_from(["mlkem768", "mlkem1024"]),
    index=st.integers(0, 4 * 256 - 1),
    value=st.integers(0, 4095),
)
def test_modulus_check_agrees_with_pyca(token: str, index: int, value: int) -> None:
    kex = get_kex(token, "pyca")
    ek = kex.initiate().share
    k = (len(ek) - 32) // 384
    mutated = _break_coefficient(ek, index % (256 * k), value)
    ours = encapsulation_key_error(mutated) is None
    try:
        kex.respond(mutated)
        pyca = True
    except KeyExchangeError:
        pyca = False
    assert ours == pyca == (value < 3329)


def test_modulus_check_refuses_bad_lengths() -> None:
    for length in (0, 31, 800 - 1, 1184 + 1, 384 * 5 + 32):
        assert "invalid length" in encapsulation_key_error(bytes(length))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=st.sampled_from([p for p in PAIRS if unavailable_reason(*p) is None]),
    data=st.data(),
)
def test_random_peer_shares_never_raise_anything_else(pair: tuple[str, str], data) -> None:
    kex = get_kex(*pair)
    side = data.draw(st.sampled_from(["respond", "finish"]))
    size = kex.initiator_share_bytes if side == "respond" else kex.responder_share_bytes
    length = data.draw(st.sampled_from([size, size, size - 1, size + 1, 0]))
    share = data.draw(st.binary(min_size=length, max_size=length))
    try:
        if side == "respond":
            answer, secret = kex.respond(share)
            assert len(answer) == kex.responder_share_bytes
        else:
            secret = kex.initiate().finish(share)
    except KeyExchangeError:
        return
    assert length == size and len(secret) == kex.secret_bytes


def test_modp_leaks_no_deprecation_warning() -> None:
    """pyca 50 deprecates finite-field DH; a fresh process with warnings as errors still runs it."""
    code = (
        "from wansim.crypto import get_kex\n"
        "kex = get_kex('modp2048')\n"
        "pending = kex.initiate()\n"
        "share, secret = kex.respond(pending.share)\n"
        "assert pending.finish(share) == secret\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
