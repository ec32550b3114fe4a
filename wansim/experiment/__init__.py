"""Experiments: the TOML schema, loading and validation, sweeps, executors and result store.

    from wansim.experiment import load_experiment
    config = load_experiment("experiments/quickstart.toml", overrides=["run.seed=7"])
"""

from __future__ import annotations

from wansim.experiment.config import ExperimentConfig
from wansim.experiment.durations import parse_duration
from wansim.experiment.errors import ExperimentError, Problem
from wansim.experiment.loader import load_experiment, parse_experiment, with_values

__all__ = [
    "ExperimentConfig",
    "ExperimentError",
    "Problem",
    "load_experiment",
    "parse_duration",
    "parse_experiment",
    "with_values",
]
