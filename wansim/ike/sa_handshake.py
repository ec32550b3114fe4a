"""The initial exchanges of an `IkeSa`: IKE_SA_INIT (with COOKIE and INVALID_KE_PAYLOAD
retries and NAT detection), one IKE_INTERMEDIATE per additional key exchange (RFC 9242,
RFC 9370) and IKE_AUTH with PSK or signatures and the first Child SA."""

from __future__ import annotations

from typing import Any

from wansim.crypto import KeyExchangeError, SignatureError, get_signature_scheme
from wansim.crypto.signatures import (
    auth_data,
    certificate_public_key,
    make_credentials,
    parse_auth_data,
)
from wansim.ike import keymat
from wansim.ike.constants import (
    NAT_T_PORT,
    AuthMethod,
    CertEncoding,
    ExchangeType,
    NotifyType,
    name_of,
)
from wansim.ike.events import (
    AuthenticationFailed,
    ChildSaEstablished,
    CookieDemanded,
    CryptoOp,
    IkeSaEstablished,
    KeyExchangeRedirected,
    NegotiationFailed,
)
from wansim.ike.message import IkeHeader
from wansim.ike.negotiation import (
    check_chosen,
    cipher_suite,
    id_text,
    ike_suite,
    ke_tokens,
    methods_of,
    narrow,
    sa_payload,
    select,
    ts_text,
)
from wansim.ike.payloads import (
    Auth,
    Certificate,
    IdInitiator,
    IdResponder,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
)
from wansim.ike.proposals import ProposalSpec
from wansim.ike.sa_records import (
    _ZERO_SPI,
    Addr,
    ChildSa,
    KeySet,
    State,
    _equal,
    _error_notify,
    _find,
    _find_notify,
    _Generation,
    _index,
    _nat_hash,
    _stateless_init_reply,
    _Violation,
)

# Bound once: attribute access on an Enum class is slow in Python 3.11.
_NAT_SOURCE = NotifyType.NAT_DETECTION_SOURCE_IP
_NAT_DESTINATION = NotifyType.NAT_DETECTION_DESTINATION_IP
_FRAGMENTATION_SUPPORTED = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED
_INTERMEDIATE_SUPPORTED = NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED


