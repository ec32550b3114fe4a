"""The tunnel lifecycle simulation against the issue's "Done when" list.

Small worlds (a handful of POPs, tens of sites, simulated minutes) keep this fast; every
test builds its experiment from the public config and runs the public `wansim.simulate`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import wansim
from wansim.experiment.config import ExperimentConfig
from wansim.sim.costs import CostTable
from wansim.sim.scenario import build_world_from

EUROPE = ["FRA", "AMS", "CDG", "LHR", "MUC"]
QUIET_ACCESS = {"jitter": 0, "loss": 0, "bandwidth_bps": math.inf}


def experiment(**sections) -> ExperimentConfig:
    base = {
        "sites": {"count": 1, "start_window": 0, "access": QUIET_ACCESS},
        "topology": {"only": EUROPE},
        "run": {"duration": "600s", "seed": 3},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return ExperimentConfig.model_validate(base)


@pytest.mark.parametrize(
    ("proposal", "operations", "round_trips"),
    [
        (
            "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
            (("x25519", 0), ("mlkem768", 1)),
            3,
        ),
        (
            "aes256gcm16-prfsha384-ecp384-ke1_mlkem768-ke2_mlkem1024",
            (("ecp384", 0), ("mlkem768", 1), ("mlkem1024", 2)),
            4,
        ),
    ],
)
def test_uncongested_handshake_latency_is_round_trips_times_rtt_plus_cpu(
    proposal, operations, round_trips
):
    config = experiment(ike={"proposals": [proposal]}, run={"duration": "60s"})
    results = wansim.simulate(config)
    row = results.handshakes.iloc[0]
    assert (row["kind"], row["outcome"], row["round_trips"]) == (
        "initial",
        "established",
        round_trips,
    )
    world = build_world_from(config, config.run.seed)
    site, pop = 0, world.pops.index(row["pop"])
    rtt = float(world.rtt_s(site, pop))
    costs = CostTable.default()
    exchanges = ["IKE_SA_INIT"] + ["IKE_INTERMEDIATE"] * (round_trips - 2) + ["IKE_AUTH"]
    pop_cpu = sum(costs.exchange_cost_s(x) for x in exchanges) + sum(
        costs.operation_s(token, "respond") for token, _ in operations
    )
    site_cpu = sum(costs.exchange_cost_s(x) for x in exchanges) + sum(
        costs.operation_s(token, "initiate") + costs.operation_s(token, "finish")
        for token, _ in operations
    )
    analytic = round_trips * rtt + pop_cpu + site_cpu
    assert abs(row["latency_s"] - analytic) < 1e-9
    assert row["cpu_wait_s"] == 0.0


@pytest.fixture(scope="module")
def failover_run():
    """FRA dies silently at 120 s; three strategies on the same world and failure."""
    config = experiment(
        sites={"count": 24, "start_window": "20s"},
        ike={"dpd_delay": "10s"},
        failures={"scheduled": [{"pop": "FRA", "at": "120s", "duration": "1h"}]},
        failover={"strategies": ["replicated", "rehandshake", "dual-tunnel"]},
        run={"duration": "900s", "seed": 11, "pop_load_resolution": "30s"},
    )
    return config, wansim.simulate(config)


def _fra_catchment(config: ExperimentConfig) -> set[str]:
    world = build_world_from(config, config.run.seed)
    catchment = world.catchment()
    fra = world.pops.index("FRA")
    return {world.sites.names[i] for i in np.flatnonzero(catchment == fra)}


@pytest.mark.parametrize("strategy", ["replicated", "rehandshake", "dual-tunnel"])
def test_every_site_of_the_failed_pop_fails_over_and_parts_sum(failover_run, strategy):
    config, results = failover_run
    expected = _fra_catchment(config)  # of the first address: every strategy's active tunnel
    assert expected, "the seed should put some sites behind FRA"
    rows = results.failovers[results.failovers["strategy"] == strategy]
    assert set(rows["site"]) == expected
    # dual-tunnel: "no_survivor" when both of a site's addresses led to FRA
    allowed = {"recovered", "no_survivor"} if strategy == "dual-tunnel" else {"recovered"}
    assert set(rows["outcome"]) <= allowed
    assert (rows["failed_pop"] == "FRA").all() and (rows["new_pop"] != "FRA").all()
    parts = rows[["detect_s", "converge_s", "state_s"]].sum(axis=1)
    assert np.allclose(parts, rows["total_s"], rtol=0, atol=1e-9)
    assert (rows[["detect_s", "converge_s", "state_s"]] >= 0).all().all()


def test_replicated_needs_no_handshake_and_rehandshake_storms_the_neighbours(failover_run):
    config, results = failover_run
    hs = results.handshakes
    failed_at = 120.0
    again = hs[(hs["kind"] == "reestablish") & (hs["start_at"] >= failed_at)]
    assert again[again["strategy"] == "replicated"].empty
    storm = again[again["strategy"] == "rehandshake"]
    moved = results.failovers[results.failovers["strategy"] == "rehandshake"]
    assert set(storm["site"]) == set(moved["site"])
    assert (storm["outcome"] == "established").all()
    # the new handshakes land on the neighbours and show in their load
    load = results.pop_load
    window = (load["at"] >= failed_at) & (load["pop"].isin(set(moved["new_pop"])))
    per_strategy = load[window].groupby("strategy")[["exchanges_per_s", "cpu_utilisation"]].sum()
    exchanges = per_strategy["exchanges_per_s"] * config.run.pop_load_resolution
    # replicated: each moved site's DPD is answered there (1 exchange); rehandshake: each
    # moved site runs IKE_SA_INIT, IKE_INTERMEDIATE and IKE_AUTH there (its DPD went unanswered)
    assert exchanges["rehandshake"] >= 3 * len(moved) - 1e-6
    assert exchanges["rehandshake"] - exchanges["replicated"] >= 2 * len(moved) - 1e-6
    cpu = per_strategy["cpu_utilisation"]
    assert cpu["rehandshake"] > cpu["replicated"]


def test_dual_tunnel_switches_to_the_survivor_without_a_handshake(failover_run):
    _, results = failover_run
    rows = results.failovers[results.failovers["strategy"] == "dual-tunnel"]
    switched = rows[rows["outcome"] == "recovered"]
    assert len(switched) and (switched["state_s"] == 0).all()
    hs = results.handshakes[results.handshakes["strategy"] == "dual-tunnel"]
    assert (hs["outcome"] == "established").all()


def test_replicated_failover_is_detection_plus_convergence(failover_run):
    config, results = failover_run
    rows = results.failovers[results.failovers["strategy"] == "replicated"]
    assert np.allclose(rows["detect_s"], config.anycast.detection.silent)
    assert (rows["state_s"] == 0).all()


def test_same_seed_same_summary_and_tables():
    config = experiment(
        sites={"count": 6, "start_window": "5s"},
        failures={"scheduled": [{"pop": "AMS", "at": "60s", "duration": "120s"}]},
        failover={"strategies": ["rehandshake", "replicated"]},
        ike={"dpd_delay": "5s"},
        run={"duration": "400s"},
    )
    seen: list[tuple[str, float]] = []
    first = wansim.simulate(config)
    second = wansim.simulate(config, progress=lambda s, now, total: seen.append((s, now)))
    assert first.summary == second.summary  # following progress changes nothing
    assert seen[-1] == ("replicated", 400.0) and len(seen) == 200
    pd.testing.assert_frame_equal(first.handshakes, second.handshakes)
    pd.testing.assert_frame_equal(first.failovers, second.failovers)
    parallel = wansim.simulate(config, workers=2)  # strategies in worker processes
    assert parallel.summary == first.summary
    pd.testing.assert_frame_equal(parallel.handshakes, first.handshakes)
    other = wansim.simulate(config, seed=99)
    assert other.summary != first.summary
    assert first.manifest["seed"] == 3 and other.manifest["seed"] == 99


def _rekeys_after_failover(rand_time: str) -> pd.Series:
    config = experiment(
        sites={"count": 24, "start_window": "30s"},
        ike={"dpd_delay": "10s", "child": {"rekey_time": "10m", "life_time": "11m",
                                           "rand_time": rand_time}},
        failures={"scheduled": [{"pop": "FRA", "at": "60s", "duration": "1h"}]},
        failover={"strategies": ["rehandshake"]},
        run={"duration": "1000s", "seed": 11},
    )  # fmt: skip
    results = wansim.simulate(config)
    hs = results.handshakes
    moved = set(results.failovers["site"])
    assert moved
    after = hs[(hs["kind"] == "rekey_child") & hs["site"].isin(moved) & (hs["start_at"] > 300)]
    assert set(after["site"]) == moved
    return after.groupby("site")["start_at"].min()


def test_rekeys_stay_synchronised_without_jitter_and_jitter_spreads_them():
    synchronised = _rekeys_after_failover("0s")
    spread = _rekeys_after_failover("5m")
    # re-established together (same DPD give-up) -> rekeyed together, to within the RTTs
    assert synchronised.max() - synchronised.min() < 1.0
    assert spread.max() - spread.min() > 60.0


def test_graceful_withdrawal_is_detected_at_once():
    config = experiment(
        sites={"count": 24, "start_window": "20s"},
        failures={"scheduled": [{"pop": "FRA", "at": "60s", "duration": "1h", "kind": "graceful"}]},
        failover={"strategies": ["replicated"]},
        run={"duration": "300s", "seed": 11},
    )
    rows = wansim.simulate(config).failovers
    assert set(rows["site"]) == _fra_catchment(config)
    assert (rows["detect_s"] == 0).all() and (rows["state_s"] == 0).all()
    assert np.allclose(rows["total_s"], rows["converge_s"])


def test_cpu_scale_slows_the_pops_not_the_branches():
    proposal = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
    base = experiment(ike={"proposals": [proposal]}, run={"duration": "60s"})
    slow = experiment(
        ike={"proposals": [proposal]}, pop={"cpu_scale": 3.0}, run={"duration": "60s"}
    )
    fast_row = wansim.simulate(base).handshakes.iloc[0]
    slow_row = wansim.simulate(slow).handshakes.iloc[0]
    costs = CostTable.default()
    exchanges = ("IKE_SA_INIT", "IKE_INTERMEDIATE", "IKE_AUTH")
    pop_cpu = sum(costs.exchange_cost_s(x) for x in exchanges) + costs.cost_s(
        [("x25519", "respond"), ("mlkem768", "respond")]
    )
    assert slow_row["latency_s"] - fast_row["latency_s"] == pytest.approx(2 * pop_cpu, abs=1e-9)


def test_dual_tunnel_with_a_survivor_fails_over_at_health_check_detection(failover_run):
    """Health checks (probe every 1 s, down after 3 misses) find the dead tunnel within
    [2 s, 3 s]; the switch itself is instantaneous — far faster than a re-handshake."""
    config, results = failover_run
    interval = config.failover.health_check_interval
    misses = config.failover.health_check_failures
    fo = results.failovers
    dual = fo[fo["strategy"] == "dual-tunnel"]
    switched = dual[dual["outcome"] == "recovered"]
    assert len(switched)
    assert (switched["detect_s"] >= (misses - 1) * interval - 1e-9).all()
    assert (switched["detect_s"] <= misses * interval + 1e-9).all()
    assert (switched["converge_s"] == 0).all() and (switched["state_s"] == 0).all()
    rehandshake = fo[(fo["strategy"] == "rehandshake") & fo["site"].isin(switched["site"])]
    assert rehandshake["total_s"].min() > 10 * switched["total_s"].max()
    # no surviving tunnel: DPD and a re-handshake, as slow as the rehandshake strategy
    stranded = dual[dual["outcome"] == "no_survivor"]
    assert (stranded["detect_s"] > config.ike.dpd_delay).all()


def test_health_checks_off_fall_back_to_dpd():
    config = experiment(
        sites={"count": 24, "start_window": "20s"},
        ike={"dpd_delay": "10s"},
        failures={"scheduled": [{"pop": "FRA", "at": "120s", "duration": "1h"}]},
        failover={"strategies": ["dual-tunnel"], "health_check_interval": 0},
        run={"duration": "600s", "seed": 11},
    )
    rows = wansim.simulate(config).failovers
    assert len(rows) and (rows["detect_s"] > config.ike.dpd_delay).all()


def _storm_cpu_wait(cores: int) -> pd.Series:
    config = experiment(
        topology={"only": ["FRA", "AMS"]},
        sites={"count": 60, "start_window": "20s"},
        ike={"dpd_delay": "10s"},
        pop={"cores": cores, "cpu_scale": 20.0},
        failures={"scheduled": [{"pop": "FRA", "at": "120s", "duration": "1h"}]},
        failover={"strategies": ["rehandshake"]},
        run={"duration": "400s", "seed": 5},
    )
    hs = wansim.simulate(config).handshakes
    storm = hs[(hs["kind"] == "reestablish") & (hs["outcome"] == "established")]
    assert len(storm) >= 15, "the seed should put a storm's worth of sites behind FRA"
    return storm["cpu_wait_s"]


def test_synchronised_reestablishment_storm_queues_less_on_more_cores():
    """Sites cut at the same instant give up DPD together: their re-handshakes arrive at
    the neighbour at once and queue for its cores (the capacity_plan experiment's load)."""
    one, eight = _storm_cpu_wait(1), _storm_cpu_wait(8)
    assert one.quantile(0.99) > 8 * eight.quantile(0.99) > 0
    assert one.max() > 0.1
