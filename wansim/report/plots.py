"""Report figures, one function each: tidy DataFrames in, a matplotlib Figure out.

They take the tables of :func:`wansim.load` / :func:`wansim.simulate` (or the capacity
table of :mod:`wansim.report.capacity`) and use ``matplotlib.figure.Figure`` directly, never
pyplot: no global figure state, any backend, safe in worker processes. In a notebook the
returned Figure displays itself::

    from wansim.report import plots
    plots.latency_cdf(wansim.load("results/quickstart").handshakes)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from wansim.sim.metrics import HANDSHAKE_KINDS

PARTS = ("detect_s", "converge_s", "state_s")
PART_COLOURS = {"detect_s": "#d62728", "converge_s": "#ff7f0e", "state_s": "#1f77b4"}
KIND_COLOURS = {
    "initial": "#1f77b4",
    "rekey_child": "#2ca02c",
    "rekey_ike": "#9467bd",
    "reestablish": "#d62728",
}


@lru_cache(maxsize=256)
def short_proposal(proposal: str) -> str:
    """The key exchanges of an IKE proposal, e.g. ``x25519+mlkem768`` (else the string)."""
    from wansim.ike.constants import ADDKE_TYPES, TransformType
    from wansim.ike.proposals import ke_token, parse_proposals

    try:
        specs = parse_proposals([proposal], "ike")
    except Exception:  # noqa: BLE001 - a label must never break a plot
        return proposal
    ke_types = {TransformType.KE, *ADDKE_TYPES}
    tokens = [
        ke_token(t.id) for t in specs[0].transforms if t.type in ke_types and t.id != 0
    ]
    return "+".join(tokens) or proposal


def _figure(width: float = 10.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _colours(labels: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _message(fig: Figure, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True)
    ax.set_axis_off()
    return fig


def _ecdf(values: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF; above ``points`` values it is drawn through ``points`` evenly spaced
    ranks (the tail's last rank included), which looks the same and stays fast."""
    x = np.sort(values)
    y = np.arange(1, len(x) + 1) / len(x)
    if len(x) > points:
        keep = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
        x, y = x[keep], y[keep]
    return x, y


# --------------------------------------------------------------------------- handshakes
def latency_cdf(handshakes: pd.DataFrame, *, hue: str | None = None) -> Figure:
    """Latency CDF of established handshakes: one panel per kind, one line per proposal
    (or per value of ``hue``, a column of ``handshakes``); log time axis."""
    ok = handshakes[handshakes["outcome"] == "established"]
    if ok.empty:
        return _message(_figure(height=2), "no handshake was established")
    series = ok[hue].astype(str) if hue else ok["proposal"].map(short_proposal)
    kinds = [k for k in HANDSHAKE_KINDS if (ok["kind"] == k).any()]
    colours = _colours(sorted(series.unique()))
    fig = _figure(width=3.2 * len(kinds) + 1.5, height=3.6)
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        in_kind = ok["kind"] == kind
        for label in sorted(series[in_kind].unique()):
            values = ok.loc[in_kind & (series == label), "latency_s"].to_numpy() * 1e3
            x, y = _ecdf(np.maximum(values, 1e-3))
            ax.step(x, y, where="post", color=colours[label], label=f"{label} (n={len(x)})")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(kind.replace("_", " "))
        ax.set_xlabel("latency (ms)")
        ax.axhline(0.99, color="grey", lw=0.6, ls=":")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("fraction of handshakes")
    return fig


