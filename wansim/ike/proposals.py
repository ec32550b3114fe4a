"""Proposals: strongSwan-style proposal strings, SA payload proposals, and selection.

Strings follow strongSwan's keyword semantics (`proposal_keywords_static.txt`,
`proposal.c`): `aes256` is AES-CBC with a 256-bit key, `aes256gcm16` AES-GCM with a
16-byte ICV (ENCR 20) and a 256-bit key, `sha256` the integrity algorithm
HMAC-SHA2-256-128, `prfsha256` the PRF. In an IKE proposal without a `prf...` token each
integrity algorithm also brings its PRF (so `aes256gcm16-sha256-x25519` offers AES-GCM with
PRF_HMAC_SHA2_256), and integrity algorithms are dropped when every cipher is an AEAD.
`keN_method` adds ADDKEn (RFC 9370 §2.2.1) and `keN_none` makes it optional; ESP
proposals take `esn`/`noesn` (default `noesn`). Several proposals: a list of strings or
strongSwan's comma-separated form.

Selection (RFC 7296 §3.3, §3.3.6; RFC 9370 §2.2.2) follows strongSwan's responder: the
configured proposals are preferred in their order (`prefer_configured_proposals`), one
value per transform type present, every type the peer sent must be understood and
matched, an absent KE/ADDKE type in an ESP proposal (or ADDKE in IKE) matches a NONE,
and one key exchange method is never picked twice. NONE chosen for an ADDKE type means
"no additional exchange" and is left out of the answer.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from wansim.ike.constants import (
    ADDKE_TYPES,
    EncrId,
    EsnId,
    IntegId,
    KeMethod,
    PrfId,
    ProtocolId,
    TransformAttribute,
    TransformType,
    name_of,
)
from wansim.ike.frozen import fast_init
from wansim.ike.memo import IdentityMemo
from wansim.ike.payloads import Proposal, SecurityAssociation, Transform

__all__ = [
    "ENCRYPTION_TOKENS",
    "INTEGRITY_TOKENS",
    "KE_TOKENS",
    "PRF_TOKENS",
    "ChosenProposal",
    "InvalidChosenProposal",
    "ProposalSpec",
    "ProposalSyntaxError",
    "accept_chosen",
    "ke_token",
    "parse_proposal",
    "parse_proposals",
    "sa_payload",
    "select_proposal",
]


class ProposalSyntaxError(ValueError):
    """A proposal string that cannot be used; the message names the bad token."""


class InvalidChosenProposal(ValueError):
    """The responder's chosen proposal is not one value per type out of our offer."""


Algorithm = tuple[int, int | None]  # (transform ID, key length in bits or None)

ENCRYPTION_TOKENS: dict[str, Algorithm] = {
    "aes128": (EncrId.ENCR_AES_CBC, 128),
    "aes256": (EncrId.ENCR_AES_CBC, 256),
    "aes128gcm16": (EncrId.ENCR_AES_GCM_16, 128),
    "aes256gcm16": (EncrId.ENCR_AES_GCM_16, 256),
    # strongSwan aliases: "aes" is AES-128-CBC; gcm128 names the ICV in bits; gcm alone = gcm16
    "aes": (EncrId.ENCR_AES_CBC, 128),
    "aes128gcm128": (EncrId.ENCR_AES_GCM_16, 128),
    "aes256gcm128": (EncrId.ENCR_AES_GCM_16, 256),
    "aes128gcm": (EncrId.ENCR_AES_GCM_16, 128),
    "aes256gcm": (EncrId.ENCR_AES_GCM_16, 256),
}
INTEGRITY_TOKENS: dict[str, IntegId] = {
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256,
    "sha2_256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha2_384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha2_512": IntegId.AUTH_HMAC_SHA2_512_256,
}
PRF_TOKENS: dict[str, PrfId] = {
    "prfsha256": PrfId.PRF_HMAC_SHA2_256,
    "prfsha384": PrfId.PRF_HMAC_SHA2_384,
    "prfsha512": PrfId.PRF_HMAC_SHA2_512,
}
KE_TOKENS: dict[str, KeMethod] = {
    "modp2048": KeMethod.MODP_2048,
    "ecp256": KeMethod.ECP_256,
    "ecp384": KeMethod.ECP_384,
    "x25519": KeMethod.CURVE25519,
    "curve25519": KeMethod.CURVE25519,
    "mlkem512": KeMethod.ML_KEM_512,
    "mlkem768": KeMethod.ML_KEM_768,
    "mlkem1024": KeMethod.ML_KEM_1024,
}
ESN_TOKENS: dict[str, EsnId] = {"esn": EsnId.ESN, "noesn": EsnId.NO_ESN}

