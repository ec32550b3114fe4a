"""Key schedule: published PRF and KDF vectors, an independent prf+, and a real strongSwan run.

The strongSwan run (X25519 + ML-KEM-768, AES-GCM-256, PRF HMAC-SHA2-256, PSK) logs every
intermediate value; SKEYSEED(0), SK_*(0), SKEYSEED(1), SK_*(1), the rekeyed IKE SA's keys,
IntAuth, the signed octets and both PSK AUTH values must match byte for byte, and the
first Child SA's keys must decrypt the ESP packets in the capture.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings

from tests.vectors import PSK, load_strongswan_run, requires_vectors
from wansim.ike.ciphers import CipherSuite, UnsupportedAlgorithm
from wansim.ike.constants import EncrId, IntegId, PrfId
from wansim.ike.keymat import (
    KEY_PAD,
    IkeKeys,
    IkeSuite,
    IntAuthChain,
    KeyScheduleError,
    Prf,
    child_keys,
    initial_keys,
    initial_skeyseed,
    intermediate_keys,
    intermediate_skeyseed,
    maced_id,
    prf,
    prf_plus,
    psk_auth,
    rekey_skeyseed,
    rekeyed_keys,
    signed_octets,
    split_ike_keys,
)

GCM256 = CipherSuite(EncrId.ENCR_AES_GCM_16, 256)
LAB_SUITE = IkeSuite(PrfId.PRF_HMAC_SHA2_256, GCM256)  # aes256gcm16-prfsha256-...

# RFC 4231 §4.2, §4.3 and §4.7 (test cases 1, 2 and 6); RFC 4868 §2.7.1 uses the same
# inputs for PRF_HMAC_SHA2_256/384/512.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", {
        5: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        6: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
           "faea9ea9076ede7f4af152e8b2fa9cb6",
        7: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
           "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    }),
    (b"Jefe", b"what do ya want for nothing?", {
        5: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        6: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
           "8e2240ca5e69e2c78b3239ecfab21649",
        7: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
           "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    }),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First", {
        5: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        6: "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
           "0c2ef6ab4030fe8296248df163f44952",
        7: "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
           "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
    }),
]  # fmt: skip

_HASHES = {5: hashes.SHA256, 6: hashes.SHA384, 7: hashes.SHA512}


def naive_prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """Second implementation: pyca/cryptography's HMAC instead of the stdlib's."""
    mac = pyca_hmac.HMAC(key, _HASHES[prf_id]())
    mac.update(data)
    return mac.finalize()


def naive_prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """RFC 7296 §2.13 written out literally: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)."""
    blocks = [naive_prf(prf_id, key, seed + b"\x01")]
    while sum(map(len, blocks)) < length:
        n = len(blocks) + 1
        blocks.append(naive_prf(prf_id, key, blocks[-1] + seed + bytes([n])))
    return b"".join(blocks)[:length]


# --- building blocks -----------------------------------------------------------------


@pytest.mark.parametrize("key,data,expected", RFC4231)
@pytest.mark.parametrize("prf_id", [5, 6, 7])
def test_prf_matches_rfc4231(prf_id, key, data, expected):
    assert prf(prf_id, key, data).hex() == expected[prf_id]


@settings(deadline=None, max_examples=60)
@given(
    prf_id=st.sampled_from([5, 6, 7]),
    key=st.binary(max_size=80),
    seed=st.binary(max_size=200),
    length=st.integers(min_value=0, max_value=700),
)
def test_prf_plus_agrees_with_naive_implementation(prf_id, key, seed, length):
    assert prf_plus(prf_id, key, seed, length) == naive_prf_plus(prf_id, key, seed, length)


def test_ikev2_kdf_matches_nist_cavp_vector():
    """NIST CAVP SP 800-135 IKEv2 KDF test vector (HMAC-SHA1, 8-byte nonces), as carried in
    libreswan's ike_alg_test_prf.c: SKEYSEED, the 132-byte DKM = prf+(SKEYSEED, Ni | Nr |
    SPIi | SPIr) and the rekey SKEYSEED = prf(SK_d, g^ir (new) | Ni | Nr). SHA-1 is not
    offered for negotiation, but the construction is the same for every HMAC PRF."""
    sha1 = Prf(2, "PRF_HMAC_SHA1", "sha1", 20)
    ni, nr = bytes.fromhex("32b50d5f4a3763f3"), bytes.fromhex("9206a04b26564cb1")
    g_ir = bytes.fromhex("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52")
    g_ir_new = bytes.fromhex("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330")
    spis = bytes.fromhex("34c9e7c188868785") + bytes.fromhex("3ff77d760d2b2199")
    skeyseed = initial_skeyseed(sha1, ni, nr, g_ir)
    assert skeyseed.hex() == "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"
    dkm = prf_plus(sha1, skeyseed, ni + nr + spis, 132)
    assert dkm.hex() == (
        "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002"
        "a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a"
        "5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119"
        "8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4"
    )
    rekey = prf(sha1, dkm[:20], g_ir_new + ni + nr)
    assert rekey.hex() == "63e81194946ebd05df7df5ebf5d8750056bf1f1d"


def test_prf_plus_is_a_prefix_stream():
    long = prf_plus(5, b"k", b"seed", 200)
    assert prf_plus(5, b"k", b"seed", 33) == long[:33]
    assert prf_plus(5, b"k", b"seed", 0) == b""


@pytest.mark.parametrize("prf_id,size", [(5, 32), (6, 48), (7, 64)])
def test_prf_plus_stops_at_255_blocks(prf_id, size):
    assert len(prf_plus(prf_id, b"k", b"s", 255 * size)) == 255 * size
    with pytest.raises(KeyScheduleError, match="255 blocks"):
        prf_plus(prf_id, b"k", b"s", 255 * size + 1)


def test_unknown_prf_is_a_typed_error():
    with pytest.raises(UnsupportedAlgorithm):
        prf(PrfId.PRF_HMAC_SHA1, b"k", b"d")
    with pytest.raises(UnsupportedAlgorithm):
        IkeSuite(99, GCM256)


@pytest.mark.parametrize(
    "suite,sizes",
    [
        (LAB_SUITE, (32, 0, 0, 36, 36, 32, 32)),
        (IkeSuite(6, CipherSuite(20, 128)), (48, 0, 0, 20, 20, 48, 48)),
        (IkeSuite(5, CipherSuite(12, 256, IntegId.AUTH_HMAC_SHA2_256_128)),
         (32, 32, 32, 32, 32, 32, 32)),
        (IkeSuite(7, CipherSuite(12, 128, IntegId.AUTH_HMAC_SHA2_512_256)),
         (64, 64, 64, 16, 16, 64, 64)),
    ],
)  # fmt: skip
def test_sk_sizes_follow_the_suite(suite, sizes):
    """RFC 7296 §2.14 sizes; SK_e includes the 4-byte GCM salt, SK_a is absent for AEAD
    (RFC 5282 §7.1); SK_d/SK_p have the PRF's key size (RFC 4868 §2.1.2)."""
    ni, nr, spi_i, spi_r = b"\x01" * 32, b"\x02" * 32, b"\x03" * 8, b"\x04" * 8
    keys = initial_keys(suite, b"secret", ni, nr, spi_i, spi_r)
    got = (keys.d, keys.ai, keys.ar, keys.ei, keys.er, keys.pi, keys.pr)
    assert tuple(map(len, got)) == sizes
    assert suite.keymat_bytes == sum(sizes)
    seed = naive_prf(suite.prf, ni + nr, b"secret")
    assert b"".join(got) == naive_prf_plus(suite.prf, seed, ni + nr + spi_i + spi_r, sum(sizes))