def handshake_cost(handshakes: pd.DataFrame, *, by: str = "proposal") -> Figure:
    """Median bytes, datagrams and round trips per handshake, per proposal (or another
    column `by`, e.g. an auth method the caller added) and kind.

    A dashed outline on the datagram bars marks two datagrams per round trip (request and
    response): any excess is IKE fragmentation (RFC 7383) on the wire.
    """
    ok = handshakes[handshakes["outcome"] == "established"]
    if ok.empty:
        return _message(_figure(height=2), "no handshake was established")
    names = ok[by].map(short_proposal) if by == "proposal" else ok[by].astype(str)
    ok = ok.assign(label=names)
    med = ok.groupby(["label", "kind"])[["bytes", "datagrams", "round_trips"]].median()
    labels = sorted(ok["label"].unique())
    kinds = [k for k in HANDSHAKE_KINDS if k in med.index.get_level_values("kind")]
    fig = _figure(width=12, height=3.8)
    axes = fig.subplots(1, 3)
    width = 0.8 / len(kinds)
    x = np.arange(len(labels))
    for ax, column, title in zip(
        axes, ("bytes", "datagrams", "round_trips"),
        ("bytes on the wire", "datagrams", "round trips"), strict=True,
    ):
        for j, kind in enumerate(kinds):
            values = [med[column].get((label, kind), np.nan) for label in labels]
            pos = x + (j - (len(kinds) - 1) / 2) * width
            ax.bar(pos, values, width, color=KIND_COLOURS[kind], label=kind.replace("_", " "))
            if column == "datagrams":
                unfragmented = [2 * med["round_trips"].get((lb, kind), np.nan) for lb in labels]
                ax.bar(pos, unfragmented, width, fill=False, ls="--", lw=0.8, edgecolor="black")
        ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"median {title} per handshake")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------- POP CPU
