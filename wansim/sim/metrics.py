"""Metrics: flat records during the run, tidy pandas tables and a summary at the end.

Three tables (column names are the public contract, see issue 5 and docs/model.md):

* ``handshakes`` — one row per handshake or rekey a site started:
  strategy, site, pop, kind (initial / rekey_child / rekey_ike / reestablish), proposal,
  start_at, latency_s, round_trips, retransmissions, datagrams, bytes, cpu_wait_s, outcome.
* ``pop_load`` — one row per POP and time bin: strategy, pop, at (bin start),
  exchanges_per_s, cpu_utilisation (busy cores ÷ cores, time-averaged), queue_length
  (time-averaged jobs waiting for a core), signalling_bytes_per_s (IKE bytes in + out).
* ``failovers`` — one row per site hit by a POP failure: site, strategy, failed_pop,
  new_pop, detect_s, converge_s, state_s, total_s, outcome (total_s = detect_s + converge_s
  + state_s: the parts of the chain are consecutive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from wansim.sim.cpu import CpuPool, padded

HANDSHAKE_COLUMNS = (
    "strategy",
    "site",
    "pop",
    "kind",
    "proposal",
    "start_at",
    "latency_s",
    "round_trips",
    "retransmissions",
    "datagrams",
    "bytes",
    "cpu_wait_s",
    "outcome",
)
POP_LOAD_COLUMNS = (
    "strategy",
    "pop",
    "at",
    "exchanges_per_s",
    "cpu_utilisation",
    "queue_length",
    "signalling_bytes_per_s",
)
FAILOVER_COLUMNS = (
    "site",
    "strategy",
    "failed_pop",
    "new_pop",
    "detect_s",
    "converge_s",
    "state_s",
    "total_s",
    "outcome",
)
HANDSHAKE_KINDS = ("initial", "rekey_child", "rekey_ike", "reestablish")
PERCENTILES = (50, 90, 99)


@dataclass
class HandshakeRecord:
    """A handshake or rekey in progress at a site; becomes a row when it ends."""

    site: str
    pop: str
    kind: str
    proposal: str
    start_at: float
    round_trips: int = 0
    retransmissions: int = 0
    datagrams: int = 0
    bytes: int = 0
    cpu_wait_s: float = 0.0


class PopCounters:
    """Per-bin exchange and byte counts of one POP (CPU integrals live in its pool).

    Python lists while the run adds to them: cheaper per datagram than numpy scalars.
    """

    __slots__ = ("resolution_s", "exchanges", "bytes")

    def __init__(self, resolution_s: float) -> None:
        self.resolution_s = resolution_s
        self.exchanges: list[float] = []
        self.bytes: list[float] = []

    def add(self, at: float, exchanges: int, n_bytes: int) -> None:
        i = int(at // self.resolution_s)
        if i >= len(self.exchanges):
            grow = [0.0] * (i + 1 - len(self.exchanges))
            self.exchanges.extend(grow)
            self.bytes.extend(grow)
        self.exchanges[i] += exchanges
        self.bytes[i] += n_bytes


class MetricsRecorder:
    """Collects one strategy's records; ``tables()`` turns them into DataFrames."""

    def __init__(self, strategy: str, *, resolution_s: float, duration_s: float) -> None:
        self.strategy = strategy
        self.resolution_s = resolution_s
        self.duration_s = duration_s
        self._handshakes: list[tuple] = []
        self._failovers: list[tuple] = []
        self._pops: dict[str, tuple[PopCounters, CpuPool]] = {}

    # -- recording ----------------------------------------------------------------------
    def register_pop(self, pop: str, cpu: CpuPool) -> PopCounters:
        counters = PopCounters(self.resolution_s)
        self._pops[pop] = (counters, cpu)
        return counters

    def handshake(self, record: HandshakeRecord, *, ended_at: float, outcome: str) -> None:
        r = record
        self._handshakes.append(
            (
                self.strategy,
                r.site,
                r.pop,
                r.kind,
                r.proposal,
                r.start_at,
                ended_at - r.start_at,
                r.round_trips,
                r.retransmissions,
                r.datagrams,
                r.bytes,
                r.cpu_wait_s,
                outcome,
            )
        )

    def failover(
        self,
        *,
        site: str,
        failed_pop: str,
        new_pop: str | None,
        detect_s: float,
        converge_s: float,
        state_s: float,
        outcome: str,
    ) -> None:
        total_s = detect_s + converge_s + state_s
        self._failovers.append(
            (
                site,
                self.strategy,
                failed_pop,
                new_pop,
                detect_s,
                converge_s,
                state_s,
                total_s,
                outcome,
            )
        )

    # -- tables -------------------------------------------------------------------------
    def handshakes(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self._handshakes, columns=list(HANDSHAKE_COLUMNS))

    def failovers(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self._failovers, columns=list(FAILOVER_COLUMNS))

    def pop_load(self) -> pd.DataFrame:
        res = self.resolution_s
        n_bins = max(1, int(np.ceil(self.duration_s / res - 1e-9)))
        starts = np.arange(n_bins) * res
        # the last bin may be shorter than the resolution
        widths = np.minimum(starts + res, self.duration_s) - starts
        widths[widths <= 0] = res
        pops = sorted(self._pops)
        if not pops:
            return pd.DataFrame(columns=list(POP_LOAD_COLUMNS))
        # one POP per row of each matrix: one frame in the end, not one per POP
        exchanges, busy, queued, signalling, cores = [], [], [], [], []
        for pop in pops:
            counters, cpu = self._pops[pop]
            cpu.flush()
            exchanges.append(padded(counters.exchanges, n_bins))
            busy.append(cpu.busy.per_bin(n_bins))
            queued.append(cpu.queued.per_bin(n_bins))
            signalling.append(padded(counters.bytes, n_bins))
            cores.append(cpu.cores)
        per_pop = np.array(cores)[:, None]
        return pd.DataFrame(
            {
                "strategy": self.strategy,
                "pop": np.repeat(np.array(pops, dtype=object), n_bins),
                "at": np.tile(starts, len(pops)),
                "exchanges_per_s": (np.array(exchanges) / widths).ravel(),
                "cpu_utilisation": (np.array(busy) / (widths * per_pop)).ravel(),
                "queue_length": (np.array(queued) / widths).ravel(),
                "signalling_bytes_per_s": (np.array(signalling) / widths).ravel(),
            }
        )


