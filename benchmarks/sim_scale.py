"""The issue's big scenario: 10,000 sites × 360 POPs × 24 simulated hours.

Hourly Child SA rekeys with PFS (ecp384 + ML-KEM-768), IKE SA rekeys every 4 h, three
silent POP failures; strongSwan timer defaults otherwise. Records wall time, thread CPU
time, peak RSS, the number of real handshakes and rekeys, and that workload's single-core
crypto floor: for every handshake or rekey, the three operations (initiate, respond,
finish) of each of its key exchanges at this machine's calibrated cost (the default cost
profile, measured with `wansim calibrate`) — the key schedule and SK protection excluded.

    nice .venv/bin/python benchmarks/sim_scale.py [--sites N] [--hours H] [--json FILE]

It takes long (tens of minutes to hours on a shared 2-core machine): run it once.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from wansim.experiment.config import ExperimentConfig
from wansim.sim.costs import CostTable
from wansim.sim.run import simulate

KE_METHODS = ("ecp384", "mlkem768")


def scenario(sites: int, hours: float) -> ExperimentConfig:
    duration = hours * 3600
    return ExperimentConfig.model_validate(
        {
            "name": "scale-10k-360-24h",
            "sites": {"count": sites},
            "ike": {
                "proposals": ["aes256gcm16-prfsha384-ecp384-ke1_mlkem768"],
                "rekey_time": "4h",
                "child": {"esp_proposals": ["aes256gcm16-ecp384-ke1_mlkem768"],
                          "rekey_time": "1h"},
            },
            "failures": {
                "scheduled": [
                    {"pop": "FRA", "at": duration * 0.25, "duration": "30m"},
                    {"pop": "IAD", "at": duration * 0.50, "duration": "30m"},
                    {"pop": "SIN", "at": duration * 0.75, "duration": "30m"},
                ]
            },
            "run": {"duration": duration, "pop_load_resolution": "60s"},
        }
    )  # fmt: skip


def crypto_floor_s(handshakes: int, costs: CostTable) -> float:
    per = sum(
        costs.operation_s(token, op)
        for token in KE_METHODS
        for op in ("initiate", "respond", "finish")
    )
    return handshakes * per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    config = scenario(args.sites, args.hours)
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    results = simulate(config)
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    hs = results.handshakes
    done = hs[hs["outcome"] == "established"]
    floor = crypto_floor_s(len(hs), CostTable.default())
    figures = {
        "sites": args.sites,
        "pops": results.summary["pops"],
        "simulated_h": args.hours,
        "handshakes": int(len(hs)),
        "by_kind": {k: int(v) for k, v in hs["kind"].value_counts().items()},
        "established": int(len(done)),
        "failovers": int(len(results.failovers)),
        "wall_s": wall,
        "thread_cpu_s": cpu,
        "crypto_floor_s": floor,
        "wall_over_floor": wall / floor,
        "cpu_over_floor": cpu / floor,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "latency_s": results.summary["strategies"]["replicated"]["latency_s"],
        "peak_cpu_utilisation": results.summary["strategies"]["replicated"].get(
            "peak_cpu_utilisation"
        ),
    }
    text = json.dumps(figures, indent=2, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
