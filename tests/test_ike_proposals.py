"""Proposal strings (strongSwan keyword semantics), SA payloads and selection
(RFC 7296 §3.3, RFC 9370 §2.2), checked against strongSwan 6.1's own IKE_SA_INIT."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.vectors import load_strongswan_run, requires_vectors
from wansim.ike.constants import KeMethod, ProtocolId, TransformType
from wansim.ike.message import Message
from wansim.ike.payloads import Attribute, Proposal, SecurityAssociation, Transform
from wansim.ike.proposals import (
    InvalidChosenProposal,
    ProposalSyntaxError,
    accept_chosen,
    ke_token,
    parse_proposal,
    parse_proposals,
    sa_payload,
    select_proposal,
)


def triples(spec):
    return [(int(t.type), int(t.id), t.key_length) for t in spec.transforms]


@pytest.mark.parametrize(
    ("text", "protocol", "expected"),
    [
        (
            "aes256gcm16-prfsha384-ecp384-ke1_mlkem768",
            "ike",
            [(1, 20, 256), (2, 6, None), (4, 20, None), (6, 36, None)],
        ),
        (
            "aes256-sha256-x25519-ke1_mlkem768-ke2_mlkem1024",
            "ike",  # sha256: INTEG 12 and, with no prf given, PRF 5
            [
                (1, 12, 256),
                (3, 12, None),
                (2, 5, None),
                (4, 31, None),
                (6, 36, None),
                (7, 37, None),
            ],
        ),
        ("aes128gcm16-prfsha256-x25519", "ike", [(1, 20, 128), (2, 5, None), (4, 31, None)]),
        ("aes256gcm16-sha256-curve25519", "ike", [(1, 20, 256), (2, 5, None), (4, 31, None)]),
        (
            "AES128-SHA512-MODP2048",
            "ike",
            [(1, 12, 128), (3, 14, None), (2, 7, None), (4, 14, None)],
        ),
        ("aes128gcm128-prfsha256-mlkem512", "ike", [(1, 20, 128), (2, 5, None), (4, 35, None)]),
        (
            "aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke1_mlkem1024-ke1_none",
            "ike",
            [(1, 20, 256), (2, 5, None), (4, 19, None), (6, 36, None), (6, 37, None), (6, 0, None)],
        ),
        (
            "aes256gcm16-prfsha256-x25519-ke2_mlkem1024-ke1_mlkem768",  # grouped by type
            "ike",
            [(1, 20, 256), (2, 5, None), (4, 31, None), (6, 36, None), (7, 37, None)],
        ),
        (
            "aes256gcm16-x25519-ke1_mlkem768",
            "esp",
            [(1, 20, 256), (4, 31, None), (6, 36, None), (5, 0, None)],
        ),
        ("aes256-sha256-esn", "esp", [(1, 12, 256), (3, 12, None), (5, 1, None)]),
        ("aes128gcm16-prfsha256-noesn", "esp", [(1, 20, 128), (5, 0, None)]),
        (
            "aes-sha256-x25519-none",
            "ike",
            [(1, 12, 128), (3, 12, None), (2, 5, None), (4, 31, None)],
        ),
        ("aes256gcm-x25519-none", "esp", [(1, 20, 256), (4, 31, None), (4, 0, None), (5, 0, None)]),
        (
            "aes256-aes128-sha384-esn-noesn",
            "esp",
            [(1, 12, 256), (1, 12, 128), (3, 13, None), (5, 1, None), (5, 0, None)],
        ),
    ],
)
def test_parse(text, protocol, expected):
    spec = parse_proposal(text, protocol)
    assert triples(spec) == expected
    assert parse_proposal(str(spec), protocol) == spec


@pytest.mark.parametrize(
    ("text", "protocol", "message"),
    [
        ("aes256gmc16-prfsha256-x25519", "ike", "unknown algorithm 'aes256gmc16' \\(did you mean"),
        ("aes256gcm16-prfsha256-x25519-mlkem786", "ike", "did you mean 'mlkem768'"),
        ("aes256gcm16-prfsha256-x25519-ke8_mlkem768", "ike", "ke1_ .. ke7_"),
        (
            "aes256gcm16-prfsha256-x25519-ke1_kyber768",
            "ike",
            "unknown key exchange method 'kyber768'",
        ),
        ("aes256gcm16-x25519", "ike", "needs a PRF"),
        ("aes256gcm16-prfsha256", "ike", "needs a key exchange method"),
        ("aes256-prfsha256-x25519", "ike", "needs an integrity algorithm"),
        ("aes256-sha256", "esp", "needs an integrity|"),
        ("aes256-aes256gcm16-sha256-x25519", "ike", "cannot share"),
        ("prfsha256-x25519", "ike", "needs an encryption algorithm"),
        ("aes256gcm16--x25519", "ike", "empty"),
        ("", "ike", "empty"),
        ("aes256gcm16-prfsha256-x25519-esn", "ike", "unknown algorithm 'esn'"),
    ],
)
def test_parse_errors_name_the_problem(text, protocol, message):
    if message.endswith("|"):  # a valid ESP string: sanity check of the table itself
        parse_proposal(text, protocol)
        return
    with pytest.raises(ProposalSyntaxError, match=message) as caught:
        parse_proposal(text, protocol)
    if "unknown algorithm" in message:
        assert "valid: aes128, aes256" in str(caught.value)


def test_protocol_argument():
    with pytest.raises(ValueError, match="'ike' or 'esp'"):
        parse_proposal("aes256gcm16", "ipcomp")
    with pytest.raises(ValueError, match="IKE or ESP"):
        parse_proposal("aes256gcm16", ProtocolId.AH)


def test_several_proposals_and_sa_numbering():
    text = "aes256gcm16-prfsha256-x25519-ke1_mlkem768, aes128gcm16-prfsha256-x25519"
    specs = parse_proposals(text)
    assert specs == parse_proposals([s.strip() for s in text.split(",")])
    sa = sa_payload(specs, spi=b"\x11" * 8)
    assert [p.number for p in sa.proposals] == [1, 2]
    assert all(p.spi == b"\x11" * 8 for p in sa.proposals)
    assert SecurityAssociation.from_bytes(sa.to_bytes()) == sa
    with pytest.raises(ProposalSyntaxError):
        parse_proposals("aes256gcm16-prfsha256-x25519,")
    with pytest.raises(ValueError):
        sa_payload(())


def test_skip_ke_for_the_child_sa_of_ike_auth():
    (esp,) = parse_proposals("aes256gcm16-x25519-ke1_mlkem768", "esp")
    proposal = esp.to_proposal(1, b"\x93\xc2\x15\x38", skip_ke=True)
    assert [int(t.type) for t in proposal.transforms] == [1, 5]


def test_ke_token():
    assert ke_token(KeMethod.ML_KEM_768) == "mlkem768" and ke_token(31) == "x25519"
    with pytest.raises(ValueError):
        ke_token(KeMethod.CURVE448)


@requires_vectors
def test_sa_payloads_match_strongswan_byte_for_byte():
    run = load_strongswan_run()
    request = Message.from_bytes(run.frame(1).ike)
    response = Message.from_bytes(run.frame(2).ike)
    configured = parse_proposals("aes256gcm16-prfsha256-x25519-ke1_mlkem768")
    assert sa_payload(configured).to_bytes() == request.find(SecurityAssociation).to_bytes()
    chosen = select_proposal(request.find(SecurityAssociation).proposals, configured)
    answer = response.find(SecurityAssociation).proposals[0]
    assert chosen.to_proposal() == answer
    assert accept_chosen(answer, configured) == chosen
    assert str(chosen) == "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519/KE1_ML_KEM_768"


# --- selection matrix --------------------------------------------------------------------

HYBRID = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
CLASSICAL = "aes256gcm16-prfsha256-x25519"


def offer(text, protocol="ike", spi=b""):
    return sa_payload(parse_proposals(text, protocol), spi).proposals


def select(offered_text, configured_text, **kwargs):
    return select_proposal(offer(offered_text), parse_proposals(configured_text), **kwargs)


def test_hybrid_both_sides():
    chosen = select(HYBRID, HYBRID)
    assert (chosen.ke, chosen.additional_kes) == (KeMethod.CURVE25519, (KeMethod.ML_KEM_768,))
    assert chosen.integ is None and chosen.encr_key_bits == 256 and chosen.is_aead
    assert chosen.esn is None and chosen.is_post_quantum


def test_two_additional_kes_run_in_ascending_addke_order():
    text = "aes256-sha256-x25519-ke1_mlkem768-ke2_mlkem1024"
    chosen = select(text, text)
    assert chosen.additional_kes == (KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024)
    assert [t for t, _ in chosen.additional_ke_slots] == [
        TransformType.ADDKE1,
        TransformType.ADDKE2,
    ]
    assert (chosen.integ, chosen.prf) == (12, 5)
    # A peer that lists ADDKE2 before ADDKE1 on the wire gets the same order.
    (proposal,) = offer(text)
    transforms = list(proposal.transforms)
    transforms[-2], transforms[-1] = transforms[-1], transforms[-2]
    shuffled = Proposal(1, ProtocolId.IKE, b"", tuple(transforms))
    reordered = select_proposal([shuffled], parse_proposals(text))
    assert reordered.additional_kes == (KeMethod.ML_KEM_768, KeMethod.ML_KEM_1024)


def test_optional_addke_with_none():
    optional = HYBRID + "-ke1_none"
    classical = select(optional, CLASSICAL)
    assert classical.additional_kes == () and classical.ke == KeMethod.CURVE25519
    assert all(t.type != TransformType.ADDKE1 for t in classical.to_proposal().transforms)
    assert accept_chosen(classical.to_proposal(), parse_proposals(optional)) == classical
    assert select(optional, HYBRID).additional_kes == (KeMethod.ML_KEM_768,)
    # ... and the other way round: we make it optional, the peer offers none.
    assert select(CLASSICAL, optional).additional_kes == ()
    assert select(CLASSICAL, optional, require_pq=True) is None
    assert select(optional, CLASSICAL, require_pq=True) is None


def test_require_pq():
    assert select(CLASSICAL, HYBRID) is None  # our ADDKE1 is mandatory
    assert select(CLASSICAL, CLASSICAL, require_pq=True) is None
    # Our classical proposal comes first, but the policy moves on to the hybrid one.
    chosen = select(f"{CLASSICAL},{HYBRID}", f"{CLASSICAL},{HYBRID}", require_pq=True)
    assert chosen.number == 2 and chosen.additional_kes == (KeMethod.ML_KEM_768,)
    assert select(f"{CLASSICAL},{HYBRID}", f"{CLASSICAL},{HYBRID}").number == 1
    # ML-KEM as the only KE of IKE_SA_INIT also counts as post-quantum.
    pq_only = "aes256gcm16-prfsha256-mlkem768"
    assert select(pq_only, pq_only, require_pq=True).ke == KeMethod.ML_KEM_768


def test_classical_fallback_proposal():
    # A responder without ADDKE support skips the hybrid proposal and takes #2.
    chosen = select(f"{HYBRID},{CLASSICAL}", CLASSICAL)
    assert chosen.number == 2 and chosen.additional_kes == ()
    assert accept_chosen(chosen.to_proposal(), parse_proposals(f"{HYBRID},{CLASSICAL}")) == chosen


def test_preference_and_multiple_values_per_addke_type():
    offered = "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke1_mlkem1024"
    configured = "aes256gcm16-prfsha256-x25519-ke1_mlkem1024-ke1_mlkem768"
    assert select(offered, configured).additional_kes == (KeMethod.ML_KEM_1024,)
    assert select(offered, configured, prefer_offered=True).additional_kes == (KeMethod.ML_KEM_768,)
    both = select(
        "aes128gcm16-aes256gcm16-prfsha384-prfsha256-ecp384-x25519",
        "aes256gcm16-aes128gcm16-prfsha256-prfsha384-x25519-ecp384",
    )
    assert (both.encr_key_bits, both.prf, both.ke) == (256, 5, KeMethod.CURVE25519)


def test_distinct_methods_with_backtracking():
    # strongSwan's one pass would take x25519 for KE and find nothing left for ADDKE1.
    text = "aes256gcm16-prfsha256-x25519-mlkem768-ke1_x25519"
    chosen = select(text, text)
    assert (chosen.ke, chosen.additional_kes) == (KeMethod.ML_KEM_768, (KeMethod.CURVE25519,))
    with pytest.raises(ProposalSyntaxError, match="different methods"):
        parse_proposal("aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem768")
    with pytest.raises(ProposalSyntaxError, match="different methods"):
        parse_proposal("aes256gcm16-prfsha256-mlkem768-ke1_mlkem768")
    assert parse_proposal("aes256gcm16-prfsha256-x25519-ke1_none-ke2_none")


def test_one_method_is_never_chosen_twice():
    text = "aes256gcm16-prfsha256-mlkem768-ke1_mlkem768-ke1_mlkem1024"
    chosen = select(text, text)
    assert (chosen.ke, chosen.additional_kes) == (KeMethod.ML_KEM_768, (KeMethod.ML_KEM_1024,))


@pytest.mark.parametrize(
    ("offered", "configured"),
    [
        ("aes128gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519"),  # key length
        ("aes256gcm16-prfsha384-x25519", "aes256gcm16-prfsha256-x25519"),
        ("aes256gcm16-prfsha256-ecp384", "aes256gcm16-prfsha256-x25519"),
        ("aes256-sha384-x25519", "aes256-sha256-x25519"),
        (HYBRID, "aes256gcm16-prfsha256-x25519-ke1_mlkem1024"),
        (HYBRID + "-ke2_mlkem1024", HYBRID),  # we do not understand/offer ADDKE2
    ],
)
def test_no_match(offered, configured):
    assert select(offered, configured) is None


def test_unknown_transform_type_or_attribute_rejects_the_proposal():
    (proposal,) = offer(CLASSICAL)
    unknown_type = Proposal(1, ProtocolId.IKE, b"", (*proposal.transforms, Transform(13, 1)))
    assert select_proposal([unknown_type], parse_proposals(CLASSICAL)) is None
    odd = Transform(TransformType.ENCR, 20, (Attribute(14, 256), Attribute(99, 1)))
    odd_attr = Proposal(1, ProtocolId.IKE, b"", (odd, *proposal.transforms[1:]))
    assert select_proposal([odd_attr], parse_proposals(CLASSICAL)) is None
    # RFC 7296 §3.3.6: only that transform is unacceptable, others of its type still count.
    both = Proposal(1, ProtocolId.IKE, b"", (odd, *proposal.transforms))
    assert select_proposal([both], parse_proposals(CLASSICAL)).encr_key_bits == 256
    with pytest.raises(InvalidChosenProposal, match="attribute"):
        accept_chosen(both, parse_proposals(CLASSICAL))
    esp = offer("aes256gcm16", "esp", spi=b"abcd")
    assert select_proposal(esp, parse_proposals(CLASSICAL)) is None  # protocol mismatch


def test_esp_selection():
    text = "aes256gcm16-x25519-ke1_mlkem768"
    configured = parse_proposals(text, "esp")
    offered = offer(text, "esp", spi=b"\x01\x02\x03\x04")
    chosen = select_proposal(offered, configured)
    assert chosen.spi == b"\x01\x02\x03\x04" and chosen.esn is False and chosen.prf is None
    assert chosen.additional_kes == (KeMethod.ML_KEM_768,)
    assert chosen.to_proposal(spi=b"\x05\x06\x07\x08").spi == b"\x05\x06\x07\x08"
    # IKE_AUTH: KE transforms are neither sent nor selected.
    in_auth = sa_payload(parse_proposals(text, "esp"), b"abcd", skip_ke=True).proposals
    chosen = select_proposal(in_auth, configured, skip_ke=True, require_pq=True)
    assert chosen.ke is None and chosen.additional_kes == ()
    # "none" makes PFS optional: a peer without KE is accepted, one with x25519 gets it.
    optional_pfs = parse_proposals("aes256gcm16-x25519-none", "esp")
    assert select_proposal(offer("aes256gcm16", "esp", b"abcd"), optional_pfs).ke is None
    assert select_proposal(offer("aes256gcm16-x25519", "esp", b"abcd"), optional_pfs).ke == 31
    # PFS is optional in ESP only when offered with NONE: no KE vs a mandatory x25519.
    assert select_proposal(offer("aes256gcm16", "esp", b"abcd"), configured) is None
    assert (
        select_proposal(offer(text, "esp", b"abcd"), parse_proposals("aes256gcm16", "esp")) is None
    )
    assert select_proposal(
        offer("aes256gcm16-x25519-ke1_mlkem768", "esp", b"abcd"),
        parse_proposals("aes256gcm16-x25519-ke1_mlkem768-ke1_none", "esp"),
    ).additional_kes == (KeMethod.ML_KEM_768,)
    esn = select_proposal(
        offer("aes256-sha256-esn-noesn", "esp", b"abcd"),
        parse_proposals("aes256-sha256-esn", "esp"),
    )
    assert esn.esn is True and esn.integ == 12


# --- the initiator checks the answer -------------------------------------------------


def answer(*transforms, number=1, protocol=ProtocolId.IKE, spi=b""):
    return Proposal(number, protocol, spi, tuple(Transform.make(*t) for t in transforms))


ENCR = (TransformType.ENCR, 20, 256)
PRF = (TransformType.PRF, 5)
KE = (TransformType.KE, 31)
ADDKE1 = (TransformType.ADDKE1, 36)


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        (answer(ENCR, PRF, KE, ADDKE1, number=2), "not offered"),
        (answer(ENCR, PRF, KE, ADDKE1, protocol=ProtocolId.ESP, spi=b"abcd"), "is ESP"),
        (answer(ENCR, (TransformType.ENCR, 20, 128), PRF, KE, ADDKE1), "2 ENCR"),
        (answer((TransformType.ENCR, 20, 128), PRF, KE, ADDKE1), "ENCR 20 was not offered"),
        (answer(ENCR, PRF, (TransformType.KE, 19), ADDKE1), "KE 19 was not offered"),
        (answer(ENCR, KE, ADDKE1), "lacks PRF"),
        (answer(ENCR, PRF, KE), "lacks ADDKE1"),
        (answer(ENCR, PRF, KE, ADDKE1, (TransformType.ADDKE2, 37)), "ADDKE2 37 was not offered"),
        (answer(ENCR, PRF, KE, ADDKE1, (TransformType.ESN, 0)), "ESN 0 was not offered"),
    ],
)
def test_accept_chosen_rejects(chosen, message):
    with pytest.raises(InvalidChosenProposal, match=message):
        accept_chosen(chosen, parse_proposals(HYBRID))


def test_accept_chosen_policies():
    mlkem_twice = answer(ENCR, PRF, (TransformType.KE, 36), ADDKE1)  # a peer's odd offer
    with pytest.raises(InvalidChosenProposal, match="twice"):
        accept_chosen(mlkem_twice, [mlkem_twice])
    offered = parse_proposals(f"{HYBRID},{CLASSICAL}")
    with pytest.raises(InvalidChosenProposal, match="requires"):
        accept_chosen(answer(ENCR, PRF, KE, number=2), offered, require_pq=True)
    assert accept_chosen(answer(ENCR, PRF, KE, number=2), offered).ke == KeMethod.CURVE25519
    # an explicit NONE for an optional type is as good as leaving it out
    optional = parse_proposals(HYBRID + "-ke1_none")
    assert (
        accept_chosen(answer(ENCR, PRF, KE, (TransformType.ADDKE1, 0)), optional).additional_kes
        == ()
    )


# --- property: what the responder selects, the initiator accepts ------------------------


_KE = ["x25519", "ecp256", "ecp384", "modp2048", "mlkem512", "mlkem768", "mlkem1024"]


@st.composite
def proposal_texts(draw, protocol: str) -> str:
    aead = draw(st.booleans())
    ciphers = ["aes128gcm16", "aes256gcm16"] if aead else ["aes128", "aes256"]
    tokens = draw(st.lists(st.sampled_from(ciphers), min_size=1, max_size=2, unique=True))
    integ = st.sampled_from(["sha256", "sha384", "sha512"])
    tokens += draw(st.lists(integ, min_size=0 if aead else 1, max_size=2, unique=True))
    if protocol == "ike":
        prfs = st.sampled_from(["prfsha256", "prfsha384", "prfsha512"])
        tokens += draw(st.lists(prfs, min_size=1 if aead else 0, max_size=2, unique=True))
        tokens += draw(st.lists(st.sampled_from(_KE), min_size=1, max_size=2, unique=True))
    else:
        tokens += draw(st.lists(st.sampled_from([*_KE, "none"]), max_size=2, unique=True))
        tokens += draw(st.lists(st.sampled_from(["esn", "noesn"]), max_size=2, unique=True))
    for slot in draw(st.lists(st.integers(1, 3), max_size=2, unique=True)):
        methods = st.sampled_from(["mlkem768", "mlkem1024", "x25519", "none"])
        tokens += [
            f"ke{slot}_{m}" for m in draw(st.lists(methods, min_size=1, max_size=2, unique=True))
        ]
    return "-".join(tokens)


def _check_consistent(offered, configured, *, skip_ke: bool, require_pq: bool) -> None:
    spi = b"" if offered[0].protocol == ProtocolId.IKE else b"abcd"
    sa = sa_payload(offered, spi, skip_ke=skip_ke)
    chosen = select_proposal(sa.proposals, configured, skip_ke=skip_ke, require_pq=require_pq)
    if chosen is None:
        return
    answer = chosen.to_proposal()
    assert accept_chosen(answer, offered, skip_ke=skip_ke, require_pq=require_pq) == chosen
    offered_set = {
        (int(t.type), int(t.id), t.key_length) for t in sa.proposals[chosen.number - 1].transforms
    }
    configured_sets = [
        {(int(t.type), int(t.id), t.key_length) for t in c.transforms} for c in configured
    ]
    picked = {(int(t.type), int(t.id), t.key_length) for t in answer.transforms}
    assert picked <= offered_set and any(picked <= c for c in configured_sets)
    types = [t for t, _ in chosen.additional_ke_slots]
    assert types == sorted(types)
    methods = [m for m in (chosen.ke, *chosen.additional_kes) if m is not None]
    assert len(methods) == len(set(methods))
    assert not require_pq or skip_ke or chosen.is_post_quantum


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(proposal_texts("ike"), min_size=1, max_size=3),
    st.lists(proposal_texts("ike"), min_size=1, max_size=3),
    st.booleans(),
)
def test_ike_selection_is_accepted_by_the_initiator(offered, configured, require_pq):
    try:
        offered_specs, configured_specs = parse_proposals(offered), parse_proposals(configured)
    except ProposalSyntaxError:
        assume(False)
    _check_consistent(offered_specs, configured_specs, skip_ke=False, require_pq=require_pq)
    _check_consistent(offered_specs, offered_specs, skip_ke=False, require_pq=False)
    assert select_proposal(sa_payload(offered_specs).proposals, offered_specs) is not None


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(proposal_texts("esp"), min_size=1, max_size=3),
    st.lists(proposal_texts("esp"), min_size=1, max_size=3),
    st.booleans(),
)
def test_esp_selection_is_accepted_by_the_initiator(offered, configured, skip_ke):
    try:
        offered_specs = parse_proposals(offered, "esp")
        configured_specs = parse_proposals(configured, "esp")
    except ProposalSyntaxError:
        assume(False)
    _check_consistent(offered_specs, configured_specs, skip_ke=skip_ke, require_pq=False)
