"""Failure paths of the engine: authentication, tampering, policy, bad ML-KEM data,
loss and retransmission, COOKIE and INVALID_KE_PAYLOAD round trips, rekey collisions."""

from __future__ import annotations

import random

import pytest
from ike_harness import Harness
from test_ike_engine import assert_same_keys, configs, handshake, pair

from wansim.crypto import get_kex
from wansim.ike.config import GatewayConfig
from wansim.ike.events import (
    AuthenticationFailed,
    ChildSaRekeyed,
    CookieDemanded,
    DatagramDropped,
    ExchangeCompleted,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
    KeyExchangeRedirected,
    NegotiationFailed,
    PeerDeclaredDead,
    RequestRetransmitted,
)
from wansim.ike.gateway import Gateway
from wansim.ike.loopback import engine_pair
from wansim.ike.sa import IkeSa, IkeStateError

HYBRID = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"


def test_wrong_psk_fails_authentication_on_both_ends():
    ci, cr = configs(HYBRID)
    h, wire, i, r = pair(ci, cr.model_copy(update={"psk": "not-the-same"}))
    i.initiate(0.0)
    h.run()
    (ri,) = h.of_type("r", AuthenticationFailed)
    (ii,) = h.of_type("i", AuthenticationFailed)
    assert ri.local and not ii.local
    assert not h.of_type("i", IkeSaEstablished) and not h.of_type("r", IkeSaEstablished)
    assert i.closed and r.closed
    assert [w.payloads for w in wire if w.exchange == "IKE_AUTH" and w.response] == [
        "SK{N(AUTHENTICATION_FAILED)}"
    ]


def test_unexpected_peer_identity_is_an_authentication_failure():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    h, wire, i, r = pair(ci, cr.model_copy(update={"remote_id": "someone.else"}))
    i.initiate(0.0)
    h.run()
    assert "identity" in h.of_type("r", AuthenticationFailed)[0].reason
    assert h.of_type("i", AuthenticationFailed)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def test_flipped_byte_in_every_protected_datagram_is_dropped_and_recovered():
    """Each protected datagram of a fragmented hybrid handshake plus both rekeys,
    corrupted once in turn: the receiver drops it (ICV) and the exchange completes
    after a retransmission, with identical keys — the drop changed no state."""
    ci, cr = configs(HYBRID, "aes256gcm16-x25519-ke1_mlkem768", port_4500="always")
    clean, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    clean.run()
    i.rekey_child(clean.now)
    i.rekey_ike(clean.now)
    clean.run()
    protected = [n for n, s in enumerate(clean.wire) if s.data[:4] == b"\0\0\0\0"]
    assert len(protected) >= 16
    for target in protected:

        def tamper(sent, index, target=target):
            # a byte of the encrypted part (ciphertext, IV or ICV)
            return _flip(sent.data, len(sent.data) - 20) if index == target else sent.data

        h, _, i, r = pair(ci, cr, tamper=tamper)
        i.initiate(0.0)
        h.run()
        i.rekey_child(h.now)
        i.rekey_ike(h.now)
        h.run()
        receiver = "r" if h.wire[target].src == "i" else "i"
        drops = h.of_type(receiver, DatagramDropped)
        assert drops[0].trigger == "icv_failure", target
        # a later fragment of the retransmitted request is not answered again (§5.1)
        assert {d.trigger for d in drops[1:]} <= {"retransmitted_fragment"}, target
        # one retransmission recovers; only the lost answer to the old IKE SA's Delete
        # (the peer has already forgotten that SA) is retried until the schedule ends
        assert len(h.of_type("i", RequestRetransmitted)) in (1, 5)
        assert not h.of_type("i", PeerDeclaredDead)
        assert len(h.of_type("i", IkeSaRekeyed)) == 1 and len(h.of_type("r", ChildSaRekeyed)) == 1
        assert_same_keys(i, r)


