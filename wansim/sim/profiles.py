"""Branch-router behaviour profiles: rekey lifetimes, jitter, liveness and retransmission.

The numbers are the vendors' defaults where they publish them (sources and assumptions in
docs/model.md, "Branch site profiles"). Rekeys follow strongSwan's model: a rekey starts
``rekey_s - U(0, rand_s)`` after the SA was created, so ``rand_s = 0`` keeps tunnels that
were created together rekeying together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat


class SiteProfile(BaseModel):
    """How one kind of branch router keeps its tunnel alive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ike_rekey_s: PositiveFloat
    """IKE SA rekey interval (strongSwan `rekey_time`, FortiOS phase1 `keylife`)."""
    ike_rand_s: NonNegativeFloat = 0.0
    """An IKE rekey starts up to this much earlier, uniformly at random (`rand_time`)."""
    child_rekey_s: PositiveFloat
    """Child SA rekey interval (strongSwan child `rekey_time`, FortiOS `keylifeseconds`)."""
    child_rand_s: NonNegativeFloat = 0.0
    """A Child rekey starts up to this much earlier (`rand_time`)."""
    dpd_delay_s: NonNegativeFloat = 0.0
    """Liveness check after this long without inbound traffic; 0 disables DPD."""
    dpd_action: Literal["restart", "clear"] = "restart"
    """After the peer is declared dead: re-establish at once ("restart") or stay down."""
    retransmit_timeout_s: PositiveFloat = 4.0
    retransmit_base: float = Field(default=1.8, ge=1.0)
    retransmit_tries: int = Field(default=5, ge=0)
    reestablish_delay_s: NonNegativeFloat = 0.0
    """Pause between giving up an IKE SA and the next IKE_SA_INIT."""

    def scheduled(self, interval_s: float, rand_s: float, u: float) -> float:
        """Seconds from SA creation to its rekey, for a uniform draw ``u`` in [0, 1)."""
        return interval_s - rand_s * u

    def give_up_s(self) -> float:
        """Time from the first transmission of a request until the peer is declared dead."""
        t, total = self.retransmit_timeout_s, 0.0
        for _ in range(self.retransmit_tries + 1):
            total += t
            t *= self.retransmit_base
        return total


#: strongSwan 6 swanctl.conf defaults: IKE rekey_time 4 h with rand_time = over_time = 10 %;
#: Child rekey_time 1 h, life_time 1.1 h so rand_time = 6 min; dpd_delay 0 (off);
#: retransmit 4 s × 1.8^n, 5 retransmissions (165 s). strongSwan deployments towards an
#: anycast service usually turn DPD on: set ``dpd_delay_s`` (e.g. 30 s).
STRONGSWAN = SiteProfile(
    name="strongswan",
    ike_rekey_s=4 * 3600,
    ike_rand_s=0.1 * 4 * 3600,
    child_rekey_s=3600,
    child_rand_s=360,
)

#: FortiOS 7.x: phase1 keylife 86400 s, phase2 keylifeseconds 43200 s (no documented rekey
#: jitter, so none); DPD on-demand with dpd-retryinterval 20 s; IKEv2 retransmissions at
#: 3, 6, 12, 24, 48 s, i.e. give-up after 93 s, not configurable (Fortinet community
#: "IKEv2 retransmission and DPD").
FORTIOS = SiteProfile(
    name="fortios",
    ike_rekey_s=86400,
    child_rekey_s=43200,
    dpd_delay_s=20,
    retransmit_timeout_s=3.0,
    retransmit_base=2.0,
    retransmit_tries=4,
)

#: Cisco IOS XE: IKEv2 SA lifetime 86400 s, IPsec SA lifetime 3600 s, rekey at about 90 %
#: of the lifetime without documented jitter (assumed); DPD off by default — this profile
#: uses the common `crypto ikev2 dpd 10 2 on-demand`; Cisco does not publish its IKEv2
#: retransmission timers, so strongSwan's schedule is kept (assumption, see docs/model.md).
CISCO = SiteProfile(
    name="cisco",
    ike_rekey_s=0.9 * 86400,
    child_rekey_s=0.9 * 3600,
    dpd_delay_s=10,
)

PROFILES: dict[str, SiteProfile] = {p.name: p for p in (STRONGSWAN, FORTIOS, CISCO)}


def get_profile(name: str) -> SiteProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown site profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None
