"""One interop session over real UDP: our engine as initiator or responder against a peer.

`initiate()` runs IKE_SA_INIT .. IKE_AUTH (and the asked-for rekeys), then deletes the IKE
SA; `respond()` answers peers until the wanted number of IKE SAs were established and
deleted again. Both return a `SessionResult`: our events, every message we sent (the
engine's `WireMessage` trace), the datagrams on the wire (for `wansim.ike.pcap`) and one
Wireshark decryption-table line per key set. The peer's error notify or the timeout
becomes `SessionResult.failure`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wansim.ike.config import GatewayConfig, IkeConfig
from wansim.ike.events import (
    AuthenticationFailed,
    ChildSaEstablished,
    ChildSaRekeyed,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaRekeyed,
    NegotiationFailed,
    PeerDeclaredDead,
)
from wansim.ike.gateway import Gateway
from wansim.ike.pcap import CapturedDatagram, decryption_table_line_for
from wansim.ike.sa import IkeSa, WireMessage
from wansim.interop.udp import Addr, UdpDriver

RandomBytes = Any  # Callable[[int], bytes]


@dataclass
class SessionResult:
    """What happened in one interop session, from our side."""

    failure: str | None = None
    """None on success; otherwise the peer's notify, our reason, or the timeout."""
    events: list[Any] = field(default_factory=list)
    sent: list[WireMessage] = field(default_factory=list)
    capture: list[CapturedDatagram] = field(default_factory=list)
    key_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


def _failure(event: Any) -> str | None:
    """A one-line reason if `event` ends the session unsuccessfully."""
    if isinstance(event, AuthenticationFailed):
        side = "we" if event.local else "the peer"
        return f"authentication failed ({side}: {event.reason})"
    if isinstance(event, NegotiationFailed):
        who = "we refused" if event.local else "the peer refused"
        notify = f" with {event.notify}" if event.notify else ""
        return f"{event.exchange} failed: {who}{notify} ({event.reason})"
    if isinstance(event, PeerDeclaredDead):
        return (
            f"peer did not answer {event.exchange} message {event.message_id} "
            f"after {event.transmissions} transmissions"
        )
    if isinstance(event, IkeSaDeleted) and event.reason not in ("rekeyed", "delete"):
        return f"IKE SA closed: {event.reason}"
    return None


class _Session:
    """Collects events and lets a coroutine wait for the one it needs next."""

    def __init__(self) -> None:
        self.result = SessionResult()
        self._changed = asyncio.Event()

    def on_event(self, event: Any) -> None:
        self.result.events.append(event)
        if self.result.failure is None:
            self.result.failure = _failure(event)
        self._changed.set()

    def count(self, kind: type, *, rekeys: bool = True) -> int:
        """How many events of `kind` happened (IkeSaDeleted of old rekeyed SAs optional)."""
        return sum(
            isinstance(e, kind) and (rekeys or getattr(e, "reason", "") != "rekeyed")
            for e in self.result.events
        )

    async def wait_for(self, kind: type, count: int, deadline: float, *, rekeys=True) -> bool:
        """Until `count` events of `kind` happened (True), a failure, or the deadline."""
        loop = asyncio.get_running_loop()
        while True:
            if self.result.failure is not None:
                return False
            if self.count(kind, rekeys=rekeys) >= count:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False


def _bind(local: Addr) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(local)
    sock.setblocking(False)
    return sock


def _key_lines(sas: list[IkeSa]) -> list[str]:
    return [decryption_table_line_for(k.spi_i, k.spi_r, k.keys) for sa in sas for k in sa.key_sets]