def pop_cpu(capacity: pd.DataFrame, *, top: int = 30) -> Figure:
    """Per POP: measured peak CPU utilisation and the modelled N+1 utilisation (its own
    peak plus what its worst neighbour's failure sends it), with the current cores."""
    if capacity.empty:
        return _message(_figure(height=2), "no POP carried load")
    rows = capacity.head(top)
    fig = _figure(width=max(6.0, 0.45 * len(rows) + 2), height=3.8)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, rows["peak_cpu"] * 100, 0.4, label="measured peak (busiest bin)")
    ax.bar(x + 0.2, rows["n1_utilisation"] * 100, 0.4, label="N+1: + worst neighbour (model)")
    if max(rows["peak_cpu"].max(), rows["n1_utilisation"].max()) > 0.5:
        ax.axhline(100, color="black", lw=0.8)  # else the axis scales to the small bars
    ax.set_xticks(x, [f"{p}\n{c} cores" for p, c in zip(rows["pop"], rows["cores"], strict=True)],
                  fontsize=7)
    ax.set_ylabel("CPU utilisation (%)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def recommended_cores(capacity: pd.DataFrame, *, target_s: float, top: int = 30) -> Figure:
    """Current cores against the fewest cores that keep predicted p99 handshake latency
    under ``target_s`` during the POP's worst single neighbour failure."""
    if capacity.empty:
        return _message(_figure(height=2), "no POP carried load")
    rows = capacity.head(top)
    fig = _figure(width=max(6.0, 0.45 * len(rows) + 2), height=3.6)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    recommended = rows["recommended_cores"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    ax.bar(x - 0.2, rows["cores"], 0.4, label="cores in the run", color="C7")
    ax.bar(x + 0.2, recommended, 0.4, label=f"recommended (p99 ≤ {target_s * 1e3:.0f} ms at N+1)",
           color="C2")
    for xi, value in zip(x, recommended, strict=True):
        if np.isnan(value):
            ax.text(xi + 0.2, 0.1, "network\nbound", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, rows["pop"], fontsize=8)
    ax.set_ylabel("cores")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------- failover
OUTCOME_LABELS = {("dual-tunnel", "recovered"): "switched"}
"""How an outcome reads under a strategy when it is not its tag with spaces: a recovered
dual-tunnel failover is a switch to the surviving tunnel."""


def outcome_label(strategy: str, outcome: str) -> str:
    """``no_survivor`` -> ``no survivor``; a dual-tunnel ``recovered`` -> ``switched``."""
    return OUTCOME_LABELS.get((strategy, outcome), outcome.replace("_", " "))


def failover_series(failovers: pd.DataFrame) -> pd.Series:
    """Per failover row, its strategy, split by outcome where the strategy has more than
    one (``dual-tunnel (switched)`` vs ``dual-tunnel (no survivor)``): one CDF hides that
    the two differ by orders of magnitude."""
    strategy = failovers["strategy"].astype(str)
    outcome = failovers["outcome"].astype(str)
    split = outcome.groupby(strategy).transform("nunique") > 1
    labels = [f"{s} ({outcome_label(s, o)})" if many else s
              for s, o, many in zip(strategy, outcome, split, strict=True)]
    return pd.Series(labels, index=failovers.index, dtype=object, name="series")


def failover_cdf(failovers: pd.DataFrame) -> Figure:
    """Failover time CDF per strategy, and its mean parts (detect, converge, state); a
    strategy with several outcomes gets a line and a bar per outcome (see
    :func:`failover_series`)."""
    if failovers.empty:
        return _message(_figure(height=2), "no failover happened")
    series = failover_series(failovers)
    strategies = sorted(series.unique())
    strategy_names = set(failovers["strategy"].astype(str))
    colours = _colours(strategies)
    fig = _figure(width=11, height=3.8)
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    for strategy in strategies:
        values = failovers.loc[series == strategy, "total_s"].dropna().to_numpy()
        if len(values):
            x, y = _ecdf(values)
            split = strategy not in strategy_names  # dashed on top: it may share a line
            left.step(x, y, where="post", color=colours[strategy], ls="--" if split else "-",
                      zorder=3 if split else 2, label=f"{strategy} (n={len(x)})")
    left.set_xlabel("site outage: failure to traffic restored (s)")
    left.set_ylabel("fraction of affected sites")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    means = failovers.groupby(series)[list(PARTS)].mean().reindex(strategies)
    start = np.zeros(len(strategies))
    for part in PARTS:
        right.barh(strategies, means[part], left=start, color=PART_COLOURS[part],
                   label=part.removesuffix("_s"))
        start += means[part].fillna(0).to_numpy()
    right.set_xlabel("mean seconds")
    right.set_title("parts of a failover")
    right.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------- timeline
def failure_spans(manifest: dict) -> list[tuple[str, float, float]]:
    """(pop, start, end) of every failure a run injected, from its manifest."""
    return [(f["pop"], f["at"], f["at"] + f["duration_s"]) for f in manifest.get("failures", [])]


def timeline(
    handshakes: pd.DataFrame,
    pop_load: pd.DataFrame,
    *,
    failures: Sequence[tuple[str, float, float]] = (),
    resolution_s: float | None = None,
) -> Figure:
    """Rekey and storm timeline, one row per strategy: handshakes started per second by
    kind (stacked), and the busiest POP's CPU utilisation; failures shaded.

    ``failures`` are (pop, start, end) tuples (e.g. from the run manifest)."""
    strategies = sorted(set(handshakes.get("strategy", pd.Series(dtype=str)))
                        | set(pop_load.get("strategy", pd.Series(dtype=str))))
    if not strategies:
        return _message(_figure(height=2), "nothing happened in this run")
    if resolution_s is None:
        steps = np.diff(np.sort(pop_load["at"].unique())) if len(pop_load) else []
        resolution_s = float(steps[0]) if len(steps) else 60.0
    end = max(handshakes["start_at"].max() if len(handshakes) else 0.0,
              pop_load["at"].max() + resolution_s if len(pop_load) else 0.0)
    edges = np.arange(0.0, end + resolution_s, resolution_s)
    fig = _figure(width=11, height=2.4 * len(strategies) + 0.6)
    axes = fig.subplots(len(strategies), 1, sharex=True, squeeze=False)[:, 0]
    for ax, strategy in zip(axes, strategies, strict=True):
        hs = handshakes[handshakes["strategy"] == strategy]
        bottom = np.zeros(len(edges) - 1)
        for kind in HANDSHAKE_KINDS:
            counts, _ = np.histogram(hs.loc[hs["kind"] == kind, "start_at"], bins=edges)
            if counts.any():
                top = bottom + counts / resolution_s
                ax.stairs(top, edges / 60, baseline=bottom, fill=True, color=KIND_COLOURS[kind],
                          label=kind.replace("_", " "))
                bottom = top
        ax.set_ylabel("handshakes/s")
        ax.set_title(strategy, fontsize=9, loc="left")
        for pop, start, stop in failures:
            ax.axvspan(start / 60, stop / 60, color="grey", alpha=0.2)
            ax.text(start / 60, 0.98, f" {pop} down", transform=ax.get_xaxis_transform(),
                    fontsize=7, va="top")
        load = pop_load[pop_load["strategy"] == strategy]
        if len(load):
            busiest = load.groupby("at")["cpu_utilisation"].max()
            twin = ax.twinx()
            twin.plot(busiest.index / 60, busiest.to_numpy() * 100, color="black", lw=0.8,
                      label="busiest POP CPU %")
            twin.set_ylabel("CPU %", fontsize=8)
            twin.set_ylim(bottom=0)
            twin.legend(fontsize=7, loc="upper right")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", ncols=4)
    axes[-1].set_xlabel("simulated minutes")
    return fig


# --------------------------------------------------------------------------- world map
def world_map(pops: pd.DataFrame, *, size: str = "n1_erlangs", colour: str = "headroom") -> Figure:
    """POPs on a lon/lat plane, area by ``size`` (load), colour by ``colour`` (headroom,
    red = none left). ``pops`` needs pop, lat, lon and the two columns. No basemap: a
    graticule is enough to read where the load sits."""
    pops = pops.dropna(subset=["lat", "lon"])
    if pops.empty:
        return _message(_figure(height=2), "no POP coordinates")
    fig = _figure(width=10, height=5)
    ax = fig.add_subplot()
    load = pops[size].fillna(0).to_numpy(dtype=float)
    area = 30 + 600 * (load / load.max() if load.max() > 0 else load)
    points = ax.scatter(pops["lon"], pops["lat"], s=area, c=pops[colour].clip(0, 1),
                        cmap="RdYlGn", vmin=0, vmax=1, edgecolors="black", linewidths=0.5)
    if len(pops) <= 60:
        for row in pops.itertuples():
            ax.annotate(row.pop, (row.lon, row.lat), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    pad = 5
    ax.set_xlim(max(-180, pops["lon"].min() - pad), min(180, pops["lon"].max() + pad))
    ax.set_ylim(max(-90, pops["lat"].min() - pad), min(90, pops["lat"].max() + pad))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.grid(True, alpha=0.3)
    fig.colorbar(points, ax=ax, label=f"{colour} (1 = idle, 0 = saturated)", shrink=0.8)
    ax.set_title(f"POPs: area ∝ {size}, colour = {colour}", fontsize=9)
    return fig


# --------------------------------------------------------------------------- sweeps
def sweep_metric(aggregate: pd.DataFrame, metric: str, *, x: str, hue: str | None = None,
                 scale: float = 1.0, ylabel: str | None = None) -> Figure:
    """One aggregate metric (mean and 95 % CI) against grid column ``x``, a line per ``hue``."""
    rows = aggregate[aggregate["metric"] == metric]
    if rows.empty:
        return _message(_figure(height=2), f"the sweep has no metric {metric}")
    fig = _figure(width=7, height=3.6)
    ax = fig.add_subplot()
    groups = rows.groupby(hue, sort=True) if hue else [("", rows)]
    numeric = pd.api.types.is_numeric_dtype(rows[x])
    for label, group in groups:
        group = group.sort_values(x)
        xs = group[x] if numeric else group[x].map(_grid_value)
        half = group["ci_half_width"].fillna(0) * scale
        label_text = _grid_value(label) if hue else ""
        ax.errorbar(xs, group["mean"] * scale, yerr=half, marker="o", capsize=3, label=label_text)
    if numeric:
        ax.set_xticks(sorted(rows[x].unique()))
    else:
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    ax.grid(True, alpha=0.3)
    if hue:
        ax.legend(fontsize=7)
    return fig


def _grid_value(value: object) -> str:
    """A grid value as a short label: a proposal list (JSON text or list) by the key
    exchanges of its proposals, anything else as text."""
    import json

    if isinstance(value, str) and value.startswith("["):
        value = json.loads(value)
    if isinstance(value, list | tuple):
        return " | ".join(short_proposal(str(v)) for v in value)
    return str(value)
