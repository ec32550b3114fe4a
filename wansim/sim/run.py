"""`simulate(config)`: one world, its failures, every failover strategy — tidy tables out.

Each strategy replays the same world, catchments, failure plan and route-convergence draws
(common random numbers: every random stream is split from the run's seed by purpose, and
re-created for each strategy), so differences between strategies come from the strategies.

Per strategy a :class:`StrategyRun` wires the actors: POPs (responders with CPU pools) and
branch sites (initiators) attached to the simulated network, the failure injector, the
data-plane tracker and the failover log. Its methods are the context the actors call.
"""

from __future__ import annotations

import gc
import multiprocessing
import platform
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from importlib import metadata
from typing import Any

import pandas as pd
import simpy

from wansim.crypto.signatures import make_credentials
from wansim.experiment.config import ExperimentConfig
from wansim.ike.gateway import Gateway
from wansim.net import NO_POP, Network, RouteChange, World
from wansim.net.timers import run_until
from wansim.sim.cpu import CpuPool
from wansim.sim.dataplane import DataPlane, TunnelKey
from wansim.sim.driver import Addr
from wansim.sim.failover import FailoverLog
from wansim.sim.failures import FailureInjector, PopFailure
from wansim.sim.metrics import MetricsRecorder, summarise
from wansim.sim.pop import Pop, Responder, SaRegistry
from wansim.sim.results import Results
from wansim.sim.scenario import (
    STREAM_HEALTH,
    STREAM_NETWORK,
    STREAM_ROUTING,
    STREAM_SITES,
    build_world_from,
    cost_table,
    failure_plan,
    gateway_config,
    pop_ike_config,
    site_policy,
    stream,
    world_failure_kind,
)
from wansim.sim.shards import shards
from wansim.sim.site import BranchSite, Tunnel

Progress = Callable[[str, float, float], None]
Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]
#: Shards per worker process: smaller pieces, handed out as workers free up, even the load.
SHARDS_PER_WORKER = 4
#: Cyclic-GC thresholds during a run (Python's default is 700, 10, 10).
QUIET_THRESHOLDS = (50_000, 50, 100)
PROGRESS_STEPS = 100


