"""The failover section splits dual-tunnel by outcome, with the numbers of a real run.

A shrunk ``experiments/pop_failover.toml`` (FRA fails silently, health checks 1 s × 3):
dual-tunnel sites whose second tunnel is elsewhere switch in seconds, the ones whose two
anycast catchments both sit on FRA (``no_survivor``) wait for DPD and a re-handshake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import wansim
from tests.test_report import sections_of
from wansim.experiment import load_experiment
from wansim.experiment.runner import run_experiment
from wansim.report import build_report, plots
from wansim.report.sections import ms

POP_FAILOVER = Path(__file__).resolve().parents[1] / "experiments" / "pop_failover.toml"


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    """(results, report.html sections) of a 60-branch, 16-minute pop_failover run."""
    config = load_experiment(POP_FAILOVER, overrides={
        "sites.count": 60, "sites.start_window": "1m",
        "run.duration": "16m", "run.warm_up": "1m",
        "failures.scheduled": [{"pop": "FRA", "at": "5m", "duration": "8m", "kind": "silent"}],
        "failover.strategies": ["rehandshake", "dual-tunnel"],
    })  # fmt: skip
    folder = tmp_path_factory.mktemp("failover") / "run"
    run_experiment(config, folder)
    report = build_report(folder, tmp_path_factory.mktemp("out"))
    return wansim.load(folder), sections_of(report.html.read_text())


def _dual(res, outcome: str):
    fo = res.failovers
    return fo[(fo["strategy"] == "dual-tunnel") & (fo["outcome"] == outcome)]["total_s"]


def test_the_run_has_both_dual_tunnel_outcomes(split_run):
    res, _ = split_run
    switched, stranded = _dual(res, "recovered"), _dual(res, "no_survivor")
    assert len(switched) and len(stranded)
    # health checks: a probe and two retries, 1 s apart; no survivor: DPD + re-handshake
    assert 2.0 <= switched.min() and switched.max() <= 3.5
    assert stranded.min() > 30


def test_failover_table_has_a_row_per_dual_tunnel_outcome(split_run):
    res, sections = split_run
    html = sections["failover"]
    for outcome, label in (("recovered", "switched"), ("no_survivor", "no survivor")):
        values = _dual(res, outcome)
        row = html.split(f"<td>dual-tunnel ({label})</td>")[1].split("</tr>")[0]
        assert row.startswith(f"\n      <td>{len(values)}</td>"), row
        assert f"<td>{ms(float(values.median()))}</td>" in row
        assert f"<td>{ms(float(values.quantile(0.99)))}</td>" in row
    # rehandshake has one outcome here: one row, not split
    assert "<td>rehandshake</td>" in html and "rehandshake (" not in html
    assert "<td>dual-tunnel</td>" not in html


def test_failover_section_explains_why_tunnels_share_a_pop(split_run):
    res, sections = split_run
    html = sections["failover"]
    stranded, everyone = _dual(res, "no_survivor"), res.failovers["strategy"] == "dual-tunnel"
    assert f"{len(stranded)} of {everyone.sum()} dual-tunnel site outages had no surviving" \
        in html
    assert f"p50 {ms(float(stranded.median()))}" in html
    assert "announced from every POP" in html
    assert "a second tunnel protects only the sites whose two catchments differ" in html


def test_summary_failover_line_mentions_the_split(split_run):
    res, sections = split_run
    switched, stranded = _dual(res, "recovered"), _dual(res, "no_survivor")
    line = sections["summary"].split("Failover under dual-tunnel:")[1].split("</li>")[0]
    assert (
        f"Split by outcome: {len(stranded)} no survivor (p50 {ms(float(stranded.median()))}, "
        f"p99 {ms(float(stranded.quantile(0.99)))}), {len(switched)} switched "
        f"(p50 {ms(float(switched.median()))}, p99 {ms(float(switched.quantile(0.99)))})."
    ) in line
    rehandshake = sections["summary"].split("Failover under rehandshake:")[1].split("</li>")[0]
    assert "Split by outcome" not in rehandshake


def test_failover_series_labels_only_strategies_with_several_outcomes(split_run):
    res, _ = split_run
    series = plots.failover_series(res.failovers)
    assert set(series) == {"rehandshake", "dual-tunnel (switched)", "dual-tunnel (no survivor)"}
    assert (series == "dual-tunnel (no survivor)").sum() == len(_dual(res, "no_survivor"))
    fig = plots.failover_cdf(res.failovers)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    n = len(_dual(res, "recovered"))
    assert f"dual-tunnel (switched) (n={n})" in legend


def test_sweep_table_splits_failover_p99_where_a_strategy_ended_two_ways():
    import pandas as pd

    from wansim.report.data import ReportData
    from wansim.report.sections import sweep_table

    rows = [  # (strategy, metric below it, mean s) at each of two grid points
        ("dual-tunnel", "failover_s.total_s.p99", 170.0),
        ("dual-tunnel", "failover_total_s_by_outcome.recovered.p99", 2.9),
        ("dual-tunnel", "failover_total_s_by_outcome.no_survivor.p99", 175.0),
        ("rehandshake", "failover_s.total_s.p99", 175.3),
        ("rehandshake", "failover_total_s_by_outcome.recovered.p99", 175.3),
    ]
    aggregate = pd.DataFrame(
        [{"metric": f"strategies.{s}.{m}", "n": 3, "mean": v, "ci_half_width": 0.5,
          "pop.cores": cores} for cores in (2, 4) for s, m, v in rows]
    )  # fmt: skip
    empty = pd.DataFrame()
    data = ReportData(Path("."), "sweep", "x", "", empty, empty, empty, (),
                      grid=("pop.cores",), aggregate=aggregate)  # fmt: skip
    table = sweep_table(data).set_index(["point", "strategy"])
    assert list(table.columns) == ["runs", "failover p99", "failover p99, no survivor",
                                   "failover p99, switched"]  # fmt: skip
    dual = table.xs("dual-tunnel", level="strategy")
    assert (dual["failover p99, switched"] == "2.90 s ± 500.0 ms").all()
    assert (dual["failover p99, no survivor"] == "175.00 s ± 500.0 ms").all()
    rehandshake = table.xs("rehandshake", level="strategy")  # one outcome: not split
    assert rehandshake[["failover p99, no survivor", "failover p99, switched"]].isna().all().all()
