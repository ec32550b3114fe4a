"""CLI verbs on experiment files: every bad file exits 2 naming the field and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wansim.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

TOPOLOGY = '[topology]\nonly = ["FRA", "AMS", "LHR"]\n'
SITES = "[sites]\ncount = 5\n"
BASE = TOPOLOGY + SITES

# (case id, experiment text, text the error must contain: the field's dotted path)
BAD_FILES: list[tuple[str, str, str]] = [
    ("unknown-top-level-key", 'colour = "blue"\n' + BASE, "colour"),
    ("unknown-key-in-section", BASE + "[pop]\ncorez = 4\n", "pop.corez"),
    ("unknown-section", BASE + "[popp]\ncores = 4\n", "popp"),
    ("wrong-type-int", BASE + '[pop]\ncores = "many"\n', "pop.cores"),
    ("wrong-type-bool", BASE + '[ike]\nfragmentation = "yes please"\n', "ike.fragmentation"),
    ("negative-duration", BASE + '[run]\nduration = "-1h"\n', "run.duration"),
    ("unparseable-duration", BASE + '[ike]\nrekey_time = "4 hours"\n', "ike.rekey_time"),
    ("zero-resolution", BASE + '[run]\npop_load_resolution = "0s"\n', "run.pop_load_resolution"),
    ("unknown-pop-in-failure",
     BASE + '[[failures.scheduled]]\npop = "XYZ"\nat = "1m"\nduration = "1m"\n',
     "failures.scheduled[0].pop"),
    ("unknown-pop-in-only", '[topology]\nonly = ["FRA", "QQQ"]\n' + SITES, "topology.only[1]"),
    ("ike-proposal-typo",
     BASE + '[ike]\nproposals = ["aes256gcm16-prfsha384-x25519-ke1_mlkem786"]\n',
     "ike.proposals"),
    ("esp-proposal-typo", BASE + '[ike.child]\nesp_proposals = ["aes256gcm61"]\n',
     "ike.child.esp_proposals"),
    ("empty-grid", BASE + '[sweep.grid]\n"pop.cores" = []\n', "sweep.grid"),
    ("grid-unknown-path", BASE + '[sweep.grid]\n"pop.kores" = [1, 2]\n', "pop.kores"),
    ("grid-bad-value", BASE + '[sweep.grid]\n"pop.cores" = [2, 0]\n', 'sweep.grid."pop.cores"[1]'),
    ("zero-replications", BASE + "[sweep]\nreplications = 0\n", "sweep.replications"),
    ("sites-count-and-file", TOPOLOGY + '[sites]\ncount = 5\nfile = "sites.csv"\n', "sites"),
    ("sites-missing", TOPOLOGY, "sites"),
    ("unknown-strategy", BASE + '[failover]\nstrategies = ["teleport"]\n',
     "failover.strategies[0]"),
    ("duplicate-strategy", BASE + '[failover]\nstrategies = ["replicated", "replicated"]\n',
     "failover.strategies"),
    ("unknown-site-profile", BASE + '[ike]\nprofile = "juniper"\n', "ike.profile"),
    ("rand-time-above-rekey", BASE + '[ike.child]\nrekey_time = "10m"\nrand_time = "20m"\n',
     "ike.child"),
    ("warm-up-too-long", BASE + '[run]\nduration = "1h"\nwarm_up = "2h"\n', "run"),
    ("distribution-missing-sigma",
     BASE + '[anycast]\nconvergence = { kind = "lognormal", median = "3s" }\n',
     "anycast.convergence"),
    ("unknown-region",
     BASE + '[[failures.regional]]\nregion = "Atlantis"\nat = "1m"\nduration = "1m"\n',
     "failures.regional[0].region"),
    ("loss-out-of-range", BASE + "[sites.access]\nloss = 1.5\n", "sites.access.loss"),
    ("toml-syntax", BASE + "[run\nduration = 1\n", "line"),
    ("unknown-access-profile",
     TOPOLOGY + "[sites]\ncount = 5\naccess_mix = { carrier-pigeon = 1 }\n", "sites.access_mix"),
    ("missing-pop-file", '[topology]\npops = "no-such-pops.csv"\n' + SITES, "topology.pops"),
    ("fragment-size-too-small", BASE + "[ike]\nfragment_size = 100\n", "ike.fragment_size"),
    ("fraction-above-one", BASE + "[anycast]\nnon_nearest_fraction = 1.2\n",
     "anycast.non_nearest_fraction"),
    ("failure-zero-duration",
     BASE + '[[failures.scheduled]]\npop = "FRA"\nat = "1m"\nduration = "0s"\n',
     "failures.scheduled[0].duration"),
]


@pytest.mark.parametrize(("case", "text", "field"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_experiment_exits_2_naming_the_field_and_writes_nothing(
    tmp_path: Path, case: str, text: str, field: str
) -> None:
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 2


def test_at_least_twenty_distinct_bad_files() -> None:
    assert len({text for _, text, _ in BAD_FILES}) >= 20


def test_every_bundled_experiment_validates() -> None:
    names = sorted(p.stem for p in EXPERIMENTS.glob("*.toml"))
    assert {"quickstart", "pq_handshake_cost", "rekey_load", "pop_failover",
            "capacity_plan"} <= set(names)
    for name in names:
        result = CliRunner().invoke(main, ["validate", str(EXPERIMENTS / f"{name}.toml")])
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith("ok: ")


def test_list_shows_bundled_experiments_with_descriptions(monkeypatch) -> None:
    monkeypatch.chdir(EXPERIMENTS.parent)
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("pop_failover"))
    assert "FRA" in line


def test_validate_counts_sweep_runs_and_accepts_overrides() -> None:
    path = str(EXPERIMENTS / "capacity_plan.toml")
    result = CliRunner().invoke(main, ["validate", path, "--set", "sweep.replications=2"])
    assert result.exit_code == 0 and "sweep: 8 run(s)" in result.output
    result = CliRunner().invoke(main, ["validate", path, "--set", "pop.cores=0"])
    assert result.exit_code == 2 and "pop.cores" in result.output


def test_sweep_scheduler_needs_dask_and_report_needs_results(tmp_path: Path) -> None:
    path = str(EXPERIMENTS / "quickstart.toml")
    result = CliRunner().invoke(
        main, ["sweep", path, "--out", str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert result.exit_code == 2 and "--executor dask" in result.output
    assert not (tmp_path / "s").exists()
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "neither a wansim run" in result.output


def test_validate_keys_lists_every_setting_with_its_default() -> None:
    result = CliRunner().invoke(main, ["validate", "--keys"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.output.splitlines()}
    assert '"4h"' in rows["ike.rekey_time"] and "strongSwan 4h" in rows["ike.rekey_time"]
    assert "(required)" in rows["failures.scheduled[].pop"]
    assert {"sweep.replications", "pop.cores", "anycast.detection.silent"} <= set(rows)
    assert all(len(line.split(None, 2)) == 3 for line in result.output.splitlines())
