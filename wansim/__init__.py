"""wansim: a discrete-event simulator of an anycast IPsec WAN whose tunnel endpoints
run real hybrid post-quantum IKEv2 handshakes (RFC 7296, RFC 9242, RFC 9370,
draft-ietf-ipsecme-ikev2-mlkem)."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public functions imported on first use, so `import wansim` stays light (no numpy,
# pandas or simpy until needed): name -> "module:attribute".
_LAZY: dict[str, str] = {
    "load": "wansim.experiment.results:load",
    "simulate": "wansim.sim.run:simulate",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'wansim' has no attribute {name!r}")
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