class StrategyRun:
    """One strategy on one world: builds the actors and runs them."""

    def __init__(
        self,
        config: ExperimentConfig,
        world: World,
        strategy: str,
        failures: tuple[PopFailure, ...],
        seed: int,
        sites: Sequence[int] | None = None,
        pops: Collection[str] | None = None,
    ) -> None:
        """`sites`: indices of the sites to simulate, `pops`: codes of the POPs to build (a
        shard and the POPs only its sites can reach, see `wansim.sim.shards`); default all."""
        self.config = config
        self.world = world
        self.strategy = strategy
        self.seed = seed
        self.env = simpy.Environment()
        self.costs = cost_table(config, pop=False)  # branch routers' own CPU
        self.pop_costs = cost_table(config)
        self.recorder = MetricsRecorder(
            strategy, resolution_s=config.run.pop_load_resolution, duration_s=config.run.duration
        )
        self.dataplane = DataPlane(self._transition)
        self.failovers = FailoverLog(self.recorder)
        self.network = Network(
            self.env,
            world,
            rng=stream(seed, STREAM_NETWORK),
            routing=world.new_routing(stream(seed, STREAM_ROUTING)),
            site_streams=lambda i: stream(seed, STREAM_NETWORK, i),
        )
        self.addresses = tunnel_addresses(world, strategy)
        self.registry = (
            SaRegistry(config.failover.replication_delay) if strategy == "replicated" else None
        )
        self._replied_from: dict[tuple[str, str], str] = {}
        self._failing_pop: str | None = None
        self._site_up: dict[str, bool] = {}
        self._cpu_wait: dict[tuple[str, str], float] = {}
        self._build_pops(self.world.pops.codes if pops is None else pops)
        self._build_sites(range(len(world.sites)) if sites is None else sites)
        FailureInjector(self.env, failures, self._on_fail, self._on_recover)

    # -- construction -------------------------------------------------------------------
    def _build_pops(self, codes: Collection[str]) -> None:
        config, env = self.config, self.env
        ike, gw = pop_ike_config(config), gateway_config(config)
        # signature auth: the anycast service has one identity, so one certificate
        credentials = None if ike.auth == "psk" else make_credentials(ike.auth, ike.local_id)

        def make_gateway(address: str) -> Gateway:
            return Gateway(ike, local_addr=(address, 500), gateway=gw, credentials=credentials)

        shared = None
        if self.registry is not None:  # one replicated SA database per anycast address
            shared = {a: Responder(env, make_gateway(a)) for a in self.addresses}
        self.pops: dict[str, Pop] = {}
        self._pop_ends: dict[tuple[str, str], Any] = {}
        for code in self.world.pops.codes:
            if code not in codes:  # another shard's POP: its sites never come here
                for address in self.addresses:
                    self.network.attach(address, self._foreign(code), pop=code)
                continue
            cores = config.pop.cores_by_pop.get(code, config.pop.cores)
            cpu = CpuPool(env, cores, resolution_s=config.run.pop_load_resolution)
            pop = Pop(
                env,
                code,
                cpu=cpu,
                counters=self.recorder.register_pop(code, cpu),
                costs=self.pop_costs,
                addresses=self.addresses,
                make_gateway=make_gateway,
                send=self._pop_send,
                registry=self.registry,
                shared=shared,
                rate_cap=config.pop.handshake_rate_cap,
            )
            self.pops[code] = pop
            for address in self.addresses:
                self._pop_ends[(code, address)] = self.network.attach(
                    address, partial(pop.receive, address), pop=code
                )

    @staticmethod
    def _foreign(code: str) -> Callable[[bytes, Addr], None]:
        def arrive(data: bytes, src: Addr) -> None:  # an invariant, not user input
            raise RuntimeError(f"shard partition violated: {src[0]} reached POP {code}")

        return arrive

    def _build_sites(self, indices: Iterable[int]) -> None:
        policy = site_policy(self.config)
        world, routing = self.world, self.network.routing
        self.sites: list[BranchSite] = []
        self._site_ends: list[Any] = [None] * len(world.sites)
        probes = len(self.addresses) > 1 and policy.health_interval_s > 0  # health checks
        for i in map(int, indices):
            name, ip = world.sites.names[i], world.site_ip(i)
            site = BranchSite(
                self,
                name,
                i,
                ip,
                self.addresses,
                policy,
                stream(self.seed, STREAM_SITES, i),
                stream(self.seed, STREAM_HEALTH, i) if probes else None,
            )
            self.sites.append(site)
            self._site_ends[i] = self.network.attach(ip, site.receive)
            self._site_up[name] = False
            for t, address in enumerate(self.addresses):
                pop = routing.pop_at(address, i, 0.0)
                self.dataplane.route((name, t), self._code(pop), 0.0)
        self._by_name = {site.name: site for site in self.sites}

    def _code(self, pop: int) -> str | None:
        return None if pop == NO_POP else self.world.pops.codes[pop]

    # -- context for sites and POPs ---------------------------------------------------------
    def send(self, site: BranchSite, data: bytes, dest: Addr) -> None:
        self._site_ends[site.index].send(data, dest)

    def _pop_send(self, pop: str, address: str, data: bytes, dest: Addr, wait_s: float) -> None:
        key = (dest[0], address)  # one site's tunnel: its address and our anycast address
        if wait_s > 0:  # handed to the site with the reply, for its handshake's cpu_wait_s
            self._cpu_wait[key] = self._cpu_wait.get(key, 0.0) + wait_s
        self._replied_from[key] = pop
        self._pop_ends[(pop, address)].send(data, dest)

    def take_reply_state(self, site: BranchSite, address: str) -> tuple[str | None, float]:
        """For a reply reaching this tunnel: the POP that last sent it a datagram (the one
        answering its requests), and the POP CPU queueing behind the replies so far."""
        key = (site.ip, address)
        return self._replied_from.get(key), self._cpu_wait.pop(key, 0.0)

    def replicated_at(self, pop_spi: bytes) -> float | None:
        return self.registry.replicated_at(pop_spi) if self.registry is not None else None

    def on_detected(self, site: BranchSite, tunnel: Tunnel, now: float) -> None:
        """A site declared one of its tunnels dead."""
        if self.strategy == "replicated":
            if self.failovers.is_open(site.name):
                self.failovers.mark(site.name, "fell_back")  # DPD gave up before routing
            return
        if tunnel.index != site.active:
            return  # the standby died: nothing to switch
        self.failovers.detected(site.name, now)
        if len(site.tunnels) > 1:
            survivor = site.tunnels[1 - tunnel.index]
            site.active = survivor.index
            if not survivor.up:
                self.failovers.mark(site.name, "no_survivor")
            self._site_changed(site, now)

    def on_unhealthy(self, site: BranchSite, tunnel: Tunnel, now: float) -> None:
        """Health checks declared a tunnel down: steer traffic to the other one if healthy.

        With no healthy survivor (both addresses' catchments on the failed POP) there is
        nothing to switch to: the failover is tagged ``no_survivor`` and waits for DPD and
        a re-handshake, exactly as ``rehandshake`` does.
        """
        if tunnel.index != site.active or len(site.tunnels) < 2:
            return
        survivor = site.tunnels[1 - tunnel.index]
        if not survivor.up:
            self.failovers.mark(site.name, "no_survivor")
            return
        self.failovers.detected(site.name, now)
        site.active = survivor.index
        self._site_changed(site, now)

    # -- data plane -----------------------------------------------------------------------
    def _transition(self, key: TunnelKey, up: bool, now: float) -> None:
        site = self._by_name[key[0]]
        site.on_dataplane(key[1], up, now)
        active = site.tunnels[site.active]
        if (
            up
            and key[1] != site.active
            and self.failovers.is_open(site.name)
            and (active.sa is None or not active.sa.established)
        ):
            site.active = key[1]  # in an outage the site knows its tunnel is down: use this one
        self._site_changed(site, now)

    def _site_changed(self, site: BranchSite, now: float) -> None:
        active = site.tunnels[site.active]
        up = self.dataplane.tunnels[(site.name, active.index)].up
        if up == self._site_up[site.name]:
            return
        self._site_up[site.name] = up
        if not up and self._failing_pop is not None:
            self.failovers.opened(site.name, self._failing_pop, now)
        elif up:
            state = self.dataplane.tunnels[(site.name, active.index)]
            self.failovers.restored(site.name, state.route_pop or "", now)

    # -- failures ---------------------------------------------------------------------------
    def _on_fail(self, failure: PopFailure) -> None:
        now = self.env.now
        if failure.pop in self.pops:
            self.pops[failure.pop].fail(now)
        changes = self.network.fail_pop(failure.pop, world_failure_kind(failure.kind, self.config))
        self._failing_pop = failure.pop
        self.dataplane.pop_down(failure.pop, now, forget_state=self.registry is None)
        self._failing_pop = None
        for change in self._ours(changes):
            if self.strategy == "replicated":
                self.failovers.detected(change.site, change.detected_at)
            self._route_at(change)

    def _on_recover(self, failure: PopFailure) -> None:
        now = self.env.now
        if failure.pop in self.pops:
            self.pops[failure.pop].recover(now)
        self.dataplane.pop_up(failure.pop, now)
        for change in self._ours(self.network.recover_pop(failure.pop)):
            self._route_at(change)

    def _ours(self, changes: list[RouteChange]) -> list[RouteChange]:
        """The route changes of the sites this run simulates (a shard has some)."""
        return [c for c in changes if c.site in self._by_name]

    def _route_at(self, change: RouteChange) -> None:
        site = self._by_name[change.site]
        tunnel = self.addresses.index(change.address) if change.address in self.addresses else -1
        if tunnel < 0:
            return

        def apply(_event: simpy.Event) -> None:
            now = self.env.now
            if tunnel == site.active:
                self.failovers.converged(site.name, change.to_pop, now)
            self.dataplane.route((site.name, tunnel), change.to_pop, now)

        self.env.timeout(max(0.0, change.converged_at - self.env.now)).callbacks.append(apply)

    # -- running --------------------------------------------------------------------------
    def drops(self) -> dict[str, dict[str, int]]:
        """Datagrams dropped, by reason: at POP admission and in the network."""
        pop: dict[str, int] = {}
        for p in self.pops.values():
            for why, n in p.drops.items():
                pop[why] = pop.get(why, 0) + n
        network: dict[str, int] = {}
        for record in self.network.drops:
            network[record.reason] = network.get(record.reason, 0) + 1
        return {"pop": dict(sorted(pop.items())), "network": dict(sorted(network.items()))}

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
        r = self.recorder
        return r.handshakes(), r.pop_load(), r.failovers(), self.drops()

    def run(self, progress: Progress | None = None) -> StrategyRun:
        duration = self.config.run.duration
        if progress is None:
            run_until(self.env, duration)
        else:  # advance in slices so a progress bar can follow simulated time
            for k in range(1, PROGRESS_STEPS + 1):
                run_until(self.env, duration * k / PROGRESS_STEPS)
                progress(self.strategy, self.env.now, duration)
        self.failovers.finish(self.env.now)
        return self


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("wansim", "simpy", "numpy", "pandas", "cryptography", "networkx"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _backends(config: ExperimentConfig) -> dict[str, str]:
    """Which crypto backend runs each key exchange the proposals name."""
    from wansim.crypto import get_kex
    from wansim.ike.constants import ADDKE_TYPES, TransformType
    from wansim.ike.proposals import ke_token, parse_proposals

    ke_types = {TransformType.KE, *ADDKE_TYPES}
    out: dict[str, str] = {}
    for spec in parse_proposals(config.ike.proposals, "ike"):
        for transform in spec.transforms:
            if transform.type in ke_types and transform.id != 0:  # 0 = NONE (optional ADDKE)
                token = ke_token(transform.id)
                out.setdefault(token, get_kex(token, config.ike.backend).backend)
    return out


def tunnel_addresses(world: World, strategy: str) -> tuple[str, ...]:
    """The anycast addresses each site builds a tunnel to under `strategy`."""
    return world.anycast_addresses[: 2 if strategy == "dual-tunnel" else 1]


#: The world and failure plan of the run in progress, by (config, seed): worker processes
#: forked from `simulate` find it here instead of rebuilding it.
_INPUTS: dict[tuple[str, int], tuple[World, tuple[PopFailure, ...]]] = {}


def _shard_tables(
    config: ExperimentConfig, strategy: str, seed: int, sites: Any, pops: Collection[str]
) -> Tables:
    """One strategy on a shard's sites and POPs, start to finish (a worker's job)."""
    key = (config.model_dump_json(), seed)
    if key not in _INPUTS:  # a spawned (not forked) worker builds the same world itself
        world = build_world_from(config, seed)
        _INPUTS[key] = (world, failure_plan(config, world, seed))
    world, plan = _INPUTS[key]
    return StrategyRun(config, world, strategy, plan, seed, sites, pops).run().tables()


def _quiet_worker() -> None:
    """A worker process keeps the collector as `quiet_gc` sets it, for its whole life:
    what it inherited stays frozen (a full collection would touch, and so copy, every
    page it shares with the parent)."""
    gc.freeze()
    gc.set_threshold(*QUIET_THRESHOLDS)


def _parallel(
    config: ExperimentConfig,
    world: World,
    plan: tuple[PopFailure, ...],
    seed: int,
    workers: int,
    progress: Progress | None,
) -> list[Tables]:
    """Every strategy split into up to `SHARDS_PER_WORKER × workers` shards, handed to
    `workers` processes as they free up."""
    from concurrent.futures import ProcessPoolExecutor

    failing = {f.pop for f in plan}
    units = [
        (strategy, shard)
        for strategy in config.failover.strategies
        for shard in shards(
            world, tunnel_addresses(world, strategy), failing, SHARDS_PER_WORKER * workers
        )
    ]
    key = (config.model_dump_json(), seed)
    _INPUTS[key] = (world, plan)
    try:
        # fork where there is one: workers inherit the world (and a frozen heap)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with (
            quiet_gc(),
            ProcessPoolExecutor(
                min(workers, len(units)), mp_context=context, initializer=_quiet_worker
            ) as pool,
        ):
            futures = [
                pool.submit(_shard_tables, config, strategy, seed, shard.sites, shard.pops)
                for strategy, shard in units
            ]
            parts: dict[str, list[Tables]] = {}
            for (strategy, _), future in zip(units, futures, strict=True):
                parts.setdefault(strategy, []).append(future.result())
                if progress is not None:
                    done = len(parts[strategy]) / sum(u[0] == strategy for u in units)
                    progress(strategy, done * config.run.duration, config.run.duration)
    finally:
        _INPUTS.pop(key, None)
    return [merge_shards(parts[s]) for s in config.failover.strategies]


