"""Negotiation helpers of the engine: identities, traffic selectors, and the proposal
operations the state machine needs on top of `wansim.ike.proposals` (RFC 7296 §2.9, §3.3,
§3.5, §3.13; RFC 9370 §2.2).
"""

from __future__ import annotations

import functools
import ipaddress
import struct

from wansim.ike import keymat
from wansim.ike.ciphers import CipherSuite
from wansim.ike.constants import ADDKE_TYPES, IdType, KeMethod, TransformType
from wansim.ike.memo import IdentityMemo
from wansim.ike.payloads import Proposal, SecurityAssociation, TrafficSelector, transforms_bytes
from wansim.ike.proposals import (
    ChosenProposal,
    InvalidChosenProposal,
    ProposalSpec,
    accept_chosen,
    ke_token,
    select_proposal,
)


@functools.lru_cache(maxsize=1024)
def identity(text: str) -> tuple[int, bytes]:
    """ID payload type and data for an identity string (RFC 7296 §3.5); memoised, as
    every handshake of a run sends the same few identities."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if "@" in text:
            return IdType.ID_RFC822_ADDR, text.encode()
        return IdType.ID_FQDN, text.encode()
    kind = IdType.ID_IPV4_ADDR if address.version == 4 else IdType.ID_IPV6_ADDR
    return kind, address.packed


def id_text(kind: int, data: bytes) -> str:
    if kind in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        try:
            return str(ipaddress.ip_address(data))
        except ValueError:
            return data.hex()
    return data.decode("utf-8", "replace")


@functools.lru_cache(maxsize=1024)  # memo: every Child SA of a run uses the same few
def selectors(prefixes: tuple[str, ...]) -> tuple[TrafficSelector, ...]:
    return tuple(TrafficSelector.from_network(p) for p in prefixes)


def covers(outer: TrafficSelector, inner: TrafficSelector) -> bool:
    return (
        outer.start_address.version == inner.start_address.version
        and outer.start_address <= inner.start_address
        and inner.end_address <= outer.end_address
    )


def narrow(ours: tuple[TrafficSelector, ...], theirs: tuple[TrafficSelector, ...]):
    """Our narrowing of the peer's proposed selectors (RFC 7296 §2.9, simplified to
    whole ranges): keep each proposed range covered by ours, else ours inside it."""

    # First level: these very tuples again (ours from the config, theirs from the
    # memoised TS parse), by identity; then by the selectors' wire bytes.
    def by_wire():
        return _memoised(_NARROWED, _selectors_key(ours, theirs), lambda: _narrow(ours, theirs))

    if type(ours) is tuple and type(theirs) is tuple:  # immutable: the answer holds
        return _for_objects(_NARROWED_BY_ID, ours, theirs, (), by_wire)
    return by_wire()


def _narrow(ours, theirs):
    chosen = []
    for t in theirs:
        for o in ours:
            if covers(o, t):
                chosen.append(t)
            elif covers(t, o):
                chosen.append(o)
    return tuple(dict.fromkeys(chosen))


def ts_text(selectors) -> tuple[str, ...]:
    """Selectors as CIDR prefixes (a range that is no prefix becomes several)."""
    if type(selectors) is tuple:  # the same tuples come back (config, memoised parses)
        return _ts_text_of(selectors)
    return _ts_text_by_wire(tuple(selectors))


def _ts_text_by_wire(selectors: tuple) -> tuple[str, ...]:
    return _memoised(_TEXTS, _selectors_key(selectors), lambda: _ts_text(selectors))


def _ts_text(selectors) -> tuple[str, ...]:
    return tuple(text for s in selectors for text in _prefixes(s))


def _prefixes(selector: TrafficSelector) -> tuple[str, ...]:
    """Summarising a range (slow: ts_text memoises it)."""
    try:
        nets = ipaddress.summarize_address_range(selector.start_address, selector.end_address)
        return tuple(str(n) for n in nets)
    except (TypeError, ValueError):
        return (str(selector),)


# Narrowing and naming are pure functions of frozen selectors, and every Child SA of a run
# repeats the same few: memoised, keyed by the selectors' wire bytes (exact, and cheap to
# hash; hashing a TrafficSelector goes through ipaddress in Python).
_NARROWED: dict[tuple, tuple[TrafficSelector, ...]] = {}
_TEXTS: dict[tuple, tuple[str, ...]] = {}


def _selectors_key(*groups) -> tuple | None:
    try:
        return tuple(
            [_selectors_wire(group) if type(group) is tuple else _wire(group) for group in groups]
        )
    except (ValueError, TypeError, struct.error):  # not encodable: compute, do not memoise
        return None


def _wire(selectors) -> tuple[bytes, ...]:
    return tuple(s.to_bytes() for s in selectors)


# The same selector tuples come back in every handshake (config, memoised parses).
_selectors_wire = IdentityMemo(_wire)
_ts_text_of = IdentityMemo(_ts_text_by_wire)
_NARROWED_BY_ID: dict[tuple[int, int], tuple] = {}


_MISSING = object()
_MEMO_SIZE = 1024


def _for_objects(store: dict, a, b, extra: tuple, compute):
    """`compute()`, remembered in `store` for these very objects `a` and `b` (by
    identity: an entry holds them, so their ids cannot be reused while it is cached)
    together with the hashable `extra`."""
    key = (id(a), id(b), *extra)
    hit = store.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    value = compute()
    if len(store) >= _MEMO_SIZE:
        store.clear()
    store[key] = (a, b, value)
    return value


def _memoised(store: dict, key, compute):
    """`compute()`, remembered in `store` under `key` (None: not memoisable)."""
    if key is None:
        return compute()
    value = store.get(key, _MISSING)
    if value is _MISSING:
        value = compute()
        if len(store) >= _MEMO_SIZE:
            store.clear()
        store[key] = value
    return value


# --- proposals (on top of wansim.ike.proposals) --------------------------------------


def has_addke(spec: ProposalSpec) -> bool:
    return any(t.type in ADDKE_TYPES and t.id != KeMethod.NONE for t in spec.transforms)


def ke_tokens(specs) -> list[str]:
    """KE (type 4) methods of our proposals in preference order, as crypto tokens."""
    if type(specs) is tuple:  # our configured specs: the same tuple in every SA
        return list(_ke_tokens_of(specs))
    return _ke_tokens(specs)


def _ke_tokens(specs) -> list[str]:
    out: list[str] = []
    for spec in specs:
        for t in spec.transforms:
            if t.type == TransformType.KE and t.id != KeMethod.NONE:
                token = ke_token(t.id)
                if token not in out:
                    out.append(token)
    return out


_ke_tokens_of = IdentityMemo(lambda specs: tuple(_ke_tokens(specs)))


def all_ke_tokens(specs) -> set[str]:
    """Every KE and ADDKE method our proposals mention."""
    return {
        ke_token(t.id)
        for spec in specs
        for t in spec.transforms
        if (t.type == TransformType.KE or t.type in ADDKE_TYPES) and t.id != KeMethod.NONE
    }


def methods_of(chosen: ChosenProposal) -> list[str]:
    """Tokens of the chosen main KE then the ADDKEs in the order they run."""

    def tokens() -> tuple[str, ...]:
        main = [ke_token(chosen.ke)] if chosen.ke is not None else []
        return tuple(main + [ke_token(m) for m in chosen.additional_kes])

    # keyed by what the answer depends on
    return list(_memoised(_METHODS, (chosen.ke, chosen.additional_ke_slots), tokens))


_METHODS: dict[tuple, tuple[str, ...]] = {}


def cipher_suite(chosen: ChosenProposal) -> CipherSuite:
    return _cipher_suite(chosen.encr, chosen.encr_key_bits or 0, chosen.integ)


def ike_suite(chosen: ChosenProposal) -> keymat.IkeSuite:
    return _ike_suite(chosen.prf, chosen.encr, chosen.encr_key_bits or 0, chosen.integ)


# Suites are immutable and computed from a few algorithm numbers: one object per
# combination, shared by every SA, sizes its keys and keeps its cipher objects.


@functools.lru_cache(maxsize=256)
def _cipher_suite(encr: int, key_bits: int, integ: int | None) -> CipherSuite:
    return CipherSuite(encr, key_bits, integ)


@functools.lru_cache(maxsize=256)
def _ike_suite(prf: int, encr: int, key_bits: int, integ: int | None) -> keymat.IkeSuite:
    return keymat.IkeSuite(prf, _cipher_suite(encr, key_bits, integ))


def sa_payload(items, *, spi: bytes = b"", skip_ke: bool = False) -> SecurityAssociation:
    """An SA payload from our specs (offer, numbered 1..n) or from one chosen proposal
    (answer, keeping the offered number, with our SPI)."""
    proposals = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, ChosenProposal):
            proposals.append(item.to_proposal(spi))
        else:
            proposals.append(item.to_proposal(number, spi, skip_ke=skip_ke))
    return SecurityAssociation(tuple(proposals))


def without_addke(proposal) -> bool:
    return not any(t.type in ADDKE_TYPES and t.id != KeMethod.NONE for t in proposal.transforms)


def select(
    offered,
    configured,
    *,
    require_pq=False,
    allow_addke=True,
    skip_ke=False,
    ke_method: int | None = None,
):
    """The responder's choice, or None. Without INTERMEDIATE_EXCHANGE_SUPPORTED from the
    initiator, proposals with additional key exchanges are refused (strongSwan). When the
    peer's KEi method is acceptable it is preferred, saving an INVALID_KE_PAYLOAD trip."""
    flags = (require_pq, allow_addke, skip_ke, ke_method)
    if type(offered) is tuple and len(offered) == 1 and type(configured) is tuple:
        return _one_proposal("select", _choose, offered[0], offered, configured, flags)
    return _by_identity("select", _choose, offered, configured, flags)


