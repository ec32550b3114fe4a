"""`wansim.load(DIR)`: a run folder as Results, a sweep folder as SweepResults (pandas).

    res = wansim.load("results/quickstart")        # one run
    res.handshakes.groupby("proposal").latency_s.describe()

    sweep = wansim.load("results/pq-sweep")        # a sweep
    sweep.aggregate.query("metric == 'replicated.latency_s.p99'")
    sweep.handshakes   # every run's rows, with run_id, grid columns and replication
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from wansim.experiment.aggregate import aggregate_folder
from wansim.experiment.store import is_complete, read_run, runs_table

if TYPE_CHECKING:
    from wansim.sim.results import Results


@dataclass(frozen=True, eq=False)
class SweepResults:
    """A sweep folder read back: the plan, per-run tables stacked, and the aggregate."""

    path: Path
    plan: dict[str, Any]

    @cached_property
    def runs(self) -> pd.DataFrame:
        """One row per planned run: run_id, grid values, replication, seed, complete."""
        return runs_table(self.plan["runs"], self.path / "runs")

    @cached_property
    def aggregate(self) -> pd.DataFrame:
        """Mean, std and 95 % CI per grid point and summary metric over the runs finished so
        far (so a sweep still running, or killed, can be looked at)."""
        return aggregate_folder(self.path / "runs", self.plan["runs"], list(self.plan["grid"]))[1]

    @cached_property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.path / "summary.json").read_text())

    def run(self, run_id: str) -> Results:
        """One run of the sweep, as Results."""
        return read_run(self.path / "runs" / run_id)

    @cached_property
    def handshakes(self) -> pd.DataFrame:
        return self._stacked("handshakes")

    @cached_property
    def pop_load(self) -> pd.DataFrame:
        return self._stacked("pop_load")

    @cached_property
    def failovers(self) -> pd.DataFrame:
        return self._stacked("failovers")

    def _stacked(self, table: str) -> pd.DataFrame:
        """Every finished run's table with the run's id, grid values and replication."""
        frames = []
        runs = self.runs[self.runs["complete"]].drop(columns=["complete"])
        for _, run in runs.iterrows():
            path = self.path / "runs" / run["run_id"] / f"{table}.parquet"
            if not path.is_file():
                continue
            frame = pd.read_parquet(path)
            for column, value in reversed(list(run.items())):
                frame.insert(0, column, value)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __repr__(self) -> str:
        done = int(self.runs["complete"].sum())
        return f"<SweepResults {self.plan['experiment']!r}: {done}/{len(self.runs)} runs>"


def load(path: str | Path) -> Results | SweepResults:
    """Read a run folder (`wansim run --out`) or a sweep folder (`wansim sweep --out`)."""
    path = Path(path)
    if is_complete(path):
        return read_run(path)
    if (path / "sweep.json").is_file():
        return SweepResults(path, json.loads((path / "sweep.json").read_text()))
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such results folder (from `wansim run` or `sweep`)")
    raise FileNotFoundError(
        f"{path} is neither a wansim run (manifest.json) nor a sweep (sweep.json)"
    )

