"""Paths and the simpy network: delays equal the formula, real bytes arrive on time,
IP fragmentation loss is 1 − (1 − p)^k, fragment-dropping paths, failover blackholes."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from wansim.net import (
    FixedDelay,
    Network,
    Path,
    PathParams,
    RoutingParams,
    build_world,
    ip_fragment_count,
    wire_bytes,
)
from wansim.topology import AccessProfile, SiteTable, great_circle_km, load_pops

EUROPE = ["LHR", "AMS", "FRA", "CDG", "MAD"]
LAB = AccessProfile(name="lab", delay_s=0.004, jitter_s=0.0, bandwidth_bps=10e6, loss=0.0,
                    mtu_bytes=1500)
LOSSY = AccessProfile(name="lossy", delay_s=0.004, jitter_s=0.0, bandwidth_bps=1e9, loss=0.05,
                      mtu_bytes=1500)
FILTERED = AccessProfile(name="filtered", delay_s=0.004, jitter_s=0.0, bandwidth_bps=1e9,
                         loss=0.0, mtu_bytes=1500, drops_fragments=True)
JITTERY = AccessProfile(name="jittery", delay_s=0.004, jitter_s=0.002, bandwidth_bps=1e9,
                        loss=0.0, mtu_bytes=1500)


def lab_world(access=("lab", "lossy", "filtered", "jittery"), **kwargs):
    pops = load_pops("cloudflare").subset(EUROPE)
    # Berlin, Munich, Hamburg, Cologne: all nearest to FRA or AMS
    lat = [52.520008, 48.137154, 53.551086, 50.937531][: len(access)]
    lon = [13.404954, 11.576124, 9.993682, 6.960279][: len(access)]
    sites = SiteTable(names=tuple(f"s{i}" for i in range(len(access))), lat=lat, lon=lon,
                      access=tuple(access),
                      profiles={p.name: p for p in (LAB, LOSSY, FILTERED, JITTERY)})
    return build_world(pops, sites, seed=1, **kwargs)


def test_site_pop_delay_equals_the_formula():
    world = build_world("cloudflare", 300, seed=4, paths=PathParams(internet_stretch=1.8,
                                                                      fibre_km_per_ms=200))
    sites = np.arange(300)
    pops = world.catchment()
    km = great_circle_km(world.sites.lat, world.sites.lon, world.pops.lat[pops],
                         world.pops.lon[pops])
    access = np.array([world.sites.profile(i).delay_s for i in sites])
    expected = km * 1.8 / 200 / 1000 + access
    np.testing.assert_allclose(world.site_pop_delay_s(sites, pops), expected, rtol=1e-12)
    np.testing.assert_allclose(world.rtt_s(sites, pops), 2 * expected, rtol=1e-12)
    path = world.site_pop_path(7, int(pops[7]))
    assert path.delay_s == pytest.approx(expected[7], rel=1e-12)
    elsewhere = (int(pops[7]) + 1) % len(world.pops)  # not a catchment POP: computed alone
    assert world.site_pop_path(7, elsewhere).delay_s == pytest.approx(
        float(world.site_pop_delay_s(7, elsewhere)), rel=1e-12)
    profile = world.sites.profile(7)
    assert (path.mtu_bytes, path.bandwidth_bps, path.jitter_s) == (
        min(profile.mtu_bytes, 1500), profile.bandwidth_bps, profile.jitter_s)


def test_site_to_site_path_is_access_backbone_access():
    world = lab_world(("lab", "lab"))
    a, b = 0, 1
    pa, pb = world.pops.index("FRA"), world.pops.index("LHR")
    path = world.site_site_path(a, b, via=(pa, pb))
    expected = (world.site_pop_delay_s(a, pa) + world.backbone.delay_matrix_s[pa, pb]
                + world.site_pop_delay_s(b, pb))
    assert path.delay_s == pytest.approx(float(expected))


@pytest.mark.parametrize(
    ("payload", "mtu", "fragments"),
    [(1472, 1500, 1), (1473, 1500, 2), (2952, 1500, 2), (2953, 1500, 3), (1464, 1492, 1),
     (1465, 1492, 2), (0, 576, 1), (10_000, 1280, 8)],
)
def test_ip_fragment_count(payload, mtu, fragments):
    assert ip_fragment_count(payload, mtu) == fragments
    assert wire_bytes(payload, mtu) == payload + 8 + 20 * fragments


@settings(deadline=None, max_examples=300)
@given(st.integers(0, 65_000), st.integers(576, 9000))
def test_fragments_fit_the_mtu(payload, mtu):
    k = ip_fragment_count(payload, mtu)
    per_fragment = (mtu - 20) // 8 * 8
    assert (k - 1) * per_fragment < payload + 8 <= k * per_fragment or k == 1
    assert Path(0.0, loss=0.1, mtu_bytes=mtu).delivery_probability(payload) == pytest.approx(
        0.9**k)


def wired(world, seed=1):
    """A network over `world` with every POP (on each anycast address) and every site
    attached, each logging (arrival, POP code or site index, anycast address, data, src).
    Returns (env, net, log, site endpoints)."""
    env = simpy.Environment()
    net = Network(env, world, rng=np.random.default_rng(seed))
    log: list = []
    for address in world.anycast_addresses:
        for code in world.pops.codes:
            net.attach(address, lambda data, src, code=code, a=address:
                       log.append((env.now, code, a, data, src)), pop=code)
    sites = [net.attach(world.site_ip(i), lambda data, src, i=i:
                        log.append((env.now, i, None, data, src)))
             for i in range(len(world.sites))]
    return env, net, log, sites


def test_real_bytes_arrive_after_the_computed_delay_both_ways():
    world = lab_world()
    env, net, log, sites = wired(world)
    anycast = world.anycast_addresses[0]
    pop = int(world.catchment(anycast)[0])
    payload = bytes(range(256)) * 4  # 1024 bytes, one IP packet
    sites[0].send(payload, (anycast, 500))
    env.run()
    (at, code, address, data, src), = log
    serialization = wire_bytes(1024, 1500) * 8 / 10e6
    assert data == payload and code == world.pops.codes[pop] and address == anycast
    assert src == (world.site_ip(0), 500)
    assert at == pytest.approx(float(world.site_pop_delay_s(0, pop)) + serialization, abs=1e-12)

    # the POP answers from the anycast address; downlink serialization at the site
    log.clear()
    pop_end = net.attach(world.pop_ip(pop), lambda *a: None)
    reply = b"\x00" * 3000  # three fragments on a 1500-byte path
    start = env.now
    pop_end.send(reply, (world.site_ip(0), 4500))
    env.run()
    (at, site, _, data, src), = log
    assert data == reply and site == 0 and src == (world.pop_ip(pop), 4500)
    assert at - start == pytest.approx(
        float(world.site_pop_delay_s(0, pop)) + wire_bytes(3000, 1500) * 8 / 10e6, abs=1e-12)


def test_access_link_serialises_back_to_back_datagrams():
    world = lab_world()
    env, net, log, sites = wired(world)
    anycast = world.anycast_addresses[0]
    for _ in range(3):
        sites[0].send(b"x" * 1000, (anycast, 500))
    env.run()
    gaps = np.diff([entry[0] for entry in log])
    np.testing.assert_allclose(gaps, wire_bytes(1000, 1500) * 8 / 10e6)


@pytest.mark.parametrize("payload", [1000, 2500, 5000])
def test_ip_fragment_loss_matches_one_minus_one_minus_p_to_the_k(payload):
    world = lab_world()
    env, net, log, sites = wired(world, seed=payload)
    anycast = world.anycast_addresses[0]
    n = 4000
    for _ in range(n):
        sites[1].send(b"\x01" * payload, (anycast, 4500))  # site 1 has 5 % loss
    env.run()
    k = ip_fragment_count(payload, 1500)
    expected = (1 - 0.05) ** k
    delivered = len(log)
    assert stats.binomtest(delivered, n, expected).pvalue > 0.001
    assert abs(delivered / n - expected) < 0.025
    assert all(d.reason == "lost" and d.fragments == k for d in net.drops)
    assert delivered + len(net.drops) == n


def test_fragment_dropping_path_drops_only_fragmented_datagrams():
    world = lab_world()
    env, net, log, sites = wired(world)
    anycast = world.anycast_addresses[0]
    sites[2].send(b"a" * 1472, (anycast, 500))  # fits
    sites[2].send(b"b" * 1473, (anycast, 500))  # two fragments: dropped
    env.run()
    assert [entry[3][:1] for entry in log] == [b"a"]
    (drop,) = net.drops
    assert (drop.reason, drop.fragments, drop.size_bytes) == ("fragments-dropped", 2, 1473)


def test_fragment_dropping_fraction_marks_random_sites():
    world = build_world("cloudflare", 2000, seed=3, fragment_dropping_fraction=0.25)
    assert 0.2 < world.drops_fragments.mean() < 0.3
    assert world.site_pop_path(0, 0).drops_fragments == bool(world.drops_fragments[0])


def test_jitter_is_seeded_and_positive():
    def arrivals(seed):
        world = lab_world()
        env, net, log, sites = wired(world, seed=seed)
        for _ in range(200):
            sites[3].send(b"j", (world.anycast_addresses[0], 500))
        env.run()
        return np.array(sorted(entry[0] for entry in log))

    a, b = arrivals(5), arrivals(5)
    np.testing.assert_array_equal(a, b)
    world = lab_world()
    base = float(world.site_pop_delay_s(3, int(world.catchment()[3])))
    extra = a - base
    assert (extra > 0).all() and 0.0015 < extra.mean() < 0.0025


def test_with_site_streams_a_sites_draws_ignore_other_sites_traffic():
    """Per-site streams: the lossy site's losses and the jittery site's arrivals are the
    same whether or not the other sites send (what splitting a run by site relies on)."""

    def run(others_send, streams=lambda i: np.random.default_rng(100 + i)):
        world = lab_world(access=("lossy", "lossy", "jittery", "jittery"))
        env = simpy.Environment()
        net = Network(env, world, rng=np.random.default_rng(0), site_streams=streams)
        log: list = []
        for code in world.pops.codes:
            net.attach(world.anycast_addresses[0],
                       lambda data, src, c=code: log.append((env.now, src[0])), pop=code)
        sites = [net.attach(world.site_ip(i), lambda data, src: None) for i in range(4)]
        for n in range(100):
            for i in (1, 3) if not others_send else (0, 1, 2, 3):
                sites[i].send(bytes(n % 7 + 1), (world.anycast_addresses[0], 500))
        env.run()
        lossy, jittery = world.site_ip(1), world.site_ip(3)
        return (sorted(t for t, ip in log if ip == jittery),
                sum(ip == lossy for _, ip in log), len(net.drops))

    alone, crowded = run(False), run(True)
    assert alone[:2] == crowded[:2] and 0 < alone[1] < 100
    assert crowded[2] > alone[2]  # the other lossy site lost datagrams too
    assert run(False, None)[:2] != run(True, None)[:2]  # one shared stream: they interfere


def test_failover_blackholes_then_delivers_to_the_next_pop():
    world = lab_world(routing=RoutingParams(convergence=FixedDelay(delay_s=5.0)))
    env, net, log, sites = wired(world)
    anycast = world.anycast_addresses[0]
    first = world.pops.codes[int(world.catchment(anycast)[0])]
    changes: list = []

    def scenario():
        yield env.timeout(1.0)
        changes.extend(c for c in net.fail_pop(first, "graceful") if c.address == anycast)
        sites[0].send(b"during", (anycast, 500))
        yield env.timeout(5.0)
        sites[0].send(b"after", (anycast, 500))
        yield env.timeout(10.0)
        net.recover_pop(first)
        yield env.timeout(6.0)
        sites[0].send(b"home", (anycast, 500))

    env.process(scenario())
    env.run()
    change = next(c for c in changes if c.site == "s0")
    assert change.converged_at == pytest.approx(6.0)
    assert [d.reason for d in net.drops] == ["blackholed"]
    delivered = {entry[3]: entry[1] for entry in log}
    assert delivered[b"after"] == change.to_pop != first
    assert delivered[b"home"] == first


def test_datagram_in_flight_to_a_failing_pop_is_lost():
    world = lab_world()
    env, net, log, sites = wired(world)
    anycast = world.anycast_addresses[0]
    pop = world.pops.codes[int(world.catchment(anycast)[0])]
    sites[0].send(b"doomed", (anycast, 500))
    net.fail_pop(pop, "silent")
    env.run()
    assert log == [] and [d.reason for d in net.drops] == ["pop-down"]
    # and a dead POP sends nothing
    dead = net.attach(world.pop_ip(world.pops.index(pop)), lambda *a: None)
    dead.send(b"ghost", (world.site_ip(0), 500))
    env.run()
    assert log == [] and [d.reason for d in net.drops] == ["pop-down", "pop-down"]


def test_unattached_and_unknown_destinations_are_recorded_drops():
    world = lab_world()
    env = simpy.Environment()
    traced: list = []
    net = Network(env, world, rng=np.random.default_rng(1), trace=traced.append)
    site = net.attach(world.site_ip(0), lambda *a: None)
    site.send(b"?", (world.anycast_addresses[0], 500))  # no POP endpoint attached
    site.send(b"?", ("192.0.2.77", 500))
    env.run()
    assert [d.reason for d in net.drops] == ["no-route", "no-endpoint"]
    assert [t.kind for t in traced] == ["dropped", "dropped"]
    with pytest.raises(ValueError, match="anycast"):
        net.attach(world.anycast_addresses[0], lambda *a: None)
    with pytest.raises(ValueError, match="already attached"):
        net.attach(world.site_ip(0), lambda *a: None)


def test_site_to_site_datagrams_cross_the_backbone_and_blackhole_with_a_pop():
    world = lab_world(("lab", "lab"), routing=RoutingParams(convergence=FixedDelay(delay_s=5.0)))
    env, net, log, (a, b) = wired(world)
    b.send(b"hi", (world.site_ip(0), 500))
    env.run()
    ((at, site, _, data, src),) = log
    path = world.site_site_path(1, 0)
    assert (site, data, src) == (0, b"hi", (world.site_ip(1), 500))
    assert at == pytest.approx(path.delay_s + 2 * wire_bytes(2, 1500) * 8 / 10e6)
    net.fail_pop(world.pops.codes[int(world.catchment()[0])], "graceful")
    b.send(b"lost", (world.site_ip(0), 500))
    env.run()
    assert [d.reason for d in net.drops] == ["blackholed"]


def test_addresses_locate_their_endpoints():
    world = lab_world()
    assert world.locate(world.site_ip(3)) == ("site", 3)
    assert world.locate(world.pop_ip(4)) == ("pop", 4)
    assert world.locate(world.anycast_addresses[1]) == ("anycast", world.anycast_addresses[1])
    for unknown in (world.site_ip(4), world.pop_ip(5), "192.0.2.1"):
        with pytest.raises(KeyError):
            world.locate(unknown)
