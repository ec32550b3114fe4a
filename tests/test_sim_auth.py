"""Post-quantum authentication in the fleet simulation (USERS.md question 7): certificates
in IKE_AUTH cost bytes, fragments and sign/verify CPU; ML-DSA-87 needs a larger max_packet."""

from __future__ import annotations

import pytest
from test_sim_lifecycle import experiment

import wansim
from wansim.sim.costs import CostTable
from wansim.sim.scenario import build_world_from

HYBRID = "aes256gcm16-prfsha384-ecp384-ke1_mlkem768"
KE = ("ecp384", "mlkem768")


def one_handshake(auth: str, **ike):
    config = experiment(ike={"proposals": [HYBRID], "auth": auth, **ike},
                        run={"duration": "60s"})  # fmt: skip
    return config, wansim.simulate(config).handshakes


def test_signature_auth_latency_is_round_trips_times_rtt_plus_cpu_with_sign_and_verify():
    config, hs = one_handshake("mldsa65")
    row = hs.iloc[0]
    assert (row["outcome"], row["round_trips"]) == ("established", 3)
    world = build_world_from(config, config.run.seed)
    rtt = float(world.rtt_s(0, world.pops.index(row["pop"])))
    costs = CostTable.default()
    exchanges = sum(costs.exchange_cost_s(x) for x in ("IKE_SA_INIT", "IKE_INTERMEDIATE",
                                                         "IKE_AUTH"))  # fmt: skip
    pop = exchanges + sum(costs.operation_s(t, "respond") for t in KE)
    site = exchanges + sum(costs.operation_s(t, "initiate") + costs.operation_s(t, "finish")
                           for t in KE)  # fmt: skip
    sign, verify = (costs.operation_s("mldsa65", op) for op in ("sign", "verify"))
    signatures = 2 * (sign + verify)  # each end signs its AUTH and verifies the peer's
    assert abs(row["latency_s"] - (3 * rtt + pop + site + signatures)) < 1e-9


def test_certificates_grow_the_handshake_and_ml_dsa_fragments_ike_auth():
    sizes = {auth: one_handshake(auth)[1].iloc[0] for auth in ("psk", "ecdsa-p384", "mldsa65")}
    assert all(row["outcome"] == "established" for row in sizes.values())
    psk, ecdsa, mldsa = (sizes[a] for a in ("psk", "ecdsa-p384", "mldsa65"))
    assert psk["bytes"] < ecdsa["bytes"] < mldsa["bytes"]
    # ML-DSA-65: a 1,952-byte key in a certificate plus two 3,309-byte signatures (the
    # certificate's and AUTH's) each way: IKE_AUTH alone is several 1280-byte fragments
    assert mldsa["bytes"] - psk["bytes"] > 2 * (1952 + 2 * 3309)
    assert mldsa["datagrams"] >= psk["datagrams"] + 2 * 6
    assert ecdsa["datagrams"] == psk["datagrams"]


@pytest.mark.parametrize(("max_packet", "outcome"), [(10_000, "failed"), (16_384, "established")])
def test_ml_dsa_87_needs_more_than_strongswans_default_max_packet(max_packet, outcome):
    config = experiment(ike={"proposals": [HYBRID], "auth": "mldsa87", "max_packet": max_packet},
                        run={"duration": "200s"})  # fmt: skip
    row = wansim.simulate(config).handshakes.iloc[0]
    assert row["outcome"] == outcome
    if outcome == "failed":  # the POP drops the reassembled IKE_AUTH: the site retransmits
        assert row["round_trips"] == 2 and row["retransmissions"] == 5
