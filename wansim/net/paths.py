"""Paths between endpoints: delay, jitter, loss, bandwidth, MTU and IP fragmentation.

One-way delay of a site–POP path (docs/model.md, "Delay"):

    delay = geodesic_km × internet_stretch ÷ fibre_km_per_ms + access delay

plus, per datagram, serialization on the site's access link and exponential jitter.
A datagram larger than the path MTU is split into IPv4 fragments (RFC 791: every
fragment but the last carries a multiple of 8 payload bytes); it arrives only if
every fragment does, so with per-packet loss p and k fragments it is lost with
probability 1 − (1 − p)^k — or always, on a path that drops fragments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from wansim.topology.backbone import BACKBONE_STRETCH, FIBRE_KM_PER_MS

IPV4_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
INTERNET_STRETCH = 2.1
"""Route length over geodesic across the public Internet (docs/model.md)."""


class PathParams(BaseModel):
    """How geography turns into delay; defaults from measurement literature (docs/model.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fibre_km_per_ms: float = Field(FIBRE_KM_PER_MS, gt=0)
    """Signal speed in fibre (km per millisecond)."""
    internet_stretch: float = Field(INTERNET_STRETCH, ge=1)
    """Path stretch from a branch site across the Internet to a POP."""
    backbone_stretch: float = Field(BACKBONE_STRETCH, ge=1)
    """Path stretch of each private backbone link between POPs."""
    internet_loss: float = Field(0.0, ge=0, lt=1)
    """Per-packet loss of the Internet leg, on top of the access profile's loss."""
    pop_mtu_bytes: int = Field(1500, ge=576, le=9000)
    """IP MTU at the POP side; the path MTU is the smaller of this and the access MTU."""
    backbone_loss: float = Field(0.0, ge=0, lt=1)
    """Per-packet loss between POPs on the backbone."""


@dataclass(frozen=True)
class Path:
    """A one-way path as the network uses it for one datagram."""

    delay_s: float
    """Fixed one-way delay: propagation plus access delays."""
    jitter_s: float = 0.0
    """Mean of the exponential extra delay drawn per datagram."""
    loss: float = 0.0
    """Per-packet (per-fragment) loss probability."""
    mtu_bytes: int = 1500
    bandwidth_bps: float = math.inf
    """Rate of the narrowest (access) link, for serialization."""
    drops_fragments: bool = False

    def fragments(self, payload_bytes: int) -> int:
        """IP packets a UDP datagram of `payload_bytes` needs on this path."""
        return ip_fragment_count(payload_bytes, self.mtu_bytes)

    def delivery_probability(self, payload_bytes: int) -> float:
        """Chance the whole datagram arrives (before jitter/queueing considerations)."""
        k = self.fragments(payload_bytes)
        if k > 1 and self.drops_fragments:
            return 0.0
        return (1.0 - self.loss) ** k


def ip_fragment_count(payload_bytes: int, mtu_bytes: int) -> int:
    """IPv4 fragments for a UDP datagram (RFC 791 §3.2: offsets in 8-byte units)."""
    if payload_bytes < 0:
        raise ValueError("payload_bytes must be >= 0")
    ip_payload = payload_bytes + UDP_HEADER_BYTES
    if ip_payload + IPV4_HEADER_BYTES <= mtu_bytes:
        return 1
    per_fragment = (mtu_bytes - IPV4_HEADER_BYTES) // 8 * 8
    return math.ceil(ip_payload / per_fragment)


def wire_bytes(payload_bytes: int, mtu_bytes: int) -> int:
    """Bytes on the IP link for a UDP datagram: one IPv4 header per fragment."""
    k = ip_fragment_count(payload_bytes, mtu_bytes)
    return payload_bytes + UDP_HEADER_BYTES + k * IPV4_HEADER_BYTES


def combined_loss(*losses: float) -> float:
    """Loss of independent segments in series."""
    keep = 1.0
    for p in losses:
        keep *= 1.0 - p
    return 1.0 - keep