def test_keys_stay_out_of_repr():
    keys = initial_keys(LAB_SUITE, b"s", b"n" * 16, b"m" * 16, b"a" * 8, b"b" * 8)
    assert keys.d.hex() not in repr(keys)
    assert "suite=" in repr(keys)


def test_spis_must_be_eight_bytes():
    with pytest.raises(ValueError, match="8 bytes"):
        split_ike_keys(LAB_SUITE, b"seed", b"n", b"m", b"short", b"b" * 8)


def test_rekey_without_key_exchange_is_refused():
    keys = initial_keys(LAB_SUITE, b"s", b"n" * 16, b"m" * 16, b"a" * 8, b"b" * 8)
    with pytest.raises(KeyScheduleError):
        rekey_skeyseed(keys, [], b"n", b"m")


def test_child_keymat_formulas_and_order():
    """RFC 9370 §2.2.3: prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(k)); RFC 7296 §2.17:
    encryption before integrity, initiator-to-responder before the reverse."""
    ike = initial_keys(LAB_SUITE, b"s", b"n" * 32, b"m" * 32, b"a" * 8, b"b" * 8)
    ni, nr, s0, s1, s2 = b"I" * 32, b"R" * 32, b"0" * 32, b"1" * 32, b"2" * 32
    cbc = CipherSuite(12, 128, IntegId.AUTH_HMAC_SHA2_384_192)
    got = child_keys(ike, cbc, ni, nr, [s0, s1, s2])
    stream = naive_prf_plus(5, ike.d, s0 + ni + nr + s1 + s2, 2 * (16 + 48))
    assert (got.ei, got.ai, got.er, got.ar) == (
        stream[:16], stream[16:64], stream[64:80], stream[80:],
    )  # fmt: skip
    no_pfs = child_keys(ike, GCM256, ni, nr)
    assert no_pfs.ei + no_pfs.er == naive_prf_plus(5, ike.d, ni + nr, 72)
    assert no_pfs.ai == no_pfs.ar == b""
    assert child_keys(ike, GCM256, ni, nr, [s0]).ei == naive_prf_plus(5, ike.d, s0 + ni + nr, 36)