def _choose(offered, configured, flags) -> ChosenProposal | None:
    offered = tuple(offered)
    configured = tuple(configured)
    numbers = {p.number for p in offered}
    blank = len(numbers) == len(offered)  # else the SPIs tell apart equal numbers: keep them
    key = _choice_key("select", offered, configured, flags, blank_spis=blank)
    chosen = _memoised(
        _CHOICES,
        key,
        lambda: _select(_without_spis(offered) if blank else offered, configured, *flags),
    )
    if chosen is None or not blank:
        return chosen
    return _with_spi(chosen, offered)


def check_chosen(proposal, offer, *, skip_ke=False, require_pq=False):
    """The responder's chosen proposal if it is a valid answer to our offer, else None."""
    flags = (skip_ke, require_pq)
    if type(offer) is tuple:
        return _one_proposal("check", _check, proposal, proposal, offer, flags)
    return _by_identity("check", _check, proposal, offer, flags)


def _check(proposal, offer, flags) -> ChosenProposal | None:
    skip_ke, require_pq = flags
    offer = tuple(offer)
    key = _choice_key("check", (proposal,), offer, (skip_ke, require_pq), blank_spis=True)
    chosen = _memoised(
        _CHOICES,
        key,
        lambda: _check_chosen(
            _blank(proposal) if any(proposal.spi) else proposal, offer, skip_ke, require_pq
        ),
    )
    return None if chosen is None else _with_spi(chosen, (proposal,))


