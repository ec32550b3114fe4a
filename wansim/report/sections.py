"""The report's content, independent of its format: sections of text, figures and tables.

:func:`build_sections` turns a :class:`~wansim.report.data.ReportData` into the list of
sections the HTML and PDF writers lay out. A section without data says so in words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wansim.report import plots
from wansim.report.capacity import (
    MAX_CORES,
    CapacityInputs,
    absorbed_shares,
    capacity_table,
    failover_moves,
)
from wansim.report.data import ReportData, RunInfo, point_label
from wansim.sim.metrics import HANDSHAKE_KINDS

TOP_POPS = 30
"""POPs shown in tables and bar charts (the most loaded at N+1); the CSV has every POP."""


@dataclass
class Section:
    id: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    figures: list[tuple[Figure, str]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    note: str | None = None
    """Shown instead of figures when the run has no data for this section."""
    code: str | None = None
    """Preformatted text (the resolved config)."""


@dataclass(frozen=True)
class Analysis:
    """What several sections share: the capacity table and the POP coordinates."""

    capacity: pd.DataFrame
    """Per POP, its worst (strategy, run) row of the capacity table."""
    capacity_all: pd.DataFrame
    """Every POP × strategy × run."""
    pops: pd.DataFrame
    """POP code, city, lat, lon of the run's topology."""
    target_s: float
    skipped: tuple[str, ...] = ()
    """Runs whose stored config could not rebuild the world (left out of the sizing)."""


# --------------------------------------------------------------------------- helpers
def ms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def pct(fraction: float | None) -> str:
    """A utilisation as a percentage, with two significant digits when below 1 %."""
    if fraction is None or not np.isfinite(fraction):
        return "–"
    value = fraction * 100
    return f"{value:.1f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def rebuild_world(run: RunInfo):
    """The run's world (POPs, sites, catchments) from its manifest, or None if the stored
    config no longer validates. Only the sections that shape the world are read, so a
    result written before an unrelated schema change still gets its N+1 analysis."""
    from pydantic import ValidationError

    from wansim.experiment.config import ExperimentConfig
    from wansim.sim.scenario import build_world_from

    shape = {k: run.config[k] for k in ("name", "topology", "sites", "anycast", "run")
             if k in run.config}
    try:
        config = ExperimentConfig.model_validate(shape)
    except ValidationError:
        return None
    return build_world_from(config, int(run.manifest.get("seed", config.run.seed)))


def failures_of(run: RunInfo) -> list[dict[str, Any]]:
    """Injected failures as the run recorded them (manifest), else as configured."""
    if "failures" in run.manifest:
        return list(run.manifest["failures"])
    scheduled = run.config.get("failures", {}).get("scheduled", [])
    return [{"pop": f["pop"], "at": f["at"], "duration_s": f["duration"], "kind": f["kind"]}
            for f in scheduled]


def _quantiles(values: pd.Series) -> tuple[float, float]:
    v = values.dropna()
    return (float(v.quantile(0.5)), float(v.quantile(0.99))) if len(v) else (np.nan, np.nan)


