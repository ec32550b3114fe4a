"""IKEv2 code points as IntEnums, one per IANA "IKEv2 Parameters" registry.

Sources: RFC 7296 §3 (base registries), RFC 9370 §2.2.1 and §3 (ADDKE transform
types, IKE_FOLLOWUP_KE, ADDITIONAL_KEY_EXCHANGE, STATE_NOT_FOUND), RFC 9242 §3
(IKE_INTERMEDIATE), RFC 7383 §2.5 (SKF), draft-ietf-ipsecme-ikev2-mlkem §4 (ML-KEM
method IDs 35..37), and the IANA registry at
https://www.iana.org/assignments/ikev2-parameters (values cross-checked against
strongSwan's headers, see shared/docs/pq-ikev2-digest.md §1.1).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from functools import cache

IKE_VERSION = 0x20  # major 2, minor 0 (RFC 7296 §3.1)
IKE_HEADER_BYTES = 28
PAYLOAD_HEADER_BYTES = 4
NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948 §2.2, on UDP port 4500
IKE_PORT = 500
NAT_T_PORT = 4500


class HeaderFlag(IntFlag):
    """IKE header flags (RFC 7296 §3.1); the other five bits are reserved."""

    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class ExchangeType(IntEnum):
    """IKEv2 Exchange Types (RFC 7296 §3.1; RFC 5723; RFC 9242 §3; RFC 9370 §3)."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37
    IKE_SESSION_RESUME = 38  # RFC 5723
    IKE_INTERMEDIATE = 43  # RFC 9242
    IKE_FOLLOWUP_KE = 44  # RFC 9370


class PayloadType(IntEnum):
    """IKEv2 Payload Types (RFC 7296 §3.2; RFC 6467; RFC 7383 §2.5)."""

    NONE = 0  # "no next payload"
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR_ID = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    GSPM = 49  # RFC 6467
    SKF = 53  # RFC 7383


class ProtocolId(IntEnum):
    """Security Protocol Identifiers (RFC 7296 §3.3.1); NONE is legal in Notify."""

    NONE = 0
    IKE = 1
    AH = 2
    ESP = 3


