"""World-model speed: anycast catchments, building the 360-POP world, failover, transport.

Targets (issue 4): catchments for 100,000 sites × 360 POPs in under a second, and the
full 360-POP world built in under two seconds. Medians over repeated runs of the
thread's CPU time (`time.thread_time`: the numpy work here is single-threaded, and
CPU time is less distorted than wall-clock time by other jobs on a shared machine),
printed and written into docs/benchmarks.md (its "World model" section).
Usage: `python benchmarks/world.py [--no-write]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import simpy
from _common import machine, parser, publish

from wansim.net import AnycastParams, Network, build_world
from wansim.net.anycast import compute_catchments
from wansim.topology import generate_sites, load_pops

RUNS = 5


def median_s(work: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.thread_time()
        work()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def transport_rate(world, n: int = 50_000) -> float:
    """Datagrams per CPU second through the simpy network (send + deliver)."""
    env = simpy.Environment()
    net = Network(env, world, rng=np.random.default_rng(1))
    anycast = world.anycast_addresses[0]
    for code in world.pops.codes:
        net.attach(anycast, lambda data, src: None, pop=code)
    ends = [net.attach(world.site_ip(i), lambda data, src: None) for i in range(1000)]
    payload = bytes(1200)
    start = time.thread_time()
    for k in range(n):
        ends[k % 1000].send(payload, (anycast, 4500))
    env.run()
    return n / (time.thread_time() - start)


def section() -> str:
    pops = load_pops("cloudflare")
    sites = generate_sites(pops, 100_000, np.random.default_rng(1))
    two = AnycastParams()
    one = AnycastParams(addresses=two.addresses[:1])

    def catchments(params):
        return lambda: compute_catchments(sites, pops, params, np.random.default_rng(2),
                                          internet_stretch=2.1, fibre_km_per_ms=204.0)

    rows = [
        ("catchments, 100,000 sites × 360 POPs, 1 anycast address", median_s(catchments(one)),
         1.0),
        ("catchments, 100,000 sites × 360 POPs, 2 anycast addresses", median_s(catchments(two)),
         1.0),
        ("build_world: 360 POPs + backbone + 10,000 generated sites + catchments",
         median_s(lambda: build_world("cloudflare", 10_000, seed=1)), 2.0),
        ("build_world: 360 POPs + backbone + 100,000 generated sites + catchments",
         median_s(lambda: build_world("cloudflare", 100_000, seed=1), runs=3), None),
    ]
    world = build_world("cloudflare", 100_000, seed=1)

    def failover():
        routing = world.new_routing(np.random.default_rng(3))
        routing.fail_pop("FRA", 0.0, "bfd")
        routing.recover_pop("FRA", 600.0)

    rows.append(("fail + recover FRA, 100,000 sites, both addresses", median_s(failover), None))
    rate = statistics.median(transport_rate(world) for _ in range(3))

    lines = [
        "## World model (`benchmarks/world.py`)",
        "",
        f"Thread CPU time, medians of {RUNS} runs (3 for the largest) on {machine()}, "
        f"numpy {np.__version__}; "
        "the machine was shared with other jobs.",
        "",
        "| operation | median s | target s | within |",
        "|---|---:|---:|---|",
    ]
    for name, seconds, target in rows:
        within = "—" if target is None else ("yes" if seconds < target else "**no**")
        target_text = "—" if target is None else f"{target:.1f}"
        lines.append(f"| {name} | {seconds:.3f} | {target_text} | {within} |")
    lines += [
        "",
        f"simpy transport: {rate:,.0f} datagrams per CPU second (1,200-byte datagrams from "
        "1,000 sites to their anycast POP, loss and jitter on; one simpy timeout each).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    publish("world", section(), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