def _stats(values: pd.Series) -> dict[str, float | None]:
    """Mean, percentiles and max of a column; None where there is no data."""
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return {"mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None}
    pct = np.percentile(v, PERCENTILES)
    return {
        "mean": float(v.mean()),
        **{f"p{p}": float(x) for p, x in zip(PERCENTILES, pct, strict=True)},
        "max": float(v.max()),
    }


def summarise(
    handshakes: pd.DataFrame, pop_load: pd.DataFrame, failovers: pd.DataFrame
) -> dict[str, Any]:
    """Per strategy: handshake counts and latency percentiles (overall and per kind),
    failover-time percentiles per part and per outcome, and the busiest POP bin."""
    out: dict[str, Any] = {}
    strategies = sorted(  # unique() first: iterating a string column is slow
        {s for t in (handshakes, pop_load, failovers) for s in t["strategy"].unique()}
    )
    for strategy in strategies:
        hs = handshakes[handshakes["strategy"] == strategy]
        ok = hs[hs["outcome"] == "established"]
        fo = failovers[failovers["strategy"] == strategy]
        load = pop_load[pop_load["strategy"] == strategy]
        entry: dict[str, Any] = {
            "handshakes": int(len(hs)),
            "outcomes": {k: int(v) for k, v in sorted(hs["outcome"].value_counts().items())},
            "latency_s": _stats(ok["latency_s"]),
            "latency_s_by_kind": {
                kind: _stats(ok.loc[ok["kind"] == kind, "latency_s"])
                for kind in HANDSHAKE_KINDS
                if (ok["kind"] == kind).any()
            },
            "cpu_wait_s": _stats(ok["cpu_wait_s"]),
            "failovers": int(len(fo)),
            "failover_outcomes": {
                k: int(v) for k, v in sorted(fo["outcome"].value_counts().items())
            },
            "failover_s": {
                part: _stats(fo[part]) for part in ("detect_s", "converge_s", "state_s", "total_s")
            },
            # e.g. dual-tunnel: sites that had a surviving tunnel vs "no_survivor" ones
            "failover_total_s_by_outcome": {
                outcome: _stats(group["total_s"]) for outcome, group in fo.groupby("outcome")
            },
        }
        if len(load):
            peak = load.loc[load["cpu_utilisation"].idxmax()]
            entry["peak_cpu_utilisation"] = float(peak["cpu_utilisation"])
            entry["peak_cpu_pop"] = str(peak["pop"])
            entry["peak_cpu_at"] = float(peak["at"])
            entry["peak_exchanges_per_s"] = float(load["exchanges_per_s"].max())
        out[strategy] = entry
    return out
