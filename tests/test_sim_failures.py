"""Failure plans: scheduled, random (MTBF/MTTR), regional, merged, replayed in order."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from wansim.sim.failures import (
    FailureInjector,
    PopFailure,
    merge_failures,
    random_failures,
    regional_failures,
)


def test_overlapping_failures_of_one_pop_merge():
    plan = merge_failures(
        [PopFailure(10, "FRA", 30), PopFailure(20, "FRA", 40), PopFailure(15, "AMS", 5)]
    )
    assert plan == (PopFailure(10, "FRA", 50), PopFailure(15, "AMS", 5))


def test_regional_failure_hits_every_pop_of_the_region():
    regions = {"FRA": "EU", "AMS": "EU", "SIN": "APAC"}
    plan = regional_failures("EU", regions, at=5.0, duration_s=60.0)
    assert [f.pop for f in plan] == ["AMS", "FRA"]
    assert {f.cause for f in plan} == {"regional:EU"}
    with pytest.raises(ValueError, match="known regions: APAC, EU"):
        regional_failures("MARS", regions, at=0, duration_s=1)


class Exponential:
    def __init__(self, mean: float) -> None:
        self.mean = mean

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean))


def test_random_failures_follow_mtbf_and_mttr():
    rng = np.random.default_rng(7)
    pops = [f"P{i}" for i in range(200)]
    mtbf, mttr, horizon = 1000.0, 100.0, 20_000.0
    plan = random_failures(
        pops, mtbf=Exponential(mtbf), mttr=Exponential(mttr), horizon_s=horizon, rng=rng
    )
    downs = np.array([f.duration_s for f in plan])
    assert downs.mean() == pytest.approx(mttr, rel=0.1)
    # alternating renewal process: about horizon / (mtbf + mttr) failures per POP
    assert len(plan) / len(pops) == pytest.approx(horizon / (mtbf + mttr), rel=0.1)
    assert all(0 <= f.at < horizon for f in plan)


def test_same_seed_same_plan():
    def draw(seed):
        return random_failures(
            ["A", "B"], mtbf=Exponential(50), mttr=Exponential(5), horizon_s=1000,
            rng=np.random.default_rng(seed),
        )  # fmt: skip

    assert draw(1) == draw(1) != draw(2)


def test_injector_replays_failures_and_recoveries_in_time_order():
    env = simpy.Environment()
    log: list[tuple[float, str, str]] = []
    FailureInjector(
        env,
        [PopFailure(30, "SIN", 5), PopFailure(10, "FRA", 50, "graceful")],
        on_fail=lambda f: log.append((env.now, "fail", f.pop)),
        on_recover=lambda f: log.append((env.now, "recover", f.pop)),
    )
    env.run()
    assert log == [
        (10, "fail", "FRA"),
        (30, "fail", "SIN"),
        (35, "recover", "SIN"),
        (60, "recover", "FRA"),
    ]
