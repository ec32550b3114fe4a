"""Rekeys of an `IkeSa`: CREATE_CHILD_SA for Child SAs and the IKE SA with PFS, the
IKE_FOLLOWUP_KE exchanges of additional key exchanges (RFC 7296 §1.3, RFC 9370 §2.2.3-
2.2.4), simultaneous-rekey refusal with retry, and retiring the old IKE SA."""

from __future__ import annotations

from wansim.crypto import KeyExchangeError
from wansim.ike import keymat
from wansim.ike.constants import ExchangeType, NotifyType, ProtocolId, name_of
from wansim.ike.events import (
    ChildSaRekeyed,
    CryptoOp,
    IkeSaDeleted,
    IkeSaRekeyed,
    KeyExchangeRedirected,
    NegotiationFailed,
)
from wansim.ike.negotiation import (
    check_chosen,
    cipher_suite,
    ike_suite,
    ke_tokens,
    methods_of,
    narrow,
    sa_payload,
    select,
    selectors,
    ts_text,
)
from wansim.ike.payloads import (
    Delete,
    KeyExchange,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
    TrafficSelectorsInitiator,
    TrafficSelectorsResponder,
)
from wansim.ike.sa_records import (
    ChildSa,
    KeySet,
    _error_notify,
    _find,
    _find_notify,
    _Generation,
    _index,
    _ke_method,
    _Rekey,
    _Request,
    _Violation,
)

# Bound once: attribute access on an Enum class is slow in Python 3.11, and every rekey
# names these.
_REKEY_SA, _ADDKE = NotifyType.REKEY_SA, NotifyType.ADDITIONAL_KEY_EXCHANGE
_ESP, _IKE = ProtocolId.ESP, ProtocolId.IKE
_CREATE_CHILD_SA, _IKE_FOLLOWUP_KE = ExchangeType.CREATE_CHILD_SA, ExchangeType.IKE_FOLLOWUP_KE
_INFORMATIONAL = ExchangeType.INFORMATIONAL