def test_ike_rekey_uses_old_prf_and_new_suite():
    old = initial_keys(LAB_SUITE, b"s", b"n" * 32, b"m" * 32, b"a" * 8, b"b" * 8)
    new_suite = IkeSuite(7, CipherSuite(20, 128))
    ni, nr, spi_i, spi_r = b"I" * 32, b"R" * 32, b"c" * 8, b"d" * 8
    new = rekeyed_keys(old, new_suite, [b"x" * 32, b"y" * 32], ni, nr, spi_i, spi_r)
    seed = naive_prf(5, old.d, b"x" * 32 + ni + nr + b"y" * 32)
    stream = naive_prf_plus(5, seed, ni + nr + spi_i + spi_r, new_suite.keymat_bytes)
    assert new.d == stream[:64] and new.pr == stream[-64:]
    assert new.suite == new_suite


def test_int_auth_is_empty_without_intermediate_exchange():
    """RFC 9242 §3.1 (and libreswan #2834): no IKE_INTERMEDIATE, no IntAuth in AUTH."""
    assert IntAuthChain().value(1) == b""


def test_psk_auth_formula():
    octets = b"message octets"
    assert psk_auth(6, b"psk", octets) == naive_prf(6, naive_prf(6, b"psk", KEY_PAD), octets)
    assert KEY_PAD == b"Key Pad for IKEv2" and len(KEY_PAD) == 17


# --- the real strongSwan 6.1 run ------------------------------------------------------


@pytest.fixture(scope="module")
def run():
    return load_strongswan_run()


def _spis(run, frame: int) -> tuple[bytes, bytes]:
    """SPIi, SPIr from the IKE header of a captured message (frame 3: IKE_SA lab[1];
    frame 24: the INFORMATIONAL of the rekeyed lab[2])."""
    header = run.frame(frame).ike
    return header[:8], header[8:16]


def _assert_keys(keys: IkeKeys, logged) -> None:
    assert keys.d == logged.sk_d
    assert keys.ei == logged.sk_ei
    assert keys.er == logged.sk_er
    assert keys.pi == logged.sk_pi
    assert keys.pr == logged.sk_pr
    assert keys.ai == logged.sk_ai == b"" and keys.ar == logged.sk_ar == b""


@pytest.fixture(scope="module")
def lab_keys(run):
    """SK_*(0) and SK_*(1) of IKE_SA lab[1] recomputed from the logged secrets."""
    ks0, ks1 = run.key_sets[0], run.key_sets[1]
    spi_i, spi_r = _spis(run, 3)
    keys0 = initial_keys(LAB_SUITE, ks0.secret, ks0.ni, ks0.nr, spi_i, spi_r)
    keys1 = intermediate_keys(keys0, ks1.secret, ks1.ni, ks1.nr, spi_i, spi_r)
    return keys0, keys1


@requires_vectors
def test_vector_inputs_are_consistent(run):
    ks0 = run.key_sets[0]
    assert ks0.ni in run.frame(1).ike and ks0.nr in run.frame(2).ike
    assert run.frame(1).ike[:8] == _spis(run, 3)[0]
    assert run.frame(2).ike[8:16] == _spis(run, 3)[1]
    assert [row[:2] for row in run.decryption_table[4:6]] == [
        tuple(x.hex() for x in _spis(run, 3)),
        tuple(x.hex() for x in _spis(run, 24)),
    ]
    assert len(run.key_sets) == 3


@requires_vectors
def test_skeyseed_0_and_sk_0_match_strongswan(run, lab_keys):
    ks0 = run.key_sets[0]
    assert initial_skeyseed(5, ks0.ni, ks0.nr, ks0.secret) == ks0.skeyseed
    _assert_keys(lab_keys[0], ks0)


