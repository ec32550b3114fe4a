"""The asyncio UDP driver for the sans-I/O IKE engine: feed, drain, send, re-arm the timer.

It mirrors the simpy driver (`wansim.sim.driver.EngineDriver`): the engine's clock is the
event loop's monotonic clock, shifted so the session starts at 0. Two knobs adapt the
engine's view of ports to a real peer on private ports (charon anywhere but 500/4500):

- `always_marker`: prepend the non-ESP marker (RFC 3948 §2.2) to every datagram we send,
  IKE_SA_INIT included, as charon demands on any port other than 500; received markers
  are left for the engine, which strips them.
- `nat_t_port`: the peer's real NAT-T port. The engine floats to UDP 4500 after NAT
  detection (RFC 7296 §2.23); the driver sends those datagrams to `nat_t_port` instead and
  shows datagrams from `nat_t_port` to the engine as coming from 4500.

Every datagram sent or received is recorded as a `CapturedDatagram` (on the wire, marker
included) so a session can be written with `wansim.ike.pcap`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wansim.ike.constants import NAT_T_PORT, NON_ESP_MARKER
from wansim.ike.pcap import CapturedDatagram

Addr = tuple[str, int]


class UdpDriver(asyncio.DatagramProtocol):
    """Runs one engine endpoint (`IkeSa`, or anything with its driver API) on a UDP socket."""

    def __init__(
        self,
        endpoint: Any,
        *,
        on_event: Callable[[Any], None],
        always_marker: bool = False,
        nat_t_port: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._on_event = on_event
        self._always_marker = always_marker
        self._nat_t_port = nat_t_port
        self._loop = asyncio.get_running_loop()
        self._started_at = self._loop.time()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.local_addr: Addr = ("0.0.0.0", 0)
        self.capture: list[CapturedDatagram] = []

    @property
    def now(self) -> float:
        """Seconds since the driver started: the engine's `now`."""
        return self._loop.time() - self._started_at

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("sockname")[:2]
        self.local_addr = (host, port)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        now = self.now
        peer = (addr[0], addr[1])
        self.capture.append(CapturedDatagram(now, peer, self.local_addr, data))
        if self._nat_t_port is not None and peer[1] == self._nat_t_port:
            peer = (peer[0], NAT_T_PORT)
        self.endpoint.receive_datagram(data, peer, now)
        self.flush()

    def flush(self) -> None:
        """Send what the engine has queued, report its events, re-arm its timer."""
        now = self.now
        for data, dest in self.endpoint.datagrams_to_send(now):
            if self._nat_t_port is not None and dest[1] == NAT_T_PORT:
                dest = (dest[0], self._nat_t_port)
            if self._always_marker and not data.startswith(NON_ESP_MARKER):
                data = NON_ESP_MARKER + data
            if self._transport is None:
                raise RuntimeError("UdpDriver.flush() before its socket is open")
            self.capture.append(CapturedDatagram(now, self.local_addr, dest, data))
            self._transport.sendto(data, dest)
        while (event := self.endpoint.next_event()) is not None:
            self._on_event(event)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self.endpoint.get_timer()
        if at is not None:
            self._timer = self._loop.call_at(self._started_at + at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.endpoint.handle_timer(self.now)  # early or late calls are harmless
        self.flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
