"""The report of a real (small) run and of a real sweep: every section, real numbers."""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import wansim
from tests.test_report_fixtures import SWEEP_TOML, shared_run
from wansim.experiment import parse_experiment
from wansim.experiment.runner import run_sweep
from wansim.report import build_report
from wansim.report.capacity import failover_moves
from wansim.report.data import read_report_data
from wansim.report.sections import analyse, failover_section, ms, pct, rebuild_world

SECTIONS = ("summary", "latency", "cost", "cpu", "cores", "failover", "timeline", "map",
            "provenance")


@pytest.fixture
def run_dir(tmp_path_factory):
    return shared_run(tmp_path_factory)[0]


@pytest.fixture
def run_report(tmp_path_factory):
    return shared_run(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sweep"
    run_sweep(parse_experiment(SWEEP_TOML), out, workers=1)
    return out


def sections_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, flags=re.S))


def test_run_report_shows_every_section_with_a_plot(run_report):
    html = run_report.html.read_text()
    sections = sections_of(html)
    assert tuple(sections) == SECTIONS
    for name in SECTIONS[1:-1]:  # the summary is text; provenance is tables
        assert '<img class="plot"' in sections[name], name
        assert 'class="note"' not in sections[name], name
    assert "http://" not in html and "https://" not in html  # self-contained
    pdf = run_report.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type /Page\b", pdf)) >= len(SECTIONS)


def test_run_report_numbers_come_from_the_run(run_dir, run_report):
    res = wansim.load(run_dir)
    sections = sections_of(run_report.html.read_text())
    ok = res.handshakes[(res.handshakes["outcome"] == "established")
                        & (res.handshakes["kind"] == "initial")]
    p99 = ms(float(ok["latency_s"].quantile(0.99)))
    assert f"p99 {p99}" in sections["summary"]
    assert f"{ok['bytes'].median():.0f} bytes" in sections["summary"]
    fo = res.failovers[res.failovers["strategy"] == "rehandshake"]
    assert len(fo) > 0
    assert f"{len(fo)} site outages, p50 {ms(float(fo['total_s'].median()))}" \
        in sections["summary"]
    storm = ((res.handshakes["strategy"] == "rehandshake")
             & (res.handshakes["kind"] == "reestablish")).sum()
    assert storm > 0 and f"{storm} re-establishing handshakes" in sections["summary"]
    # the N+1 table lists every POP that carried load; FRA's sites go to a neighbour
    capacity = pd.read_csv(run_report.capacity_csv)
    assert set(capacity["pop"]) == set(res.pop_load["pop"])
    assert set(capacity["strategy"]) == {"replicated", "rehandshake"}
    for pop in capacity["pop"]:
        assert f"<td>{pop}</td>" in sections["cpu"]
    assert (capacity["worst_neighbour"] != capacity["pop"]).all()
    peak = res.pop_load.groupby("pop")["cpu_utilisation"].max()
    assert pct(peak.max()) in sections["cpu"]
    # provenance names the seed and the crypto backend of every key exchange
    assert "<td>3</td>" in sections["provenance"]
    for token, backend in res.manifest["crypto_backend"].items():
        assert f"{token}: {backend}" in sections["provenance"]


def test_n1_moves_are_the_moves_the_simulation_made(run_dir):
    """The N+1 model sends a failed POP's sites where the simulated failure sent them."""
    data = read_report_data(run_dir)
    moves = failover_moves(rebuild_world(data.first)).set_index("site")
    fo = data.failovers[data.failovers["strategy"] == "replicated"]
    assert len(fo) > 0
    for row in fo.itertuples():
        assert moves.loc[row.site, "pop"] == row.failed_pop == "FRA"
        assert moves.loc[row.site, "to_pop"] == row.new_pop


def test_recommended_cores_grow_with_a_tighter_target(run_dir):
    data = read_report_data(run_dir)
    loose = analyse(data, target_s=5.0).capacity.set_index("pop")
    tight = analyse(data, target_s=0.12).capacity.set_index("pop")
    loose_cores = loose["recommended_cores"].astype("Float64").fillna(np.inf)
    tight_cores = tight["recommended_cores"].astype("Float64").fillna(np.inf)
    assert (tight_cores.reindex(loose_cores.index) >= loose_cores).all()
    assert (loose["recommended_cores"] >= 1).all()


def test_a_run_without_failures_says_so(run_dir):
    data = read_report_data(run_dir)
    no_failure = dataclasses.replace(
        data,
        failovers=data.failovers.iloc[0:0],
        runs=tuple(dataclasses.replace(r, manifest={**r.manifest, "failures": []})
                   for r in data.runs),
    )
    section = failover_section(no_failure)
    assert section.note == "No failures were injected in this run." and not section.figures
    hit_nobody = dataclasses.replace(data, failovers=data.failovers.iloc[0:0])
    assert "no site's tunnel was interrupted" in failover_section(hit_nobody).note


def test_sweep_report_through_the_cli(sweep_dir):
    from wansim.cli import main

    result = CliRunner().invoke(main, ["report", str(sweep_dir)])
    assert result.exit_code == 0, result.output
    html = (sweep_dir / "report" / "report.html").read_text()
    sections = sections_of(html)
    assert tuple(sections) == SECTIONS
    for name in SECTIONS[1:-1]:  # the summary is text; provenance is tables
        assert '<img class="plot"' in sections[name], name
    sweep = wansim.load(sweep_dir)
    assert "A sweep of 2 runs over ike.proposals" in sections["summary"]
    assert "mean and 95 % confidence interval" in sections["summary"]
    for label in ("ecp384", "x25519+mlkem768"):
        assert label in sections["latency"] and label in sections["cost"]
    # per-proposal medians in the wire-cost table are the sweep's own numbers
    ok = sweep.handshakes[(sweep.handshakes["outcome"] == "established")
                          & (sweep.handshakes["kind"] == "initial")]
    for proposal, group in ok.groupby("proposal"):
        assert f"<td>{group['bytes'].median():.0f}</td>" in sections["cost"], proposal
    assert (sweep_dir / "report" / "report.pdf").read_bytes().startswith(b"%PDF")


def test_a_run_that_wrote_only_pop_load_still_reports(run_dir, tmp_path):
    """`[outputs] tables` may leave tables out: their sections say so instead of failing."""
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("report"))
    (partial / "handshakes.parquet").unlink()
    (partial / "failovers.parquet").unlink()
    sections = sections_of(build_report(partial, tmp_path / "out").html.read_text())
    assert tuple(sections) == SECTIONS
    assert "No handshake was established" in sections["latency"]
    assert "No handshake was established" in sections["cost"]
    assert '<img class="plot"' in sections["timeline"]


def test_bad_target_is_refused(run_dir, tmp_path):
    with pytest.raises(ValueError, match="target"):
        build_report(run_dir, tmp_path, target_s=0)