# --------------------------------------------------------------------------- analysis
def analyse(data: ReportData, target_s: float) -> Analysis:
    """Size every POP of every run and strategy; keep each POP's worst case."""
    frames, pops, notes = [], None, []
    for run in data.runs:
        world = rebuild_world(run)
        if world is None:
            notes.append(run.run_id)
            continue
        if pops is None:
            pops = world.pops.to_frame().rename(columns={"code": "pop"})
        moves = failover_moves(world)
        hs_run = data.handshakes[data.handshakes["run_id"] == run.run_id]
        load_run = data.pop_load[data.pop_load["run_id"] == run.run_id]
        fo_run = data.failovers[data.failovers["run_id"] == run.run_id]
        margin = float(fo_run["total_s"].max()) if len(fo_run) else 0.0
        windows = tuple(
            (f["at"], f["at"] + f["duration_s"] + margin) for f in failures_of(run)
        )
        pop_config = run.config.get("pop", {})
        cores = {code: int(pop_config.get("cores_by_pop", {}).get(code, pop_config["cores"]))
                 for code in world.pops.codes}
        inputs = CapacityInputs(
            cores=cores, resolution_s=float(run.config["run"]["pop_load_resolution"]),
            failure_windows=windows, target_s=target_s,
        )
        for strategy in sorted(load_run["strategy"].unique()):
            hs = hs_run[hs_run["strategy"] == strategy]
            if hs.empty:
                continue
            table = capacity_table(load_run[load_run["strategy"] == strategy], hs,
                                   absorbed_shares(moves, hs), inputs)
            frames.append(table.assign(strategy=strategy, run_id=run.run_id, point=run.point))
    every = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if every.empty:
        return Analysis(every, every, pops if pops is not None else pd.DataFrame(), target_s,
                        tuple(notes))
    ranked = every.assign(
        _rec=every["recommended_cores"].astype("Float64").fillna(np.inf),
        _p99=every["n1_p99_s"].fillna(np.inf),
    ).sort_values(["_rec", "_p99", "n1_erlangs"], ascending=False)
    worst = ranked.drop_duplicates("pop").drop(columns=["_rec", "_p99"])
    worst = worst.sort_values("n1_erlangs", ascending=False, ignore_index=True)
    return Analysis(worst, every, pops, target_s, tuple(notes))


# --------------------------------------------------------------------------- sections
def build_sections(data: ReportData, analysis: Analysis) -> list[Section]:
    return [
        summary_section(data, analysis),
        latency_section(data),
        cost_section(data),
        cpu_section(data, analysis),
        cores_section(analysis),
        failover_section(data),
        timeline_section(data),
        map_section(analysis),
        provenance_section(data),
    ]


def summary_section(data: ReportData, analysis: Analysis) -> Section:
    run = data.first
    s = run.summary
    failures = failures_of(run)
    scope = (
        f"{s.get('sites', '?')} branch sites and {s.get('pops', '?')} POPs, "
        f"{duration(float(s.get('duration_s', 0)))} simulated"
    )
    if data.kind == "sweep":
        scope = f"A sweep of {len(data.runs)} runs over {', '.join(data.grid) or 'seeds'}: " + scope
    strategies = sorted(data.handshakes["strategy"].unique()) if len(data.handshakes) else []
    bullets = [f"{scope}; failover strategies compared: {', '.join(strategies) or 'none'}."]
    if failures:
        bullets.append("Injected failures: " + "; ".join(
            f"{f['pop']} ({f['kind']}) at {duration(f['at'])} for {duration(f['duration_s'])}"
            for f in failures) + ".")
    else:
        bullets.append("No POP failure was injected.")
    ok = data.handshakes[data.handshakes["outcome"] == "established"] if len(data.handshakes) \
        else data.handshakes
    for proposal, group in ok.groupby("proposal") if len(ok) else []:
        initial = group[group["kind"] == "initial"]
        p50, p99 = _quantiles(initial["latency_s"] if len(initial) else group["latency_s"])
        med = initial if len(initial) else group
        bullets.append(
            f"{plots.short_proposal(proposal)}: initial handshake p50 {ms(p50)}, p99 {ms(p99)}; "
            f"{med['bytes'].median():.0f} bytes in {med['datagrams'].median():.0f} datagrams "
            f"over {med['round_trips'].median():.0f} round trips."
        )
    for strategy, group in data.failovers.groupby("strategy") if len(data.failovers) else []:
        p50, p99 = _quantiles(group["total_s"])
        storm = data.handshakes[(data.handshakes["strategy"] == strategy)
                                & (data.handshakes["kind"] == "reestablish")]
        bullets.append(
            f"Failover under {strategy}: {len(group)} site outages"
            f"{' (all runs)' if data.kind == 'sweep' else ''}, p50 {ms(p50)}, "
            f"p99 {ms(p99)}; {len(storm)} re-establishing handshakes."
            + _outcome_split(strategy, group)
        )
    cap = analysis.capacity
    if len(cap):
        busiest = cap.sort_values("peak_cpu", ascending=False).iloc[0]
        bullets.append(
            f"Busiest POP {busiest['pop']}: CPU peaks at {pct(busiest['peak_cpu'])} of "
            f"{busiest['cores']} cores (headroom {pct(busiest['headroom'])})."
        )
        needed = cap["recommended_cores"].astype("Float64")
        short = cap[(needed > cap["cores"]).fillna(False)
                    | (needed.isna() & cap["floor_s"].notna())]
        if short.empty:
            bullets.append(
                f"N+1: every POP keeps predicted p99 handshake latency under "
                f"{ms(analysis.target_s)} when its worst neighbour fails, with its current cores."
            )
        else:
            listed = ", ".join(
                f"{r.pop} {r.cores}→{_cores_text(r, analysis.target_s)}"
                for r in short.head(10).itertuples()
            )
            bullets.append(
                f"N+1: {len(short)} POP(s) need more cores to keep p99 under "
                f"{ms(analysis.target_s)} during their worst neighbour's failure: {listed}."
            )
    section = Section("summary", "Summary", bullets=bullets)
    if data.kind == "sweep" and data.aggregate is not None:
        section.tables.append(("Sweep: mean and 95 % confidence interval per grid point",
                               sweep_table(data)))
        metric = _headline_metric(data.aggregate)
        x = _numeric_grid(data)
        if metric and x:
            hue = next((g for g in data.grid if g != x), None)
            section.figures.append((
                plots.sweep_metric(data.aggregate, metric, x=x, hue=hue, scale=1e3,
                                   ylabel="p99 handshake latency (ms)"),
                f"{metric} against {x} (mean ± 95 % CI over replications)",
            ))
    return section