# Choosing is a pure function of the offers and our configuration, and the SPIs play no
# part in it (they are only copied into the result), so both choices are memoised on
# the offer with its SPIs zeroed: every SA of a run negotiates the same few offers. The
# memo keys hold the transforms as wire bytes (which fix every type, ID and attribute):
# hashing those is cheap, hashing nested frozen dataclasses is not.

_CHOICES: dict[tuple, ChosenProposal | None] = {}
# First level: the very same offer and configuration objects as before (an IKE_SA_INIT
# offer comes from the payload memo, our specs from the config), checked by identity.
_IDENTICAL: dict[tuple, tuple] = {}


# Zeroth level, for the one proposal of a rekey's SA payload (or of an answer): its
# number, protocol, SPI size and transforms (the memoised parse's tuple, by identity)
# with our configuration (by identity) fix the choice; only the SPI differs, copied in.
_ONE: dict[tuple, tuple] = {}


def _one_proposal(kind: str, choose, proposal, first, configured, flags):
    """`choose(first, configured, flags)` for a `first` made of the one `proposal`."""
    transforms = getattr(proposal, "transforms", None)
    if type(transforms) is not tuple or not isinstance(proposal, Proposal):
        return _by_identity(kind, choose, first, configured, flags)
    spi = proposal.spi
    chosen = _for_objects(
        _ONE,
        transforms,
        configured,
        (kind, proposal.number, proposal.protocol, len(spi), flags),
        lambda: _by_identity(kind, choose, first, configured, flags),
    )
    return chosen if chosen is None or chosen.spi == spi else chosen.with_spi(spi)


