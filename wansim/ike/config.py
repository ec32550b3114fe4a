"""What one IKE endpoint is configured with: a frozen, validated description.

Field names and defaults follow strongSwan's `swanctl.conf`/`strongswan.conf` so users
can carry settings across (proposal strings, `fragment_size`, `retransmit_*`,
`half_open_timeout`, `cookie_threshold`). Proposal strings are checked with
`wansim.ike.proposals` when the config is built, so a typo fails at load time with the
field's path, not in the middle of a handshake.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wansim.ike.constants import TransformType
from wansim.ike.timers import RetransmitSchedule

Profile = Literal["strongswan", "minimal"]


def _as_tuple(value: object) -> object:
    """Accept "a,b" or a single string where a tuple of strings is expected."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class IkeConfig(BaseModel):
    """One endpoint's IKE and Child SA policy (the same class serves both roles)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ike_proposals: tuple[str, ...] = Field(
        default=("aes256gcm16-prfsha256-x25519-ke1_mlkem768",), min_length=1
    )
    """IKE proposals in strongSwan syntax, most preferred first."""
    esp_proposals: tuple[str, ...] = Field(default=("aes256gcm16",), min_length=1)
    """ESP proposals; KE/ADDKE tokens give PFS on rekeys (skipped in IKE_AUTH)."""
    initial_ke: str | None = None
    """KE method the initiator guesses for KEi in IKE_SA_INIT (default: its first offer)."""
    require_pq: bool = False
    """Accept only proposals that run at least one ML-KEM exchange (digest §3)."""
    auth: Literal["psk", "ecdsa-p256", "ecdsa-p384", "mldsa44", "mldsa65", "mldsa87"] = "psk"
    """"psk" (RFC 7296 §2.15 shared key MIC) or a signature scheme for RFC 7427 Digital
    Signature auth with a self-signed certificate sent in a CERT payload."""
    psk: str = Field(default="", repr=False)
    """Pre-shared key (UTF-8); must be set for `auth = "psk"`."""
    local_id: str = "initiator.example"
    """Our identity: an IPv4/IPv6 address, user@fqdn, or an FQDN."""
    remote_id: str | None = None
    """The identity we expect from the peer; None accepts any."""
    local_ts: tuple[str, ...] = ("0.0.0.0/0",)
    """Our side's traffic selectors (prefixes)."""
    remote_ts: tuple[str, ...] = ("0.0.0.0/0",)
    """The peer's side's traffic selectors (prefixes)."""
    fragmentation: bool = True
    """Announce and use RFC 7383 fragmentation."""
    fragment_size: int = Field(default=1280, ge=576, le=65535)
    """Largest IP datagram carrying an IKE fragment (strongSwan `fragment_size`)."""
    port_4500: Literal["auto", "always"] = "auto"
    """Float to UDP 4500 after IKE_SA_INIT on NAT ("auto") or always (strongSwan MOBIKE)."""
    retransmit_timeout_s: float = Field(default=4.0, gt=0)
    retransmit_base: float = Field(default=1.8, ge=1.0)
    retransmit_tries: int = Field(default=5, ge=0)
    half_open_timeout_s: float = Field(default=30.0, gt=0)
    """A responder forgets an IKE SA not authenticated within this time."""
    max_init_retries: int = Field(default=5, ge=0)
    """Cap on IKE_SA_INIT retries for COOKIE / INVALID_KE_PAYLOAD (strongSwan 5)."""
    nonce_bytes: int = Field(default=32, ge=16, le=256)
    max_fragments: int = Field(default=255, ge=1)
    """Reassembly limit on the number of fragments of one message (strongSwan 255)."""
    max_message_bytes: int = Field(default=10000, ge=1280)
    """Reassembly limit on one reassembled message (strongSwan `max_packet`)."""
    profile: Profile = "strongswan"
    """Which optional notifies to send so sizes mimic a real daemon ("minimal": none)."""
    vendor_id: bytes | None = None
    """Vendor ID payload data to send in IKE_SA_INIT, if any."""
    backend: Literal["auto", "pyca", "liboqs"] = "auto"
    """Crypto backend for key exchanges (see `wansim.crypto`)."""

    _split = field_validator(
        "ike_proposals", "esp_proposals", "local_ts", "remote_ts", mode="before"
    )(_as_tuple)

    @field_validator("ike_proposals")
    @classmethod
    def _check_ike(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from wansim.ike.proposals import parse_proposal  # the codec owns the syntax

        for text in value:
            parse_proposal(text, protocol="ike")
        return value

    @field_validator("esp_proposals")
    @classmethod
    def _check_esp(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from wansim.ike.proposals import parse_proposal

        for text in value:
            parse_proposal(text, protocol="esp")
        return value

    @field_validator("local_ts", "remote_ts")
    @classmethod
    def _check_ts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one traffic selector is needed")
        for text in value:
            ipaddress.ip_network(text, strict=False)
        return value

    @model_validator(mode="after")
    def _check_auth_and_guess(self) -> IkeConfig:
        if self.auth == "psk" and not self.psk:
            raise ValueError('auth = "psk" needs a non-empty psk')
        if self.initial_ke is not None:
            from wansim.ike.proposals import KE_TOKENS

            kinds = (t for spec in self.ike_specs for t in spec.transforms)
            offered = {t.id for t in kinds if t.type == TransformType.KE}
            if KE_TOKENS.get(self.initial_ke) not in offered:
                raise ValueError(f"initial_ke {self.initial_ke!r} is not a KE method we offer")
        return self

    @functools.cached_property
    def ike_specs(self) -> tuple:
        """The parsed IKE proposals (`wansim.ike.proposals.ProposalSpec`), parsed once."""
        from wansim.ike.proposals import parse_proposals

        return parse_proposals(self.ike_proposals, "ike")

    @functools.cached_property
    def esp_specs(self) -> tuple:
        from wansim.ike.proposals import parse_proposals

        return parse_proposals(self.esp_proposals, "esp")

    @property
    def retransmit_schedule(self) -> RetransmitSchedule:
        return RetransmitSchedule(
            self.retransmit_timeout_s, self.retransmit_base, self.retransmit_tries
        )


class GatewayConfig(BaseModel):
    """A responder that terminates many IKE SAs (a POP): DoS protection knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cookie_threshold: int = Field(default=30, ge=0)
    """Demand a COOKIE once this many half-open IKE SAs exist (strongSwan 30)."""
