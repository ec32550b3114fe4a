"""Failover bookkeeping: one chain per site hit by a POP failure, split into its parts.

The chain (ARCHITECTURE.md, "Failover is a chain"): failure → detection → route
convergence → SA state at the new POP → traffic flows. Instants are reported as they
happen; parts are consecutive, so they sum to the total by construction:

    detect_s   = detected_at − failed_at
    converge_s = time after detection until the site's route reached the new POP
    state_s    = time after that until the data plane was up (handshake, replication, switch)
    total_s    = restored_at − failed_at  (the outage seen by the site)

Who detects depends on the strategy: ``replicated`` recovers through routing alone, so the
network's detection (BFD / BGP hold / graceful withdraw) counts; ``rehandshake`` needs the
site to notice (DPD or a failed rekey) before it re-establishes; ``dual-tunnel`` switches to
the survivor when the site notices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wansim.sim.metrics import MetricsRecorder

STRATEGIES = ("replicated", "rehandshake", "dual-tunnel")


@dataclass
class _Chain:
    site: str
    failed_pop: str
    failed_at: float
    detected_at: float | None = None
    converged_at: float | None = None
    new_pop: str | None = None
    outcome: str = "recovered"


class FailoverLog:
    """Open chains per site; closed into ``failovers`` rows on restoration or at the end."""

    def __init__(self, recorder: MetricsRecorder) -> None:
        self.recorder = recorder
        self._open: dict[str, _Chain] = {}

    def is_open(self, site: str) -> bool:
        return site in self._open

    def opened(self, site: str, failed_pop: str, at: float) -> None:
        """The site's traffic was hit by the failure of ``failed_pop`` at ``at``."""
        if site not in self._open:  # a second failure during a failover extends the first
            self._open[site] = _Chain(site, failed_pop, at)

    def detected(self, site: str, at: float) -> None:
        chain = self._open.get(site)
        if chain is not None and chain.detected_at is None:
            chain.detected_at = at

    def converged(self, site: str, pop: str | None, at: float) -> None:
        """The site's route now leads to ``pop`` (the latest convergence counts)."""
        chain = self._open.get(site)
        if chain is not None and pop != chain.failed_pop:
            chain.converged_at, chain.new_pop = at, pop

    def mark(self, site: str, outcome: str) -> None:
        """Tag the chain's outcome (e.g. "fell_back", "no_survivor")."""
        chain = self._open.get(site)
        if chain is not None:
            chain.outcome = outcome

    def restored(self, site: str, pop: str, at: float) -> None:
        chain = self._open.pop(site, None)
        if chain is None:
            return
        chain.new_pop = pop
        detected = min(chain.detected_at if chain.detected_at is not None else at, at)
        converged = chain.converged_at if chain.converged_at is not None else detected
        converged = min(max(converged, detected), at)
        self.recorder.failover(
            site=chain.site,
            failed_pop=chain.failed_pop,
            new_pop=pop,
            detect_s=detected - chain.failed_at,
            converge_s=converged - detected,
            state_s=at - converged,
            outcome=chain.outcome,
        )

    def finish(self, now: float) -> None:
        """Close every chain still open when the run ends (outcome "not_recovered")."""
        for site in sorted(self._open):
            chain = self._open[site]
            detect_s = chain.detected_at - chain.failed_at if chain.detected_at else math.nan
            self.recorder.failover(
                site=chain.site,
                failed_pop=chain.failed_pop,
                new_pop=chain.new_pop,
                detect_s=detect_s,
                converge_s=math.nan,
                state_s=math.nan,
                outcome="not_recovered",
            )
        self._open.clear()