def test_a_dropped_datagram_leaves_the_state_untouched():
    ci, cr = configs(HYBRID)
    h, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    h.flush()
    # deliver IKE_SA_INIT by hand, then corrupt the IKE_INTERMEDIATE request
    for data, _ in [(s.data, s.dst_addr) for s in h.wire]:
        r.receive_datagram(data, ("192.0.2.1", 500), 0.01)
    for data, _ in r.datagrams_to_send(0.01):
        i.receive_datagram(data, ("192.0.2.2", 500), 0.02)
    (request,) = i.datagrams_to_send(0.02)
    before = (r.state, r.keys, r._gen.peer_mid, r._gen.cache)
    r.receive_datagram(_flip(request[0], 100), ("192.0.2.1", 500), 0.03)
    assert [type(e).__name__ for e in iter(r.next_event, None)][-1] == "DatagramDropped"
    assert (r.state, r.keys, r._gen.peer_mid, r._gen.cache) == before
    assert r.datagrams_to_send(0.03) == []
    r.receive_datagram(request[0], ("192.0.2.1", 500), 0.04)
    assert r.keys != before[1] and len(r.datagrams_to_send(0.04)) == 1


def test_garbage_and_unknown_spis_are_dropped_with_a_trigger():
    h, wire, i, r = handshake("aes256gcm16-prfsha256-x25519")
    for data in (b"", b"\x00" * 3, b"\xff", bytes(60), b"\x01" * 40):
        r.receive_datagram(data, ("192.0.2.1", 500), h.now)
    triggers = [e.trigger for e in iter(r.next_event, None) if isinstance(e, DatagramDropped)]
    assert triggers == ["parse_error", "parse_error", "nat_keepalive", "parse_error", "parse_error"]
    assert r.established


def test_pq_required_policy_refuses_a_classical_only_peer():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    h, wire, i, r = pair(ci, cr.model_copy(update={"require_pq": True}))
    i.initiate(0.0)
    h.run()
    (ri,) = h.of_type("r", NegotiationFailed)
    (ii,) = h.of_type("i", NegotiationFailed)
    assert ri.notify == ii.notify == "NO_PROPOSAL_CHOSEN"
    assert ri.local and not ii.local
    assert i.closed and r.closed
    assert [w.fragment_bytes for w in wire if w.response] == [(36,)]  # 28 + empty notify


def test_pq_required_initiator_accepts_hybrid_and_second_classical_proposal_is_skipped():
    ci, cr = configs(HYBRID, require_pq=True)
    ci = ci.model_copy(update={"ike_proposals": (HYBRID, "aes256gcm16-prfsha256-x25519")})
    h, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    h.run()
    assert h.of_type("i", IkeSaEstablished)[0].ke_methods == ("x25519", "mlkem768")


def test_int_auth_left_out_when_no_intermediate_exchange_happened():
    """Both announce INTERMEDIATE_EXCHANGE_SUPPORTED but the responder picks a
    classical proposal: AUTH must not include IntAuth (digest §2.3, libreswan #2834)."""
    ci, _ = configs(HYBRID)
    ci = ci.model_copy(update={"ike_proposals": (HYBRID, "aes256gcm16-prfsha256-x25519")})
    _, cr = configs("aes256gcm16-prfsha256-x25519")
    cr = cr.model_copy(update={"ike_proposals": ("aes256gcm16-prfsha256-x25519", HYBRID)})
    h, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    h.run()
    assert "INTERMEDIATE_EXCHANGE_SUPPORTED" in wire[1].payloads
    assert not [w for w in wire if w.exchange == "IKE_INTERMEDIATE"]
    assert h.of_type("i", IkeSaEstablished) and h.of_type("r", IkeSaEstablished)


class _Truncating:
    """A key exchange whose shares of one role come out one byte short."""

    def __init__(self, token: str, role: str) -> None:
        self._kex = get_kex(token)
        self._role = role
        self.method_id = self._kex.method_id
        self.token = token

    def initiate(self):
        pending = self._kex.initiate()
        if self._role != "initiator":
            return pending

        class Short:
            share = pending.share[:-1]
            finish = staticmethod(pending.finish)

        return Short()

    def respond(self, peer_share):
        share, secret = self._kex.respond(peer_share)
        return (share[:-1] if self._role == "responder" else share), secret


def _factory(bad: str, role: str):
    return lambda token: _Truncating(token, role) if token == bad else get_kex(token)


def _with_factories(ci, cr, fi, fr):
    h = engine_pair(ci, cr, random.Random(3).randbytes, initiator_options={"kex_factory": fi},
                    responder_options={"kex_factory": fr})  # fmt: skip
    return h, h.initiator, h.responder


