"""INFORMATIONAL exchanges of an `IkeSa` (RFC 7296 §1.4): liveness checks, Delete of
the IKE SA or of Child SAs, and AUTHENTICATION_FAILED after IKE_AUTH."""

from __future__ import annotations

from wansim.ike.constants import NotifyType, ProtocolId
from wansim.ike.events import AuthenticationFailed, ChildSaDeleted, IkeSaDeleted
from wansim.ike.payloads import Delete
from wansim.ike.sa_records import _find_notify

# Bound once: attribute access on an Enum class is slow in Python 3.11.
_IKE, _ESP = ProtocolId.IKE, ProtocolId.ESP
_AUTHENTICATION_FAILED = NotifyType.AUTHENTICATION_FAILED


class _Informational:
    """Mixin of `IkeSa`: answering and concluding INFORMATIONAL exchanges."""

    # --- INFORMATIONAL (RFC 7296 §1.4) ---------------------------------------------

    def _on_informational_request(self, gen, header, inner, now) -> None:
        deletes = [p for p in inner if isinstance(p, Delete)]
        if deletes and any([d.protocol == _IKE for d in deletes]):
            self._respond(gen, header, [], now)
            if gen.retired:
                self._retire(gen, now, by_peer=True)
            else:
                self._close(now, IkeSaDeleted(gen.spis, now, True, "delete"))
            return
        ours = []
        for d in deletes:
            if d.protocol != _ESP:
                continue
            for spi in d.spis:
                child = None
                for c in self.children.values():
                    if c.spi_out == spi:
                        child = c
                        break
                if child is not None:
                    del self.children[child.spi_in]
                    self._superseded.discard(child.spi_in)
                    ours.append(child.spi_in)
                    self._events.append(ChildSaDeleted(gen.spis, child.spis, now, True))
        payloads = [Delete(_ESP, tuple(ours))] if ours else []
        if _find_notify(inner, _AUTHENTICATION_FAILED) is not None:
            self._respond(gen, header, payloads, now)
            self._close(
                now, AuthenticationFailed(gen.spis, now, False, "peer sent AUTHENTICATION_FAILED")
            )
            return
        self._respond(gen, header, payloads, now)

    def _on_liveness_response(self, gen, header, inner, now) -> None:
        """The peer is alive; nothing else to do."""

    def _on_delete_response(self, gen, header, inner, now) -> None:
        self._close(now, IkeSaDeleted(gen.spis, now, False, "delete"))

    def _on_child_delete_response(self, gen, header, inner, now) -> None:
        """RFC 7296 §1.4.1: once answered, the Child SA is gone on both ends — also when
        the peer had already dropped its half (an earlier answer was lost) and lists none."""
        _, spi_in = self._responding_to.command
        gone = {spi_in} if spi_in in self.children else set()
        for d in (p for p in inner if isinstance(p, Delete)):
            gone |= {c.spi_in for c in self.children.values() if c.spi_out in d.spis}
        for spi in sorted(gone):
            child = self.children.pop(spi)
            self._superseded.discard(spi)
            self._events.append(ChildSaDeleted(gen.spis, child.spis, now, False))
