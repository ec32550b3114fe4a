"""From an :class:`~wansim.experiment.config.ExperimentConfig` to the simulation's inputs.

The world (POPs, sites, backbone, paths, catchments), the failure plan, the sites' IKE
policy and the POPs' responder configuration — each drawn from its own stream of the
run's seed, so a strategy replayed on the same seed sees the same world and failures.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from wansim.experiment.config import Distribution, ExperimentConfig
from wansim.ike.config import GatewayConfig, IkeConfig
from wansim.net import (
    AnycastParams,
    EmpiricalDelay,
    FixedDelay,
    LognormalDelay,
    PathParams,
    RoutingParams,
    World,
    build_world,
)
from wansim.sim.costs import CostTable
from wansim.sim.failures import PopFailure, merge_failures, random_failures, regional_failures
from wansim.sim.site import SitePolicy
from wansim.topology import ACCESS_PROFILES, load_pops, load_sites
from wansim.topology.sites import DEFAULT_ACCESS_MIX, generate_sites

#: Pre-shared key of every simulated tunnel (simulated, not a secret).
SIMULATION_PSK = "wansim-simulated-tunnel-psk"
#: Streams split from the run's seed, by purpose (SeedSequence spawn keys).
STREAM_WORLD, STREAM_FAILURES, STREAM_ROUTING, STREAM_NETWORK, STREAM_SITES = range(5)
STREAM_HEALTH = 5  # per-site phases of the tunnel health-check probes


def stream(seed: int, purpose: int, *index: int) -> np.random.Generator:
    """An independent generator for one purpose (and actor index) of a run."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose, *index)))


def convergence_delay(dist: Distribution) -> LognormalDelay | FixedDelay | EmpiricalDelay:
    """The config's convergence distribution as the routing model's delay type."""
    if dist.kind == "fixed":
        return FixedDelay(delay_s=dist.value)
    if dist.kind == "lognormal":  # p80 = median · exp(σ · z0.8)
        return LognormalDelay(
            median_s=dist.median, p80_s=dist.median * math.exp(dist.sigma * stats.norm.ppf(0.8))
        )
    p = np.linspace(0.0, 1.0, 201)
    p[-1] = 1.0 - 1e-6  # the top quantile of an unbounded distribution is finite
    if dist.kind == "exponential":
        d = stats.expon(scale=dist.mean).ppf(p)
    elif dist.kind == "uniform":
        d = stats.uniform(loc=dist.low, scale=dist.high - dist.low).ppf(p)
    else:  # weibull
        d = stats.weibull_min(dist.shape, scale=dist.scale).ppf(p)
    p[-1] = 1.0
    return EmpiricalDelay(quantiles=tuple(zip(p.tolist(), d.tolist(), strict=True)))


def build_world_from(config: ExperimentConfig, seed: int) -> World:
    """POPs, sites, backbone and catchments as the experiment describes them."""
    topo = config.topology
    pops = load_pops(topo.pops)
    keep = [
        code
        for code, region in zip(pops.codes, pops.regions, strict=True)
        if (topo.only is None or code in topo.only)
        and (topo.regions is None or region in topo.regions)
    ]
    pops = pops.subset(keep)
    overrides = {
        field: value
        for field, value in (
            ("delay_s", config.sites.access.delay),
            ("jitter_s", config.sites.access.jitter),
            ("loss", config.sites.access.loss),
            ("mtu_bytes", config.sites.access.mtu),
            ("bandwidth_bps", config.sites.access.bandwidth_bps),
            ("drops_fragments", config.sites.access.drops_fragments),
        )
        if value is not None
    }
    profiles = {n: p.model_copy(update=overrides) for n, p in ACCESS_PROFILES.items()}
    world_seq = np.random.SeedSequence(seed, spawn_key=(STREAM_WORLD,))
    if config.sites.file is not None:
        sites = load_sites(config.sites.file, profiles)
    else:
        sites = generate_sites(
            pops,
            config.sites.count,
            np.random.default_rng(world_seq.spawn(1)[0]),
            region_weights=config.sites.region_weights,
            mean_distance_km=config.sites.mean_distance_km,
            max_distance_km=config.sites.max_distance_km,
            access_mix=config.sites.access_mix or DEFAULT_ACCESS_MIX,
            profiles=profiles,
        )
    backbone = topo.backbone
    detection = config.anycast.detection
    routing = RoutingParams(
        bfd_detection_s=(detection.graceful, detection.graceful),
        hold_timer_detection_s=(detection.silent, detection.silent),
        silent_detection="hold-timer",
        convergence=convergence_delay(config.anycast.convergence),
    )
    return build_world(
        pops,
        sites,
        seed=world_seq,
        backbone=backbone.file,
        backbone_k=backbone.k_nearest,
        paths=PathParams(
            backbone_stretch=backbone.stretch, fibre_km_per_ms=backbone.fibre_km_per_ms
        ),
        anycast=AnycastParams(non_nearest_fraction=config.anycast.non_nearest_fraction),
        routing=routing,
    )