def _outcome_split(strategy: str, group: pd.DataFrame) -> str:
    """A sentence like "Split by outcome: 45 switched (p50 2.60 s, p99 …), 49 no survivor
    (…)." when the strategy's failovers ended in more than one way, else nothing."""
    outcomes = group["outcome"].astype(str)
    if outcomes.nunique() < 2:
        return ""
    parts = []
    for outcome, g in group.groupby(outcomes):
        p50, p99 = _quantiles(g["total_s"])
        parts.append(f"{len(g)} {plots.outcome_label(strategy, outcome)} "
                     f"(p50 {ms(p50)}, p99 {ms(p99)})")
    return " Split by outcome: " + ", ".join(parts) + "."


def _cores_text(row, target_s: float) -> str:
    """A recommendation in words: cores, network-bound (floor above target), or no data."""
    if not pd.isna(row.recommended_cores):
        return str(row.recommended_cores)
    if pd.isna(row.floor_s):
        return "–"
    return "network-bound" if row.floor_s > target_s else f"> {MAX_CORES}"


def _headline_metric(aggregate: pd.DataFrame) -> str | None:
    names = sorted(m for m in aggregate["metric"].unique() if m.endswith(".latency_s.p99"))
    return names[0] if names else None


def _numeric_grid(data: ReportData) -> str | None:
    runs = data.handshakes
    for g in data.grid:
        if g in runs and pd.api.types.is_numeric_dtype(runs[g]):
            return g
    return data.grid[0] if data.grid else None


SWEEP_METRICS = {
    "latency_s.p99": "handshake p99",
    "latency_s_by_kind.initial.p99": "initial p99",
    "failover_s.total_s.p99": "failover p99",
    "peak_cpu_utilisation": "peak CPU",
}


