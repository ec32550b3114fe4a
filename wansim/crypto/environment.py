"""What crypto this machine offers: versions, liboqs status, each method's backends.

`wansim doctor` prints it; results can record it. Nothing here imports `oqs` except through
`wansim.crypto.liboqs.status()`, which does so only once the native library has loaded.
"""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass

from wansim.crypto import liboqs
from wansim.crypto.kex import METHODS, KexMethod
from wansim.crypto.registry import BACKENDS, get_kex, unavailable_reason


def _metadata_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions that decide what and how fast the crypto runs (None = not installed/loaded)."""
    from cryptography.hazmat.backends.openssl.backend import backend

    return {
        "wansim": _metadata_version("wansim"),
        "python": platform.python_version(),
        "cryptography": _metadata_version("cryptography"),
        "openssl": backend.openssl_version_text(),
        "liboqs-python": liboqs.package_version(),
        "liboqs": liboqs.status().library_version,
    }


@dataclass(frozen=True)
class MethodSupport:
    """One key-exchange method: the backend `auto` picks and why each backend can't run it."""

    method: KexMethod
    auto: str | None
    reasons: dict[str, str | None]


def method_support() -> list[MethodSupport]:
    """Every method wansim knows, in IANA order, with its backends on this machine."""
    rows = []
    for method in sorted(METHODS.values(), key=lambda m: m.method_id):
        reasons = {b: unavailable_reason(method.token, b) for b in BACKENDS}
        if method.kind == "dh":
            reasons = {b: r for b, r in reasons.items() if b == "pyca"}
        auto = get_kex(method.token).backend if any(r is None for r in reasons.values()) else None
        rows.append(MethodSupport(method, auto, reasons))
    return rows
