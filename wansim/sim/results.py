"""What a simulation run returns: three tidy tables, a summary and a manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Results:
    """One run of :func:`wansim.simulate`.

    ``handshakes``, ``pop_load`` and ``failovers`` are tidy DataFrames whose columns are
    listed in :mod:`wansim.sim.metrics`; every row carries its failover ``strategy``, so
    strategies compared in one run (common random numbers) sit in the same tables.
    ``summary`` holds per-strategy counts and percentiles; ``manifest`` the resolved
    config, seed, package versions, crypto backend and cost profile.
    """

    handshakes: pd.DataFrame
    pop_load: pd.DataFrame
    failovers: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        strategies = ", ".join(self.summary.get("strategies", {})) or "-"
        return (
            f"<Results {len(self.handshakes)} handshakes, {len(self.failovers)} failovers, "
            f"{self.pop_load['pop'].nunique() if len(self.pop_load) else 0} POPs; "
            f"strategies: {strategies}>"
        )
