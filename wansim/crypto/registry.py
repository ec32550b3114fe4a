"""Find a key exchange by proposal token or IKEv2 method ID, on the best available backend.

Backends: "pyca" (pyca/cryptography: every classical method, ML-KEM-768/1024) and "liboqs"
(liboqs-python: ML-KEM-512/768/1024, only when its native library is present). "auto"
prefers liboqs for ML-KEM, else pyca. Instances are stateless, so one per (token, backend)
is built and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from wansim.crypto import classical, mlkem
from wansim.crypto.errors import BackendUnavailable, UnknownMethod
from wansim.crypto.kex import METHODS, KexMethod, KeyExchange

BACKENDS = ("liboqs", "pyca")
_PREFERENCE = {"kem": ("liboqs", "pyca"), "dh": ("pyca",)}
_BY_ID = {method.method_id: method for method in METHODS.values()}


def kex_method(method: str | int) -> KexMethod:
    """The `KexMethod` for a proposal token ("mlkem768") or a Transform Type 4 ID (36)."""
    if isinstance(method, str):
        found = METHODS.get(method.strip().lower())
    elif isinstance(method, int):
        found = _BY_ID.get(int(method))
    else:
        raise TypeError(f"key-exchange method must be a token or an ID, not {method!r}")
    if found is None:
        known = ", ".join(f"{m.token} ({m.method_id})" for m in METHODS.values())
        raise UnknownMethod(f"unknown key-exchange method {method!r}; known: {known}")
    return found


def _factory(method: KexMethod, backend: str) -> tuple[str | None, Callable[..., KeyExchange]]:
    """(why `backend` cannot run `method` or None, class to build it)."""
    if method.kind == "dh":
        if backend != "pyca":
            return f"{backend} provides ML-KEM only", classical.CLASSICAL[method.token]
        if method.token == "modp2048":
            return classical.ffdh_unavailable_reason(), classical.Modp
        return None, classical.CLASSICAL[method.token]
    if backend == "liboqs":
        return mlkem.liboqs_unavailable_reason(method), mlkem.LiboqsMlkem
    return mlkem.pyca_unavailable_reason(method), mlkem.PycaMlkem


@cache
def unavailable_reason(method: str | int, backend: str) -> str | None:
    """Why `backend` cannot run `method` on this machine, or None when it can."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown crypto backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    return _factory(kex_method(method), backend)[0]


@cache
def _instance(token: str, backend: str) -> KeyExchange:
    method = METHODS[token]
    return _factory(method, backend)[1](method)


def get_kex(method: str | int, backend: str = "auto") -> KeyExchange:
    """The key exchange for `method` on `backend` ("auto", "pyca" or "liboqs").

    Raises `UnknownMethod` for a token/ID wansim does not know, `BackendUnavailable` (saying
    why, and how to enable liboqs when that would help) when no requested backend can run it.
    """
    spec = kex_method(method)
    if backend == "auto":
        order = _PREFERENCE[spec.kind]
    elif backend in BACKENDS:
        order = (backend,)
    else:
        raise ValueError(f"unknown crypto backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    reasons = []
    for name in order:
        reason = unavailable_reason(spec.token, name)
        if reason is None:
            return _instance(spec.token, name)
        reasons.append(f"{name}: {reason}")
    if spec.kind == "kem" and "liboqs" not in order:  # say what liboqs would take
        reasons.append(f"liboqs: {unavailable_reason(spec.token, 'liboqs') or 'available'}")
    raise BackendUnavailable(f"{spec.token} ({spec.name}) is unavailable — {'; '.join(reasons)}")
