"""Branch-router profiles: the IKE timer defaults of real initiators (strongSwan, FortiOS, Cisco).

A site profile fills every `[ike]` timer the experiment file leaves out, so
`profile = "fortios"` gives FortiGate's lifetimes and DPD without copying them by hand, and
anything written explicitly still wins. Proposal strings are never taken from a profile:
the POP decides what it accepts, and the experiment says what is offered.

Sources (the vendor defaults as their references state them):

* strongSwan `swanctl.conf`: IKE `rekey_time` 4h, `over_time`/`rand_time` 10 % of it;
  Child `rekey_time` 1h, `life_time` 110 % of `rekey_time`, `rand_time` = life − rekey
  (6 min); `dpd_delay` 0 (off); retransmission 4 s × 1.8ⁿ, 5 tries (digest §4.3, §6.2).
* FortiOS 7.x `config vpn ipsec phase1-interface`: `keylife` 86400 s, `dpd on-demand` with
  `dpd-retryinterval` 20 s, `fragmentation enable`, `fragmentation-mtu` 1200;
  `phase2-interface keylifeseconds` 43200 s; IKEv2 retransmissions at 3, 6, 12, 24, 48 s
  (give-up after 93 s, not configurable; Fortinet community "IKEv2 retransmission and DPD").
* Cisco IOS XE: IKEv2 SA lifetime 86400 s, IPsec SA lifetime 3600 s, rekey at about 90 % of
  the lifetime; DPD is off by default, the profile uses the common
  `crypto ikev2 dpd 10 2 on-demand`; IKEv2 fragmentation off unless configured.

Neither vendor documents a rekey jitter: those profiles use `rand_time = 0` (the
synchronised-rekey case planners worry about). Cisco publishes no IKEv2 retransmission
timers, so strongSwan's schedule is kept — an assumption, said so in docs/model.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

SiteProfile = Literal["strongswan", "fortios", "cisco"]

_HOUR = 3600.0
_DAY = 86400.0

#: profile -> [ike] key -> default (seconds for durations).
IKE_DEFAULTS: dict[str, dict[str, Any]] = {
    "strongswan": {
        "rekey_time": 4 * _HOUR,
        "dpd_delay": 0.0,
        "fragmentation": True,
        "fragment_size": 1280,
    },
    "fortios": {
        "rekey_time": _DAY,
        "rand_time": 0.0,
        "retransmit_timeout": 3.0,
        "retransmit_base": 2.0,
        "retransmit_tries": 4,
        "dpd_delay": 20.0,
        "fragmentation": True,
        "fragment_size": 1200,
    },
    "cisco": {
        "rekey_time": 0.9 * _DAY,
        "rand_time": 0.0,
        "dpd_delay": 10.0,
        "fragmentation": False,
        "fragment_size": 1280,
    },
}

#: profile -> [ike.child] key -> default.
CHILD_DEFAULTS: dict[str, dict[str, Any]] = {
    "strongswan": {"rekey_time": _HOUR},
    "fortios": {"rekey_time": 43200.0, "life_time": 43200.0, "rand_time": 0.0},
    "cisco": {"rekey_time": 0.9 * _HOUR, "life_time": _HOUR, "rand_time": 0.0},
}

#: Defaults that depend on other values, applied after the profile (strongSwan's rules).
DERIVED: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "ike.rand_time": lambda ike: 0.1 * ike["rekey_time"],
    "child.life_time": lambda child: 1.1 * child["rekey_time"],
    "child.rand_time": lambda child: child["life_time"] - child["rekey_time"],
}
