"""How many cores each POP needs: the N+1 table and an Erlang C sizing of the CPU queue.

The model, stated once so the report can quote it:

* A POP's CPU is the simulation's queue: ``c`` identical cores serving exchanges first come,
  first served (:mod:`wansim.sim.cpu`). From the run's ``pop_load`` table we read, per POP,
  the busy core-seconds and the exchanges handled, so the **mean service time** per exchange
  is ``s = busy core-seconds ÷ exchanges``, and the **planning arrival rate** ``λ`` is the
  busiest ``pop_load`` bin outside any injected failure (the healthy-world peak).
* **N+1**: when POP F fails, each site F served moves to its next preferred healthy POP
  (the run's own anycast catchments, rebuilt from the manifest's config and seed). A POP P
  absorbs the fraction of F's exchanges whose sites move to P; its **worst neighbour** is
  the F that sends it most. ``λ_N+1 = λ_P + max_F λ_F · share(F→P)``, or the busiest bin
  measured during an injected failure if that is higher (a re-handshake storm is a burst
  the steady-rate model does not see).
* **Queueing** (M/M/c, Erlang C): with offered load ``a = λ·s`` and ``c > a`` cores an
  exchange waits with probability ``C(c, a)``, and then for an exponential time of rate
  ``(c − a)/s``. The cost table gives nearly constant service times per exchange type,
  which wait less than exponential ones (Allen–Cunneen: ``W(M/G/c) ≈ W(M/M/c)·(1 + Cs²)/2``
  with ``Cs² < 1``), so the exponential model errs on the side of more cores.
* A handshake makes ``n`` exchanges at the POP (its round trips; the POP's p99 is used);
  its CPU wait is taken as the sum of ``n`` independent exchange waits: ``K ~ Binomial(n,
  C)`` of them wait, and the sum of those is Gamma(K, (c − a)/s). Its p99 is solved
  exactly for that mixture.
* **Predicted p99 latency** = p99 of the run's latency without CPU queueing
  (``latency_s − cpu_wait_s``: round trips and service times, over the handshakes that
  needed no retransmission — timeouts are not a CPU matter) + p99 of the CPU wait; adding
  two p99s over-states the p99 of the sum, again towards more cores.
* **Recommended cores**: the least ``c`` whose predicted p99 meets the target at the
  N+1 load. When the latency floor alone misses the target, no core count can help and
  the POP is reported as network-bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from wansim.sim.cpu import erlang_c_wait_s

MAX_CORES = 4096
"""Search limit for the recommendation (a POP needing more is reported as such)."""


# --------------------------------------------------------------------------- queue maths
def erlang_c(offered_erlangs: float, cores: int) -> float:
    """Probability that an arriving job waits in an M/M/c queue (Erlang C formula).

    Derived from the simulation's own mean-wait formula
    (:func:`wansim.sim.cpu.erlang_c_wait_s`) through Little's identity for M/M/c:
    ``W = C(c, a) · s / (c − a)``, so with ``s = 1``: ``C = W · (c − a)``.
    """
    if offered_erlangs == 0:
        return 0.0
    return erlang_c_wait_s(offered_erlangs, 1.0, cores) * (cores - offered_erlangs)


def wait_sf(t: float, *, jobs: int, p_wait: float, rate: float) -> float:
    """P(total CPU wait of ``jobs`` independent M/M/c exchanges > t).

    Each exchange waits with probability ``p_wait`` for an Exp(``rate``) time, so the number
    that wait is Binomial(jobs, p_wait) and, given k of them, the sum is Gamma(k, 1/rate).
    """
    if t < 0:
        return 1.0
    k = np.arange(1, jobs + 1)
    weights = stats.binom.pmf(k, jobs, p_wait)
    return float(np.sum(weights * stats.gamma.sf(t, k, scale=1.0 / rate)))


def wait_quantile(q: float, *, jobs: int, p_wait: float, rate: float) -> float:
    """The q-quantile of the total CPU wait of ``jobs`` exchanges (0 if most never wait)."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must lie in (0, 1), got {q!r}")
    if jobs <= 0 or p_wait <= 0 or wait_sf(0.0, jobs=jobs, p_wait=p_wait, rate=rate) <= 1 - q:
        return 0.0
    hi = 1.0 / rate
    while wait_sf(hi, jobs=jobs, p_wait=p_wait, rate=rate) > 1 - q:
        hi *= 2
    return float(
        optimize.brentq(
            lambda t: wait_sf(t, jobs=jobs, p_wait=p_wait, rate=rate) - (1 - q), 0.0, hi,
            xtol=1e-12, rtol=1e-10,
        )
    )


