"""Data-plane reachability from state changes, and failover chains whose parts sum up."""

from __future__ import annotations

import math

import pytest

from wansim.sim.dataplane import DataPlane
from wansim.sim.failover import FailoverLog
from wansim.sim.metrics import MetricsRecorder

KEY = ("branch-1", 0)


def _established(plane: DataPlane, pop: str = "FRA", replicated_at: float | None = None):
    plane.route(KEY, pop, 0.0)
    plane.sa_established(KEY, pop, 1.0, replicated_at)


def test_silent_failure_then_rehandshake_at_the_new_pop():
    log: list = []
    plane = DataPlane(lambda key, up, now: log.append((up, now)))
    _established(plane)
    plane.pop_down("FRA", 10.0)
    plane.route(KEY, None, 11.0)  # withdrawn: blackholed while converging
    plane.route(KEY, "AMS", 15.0)  # converged, but AMS knows no SPI
    assert not plane.tunnels[KEY].up
    plane.sa_established(KEY, "AMS", 40.0)
    assert log == [(True, 1.0), (False, 10.0), (True, 40.0)]
    assert plane.outages(KEY, until=100.0) == [(0.0, 1.0), (10.0, 40.0)]


def test_replicated_state_restores_traffic_on_convergence():
    plane = DataPlane()
    _established(plane, replicated_at=1.5)
    plane.pop_down("FRA", 10.0)
    plane.route(KEY, "AMS", 14.0)
    assert plane.tunnels[KEY].up
    assert plane.outages(KEY, 20.0)[-1] == (10.0, 14.0)


def test_state_not_yet_replicated_dies_with_the_pop():
    plane = DataPlane()
    _established(plane, replicated_at=12.0)
    plane.pop_down("FRA", 10.0)
    plane.route(KEY, "AMS", 14.0)
    assert not plane.tunnels[KEY].up


def test_failover_parts_are_consecutive_and_sum_to_total():
    rec = MetricsRecorder("rehandshake", resolution_s=60, duration_s=600)
    log = FailoverLog(rec)
    log.opened("s1", "FRA", 100.0)
    log.converged("s1", "AMS", 104.0)  # route first ...
    log.detected("s1", 295.0)  # ... DPD gives up much later
    log.restored("s1", "AMS", 295.4)
    log.opened("s2", "FRA", 100.0)
    log.detected("s2", 101.0)
    log.converged("s2", "AMS", 105.0)
    log.mark("s2", "fell_back")
    log.restored("s2", "AMS", 105.0)
    log.opened("s3", "FRA", 100.0)
    log.finish(600.0)
    rows = rec.failovers().set_index("site")
    assert rows.loc["s1", ["detect_s", "converge_s", "state_s"]].tolist() == pytest.approx(
        [195.0, 0.0, 0.4]
    )
    assert rows.loc["s2", ["detect_s", "converge_s", "state_s"]].tolist() == [1.0, 4.0, 0.0]
    assert rows.loc["s2", "outcome"] == "fell_back"
    for site in ("s1", "s2"):
        parts = rows.loc[site, ["detect_s", "converge_s", "state_s"]].sum()
        assert parts == pytest.approx(rows.loc[site, "total_s"])
    assert rows.loc["s3", "outcome"] == "not_recovered" and math.isnan(rows.loc["s3", "total_s"])