def test_short_mlkem_encapsulation_key_is_answered_with_invalid_syntax():
    """draft-ietf-ipsecme-ikev2-mlkem §3 (digest §1.5): the responder checks the
    encapsulation key (FIPS 203 §7.2) and SHOULD answer INVALID_SYNTAX."""
    h, i, r = _with_factories(*configs(HYBRID), _factory("mlkem768", "initiator"), None)
    i.initiate(0.0)
    h.run()
    (ri,) = h.of_type("r", NegotiationFailed)
    (ii,) = h.of_type("i", NegotiationFailed)
    assert ri.notify == ii.notify == "INVALID_SYNTAX" and ri.exchange == "IKE_INTERMEDIATE"
    assert i.closed and r.closed and not h.of_type("i", IkeSaEstablished)


def test_short_mlkem_ciphertext_aborts_the_sa_without_ike_auth():
    """Digest §1.5: the initiator's FIPS 203 §7.3 length check fails: abort, no IKE_AUTH."""
    h, i, r = _with_factories(*configs(HYBRID), None, _factory("mlkem768", "responder"))
    i.initiate(0.0)
    h.run(until=60.0)
    (ii,) = h.of_type("i", NegotiationFailed)
    assert ii.exchange == "IKE_INTERMEDIATE" and "key exchange failed" in ii.reason
    assert i.closed
    assert not [s for s in h.wire if s.src == "i" and len(s.data) < 1000 and s.at > 0.02]


def test_short_mlkem_ciphertext_in_a_rekey_deletes_the_ike_sa():
    ci, cr = configs(HYBRID, "aes256gcm16-x25519-ke1_mlkem768")
    h, i, r = _with_factories(ci, cr, None, _factory("mlkem768", "responder"))
    # the handshake's own IKE_INTERMEDIATE would fail too: use a classical IKE SA
    ci2, cr2 = configs("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519-ke1_mlkem768")
    h, i, r = _with_factories(ci2, cr2, None, _factory("mlkem768", "responder"))
    i.initiate(0.0)
    h.run()
    i.rekey_child(h.now)
    h.run()
    assert h.of_type("i", NegotiationFailed)[0].exchange == "CREATE_CHILD_SA"
    assert [e.reason for e in h.of_type("i", IkeSaDeleted)] == ["delete"]
    assert [e.by_peer for e in h.of_type("r", IkeSaDeleted)] == [True]


def test_lost_datagrams_follow_the_retransmission_schedule_then_give_up():
    h, wire, i, r = pair(*configs("aes256gcm16-prfsha256-x25519"), tamper=lambda s, n: None)
    i.initiate(0.0)
    h.run()
    sends = [round(s.at, 2) for s in h.wire]
    assert sends == [0.0, 4.0, 11.2, 24.16, 47.49, 89.48]
    (dead,) = h.of_type("i", PeerDeclaredDead)
    assert dead.at == pytest.approx(165.06, abs=0.01) and dead.transmissions == 6
    assert i.closed and i.get_timer() is None


def test_custom_schedule_and_liveness_detects_a_dead_peer():
    ci, cr = configs(
        "aes256gcm16-prfsha256-x25519",
        retransmit_timeout_s=0.5,
        retransmit_base=2.0,
        retransmit_tries=3,
    )
    dead = {"on": False}
    h, wire, i, r = pair(ci, cr, tamper=lambda s, n: None if dead["on"] else s.data)
    i.initiate(0.0)
    h.run()
    dead["on"] = True
    start = h.now
    i.send_liveness(start)
    h.run()
    (event,) = h.of_type("i", PeerDeclaredDead)
    assert event.exchange == "INFORMATIONAL"
    assert event.at - start == pytest.approx(0.5 + 1 + 2 + 4)


def test_responder_forgets_a_half_open_sa_after_30_s():
    h, wire, i, r = pair(
        *configs("aes256gcm16-prfsha256-x25519"),
        tamper=lambda s, n: s.data if s.src == "i" else None,
    )
    i.initiate(0.0)
    h.run(until=40.0)
    (gone,) = h.of_type("r", IkeSaDeleted)
    assert gone.reason == "half_open_timeout" and gone.at == pytest.approx(30.01)


