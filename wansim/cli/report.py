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
              help="Where to write the report (default: FOLDER/report).")
@click.option("--target", default=None, metavar="DURATION",
              help="p99 handshake latency the recommended cores must meet, e.g. 200ms.")
@debug_option
def report(folder: Path, out: Path | None, target: str | None, debug: bool) -> None:
    """Write the report for results FOLDER (from `wansim run` or `wansim sweep`):
    report.html, report.pdf and capacity.csv."""
    with exit_codes(debug):
        from wansim.experiment.durations import parse_duration
        from wansim.experiment.results import load

        try:
            target_s = parse_duration(target) if target is not None else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--target") from None
        if target_s is not None and target_s <= 0:
            raise click.BadParameter("must be positive", param_hint="--target")
        load(folder)  # a clear exit 2 when FOLDER holds no results
        if importlib.util.find_spec("wansim.report") is None:
            click.echo(
                "error: the report module (wansim.report) is not installed yet; the results "
                f"in {folder} can be read with wansim.load()",
                err=True,
            )
            sys.exit(1)
        from wansim.report import build_report

        extra = {"target_s": target_s} if target_s is not None else {}
        written = build_report(folder, out, **extra)
        click.echo(f"wrote {written}")
