"""From experiment config to simulation inputs: delays, failure plans, world."""

from __future__ import annotations

import math

import pytest

from wansim.experiment.config import Distribution, ExperimentConfig
from wansim.net import EmpiricalDelay, FixedDelay, LognormalDelay
from wansim.sim.scenario import build_world_from, convergence_delay, failure_plan


def test_convergence_distributions_map_onto_the_routing_model():
    lognormal = convergence_delay(Distribution(kind="lognormal", median=3.0, sigma=1.43))
    assert isinstance(lognormal, LognormalDelay)
    assert lognormal.p80_s == pytest.approx(10.0, rel=0.01)  # the ANRW 2024 shape
    assert convergence_delay(Distribution(kind="fixed", value=5.0)) == FixedDelay(delay_s=5.0)
    expo = convergence_delay(Distribution(kind="exponential", mean=4.0))
    assert isinstance(expo, EmpiricalDelay)
    median = expo.distribution().ppf(0.5)
    assert median == pytest.approx(4.0 * math.log(2), rel=0.01)


def test_failure_plan_merges_scheduled_regional_and_random():
    config = ExperimentConfig.model_validate(
        {
            "sites": {"count": 3},
            "topology": {"only": ["FRA", "AMS", "SIN"]},
            "failures": {
                "scheduled": [{"pop": "FRA", "at": "10m", "duration": "10m"}],
                "regional": [{"region": "Europe", "at": "15m", "duration": "1m"}],
                "random": {"mtbf": {"kind": "exponential", "mean": "20m"}, "mttr": "1m"},
            },
            "run": {"duration": "1h"},
        }
    )
    world = build_world_from(config, 1)
    plan = failure_plan(config, world, 1)
    assert plan == failure_plan(config, world, 1)  # drawn from the seed
    fra = [f for f in plan if f.pop == "FRA"]
    assert fra[0].at <= 600 and fra[0].recovered_at >= 1200  # regional one merged into it
    assert {f.cause for f in plan} >= {"scheduled", "regional:Europe", "random"}
    assert all(f.at < 3600 for f in plan)
    for pop in ("FRA", "AMS", "SIN"):  # never two overlapping failures of one POP
        runs = sorted(f for f in plan if f.pop == pop)
        assert all(a.recovered_at < b.at for a, b in zip(runs, runs[1:], strict=False))
