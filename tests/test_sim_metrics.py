"""Metrics tables: exact columns, per-bin rates, summary percentiles."""

from __future__ import annotations

import pytest
import simpy

from wansim.sim.cpu import CpuPool
from wansim.sim.metrics import (
    FAILOVER_COLUMNS,
    HANDSHAKE_COLUMNS,
    POP_LOAD_COLUMNS,
    HandshakeRecord,
    MetricsRecorder,
    summarise,
)


def _recorder() -> tuple[simpy.Environment, MetricsRecorder, CpuPool]:
    env = simpy.Environment()
    rec = MetricsRecorder("rehandshake", resolution_s=10.0, duration_s=25.0)
    cpu = CpuPool(env, 2, resolution_s=10.0)
    counters = rec.register_pop("FRA", cpu)
    counters.add(1.0, 3, 3000)
    counters.add(21.0, 1, 500)
    counters.add(1000.0, 1, 1)  # beyond the run: grows the arrays, not the table

    def job():
        yield env.timeout(8.0)
        yield from cpu.run(4.0)  # busy [8, 12): 2 s in bin 0, 2 s in bin 1

    env.process(job())
    env.run()
    return env, rec, cpu


def test_pop_load_rates_per_bin_and_short_last_bin():
    _, rec, _ = _recorder()
    load = rec.pop_load()
    assert tuple(load.columns) == POP_LOAD_COLUMNS
    assert list(load["at"]) == [0.0, 10.0, 20.0]
    assert list(load["exchanges_per_s"]) == pytest.approx([0.3, 0.0, 1 / 5])
    assert list(load["signalling_bytes_per_s"]) == pytest.approx([300.0, 0.0, 100.0])
    assert list(load["cpu_utilisation"]) == pytest.approx([0.1, 0.1, 0.0])


def test_tables_and_summary():
    _, rec, _ = _recorder()
    for i, latency in enumerate([0.1, 0.2, 0.3, 0.4]):
        record = HandshakeRecord(f"s{i}", "FRA", "initial", "x25519-ke1_mlkem768", 1.0)
        rec.handshake(record, ended_at=1.0 + latency, outcome="established")
    rec.handshake(
        HandshakeRecord("s9", "FRA", "rekey_child", "p", 2.0), ended_at=9.0, outcome="failed"
    )
    rec.failover(
        site="s0", failed_pop="FRA", new_pop="AMS", detect_s=1.0, converge_s=2.0,
        state_s=0.5, outcome="recovered",
    )  # fmt: skip
    hs, fo = rec.handshakes(), rec.failovers()
    assert tuple(hs.columns) == HANDSHAKE_COLUMNS
    assert tuple(fo.columns) == FAILOVER_COLUMNS
    assert fo.loc[0, "total_s"] == 3.5
    summary = summarise(hs, rec.pop_load(), fo)["rehandshake"]
    assert summary["handshakes"] == 5
    assert summary["outcomes"] == {"established": 4, "failed": 1}
    assert summary["latency_s"]["p50"] == pytest.approx(0.25)
    assert summary["latency_s"]["max"] == pytest.approx(0.4)
    assert summary["failover_s"]["total_s"]["mean"] == 3.5
    assert summary["peak_cpu_pop"] == "FRA"