def handshake_wait_quantile(
    q: float, *, arrival_rate: float, service_s: float, cores: int, jobs: int
) -> float:
    """q-quantile of a handshake's CPU wait at a POP (M/M/c per exchange); inf if
    ``cores`` cannot carry the load."""
    a = arrival_rate * service_s
    if a >= cores:
        return math.inf
    if a == 0:
        return 0.0
    return wait_quantile(
        q, jobs=jobs, p_wait=erlang_c(a, cores), rate=(cores - a) / service_s
    )


def recommend_cores(
    *,
    arrival_rate: float,
    service_s: float,
    jobs: int,
    floor_s: float,
    target_s: float,
    q: float = 0.99,
) -> int | None:
    """Fewest cores keeping ``floor_s`` + the q-quantile CPU wait within ``target_s``;
    None when the floor alone exceeds the target or more than MAX_CORES would be needed."""
    if floor_s > target_s:
        return None
    budget = target_s - floor_s
    c = max(1, math.floor(arrival_rate * service_s) + 1)
    while c <= MAX_CORES:
        wait = handshake_wait_quantile(
            q, arrival_rate=arrival_rate, service_s=service_s, cores=c, jobs=jobs
        )
        if wait <= budget:
            return c
        c += 1
    return None


# --------------------------------------------------------------------------- N+1 routing
def failover_moves(world) -> pd.DataFrame:
    """Where each site's primary tunnel goes if its POP fails alone: site, pop, to_pop.

    Uses the run's own anycast preferences (the first anycast address's catchment), so the
    move is the one the simulation would make, not a guess from geography.
    """
    from wansim.net import NO_POP

    address = world.anycast_addresses[0]
    catchment = world.catchments[address]
    n_pops = len(world.pops)
    home = world.catchment(address)
    rows = []
    for failed in np.unique(home):
        sites = np.flatnonzero(home == failed)
        healthy = np.ones(n_pops, dtype=bool)
        healthy[failed] = False
        to = catchment.best(healthy, sites)
        for site, dest in zip(sites, to, strict=True):
            rows.append((world.sites.names[site], world.pops.codes[failed],
                         None if dest == NO_POP else world.pops.codes[dest]))
    return pd.DataFrame(rows, columns=["site", "pop", "to_pop"])


def absorbed_shares(moves: pd.DataFrame, handshakes: pd.DataFrame) -> pd.DataFrame:
    """share(F→P): the fraction of failed POP F's exchanges that POP P takes over.

    Sites are weighted by the exchanges (round trips) they made in the run, so a site that
    rekeys often counts for more. Columns: failed_pop, pop, share.
    """
    weight = handshakes.groupby("site")["round_trips"].sum()
    moved = moves.dropna(subset=["to_pop"]).assign(
        # astype: with no site moved (a one-POP world) the map keeps the string dtype
        weight=lambda d: d["site"].map(weight).astype(float).fillna(0.0)
    )
    total = moved.groupby("pop")["weight"].transform("sum")
    moved = moved.assign(share=np.where(total > 0, moved["weight"] / total.where(total > 0, 1), 0))
    out = moved.groupby(["pop", "to_pop"], as_index=False)["share"].sum()
    return out.rename(columns={"pop": "failed_pop", "to_pop": "pop"})


# --------------------------------------------------------------------------- per-POP table
@dataclass(frozen=True)
class CapacityInputs:
    """What the sizing needs from a run besides its tables."""

    cores: dict[str, int]
    """Cores each POP had in the run."""
    resolution_s: float
    """pop_load bin width."""
    failure_windows: tuple[tuple[float, float], ...] = ()
    """(start, end) of injected failures, excluded from the healthy-world peak."""
    target_s: float = 1.0
    """p99 handshake latency target."""
    quantile: float = 0.99


def pop_statistics(pop_load: pd.DataFrame, inputs: CapacityInputs) -> pd.DataFrame:
    """Per POP: cores, mean service time per exchange, healthy and failure peak rates,
    peak CPU utilisation and headroom (1 − peak utilisation)."""
    load = pop_load.assign(cores=pop_load["pop"].map(inputs.cores).astype(float))
    width = inputs.resolution_s
    load = load.assign(
        busy=load["cpu_utilisation"] * load["cores"] * width,
        exchanges=load["exchanges_per_s"] * width,
        in_failure=_in_windows(load["at"], width, inputs.failure_windows),
    )
    healthy = load[~load["in_failure"]]
    grouped = load.groupby("pop")
    table = pd.DataFrame(
        {
            "cores": grouped["cores"].first().astype(int),
            "service_s": grouped["busy"].sum() / grouped["exchanges"].sum().replace(0, np.nan),
            "peak_rate": healthy.groupby("pop")["exchanges_per_s"].max(),
            "failure_peak_rate": load[load["in_failure"]].groupby("pop")["exchanges_per_s"].max(),
            "peak_cpu": grouped["cpu_utilisation"].max(),
            "mean_cpu": grouped["cpu_utilisation"].mean(),
        }
    )
    table["peak_rate"] = table["peak_rate"].fillna(0.0)
    table["headroom"] = 1.0 - table["peak_cpu"]
    return table.rename_axis("pop").reset_index()


