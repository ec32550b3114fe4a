"""`wansim sweep FILE --out DIR`: every grid point × replication, resumable, then aggregated."""

from __future__ import annotations

from pathlib import Path

import click

from wansim.experiment.console import debug_option, exit_codes, progress_bar


@click.command()
@click.argument("file")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Sweep folder; running again into it skips finished runs.")
@click.option("--workers", type=click.IntRange(1, 4096), default=None,
              help="Parallel runs (default: one per CPU).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="local process pool, or Dask distributed.")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Dask scheduler (tcp://host:8786); without it a LocalCluster is started. "
                   "--out must be on a file system every worker shares.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a setting, e.g. --set sweep.replications=5 (repeatable).")
@debug_option
def sweep(file: str, out: Path, workers: int | None, executor: str, scheduler: str | None,
          overrides: tuple[str, ...], debug: bool) -> None:
    """Run the [sweep] of experiment FILE: grid × replications, mean and 95 % CI per point."""
    with exit_codes(debug):
        if scheduler is not None and executor != "dask":
            raise click.UsageError("--scheduler needs --executor dask")
        from wansim.experiment import load_experiment
        from wansim.experiment.bundled import resolve
        from wansim.experiment.runner import run_sweep

        config = load_experiment(resolve(file), overrides)
        with progress_bar(f"sweep {config.name}") as update:
            outcome = run_sweep(config, out, executor=executor, workers=workers,  # type: ignore[arg-type]
                                scheduler=scheduler, progress=update)
        click.echo(f"wrote {out}: {outcome.total} runs ({outcome.ran} ran, "
                   f"{outcome.skipped} already complete)")