# strongSwan proposal.c integ_prf_map: the PRF an integrity algorithm implies in IKE.
_PRF_OF_INTEG = {
    IntegId.AUTH_HMAC_SHA2_256_128: PrfId.PRF_HMAC_SHA2_256,
    IntegId.AUTH_HMAC_SHA2_384_192: PrfId.PRF_HMAC_SHA2_384,
    IntegId.AUTH_HMAC_SHA2_512_256: PrfId.PRF_HMAC_SHA2_512,
}
# Wire order of transform types, as strongSwan 6.1 sends them (see the capture).
_TYPE_ORDER = (
    TransformType.ENCR,
    TransformType.INTEG,
    TransformType.PRF,
    TransformType.KE,
    *ADDKE_TYPES,
    TransformType.ESN,
)
_KE_TYPES = frozenset({TransformType.KE, *ADDKE_TYPES})
_NONE: tuple[int, None] = (KeMethod.NONE, None)
_CANONICAL_KE_TOKEN = {
    KeMethod.MODP_2048: "modp2048",
    KeMethod.ECP_256: "ecp256",
    KeMethod.ECP_384: "ecp384",
    KeMethod.CURVE25519: "x25519",
    KeMethod.ML_KEM_512: "mlkem512",
    KeMethod.ML_KEM_768: "mlkem768",
    KeMethod.ML_KEM_1024: "mlkem1024",
}


def ke_token(method: int) -> str:
    """The proposal / `wansim.crypto.get_kex` token of a key exchange method."""
    try:
        return _CANONICAL_KE_TOKEN[method]
    except KeyError:
        raise ValueError(
            f"key exchange method {name_of(KeMethod, method)} is not supported"
        ) from None


def _all_tokens(protocol: ProtocolId) -> list[str]:
    groups = [ENCRYPTION_TOKENS, INTEGRITY_TOKENS, KE_TOKENS]
    if protocol == ProtocolId.IKE:
        groups.insert(2, PRF_TOKENS)
    else:
        groups.append(ESN_TOKENS)
    return [name for group in groups for name in group]


def _valid_tokens(protocol: ProtocolId) -> str:
    return ", ".join(_all_tokens(protocol)) + ", none, ke1_<method>..ke7_<method>, keN_none"


@fast_init
@dataclass(frozen=True, slots=True)
class ProposalSpec:
    """One configured proposal: a protocol and its transforms grouped by type in wire
    order, each type's algorithms in preference order."""

    protocol: ProtocolId
    transforms: tuple[Transform, ...]

    def to_proposal(self, number: int, spi: bytes = b"", *, skip_ke: bool = False) -> Proposal:
        """The SA proposal substructure; `skip_ke` leaves out KE and ADDKE transforms
        (the first Child SA, negotiated in IKE_AUTH, has no key exchange). The transforms
        tuple is the same object every time, so its encoding is memoised."""
        transforms = _without_ke(self.transforms) if skip_ke else self.transforms
        return Proposal(number, self.protocol, spi, transforms)

    def __str__(self) -> str:
        return "-".join(_token_of(t) for t in self.transforms)


@IdentityMemo
def _without_ke(transforms: tuple[Transform, ...]) -> tuple[Transform, ...]:
    return tuple(t for t in transforms if t.type not in _KE_TYPES)