def sweep_table(data: ReportData) -> pd.DataFrame:
    """Headline metrics per grid point and strategy: mean ± 95 % CI half-width (n runs).

    A strategy whose failovers ended in more than one way (dual-tunnel: switched vs no
    survivor) also gets its failover p99 per outcome: the pooled p99 hides the split."""
    agg = data.aggregate
    parts = agg["metric"].str.extract(r"^strategies\.([^.]+)\.(.+)$")
    names = parts[1].map(SWEEP_METRICS)
    outcome = parts[1].str.extract(r"^failover_total_s_by_outcome\.([^.]+)\.p99$")[0]
    split = outcome.notna() & (
        agg.assign(strategy=parts[0], outcome=outcome)
        .groupby(["strategy", *data.grid], dropna=False)["outcome"]
        .transform("nunique") > 1
    )  # fmt: skip
    names = names.where(~split, [
        f"failover p99, {plots.outcome_label(s, o)}" if isinstance(o, str) else None
        for s, o in zip(parts[0], outcome, strict=True)
    ])  # fmt: skip
    rows = agg.assign(strategy=parts[0], name=names).dropna(subset=["name"])
    if rows.empty:
        return pd.DataFrame()
    grid = list(data.grid)
    rows = rows.assign(
        point=rows[grid].apply(lambda r: point_label(dict(zip(grid, r, strict=True))), axis=1)
        if grid else "",
        value=[_mean_ci(r.name, r.mean, r.ci_half_width) for r in rows.itertuples()],
    )
    table = rows.pivot_table(index=["point", "strategy", "n"], columns="name", values="value",
                             aggfunc="first", sort=False)
    order = [*SWEEP_METRICS.values()]
    at = order.index("failover p99") + 1
    order[at:at] = sorted(c for c in table.columns if c.startswith("failover p99, "))
    table = table[[c for c in order if c in table.columns]]
    table.columns.name = None
    return table.reset_index().rename(columns={"n": "runs"})


def _mean_ci(name: str, mean: float, half: float) -> str:
    fmt = pct if name == "peak CPU" else ms
    return fmt(mean) if pd.isna(half) else f"{fmt(mean)} ± {fmt(half)}"


def latency_section(data: ReportData) -> Section:
    section = Section("latency", "Handshake latency")
    hs = data.handshakes
    if hs.empty or not (hs["outcome"] == "established").any():
        section.note = "No handshake was established in this run."
        return section
    section.paragraphs.append(
        "Time from a site's first request to its last response, per kind of handshake "
        "(initial, Child SA rekey, IKE SA rekey, re-establishment after a failure), one line "
        "per proposal, pooled over failover strategies. The dotted line marks p99."
    )
    hue = None
    if data.kind == "sweep":
        others = [g for g in data.grid if g != "ike.proposals"]
        if others:
            labels = hs[others].apply(
                lambda r: point_label(dict(zip(others, r, strict=True))), axis=1)
            hs = hs.assign(series=hs["proposal"].map(plots.short_proposal) + " · " + labels)
            hue = "series"
    section.figures.append((plots.latency_cdf(hs, hue=hue), "Latency CDF per proposal and kind"))
    section.tables.append(("Latency percentiles", latency_table(data.handshakes)))
    return section


def latency_table(handshakes: pd.DataFrame) -> pd.DataFrame:
    ok = handshakes[handshakes["outcome"] == "established"]
    rows = []
    for (proposal, kind), g in ok.groupby(["proposal", "kind"]):
        q = g["latency_s"].quantile([0.5, 0.9, 0.99])
        rows.append({"proposal": plots.short_proposal(proposal), "kind": kind, "n": len(g),
                     "p50": ms(q[0.5]), "p90": ms(q[0.9]), "p99": ms(q[0.99]),
                     "max": ms(g["latency_s"].max()),
                     "failed": int(((handshakes["proposal"] == proposal)
                                    & (handshakes["kind"] == kind)
                                    & (handshakes["outcome"] != "established")).sum())})
    return _by_kind(pd.DataFrame(rows))


