"""Capacity maths of the report: Erlang C against hand-computed values, the wait-sum
quantile against its closed form and against the simulator's own CPU queue, and the
N+1 table on hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from wansim.report.capacity import (
    CapacityInputs,
    absorbed_shares,
    capacity_table,
    erlang_c,
    handshake_wait_quantile,
    recommend_cores,
    wait_quantile,
    wait_sf,
)
from wansim.sim.cpu import CpuPool


# --------------------------------------------------------------------------- Erlang C
@pytest.mark.parametrize(
    ("a", "c", "expected"),
    [
        # C(c, a) = (a^c/c!)·c/(c−a) / (Σ_{k<c} a^k/k! + (a^c/c!)·c/(c−a)), by hand:
        (0.8, 1, 0.8),  # M/M/1: P(wait) = ρ
        (0.5, 1, 0.5),
        (1.0, 2, 1 / 3),  # top = 1/2·2 = 1; bottom = 1 + 1 + 1 = 3
        (2.0, 3, 4 / 9),  # top = 8/6·3 = 4; bottom = 1 + 2 + 2 + 4 = 9
        (3.0, 4, 13.5 / 26.5),  # top = 81/24·4 = 13.5; bottom = 1+3+4.5+4.5 + 13.5
    ],
)
def test_erlang_c_matches_hand_computed_values(a, c, expected):
    assert erlang_c(a, c) == pytest.approx(expected, rel=1e-12)


def test_erlang_c_of_no_load_is_zero_and_overload_is_refused():
    assert erlang_c(0.0, 4) == 0.0
    with pytest.raises(ValueError, match="Erlang"):
        erlang_c(4.0, 4)


def test_one_exchange_p99_wait_is_the_exponential_tail():
    # P(W > t) = C·exp(−(c − a)t/s): a = 2, c = 3, s = 1 → t99 = ln((4/9)/0.01)
    t = wait_quantile(0.99, jobs=1, p_wait=4 / 9, rate=1.0)
    assert t == pytest.approx(math.log((4 / 9) / 0.01), rel=1e-9)
    assert handshake_wait_quantile(0.99, arrival_rate=20.0, service_s=0.1, cores=3, jobs=1) \
        == pytest.approx(0.1 * math.log((4 / 9) / 0.01), rel=1e-9)


def test_two_exchange_wait_tail_matches_its_closed_form():
    # K ~ Bin(2, P): P(S > t) = 2P(1−P)e^{−θt} + P²e^{−θt}(1 + θt)
    p, theta = 0.3, 4.0
    for t in (0.0, 0.1, 0.5, 2.0):
        closed = 2 * p * (1 - p) * math.exp(-theta * t) + p * p * math.exp(-theta * t) * (
            1 + theta * t
        )
        assert wait_sf(t, jobs=2, p_wait=p, rate=theta) == pytest.approx(closed, rel=1e-12)


def test_quantile_is_zero_when_most_handshakes_never_wait():
    # P(some wait) = 1 − (1 − P)^n = 1 − 0.999^3 < 1 %: the p99 wait is 0
    assert wait_quantile(0.99, jobs=3, p_wait=0.001, rate=1.0) == 0.0


@settings(deadline=None, max_examples=60)
@given(
    jobs=st.integers(1, 6),
    p=st.floats(0.02, 1.0),
    rate=st.floats(0.1, 1e4),
    q=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_quantile_inverts_the_tail(jobs, p, rate, q):
    t = wait_quantile(q, jobs=jobs, p_wait=p, rate=rate)
    if t == 0.0:
        assert wait_sf(0.0, jobs=jobs, p_wait=p, rate=rate) <= 1 - q + 1e-12
    else:
        assert wait_sf(t, jobs=jobs, p_wait=p, rate=rate) == pytest.approx(1 - q, abs=1e-8)


def test_erlang_c_tail_matches_the_simulated_cpu_pool():
    """Poisson arrivals, exponential service on the simulator's own CpuPool: the measured
    wait quantiles agree with the M/M/c prediction."""
    rng = np.random.default_rng(7)
    cores, rate, service = 3, 25.0, 0.1  # a = 2.5 Erlang, ρ = 0.83
    n = 30_000
    env = simpy.Environment()
    pool = CpuPool(env, cores)
    waits: list[float] = []

    def job(cost):
        waits.append((yield from pool.run(cost)))

    def source():
        for gap, cost in zip(rng.exponential(1 / rate, n), rng.exponential(service, n),
                             strict=True):
            yield env.timeout(gap)
            env.process(job(cost))

    env.process(source())
    env.run()
    measured = np.asarray(waits[2000:])  # drop the empty-system start
    assert np.mean(measured > 0) == pytest.approx(erlang_c(2.5, 3), rel=0.05)
    for q in (0.9, 0.99):
        predicted = handshake_wait_quantile(q, arrival_rate=rate, service_s=service,
                                            cores=cores, jobs=1)
        assert np.quantile(measured, q) == pytest.approx(predicted, rel=0.1)


# --------------------------------------------------------------------------- sizing
def test_recommended_cores_is_the_least_that_meets_the_target():
    kw = dict(arrival_rate=400.0, service_s=0.01, jobs=3, floor_s=0.2)  # a = 4 Erlang
    c = recommend_cores(**kw, target_s=0.25)
    assert c is not None and c > 4

    def p99(cores):
        return kw["floor_s"] + handshake_wait_quantile(
            0.99, arrival_rate=400.0, service_s=0.01, cores=cores, jobs=3)

    assert p99(c) <= 0.25 < p99(c - 1)
    # a looser target needs no more cores; a floor above the target cannot be fixed
    assert recommend_cores(**kw, target_s=1.0) <= c
    assert recommend_cores(**{**kw, "floor_s": 0.3}, target_s=0.25) is None


def test_absorbed_shares_weight_sites_by_their_exchanges():
    moves = pd.DataFrame({"site": ["a", "b", "c", "d"], "pop": ["X", "X", "X", "Y"],
                          "to_pop": ["Y", "Z", "Z", "X"]})
    handshakes = pd.DataFrame({"site": ["a", "b", "c", "d"], "round_trips": [6, 3, 1, 5]})
    shares = absorbed_shares(moves, handshakes).set_index(["failed_pop", "pop"])["share"]
    assert shares[("X", "Y")] == pytest.approx(0.6)
    assert shares[("X", "Z")] == pytest.approx(0.4)
    assert shares[("Y", "X")] == pytest.approx(1.0)


def _load(pop, rates, utils, resolution=10.0):
    return pd.DataFrame({"strategy": "s", "pop": pop, "at": np.arange(len(rates)) * resolution,
                         "exchanges_per_s": rates, "cpu_utilisation": utils,
                         "queue_length": 0.0, "signalling_bytes_per_s": 0.0})


def test_capacity_table_on_hand_built_tables():
    # X: 2 cores, 10 and 30 exch/s, service 20 ms → busy = util·cores·10 s
    # Y: 1 core, 5 exch/s, service 20 ms; bin 2 (t=20) lies in a failure window: excluded
    load = pd.concat([
        _load("X", [10.0, 30.0, 0.0], [0.1, 0.3, 0.0]),
        _load("Y", [5.0, 5.0, 50.0], [0.1, 0.1, 1.0]),
    ], ignore_index=True)
    hs = pd.DataFrame({
        "site": ["a", "b", "c"], "pop": ["X", "X", "Y"], "outcome": "established",
        "latency_s": [0.10, 0.12, 0.05], "cpu_wait_s": [0.0, 0.02, 0.0],
        "round_trips": [3, 3, 3], "retransmissions": 0,
    })
    shares = pd.DataFrame({"failed_pop": ["X", "Y"], "pop": ["Y", "X"], "share": [0.5, 1.0]})
    inputs = CapacityInputs(cores={"X": 2, "Y": 1}, resolution_s=10.0,
                            failure_windows=((20.0, 30.0),), target_s=0.5)
    table = capacity_table(load, hs, shares, inputs).set_index("pop")
    x, y = table.loc["X"], table.loc["Y"]
    assert x["service_s"] == pytest.approx((0.1 + 0.3) * 2 * 10 / 400)  # 0.02 s
    assert y["peak_rate"] == 5.0 and y["failure_peak_rate"] == 50.0
    assert x["peak_cpu"] == 0.3 and x["headroom"] == pytest.approx(0.7)
    # X absorbs all of Y (5/s); Y absorbs half of X's healthy peak (15/s)
    assert x["worst_neighbour"] == "Y" and x["n1_rate"] == pytest.approx(35.0)
    # Y's model says 5 + 15 = 20/s, but the failure bin measured 50/s: plan for 50/s
    assert y["worst_neighbour"] == "X" and y["n1_rate"] == pytest.approx(50.0)
    service_y = ((0.1 + 0.1) * 10 + 1.0 * 10) / (100 + 500)
    assert y["n1_erlangs"] == pytest.approx(50.0 * service_y)
    assert x["floor_s"] == pytest.approx(np.quantile([0.10, 0.10], 0.99))
    assert x["recommended_cores"] == recommend_cores(
        arrival_rate=35.0, service_s=0.02, jobs=3, floor_s=x["floor_s"], target_s=0.5)
    assert x["n1_p99_s"] == pytest.approx(x["floor_s"] + handshake_wait_quantile(
        0.99, arrival_rate=35.0, service_s=0.02, cores=2, jobs=3))


def test_a_pop_without_handshakes_is_sized_with_run_wide_figures():
    """Z served nobody in the run but takes half of X's sites at N+1: it is sized with the
    run-wide floor, exchanges per handshake and service time, not left blank."""
    load = pd.concat([_load("X", [10.0, 20.0], [0.1, 0.2]), _load("Z", [0.0, 0.0], [0.0, 0.0])],
                     ignore_index=True)
    hs = pd.DataFrame({"site": ["a", "b"], "pop": "X", "outcome": "established",
                       "latency_s": [0.1, 0.3], "cpu_wait_s": 0.0, "round_trips": [2, 4],
                       "retransmissions": 0})
    shares = pd.DataFrame({"failed_pop": ["X"], "pop": ["Z"], "share": [0.5]})
    inputs = CapacityInputs(cores={"X": 1, "Z": 1}, resolution_s=10.0, target_s=0.5)
    z = capacity_table(load, hs, shares, inputs).set_index("pop").loc["Z"]
    assert np.isnan(z["service_s"]) and z["n1_rate"] == pytest.approx(10.0)
    assert z["floor_s"] == pytest.approx(np.quantile([0.1, 0.3], 0.99))
    assert z["jobs"] == 4  # ceil of the p99 of (2, 4)
    service = (0.1 + 0.2) * 10 / 300  # run-wide busy core-seconds ÷ exchanges
    assert z["recommended_cores"] == recommend_cores(
        arrival_rate=10.0, service_s=service, jobs=4, floor_s=z["floor_s"], target_s=0.5)
    assert z["n1_p99_s"] == pytest.approx(z["floor_s"] + handshake_wait_quantile(
        0.99, arrival_rate=10.0, service_s=service, cores=1, jobs=4))


@settings(deadline=None, max_examples=40)
@given(
    rate=st.floats(0.1, 5000.0),
    service=st.floats(1e-5, 0.05),
    jobs=st.integers(1, 5),
    floor=st.floats(0.0, 0.3),
    budget=st.floats(0.001, 1.0),
)
def test_recommendation_is_minimal_and_grows_with_load(rate, service, jobs, floor, budget):
    target = floor + budget
    c = recommend_cores(arrival_rate=rate, service_s=service, jobs=jobs, floor_s=floor,
                        target_s=target)
    assert c is not None and c > rate * service

    def p99(cores):
        return floor + handshake_wait_quantile(0.99, arrival_rate=rate, service_s=service,
                                               cores=cores, jobs=jobs)

    assert p99(c) <= target
    if c - 1 >= 1:
        assert p99(c - 1) > target
    more = recommend_cores(arrival_rate=2 * rate, service_s=service, jobs=jobs, floor_s=floor,
                           target_s=target)
    assert more is not None and more >= c
