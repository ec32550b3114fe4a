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


VARIANTS = [
    ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    ("aes256-sha256-ecp256-ke1_mlkem1024", "aes256-sha256-ecp256-ke1_mlkem768"),
    ("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024",
     "aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem1024"),
    ("aes128gcm16-prfsha384-ecp384-ke1_mlkem768", "aes128gcm16"),
]  # fmt: skip


@pytest.mark.parametrize("seed", range(16))
def test_random_variants_against_a_gateway_or_a_single_sa(seed):
    """Proposals, fragment sizes (576 too), ports, PSK or ECDSA, a Gateway (with or
    without COOKIEs) or a bare responder, loss and commands from both ends."""
    from ike_harness import Harness

    from wansim.ike.config import GatewayConfig
    from wansim.ike.gateway import Gateway
    from wansim.ike.sa import IkeSa

    rnd = random.Random(1000 + seed)
    loss = rnd.choice([0.0, 0.1, 0.3])
    ike, esp = rnd.choice(VARIANTS)
    ci, cr = configs(
        ike, esp, port_4500=rnd.choice(["auto", "always"]), auth=rnd.choice(["psk", "ecdsa-p256"]),
        fragment_size=rnd.choice([576, 1280, 1500]), retransmit_timeout_s=1.0, retransmit_tries=6,
    )  # fmt: skip

    def tamper(sent, index):
        x = rnd.random()
        return None if x < loss else sent.data

    i = IkeSa(ci, initiator=True, local_addr=("192.0.2.1", 500), remote_addr=("192.0.2.2", 500),
              random_bytes=random.Random(seed).randbytes)  # fmt: skip
    gateway = rnd.random() < 0.5
    if gateway:
        r = Gateway(
            cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(seed + 99).randbytes,
            gateway=GatewayConfig(cookie_threshold=rnd.choice([0, 30])),
        )  # fmt: skip
    else:
        r = IkeSa(
            cr,
            initiator=False,
            local_addr=("192.0.2.2", 500),
            remote_addr=("192.0.2.1", 500),
            random_bytes=random.Random(seed + 99).randbytes,
        )
    h = Harness(i, r, tamper=tamper)
    i.initiate(0.0)
    h.run(until=300.0)

    def responder_sa():
        return (r.sas[0] if r.sas else None) if gateway else r

    for _ in range(4):
        rsa = responder_sa()
        if i.established and rsa is not None and rsa.established:
            command = rnd.choice(COMMANDS)
            if rnd.random() < 0.5:
                _try(i, command, h.now)
            elif gateway:
                try:
                    getattr(r, command)(rsa._gen.local_spi, h.now)
                except IkeStateError:
                    pass
            else:
                _try(rsa, command, h.now)
        h.run(until=h.now + 400.0)
    rsa = responder_sa()
    if i.established and rsa is not None and rsa.established:
        assert_same_keys(i, rsa)
        assert len(i.children) == len(rsa.children) == 1
