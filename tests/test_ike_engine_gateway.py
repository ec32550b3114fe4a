"""The responder Gateway (many IKE SAs behind one address) and NAT traversal."""

from __future__ import annotations

import random

import pytest
from ike_harness import Harness
from test_ike_engine import assert_same_keys, configs

from wansim.ike.config import GatewayConfig
from wansim.ike.events import (
    AuthenticationFailed,
    DatagramDropped,
    IkeSaEstablished,
    IkeSaRekeyed,
)
from wansim.ike.gateway import Gateway
from wansim.ike.sa import IkeSa

HYBRID = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"


def _initiator(config, addr, seed):
    return IkeSa(config, initiator=True, local_addr=addr, remote_addr=("192.0.2.2", 500),
                 random_bytes=random.Random(seed).randbytes)  # fmt: skip


def test_gateway_serves_several_initiators_and_follows_ike_rekeys():
    ci, cr = configs(HYBRID)
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(9).randbytes)
    initiators = [_initiator(ci, (f"192.0.2.{10 + n}", 500), n) for n in range(3)]
    for n, i in enumerate(initiators):
        h = Harness(i, g, initiator_addr=(f"192.0.2.{10 + n}", 500))
        i.initiate(0.0)
        h.run()
        assert h.of_type("i", IkeSaEstablished)
    assert len(g.sas) == 3 and g.half_open_count == 0
    for i in initiators:
        assert g.sa_for(i.ike_spis[1]).keys == i.keys
    # an IKE rekey moves the SA to new SPIs; the gateway demultiplexes on them
    first = initiators[0]
    h = Harness(first, g, initiator_addr=("192.0.2.10", 500))
    first.rekey_ike(0.0)
    h.run()
    assert h.of_type("i", IkeSaRekeyed) and g.sa_for(first.ike_spis[1]).keys == first.keys
    assert len(g.sas) == 3
    first.send_liveness(h.now)
    h.run()
    assert not h.of_type("r", DatagramDropped)


def test_retransmitted_ike_sa_init_is_answered_from_the_cache():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(9).randbytes)
    i = _initiator(ci, ("192.0.2.1", 500), 1)
    lost = []

    def tamper(sent, index):
        if sent.src == "r" and not lost:
            lost.append(index)
            return None
        return sent.data

    h = Harness(i, g, tamper=tamper)
    i.initiate(0.0)
    h.run()
    responses = [s.data for s in h.wire if s.src == "r"][:2]
    assert responses[0] == responses[1]  # the same bytes again, not a new SA
    assert len(g.sas) == 1 and g.sas[0].keys == i.keys
    assert h.of_type("i", IkeSaEstablished)[0].at == pytest.approx(4.0 + 0.04)


def test_half_open_sas_count_and_expire_and_unknown_spis_are_dropped():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(9).randbytes,
                gateway=GatewayConfig(cookie_threshold=2))  # fmt: skip
    for n in range(4):  # initiators that never answer
        i = _initiator(ci, ("192.0.2.1", 500), n)
        i.initiate(0.0)
        ((data, _),) = i.datagrams_to_send(0.0)
        g.receive_datagram(data, ("192.0.2.1", 500 + n), 0.0)
    assert g.half_open_count == 2 and g.cookies_sent == 2
    assert g.get_timer() == 30.0
    g.handle_timer(30.0)
    assert g.half_open_count == 0 and g.get_timer() is None
    g.receive_datagram(bytes(range(1, 9)) * 2 + bytes(20), ("192.0.2.1", 500), 31.0)
    events = list(iter(g.next_event, None))
    assert isinstance(events[-1], DatagramDropped)


def test_each_ingress_is_cookie_limited_by_its_own_half_open_sas():
    """POPs sharing one replicated SA database admit against their own half-open count."""
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(9).randbytes,
                gateway=GatewayConfig(cookie_threshold=2))  # fmt: skip
    for n, ingress in enumerate(["FRA", "FRA", "AMS", "FRA", "AMS"]):
        i = _initiator(ci, ("192.0.2.1", 500), n)
        i.initiate(0.0)
        ((data, _),) = i.datagrams_to_send(0.0)
        g.receive_datagram(data, ("192.0.2.1", 500 + n), 0.0, ingress=ingress)
    assert (g.half_open_at("FRA"), g.half_open_at("AMS"), g.half_open_at("SIN")) == (2, 2, 0)
    assert g.half_open_count == 4 and g.cookies_sent == 1  # only FRA's third was challenged
    g.handle_timer(30.0)
    assert g.half_open_at("FRA") == g.half_open_at("AMS") == 0


