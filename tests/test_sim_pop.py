"""POP admission control and the replicated-state registry."""

from __future__ import annotations

import math

import wansim
from wansim.experiment.config import ExperimentConfig
from wansim.sim.pop import SaRegistry, TokenBucket, ike_spis


def test_token_bucket_admits_rate_with_burst():
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert [bucket.admit(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.admit(0.5)  # one token back after 0.5 s
    assert not bucket.admit(0.5)
    admitted = sum(bucket.admit(1.0 + i * 0.01) for i in range(1000))
    assert admitted <= 2 * 10 + 2


def test_registry_replicates_after_the_delay_and_forgets_unreplicated_state():
    registry = SaRegistry(delay_s=1.0)
    spi = b"\x01" * 8
    registry.half_open(spi, "FRA")
    assert registry.usable(spi, "FRA", 0.0) and not registry.usable(spi, "AMS", 0.0)
    assert registry.established(spi, "FRA", 5.0) == 6.0
    assert not registry.usable(spi, "AMS", 5.5) and registry.usable(spi, "AMS", 6.0)
    other = b"\x02" * 8
    registry.established(other, "FRA", 10.0)
    registry.pop_lost("FRA", 10.5)  # `other` had not left FRA yet; `spi` had
    assert registry.usable(spi, "AMS", 11.0) and not registry.usable(other, "AMS", 11.0)


def test_ike_spis_reads_the_header_behind_a_non_esp_marker():
    header = b"I" * 8 + b"R" * 8 + bytes([33, 0x20, 34, 0x08]) + bytes(8)
    assert ike_spis(header) == (b"I" * 8, b"R" * 8, 34)
    assert ike_spis(b"\0\0\0\0" + header) == (b"I" * 8, b"R" * 8, 34)
    assert ike_spis(b"short") is None


def _run(**pop):
    config = ExperimentConfig.model_validate(
        {
            "sites": {"count": 12, "start_window": 0,
                      "access": {"jitter": 0, "loss": 0, "bandwidth_bps": math.inf}},
            "topology": {"only": ["FRA"]},
            "pop": pop,
            "failover": {"strategies": ["rehandshake"]},
            "run": {"duration": "120s", "seed": 5},
        }
    )  # fmt: skip
    return wansim.simulate(config)


def test_handshake_rate_cap_drops_and_initiators_retransmit():
    free = _run().handshakes
    capped_run = _run(handshake_rate_cap=2.0)
    capped = capped_run.handshakes
    assert capped_run.summary["drops"]["rehandshake"]["pop"]["rate_cap"] >= 8
    assert (free["retransmissions"] == 0).all()
    assert (capped["outcome"] == "established").all()
    # a burst of 12 IKE_SA_INIT at t=0 against 2/s: most wait for strongSwan's 4 s retry
    assert (capped["retransmissions"] > 0).sum() >= 8
    assert capped["latency_s"].max() > 4.0


def test_cookies_above_the_half_open_threshold_add_one_round_trip():
    plain = _run().handshakes.set_index("site")
    cookies = _run(cookie_threshold=1).handshakes.set_index("site")
    extra = cookies["round_trips"] - plain["round_trips"]
    assert set(extra) <= {0, 1} and (extra == 1).sum() >= 1
    assert (cookies["outcome"] == "established").all()


def test_slower_hardware_waits_longer():
    base = _run(cores=1).handshakes
    slow = _run(cores=1, cpu_scale=20.0).handshakes
    assert slow["cpu_wait_s"].sum() > base["cpu_wait_s"].sum() > 0
    assert slow["latency_s"].mean() > base["latency_s"].mean()
