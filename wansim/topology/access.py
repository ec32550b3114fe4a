"""Access-link profiles: what sits between a branch site and the public Internet.

A profile is the site's last mile: one-way delay added on top of propagation,
jitter, bandwidth (for serialization), packet loss, MTU and whether the path drops
IP fragments. Defaults are order-of-magnitude figures from public measurements
(see docs/model.md, "Access links"); users register their own profiles by passing
a mapping to the site loaders.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AccessProfile(BaseModel):
    """One kind of branch access link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Token used in site files (`access` column)."""
    delay_s: float = Field(ge=0)
    """One-way last-mile delay, added to propagation."""
    jitter_s: float = Field(ge=0)
    """Mean of the exponential per-datagram extra delay."""
    bandwidth_bps: float = Field(gt=0)
    """Uplink/downlink rate used for serialization (symmetric for simplicity)."""
    loss: float = Field(ge=0, lt=1)
    """Per-packet (per IP fragment) loss probability of the whole site–POP path."""
    mtu_bytes: int = Field(ge=576, le=9000)
    """IP MTU of the access link; the path MTU is the smaller of this and the POP's."""
    drops_fragments: bool = False
    """The path silently drops IP fragments (some firewalls and carrier NATs do)."""


ACCESS_PROFILES: dict[str, AccessProfile] = {
    p.name: p
    for p in (
        AccessProfile(name="fibre", delay_s=0.002, jitter_s=0.0002, bandwidth_bps=1e9,
                      loss=0.0001, mtu_bytes=1500),
        AccessProfile(name="cable", delay_s=0.007, jitter_s=0.001, bandwidth_bps=50e6,
                      loss=0.001, mtu_bytes=1500),
        # PPPoE costs 8 bytes of MTU (RFC 2516 §7: maximum MRU 1492).
        AccessProfile(name="dsl", delay_s=0.010, jitter_s=0.001, bandwidth_bps=20e6,
                      loss=0.002, mtu_bytes=1492),
        AccessProfile(name="lte", delay_s=0.025, jitter_s=0.005, bandwidth_bps=10e6,
                      loss=0.005, mtu_bytes=1428),
    )
}
"""Built-in profiles by name; `DEFAULT_ACCESS` is used when a site names none."""

DEFAULT_ACCESS = "fibre"
