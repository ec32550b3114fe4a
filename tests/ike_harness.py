"""Two sans-I/O IKE endpoints wired together in memory on a fake clock.

Anything with the engine's driver API (`receive_datagram`, `datagrams_to_send`,
`get_timer`, `handle_timer`, `next_event`) can be an endpoint: an `IkeSa` or a
`Gateway`. Datagrams travel with a fixed one-way delay; a `tamper` hook may drop
(return None) or rewrite any datagram, so tests can inject loss and corruption. Every
datagram put on the wire is logged in `wire` for size assertions.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Addr = tuple[str, int]


@dataclass
class Sent:
    at: float
    src: str  # "i" or "r"
    dst_addr: Addr
    data: bytes
    delivered: bool = True

    @property
    def ike_bytes(self) -> int:
        """The IKE message length on the wire, without a non-ESP marker."""
        return len(self.data) - (4 if self.data[:4] == b"\0\0\0\0" else 0)


# tamper(sent, index) -> None to drop, or the (possibly changed) bytes to deliver;
# index counts every datagram sent so far, starting at 0.
Tamper = Callable[[Sent, int], bytes | None]


@dataclass
class Harness:
    initiator: Any
    responder: Any
    initiator_addr: Addr = ("192.0.2.1", 500)
    responder_addr: Addr = ("192.0.2.2", 500)
    one_way_s: float = 0.010
    tamper: Tamper | None = None
    now: float = 0.0
    wire: list[Sent] = field(default_factory=list)
    events: dict[str, list] = field(default_factory=lambda: {"i": [], "r": []})
    _queue: list = field(default_factory=list)
    _seq: int = 0

    def endpoint(self, side: str) -> Any:
        return self.initiator if side == "i" else self.responder

    def flush(self) -> None:
        """Move every endpoint's output onto the wire and its events into `events`."""
        for side in ("i", "r"):
            ep = self.endpoint(side)
            for data, dest in ep.datagrams_to_send(self.now):
                sent = Sent(self.now, side, dest, data)
                index = len(self.wire)
                self.wire.append(sent)
                if self.tamper is not None:
                    data = self.tamper(sent, index)
                    if data is None:
                        sent.delivered = False
                        continue
                src_port = 4500 if dest[1] == 4500 else 500
                base = self.initiator_addr if side == "i" else self.responder_addr
                target = "r" if side == "i" else "i"
                self._seq += 1
                heapq.heappush(
                    self._queue,
                    (self.now + self.one_way_s, self._seq, target, data, (base[0], src_port)),
                )
            while (event := ep.next_event()) is not None:
                self.events[side].append(event)

    def run(self, until: float | None = None, max_steps: int = 100_000) -> None:
        """Deliver datagrams and fire timers in time order until idle (or `until`)."""
        self.flush()
        for _ in range(max_steps):
            candidates = []
            if self._queue:
                candidates.append((self._queue[0][0], 0, "deliver"))
            for order, side in enumerate(("i", "r"), start=1):
                timer = self.endpoint(side).get_timer()
                if timer is not None:
                    candidates.append((max(timer, self.now), order, side))
            if not candidates:
                return
            at, _, what = min(candidates)
            if until is not None and at > until:
                self.now = until
                return
            self.now = at
            if what == "deliver":
                _, _, target, data, addr = heapq.heappop(self._queue)
                self.endpoint(target).receive_datagram(data, addr, self.now)
            else:
                self.endpoint(what).handle_timer(self.now)
            self.flush()
        raise RuntimeError("harness did not settle: an endpoint keeps producing work")

    def of_type(self, side: str, cls: type) -> list:
        return [e for e in self.events[side] if isinstance(e, cls)]