def test_lost_intermediate_response_is_answered_from_the_cache_across_the_key_change():
    """The responder has moved to SK_*(1) when the retransmitted request (under SK_*(0))
    arrives: it recognises it by its hash and resends the cached response (§2.2)."""
    ci, cr = configs(HYBRID, port_4500="always")
    lost = []

    def tamper(sent, index):
        if sent.src == "r" and len(sent.data) > 1000 and not lost:
            lost.append(index)
            return None
        return sent.data

    h, wire, i, r = pair(ci, cr, tamper=tamper)
    i.initiate(0.0)
    h.run()
    assert lost and h.of_type("i", IkeSaEstablished)
    (inter,) = [e for e in h.of_type("i", ExchangeCompleted) if e.exchange == "IKE_INTERMEDIATE"]
    assert inter.transmissions == 2 and inter.request_datagrams == 2
    # fragment 2 of the retransmission is ignored, fragment 1 triggers the resend
    assert [e.trigger for e in h.of_type("r", DatagramDropped)] == ["retransmitted_fragment"]
    assert_same_keys(i, r)


def _established_at(h, side="i"):
    return h.of_type(side, IkeSaEstablished)[0]


def _handshake_with_gateway(ci, cr, cookie_threshold: int):
    """One handshake from an `IkeSa` to a `Gateway` that demands cookies from
    `cookie_threshold` half-open SAs on; returns (harness, initiator, gateway)."""
    rng = random.Random(5)
    i = IkeSa(ci, initiator=True, local_addr=("192.0.2.1", 500), remote_addr=("192.0.2.2", 500),
              random_bytes=rng.randbytes)  # fmt: skip
    g = Gateway(cr, local_addr=("192.0.2.2", 500), random_bytes=rng.randbytes,
                gateway=GatewayConfig(cookie_threshold=cookie_threshold))  # fmt: skip
    h = Harness(i, g)
    i.initiate(0.0)
    h.run()
    return h, i, g


def test_cookie_adds_exactly_one_round_trip():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    for threshold, rtts in ((30, 2), (0, 3)):
        h, i, g = _handshake_with_gateway(ci, cr, threshold)
        est = _established_at(h)
        assert est.round_trips == rtts and est.at == pytest.approx(rtts * 0.02)
        assert len(h.of_type("i", CookieDemanded)) == rtts - 2
        assert g.sas[0].keys == i.keys and g.half_open_count == 0


def test_invalid_ke_payload_adds_exactly_one_round_trip_then_cookie_and_invalid_ke_two():
    ci, _ = configs("aes256gcm16-prfsha256-x25519-ecp256")
    _, cr = configs("aes256gcm16-prfsha256-ecp256")
    for threshold, rtts in ((30, 3), (0, 4)):
        h, i, g = _handshake_with_gateway(ci, cr, threshold)
        est = _established_at(h)
        assert est.round_trips == rtts and est.ke_methods == ("ecp256",)
        (redirect,) = h.of_type("i", KeyExchangeRedirected)
        assert (redirect.offered, redirect.wanted) == ("x25519", "ecp256")
        assert g.sas[0].keys == i.keys
        assert [len(s.data) for s in h.wire if s.src == "r"][threshold == 0] == 38


def test_simultaneous_rekeys_are_refused_then_retried_without_deadlock():
    for kind in ("rekey_child", "rekey_ike"):
        h, wire, i, r = handshake(HYBRID, "aes256gcm16-x25519-ke1_mlkem768")
        getattr(i, kind)(h.now)
        getattr(r, kind)(h.now)
        h.run()
        for side in "ir":
            refused = h.of_type(side, NegotiationFailed)
            assert [e.notify for e in refused] == ["TEMPORARY_FAILURE"]
        done = ChildSaRekeyed if kind == "rekey_child" else IkeSaRekeyed
        assert 1 <= len(h.of_type("i", done)) <= 2
        assert len(h.of_type("i", done)) == len(h.of_type("r", done))
        assert_same_keys(i, r)
        assert i.get_timer() is None and r.get_timer() is None


def test_commands_need_an_established_sa():
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    h, wire, i, r = pair(ci, cr)
    with pytest.raises(IkeStateError):
        i.rekey_ike(0.0)
    with pytest.raises(IkeStateError):
        r.initiate(0.0)
    i.initiate(0.0)
    with pytest.raises(IkeStateError):
        i.initiate(0.0)