async def initiate(
    config: IkeConfig,
    peer: Addr,
    *,
    local: Addr = ("127.0.0.1", 0),
    always_marker: bool = False,
    nat_t_port: int | None = None,
    rekey_child: bool = False,
    rekey_ike: bool = False,
    timeout_s: float = 30.0,
    random_bytes: RandomBytes = os.urandom,
    credentials: tuple[Any, bytes] | None = None,
) -> SessionResult:
    """Establish an IKE SA and its Child SA with `peer`, rekey as asked, then delete it.
    `credentials` = (private key, DER certificate) for signature auth (default: the engine
    makes a self-signed one, which a real peer would not trust)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    session = _Session()
    sock = _bind(local)
    trace: list[WireMessage] = session.result.sent
    sa = IkeSa(
        config,
        initiator=True,
        local_addr=sock.getsockname()[:2],
        remote_addr=peer,
        random_bytes=random_bytes,
        trace=trace.append,
        credentials=credentials,
    )

    def make() -> UdpDriver:
        return UdpDriver(
            sa, on_event=session.on_event, always_marker=always_marker, nat_t_port=nat_t_port
        )

    _, driver = await loop.create_datagram_endpoint(make, sock=sock)
    steps: list[tuple[str, Any, type, int]] = [("initiate", sa.initiate, ChildSaEstablished, 1)]
    if rekey_child:
        steps.append(("Child SA rekey", sa.rekey_child, ChildSaRekeyed, 1))
    if rekey_ike:
        steps.append(("IKE SA rekey", sa.rekey_ike, IkeSaRekeyed, 1))
    try:
        for label, command, kind, count in steps:
            command(driver.now)
            driver.flush()
            if not await session.wait_for(kind, count, deadline):
                if session.result.failure is None:
                    session.result.failure = f"timeout after {timeout_s:g} s waiting for {label}"
                break
        if not sa.closed and sa.established:
            # Leave nothing behind at the peer; a missing answer here is not a failure.
            sa.delete(driver.now)
            driver.flush()
            await session.wait_for(IkeSaDeleted, 1, min(deadline, loop.time() + 5), rekeys=False)
    finally:
        driver.close()
    session.result.capture = driver.capture
    session.result.key_lines = _key_lines([sa])
    return session.result


async def respond(
    config: IkeConfig,
    local: Addr,
    *,
    count: int = 1,
    cookie_threshold: int = GatewayConfig().cookie_threshold,
    always_marker: bool = False,
    nat_t_port: int | None = None,
    timeout_s: float = 60.0,
    random_bytes: RandomBytes = os.urandom,
    on_ready: Callable[[Addr], None] | None = None,
    credentials: tuple[Any, bytes] | None = None,
) -> SessionResult:
    """Answer peers on `local` until `count` IKE SAs were established and then deleted.

    A `Gateway` demultiplexes the peers' IKE SAs and demands a COOKIE once
    `cookie_threshold` half-open SAs exist (0: always). `on_ready` is called with the
    bound address once the socket is open, so a caller can start the peer only then.
    `credentials` = (private key, DER certificate) for signature auth.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    session = _Session()
    sock = _bind(local)
    gateway = Gateway(
        config,
        local_addr=sock.getsockname()[:2],
        gateway=GatewayConfig(cookie_threshold=cookie_threshold),
        random_bytes=random_bytes,
        trace=session.result.sent.append,
        credentials=credentials,
    )
    seen: dict[IkeSa, None] = {}  # every SA the gateway ever held, in order (for key lines)

    def on_event(event: Any) -> None:
        seen.update(dict.fromkeys(gateway.sas))
        session.on_event(event)

    def make() -> UdpDriver:
        return UdpDriver(
            gateway, on_event=on_event, always_marker=always_marker, nat_t_port=nat_t_port
        )

    _, driver = await loop.create_datagram_endpoint(make, sock=sock)
    if on_ready is not None:
        on_ready(driver.local_addr)
    try:
        if not await session.wait_for(IkeSaEstablished, count, deadline):
            if session.result.failure is None:
                session.result.failure = (
                    f"timeout after {timeout_s:g} s: {count} IKE SA(s) not established"
                )
        elif not await session.wait_for(IkeSaDeleted, count, deadline, rekeys=False):
            if session.result.failure is None:
                session.result.failure = f"timeout after {timeout_s:g} s: peer did not delete"
    finally:
        driver.close()
    session.result.capture = driver.capture
    session.result.key_lines = _key_lines(list(seen))
    return session.result


class ResponderThread:
    """`respond()` on its own event loop in a thread, while the caller drives the peer
    (tests and scripts run charon from the main thread). `local_addr` is the bound address."""

    def __init__(self, config: IkeConfig, local: Addr, **options: Any) -> None:
        self.result: SessionResult | None = None
        self.local_addr: Addr | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(config, local, options), daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10) or self.local_addr is None:
            raise RuntimeError(f"the responder did not bind {local[0]}:{local[1]}: {self._error}")

    def _bound(self, addr: Addr) -> None:
        self.local_addr = addr
        self._ready.set()

    def _run(self, config: IkeConfig, local: Addr, options: dict) -> None:
        try:
            self.result = asyncio.run(respond(config, local, on_ready=self._bound, **options))
        except BaseException as error:  # handed to join()
            self._error = error
        finally:
            self._ready.set()

    def join(self, timeout_s: float = 60) -> SessionResult:
        self._thread.join(timeout_s)
        if self._error is not None:
            raise RuntimeError(f"the responder crashed: {self._error!r}") from self._error
        if self.result is None:
            raise RuntimeError(f"the responder did not finish within {timeout_s:g} s")
        return self.result