def _token_of(transform: Transform) -> str:
    algorithm = (transform.id, transform.key_length)
    t_type = transform.type
    if t_type == TransformType.ENCR:
        return next(k for k, v in ENCRYPTION_TOKENS.items() if v == algorithm)
    if t_type == TransformType.INTEG:
        return next(k for k, v in INTEGRITY_TOKENS.items() if v == transform.id)
    if t_type == TransformType.PRF:
        return next(k for k, v in PRF_TOKENS.items() if v == transform.id)
    if t_type == TransformType.ESN:
        return "esn" if transform.id == EsnId.ESN else "noesn"
    method = "none" if transform.id == KeMethod.NONE else ke_token(transform.id)
    if t_type == TransformType.KE:
        return method
    return f"ke{t_type - TransformType.ADDKE1 + 1}_{method}"


def parse_proposal(text: str, protocol: ProtocolId | str = ProtocolId.IKE) -> ProposalSpec:
    """Parse one strongSwan-style proposal such as `aes256gcm16-prfsha384-ecp384-ke1_mlkem768`
    (IKE) or `aes256gcm16-x25519-ke1_mlkem768` / `aes256-sha256-esn` (ESP)."""
    return _parse_proposal(text, _protocol(protocol))


@lru_cache(maxsize=512)  # a memo of a pure function: every SA of a run parses the same few
def _parse_proposal(text: str, protocol: ProtocolId) -> ProposalSpec:
    where = f"{protocol.name} proposal {text!r}"
    by_type: dict[int, list[Algorithm]] = {}

    def add(t_type: int, algorithm: Algorithm) -> None:
        chosen = by_type.setdefault(t_type, [])
        if algorithm not in chosen:
            chosen.append(algorithm)

    tokens = [t for t in text.strip().lower().split("-")]
    if not text.strip() or "" in tokens:
        raise ProposalSyntaxError(f"{where}: empty algorithm token")
    for token in tokens:
        if token in ENCRYPTION_TOKENS:
            add(TransformType.ENCR, ENCRYPTION_TOKENS[token])
        elif token in INTEGRITY_TOKENS:
            add(TransformType.INTEG, (INTEGRITY_TOKENS[token], None))
        elif token in PRF_TOKENS:
            if protocol == ProtocolId.IKE:  # strongSwan drops PRFs from ESP proposals
                add(TransformType.PRF, (PRF_TOKENS[token], None))
        elif token in KE_TOKENS:
            add(TransformType.KE, (KE_TOKENS[token], None))
        elif token in ("none", "modpnone"):  # KE NONE: PFS optional in ESP
            add(TransformType.KE, (KeMethod.NONE, None))
        elif token in ESN_TOKENS and protocol != ProtocolId.IKE:
            add(TransformType.ESN, (ESN_TOKENS[token], None))
        elif token.startswith("ke") and "_" in token:
            slot, _, method = token.partition("_")
            index = slot[2:]
            if not index.isdigit() or not 1 <= int(index) <= len(ADDKE_TYPES):
                raise ProposalSyntaxError(
                    f"{where}: {token!r} names additional key exchange {index!r}; "
                    "use ke1_ .. ke7_ (RFC 9370 ADDKE1..ADDKE7)"
                )
            if method != "none" and method not in KE_TOKENS:
                raise ProposalSyntaxError(
                    f"{where}: unknown key exchange method {method!r} in {token!r}; "
                    f"valid: {', '.join(KE_TOKENS)}, none"
                )
            add(ADDKE_TYPES[int(index) - 1], (KE_TOKENS.get(method, KeMethod.NONE), None))
        else:
            close = difflib.get_close_matches(token, _all_tokens(protocol), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ProposalSyntaxError(
                f"{where}: unknown algorithm {token!r}{hint}; valid: {_valid_tokens(protocol)}"
            )
    _check(by_type, protocol, where)
    transforms = tuple(
        Transform.make(t_type, alg_id, key_length)
        for t_type in _TYPE_ORDER
        for alg_id, key_length in by_type.get(t_type, ())
    )
    return ProposalSpec(protocol, transforms)


def _check(by_type: dict[int, list[Algorithm]], protocol: ProtocolId, where: str) -> None:
    """strongSwan's check_proposal, with errors that say how to fix the string."""
    ciphers = by_type.get(TransformType.ENCR, [])
    if not ciphers:
        raise ProposalSyntaxError(f"{where}: needs an encryption algorithm (e.g. aes256gcm16)")
    aead = [EncrId(c).is_aead for c, _ in ciphers]
    if any(aead) and not all(aead):
        raise ProposalSyntaxError(
            f"{where}: AEAD (aes...gcm16) and classic (aes128/aes256) ciphers cannot share "
            "one proposal; write two proposals separated by a comma"
        )
    if not all(aead) and TransformType.INTEG not in by_type:
        raise ProposalSyntaxError(
            f"{where}: a classic cipher needs an integrity algorithm: add sha256/sha384/sha512"
        )
    if protocol == ProtocolId.IKE:
        if TransformType.PRF not in by_type:
            for integ, _ in by_type.get(TransformType.INTEG, []):
                by_type.setdefault(TransformType.PRF, []).append((_PRF_OF_INTEG[integ], None))
        if TransformType.PRF not in by_type:
            raise ProposalSyntaxError(
                f"{where}: an IKE proposal needs a PRF: add prfsha256/prfsha384/prfsha512"
            )
        # strongSwan removes KE NONE from IKE proposals: IKE SAs always run a KE.
        methods = [a for a in by_type.pop(TransformType.KE, []) if a[0] != KeMethod.NONE]
        if methods:
            by_type[TransformType.KE] = methods
        else:
            raise ProposalSyntaxError(
                f"{where}: an IKE proposal needs a key exchange method (e.g. x25519, ecp384)"
            )
    elif TransformType.ESN not in by_type:
        by_type[TransformType.ESN] = [(EsnId.NO_ESN, None)]
    if all(aead):
        by_type.pop(TransformType.INTEG, None)  # RFC 5282 §8: no INTEG with an AEAD
    ke_options = [(t, by_type[t]) for t in (TransformType.KE, *ADDKE_TYPES) if t in by_type]
    if _distinct_methods(ke_options) is None:
        raise ProposalSyntaxError(
            f"{where}: the key exchanges cannot all use different methods (e.g. ke1_mlkem768 "
            "and ke2_mlkem768); each additional key exchange needs a method of its own"
        )


def _protocol(protocol: ProtocolId | str | int) -> ProtocolId:
    if isinstance(protocol, str):
        try:
            return ProtocolId[protocol.upper()]
        except KeyError:
            raise ValueError(f"protocol must be 'ike' or 'esp', got {protocol!r}") from None
    protocol = ProtocolId(protocol)
    if protocol not in (ProtocolId.IKE, ProtocolId.ESP):
        raise ValueError(f"proposals are for IKE or ESP, not {protocol.name}")
    return protocol


def parse_proposals(
    spec: str | Iterable[str], protocol: ProtocolId | str = ProtocolId.IKE
) -> tuple[ProposalSpec, ...]:
    """Several proposals, from a list of strings and/or strongSwan's comma-separated form."""
    texts = [spec] if isinstance(spec, str) else list(spec)
    parts = [part.strip() for text in texts for part in text.split(",")]
    if not parts or any(not p for p in parts):
        raise ProposalSyntaxError(f"empty proposal in {spec!r}")
    return tuple(parse_proposal(part, protocol) for part in parts)


def sa_payload(
    specs: Sequence[ProposalSpec], spi: bytes = b"", *, skip_ke: bool = False
) -> SecurityAssociation:
    """An SA payload offering `specs` numbered 1, 2, ... (RFC 7296 §3.3.1), all with
    the same SPI (empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for ESP)."""
    if not specs:
        raise ValueError("an SA payload needs at least one proposal")
    return SecurityAssociation(
        tuple(spec.to_proposal(i, spi, skip_ke=skip_ke) for i, spec in enumerate(specs, 1))
    )


# --- the negotiated result -------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class ChosenProposal:
    """What was negotiated: one algorithm per type, and the additional key exchanges in
    the order they run (ascending ADDKE type, NONE skipped: RFC 9370 §2.2.2)."""

    protocol: ProtocolId
    number: int
    spi: bytes
    encr: EncrId
    encr_key_bits: int | None
    prf: PrfId | None = None  # None for ESP
    integ: IntegId | None = None  # None with an AEAD cipher
    ke: KeMethod | None = None  # None: no KE (ESP without PFS, or skipped in IKE_AUTH)
    additional_ke_slots: tuple[tuple[TransformType, KeMethod], ...] = ()
    esn: bool | None = None  # None for IKE

    @property
    def additional_kes(self) -> tuple[KeMethod, ...]:
        """Methods of the IKE_INTERMEDIATE / IKE_FOLLOWUP_KE exchanges, in order."""
        return tuple(method for _, method in self.additional_ke_slots)

    @property
    def is_aead(self) -> bool:
        return self.encr.is_aead

    @property
    def is_post_quantum(self) -> bool:
        methods = (self.ke, *self.additional_kes)
        return any(m is not None and m.is_post_quantum for m in methods)

    def to_proposal(self, spi: bytes | None = None) -> Proposal:
        """The single proposal to answer with (keeps the offered number; the responder
        puts its own SPI for ESP and IKE rekeys)."""
        transforms = _answer_transforms(*self._algorithms())
        return Proposal(self.number, self.protocol, self.spi if spi is None else spi, transforms)

    def with_spi(self, spi: bytes) -> ChosenProposal:
        """The same choice carrying `spi` (what dataclasses.replace does, much faster)."""
        return ChosenProposal(self.protocol, self.number, spi, *self._algorithms())

    def _algorithms(self) -> tuple:
        """Every field after the SPI, in field order: what the answer's transforms and
        the strongSwan notation are made of."""
        return (
            self.encr,
            self.encr_key_bits,
            self.prf,
            self.integ,
            self.ke,
            self.additional_ke_slots,
            self.esn,
        )

    def __str__(self) -> str:
        """strongSwan's notation: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519/KE1_ML_KEM_768"""
        return _notation(self.protocol, *self._algorithms())


# Both are pure functions of a few algorithm numbers that every SA of a run repeats.


@lru_cache(maxsize=256)
def _answer_transforms(encr, encr_key_bits, prf, integ, ke, additional_ke_slots, esn):
    transforms = [Transform.make(TransformType.ENCR, encr, encr_key_bits)]
    if integ is not None:
        transforms.append(Transform.make(TransformType.INTEG, integ))
    if prf is not None:
        transforms.append(Transform.make(TransformType.PRF, prf))
    if ke is not None:
        transforms.append(Transform.make(TransformType.KE, ke))
    transforms += [Transform.make(t, m) for t, m in additional_ke_slots]
    if esn is not None:
        transforms.append(Transform.make(TransformType.ESN, int(esn)))
    return tuple(transforms)


@lru_cache(maxsize=256)
def _notation(protocol, encr, encr_key_bits, prf, integ, ke, additional_ke_slots, esn) -> str:
    parts = [encr.name.removeprefix("ENCR_") + (f"_{encr_key_bits}" if encr_key_bits else "")]
    parts += [x.name.removeprefix("AUTH_") for x in (integ, prf) if x is not None]
    if ke is not None:
        parts.append(ke.name)
    parts += [f"KE{t - TransformType.ADDKE1 + 1}_{m.name}" for t, m in additional_ke_slots]
    if esn is not None:
        parts.append("ESN" if esn else "NO_ESN")
    return f"{protocol.name}:" + "/".join(parts)


def _algorithms(proposal: Proposal | ProposalSpec, skip_ke: bool) -> dict[int, list[Algorithm]]:
    """Type -> algorithms in order. A transform with an attribute we do not understand is
    left out; the other transforms of its type still count (RFC 7296 §3.3.6)."""
    by_type: dict[int, list[Algorithm]] = {}
    for transform in proposal.transforms:
        if any(a.type != TransformAttribute.KEY_LENGTH for a in transform.attributes):
            continue
        if skip_ke and transform.type in _KE_TYPES:
            continue
        by_type.setdefault(int(transform.type), []).append(
            (int(transform.id), transform.key_length)
        )
    return by_type


def _ordered_types(*maps: dict[int, list[Algorithm]]) -> list[int]:
    types = set().union(*maps)
    known = [t for t in _TYPE_ORDER if t in types]
    return known + sorted(types - set(_TYPE_ORDER))


def _match(
    protocol: ProtocolId,
    preferred: dict[int, list[Algorithm]],
    other: dict[int, list[Algorithm]],
) -> dict[int, Algorithm] | None:
    """One algorithm per type, `preferred`'s order first (strongSwan select_algos)."""
    chosen: dict[int, Algorithm] = {}
    ke_options: list[tuple[int, list[Algorithm]]] = []
    for t_type in _ordered_types(preferred, other):
        if t_type == TransformType.INTEG and _is_aead(chosen.get(TransformType.ENCR)):
            continue
        mine, theirs = preferred.get(t_type, []), other.get(t_type, [])
        # RFC 9370 §2.2.2: a KE type absent on one side matches a NONE on the other,
        # for ADDKE always and for KE in ESP (PFS is optional, RFC 7296 §3.3.2).
        optional = t_type in ADDKE_TYPES or (
            t_type == TransformType.KE and protocol != ProtocolId.IKE
        )
        if not mine or not theirs:
            if optional and _NONE in (mine or theirs):
                continue
            return None
        common = [a for a in mine if a in theirs]
        if not common:
            return None
        if t_type in _KE_TYPES:
            ke_options.append((t_type, common))
        else:
            chosen[t_type] = common[0]
    methods = _distinct_methods(ke_options)
    if methods is None:
        return None
    chosen.update((t, a) for t, a in methods.items() if a != _NONE)
    return chosen


def _distinct_methods(
    options: list[tuple[int, list[Algorithm]]], used: frozenset[int] = frozenset()
) -> dict[int, Algorithm] | None:
    """The first choice, in preference order, that gives the KE and every ADDKE type a
    different method (NONE may repeat); None if there is none. Like strongSwan, which
    never picks a method twice, but with backtracking where its one pass gives up
    (strongSwan issue #2048)."""
    if not options:
        return {}
    (t_type, candidates), rest = options[0], options[1:]
    for candidate in candidates:
        method = candidate[0]
        if method != KeMethod.NONE and method in used:
            continue
        tail = _distinct_methods(rest, used | {method} if method else used)
        if tail is not None:
            return {t_type: candidate, **tail}
    return None


def _is_aead(algorithm: Algorithm | None) -> bool:
    if algorithm is None:
        return False
    try:
        return EncrId(algorithm[0]).is_aead
    except ValueError:
        return False


def _chosen(proposal: Proposal, picks: dict[int, Algorithm]) -> ChosenProposal | None:
    """A ChosenProposal from one pick per type, or None if something we cannot run was
    picked (we only ever match against our own, supported, configuration)."""
    protocol = ProtocolId(proposal.protocol)
    try:
        encr_id, key_bits = picks[TransformType.ENCR]
        encr = EncrId(encr_id)
        prf = PrfId(picks[TransformType.PRF][0]) if TransformType.PRF in picks else None
        integ = IntegId(picks[TransformType.INTEG][0]) if TransformType.INTEG in picks else None
        ke = KeMethod(picks[TransformType.KE][0]) if TransformType.KE in picks else None
        slots = tuple((t, KeMethod(picks[t][0])) for t in ADDKE_TYPES if t in picks)
        esn = bool(picks[TransformType.ESN][0]) if TransformType.ESN in picks else None
    except (KeyError, ValueError):
        return None
    if protocol == ProtocolId.IKE and (prf is None or esn is not None):
        return None
    if not encr.is_aead and integ is None:
        return None
    if protocol == ProtocolId.ESP and esn is None:
        return None
    return ChosenProposal(
        protocol, proposal.number, proposal.spi, encr, key_bits, prf, integ, ke, slots, esn
    )


def select_proposal(
    offered: Sequence[Proposal],
    configured: Sequence[ProposalSpec],
    *,
    require_pq: bool = False,
    skip_ke: bool = False,
    prefer_offered: bool = False,
) -> ChosenProposal | None:
    """The responder's choice among the peer's `offered` proposals, or None (answer
    NO_PROPOSAL_CHOSEN). `require_pq` accepts only results with an ML-KEM exchange (as
    KE or ADDKE); `skip_ke` ignores KE/ADDKE transforms (the Child SA of IKE_AUTH, whose
    keys come from the IKE SA). By default our configured order wins, like strongSwan's
    `prefer_configured_proposals = yes`."""
    ours = [(spec, _algorithms(spec, skip_ke)) for spec in configured]
    theirs = [(p, _algorithms(p, skip_ke)) for p in offered]
    pairs = (
        [(o, c) for o in theirs for c in ours]
        if prefer_offered
        else [(o, c) for c in ours for o in theirs]
    )
    for (proposal, their_algs), (spec, our_algs) in pairs:
        if proposal.protocol != spec.protocol:
            continue
        preferred, other = (their_algs, our_algs) if prefer_offered else (our_algs, their_algs)
        picks = _match(spec.protocol, preferred, other)
        if picks is None:
            continue
        chosen = _chosen(proposal, picks)
        if chosen is None or (require_pq and not skip_ke and not chosen.is_post_quantum):
            continue
        return chosen
    return None


def accept_chosen(
    chosen: Proposal,
    offered: Sequence[ProposalSpec | Proposal],
    *,
    require_pq: bool = False,
    skip_ke: bool = False,
) -> ChosenProposal:
    """Check the responder's answer against what we offered (RFC 7296 §3.3.6: exactly
    one transform of each offered type, all taken from the proposal it names) and
    return it; raise InvalidChosenProposal otherwise."""
    numbered = [
        (i, o) if isinstance(o, ProposalSpec) else (o.number, o) for i, o in enumerate(offered, 1)
    ]
    match = next((o for number, o in numbered if number == chosen.number), None)
    if match is None:
        raise InvalidChosenProposal(f"chosen proposal #{chosen.number} was not offered")
    if match.protocol != chosen.protocol:
        raise InvalidChosenProposal(
            f"chosen proposal #{chosen.number} is {name_of(ProtocolId, chosen.protocol)}, "
            f"offered {name_of(ProtocolId, match.protocol)}"
        )
    if any(
        a.type != TransformAttribute.KEY_LENGTH for t in chosen.transforms for a in t.attributes
    ):
        raise InvalidChosenProposal("chosen transform carries an attribute we never send")
    answer = _algorithms(chosen, skip_ke)
    ours = _algorithms(match, skip_ke)
    for t_type, algorithms in answer.items():
        name = name_of(TransformType, t_type)
        if len(algorithms) != 1:
            raise InvalidChosenProposal(f"chosen proposal has {len(algorithms)} {name} transforms")
        offered_none = (KeMethod.NONE, None) in ours.get(t_type, []) or (
            t_type in _KE_TYPES and t_type not in ours
        )
        if algorithms[0] not in ours.get(t_type, []) and not (
            algorithms[0] == (KeMethod.NONE, None) and offered_none
        ):
            raise InvalidChosenProposal(f"chosen {name} {algorithms[0][0]} was not offered")
    picks = {t: a[0] for t, a in answer.items()}
    for t_type, algorithms in ours.items():
        if t_type in picks:
            continue
        optional = (
            t_type in _KE_TYPES
            and t_type != TransformType.KE
            or (t_type == TransformType.KE and match.protocol != ProtocolId.IKE)
        )
        aead_integ = t_type == TransformType.INTEG and _is_aead(picks.get(TransformType.ENCR))
        if not aead_integ and not (optional and (KeMethod.NONE, None) in algorithms):
            raise InvalidChosenProposal(
                f"chosen proposal lacks {name_of(TransformType, t_type)}, which was offered"
            )
    methods = [a[0] for t, a in picks.items() if t in _KE_TYPES and a[0] != KeMethod.NONE]
    if len(methods) != len(set(methods)):
        raise InvalidChosenProposal("chosen proposal uses one key exchange method twice")
    picks = {t: a for t, a in picks.items() if not (t in _KE_TYPES and a[0] == KeMethod.NONE)}
    result = _chosen(chosen, picks)
    if result is None:
        raise InvalidChosenProposal("chosen proposal is incomplete or unsupported")
    if require_pq and not skip_ke and not result.is_post_quantum:
        raise InvalidChosenProposal("peer chose a proposal without ML-KEM but policy requires it")
    return result
