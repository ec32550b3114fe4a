"""Run experiments: one run, or a whole sweep on local processes or a Dask cluster, resumably.

A sweep folder looks like this::

    OUT/sweep.json          the plan: grid, replications, every run's id, point and seed
    OUT/runs/<run_id>/      one finished run each (see :mod:`wansim.experiment.store`)
    OUT/aggregate.parquet   mean and 95 % CI per grid point and metric
    OUT/summary.json        the same aggregate, plus counts, as JSON

Workers write their own run folder the moment the run ends (write, then atomic rename)
and the parent only aggregates, so killing the sweep — even with SIGKILL — loses at most
the runs in flight; starting it again skips every finished run. Every run is a pure
function of its resolved config (seed included), so the executor, the worker count and the
finishing order cannot change any result: the aggregate is built in plan order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from wansim.experiment.aggregate import aggregate_folder
from wansim.experiment.config import ExperimentConfig
from wansim.experiment.errors import SchedulerUnreachable
from wansim.experiment.store import (
    SUMMARY,
    is_complete,
    jsonable,
    read_run,
    remove_stale,
    run_id,
    temporary_name,
    write_json_atomic,
    write_run,
)
from wansim.experiment.sweep import RunSpec, plan

if TYPE_CHECKING:
    from wansim.sim.results import Results

SWEEP = "sweep.json"
RUNS = "runs"
AGGREGATE = "aggregate.parquet"

Executor = Literal["local", "dask"]
Progress = Callable[[float, float], None]
"""progress(done, total): runs of a sweep, or simulated seconds of one run."""


class RunFailed(RuntimeError):
    """One or more runs raised; the others were written and will be skipped on resume."""


@dataclass(frozen=True)
class RunOutcome:
    """What a worker reports back: small, so it travels cheaply from a Dask worker."""

    run_id: str
    status: Literal["ran", "skipped", "failed"]
    wall_s: float = 0.0
    error: str | None = None


@dataclass
class SweepOutcome:
    """The result of :func:`run_sweep`: the folder and how many runs did what."""

    out: Path
    total: int
    ran: int = 0
    skipped: int = 0
    failed: list[RunOutcome] = field(default_factory=list)
    aggregate: pd.DataFrame | None = None


# ----------------------------------------------------------------------------- one run
def simulate_config(
    config: ExperimentConfig, progress: Progress | None = None, workers: int = 1
) -> Results:
    """Run the simulator on one resolved config (imported here: workers import lazily).

    `progress(done, total)` counts simulated seconds over all failover strategies;
    `workers` processes share the run (identical results, see `wansim.simulate`).
    """
    from wansim import simulate

    if progress is None:
        return simulate(config, seed=config.run.seed, workers=workers)
    reached: dict[str, float] = {}
    total = config.run.duration * len(config.failover.strategies)

    def advance(strategy: str, now: float, duration: float) -> None:
        reached[strategy] = now
        progress(sum(reached.values()), total)

    return simulate(config, seed=config.run.seed, progress=advance, workers=workers)


def run_experiment(config: ExperimentConfig, out: str | Path,
                   progress: Progress | None = None, workers: int = 1) -> tuple[Path, bool]:
    """Simulate `config` and write it to `out`; (folder, False) if it was already there.

    A folder holding a different finished run is refused (FileExistsError), never mixed.
    """
    out = Path(out)
    if is_complete(out):
        existing = json.loads((out / "manifest.json").read_text()).get("run_id")
        if existing == run_id(config):
            return out, False
        raise FileExistsError(
            f"{out} already holds a different run ({existing}); choose another --out"
        )
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a wansim run; choose another --out")
    if out.exists():
        out.rmdir()
    remove_stale(out.parent)
    results = simulate_config(config, progress, workers)
    write_run(out, results, config)
    return out, True


def execute_run(config_json: str, folder: str, context: dict[str, Any] | None = None
                ) -> RunOutcome:
    """Worker entry point: run one resolved config into `folder` unless already done.

    `context` (the sweep's name, grid point and replication) goes into the manifest.

    Takes JSON, not the model, so any executor (process pool, Dask worker on another
    machine) can ship it; returns a small RunOutcome instead of the tables.
    """
    config = ExperimentConfig.model_validate_json(config_json)
    path = Path(folder)
    rid = path.name
    if is_complete(path):
        return RunOutcome(rid, "skipped")
    started = time.perf_counter()
    try:
        results = simulate_config(config)
        wall_s = time.perf_counter() - started
        wrote = write_run(path, results, config, {"sweep": context} if context else None)
    except Exception as exc:  # reported to the parent; other runs continue
        return RunOutcome(rid, "failed", time.perf_counter() - started,
                          f"{type(exc).__name__}: {exc}")
    return RunOutcome(rid, "ran" if wrote else "skipped", wall_s)


# ----------------------------------------------------------------------------- sweeps
def run_sweep(
    config: ExperimentConfig,
    out: str | Path,
    *,
    executor: Executor = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> SweepOutcome:
    """Run every grid point × replication into `out`, skipping finished runs; aggregate."""
    out = Path(out)
    specs = plan(config)
    unique = {s.run_id: s for s in specs}
    runs_dir = out / RUNS
    runs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(runs_dir)
    write_json_atomic(out / SWEEP, _plan_document(config, specs))

    outcome = SweepOutcome(out, total=len(unique))
    todo = [s for s in unique.values() if not is_complete(runs_dir / s.run_id)]
    outcome.skipped = len(unique) - len(todo)
    done = outcome.skipped
    if progress:
        progress(done, outcome.total)
    jobs = [
        (s.config.model_dump_json(), str(runs_dir / s.run_id),
         {"experiment": config.name, "point": s.point, "replication": s.replication})
        for s in todo
    ]
    run_all = _dask if executor == "dask" else _local
    for result in run_all(jobs, workers, scheduler):
        done += 1
        if result.status == "ran":
            outcome.ran += 1
        elif result.status == "skipped":
            outcome.skipped += 1
        else:
            outcome.failed.append(result)
        if progress:
            progress(done, outcome.total)
    outcome.aggregate = write_aggregate(out, config, specs)
    if outcome.failed:
        first = outcome.failed[0]
        raise RunFailed(
            f"{len(outcome.failed)} of {outcome.total} runs failed (first: run {first.run_id}: "
            f"{first.error}); finished runs are kept, run the sweep again to retry"
        )
    return outcome


Job = tuple[str, str, dict[str, Any]]


def _local(jobs: list[Job], workers: int | None, _: str | None
           ) -> Iterator[RunOutcome]:
    """A process pool (spawned workers: no inherited threads or locks)."""
    if not jobs:
        return
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        for job in jobs:
            yield execute_run(*job)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(execute_run, *job) for job in jobs}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()


def _dask(jobs: list[Job], workers: int | None, scheduler: str | None
          ) -> Iterator[RunOutcome]:
    """Dask distributed: a LocalCluster, or the cluster at `scheduler` (shared `out` needed)."""
    from distributed import Client, LocalCluster, as_completed

    if not jobs:
        return
    cluster = None
    if scheduler is None:
        n = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {scheduler}: {exc}"
        ) from exc
    try:
        futures = [
            client.submit(execute_run, cfg, folder, context,
                          key=f"wansim-run-{Path(folder).name}", pure=False)
            for cfg, folder, context in jobs
        ]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ----------------------------------------------------------------------------- aggregate
def write_aggregate(out: Path, config: ExperimentConfig, specs: list[RunSpec]) -> pd.DataFrame:
    """Aggregate the finished runs in plan order; write aggregate.parquet and summary.json."""
    runs, table = aggregate_folder(out / RUNS, _plan_document(config, specs)["runs"],
                                   list(config.sweep.grid))
    tmp = out / temporary_name(AGGREGATE)
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / AGGREGATE)
    write_json_atomic(out / SUMMARY, {
        "experiment": config.name,
        "runs_planned": int(runs["run_id"].nunique()),
        "runs_complete": int(runs.loc[runs["complete"], "run_id"].nunique()),
        "replications": config.sweep.replications,
        "grid": config.sweep.grid,
        "confidence": 0.95,
        "aggregate": table.to_dict(orient="records"),
    })
    return table


def _plan_document(config: ExperimentConfig, specs: list[RunSpec]) -> dict[str, Any]:
    return jsonable({
        "experiment": config.name,
        "description": config.description,
        "grid": config.sweep.grid,
        "replications": config.sweep.replications,
        "base_config": config.model_dump(mode="json"),
        "runs": [
            {"run_id": s.run_id, "point": s.point, "replication": s.replication, "seed": s.seed}
            for s in specs
        ],
    })



def read_sweep_plan(out: Path) -> dict[str, Any]:
    return json.loads((out / SWEEP).read_text())


__all__ = [
    "RunFailed",
    "RunOutcome",
    "SweepOutcome",
    "execute_run",
    "read_run",
    "run_experiment",
    "run_sweep",
    "write_aggregate",
]