class _Handshake:
    """Mixin of `IkeSa`: IKE_SA_INIT, IKE_INTERMEDIATE and IKE_AUTH, both roles."""

    # --- IKE_SA_INIT ---------------------------------------------------------------

    def _offer(self) -> tuple[ProposalSpec, ...]:
        return self._ike_specs

    def _offers_addke(self) -> bool:
        return self._fixed.offers_addke

    def _send_sa_init(self, now: float, *, new_ke: bool = True) -> None:
        """Send (or, after COOKIE / INVALID_KE_PAYLOAD, resend) the IKE_SA_INIT request.
        SPIi and Ni stay the same across retries; a COOKIE retry also keeps KEi (digest
        §7.2: "the rest unchanged"), an INVALID_KE retry needs a key of the wanted group."""
        gen = self._gen
        ops: list[CryptoOp] = []
        kex = self._kex(self._ke_token)
        if new_ke or self._pending is None:
            self._pending = kex.initiate()
            ops.append((self._ke_token, "initiate"))
        payloads: list[Payload] = []
        if self._cookie is not None:
            payloads.append(Notify(NotifyType.COOKIE, self._cookie))
        payloads += [
            self._fixed.sa_init_offer,
            KeyExchange(kex.method_id, self._pending.share),
            Nonce(self._ni),
            Notify(
                NotifyType.NAT_DETECTION_SOURCE_IP, _nat_hash(gen.spi_i, _ZERO_SPI, self.local_addr)
            ),
            Notify(
                NotifyType.NAT_DETECTION_DESTINATION_IP,
                _nat_hash(gen.spi_i, _ZERO_SPI, self.remote_addr),
            ),
        ]
        payloads += self._init_notifies(request=True, peer_int=True, peer_frag=True)
        gen.next_mid = 0
        self._init_tries += 1
        req = self._request(
            gen, ExchangeType.IKE_SA_INIT, payloads, now, self._on_sa_init_response, ops
        )
        self._init_request = req.datagrams[0]

    def _init_notifies(self, *, request: bool, peer_int: bool, peer_frag: bool) -> list[Payload]:
        """Status notifies of IKE_SA_INIT after NAT-D, in strongSwan's order (vector)."""
        return list(self._fixed.init_notifies[request, peer_int, peer_frag])

    def _on_sa_init_request(self, gen: _Generation, header: IkeHeader, inner, now: float) -> None:
        """Responder: choose a proposal, run the main key exchange, send SAr1/KEr/Nr."""
        ops: list[CryptoOp] = []
        self.created_at = now  # the half-open timeout runs from here
        found, notifies = _index(inner)
        sa = found.get(SecurityAssociation)
        ke = found.get(KeyExchange)
        nonce = found.get(Nonce)
        if sa is None or ke is None or nonce is None:
            raise _Violation("IKE_SA_INIT request lacks SA, KE or Nonce")
        gen.spi_i = header.spi_i
        self._peer_frag = _FRAGMENTATION_SUPPORTED in notifies
        self._peer_intermediate = _INTERMEDIATE_SUPPORTED in notifies
        chosen = select(
            sa.proposals,
            self._offer(),
            require_pq=self.config.require_pq,
            allow_addke=self._peer_intermediate,
            ke_method=ke.method,
        )
        if chosen is None:
            self._stateless_reply(gen, header, Notify(NotifyType.NO_PROPOSAL_CHOSEN), now)
            self._fail(
                now, "no acceptable IKE proposal", "IKE_SA_INIT", NotifyType.NO_PROPOSAL_CHOSEN
            )
            return
        methods = methods_of(chosen)
        wanted = self._kex(methods[0])
        if ke.method != wanted.method_id:
            # RFC 7296 §1.2: name the group we want; keep no state.
            self._stateless_reply(
                gen,
                header,
                Notify(NotifyType.INVALID_KE_PAYLOAD, wanted.method_id.to_bytes(2, "big")),
                now,
            )
            self._close(now, None)
            return
        try:
            share, secret = wanted.respond(ke.data)
        except KeyExchangeError as error:
            ops.append((methods[0], "respond"))
            # draft-ietf-ipsecme-ikev2-mlkem §3: a malformed key is answered INVALID_SYNTAX.
            self._stateless_reply(gen, header, Notify(NotifyType.INVALID_SYNTAX), now)
            self._fail(now, f"invalid KEi: {error}", "IKE_SA_INIT", NotifyType.INVALID_SYNTAX)
            return
        ops.append((methods[0], "respond"))
        gen.spi_r = self._new_ike_spi()
        gen.proposal = chosen
        self._ni = nonce.data
        self._nr = self._random(self.config.nonce_bytes)
        self._derive_initial_keys(gen, header, inner, methods, secret)
        payloads: list[Payload] = [
            sa_payload([chosen]),
            KeyExchange(wanted.method_id, share),
            Nonce(self._nr),
            Notify(
                NotifyType.NAT_DETECTION_SOURCE_IP, _nat_hash(gen.spi_i, gen.spi_r, self.local_addr)
            ),
            Notify(
                NotifyType.NAT_DETECTION_DESTINATION_IP,
                _nat_hash(gen.spi_i, gen.spi_r, self.remote_addr),
            ),
        ]
        payloads += self._init_notifies(
            request=False, peer_int=self._peer_intermediate, peer_frag=self._peer_frag
        )
        self._init_request = self._current[2]  # the request as received
        datagrams, _ = self._respond(gen, header, payloads, now, ops)
        self._init_response = datagrams[0]
        self.state = State.INTERMEDIATE if self._addke else State.AUTH

    def _stateless_reply(self, gen, header: IkeHeader, notify: Notify, now) -> None:
        """An IKE_SA_INIT error response with SPIr = 0 and only one notify (§1.2, §2.6)."""
        data, record = _stateless_init_reply(header.spi_i, notify, now)
        self._out.append((data, self.remote_addr))
        if self._trace is not None:
            self._trace(record)

    def _derive_initial_keys(
        self, gen, header: IkeHeader, payloads, methods, secret: bytes
    ) -> None:
        """Either role, once IKE_SA_INIT is done: note the key exchanges still to run,
        derive the first key set (RFC 7296 §2.14) and compare the NAT-D hashes."""
        self._ke_methods = list(methods)
        self._addke = list(methods[1:])
        gen.keys = keymat.initial_keys(
            ike_suite(gen.proposal), secret, self._ni, self._nr, gen.spi_i, gen.spi_r
        )
        self.key_sets.append(KeySet(gen.spi_i, gen.spi_r, gen.keys, "IKE_SA_INIT"))
        self._detect_nat(header, payloads, self.remote_addr)

    def _detect_nat(self, header: IkeHeader, payloads, peer_addr: Addr) -> None:
        """RFC 7296 §2.23: compare the peer's NAT-D hashes (in IKE_SA_INIT's `payloads`)
        with the addresses we see."""
        src, dst = [], None
        for n in payloads:
            if isinstance(n, Notify):
                if n.type == _NAT_SOURCE:
                    src.append(n.data)
                elif n.type == _NAT_DESTINATION and dst is None:
                    dst = n
        if not src or dst is None:
            self._peer_natd = False
            return
        self._peer_natd = True
        spi_r = header.spi_r
        expected_src = _nat_hash(header.spi_i, spi_r, peer_addr)
        expected_dst = _nat_hash(header.spi_i, spi_r, self.local_addr)
        self.nat_detected = expected_src not in src or dst.data != expected_dst

    def _on_sa_init_response(self, gen: _Generation, header: IkeHeader, inner, now: float) -> None:
        found, notifies = _index(inner)
        cookie = notifies.get(NotifyType.COOKIE)
        invalid_ke = notifies.get(NotifyType.INVALID_KE_PAYLOAD)
        if cookie is not None or invalid_ke is not None:
            if self._init_tries > self.config.max_init_retries:
                raise _Violation("too many IKE_SA_INIT retries", None)
            if cookie is not None:
                self._cookie = cookie.data
                self._events.append(CookieDemanded(gen.spis, now))
            else:
                wanted = (
                    int.from_bytes(invalid_ke.data[:2], "big") if len(invalid_ke.data) >= 2 else -1
                )
                token = next(
                    (t for t in ke_tokens(self._offer()) if self._kex(t).method_id == wanted),
                    None,
                )
                if token is None:
                    raise _Violation(
                        f"responder wants KE method {wanted}, which we did not offer", None
                    )
                self._events.append(
                    KeyExchangeRedirected(gen.spis, now, "IKE_SA_INIT", token, self._ke_token)
                )
                self._ke_token = token
            self._send_sa_init(now, new_ke=invalid_ke is not None)
            return
        error = _error_notify(inner)
        if error is not None:
            self._fail(
                now,
                f"responder refused IKE_SA_INIT with {name_of(NotifyType, error.type)}",
                "IKE_SA_INIT",
                error.type,
                local=False,
            )
            return
        sa = found.get(SecurityAssociation)
        ke = found.get(KeyExchange)
        nonce = found.get(Nonce)
        if sa is None or ke is None or nonce is None or len(sa.proposals) != 1:
            raise _Violation("IKE_SA_INIT response lacks SA, KE or Nonce", None)
        chosen = check_chosen(sa.proposals[0], self._offer())
        if chosen is None:
            raise _Violation("responder chose a proposal we did not offer", None)
        methods = methods_of(chosen)
        if self.config.require_pq and not any(m.startswith("mlkem") for m in methods):
            raise _Violation("responder chose a proposal without ML-KEM", None)
        if methods[0] != self._ke_token or ke.method != self._kex(methods[0]).method_id:
            raise _Violation("responder's KE does not match the chosen proposal", None)
        req_ops = self._responding_to.ops
        secret = self._pending.finish(ke.data)
        req_ops.append((self._ke_token, "finish"))
        gen.spi_r = header.spi_r
        gen.proposal = chosen
        self._nr = nonce.data
        self._init_response = self._responding_to.response  # as received
        self._peer_frag = _FRAGMENTATION_SUPPORTED in notifies
        self._peer_intermediate = _INTERMEDIATE_SUPPORTED in notifies
        self._derive_initial_keys(gen, header, inner, methods, secret)
        if self.nat_detected or (self.config.port_4500 == "always" and self._peer_natd):
            self._floated = True
        self._next_handshake_step(now)

    # --- IKE_INTERMEDIATE (RFC 9242, RFC 9370) -------------------------------------

    def _next_handshake_step(self, now: float) -> None:
        if self._addke:
            self.state = State.INTERMEDIATE
            token = self._addke[0]
            self._pending = self._kex(token).initiate()
            kex = self._kex(token)
            self._request(
                self._gen,
                ExchangeType.IKE_INTERMEDIATE,
                [KeyExchange(kex.method_id, self._pending.share)],
                now,
                self._on_intermediate_response,
                [(token, "initiate")],
            )
        else:
            self.state = State.AUTH
            self._send_auth(now)

    def _on_intermediate_request(self, gen: _Generation, header: IkeHeader, inner, now: float):
        token = self._addke[0]
        kex = self._kex(token)
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != kex.method_id:
            raise _Violation(f"IKE_INTERMEDIATE must carry KE({token})")
        ops: list[CryptoOp] = [(token, "respond")]
        try:
            share, secret = kex.respond(ke.data)
        except KeyExchangeError as error:
            self._respond(gen, header, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
            self._fail(
                now, f"invalid KEi({token}): {error}", "IKE_INTERMEDIATE", NotifyType.INVALID_SYNTAX
            )
            return
        request_ap = self._current[5]
        # The response still goes out under SK_*(n-1) (RFC 9370 §2.2.2).
        _, response_ap = self._respond(gen, header, [KeyExchange(kex.method_id, share)], now, ops)
        self._advance_keys(gen, secret, request_ap, response_ap)
        self.state = State.INTERMEDIATE if self._addke else State.AUTH

    def _on_intermediate_response(self, gen: _Generation, header: IkeHeader, inner, now: float):
        token = self._addke[0]
        error = _error_notify(inner)
        if error is not None:
            self._fail(
                now,
                f"peer refused IKE_INTERMEDIATE with {name_of(NotifyType, error.type)}",
                "IKE_INTERMEDIATE",
                error.type,
                local=False,
            )
            return
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != self._kex(token).method_id:
            raise _Violation(f"IKE_INTERMEDIATE response must carry KE({token})", None)
        req = self._responding_to
        req.ops.append((token, "finish"))
        # draft-ietf-ipsecme-ikev2-mlkem §3: a malformed ciphertext aborts the SA.
        secret = self._pending.finish(ke.data)
        self._advance_keys(gen, secret, req.ap_chunk, req.response_ap)
        self._next_handshake_step(now)

    def _advance_keys(self, gen: _Generation, secret: bytes, request_ap: bytes, response_ap: bytes):
        """IntAuth with the keys that protected exchange n, then SK_*(n) (RFC 9370 §2.2.2)."""
        self._int_auth = self._int_auth.extend(gen.keys, request_ap, response_ap)
        gen.keys = keymat.intermediate_keys(
            gen.keys, secret, self._ni, self._nr, gen.spi_i, gen.spi_r
        )
        self._addke.pop(0)
        n = self._int_auth.exchanges
        self.key_sets.append(KeySet(gen.spi_i, gen.spi_r, gen.keys, f"IKE_INTERMEDIATE {n}"))

    # --- IKE_AUTH (RFC 7296 §1.2, §2.15; RFC 9242 §3.1) ----------------------------

    def _auth_octets(self, gen: _Generation, *, ours: bool, id_body: bytes, mid: int) -> bytes:
        keys = gen.keys
        we_i = gen.original_initiator
        signer_is_i = we_i if ours else not we_i
        real = self._init_request if signer_is_i else self._init_response
        nonce = self._nr if signer_is_i else self._ni
        sk_p = keys.pi if signer_is_i else keys.pr
        return keymat.signed_octets(
            keys.suite.prf, sk_p, real, nonce, id_body, self._int_auth.value(mid)
        )

    def _psk_auth(self, octets: bytes) -> bytes:
        return keymat.psk_auth(self._gen.keys.suite.prf, self.config.psk.encode(), octets)

    def _signer(self) -> tuple[Any, Any, bytes]:
        """(scheme, private key, DER certificate): injected, or made on first use."""
        if self._credentials is None:
            self._credentials = make_credentials(self.config.auth, self.config.local_id)
        key, cert = self._credentials
        return get_signature_scheme(self.config.auth), key, cert

    def _auth_payloads(self, octets: bytes, ops: list[CryptoOp]) -> tuple[list, Auth]:
        """(CERT payloads, AUTH payload) proving our identity over `octets`."""
        if self.config.auth == "psk":
            return [], Auth(AuthMethod.SHARED_KEY_MIC, self._psk_auth(octets))
        # RFC 7427 §3: Digital Signature with the scheme's AlgorithmIdentifier.
        scheme, key, cert = self._signer()
        ops.append((scheme.token, "sign"))
        data = auth_data(scheme, scheme.sign(key, octets))
        return [Certificate(CertEncoding.X509_SIGNATURE, cert)], Auth(
            AuthMethod.DIGITAL_SIGNATURE, data
        )

    def _send_auth(self, now: float) -> None:
        gen = self._gen
        mid = gen.next_mid
        idi = self._fixed.id_i
        octets = self._auth_octets(gen, ours=True, id_body=idi.body(), mid=mid)
        self._child_spi = self._new_child_spi()
        esp = self._esp_specs
        strongswan = self.config.profile == "strongswan"
        payloads: list[Payload] = [idi]
        if strongswan:
            payloads.append(Notify(NotifyType.INITIAL_CONTACT))
        if self._fixed.peer_id_r is not None:
            payloads.append(self._fixed.peer_id_r)
        ops: list[CryptoOp] = []
        certs, auth = self._auth_payloads(octets, ops)
        payloads[1:1] = certs  # IDi, CERT, ... as strongSwan orders them
        payloads += [
            auth,
            sa_payload(esp, spi=self._child_spi, skip_ke=True),
            TrafficSelectorsInitiator(self._fixed.local_ts),
            TrafficSelectorsResponder(self._fixed.remote_ts),
        ]
        payloads += self._auth_notifies(request=True)
        self._request(gen, ExchangeType.IKE_AUTH, payloads, now, self._on_auth_response, ops)

    def _auth_notifies(self, *, request: bool) -> list[Payload]:
        return list(self._fixed.auth_notifies[request])

    def _verify_peer(self, gen, inner, id_class, mid, ops: list[CryptoOp]) -> str | None:
        """None when the peer's identity and AUTH check out, else the reason."""
        id_payload, auth = _find(inner, id_class), _find(inner, Auth)
        if id_payload is None or auth is None:
            return "IKE_AUTH lacks the peer's ID or AUTH payload"
        peer_id = id_text(id_payload.kind, id_payload.data)
        if self.config.remote_id is not None and peer_id != self.config.remote_id:
            return f"peer identity {peer_id!r} is not the expected {self.config.remote_id!r}"
        octets = self._auth_octets(gen, ours=False, id_body=id_payload.body(), mid=mid)
        if auth.kind == AuthMethod.SHARED_KEY_MIC and self.config.auth == "psk":
            if not _equal(auth.data, self._psk_auth(octets)):
                return "AUTH payload does not verify (wrong pre-shared key?)"
            return None
        if auth.kind != AuthMethod.DIGITAL_SIGNATURE or self.config.auth == "psk":
            return f"peer used auth method {name_of(AuthMethod, auth.kind)}, not ours"
        # RFC 7427: the public key comes from the peer's (self-signed) end-entity CERT;
        # wansim models no PKI, so any well-formed certificate is taken as trusted.
        cert = _find(inner, Certificate)
        if cert is None:
            return "signature AUTH without a CERT payload"
        try:
            cert_scheme, public_key = certificate_public_key(cert.data)
            scheme, signature = parse_auth_data(auth.data)
            if scheme != cert_scheme:
                return f"AUTH uses {scheme.token}, the certificate a {cert_scheme.token} key"
            ops.append((scheme.token, "verify"))
            scheme.verify(public_key, octets, signature)
        except SignatureError as error:
            return f"signature AUTH does not verify: {error}"
        return None

    def _on_auth_request(self, gen: _Generation, header: IkeHeader, inner, now: float) -> None:
        mid = header.message_id
        ops: list[CryptoOp] = []
        problem = self._verify_peer(gen, inner, IdInitiator, mid, ops)
        if problem is not None:
            self._respond(gen, header, [Notify(NotifyType.AUTHENTICATION_FAILED)], now, ops)
            self._close(now, AuthenticationFailed(gen.spis, now, True, problem))
            return
        idr = self._fixed.id_r
        octets = self._auth_octets(gen, ours=True, id_body=idr.body(), mid=mid)
        certs, auth = self._auth_payloads(octets, ops)
        payloads: list[Payload] = [idr, *certs, auth]
        child_payloads, child = self._accept_child(
            inner, keys=gen.keys, ni=self._ni, nr=self._nr, skip_ke=True
        )
        payloads += child_payloads
        if child is not None:
            payloads += self._auth_notifies(request=False)
        self._respond(gen, header, payloads, now, ops)
        self._established(now)
        if child is not None:
            self._install_child(child, now)

    def _accept_child(self, inner, *, keys, ni, nr, skip_ke, secrets=()):
        """Responder side of a Child SA negotiation: (payloads to send, ChildSa or None)."""
        found, _ = _index(inner)
        sa = found.get(SecurityAssociation)
        tsi = found.get(TrafficSelectorsInitiator)
        tsr = found.get(TrafficSelectorsResponder)
        if sa is None or tsi is None or tsr is None:
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], None
        esp = self._esp_specs
        chosen = select(sa.proposals, esp, skip_ke=skip_ke)
        if chosen is None:
            return [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], None
        # Their TSi is our remote side; their TSr our local side.
        remote = narrow(self._fixed.remote_ts, tsi.selectors)
        local = narrow(self._fixed.local_ts, tsr.selectors)
        if not remote or not local:
            return [Notify(NotifyType.TS_UNACCEPTABLE)], None
        spi_in = self._new_child_spi()
        child = ChildSa(
            spi_in,
            chosen.spi,
            str(chosen),
            keymat.child_keys(keys, cipher_suite(chosen), ni, nr, secrets),
            False,
            ts_text(local),
            ts_text(remote),
        )
        payloads = [
            sa_payload([chosen], spi=spi_in),
            TrafficSelectorsInitiator(remote),
            TrafficSelectorsResponder(local),
        ]
        return payloads, child

    def _on_auth_response(self, gen: _Generation, header: IkeHeader, inner, now: float) -> None:
        req = self._responding_to
        if _find_notify(inner, NotifyType.AUTHENTICATION_FAILED) is not None:
            self._close(
                now, AuthenticationFailed(gen.spis, now, False, "peer sent AUTHENTICATION_FAILED")
            )
            return
        problem = self._verify_peer(gen, inner, IdResponder, req.mid, req.ops)
        if problem is not None:
            # RFC 7296 §2.21.2: tell the peer in a new INFORMATIONAL, then give up.
            self._request(
                gen,
                ExchangeType.INFORMATIONAL,
                [Notify(NotifyType.AUTHENTICATION_FAILED)],
                now,
                lambda *a: None,
            )
            gen.outstanding = None
            self._close(now, AuthenticationFailed(gen.spis, now, True, problem))
            return
        self._established(now)
        child = self._finish_child(
            inner,
            gen.keys,
            self._ni,
            self._nr,
            self._child_spi,
            skip_ke=True,
            secrets=(),
            exchange="IKE_AUTH",
            now=now,
        )
        if child is not None:
            self._install_child(child, now)

    def _finish_child(
        self, inner, keys, ni, nr, spi_in, *, skip_ke, secrets, exchange, now, chosen=None
    ):
        """Initiator side: check the responder's Child SA answer and derive its keys."""
        error = _error_notify(inner)
        if error is not None:
            self._events.append(
                NegotiationFailed(
                    self.ike_spis,
                    now,
                    exchange,
                    "peer refused the Child SA",
                    name_of(NotifyType, error.type),
                    False,
                )
            )
            return None
        found, _ = _index(inner)
        sa = found.get(SecurityAssociation)
        tsi = found.get(TrafficSelectorsInitiator)
        tsr = found.get(TrafficSelectorsResponder)
        if chosen is None:
            if sa is None or len(sa.proposals) != 1 or tsi is None or tsr is None:
                self._events.append(
                    NegotiationFailed(
                        self.ike_spis, now, exchange, "Child SA answer lacks SA or TS", None, True
                    )
                )
                return None
            esp = self._esp_specs
            chosen = check_chosen(sa.proposals[0], esp, skip_ke=skip_ke)
            if chosen is None:
                self._events.append(
                    NegotiationFailed(
                        self.ike_spis,
                        now,
                        exchange,
                        "peer chose an ESP proposal we did not offer",
                        None,
                        True,
                    )
                )
                return None
        local = tsi.selectors if tsi is not None else self._fixed.local_ts
        remote = tsr.selectors if tsr is not None else self._fixed.remote_ts
        return ChildSa(
            spi_in,
            chosen.spi,
            str(chosen),
            keymat.child_keys(keys, cipher_suite(chosen), ni, nr, secrets),
            True,
            ts_text(local),
            ts_text(remote),
        )

    def _established(self, now: float) -> None:
        self.state = State.ESTABLISHED
        self.established_at = now
        self._events.append(
            IkeSaEstablished(
                self.ike_spis,
                self.initiator,
                now,
                self._round_trips,
                tuple(self._ke_methods),
                str(self._gen.proposal),
                self.nat_detected,
                NAT_T_PORT if self._floated else 500,
            )
        )

    def _install_child(self, child: ChildSa, now: float) -> None:
        self.children[child.spi_in] = child
        self._events.append(
            ChildSaEstablished(
                self.ike_spis, child.spis, now, child.proposal, (child.local_ts, child.remote_ts)
            )
        )
