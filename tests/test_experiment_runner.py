"""The runner on the real simulator: store round trip, sweep seeds and CIs, SIGKILL resume,
Dask LocalCluster == local process pool.

Configs are tiny (3 POPs, 4 sites, 10 simulated minutes) so each run takes about a second.
Every worker process has its own random PYTHONHASHSEED, so equal results across processes
and executors also prove that nothing depends on hash order.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

import wansim
from wansim.experiment import parse_experiment
from wansim.experiment.aggregate import flatten, mean_ci
from wansim.experiment.runner import run_experiment, run_sweep
from wansim.experiment.store import is_complete, run_id
from wansim.experiment.sweep import plan, replication_seed

TINY = """
name = "tiny"
[topology]
only = ["FRA", "AMS", "LHR"]
[sites]
count = 4
region_weights = { Europe = 1 }
start_window = "20s"
[ike]
proposals = ["aes256gcm16-prfsha256-x25519-ke1_mlkem768"]
dpd_delay = "10s"
[ike.child]
rekey_time = "4m"
[[failures.scheduled]]
pop = "FRA"
at = "4m"
duration = "2m"
[failover]
strategies = ["replicated", "rehandshake"]
[run]
duration = "10m"
seed = 3
[sweep]
replications = 2
[sweep.grid]
"pop.cores" = [1, 2]
"""
REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from wansim.cli import main; main()"]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    """The uninterrupted reference sweep, on the local process pool."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    outcome = run_sweep(parse_experiment(TINY), out, workers=2)
    assert (outcome.total, outcome.ran, outcome.skipped, outcome.failed) == (4, 4, 0, [])
    return out


# ------------------------------------------------------------------------------ pure parts
def test_seeds_are_common_across_grid_points_and_differ_by_replication() -> None:
    specs = plan(parse_experiment(TINY))
    assert [(s.point["pop.cores"], s.replication) for s in specs] == [
        (1, 0), (1, 1), (2, 0), (2, 1)
    ]
    seeds = [s.seed for s in specs]
    assert seeds[0] == seeds[2] and seeds[1] == seeds[3] and seeds[0] != seeds[1]
    assert seeds[0] == replication_seed(3, 0) and 0 <= seeds[0] < 2**63
    assert all(s.config.run.seed == s.seed for s in specs)
    assert len({s.run_id for s in specs}) == 4
    assert [s.run_id for s in specs] == [s.run_id for s in plan(parse_experiment(TINY))]


def test_run_id_is_the_resolved_config_not_its_spelling() -> None:
    a = parse_experiment(TINY)
    b = parse_experiment(TINY.replace('duration = "10m"', "duration = 600"))
    c = parse_experiment(TINY.replace('duration = "10m"', 'duration = "11m"'))
    assert run_id(a) == run_id(b) != run_id(c)
    reworded = parse_experiment(TINY.replace('name = "tiny"', 'name = "t2"\ndescription = "x"'))
    assert run_id(reworded) == run_id(a)


def test_run_id_counts_input_files_by_content(tmp_path: Path) -> None:
    pops = (REPO / "topologies" / "europe5.csv").read_text()
    text = TINY.replace('[topology]', '[topology]\npops = "pops.csv"')
    ids = []
    for folder, content in (("a", pops), ("b", pops), ("c", pops.replace("51.47", "51.48"))):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pops.csv").write_text(content)
        ids.append(run_id(parse_experiment(text, base_dir=tmp_path / folder)))
    assert ids[0] == ids[1] != ids[2]


def test_mean_ci_is_the_student_t_interval() -> None:
    values = [1.0, 2.0, 4.0, 7.0]
    got = mean_ci(values)
    low, high = stats.t.interval(0.95, 3, loc=3.5, scale=stats.sem(values))
    assert got["n"] == 4 and got["mean"] == 3.5
    assert got["ci_low"] == pytest.approx(low) and got["ci_high"] == pytest.approx(high)
    one = mean_ci([5.0, math.nan])
    assert one["n"] == 1 and one["mean"] == 5.0 and math.isnan(one["ci_low"])


def test_flatten_keeps_numbers_drops_labels() -> None:
    flat = flatten({"seed": 4, "strategies": {"a": {"n": 2, "pop": "FRA", "p": {"x": 1.5}}}})
    assert flat == {"strategies.a.n": 2.0, "strategies.a.p.x": 1.5}


# ------------------------------------------------------------------------------ real runs
def test_run_folder_round_trips_through_wansim_load(tmp_path: Path) -> None:
    config = parse_experiment(TINY)
    direct = wansim.simulate(config, seed=config.run.seed)
    ticks: list[tuple[float, float]] = []
    folder, ran = run_experiment(config, tmp_path / "run", progress=lambda *t: ticks.append(t))
    assert ran and is_complete(folder)
    done = [d for d, _ in ticks]  # simulated seconds over both strategies, up to the end
    assert done == sorted(done) and ticks[-1] == (1200.0, 1200.0)
    loaded = wansim.load(folder)
    for table in ("handshakes", "pop_load", "failovers"):
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(direct, table))
    assert loaded.summary == json.loads(json.dumps(direct.summary))
    manifest = loaded.manifest
    assert manifest["run_id"] == run_id(config) and manifest["seed"] == 3
    assert manifest["config"]["ike"]["rekey_time"] == 14400.0
    assert manifest["versions"]["wansim"] and manifest["machine"]["cpu_count"]
    assert manifest["crypto_backend"]
    assert run_experiment(config, folder) == (folder, False)  # same run: nothing to do
    with pytest.raises(FileExistsError):
        run_experiment(parse_experiment(TINY, overrides=["run.seed=4"]), folder)


