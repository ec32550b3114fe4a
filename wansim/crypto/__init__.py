"""Key exchange and signatures for wansim's IKEv2 engine, behind small registries.

    from wansim.crypto import get_kex
    kex = get_kex("mlkem768")                 # or get_kex(36); backend="auto"|"pyca"|"liboqs"
    pending = kex.initiate()                  # initiator: pending.share goes in KEi
    share, secret = kex.respond(pending.share)   # responder: share goes in KEr
    assert pending.finish(share) == secret

    scheme = get_signature_scheme("mldsa65")  # RFC 7427 AUTH; see wansim.crypto.signatures

`oqs` (liboqs-python) is imported only by `wansim.crypto.liboqs`, after its native library
was found, so no import here can start liboqs-python's download-and-build.
"""

from __future__ import annotations

from wansim.crypto.errors import BackendUnavailable, KeyExchangeError, UnknownMethod
from wansim.crypto.kex import METHODS, OPERATIONS, KexMethod, KeyExchange, PendingKeyExchange
from wansim.crypto.registry import BACKENDS, get_kex, kex_method, unavailable_reason
from wansim.crypto.signatures import (
    SIGNATURE_SCHEMES,
    SignatureError,
    SignatureScheme,
    get_signature_scheme,
)

__all__ = [
    "BACKENDS",
    "METHODS",
    "OPERATIONS",
    "SIGNATURE_SCHEMES",
    "BackendUnavailable",
    "KexMethod",
    "KeyExchange",
    "KeyExchangeError",
    "PendingKeyExchange",
    "SignatureError",
    "SignatureScheme",
    "UnknownMethod",
    "get_kex",
    "get_signature_scheme",
    "kex_method",
    "unavailable_reason",
]
