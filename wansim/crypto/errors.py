"""The crypto layer's errors: one for bad peer input, one for a missing backend."""

from __future__ import annotations


class KeyExchangeError(ValueError):
    """The peer's key-exchange data is unacceptable (wrong length, off-curve, FIPS 203 check...).

    The IKE engine maps it to INVALID_SYNTAX / NO_PROPOSAL_CHOSEN; it is never an internal bug.
    """


class BackendUnavailable(RuntimeError):
    """The requested method or backend cannot run on this machine; the message says why."""


class UnknownMethod(ValueError):
    """A key-exchange or signature token / ID that wansim does not know."""