def test_unknown_critical_payload_is_refused_and_a_non_critical_one_skipped():
    """RFC 7296 §2.5: an unknown payload with the critical bit rejects the message with
    UNSUPPORTED_CRITICAL_PAYLOAD (data: the payload type); without it, it is ignored."""
    from wansim.ike.constants import ExchangeType
    from wansim.ike.payloads import UnknownPayload

    h, wire, i, r = handshake("aes256gcm16-prfsha256-x25519")
    for critical, answer in ((True, "SK{N(UNSUPPORTED_CRITICAL_PAYLOAD)}"), (False, "SK{}")):
        i._request(
            i._gen,
            ExchangeType.INFORMATIONAL,
            [UnknownPayload(99, b"abc", critical=critical)],
            h.now,
            lambda *a: None,
        )
        h.run()
        assert wire[-1].payloads == answer
    (refused,) = h.of_type("r", NegotiationFailed)
    assert refused.notify == "UNSUPPORTED_CRITICAL_PAYLOAD" and r.established


def test_invalid_ke_payload_in_a_child_rekey_is_retried_with_the_wanted_group():
    ci, _ = configs("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519-ecp256")
    _, cr = configs("aes256gcm16-prfsha256-x25519", "aes256gcm16-ecp256")
    h, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    h.run()
    i.rekey_child(h.now)
    h.run()
    (redirect,) = h.of_type("i", KeyExchangeRedirected)
    assert (redirect.exchange, redirect.offered, redirect.wanted) == (
        "CREATE_CHILD_SA", "x25519", "ecp256")  # fmt: skip
    (rekeyed,) = h.of_type("i", ChildSaRekeyed)
    assert rekeyed.ke_methods == ("ecp256",)
    assert_same_keys(i, r)
    assert [w.payloads for w in wire if w.exchange == "CREATE_CHILD_SA" and w.response][0] == (
        "SK{N(INVALID_KE_PAYLOAD)}"
    )


def test_an_acceptable_kei_guess_is_taken_without_an_invalid_ke_round_trip():
    """The responder prefers x25519 but also accepts the initiator's ecp256 guess: it
    answers with ecp256 instead of asking for x25519 (one round trip saved)."""
    ci, _ = configs("aes256gcm16-prfsha256-ecp256-x25519")
    _, cr = configs("aes256gcm16-prfsha256-x25519-ecp256")
    h, wire, i, r = pair(ci, cr)
    i.initiate(0.0)
    h.run()
    established = h.of_type("i", IkeSaEstablished)[0]
    assert established.ke_methods == ("ecp256",) and established.round_trips == 2
    assert not h.of_type("i", KeyExchangeRedirected)


def test_followup_with_an_unknown_link_gets_state_not_found():
    """RFC 9370 §2.2.3: an IKE_FOLLOWUP_KE whose ADDITIONAL_KEY_EXCHANGE link matches no
    pending CREATE_CHILD_SA is answered with STATE_NOT_FOUND."""
    from wansim.ike.constants import ExchangeType, NotifyType
    from wansim.ike.payloads import KeyExchange, Notify

    h, wire, i, r = handshake(HYBRID)
    share = get_kex("mlkem768").initiate().share
    payloads = [KeyExchange(36, share), Notify(NotifyType.ADDITIONAL_KEY_EXCHANGE, b"\x99")]
    i._request(i._gen, ExchangeType.IKE_FOLLOWUP_KE, payloads, h.now, lambda *a: None)
    h.run()
    assert wire[-1].payloads == "SK{N(STATE_NOT_FOUND)}"
    assert r.established and i.established


def test_a_cookie_retry_repeats_the_request_with_only_the_cookie_added():
    """RFC 7296 §2.6: the retry carries N(COOKIE) first and the rest unchanged (same
    SPIi, KEi and Ni), so no second key generation is charged."""
    ci, cr = configs("aes256gcm16-prfsha256-x25519")
    h, i, g = _handshake_with_gateway(ci, cr, cookie_threshold=0)
    first, second = [s.data for s in h.wire if s.src == "i"][:2]
    cookie = 4 + 4 + 32  # Notify header, protocol/SPI size/type, SHA-256
    assert len(second) == len(first) + cookie
    assert second[:16] == first[:16] and second[28 + cookie :] == first[28:]
    ops = [e.crypto_ops for e in h.of_type("i", ExchangeCompleted) if e.exchange == "IKE_SA_INIT"]
    assert ops == [(("x25519", "initiate"),), (("x25519", "finish"),)]