def merge_shards(tables: list[Tables]) -> Tables:
    """One strategy's tables from its shards: rows concatenated (the canonical order of
    handshakes and failovers comes later; POP load by POP and time), drops summed."""
    if len(tables) == 1:
        return tables[0]
    pop_load = _concat([t[1] for t in tables]).sort_values(["pop", "at"], kind="stable")
    drops: dict[str, dict[str, int]] = {}
    for *_, part_drops in tables:
        for where, counts in part_drops.items():
            into = drops.setdefault(where, {})
            for why, n in counts.items():
                into[why] = into.get(why, 0) + n
    return (
        _concat([t[0] for t in tables]),
        pop_load.reset_index(drop=True),
        _concat([t[2] for t in tables]),
        {where: dict(sorted(c.items())) for where, c in sorted(drops.items())},
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows of all frames; empty ones are left out so they cannot change column dtypes."""
    rows = [f for f in frames if len(f)]
    return pd.concat(rows or frames[:1], ignore_index=True)


def canonical_order(
    handshakes: pd.DataFrame, failovers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows in an order that does not depend on how the run was split: handshakes by
    start then site, failovers by failed POP then site (a site's own rows keep their order)."""
    return (
        handshakes.sort_values(["start_at", "site"], kind="stable", ignore_index=True),
        failovers.sort_values(["failed_pop", "site"], kind="stable", ignore_index=True),
    )


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect garbage rarely while a run's long-lived actors exist.

    A run keeps hundreds of thousands of objects alive (SAs, payloads, simpy events); the
    cyclic collector's default thresholds rescan them over and over for no garbage.
    Objects alive at entry are frozen out of collection (no full collection first: in a
    forked worker that would touch every inherited page); thresholds are restored at exit.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*QUIET_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def simulate(
    config: ExperimentConfig,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> Results:
    """Run the experiment once per failover strategy on one world; return tidy results.

    ``seed`` overrides ``config.run.seed``. The same seed gives the same tables and summary.
    ``progress(strategy, simulated_now_s, duration_s)``, if given, is called as simulated
    time advances (for a progress bar). ``workers > 1`` runs in that many processes: each
    strategy is split into groups of sites that share no POP (`wansim.sim.shards`), and
    the merged tables are identical to a one-process run's.
    """
    seed = config.run.seed if seed is None else seed
    started = time.perf_counter()
    world = build_world_from(config, seed)
    plan = failure_plan(config, world, seed)
    strategies = config.failover.strategies
    if workers > 1:
        tables = _parallel(config, world, plan, seed, workers, progress)
    else:
        tables = []
        with quiet_gc():
            for strategy in strategies:
                run = StrategyRun(config, world, strategy, plan, seed)
                tables.append(run.run(progress).tables())
                del run
    warm_up = config.run.warm_up
    handshakes, failovers = canonical_order(
        pd.concat([t[0] for t in tables], ignore_index=True),
        pd.concat([t[2] for t in tables], ignore_index=True),
    )
    pop_load = pd.concat([t[1] for t in tables], ignore_index=True)
    if warm_up > 0:
        handshakes = handshakes[handshakes["start_at"] >= warm_up].reset_index(drop=True)
        pop_load = pop_load[pop_load["at"] >= warm_up].reset_index(drop=True)
    costs = cost_table(config)
    summary = {
        "strategies": summarise(handshakes, pop_load, failovers),
        "drops": {s: t[3] for s, t in zip(strategies, tables, strict=True)},
        "sites": len(world.sites),
        "pops": len(world.pops),
        "duration_s": config.run.duration,
        "failures": len(plan),
        "seed": seed,
    }
    manifest = {
        "config": config.model_dump(mode="json"),
        "seed": seed,
        "versions": _versions(),
        "crypto_backend": _safe_backends(config),
        "cost_profile": {
            "name": costs.name,
            "backend": costs.profile.backend,
            "scale": costs.profile.scale,
            "provenance": costs.profile.provenance,
        },
        "failures": [
            {"pop": f.pop, "at": f.at, "duration_s": f.duration_s, "kind": f.kind, "cause": f.cause}
            for f in plan
        ],
        "wall_time_s": time.perf_counter() - started,
        "machine": {"platform": platform.platform(), "cpus": _cpus()},
    }
    return Results(handshakes, pop_load, failovers, summary, manifest)


def _safe_backends(config: ExperimentConfig) -> dict[str, str]:
    try:
        return _backends(config)
    except Exception as exc:  # noqa: BLE001 - the manifest must not break a finished run
        return {"error": str(exc)}


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


__all__ = ["StrategyRun", "canonical_order", "merge_shards", "simulate", "tunnel_addresses"]
