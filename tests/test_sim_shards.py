"""Splitting a run by site across processes: groups share no POP, results do not change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import wansim
from wansim.experiment.config import ExperimentConfig
from wansim.sim.run import StrategyRun
from wansim.sim.scenario import build_world_from
from wansim.sim.shards import reach, shards

EUROPE = ["FRA", "AMS", "CDG", "LHR", "MUC", "MAD", "MXP", "WAW", "ARN", "VIE"]


def config(**sections) -> ExperimentConfig:
    base = {
        "sites": {"count": 60, "start_window": "20s",
                  "access": {"loss": 0.02, "jitter": 0.003}},
        "topology": {"only": EUROPE},
        "ike": {"dpd_delay": "10s", "rekey_time": "5m", "rand_time": "1m",
                "child": {"rekey_time": "3m", "rand_time": "30s"}},
        "pop": {"cookie_threshold": 2, "cores": 1},
        "failures": {"scheduled": [{"pop": "FRA", "at": "100s", "duration": "200s"},
                                   {"pop": "AMS", "at": "150s", "duration": "60s",
                                    "kind": "graceful"}]},
        "failover": {"strategies": ["replicated", "rehandshake", "dual-tunnel"]},
        "run": {"duration": "480s", "seed": 5, "pop_load_resolution": "10s"},
    }  # fmt: skip
    base.update(sections)
    return ExperimentConfig.model_validate(base)


def test_shards_partition_sites_and_pops_and_keep_each_sites_reach_together():
    cfg = config()
    world = build_world_from(cfg, 5)
    addresses = world.anycast_addresses[:1]  # (two addresses' catchments join more POPs)
    failing = {"FRA", "AMS"}
    reachable = reach(world, addresses, failing)
    parts = shards(world, addresses, failing, 3)
    assert 1 < len(parts) <= 3
    sites = np.concatenate([p.sites for p in parts])
    assert sorted(sites.tolist()) == list(range(len(world.sites)))
    for k, part in enumerate(parts):
        for other in parts[k + 1 :]:
            assert not part.pops & other.pops
        for site in part.sites:
            assert {world.pops.codes[p] for p in reachable[site]} <= part.pops
    # a site of FRA's catchment can reach FRA and the POP it fails over to, nothing else
    fra = world.pops.index("FRA")
    served_by_fra = np.flatnonzero(world.catchment() == fra)
    assert len(served_by_fra) and all(len(reachable[s]) >= 2 for s in served_by_fra)
    steady = [s for s in range(len(world.sites)) if not reachable[s] & {fra,
              world.pops.index("AMS")}]  # fmt: skip
    assert steady and all(len(reachable[s]) == 1 for s in steady)


def test_no_failures_means_one_group_per_catchment_and_one_group_when_asked():
    cfg = config(failures={})
    world = build_world_from(cfg, 5)
    parts = shards(world, world.anycast_addresses[:1], set(), 50)
    catchment = world.catchment()
    assert len(parts) == len(set(catchment.tolist()))
    assert len(shards(world, world.anycast_addresses[:1], set(), 1)) == 1


@pytest.mark.parametrize("workers", [2, 3])
def test_a_split_run_gives_the_tables_and_summary_of_one_process(workers):
    cfg = config()
    one = wansim.simulate(cfg)
    split = wansim.simulate(cfg, workers=workers)
    assert len(one.failovers) > 10 and (one.handshakes["retransmissions"] > 0).any()
    assert (one.handshakes["round_trips"] == 4).any()  # COOKIE demands at busy POPs
    for table in ("handshakes", "pop_load", "failovers"):
        pd.testing.assert_frame_equal(getattr(one, table), getattr(split, table))
    assert one.summary == split.summary


def test_rows_come_in_an_order_that_does_not_depend_on_the_split():
    results = wansim.simulate(config())
    hs = results.handshakes
    assert list(hs.index) == list(range(len(hs)))
    assert hs.groupby("strategy", sort=False)["start_at"].apply(
        lambda s: s.is_monotonic_increasing).all()  # fmt: skip


def test_a_shard_builds_only_its_pops_and_refuses_a_site_that_reaches_another():
    cfg = config(failures={}, failover={"strategies": ["rehandshake"]})
    world = build_world_from(cfg, 5)
    home = world.pops.codes[int(world.catchment()[0])]
    run = StrategyRun(cfg, world, "rehandshake", (), 5, [0], {home}).run()
    assert set(run.tables()[1]["pop"]) == {home}  # POP load only for the shard's POPs
    elsewhere = {world.pops.codes[0] if home != world.pops.codes[0] else world.pops.codes[1]}
    with pytest.raises(RuntimeError, match=f"shard partition violated: .* reached POP {home}"):
        StrategyRun(cfg, world, "rehandshake", (), 5, [0], elsewhere).run()


def test_every_pop_is_in_exactly_one_shard():
    cfg = config()
    world = build_world_from(cfg, 5)
    parts = shards(world, world.anycast_addresses[:1], {"FRA", "AMS"}, 4)
    assert sorted(p for part in parts for p in part.pops) == sorted(world.pops.codes)