@requires_vectors
def test_skeyseed_1_and_sk_1_match_strongswan_after_mlkem(run, lab_keys):
    """RFC 9370 §2.2.2 update with the ML-KEM-768 secret of IKE_INTERMEDIATE 1."""
    ks1 = run.key_sets[1]
    assert intermediate_skeyseed(lab_keys[0], ks1.secret, ks1.ni, ks1.nr) == ks1.skeyseed
    _assert_keys(lab_keys[1], ks1)


@requires_vectors
def test_ike_rekey_keys_match_strongswan(run, lab_keys):
    """RFC 9370 §2.2.4: CREATE_CHILD_SA (X25519) + IKE_FOLLOWUP_KE (ML-KEM-768)."""
    ks2 = run.key_sets[2]
    secrets = [ks2.secret, ks2.additional_secret]
    assert rekey_skeyseed(lab_keys[1], secrets, ks2.ni, ks2.nr) == ks2.skeyseed
    spi_i, spi_r = _spis(run, 24)
    new = rekeyed_keys(lab_keys[1], LAB_SUITE, secrets, ks2.ni, ks2.nr, spi_i, spi_r)
    _assert_keys(new, ks2)


@requires_vectors
def test_decryption_table_holds_the_same_keys(run, lab_keys):
    assert run.decryption_table[0][2] == lab_keys[0].ei.hex()
    assert run.decryption_table[0][3] == lab_keys[0].er.hex()
    assert run.decryption_table[2][2] == lab_keys[1].ei.hex()


@requires_vectors
def test_int_auth_chain_matches_strongswan(run, lab_keys):
    """IntAuth_i1 = prf(SK_pi(0), A|P) and IntAuth_r1 = prf(SK_pr(0), A|P) (RFC 9242 §3.1)."""
    request_ap, response_ap = run.values("IntAuth_A|P")
    logged_i, logged_r = run.values("IntAuth_N = ")
    chain = IntAuthChain().extend(lab_keys[0], request_ap, response_ap)
    assert (chain.i, chain.r, chain.exchanges) == (logged_i, logged_r, 1)
    assert chain.value(2) == logged_i + logged_r + b"\x00\x00\x00\x02"


@requires_vectors
def test_signed_octets_and_psk_auth_match_strongswan(run, lab_keys):
    """Both AUTH payload values of IKE_AUTH (MID 2), with IntAuth and the final SK_p(1)."""
    keys1 = lab_keys[1]
    ks0 = run.key_sets[0]
    id_i, id_r = run.values("IDx'")
    octets_i, octets_r = run.values("octets = ")
    auth_i, auth_r = run.values("AUTH = ")
    request_ap, response_ap = run.values("IntAuth_A|P")
    int_auth = IntAuthChain().extend(lab_keys[0], request_ap, response_ap).value(2)
    assert id_i == b"\x02\x00\x00\x00initiator.lab.example"  # ID_FQDN (2)

    built_i = signed_octets(5, keys1.pi, run.frame(1).ike, ks0.nr, id_i, int_auth)
    built_r = signed_octets(5, keys1.pr, run.frame(2).ike, ks0.ni, id_r, int_auth)
    assert built_i == octets_i and built_r == octets_r
    assert maced_id(5, keys1.pi, id_i) == octets_i[248 + 32 : 248 + 64]
    assert run.values("prf(secret, keypad)")[0] == prf(5, PSK, KEY_PAD)
    assert psk_auth(5, PSK, built_i) == auth_i
    assert psk_auth(5, PSK, built_r) == auth_r


@requires_vectors
@pytest.mark.parametrize("frame,direction", [(8, "i"), (9, "r")])
def test_first_child_sa_keys_decrypt_the_captured_esp(run, lab_keys, frame, direction):
    """KEYMAT = prf+(SK_d(1), Ni | Nr) for the Child SA of IKE_AUTH: the ESP packets sent
    right after (AES-GCM-256, RFC 4106: nonce = salt | IV, AAD = SPI | sequence number)
    decrypt to IPv4 packets with these keys."""
    ks0 = run.key_sets[0]
    child = child_keys(lab_keys[1], GCM256, ks0.ni, ks0.nr)
    key = child.ei if direction == "i" else child.er
    esp = run.frame(frame).esp
    spi_seq, iv, sealed = esp[:8], esp[8:16], esp[16:]
    plain = AESGCM(key[:32]).decrypt(key[32:] + iv, sealed, spi_seq)
    pad_length, next_header = plain[-2], plain[-1]
    assert next_header == 4  # IPv4 in tunnel mode
    inner = plain[: len(plain) - 2 - pad_length]
    assert inner[0] >> 4 == 4 and int.from_bytes(inner[2:4], "big") == len(inner)