class TransformType(IntEnum):
    """Transform Type Values (RFC 7296 §3.3.2; type 4 renamed and 6..12 added by
    RFC 9370 §2.2.1)."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    KE = 4  # "Diffie-Hellman Group" before RFC 9370
    ESN = 5
    ADDKE1 = 6
    ADDKE2 = 7
    ADDKE3 = 8
    ADDKE4 = 9
    ADDKE5 = 10
    ADDKE6 = 11
    ADDKE7 = 12

    @property
    def is_addke(self) -> bool:
        return TransformType.ADDKE1 <= self <= TransformType.ADDKE7


ADDKE_TYPES: tuple[TransformType, ...] = tuple(
    TransformType(t) for t in range(TransformType.ADDKE1, TransformType.ADDKE7 + 1)
)


class TransformAttribute(IntEnum):
    """Transform Attribute Types (RFC 7296 §3.3.5); only Key Length is defined."""

    KEY_LENGTH = 14  # always TV format: first two bytes 0x800E


class EncrId(IntEnum):
    """Transform Type 1 - Encryption Algorithm IDs (RFC 7296 §3.3.2; RFC 4106;
    RFC 4309; RFC 7634)."""

    ENCR_3DES = 3
    ENCR_NULL = 11
    ENCR_AES_CBC = 12
    ENCR_AES_CTR = 13
    ENCR_AES_CCM_8 = 14
    ENCR_AES_CCM_12 = 15
    ENCR_AES_CCM_16 = 16
    ENCR_AES_GCM_8 = 18
    ENCR_AES_GCM_12 = 19
    ENCR_AES_GCM_16 = 20
    ENCR_NULL_AUTH_AES_GMAC = 21
    ENCR_CAMELLIA_CBC = 23
    ENCR_CHACHA20_POLY1305 = 28

    @property
    def is_aead(self) -> bool:
        return self in _AEAD_ENCR


_AEAD_ENCR = frozenset(
    {
        EncrId.ENCR_AES_CCM_8,
        EncrId.ENCR_AES_CCM_12,
        EncrId.ENCR_AES_CCM_16,
        EncrId.ENCR_AES_GCM_8,
        EncrId.ENCR_AES_GCM_12,
        EncrId.ENCR_AES_GCM_16,
        EncrId.ENCR_NULL_AUTH_AES_GMAC,
        EncrId.ENCR_CHACHA20_POLY1305,
    }
)


class PrfId(IntEnum):
    """Transform Type 2 - Pseudorandom Function IDs (RFC 7296 §3.3.2; RFC 4868)."""

    PRF_HMAC_MD5 = 1
    PRF_HMAC_SHA1 = 2
    PRF_AES128_XCBC = 4
    PRF_HMAC_SHA2_256 = 5
    PRF_HMAC_SHA2_384 = 6
    PRF_HMAC_SHA2_512 = 7
    PRF_AES128_CMAC = 8


class IntegId(IntEnum):
    """Transform Type 3 - Integrity Algorithm IDs (RFC 7296 §3.3.2; RFC 4868)."""

    NONE = 0
    AUTH_HMAC_MD5_96 = 1
    AUTH_HMAC_SHA1_96 = 2
    AUTH_AES_XCBC_96 = 5
    AUTH_HMAC_SHA1_160 = 7
    AUTH_AES_CMAC_96 = 8
    AUTH_AES_128_GMAC = 9
    AUTH_AES_192_GMAC = 10
    AUTH_AES_256_GMAC = 11
    AUTH_HMAC_SHA2_256_128 = 12
    AUTH_HMAC_SHA2_384_192 = 13
    AUTH_HMAC_SHA2_512_256 = 14


class KeMethod(IntEnum):
    """Transform Type 4 - Key Exchange Method IDs, also the values of ADDKE types and
    of the KE payload's method field (RFC 7296 §3.3.2; RFC 3526; RFC 5903; RFC 8031;
    RFC 9370 §2.2.1 for NONE; draft-ietf-ipsecme-ikev2-mlkem §4 for ML-KEM)."""

    NONE = 0  # inside an ADDKE type: "this additional key exchange is optional"
    MODP_768 = 1
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    ECP_192 = 25
    ECP_224 = 26
    BRAINPOOL_224 = 27
    BRAINPOOL_256 = 28
    BRAINPOOL_384 = 29
    BRAINPOOL_512 = 30
    CURVE25519 = 31
    CURVE448 = 32
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37

    @property
    def is_post_quantum(self) -> bool:
        return self in (KeMethod.ML_KEM_512, KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024)


class EsnId(IntEnum):
    """Transform Type 5 - Extended Sequence Numbers (RFC 7296 §3.3.2)."""

    NO_ESN = 0
    ESN = 1


class NotifyType(IntEnum):
    """Notify Message Types (RFC 7296 §3.10.1): errors below 16384, status above.

    Additions: RFC 4555 (MOBIKE), RFC 5685, RFC 6023, RFC 7383 §2.3 (fragmentation),
    RFC 7427 §4 (signature hashes), RFC 8784 (PPK), RFC 9242 §3 (intermediate),
    RFC 9370 §3.2 (ADDITIONAL_KEY_EXCHANGE, STATE_NOT_FOUND).
    """

    # error types
    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    UNACCEPTABLE_ADDRESSES = 40  # RFC 4555
    UNEXPECTED_NAT_DETECTED = 41  # RFC 4555
    USE_ASSIGNED_HoA = 42  # RFC 5026
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    STATE_NOT_FOUND = 47  # RFC 9370
    # status types
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396  # RFC 4555
    ADDITIONAL_IP4_ADDRESS = 16397
    ADDITIONAL_IP6_ADDRESS = 16398
    NO_ADDITIONAL_ADDRESSES = 16399
    UPDATE_SA_ADDRESSES = 16400
    COOKIE2 = 16401
    NO_NATS_ALLOWED = 16402
    AUTH_LIFETIME = 16403  # RFC 4478
    MULTIPLE_AUTH_SUPPORTED = 16404  # RFC 4739
    ANOTHER_AUTH_FOLLOWS = 16405
    REDIRECT_SUPPORTED = 16406  # RFC 5685
    REDIRECT = 16407
    REDIRECTED_FROM = 16408
    EAP_ONLY_AUTHENTICATION = 16417  # RFC 5998
    CHILDLESS_IKEV2_SUPPORTED = 16418  # RFC 6023
    QUICK_CRASH_DETECTION = 16419  # RFC 6290
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420  # RFC 6311
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421
    IKEV2_MESSAGE_ID_SYNC = 16422
    IPSEC_REPLAY_COUNTER_SYNC = 16423
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427
    USE_PPK = 16435  # RFC 8784
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438  # RFC 9242
    ADDITIONAL_KEY_EXCHANGE = 16441  # RFC 9370

    @property
    def is_error(self) -> bool:
        return self < 16384


def is_error_notify(notify_type: int) -> bool:
    """True for error notify types, known or not (RFC 7296 §3.10.1: 0..16383)."""
    return 0 < notify_type < 16384


class AuthMethod(IntEnum):
    """IKEv2 Authentication Methods (RFC 7296 §3.8; RFC 4754; RFC 7619; RFC 7427)."""

    RSA_SIG = 1
    SHARED_KEY_MIC = 2
    DSS_SIG = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    GENERIC_SECURE_PASSWORD = 12  # RFC 6467
    NULL_AUTH = 13  # RFC 7619
    DIGITAL_SIGNATURE = 14  # RFC 7427


class IdType(IntEnum):
    """IKEv2 Identification Payload ID Types (RFC 7296 §3.5; RFC 4595; RFC 7619)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11
    ID_FC_NAME = 12
    ID_NULL = 13


