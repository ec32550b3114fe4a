"""Loss, corruption and colliding commands together: a randomized soak of two engines.

For each seed: 10-30 % of datagrams lost and 5 % corrupted, a hybrid handshake, then
random Child/IKE rekeys and liveness checks from either side, sometimes from both at
once. Whatever happens, the harness settles (no deadlock, nothing raised), and when both
ends are up they hold the same IKE keys and the same Child SAs with matching keys.
"""

from __future__ import annotations

import random

import pytest
from test_ike_engine import assert_same_keys, configs, pair

from wansim.ike.sa import IkeStateError

HYBRID = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
COMMANDS = ("rekey_child", "rekey_ike", "send_liveness")


def _try(endpoint, command: str, now: float) -> None:
    try:
        getattr(endpoint, command)(now)
    except IkeStateError:
        pass  # not established (any more): a driver would re-establish instead


@pytest.mark.parametrize("seed", range(24))
def test_random_loss_corruption_and_collisions_never_break_an_sa(seed):
    rnd = random.Random(seed)
    loss = rnd.choice([0.1, 0.2, 0.3])

    def tamper(sent, index):
        x = rnd.random()
        if x < loss:
            return None
        if x < loss + 0.05:
            data = bytearray(sent.data)
            data[rnd.randrange(len(data))] ^= 0xFF
            return bytes(data)
        return sent.data

    ci, cr = configs(HYBRID, "aes256gcm16-x25519-ke1_mlkem768", port_4500="always",
                     retransmit_timeout_s=1.0, retransmit_tries=6)  # fmt: skip
    h, wire, i, r = pair(ci, cr, seed=seed, tamper=tamper)
    i.initiate(0.0)
    h.run(until=200.0)
    for _ in range(4):
        if i.established and r.established:
            first, second = rnd.sample([i, r], 2)
            _try(first, rnd.choice(COMMANDS), h.now)
            if rnd.random() < 0.3:
                _try(second, rnd.choice(COMMANDS[:2]), h.now)
        h.run(until=h.now + 400.0)
    if i.established and r.established:
        assert_same_keys(i, r)
        assert len(i.children) == len(r.children) == 1
    for endpoint in (i, r):
        timer = endpoint.get_timer()
        assert timer is None or timer > h.now  # nothing overdue: the pair has settled
