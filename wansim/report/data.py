"""A run folder or a sweep folder, read once into the shape every report section uses.

Whatever was loaded, the report sees the same three tables, each with a ``run_id`` and a
``point`` column (the sweep's grid values as one readable label; empty for a single run),
plus each run's manifest and summary. Loading itself is :func:`wansim.load`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from wansim.experiment.results import SweepResults, load
from wansim.sim.metrics import FAILOVER_COLUMNS, HANDSHAKE_COLUMNS, POP_LOAD_COLUMNS
from wansim.sim.results import Results

TABLES = ("handshakes", "pop_load", "failovers")
COLUMNS = {
    "handshakes": HANDSHAKE_COLUMNS,
    "pop_load": POP_LOAD_COLUMNS,
    "failovers": FAILOVER_COLUMNS,
}


def _table(frame: pd.DataFrame, name: str, **labels: object) -> pd.DataFrame:
    """`frame` with the run labels, and with every documented column even when the run did
    not write that table (`[outputs] tables`), so each section can test for rows only."""
    missing = [c for c in COLUMNS[name] if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: pd.Series(dtype=object) for c in missing})
    return frame.assign(**labels)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    point: str
    manifest: dict[str, Any]
    summary: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, for one run (``kind == "run"``) or a sweep."""

    path: Path
    kind: str
    name: str
    description: str
    handshakes: pd.DataFrame
    pop_load: pd.DataFrame
    failovers: pd.DataFrame
    runs: tuple[RunInfo, ...]
    grid: tuple[str, ...] = ()
    aggregate: pd.DataFrame | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> RunInfo:
        return self.runs[0]


def point_label(values: dict[str, Any]) -> str:
    """`proposals=x25519+mlkem768, cores=4`: grid values by their last key, proposal
    lists by their key exchanges."""
    parts = []
    for key, value in values.items():
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(value, list):
            if key.endswith("proposals"):  # the key exchanges say what differs
                from wansim.report.plots import short_proposal

                value = [short_proposal(v) for v in value]
            value = " | ".join(map(str, value))
        parts.append(f"{key.split('.')[-1]}={value}")
    return ", ".join(parts)


def read_report_data(source: str | Path | Results) -> ReportData:
    """Read a run or sweep folder (raises FileNotFoundError as :func:`wansim.load` does),
    or wrap the in-memory :class:`~wansim.sim.results.Results` of :func:`wansim.simulate`."""
    if isinstance(source, Results):
        return _from_run(Path("."), source)
    path = Path(source)
    loaded = load(path)
    if isinstance(loaded, SweepResults):
        return _from_sweep(path, loaded)
    return _from_run(path, loaded)


def _from_run(path: Path, results: Results) -> ReportData:
    run_id = str(results.manifest.get("run_id", path.name or "run"))
    tables = {name: _table(getattr(results, name), name, run_id=run_id, point="")
              for name in TABLES}
    config = results.manifest.get("config", {})
    return ReportData(
        path=path,
        kind="run",
        name=str(config.get("name", path.name)),
        description=str(config.get("description", "")),
        runs=(RunInfo(run_id, "", results.manifest, results.summary),),
        **tables,
    )


def _from_sweep(path: Path, sweep: SweepResults) -> ReportData:
    runs_frame = sweep.runs[sweep.runs["complete"]]
    if runs_frame.empty:
        raise FileNotFoundError(f"{path}: the sweep has no finished run yet")
    grid = tuple(
        c for c in runs_frame.columns if c not in ("run_id", "replication", "seed", "complete")
    )
    labels = {
        row["run_id"]: point_label({c: row[c] for c in grid}) for _, row in runs_frame.iterrows()
    }
    runs = []
    for run_id, label in labels.items():
        result = sweep.run(run_id)
        runs.append(RunInfo(run_id, label, result.manifest, result.summary))
    tables = {}
    for name in TABLES:
        frame = getattr(sweep, name)
        if "run_id" not in frame.columns:
            frame = frame.assign(run_id=pd.Series(dtype=object))
        tables[name] = _table(frame, name, point=frame["run_id"].map(labels))
    return ReportData(
        path=path,
        kind="sweep",
        name=str(sweep.plan.get("experiment", path.name)),
        description=str(runs[0].config.get("description", "")),
        runs=tuple(runs),
        grid=grid,
        aggregate=sweep.aggregate,
        plan=sweep.plan,
        **tables,
    )
