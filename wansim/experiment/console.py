"""What the experiment verbs share on the terminal: exit codes and the progress bar.

Exit codes are the project's: 0 ok, 2 bad input (the message names the file and field),
1 internal error (one line; `--debug` shows the traceback). The progress bar is rich's,
with ETA, and stays silent when stdout is not a terminal (CI logs, pipes, `make`).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from wansim.experiment.errors import ExperimentError, SchedulerUnreachable

#: Exceptions that mean the user's input is wrong, not wansim.
BAD_INPUT: tuple[type[BaseException], ...] = (
    ExperimentError,
    SchedulerUnreachable,
    FileExistsError,
    FileNotFoundError,
    NotADirectoryError,
)


@contextmanager
def exit_codes(debug: bool) -> Iterator[None]:
    """Turn exceptions into one-line messages and exit codes 2 (bad input) or 1 (bug)."""
    try:
        yield
    except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
        raise
    except BrokenPipeError:
        # the reader (`| head`) went away: stop quietly, as the Python docs recommend
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if _bad_input(exc):
            click.echo(f"error: {_one_line(exc)}", err=True)
            sys.exit(2)
        hint = "" if debug else " (run with --debug for the traceback)"
        click.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)}{hint}", err=True)
        sys.exit(1)


def _bad_input(exc: BaseException) -> bool:
    """Bad input: BAD_INPUT, an unusable cost profile or topology file (checked only if their
    modules were imported, so `wansim list` loads neither the simulator nor the topology)."""
    if isinstance(exc, BAD_INPUT):
        return True
    for module, name in (("wansim.sim.costs", "CostProfileError"),
                         ("wansim.topology.errors", "TopologyError")):  # fmt: skip
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


debug_option = click.option(
    "--debug", is_flag=True, help="Show the full traceback on errors."
)


@contextmanager
def progress_bar(description: str, counted: bool = True) -> Iterator[object]:
    """A rich progress bar with ETA; yields update(done, total); silent when stdout is not a
    terminal. `counted` shows done/total (runs); otherwise a percentage (simulated time)."""
    if not sys.stdout.isatty():
        yield lambda done, total=None: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    columns += [MofNCompleteColumn() if counted else TaskProgressColumn(),
                TimeRemainingColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=None)

        def update(done: float, total: float | None = None) -> None:
            progress.update(task, completed=done, total=total)

        yield update
