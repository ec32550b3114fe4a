"""Fuzzing `receive_datagram`: mutations of every datagram of a real conversation (and
random bytes) fed to engines in every state. Whatever arrives, nothing but events comes
out: no exception escapes, an established SA keeps its keys, and a dropped datagram is
reported with a trigger."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ike_engine import configs, pair

from wansim.ike.config import GatewayConfig
from wansim.ike.events import DatagramDropped
from wansim.ike.gateway import Gateway
from wansim.ike.sa import IkeSa

HYBRID = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def conversation() -> tuple[tuple[str, bytes], ...]:
    """Every datagram of a fragmented hybrid handshake with Child and IKE rekeys."""
    h, wire, i, r = pair(*configs(HYBRID, "aes256gcm16-x25519-ke1_mlkem768",
                                  port_4500="always"))  # fmt: skip
    i.initiate(0.0)
    h.run()
    i.rekey_child(h.now)
    i.rekey_ike(h.now)
    i.send_liveness(h.now)
    h.run()
    return tuple((s.src, s.data) for s in h.wire)


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    datagrams = conversation()
    src, data = datagrams[draw(st.integers(0, len(datagrams) - 1))]
    kind = draw(st.sampled_from(["flip", "set", "truncate", "append", "insert", "splice",
                                 "header", "random"]))  # fmt: skip
    at = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
    elif kind == "set":
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif kind == "truncate":
        data = data[:at]
    elif kind == "append":
        data = data + draw(st.binary(min_size=1, max_size=64))
    elif kind == "insert":
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    elif kind == "splice":
        other = datagrams[draw(st.integers(0, len(datagrams) - 1))][1]
        data = data[:at] + other[at:]
    elif kind == "header":  # every header field of the IKE message (after a marker)
        base = 4 if data[:4] == b"\0\0\0\0" else 0
        field = base + draw(st.integers(0, 27))
        data = data[:field] + bytes([draw(st.integers(0, 255))]) + data[field + 1 :]
    else:
        data = draw(st.binary(max_size=300))
    return src, data


def _drain(endpoint) -> list:
    endpoint.datagrams_to_send(0.0)
    return list(iter(endpoint.next_event, None))


@cache
def established():
    h, wire, i, r = pair(*configs(HYBRID), seed=99)
    i.initiate(0.0)
    h.run()
    return i, r


@FUZZ
@given(mutated())
def test_established_endpoints_survive_any_datagram(item):
    i, r = established()
    keys = (i.keys, r.keys)
    target = r if item[0] == "i" else i
    target.receive_datagram(item[1], ("192.0.2.9", 4500), 10.0)
    for event in _drain(target):
        if isinstance(event, DatagramDropped):
            assert event.trigger
    assert (i.keys, r.keys) == keys and i.established and r.established


@FUZZ
@given(mutated())
def test_a_fresh_responder_survives_any_datagram(item):
    responder = IkeSa(
        configs(HYBRID)[1], initiator=False, local_addr=("192.0.2.2", 500),
        remote_addr=("192.0.2.1", 500), random_bytes=random.Random(1).randbytes,
    )  # fmt: skip
    responder.receive_datagram(item[1], ("192.0.2.1", 500), 1.0)
    _drain(responder)
    responder.handle_timer(100.0)
    assert responder.get_timer() is None


@cache
def gateway() -> Gateway:
    return Gateway(configs(HYBRID)[1], local_addr=("192.0.2.2", 500),
                   gateway=GatewayConfig(cookie_threshold=5),
                   random_bytes=random.Random(2).randbytes)  # fmt: skip


@FUZZ
@given(mutated(), st.sampled_from([500, 4500]))
def test_a_gateway_survives_any_datagram(item, port):
    g = gateway()
    g.receive_datagram(item[1], ("192.0.2.1", port), 2.0)
    _drain(g)
    g.handle_timer(40.0)  # half-open SAs created by valid-looking IKE_SA_INITs expire
    assert g.half_open_count == 0
