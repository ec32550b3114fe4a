"""Across replications: mean and 95 % confidence interval of every number in the run summaries.

Each run's `summary` (a nested dict from :func:`wansim.simulate`) is flattened to dotted
metric names (`replicated.latency_s.p99`); for every grid point and metric the replications
give n values, and the interval is the Student-t one, mean ± t(0.975, n−1)·s/√n. With one
replication the interval is undefined (NaN): one sample says nothing about its spread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from wansim.experiment.store import SUMMARY, runs_table

CONFIDENCE = 0.95
NOT_METRICS = frozenset({"seed"})
"""Summary keys that label a run rather than measure it."""
AGGREGATE_COLUMNS = ("metric", "n", "mean", "std", "ci_low", "ci_high", "ci_half_width")


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested summary as {dotted.name: value}; strings and labels
    (the seed) are skipped."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key in NOT_METRICS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, int | float) and value is not None:
            out[name] = float(value)
    return out


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """n, mean, sample std and the Student-t confidence interval of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    n = int(v.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "ci_half_width": math.nan}
    mean = float(v.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "ci_half_width": math.nan}
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
            "ci_half_width": half}


def aggregate(runs: pd.DataFrame, summaries: Mapping[str, Mapping[str, Any]],
              point_columns: list[str]) -> pd.DataFrame:
    """One row per (grid point, metric) with n, mean, std and the 95 % CI.

    `runs` has a `run_id` column and one column per grid path; `summaries` maps run ids to
    their run summaries. Rows are ordered by grid point (plan order) then metric name, so
    the same runs give the same table whatever order they finished in.
    """
    rows: list[dict[str, Any]] = []
    group_keys = point_columns or None
    groups = runs.groupby(group_keys, sort=False, dropna=False) if group_keys else [((), runs)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        flat = [flatten(summaries[r]) for r in group["run_id"] if r in summaries]
        metrics = sorted(set().union(*flat)) if flat else []
        for metric in metrics:
            row = dict(zip(point_columns, key, strict=True))
            row["metric"] = metric
            row.update(mean_ci(f.get(metric, math.nan) for f in flat))
            rows.append(row)
    columns = [*point_columns, *AGGREGATE_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def aggregate_folder(runs_dir: Path, planned: list[dict[str, Any]], grid_paths: list[str]
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs table, aggregate) of the finished runs among `planned` (sweep.json "runs")."""
    runs = runs_table(planned, runs_dir)
    finished = runs[runs["complete"]] if len(runs) else runs
    summaries = {
        rid: json.loads((runs_dir / rid / SUMMARY).read_text())
        for rid in finished["run_id"].unique()
    } if len(finished) else {}
    return runs, aggregate(finished, summaries, grid_paths)