class _Rekeys:
    """Mixin of `IkeSa`: CREATE_CHILD_SA and IKE_FOLLOWUP_KE, both roles."""

    # --- CREATE_CHILD_SA and IKE_FOLLOWUP_KE (RFC 7296 §1.3, RFC 9370 §2.2.3-2.2.4) --

    def _start_child_rekey(self, child: ChildSa, now: float, ke: str | None = None) -> None:
        esp = self._esp_specs
        run = _Rekey(
            "child",
            True,
            self._new_child_spi(),
            self._random(self.config.nonce_bytes),
            old_child=child,
            local_ts=child.local_ts,
            remote_ts=child.remote_ts,
        )
        ops: list[CryptoOp] = []
        payloads: list[Payload] = [
            Notify(_REKEY_SA, protocol=_ESP, spi=child.spi_in),
            sa_payload(esp, spi=run.new_spi),
            Nonce(run.nonce),
        ]
        tokens = ke_tokens(esp)
        if tokens:  # PFS (RFC 7296 §1.3.1): KEi for the first proposal's method
            payloads.append(self._rekey_ke(run, ke or tokens[0], ops))
        payloads += [
            TrafficSelectorsInitiator(selectors(child.local_ts)),
            TrafficSelectorsResponder(selectors(child.remote_ts)),
        ]
        self._send_rekey_request(run, payloads, now, ops)

    def _start_ike_rekey(self, now: float, ke: str | None = None) -> None:
        run = _Rekey("ike", True, self._new_ike_spi(), self._random(self.config.nonce_bytes))
        ops: list[CryptoOp] = []
        payloads: list[Payload] = [
            sa_payload(self._offer(), spi=run.new_spi),
            Nonce(run.nonce),
            self._rekey_ke(run, ke or methods_of(self._gen.proposal)[0], ops),
        ]
        self._send_rekey_request(run, payloads, now, ops)

    def _send_rekey_request(
        self, run: _Rekey, payloads: list[Payload], now: float, ops: list[CryptoOp]
    ) -> None:
        """Start `run` with its CREATE_CHILD_SA request (RFC 7296 §1.3)."""
        self._rekey = run
        self._request(
            self._gen,
            _CREATE_CHILD_SA,
            payloads,
            now,
            self._on_create_child_sa_response,
            ops,
        )

    def _rekey_ke(self, run: _Rekey, token: str, ops: list[CryptoOp]) -> KeyExchange:
        kex = self._kex(token)
        run.pending = kex.initiate()
        run.methods = [token]
        ops.append((token, "initiate"))
        return KeyExchange(kex.method_id, run.pending.share)

    def _on_create_child_sa_request(self, gen, header, inner, now) -> None:
        found, notifies = _index(inner)
        if self._rekey is not None:
            # Simultaneous rekeys: refuse; both sides retry later (RFC 7296 §2.25).
            self._respond(gen, header, [Notify(NotifyType.TEMPORARY_FAILURE)], now)
            return
        # With one request in flight per direction, a new CREATE_CHILD_SA means the peer
        # abandoned any run of IKE_FOLLOWUP_KE exchanges it had started with us.
        self._peer_rekey = None
        rekey_sa = notifies.get(_REKEY_SA)
        sa = found.get(SecurityAssociation)
        nonce = found.get(Nonce)
        if sa is None or nonce is None:
            raise _Violation("CREATE_CHILD_SA lacks SA or Nonce")
        is_ike = bool(sa.proposals) and sa.proposals[0].protocol == _IKE
        ops: list[CryptoOp] = []
        if is_ike:
            offer = self._offer()
            chosen = select(
                sa.proposals,
                offer,
                require_pq=self.config.require_pq,
                allow_addke=True,
            )
            run = _Rekey("ike", False, self._new_ike_spi(), self._random(self.config.nonce_bytes))
        else:
            old = None
            if rekey_sa is not None:
                old = next((c for c in self.children.values() if c.spi_out == rekey_sa.spi), None)
                if old is None:
                    self._respond(
                        gen,
                        header,
                        [
                            Notify(
                                NotifyType.CHILD_SA_NOT_FOUND,
                                protocol=_ESP,
                                spi=rekey_sa.spi,
                            )
                        ],
                        now,
                    )
                    return
            if old is not None and old.spi_in in self._superseded:
                # RFC 7296 §2.25.1: this Child SA is already replaced and being deleted.
                self._respond(gen, header, [Notify(NotifyType.TEMPORARY_FAILURE)], now)
                return
            offer = self._esp_specs
            chosen = select(sa.proposals, offer, ke_method=_ke_method(inner))
            run = _Rekey(
                "child",
                False,
                self._new_child_spi(),
                self._random(self.config.nonce_bytes),
                old_child=old,
            )
        if chosen is None:
            self._respond(gen, header, [Notify(NotifyType.NO_PROPOSAL_CHOSEN)], now)
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "CREATE_CHILD_SA",
                    "no acceptable proposal",
                    "NO_PROPOSAL_CHOSEN",
                    True,
                )
            )
            return
        methods = methods_of(chosen)
        ke = found.get(KeyExchange)
        payloads: list[Payload] = [
            sa_payload([chosen], spi=run.new_spi),
            Nonce(run.nonce),
        ]
        if methods:
            kex = self._kex(methods[0])
            if ke is None or ke.method != kex.method_id:
                self._respond(
                    gen,
                    header,
                    [Notify(NotifyType.INVALID_KE_PAYLOAD, kex.method_id.to_bytes(2, "big"))],
                    now,
                )
                return
            ops.append((methods[0], "respond"))
            try:
                share, secret = kex.respond(ke.data)
            except KeyExchangeError as error:
                self._respond(gen, header, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
                self._events.append(
                    NegotiationFailed(
                        gen.spis,
                        now,
                        "CREATE_CHILD_SA",
                        f"invalid KEi: {error}",
                        "INVALID_SYNTAX",
                        True,
                    )
                )
                return
            payloads.append(KeyExchange(kex.method_id, share))
            run.secrets.append(secret)
        run.proposal = chosen
        run.methods = list(methods)
        run.peer_spi = chosen.spi
        run.peer_nonce = nonce.data
        if not is_ike:
            tsi = found.get(TrafficSelectorsInitiator)
            tsr = found.get(TrafficSelectorsResponder)
            remote = narrow(self._fixed.remote_ts, tsi.selectors if tsi else ())
            local = narrow(self._fixed.local_ts, tsr.selectors if tsr else ())
            if not remote or not local:
                self._respond(gen, header, [Notify(NotifyType.TS_UNACCEPTABLE)], now, ops)
                return
            run.local_ts, run.remote_ts = ts_text(local), ts_text(remote)
            payloads += [TrafficSelectorsInitiator(remote), TrafficSelectorsResponder(local)]
        remaining = methods[1:] if methods else []
        if remaining:
            run.link = self._random(1)
            payloads.append(Notify(_ADDKE, run.link))
            self._peer_rekey = run
            self._respond(gen, header, payloads, now, ops)
        else:
            self._respond(gen, header, payloads, now, ops)
            self._complete_rekey(run, now)

    def _rekey_answered(
        self, inner: list[Payload]
    ) -> tuple[_Rekey | None, _Request | None, Notify | None]:
        """The rekey a response answers (None if none is running), its request, and the
        peer's error Notify, if any — which ends the rekey."""
        run = self._rekey
        if run is None:
            return None, None, None
        error = _error_notify(inner)
        if error is not None:
            self._rekey = None
        return run, self._responding_to, error

    def _report_refusal(self, gen, run: _Rekey, exchange: str, error: Notify, now) -> None:
        self._events.append(
            NegotiationFailed(
                gen.spis,
                now,
                exchange,
                f"peer refused the {run.kind} rekey",
                name_of(NotifyType, error.type),
                False,
            )
        )

    def _finish_ke(
        self, run: _Rekey, req: _Request, token: str, data: bytes, what: str, now
    ) -> bool:
        """Finish our side of a rekey key exchange; False (IKE SA being deleted) when the
        peer's `what` (KEr) is invalid."""
        req.ops.append((token, "finish"))
        try:
            run.secrets.append(run.pending.finish(data))
        except KeyExchangeError as error:
            self._abort_rekey_with_delete(f"invalid {what}: {error}", now)
            return False
        return True

    def _on_create_child_sa_response(self, gen, header, inner, now) -> None:
        found, notifies = _index(inner)
        run, req, error = self._rekey_answered(inner)
        if run is None:
            return
        if error is not None:
            if error.type == NotifyType.INVALID_KE_PAYLOAD and len(error.data) >= 2:
                # RFC 7296 §1.3: retry once with the method the responder asks for,
                # if we offered it (INVALID_KE concerns KE(0) only, RFC 9370 §2.2.3).
                wanted = int.from_bytes(error.data[:2], "big")
                specs = self._offer() if run.kind == "ike" else self._esp_specs
                token = next(
                    (t for t in ke_tokens(specs) if self._kex(t).method_id == wanted),
                    None,
                )
                offered = run.methods[0] if run.methods else ""
                if token is not None and token != offered:
                    self._events.append(
                        KeyExchangeRedirected(gen.spis, now, "CREATE_CHILD_SA", token, offered)
                    )
                    if run.kind == "ike":
                        self._start_ike_rekey(now, ke=token)
                    elif run.old_child is not None and run.old_child.spi_in in self.children:
                        self._start_child_rekey(run.old_child, now, ke=token)
                    return
            self._report_refusal(gen, run, "CREATE_CHILD_SA", error, now)
            if error.type == NotifyType.TEMPORARY_FAILURE:
                self._schedule_retry(run, now)
            return
        sa = found.get(SecurityAssociation)
        nonce = found.get(Nonce)
        if sa is None or nonce is None or len(sa.proposals) != 1:
            self._rekey = None
            raise _Violation("CREATE_CHILD_SA response lacks SA or Nonce", None)
        offer = self._offer() if run.kind == "ike" else self._esp_specs
        chosen = check_chosen(sa.proposals[0], offer)
        if chosen is None:
            self._rekey = None
            raise _Violation("peer chose a proposal we did not offer", None)
        methods = methods_of(chosen)
        run.proposal, run.peer_spi, run.peer_nonce = chosen, chosen.spi, nonce.data
        if methods:
            ke = found.get(KeyExchange)
            if not run.methods or run.methods[0] != methods[0] or ke is None:
                self._rekey = None
                raise _Violation("peer's KE does not match the chosen proposal", None)
            if not self._finish_ke(run, req, methods[0], ke.data, "KEr", now):
                return
        if run.kind == "child":
            tsi = found.get(TrafficSelectorsInitiator)
            tsr = found.get(TrafficSelectorsResponder)
            run.local_ts = ts_text(tsi.selectors) if tsi else run.local_ts
            run.remote_ts = ts_text(tsr.selectors) if tsr else run.remote_ts
        run.methods = list(methods)
        link = notifies.get(_ADDKE)
        if len(methods) > 1:
            if link is None:
                self._rekey = None
                raise _Violation("additional key exchanges chosen but no link notify", None)
            run.link = link.data
            self._send_followup(run, 1, now)
        else:
            self._complete_rekey(run, now)

    def _send_followup(self, run: _Rekey, index: int, now: float) -> None:
        token = run.methods[index]
        ops: list[CryptoOp] = []
        kex = self._kex(token)
        run.pending = kex.initiate()
        ops.append((token, "initiate"))
        payloads = [
            KeyExchange(kex.method_id, run.pending.share),
            Notify(_ADDKE, run.link),
        ]
        self._request(
            self._gen,
            _IKE_FOLLOWUP_KE,
            payloads,
            now,
            self._on_followup_ke_response,
            ops,
        )

    def _on_followup_ke_request(self, gen, header, inner, now) -> None:
        run = self._peer_rekey
        link = _find_notify(inner, _ADDKE)
        if run is None or link is None or link.data != run.link:
            # RFC 9370 §2.2.3: unknown or missing link.
            self._respond(gen, header, [Notify(NotifyType.STATE_NOT_FOUND)], now)
            return
        index = len(run.secrets)
        token = run.methods[index]
        kex = self._kex(token)
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != kex.method_id:
            raise _Violation(f"IKE_FOLLOWUP_KE must carry KE({token})")
        ops: list[CryptoOp] = [(token, "respond")]
        try:
            share, secret = kex.respond(ke.data)
        except KeyExchangeError as error:
            self._peer_rekey = None
            self._respond(gen, header, [Notify(NotifyType.INVALID_SYNTAX)], now, ops)
            self._events.append(
                NegotiationFailed(
                    gen.spis,
                    now,
                    "IKE_FOLLOWUP_KE",
                    f"invalid KEi: {error}",
                    "INVALID_SYNTAX",
                    True,
                )
            )
            return
        run.secrets.append(secret)
        payloads: list[Payload] = [KeyExchange(kex.method_id, share)]
        if len(run.secrets) < len(run.methods):
            run.link = self._random(1)
            payloads.append(Notify(_ADDKE, run.link))
            self._respond(gen, header, payloads, now, ops)
        else:
            self._peer_rekey = None
            self._respond(gen, header, payloads, now, ops)
            self._complete_rekey(run, now)

    def _on_followup_ke_response(self, gen, header, inner, now) -> None:
        run, req, error = self._rekey_answered(inner)
        if run is None:
            return
        if error is not None:
            self._report_refusal(gen, run, "IKE_FOLLOWUP_KE", error, now)
            return
        index = len(run.secrets)
        token = run.methods[index]
        ke = _find(inner, KeyExchange)
        if ke is None or ke.method != self._kex(token).method_id:
            self._rekey = None
            raise _Violation(f"IKE_FOLLOWUP_KE response must carry KE({token})", None)
        if not self._finish_ke(run, req, token, ke.data, f"KEr({token})", now):
            return
        if len(run.secrets) < len(run.methods):
            link = _find_notify(inner, _ADDKE)
            if link is None:
                self._rekey = None
                raise _Violation("more key exchanges pending but no link notify", None)
            run.link = link.data
            self._send_followup(run, len(run.secrets), now)
        else:
            self._complete_rekey(run, now)

    def _abort_rekey_with_delete(self, reason: str, now: float) -> None:
        """draft-ietf-ipsecme-ikev2-mlkem §3: a bad ciphertext in a rekey deletes the IKE SA."""
        self._rekey = None
        self._events.append(
            NegotiationFailed(self.ike_spis, now, "CREATE_CHILD_SA", reason, None, True)
        )
        self._queue.appendleft(("delete", None))

    def _complete_rekey(self, run: _Rekey, now: float) -> None:
        """Derive the new keys once every exchange of the run is done (strongSwan)."""
        gen = self._gen
        if run.requester:
            self._rekey = None
            ni, nr = run.nonce, run.peer_nonce
        else:
            ni, nr = run.peer_nonce, run.nonce
        if run.kind == "child":
            initiator = run.requester
            child = ChildSa(
                run.new_spi,
                run.peer_spi,
                str(run.proposal),
                keymat.child_keys(gen.keys, cipher_suite(run.proposal), ni, nr, run.secrets),
                initiator,
                run.local_ts or (run.old_child.local_ts if run.old_child else ()),
                run.remote_ts or (run.old_child.remote_ts if run.old_child else ()),
            )
            self.children[child.spi_in] = child
            if run.old_child is not None:
                self._superseded.add(run.old_child.spi_in)
                self._events.append(
                    ChildSaRekeyed(
                        gen.spis, run.old_child.spis, child.spis, now, tuple(run.methods)
                    )
                )
                if run.requester:
                    self._queue.appendleft(("delete_child", run.old_child.spi_in))
            else:
                self._install_child(child, now)
            return
        spi_i, spi_r = (run.new_spi, run.peer_spi) if run.requester else (run.peer_spi, run.new_spi)
        new = _Generation(spi_i, spi_r, run.requester, proposal=run.proposal)
        new.keys = keymat.rekeyed_keys(
            gen.keys, ike_suite(run.proposal), run.secrets, ni, nr, spi_i, spi_r
        )
        self.key_sets.append(KeySet(spi_i, spi_r, new.keys, "IKE rekey"))
        gen.retired = True
        self._old_gens.append(gen)
        self._gen = new
        self._ke_methods = list(run.methods)
        self._events.append(IkeSaRekeyed(gen.spis, new.spis, now, tuple(run.methods)))
        if run.requester:
            # RFC 7296 §1.3.2: the rekey's initiator deletes the old IKE SA.
            self._request(
                gen,
                _INFORMATIONAL,
                [Delete(_IKE)],
                now,
                self._on_old_sa_deleted,
            )

    def _on_old_sa_deleted(self, gen, header, inner, now) -> None:
        self._retire(gen, now, by_peer=False)

    def _retire(self, gen: _Generation, now: float, *, by_peer: bool) -> None:
        """Forget an old IKE SA; a request of ours still pending on it moves to the new
        SA (a Child SA Delete or liveness check), or its rekey run starts over."""
        if gen in self._old_gens:
            self._old_gens.remove(gen)
        req, gen.outstanding = gen.outstanding, None
        if req is not None and req.command is not None:
            self._queue.appendleft(req.command)
        elif (
            req is not None
            and self._rekey is not None
            and req.exchange
            in (
                _CREATE_CHILD_SA,
                _IKE_FOLLOWUP_KE,
            )
        ):
            run, self._rekey = self._rekey, None
            child = run.old_child.spi_in if run.old_child is not None else None
            self._queue.appendleft(("child", child) if run.kind == "child" else ("ike", None))
        self._events.append(IkeSaDeleted(gen.spis, now, by_peer, "rekeyed"))
        self._pump(now)

    def _schedule_retry(self, run: _Rekey, now: float) -> None:
        """Retry a rekey refused with TEMPORARY_FAILURE after a role-dependent random
        back-off, so two colliding rekeys cannot collide forever."""
        u = int.from_bytes(self._random(2), "big") / 65536
        base = 1.0 if self._gen.original_initiator else 2.0
        self._retry_at = now + base * (1.0 + u)
        child = run.old_child.spi_in if run.old_child is not None else None
        self._retry_cmd = ("child", child) if run.kind == "child" else ("ike", None)