def _overall_service(pop_load: pd.DataFrame, inputs: CapacityInputs) -> float:
    """Mean service time per exchange over every POP of the run (NaN without exchanges)."""
    cores = pop_load["pop"].map(inputs.cores).astype(float)
    exchanges = float(pop_load["exchanges_per_s"].sum())
    if exchanges == 0:
        return math.nan
    return float((pop_load["cpu_utilisation"] * cores).sum() / exchanges)


def _in_windows(at: pd.Series, width: float, windows) -> pd.Series:
    hit = pd.Series(False, index=at.index)
    for start, end in windows:
        hit |= (at + width > start) & (at < end)
    return hit


def _clean(handshakes: pd.DataFrame) -> pd.DataFrame:
    """Established handshakes that needed no retransmission, with their latency floor: a
    lost datagram or a dead POP costs whole retransmission timeouts (seconds), which no
    number of cores can shorten."""
    ok = handshakes[(handshakes["outcome"] == "established")
                    & (handshakes["retransmissions"] == 0)]
    return ok.assign(floor=ok["latency_s"] - ok["cpu_wait_s"])


def latency_floor(handshakes: pd.DataFrame, q: float) -> pd.DataFrame:
    """Per POP: q-quantiles of latency without CPU queueing and of exchanges per handshake
    (over :func:`_clean` handshakes)."""
    grouped = _clean(handshakes).groupby("pop")
    return pd.DataFrame(
        {
            "floor_s": grouped["floor"].quantile(q),
            "jobs": np.ceil(grouped["round_trips"].quantile(q)),
        }
    ).rename_axis("pop").reset_index()


def capacity_table(
    pop_load: pd.DataFrame,
    handshakes: pd.DataFrame,
    shares: pd.DataFrame,
    inputs: CapacityInputs,
) -> pd.DataFrame:
    """The N+1 table and recommended cores, one row per POP (see the module docstring).

    Columns: pop, cores, service_s, peak_rate, failure_peak_rate, peak_cpu, headroom,
    worst_neighbour, n1_rate, n1_erlangs, n1_utilisation, floor_s, jobs,
    n1_p99_s (predicted with the current cores), recommended_cores.
    """
    table = pop_statistics(pop_load, inputs)
    rate = table.set_index("pop")["peak_rate"]
    if len(shares):
        absorbed = shares.assign(extra=shares["failed_pop"].map(rate).fillna(0.0) * shares["share"])
        absorbed = absorbed[(absorbed["failed_pop"] != absorbed["pop"]) & (absorbed["extra"] > 0)]
        worst = absorbed.loc[absorbed.groupby("pop")["extra"].idxmax()].set_index("pop")
    else:
        worst = pd.DataFrame(columns=["failed_pop", "extra"])
    table["worst_neighbour"] = table["pop"].map(worst["failed_pop"])
    modelled = table["peak_rate"] + table["pop"].map(worst["extra"]).fillna(0.0)
    # a storm is a burst, not a rate: when the run measured more, plan for what it measured
    table["n1_rate"] = np.fmax(modelled, table["failure_peak_rate"])
    # A POP that handled no exchange (idle, or it only absorbs load at N+1) is sized with
    # the run-wide service time, latency floor and exchanges per handshake.
    overall_service = _overall_service(pop_load, inputs)
    service_s = table["service_s"].fillna(overall_service)
    table["n1_erlangs"] = (table["n1_rate"] * service_s).fillna(0.0)
    table["n1_utilisation"] = table["n1_erlangs"] / table["cores"]
    clean = _clean(handshakes)
    table = table.merge(latency_floor(handshakes, inputs.quantile), on="pop", how="left")
    table["floor_s"] = table["floor_s"].fillna(clean["floor"].quantile(inputs.quantile))
    table["jobs"] = table["jobs"].fillna(np.ceil(clean["round_trips"].quantile(inputs.quantile)))
    predicted, recommended = [], []
    for row, service in zip(table.itertuples(), service_s, strict=True):
        if pd.isna(row.floor_s) or pd.isna(service):  # no handshake in the whole run
            predicted.append(math.nan)
            recommended.append(None)
            continue
        jobs = int(row.jobs)
        wait = handshake_wait_quantile(
            inputs.quantile, arrival_rate=row.n1_rate, service_s=service,
            cores=int(row.cores), jobs=jobs,
        )
        predicted.append(row.floor_s + wait)
        recommended.append(
            recommend_cores(
                arrival_rate=row.n1_rate, service_s=service, jobs=jobs,
                floor_s=row.floor_s, target_s=inputs.target_s, q=inputs.quantile,
            )
        )
    table["n1_p99_s"] = predicted
    table["recommended_cores"] = pd.array(recommended, dtype="Int64")
    return table.sort_values("n1_erlangs", ascending=False, ignore_index=True)
