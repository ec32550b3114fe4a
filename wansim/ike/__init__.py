"""Sans-I/O IKEv2 with hybrid post-quantum key exchange (RFC 7296, RFC 9242, RFC 9370,
RFC 7383, draft-ietf-ipsecme-ikev2-mlkem): wire codec, proposals, key schedule and engine."""

from __future__ import annotations

import importlib
from typing import Any

# The engine's public names, imported lazily so `import wansim.ike.constants` stays light.
_EXPORTS: dict[str, str] = {
    "IkeSa": "wansim.ike.sa",
    "IkeStateError": "wansim.ike.sa",
    "ChildSa": "wansim.ike.sa",
    "KeySet": "wansim.ike.sa",
    "WireMessage": "wansim.ike.sa",
    "Gateway": "wansim.ike.gateway",
    "IkeConfig": "wansim.ike.config",
    "GatewayConfig": "wansim.ike.config",
    "ParseError": "wansim.ike.errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wansim.ike' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