def test_run_with_workers_writes_the_one_process_run(tmp_path: Path) -> None:
    """`wansim run --workers 2` splits the run across processes: same tables, same run id
    (so the one-process command finds the run already complete)."""
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY.replace('only = ["FRA", "AMS", "LHR"]',
                                 'only = ["FRA", "AMS", "LHR", "CDG", "MAD"]').replace(
                                     "count = 4", "count = 12"))  # fmt: skip
    out = tmp_path / "run"
    done = subprocess.run([*CLI, "run", str(toml), "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    direct = wansim.simulate(parse_experiment(toml.read_text()))
    loaded = wansim.load(out)
    for table in ("handshakes", "pop_load", "failovers"):
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(direct, table))
    again = subprocess.run([*CLI, "run", str(toml), "--out", str(out)],
                           capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "already complete" in again.stdout


def test_sweep_aggregate_and_load(local_sweep: Path) -> None:
    sweep = wansim.load(local_sweep)
    assert list(sweep.runs["pop.cores"]) == [1, 1, 2, 2] and sweep.runs["complete"].all()
    agg = sweep.aggregate
    metric = "strategies.replicated.handshakes"
    rows = agg[agg["metric"] == metric].set_index("pop.cores")
    for cores, group in sweep.runs.groupby("pop.cores"):
        values = [sweep.run(r).summary["strategies"]["replicated"]["handshakes"]
                  for r in group["run_id"]]
        assert rows.loc[cores, "n"] == 2
        assert rows.loc[cores, "mean"] == pytest.approx(sum(values) / 2)
    hs = sweep.handshakes
    assert {"run_id", "pop.cores", "replication", "seed", "latency_s"} <= set(hs.columns)
    assert set(hs["run_id"]) == set(sweep.runs["run_id"])
    assert sweep.summary["runs_complete"] == 4


def test_dask_local_cluster_gives_the_same_sweep(local_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "dask"
    outcome = run_sweep(parse_experiment(TINY), out, executor="dask", workers=2)
    assert outcome.ran == 4 and not outcome.failed
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "aggregate.parquet"),
        pd.read_parquet(local_sweep / "aggregate.parquet"),
    )
    for rid in wansim.load(out).runs["run_id"]:
        a, b = wansim.load(out / "runs" / rid), wansim.load(local_sweep / "runs" / rid)
        pd.testing.assert_frame_equal(a.handshakes, b.handshakes)
        pd.testing.assert_frame_equal(a.failovers, b.failovers)


def test_sigkilled_sweep_resumes_without_rerunning(local_sweep: Path, tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY)
    out = tmp_path / "killed"
    command = [*CLI, "sweep", str(experiment), "--out", str(out),
               "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    runs = out / "runs"

    def finished_runs() -> list[Path]:  # renamed into place; not the hidden .tmp- folders
        if not runs.is_dir():
            return []
        return [p for p in runs.iterdir() if not p.name.startswith(".") and is_complete(p)]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not finished_runs():
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: (p / "manifest.json").stat().st_mtime_ns for p in finished_runs()}
    assert 1 <= len(finished) < 4
    partial = wansim.load(out)  # a killed sweep can be looked at: finished runs only
    assert set(partial.runs.loc[partial.runs["complete"], "run_id"]) == set(finished)
    assert 1 <= partial.aggregate["n"].max() <= len(finished)

    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"({4 - len(finished)} ran, {len(finished)} already complete)" in result.stdout
    for name, mtime in finished.items():  # the finished runs were not written again
        assert (runs / name / "manifest.json").stat().st_mtime_ns == mtime
    assert not [p for p in runs.iterdir() if p.name.startswith(".tmp-")]
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "aggregate.parquet"),
        pd.read_parquet(local_sweep / "aggregate.parquet"),
    )


def test_simulate_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    # 8 sites on one core: DPD timeouts re-establish several tunnels at the same instant
    experiment = tmp_path / "contended.toml"
    experiment.write_text(
        TINY.replace("count = 4", "count = 8").replace('rekey_time = "4m"', 'rekey_time = "5m"')
        .replace('at = "4m"\nduration = "2m"', 'at = "6m"\nduration = "3m"')
        .replace('duration = "10m"', 'duration = "15m"').replace("seed = 3", "seed = 1")
    )
    tables = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"h{hash_seed}"
        subprocess.run(
            [*CLI, "run", str(experiment), "--out", str(out), "--set", "pop.cores=1"],
            cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hash_seed}, check=True,
            capture_output=True, timeout=120,
        )
        tables.append(wansim.load(out).handshakes)
    pd.testing.assert_frame_equal(*tables)
