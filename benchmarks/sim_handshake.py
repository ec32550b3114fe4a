"""Simulation speed: CPU per simulated hybrid handshake ÷ the crypto floor of that handshake.

A world of 5 European POPs and N branch sites, each doing one x25519+ML-KEM-768 handshake
(PSK) in a 30 s start window, no contention (64 cores per POP), strategy rehandshake. The
simulation's cost per handshake is the thread CPU time of `wansim.simulate` ÷ handshakes
(world building included), median of 3 runs. The floor is `benchmarks/crypto_floor.py`'s
full-handshake crypto (every key exchange on both ends, key schedule, IntAuth, PSK AUTH,
Child KEYMAT), median of interleaved batches; and for reference the IKE engine alone
(`wansim.ike.loopback.run_handshake`: two engines wired in memory, no simulation).

    .venv/bin/python benchmarks/sim_handshake.py [--sites N] [--no-write]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, parser, publish  # noqa: E402
from crypto_floor import handshake_crypto  # noqa: E402

from wansim.crypto import get_kex  # noqa: E402
from wansim.experiment.config import ExperimentConfig  # noqa: E402
from wansim.ike.loopback import run_handshake  # noqa: E402
from wansim.sim.calibration import time_calls  # noqa: E402
from wansim.sim.run import simulate  # noqa: E402

PROPOSAL = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"


def config(sites: int, strategies: tuple[str, ...] = ("rehandshake",)) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "sites": {"count": sites, "start_window": "30s", "access": {"jitter": 0, "loss": 0}},
            "topology": {"only": ["FRA", "AMS", "CDG", "LHR", "MUC"]},
            "ike": {"proposals": [PROPOSAL]},
            "pop": {"cores": 64},
            "failover": {"strategies": list(strategies)},
            "run": {"duration": "40s"},
        }
    )


def sim_cpu_per_handshake(sites: int, runs: int = 3) -> tuple[float, float]:
    """(median thread CPU s, median wall s) per simulated handshake."""
    cfg = config(sites)
    simulate(config(20))  # warm imports and caches
    cpu, wall = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.thread_time()
        results = simulate(cfg)
        n = int((results.handshakes["outcome"] == "established").sum())
        cpu.append((time.thread_time() - c0) / n)
        wall.append((time.perf_counter() - w0) / n)
    return statistics.median(cpu), statistics.median(wall)


def parallel_wall_per_handshake(sites: int) -> tuple[float, float]:
    """Wall s per simulated handshake for two strategies, in 1 process and in 2 workers."""
    cfg = config(sites, ("rehandshake", "replicated"))
    out = []
    for workers in (1, 2):
        start = time.perf_counter()
        results = simulate(cfg, workers=workers)
        n = int((results.handshakes["outcome"] == "established").sum())
        out.append((time.perf_counter() - start) / n)
    return out[0], out[1]


def floor_per_handshake() -> float:
    kexes = [get_kex("x25519"), get_kex("mlkem768")]
    return time_calls({"hs": lambda: handshake_crypto(kexes)}, batches=15, min_batch_s=0.003)["hs"]


def engine_per_handshake() -> float:
    """Two engines wired in memory (`wansim.ike.loopback.run_handshake`, with its
    per-message trace), no simulation around them."""
    seeds = iter(range(10**6))
    return time_calls(
        {"hs": lambda: run_handshake(PROPOSAL, seed=next(seeds))}, batches=15, min_batch_s=0.01
    )["hs"]


def section(
    sites: int, floor: float, engine: float, cpu: float, wall: float, serial: float, parallel: float
) -> str:
    return "\n".join(
        [
            "## Simulation cost per hybrid handshake (`benchmarks/sim_handshake.py`)",
            "",
            f"One run on {machine()}: {sites} "
            f"sites, one `{PROPOSAL}` handshake each, no contention; thread CPU time "
            "(median of 3 simulations; wall time shown too, the machine is shared).",
            "",
            "| per handshake | µs | ÷ crypto floor |",
            "|---|---:|---:|",
            f"| crypto floor (both ends, key schedule incl.) | {floor * 1e6:.0f} | 1.00 |",
            f"| IKE engine alone (loopback harness) | {engine * 1e6:.0f} | {engine / floor:.2f} |",
            f"| `wansim.simulate`, thread CPU | {cpu * 1e6:.0f} | {cpu / floor:.2f} |",
            f"| `wansim.simulate`, wall | {wall * 1e6:.0f} | {wall / floor:.2f} |",
            f"| two strategies, one process, wall | {serial * 1e6:.0f} | {serial / floor:.2f} |",
            f"| two strategies, `workers=2`, wall | {parallel * 1e6:.0f} | "
            f"{parallel / floor:.2f} |",
            "",
            f"Reading: the target (≤ 1.5 × the floor) is **not met**: the simulation costs "
            f"{cpu / floor:.1f} × the crypto floor, because the sans-I/O engine's own Python work "
            f"(payloads, proposals, protection, state) is already {engine / floor:.1f} × the "
            f"floor; simpy, the network, CPU accounting and metrics add "
            f"{(cpu - engine) / engine * 100:.0f} % on top of the engine. Moving only the crypto "
            "to worker processes could hide at most the floor itself, so it cannot bring the "
            "ratio near 1 while the engine dominates (not implemented). What does parallelise "
            "is whole strategies: `simulate(config, workers=2)` runs them in processes with "
            f"identical results, {serial / parallel:.2f} × faster here on 2 cores.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__)
    cli.add_argument("--sites", type=int, default=300)
    args = cli.parse_args(argv)
    floor = floor_per_handshake()
    engine = engine_per_handshake()
    cpu, wall = sim_cpu_per_handshake(args.sites)
    serial, parallel = parallel_wall_per_handshake(args.sites)
    text = section(args.sites, floor, engine, cpu, wall, serial, parallel)
    publish("sim_handshake", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