def _by_kind(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    order = {k: i for i, k in enumerate(HANDSHAKE_KINDS)}
    return frame.sort_values(["proposal", "kind"], key=lambda c: c.map(order).fillna(c)
                             if c.name == "kind" else c, ignore_index=True)


def cost_section(data: ReportData) -> Section:
    section = Section("cost", "Bytes, datagrams and round trips per handshake")
    hs = data.handshakes
    if hs.empty or not (hs["outcome"] == "established").any():
        section.note = "No handshake was established in this run."
        return section
    section.paragraphs.append(
        "Medians per established handshake, both directions, IKE only (UDP payload bytes). "
        "A handshake that sent more than two datagrams per round trip (retransmissions "
        "aside) was fragmented (RFC 7383): "
        "the 'fragmented' column shows where that starts."
    )
    section.figures.append((plots.handshake_cost(hs), "Wire cost per proposal and kind"))
    section.tables.append(("Wire cost", cost_table(hs)))
    return section


def cost_table(handshakes: pd.DataFrame) -> pd.DataFrame:
    ok = handshakes[handshakes["outcome"] == "established"]
    # each exchange is >= 2 datagrams and each retransmission 1 more (wansim.sim.site)
    ok = ok.assign(
        fragmented=ok["datagrams"] - ok["retransmissions"] > 2 * ok["round_trips"])
    rows = []
    for (proposal, kind), g in ok.groupby(["proposal", "kind"]):
        rows.append({
            "proposal": plots.short_proposal(proposal), "kind": kind, "n": len(g),
            "bytes": f"{g['bytes'].median():.0f}", "datagrams": f"{g['datagrams'].median():.0f}",
            "round trips": f"{g['round_trips'].median():.0f}",
            "retransmissions": f"{g['retransmissions'].mean():.2f}",
            "fragmented": f"{g['fragmented'].mean():.0%}",
        })
    return _by_kind(pd.DataFrame(rows))


def loaded(cap: pd.DataFrame) -> pd.DataFrame:
    """The POPs that carry load now or at N+1 (the others have nothing to show)."""
    return cap[cap["n1_rate"] > 0]


def _capacity_rows(cap: pd.DataFrame, target_s: float) -> pd.DataFrame:
    rows = loaded(cap).head(TOP_POPS)
    return pd.DataFrame({
        "POP": rows["pop"],
        "cores": rows["cores"],
        "peak CPU": rows["peak_cpu"].map(pct),
        "headroom": rows["headroom"].map(pct),
        "service/exchange": rows["service_s"].map(ms),
        "peak exch/s": rows["peak_rate"].map("{:.1f}".format),
        "worst neighbour": rows["worst_neighbour"].astype(object).fillna("–"),
        "N+1 exch/s": rows["n1_rate"].map("{:.1f}".format),
        "N+1 CPU": rows["n1_utilisation"].map(pct),
        "measured in failure": rows["failure_peak_rate"].map(
            lambda v: "–" if pd.isna(v) else f"{v:.1f}/s"),
        "N+1 p99 (model)": rows["n1_p99_s"].map(ms),
        f"cores for p99 ≤ {ms(target_s)}": [_cores_text(r, target_s) for r in rows.itertuples()],
        "strategy": rows["strategy"],
        **({"run": rows["point"]} if rows["point"].astype(bool).any() else {}),
    })


def cpu_section(data: ReportData, analysis: Analysis) -> Section:
    section = Section("cpu", "POP CPU, headroom and the N+1 table")
    cap = analysis.capacity
    if cap.empty:
        section.note = (
            "No POP handled an exchange in this run." if not analysis.skipped else
            "The stored configuration no longer matches this wansim version, so the run's "
            "anycast world could not be rebuilt for the N+1 analysis."
        )
        return section
    if analysis.skipped:
        section.paragraphs.append(
            f"{len(analysis.skipped)} run(s) were left out: their stored configuration no "
            "longer rebuilds the world with this wansim version."
        )
    section.paragraphs += [
        "Peak CPU is the busiest pop_load bin (time-averaged busy cores ÷ cores); headroom is "
        "1 − peak. The N+1 columns add, to each POP's healthy-world peak exchange rate, what "
        "its worst neighbour's failure sends it: the sites that neighbour served move to their "
        "next preferred POP in this run's own anycast catchments, weighted by the exchanges "
        "they made. 'Measured in failure' is the busiest bin observed during an injected "
        "failure; when it is higher (a re-handshake storm is a burst), the N+1 rate is that.",
        f"Shown: the {min(TOP_POPS, len(loaded(cap)))} POPs with the highest N+1 load, each "
        "at its worst strategy (and sweep point)"
        + (f"; {len(cap) - len(loaded(cap))} POPs carried no load even at N+1"
           if len(loaded(cap)) < len(cap) else "")
        + ". capacity.csv beside this report lists every POP.",
    ]
    section.figures.append((plots.pop_cpu(loaded(cap), top=TOP_POPS),
                            "Peak CPU now and modelled N+1 utilisation per POP"))
    section.tables.append(("N+1 table", _capacity_rows(cap, analysis.target_s)))
    return section


def cores_section(analysis: Analysis) -> Section:
    section = Section("cores", "Recommended cores per POP")
    cap = analysis.capacity
    if cap.empty:
        section.note = "No POP handled an exchange in this run: there is nothing to size."
        return section
    section.paragraphs += [
        f"The fewest cores that keep the predicted p99 handshake latency under "
        f"{ms(analysis.target_s)} while the POP carries its N+1 load. Model: M/M/c (Erlang C) "
        "per POP with the run's mean service time per exchange and the N+1 exchange rate as a "
        "Poisson arrival rate; a handshake's CPU wait is the sum of its exchanges' waits "
        "(independent, each zero with probability 1 − C(c, a), else exponential with rate "
        "(c − a)/s); predicted p99 = p99 of the run's latency without CPU queueing (over "
        "handshakes that needed no retransmission) + p99 of that wait. Near-constant service "
        "times (the cost table) wait less than exponential ones (Allen–Cunneen), so the "
        "recommendation errs towards more cores.",
        "A POP whose latency floor (network round trips) already exceeds the target is marked "
        "network-bound: more cores cannot fix it.",
    ]
    section.figures.append((plots.recommended_cores(loaded(cap), target_s=analysis.target_s,
                                                    top=TOP_POPS),
                            "Cores in the run and recommended cores"))
    return section


def failover_section(data: ReportData) -> Section:
    section = Section("failover", "Failover time per strategy")
    fo = data.failovers
    if fo.empty:
        injected = any(failures_of(r) for r in data.runs)
        section.note = ("Failures were injected but no site's tunnel was interrupted."
                        if injected else "No failures were injected in this run.")
        return section
    section.paragraphs.append(
        "Per site whose traffic a POP failure interrupted: detect (failure until the site or "
        "the routers notice), converge (anycast routes move), state (SA state usable again: "
        "replication, re-handshake or switch to the surviving tunnel); the parts add up to "
        "the total."
    )
    series = plots.failover_series(fo)
    if (series != fo["strategy"].astype(str)).any():
        section.paragraphs.append(
            "A strategy whose failovers ended in more than one way is split by outcome: "
            "its sites' outage times differ by orders of magnitude, and one CDF would hide it."
        )
    no_survivor = fo[fo["outcome"].astype(str) == "no_survivor"]
    if len(no_survivor):
        section.paragraphs.append(_no_survivor_text(fo, no_survivor))
    section.figures.append((plots.failover_cdf(fo), "Failover time CDF and its parts"))
    rows = []
    for strategy, g in fo.groupby(series):
        row: dict[str, Any] = {"strategy": strategy, "sites": len(g)}
        for part in ("detect_s", "converge_s", "state_s", "total_s"):
            p50, p99 = _quantiles(g[part])
            row[f"{part.removesuffix('_s')} p50"] = ms(p50)
            row[f"{part.removesuffix('_s')} p99"] = ms(p99)
        row["outcomes"] = ", ".join(f"{k}: {v}" for k, v in g["outcome"].value_counts().items())
        rows.append(row)
    section.tables.append(("Failover parts", pd.DataFrame(rows)))
    return section


def _no_survivor_text(fo: pd.DataFrame, no_survivor: pd.DataFrame) -> str:
    """Why dual-tunnel sites split in two, with this run's numbers, and what it means."""
    strategies = sorted(no_survivor["strategy"].astype(str).unique())
    hit = fo[fo["strategy"].astype(str).isin(strategies)]
    survived = hit[hit["outcome"].astype(str) != "no_survivor"]
    return (
        f"{len(no_survivor)} of {len(hit)} {' and '.join(strategies)} site outages had no "
        f"surviving tunnel (p50 {ms(_quantiles(no_survivor['total_s'])[0])}, against p50 "
        f"{ms(_quantiles(survived['total_s'])[0])} for the others): both of the site's "
        "anycast addresses are announced from every POP, so their catchments coincide and "
        "both tunnels often land on the same POP; when it fails, "
        "health checks find nothing healthy to switch to and the site waits for DPD and a "
        "re-handshake, like rehandshake. For planning: a second tunnel protects only the "
        "sites whose two catchments differ; budget the other sites' outage and the "
        "neighbours' re-handshake storm as under rehandshake."
    )


def timeline_section(data: ReportData) -> Section:
    section = Section("timeline", "Rekey and storm timeline")
    if data.handshakes.empty and data.pop_load.empty:
        section.note = "Nothing happened in this run."
        return section
    run = data.first
    hs = data.handshakes[data.handshakes["run_id"] == run.run_id]
    load = data.pop_load[data.pop_load["run_id"] == run.run_id]
    failures = [(f["pop"], f["at"], f["at"] + f["duration_s"]) for f in failures_of(run)]
    section.paragraphs.append(
        "Handshakes started per second by kind, per strategy, with the busiest POP's CPU "
        "utilisation; grey spans are injected failures. Synchronised rekeys show as spikes, "
        "a re-handshake storm as a red burst after a failure."
        + (f" Sweep: run {run.point}." if data.kind == "sweep" else "")
    )
    resolution = float(run.config.get("run", {}).get("pop_load_resolution", 60.0))
    section.figures.append((plots.timeline(hs, load, failures=failures, resolution_s=resolution),
                            "Handshake starts and busiest POP CPU over time"))
    return section


def map_section(analysis: Analysis) -> Section:
    section = Section("map", "POP map")
    if analysis.pops.empty:
        section.note = "The run's topology has no POP coordinates."
        return section
    if analysis.capacity.empty:
        section.note = "No POP carried load in this run (or no handshake was recorded)."
        return section
    merged = analysis.pops.merge(analysis.capacity, on="pop", how="left")
    if merged["n1_erlangs"].fillna(0).eq(0).all():
        section.note = "No POP carried load in this run."
        return section
    section.paragraphs.append(
        "POPs by longitude and latitude: area by N+1 offered load (Erlangs), colour by headroom "
        "at the measured peak (green idle, red saturated)."
    )
    section.figures.append((plots.world_map(merged), "POPs sized by load, coloured by headroom"))
    return section


def _cost_profile(profile: dict[str, Any]) -> str:
    """Name, scale, and where and when its operations were measured."""
    if not profile:
        return "–"
    text = f"{profile.get('name', '?')} (×{profile.get('scale', 1)})"
    measured = profile.get("provenance", {}) or {}
    where = ", ".join(str(measured[k]) for k in ("cpu", "measured_at") if measured.get(k))
    return f"{text}; measured on {where}" if where else text


def provenance_section(data: ReportData) -> Section:
    run = data.first
    m = run.manifest
    section = Section("provenance", "Provenance")
    rows = [
        ("experiment", data.name),
        ("results", str(data.path)),
        ("runs", str(len(data.runs))),
        ("seed" if data.kind == "run" else "seeds",
         ", ".join(str(r.manifest.get("seed")) for r in data.runs[:12])
         + (" …" if len(data.runs) > 12 else "")),
        ("crypto backend", ", ".join(f"{k}: {v}" for k, v in m.get("crypto_backend", {}).items())),
        ("cost profile", _cost_profile(m.get("cost_profile", {}))),
        ("wall time", ", ".join(f"{r.manifest['wall_time_s']:.1f} s" for r in data.runs[:12]
                                if "wall_time_s" in r.manifest) or "–"),
        ("versions", ", ".join(f"{k} {v}" for k, v in sorted(
            {**m.get("packages", {}), **m.get("versions", {})}.items()) if v)),
        ("machine", str(m.get("machine", {}).get("platform", "–"))),
        ("written", str(m.get("written_at", "–"))),
    ]
    section.tables.append(("Run", pd.DataFrame(rows, columns=["field", "value"])))
    if data.kind == "sweep":
        section.tables.append(("Runs", pd.DataFrame(
            [{"run": r.run_id, "point": r.point, "seed": r.manifest.get("seed")}
             for r in data.runs])))
    section.code = json.dumps(data.plan.get("base_config") or run.config, indent=2,
                              sort_keys=True)
    return section