class TsType(IntEnum):
    """IKEv2 Traffic Selector Types (RFC 7296 §3.13.1; RFC 4595)."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8
    TS_FC_ADDR_RANGE = 9


class CertEncoding(IntEnum):
    """IKEv2 Certificate Encodings (RFC 7296 §3.6; RFC 4806; RFC 7670)."""

    PKCS7_X509 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    KERBEROS_TOKEN = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10
    RAW_RSA_KEY = 11
    HASH_URL_X509_CERT = 12
    HASH_URL_X509_BUNDLE = 13
    OCSP_CONTENT = 14  # RFC 4806
    RAW_PUBLIC_KEY = 15  # RFC 7670


class HashAlgorithm(IntEnum):
    """IKEv2 Hash Algorithms, the data of SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4;
    RFC 8420 for IDENTITY)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5


@cache
def members(enum: type[IntEnum]) -> dict[int, IntEnum]:
    """Value -> member of `enum`: what `coerce` looks up. Hot loops bind it once and call
    `.get(value, value)` themselves."""
    # Plain dict lookups: the codec does this for every field it reads, and
    # enum(value) raising ValueError for unassigned values is slow.
    return {member.value: member for member in enum}


def coerce(enum: type[IntEnum], value: int) -> int:
    """`value` as a member of `enum` when assigned there, else the plain int."""
    return members(enum).get(value, value)


@cache
def _names(enum: type[IntEnum]) -> dict[int, str]:
    # `member.name` is a Python-level property: look names up in a plain dict instead.
    return {value: member.name for value, member in members(enum).items()}


def name_of(enum: type[IntEnum], value: int) -> str:
    """The registry name of `value`, or the bare number for an unassigned one."""
    name = _names(enum).get(value)
    return str(value) if name is None else name