def test_every_sa_of_a_gateway_signs_with_the_gateways_one_certificate():
    """A daemon holds one certificate: given credentials, every SA uses them (here a
    certificate that does not match the key, so every initiator must reject the AUTH)."""
    from wansim.crypto.signatures import make_credentials

    ci, cr = configs("aes256gcm16-prfsha256-x25519", auth="ecdsa-p256")
    for credentials, ok in ((make_credentials("ecdsa-p256", "pop"), True),
                            ((make_credentials("ecdsa-p256", "pop")[0],
                              make_credentials("ecdsa-p256", "pop")[1]), False)):  # fmt: skip
        g = Gateway(cr, local_addr=("192.0.2.2", 500), credentials=credentials,
                    random_bytes=random.Random(9).randbytes)  # fmt: skip
        for n in range(2):
            i = _initiator(ci, (f"192.0.2.{10 + n}", 500), n)
            h = Harness(i, g, initiator_addr=(f"192.0.2.{10 + n}", 500))
            i.initiate(0.0)
            h.run()
            assert bool(h.of_type("i", IkeSaEstablished)) is ok
            assert bool(h.of_type("i", AuthenticationFailed)) is not ok


def test_nat_is_detected_and_the_sa_floats_to_port_4500():
    """NAT_DETECTION hashes (SHA-1 of SPIs, IP, port; RFC 7296 §2.23) differ when the
    initiator's own address is translated: both detect it, everything after IKE_SA_INIT
    goes to UDP 4500 with the non-ESP marker (RFC 3948)."""
    ci, cr = configs(HYBRID)
    i = IkeSa(ci, initiator=True, local_addr=("10.0.0.1", 500), remote_addr=("192.0.2.2", 500),
              random_bytes=random.Random(3).randbytes)  # fmt: skip
    r = IkeSa(cr, initiator=False, local_addr=("192.0.2.2", 500),
              remote_addr=("192.0.2.1", 500), random_bytes=random.Random(4).randbytes)  # fmt: skip
    h = Harness(i, r)  # the harness delivers from 192.0.2.1: a NAT in between
    i.initiate(0.0)
    h.run()
    for side in "ir":
        (established,) = h.of_type(side, IkeSaEstablished)
        assert established.nat_detected and established.port == 4500
    ports = [s.dst_addr[1] for s in h.wire]
    markers = [s.data[:4] == b"\0\0\0\0" for s in h.wire]
    assert ports[:2] == [500, 500] and set(ports[2:]) == {4500}
    assert markers[:2] == [False, False] and all(markers[2:])
    assert_same_keys(i, r)


def test_no_nat_stays_on_port_500():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    i = _initiator(ci, ("192.0.2.1", 500), 1)
    r = IkeSa(cr, initiator=False, local_addr=("192.0.2.2", 500),
              remote_addr=("192.0.2.1", 500), random_bytes=random.Random(4).randbytes)  # fmt: skip
    h = Harness(i, r)
    i.initiate(0.0)
    h.run()
    assert {s.dst_addr[1] for s in h.wire} == {500}
    assert not h.of_type("i", IkeSaEstablished)[0].nat_detected


def test_the_gateway_can_rekey_and_delete_its_sas():
    ci, cr = configs(HYBRID, "aes256gcm16-x25519-ke1_mlkem768")
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=random.Random(9).randbytes)
    i = _initiator(ci, ("192.0.2.1", 500), 1)
    h = Harness(i, g)
    i.initiate(0.0)
    h.run()
    g.rekey_child(i.ike_spis[1], h.now)
    h.run()
    g.rekey_ike(i.ike_spis[1], h.now)  # the POP's SA initiates: it becomes the new initiator
    h.run()
    (rekeyed,) = h.of_type("i", IkeSaRekeyed)
    assert g.sa_for(rekeyed.new_ike_spis[0]).keys == i.keys  # our SPI is SPIi now
    assert_same_keys(i, g.sa_for(rekeyed.new_ike_spis[0]))
    g.delete(rekeyed.new_ike_spis[0], h.now)
    h.run()
    assert i.closed and not g.sas


def test_ipv6_endpoints_and_selectors():
    """IPv6 addresses (NAT-D over 16-byte addresses), IPv6 selectors, and fragments sized
    for a 40-byte IP header: 1280 - 40 - 8 = 1232-byte datagrams on port 4500."""
    ci, cr = configs(HYBRID, port_4500="always")
    ci = ci.model_copy(update={"local_ts": ("2001:db8:1::/48",), "remote_ts": ("2001:db8:2::/48",)})
    cr = cr.model_copy(update={"local_ts": ("2001:db8:2::/48",), "remote_ts": ("2001:db8:1::/48",)})
    a, b = ("2001:db8::1", 500), ("2001:db8::2", 500)
    i = IkeSa(ci, initiator=True, local_addr=a, remote_addr=b,
              random_bytes=random.Random(1).randbytes)  # fmt: skip
    r = IkeSa(cr, initiator=False, local_addr=b, remote_addr=a,
              random_bytes=random.Random(2).randbytes)  # fmt: skip
    h = Harness(i, r, initiator_addr=a, responder_addr=b)
    i.initiate(0.0)
    h.run()
    assert i.established and r.established and not i.nat_detected
    assert max(len(s.data) for s in h.wire) == 1232
    (child,) = i.children.values()
    assert (child.local_ts, child.remote_ts) == (("2001:db8:1::/48",), ("2001:db8:2::/48",))
    assert_same_keys(i, r)
