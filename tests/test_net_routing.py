"""Failure → detection → per-site convergence → recovery, with no ticking."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from wansim.net import (
    NO_POP,
    EmpiricalDelay,
    FixedDelay,
    LognormalDelay,
    RoutingParams,
    build_world,
    route_changes_frame,
)
from wansim.topology import load_pops


@pytest.fixture(scope="module")
def world():
    pops = load_pops("cloudflare")
    europe = {r: (1.0 if r == "Europe" else 0.0) for r in set(pops.regions)}
    return build_world(pops, 20_000, seed=21, region_weights=europe)


def test_default_convergence_shape_is_the_documented_one():
    dist = LognormalDelay().distribution()
    assert dist.median() == pytest.approx(3.0)
    assert dist.cdf(10.0) == pytest.approx(0.8)
    assert 0.005 < dist.sf(60.0) < 0.05  # a tail into minutes


@pytest.mark.parametrize(
    "convergence",
    [LognormalDelay(), LognormalDelay(median_s=1.0, p80_s=30.0),
     EmpiricalDelay(quantiles=((0, 0.5), (0.5, 2.0), (0.9, 20.0), (1, 120.0)))],
)
def test_convergence_delays_follow_the_configured_distribution(world, convergence):
    routing = world.new_routing(np.random.default_rng(1), RoutingParams(convergence=convergence))
    changes = []
    for k, pop in enumerate(("FRA", "AMS", "LHR", "CDG")):
        changes += routing.fail_pop(pop, 50.0 + 10 * k, "graceful")
    delays = np.array([c.converged_at - c.detected_at for c in changes])
    assert len(delays) > 1000
    assert stats.kstest(delays, convergence.distribution().cdf).pvalue > 0.01
    # and the test has power: a distribution with twice the scale is rejected
    assert stats.kstest(delays / 2, convergence.distribution().cdf).pvalue < 1e-6


def test_detection_delay_depends_on_failure_kind(world):
    params = world.routing_params
    rng = np.random.default_rng(3)
    assert params.detection_delay_s("graceful", rng) == 0.0
    bfd = [params.detection_delay_s("bfd", rng) for _ in range(200)]
    assert 0.15 <= min(bfd) and max(bfd) <= 3.0
    hold = [params.detection_delay_s("hold-timer", rng) for _ in range(200)]
    assert 90 <= min(hold) and max(hold) <= 180
    silent = params.detection_delay_s("silent", rng)
    assert 0.15 <= silent <= 3.0  # silent failures are caught by BFD by default
    with pytest.raises(ValueError, match="unknown failure kind"):
        params.detection_delay_s("meteor", rng)  # type: ignore[arg-type]


def test_sites_are_blackholed_until_their_own_convergence(world):
    routing = world.new_routing(np.random.default_rng(5))
    address = world.anycast_addresses[0]
    fra = world.pops.index("FRA")
    served = np.flatnonzero(world.catchment(address) == fra)
    assert len(served) > 100
    changes = [c for c in routing.fail_pop("FRA", 100.0, "hold-timer") if c.address == address]
    assert {c.site for c in changes} == {world.sites.names[i] for i in served}
    detected = changes[0].detected_at
    assert 190 <= detected <= 280 and all(c.detected_at == detected for c in changes)
    for change in changes[:50]:
        site = world.site_index(change.site)
        assert change.from_pop == "FRA" and change.to_pop not in (None, "FRA")
        assert routing.pop_at(address, site, change.converged_at - 1e-6) == NO_POP
        assert world.pops.codes[routing.pop_at(address, site, change.converged_at)] == (
            change.to_pop
        )
    # other sites never notice
    other = int(np.flatnonzero(world.catchment(address) != fra)[0])
    assert routing.pop_at(address, other, 101.0) == world.catchment(address)[other]
    frame = route_changes_frame(changes)
    assert (frame["blackholed_s"] >= frame["detected_at"] - 100.0).all()


def test_recovery_moves_sites_back_each_in_its_own_time(world):
    routing = world.new_routing(np.random.default_rng(9))
    before = {a: world.catchment(a) for a in world.anycast_addresses}
    failed = routing.fail_pop("FRA", 10.0, "bfd")
    moved_at_failure = {(c.address, c.site) for c in failed}
    assert all(not (routing.routes(a, 1e6) == world.pops.index("FRA")).any()
               for a in world.anycast_addresses)
    back = routing.recover_pop("FRA", 2000.0)
    assert {(c.address, c.site) for c in back} == moved_at_failure
    assert all(c.to_pop == "FRA" and c.from_pop != "FRA" and c.converged_at > 2000.0
               for c in back)
    assert len({c.converged_at for c in back}) == len(back)  # each site its own delay
    # until a site's move-back it stays on its (healthy) interim POP — no blackhole
    sample = back[0]
    site = world.site_index(sample.site)
    assert world.pops.codes[routing.pop_at(sample.address, site, sample.converged_at - 1e-6)] \
        == sample.from_pop
    late = max(c.converged_at for c in back)
    for address in world.anycast_addresses:
        assert np.array_equal(routing.routes(address, late), before[address])


def test_recovery_before_convergence_cancels_the_pending_move(world):
    fixed = RoutingParams(convergence=FixedDelay(delay_s=30.0))
    routing = world.new_routing(np.random.default_rng(2), fixed)
    address = world.anycast_addresses[0]
    changes = routing.fail_pop("FRA", 0.0, "graceful")
    site = world.site_index(changes[0].site)
    routing.recover_pop("FRA", 10.0)  # before anyone converged
    assert routing.pop_at(address, site, 10.0) == world.pops.index("FRA")
    assert routing.pop_at(address, site, 100.0) == world.pops.index("FRA")
    assert routing.next_switch_at(address, site) == np.inf


def test_when_every_pop_is_down_sites_have_no_route():
    pops = load_pops("cloudflare").subset(["LHR", "AMS"])
    world = build_world(pops, 50, seed=1)
    routing = world.new_routing(np.random.default_rng(1))
    routing.fail_pop("LHR", 0.0, "graceful")
    changes = routing.fail_pop("AMS", 1000.0, "graceful")
    assert changes and all(c.to_pop is None for c in changes)
    assert (routing.routes(world.anycast_addresses[0], 1e6) == NO_POP).all()
    assert routing.recover_pop("AMS", 2000.0)


def test_bad_routing_parameters_are_rejected():
    with pytest.raises(ValidationError):
        LognormalDelay(median_s=10, p80_s=5)
    with pytest.raises(ValidationError):
        RoutingParams(bfd_detection_s=(3.0, 1.0))
    with pytest.raises(ValidationError):
        EmpiricalDelay(quantiles=((0.1, 1.0), (1.0, 2.0)))
    with pytest.raises(ValidationError):
        RoutingParams(convergence={"kind": "weibull"})
    assert RoutingParams(convergence={"kind": "fixed", "delay_s": 2}).convergence.delay_s == 2


def test_repeated_events_are_idempotent_and_only_the_dead_pop_blackholes(world):
    routing = world.new_routing(np.random.default_rng(4))
    assert routing.recover_pop("FRA", 0.0) == []
    routing.fail_pop("FRA", 0.0, "graceful")
    assert routing.fail_pop("FRA", 1.0, "graceful") == []
    back = routing.recover_pop("FRA", 1000.0)
    # FRA dies again while its old sites are still moving back: they are on healthy
    # interim POPs, so they lose nothing
    again = routing.fail_pop("FRA", 1000.5, "graceful")
    moving = {(c.address, c.site) for c in back if c.converged_at > 1000.5}
    assert moving and all(c.blackholed_s == 0.0 for c in again if (c.address, c.site) in moving)
    frame = route_changes_frame(again)
    assert np.allclose(frame["blackholed_s"], [c.blackholed_s for c in again])
    assert (frame["blackholed_s"] > 0).sum() == sum(c.from_pop == "FRA" for c in again)
