"""The codec's errors: one exception type for every malformed input (h11 style).

`ParseError` is the only thing the codec raises on bad bytes. Two subclasses carry what
the engine needs to answer the peer with the notify RFC 7296 asks for, instead of
silently dropping the message.
"""

from __future__ import annotations

from typing import Any


class ParseError(ValueError):
    """Malformed IKE bytes: wrong length, bad field, truncated or trailing data.

    `header` is the parsed `IkeHeader` when the failure happened after the IKE header
    was read (so a responder can still address an error notify), else None.
    """

    def __init__(self, message: str, *, header: Any = None) -> None:
        super().__init__(message)
        self.header = header


class UnsupportedCriticalPayload(ParseError):
    """A payload of unknown type had its critical bit set (RFC 7296 §2.5).

    The recipient must reject the whole message and answer with notify
    UNSUPPORTED_CRITICAL_PAYLOAD (type 1) whose data is the one-byte payload type
    (RFC 7296 §3.10.1): `notify_data` gives exactly those bytes.
    """

    def __init__(self, payload_type: int, *, header: Any = None) -> None:
        super().__init__(f"unsupported critical payload type {payload_type}", header=header)
        self.payload_type = payload_type

    @property
    def notify_data(self) -> bytes:
        return bytes([self.payload_type])


class InvalidMajorVersion(ParseError):
    """The IKE header announces a major version above 2 (RFC 7296 §2.5, §3.1).

    A responder answers with notify INVALID_MAJOR_VERSION (type 5) in a 2.0 header;
    `header` holds SPIs, exchange type and message ID to address it, and
    `major_version` the version the peer sent.
    """

    def __init__(self, major_version: int, *, header: Any = None) -> None:
        super().__init__(
            f"unsupported IKE major version {major_version} (only 2 is supported)",
            header=header,
        )
        self.major_version = major_version
