"""Data-plane reachability of every tunnel, from route and SA state changes — no ESP packets.

A tunnel carries traffic at time t exactly when

    its site's route for the tunnel's anycast address leads to a POP (not blackholed),
    that POP is alive, the site holds an established Child SA,
    and that POP holds the SA: it terminated it, or (``replicated``) the state has reached it.

Inputs arrive as state changes (route converged, POP died/recovered, SA established,
deleted or replicated); after each one only the affected tunnels are re-evaluated and the
up/down transitions are reported, so outage intervals are exact and nothing is ticked.
Traffic is assumed continuous in both directions (branch sites are never idle), which is
what makes "inbound traffic stopped" the same instant as "the data plane went down".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

TunnelKey = tuple[str, int]  # (site, tunnel index: 0, or 0/1 for dual tunnels)
Transition = Callable[[TunnelKey, bool, float], None]


@dataclass
class TunnelState:
    route_pop: str | None = None
    sa_pop: str | None = None
    """POP that terminated the current SA (None: no established SA)."""
    replicated_at: float | None = None
    """When the SA state is usable at every POP (``replicated`` strategy only)."""
    up: bool = False
    down_since: float | None = 0.0
    outages: list[tuple[float, float]] = field(default_factory=list)


class DataPlane:
    """Tracks every tunnel's reachability; calls ``on_transition(key, up, now)``."""

    def __init__(self, on_transition: Transition | None = None) -> None:
        self.tunnels: dict[TunnelKey, TunnelState] = {}
        self.dead_pops: set[str] = set()
        # POP -> tunnels routed there, in insertion order (a dict, not a set: simultaneous
        # transitions must come out in the same order whatever PYTHONHASHSEED is)
        self._by_pop: dict[str, dict[TunnelKey, None]] = defaultdict(dict)
        self._on_transition = on_transition

    def tunnel(self, key: TunnelKey) -> TunnelState:
        state = self.tunnels.get(key)
        if state is None:
            state = self.tunnels[key] = TunnelState()
        return state

    # -- inputs -------------------------------------------------------------------------
    def route(self, key: TunnelKey, pop: str | None, now: float) -> None:
        """The site's route for this tunnel's address now leads to ``pop`` (None: nowhere)."""
        state = self.tunnel(key)
        if state.route_pop is not None:
            self._by_pop[state.route_pop].pop(key, None)
        state.route_pop = pop
        if pop is not None:
            self._by_pop[pop][key] = None
        self._evaluate(key, state, now)

    def sa_established(
        self, key: TunnelKey, pop: str, now: float, replicated_at: float | None = None
    ) -> None:
        state = self.tunnel(key)
        state.sa_pop, state.replicated_at = pop, replicated_at
        self._evaluate(key, state, now)

    def sa_lost(self, key: TunnelKey, now: float) -> None:
        """The site no longer holds a usable SA (deleted, or the peer was declared dead)."""
        state = self.tunnel(key)
        state.sa_pop = state.replicated_at = None
        self._evaluate(key, state, now)

    def pop_down(self, pop: str, now: float, *, forget_state: bool = True) -> None:
        """A POP stops forwarding; a silent failure also loses every SA it terminated."""
        self.dead_pops.add(pop)
        if forget_state:  # replicas that had not reached the other POPs die with it
            for state in self.tunnels.values():
                if state.sa_pop == pop and (
                    state.replicated_at is None or state.replicated_at > now
                ):
                    state.sa_pop = state.replicated_at = None
        for key in list(self._by_pop[pop]):
            self._evaluate(key, self.tunnels[key], now)

    def pop_up(self, pop: str, now: float) -> None:
        self.dead_pops.discard(pop)
        for key in list(self._by_pop[pop]):
            self._evaluate(key, self.tunnels[key], now)

    def refresh(self, key: TunnelKey, now: float) -> None:
        """Re-evaluate one tunnel (e.g. when its SA's replication completes)."""
        self._evaluate(key, self.tunnel(key), now)

    # -- evaluation ---------------------------------------------------------------------
    def holds_sa(self, state: TunnelState, pop: str, now: float) -> bool:
        if state.sa_pop is None:
            return False
        if pop == state.sa_pop:
            return True
        return state.replicated_at is not None and now >= state.replicated_at

    def _evaluate(self, key: TunnelKey, state: TunnelState, now: float) -> None:
        pop = state.route_pop
        up = pop is not None and pop not in self.dead_pops and self.holds_sa(state, pop, now)
        if up == state.up:
            return
        state.up = up
        if up:
            if state.down_since is not None and now > state.down_since:
                state.outages.append((state.down_since, now))
            state.down_since = None
        else:
            state.down_since = now
        if self._on_transition is not None:
            self._on_transition(key, up, now)

    def outages(self, key: TunnelKey, until: float) -> list[tuple[float, float]]:
        """Closed outage intervals of a tunnel, plus the open one cut at ``until``."""
        state = self.tunnels[key]
        out = list(state.outages)
        if state.down_since is not None and until > state.down_since:
            out.append((state.down_since, until))
        return out
