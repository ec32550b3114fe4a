"""`wansim report DIR`: the capacity-planning report of a run or sweep folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from wansim.experiment.console import debug_option, exit_codes


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the report (default: inside FOLDER).")
@debug_option
def report(folder: Path, out: Path | None, debug: bool) -> None:
    """Write the report for results FOLDER (from `wansim run` or `wansim sweep`)."""
    with exit_codes(debug):
        from wansim.experiment.results import load

        load(folder)  # a clear exit 2 when FOLDER holds no results
        if importlib.util.find_spec("wansim.report") is None:
            click.echo(
                "error: the report module (wansim.report) is not installed yet; the results "
                f"in {folder} can be read with wansim.load()",
                err=True,
            )
            sys.exit(1)
        from wansim.report import render

        written = render(folder, out)
        click.echo(f"wrote {written}")