def _by_identity(kind: str, choose, first, second, flags):
    """`choose(first, second, flags)`, remembered for these very objects when they are
    immutable (tuples, or a proposal): the answer cannot change."""
    immutable = type(first) is tuple or isinstance(first, Proposal)
    if not immutable or type(second) is not tuple:
        return choose(first, second, flags)
    return _for_objects(
        _IDENTICAL, first, second, (kind, flags), lambda: choose(first, second, flags)
    )


def _choice_key(kind, offered, configured, flags, *, blank_spis) -> tuple | None:
    try:
        return (kind, _items_key(offered, blank_spis), _configured_key(configured), flags)
    except (ValueError, TypeError, struct.error):  # not encodable: compute, do not memoise
        return None


def _items_key(items, blank_spis: bool) -> tuple:
    """Proposals (or specs) as number, protocol, SPI (zeroed when `blank_spis`) and
    transforms' wire bytes. Configured SPIs never matter: only the offer's are copied."""
    key = []
    for item in items:
        transforms = transforms_bytes(item.transforms)
        if isinstance(item, Proposal):
            spi = bytes(len(item.spi)) if blank_spis else item.spi
            key.append((item.number, item.protocol, spi, transforms))
        else:
            key.append((item.protocol, transforms))
    return tuple(key)


def _configured_key(configured: tuple) -> tuple:
    # Our configuration is the same tuple in every SA made from one config.
    return (
        _configured_keys(configured) if type(configured) is tuple else _items_key(configured, True)
    )


_configured_keys = IdentityMemo(lambda configured: _items_key(configured, True))


def _select(offered, configured, require_pq, allow_addke, skip_ke, ke_method):
    offered = [p for p in offered if allow_addke or without_addke(p)]
    if ke_method is not None:
        narrowed = [
            Proposal(
                p.number,
                p.protocol,
                p.spi,
                tuple(t for t in p.transforms if t.type != TransformType.KE or t.id == ke_method),
            )
            for p in offered
        ]
        chosen = select_proposal(narrowed, configured, require_pq=require_pq, skip_ke=skip_ke)
        if chosen is not None:
            return chosen
    return select_proposal(offered, configured, require_pq=require_pq, skip_ke=skip_ke)


def _check_chosen(proposal, offer, skip_ke, require_pq):
    try:
        return accept_chosen(proposal, offer, require_pq=require_pq, skip_ke=skip_ke)
    except InvalidChosenProposal:
        return None


def _blank(proposal: Proposal) -> Proposal:
    """The proposal with a zero SPI of the same size."""
    return Proposal(
        proposal.number, proposal.protocol, bytes(len(proposal.spi)), proposal.transforms
    )


def _without_spis(offered) -> tuple[Proposal, ...] | None:
    """The offer with zero SPIs, or None when proposal numbers repeat (then a chosen
    proposal's number would not tell whose SPI it carries)."""
    numbers = {p.number for p in offered}
    if len(numbers) != len(offered):
        return None
    return tuple(_blank(p) if any(p.spi) else p for p in offered)


def _with_spi(chosen: ChosenProposal, offered) -> ChosenProposal:
    """`chosen` carrying the SPI of the offered proposal with its number."""
    spi = next(p.spi for p in offered if p.number == chosen.number)
    return chosen if spi == chosen.spi else chosen.with_spi(spi)
