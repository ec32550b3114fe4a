"""Expand an experiment's `[sweep]` into runs: grid points × replications, with their seeds.

Seeds use common random numbers: replication r of every grid point gets the same seed,
derived from `run.seed` and r alone, so comparing two proposals (or core counts) compares
them on the same sites, catchments and failures, and the differences have far less noise
than independent runs would give. Replications differ from each other through r.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from wansim.experiment.config import ExperimentConfig
from wansim.experiment.loader import with_values
from wansim.experiment.store import run_id


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: where it sits in the grid, its seed and its resolved config."""

    index: int
    """Position in the plan (grid order, then replication)."""
    point: dict[str, Any]
    """Grid values of this run, by dotted path."""
    replication: int
    """0-based replication number."""
    seed: int
    """Seed passed to the simulator (also in config.run.seed)."""
    config: ExperimentConfig
    """The fully resolved configuration of this run."""
    run_id: str
    """Hash of the resolved config: the run's folder name."""


def replication_seed(base_seed: int, replication: int) -> int:
    """A 63-bit seed from (base seed, replication) via numpy's SeedSequence hashing."""
    state = np.random.SeedSequence(base_seed, spawn_key=(replication,)).generate_state(2)
    return int((int(state[0]) << 31 ^ int(state[1])) & (2**63 - 1))


def plan(config: ExperimentConfig) -> list[RunSpec]:
    """Every run of the sweep, in a stable order (grid keys as written, then replication)."""
    grid = config.sweep.grid
    paths = list(grid)
    specs: list[RunSpec] = []
    for values in itertools.product(*(grid[p] for p in paths)) if paths else [()]:
        point = dict(zip(paths, values, strict=True))
        base = with_values(config, point) if point else config
        for replication in range(config.sweep.replications):
            seed = replication_seed(base.run.seed, replication)
            resolved = with_values(base, {**point, "run.seed": seed})
            specs.append(
                RunSpec(len(specs), point, replication, seed, resolved, run_id(resolved))
            )
    return specs