def world_failure_kind(kind: str, config: ExperimentConfig) -> str:
    """Map a config failure kind to the routing model's detection kind."""
    if kind == "graceful":
        return "bfd" if config.anycast.detection.graceful > 0 else "graceful"
    return "silent"


def failure_plan(config: ExperimentConfig, world: World, seed: int) -> tuple[PopFailure, ...]:
    """Scheduled, regional and random failures, merged per POP and sorted."""
    failures: list[PopFailure] = [
        PopFailure(f.at, f.pop, f.duration, f.kind, "scheduled") for f in config.failures.scheduled
    ]
    regions = dict(zip(world.pops.codes, world.pops.regions, strict=True))
    for f in config.failures.regional:
        failures += regional_failures(
            f.region, regions, at=f.at, duration_s=f.duration, kind=f.kind
        )
    random = config.failures.random
    if random is not None:
        failures += random_failures(
            world.pops.codes,
            mtbf=random.mtbf,
            mttr=random.mttr,
            horizon_s=config.run.duration,
            rng=stream(seed, STREAM_FAILURES),
            kind=random.kind,
        )
    return merge_failures(f for f in failures if f.at < config.run.duration)


def site_ike_config(config: ExperimentConfig) -> IkeConfig:
    ike = config.ike
    return IkeConfig(
        ike_proposals=ike.proposals,
        esp_proposals=ike.child.esp_proposals,
        psk=SIMULATION_PSK,
        local_id="branch.wansim.example",
        auth=ike.auth,
        max_message_bytes=ike.max_packet,
        fragmentation=ike.fragmentation,
        fragment_size=ike.fragment_size,
        port_4500=ike.port_4500,
        retransmit_timeout_s=ike.retransmit_timeout,
        retransmit_base=ike.retransmit_base,
        retransmit_tries=ike.retransmit_tries,
        backend=ike.backend,
    )


def pop_ike_config(config: ExperimentConfig) -> IkeConfig:
    ike = config.ike
    return IkeConfig(
        ike_proposals=ike.proposals,
        esp_proposals=ike.child.esp_proposals,
        psk=SIMULATION_PSK,
        local_id="pop.wansim.example",
        auth=ike.auth,
        max_message_bytes=ike.max_packet,
        fragmentation=ike.fragmentation,
        fragment_size=ike.fragment_size,
        half_open_timeout_s=config.pop.half_open_timeout,
        backend=ike.backend,
    )


def gateway_config(config: ExperimentConfig) -> GatewayConfig:
    threshold = config.pop.cookie_threshold
    return GatewayConfig(cookie_threshold=threshold if threshold > 0 else 2**62)


def site_policy(config: ExperimentConfig) -> SitePolicy:
    ike = config.ike
    return SitePolicy(
        ike=site_ike_config(config),
        proposal=ike.proposals[0],
        ike_rekey_s=ike.rekey_time,
        ike_rand_s=ike.rand_time,
        child_rekey_s=ike.child.rekey_time,
        child_rand_s=ike.child.rand_time,
        dpd_delay_s=ike.dpd_delay,
        dpd_action=ike.dpd_action,
        start_window_s=config.sites.start_window,
        health_interval_s=config.failover.health_check_interval,
        health_failures=config.failover.health_check_failures,
    )


def cost_table(config: ExperimentConfig, *, pop: bool = True) -> CostTable:
    """The experiment's cost profile; for POPs scaled by ``pop.cpu_scale`` (their hardware),
    for branch sites as measured."""
    name = config.pop.cost_profile
    table = CostTable.default() if name == "default" else CostTable.load(name)
    scale = config.pop.cpu_scale if pop else 1.0
    return table.scaled(scale) if scale != 1.0 else table
