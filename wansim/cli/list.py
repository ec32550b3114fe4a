"""`wansim list`: the bundled experiments, with what each one asks."""

from __future__ import annotations

import shutil
import textwrap

import click

from wansim.experiment.console import debug_option, exit_codes


@click.command(name="list")
@debug_option
def list_(debug: bool) -> None:
    """List the bundled experiments (run one with `wansim run NAME`)."""
    with exit_codes(debug):
        from wansim.experiment.bundled import bundled

        found = bundled()
        if not found:
            click.echo("no bundled experiments found (looked for an experiments/ folder)")
            return
        width = max(len(name) for name, _, _ in found)
        columns = max(shutil.get_terminal_size((100, 24)).columns, width + 40)
        for name, description, _ in found:
            text = " ".join(description.split()) or "(no description)"
            lines = textwrap.wrap(text, columns - width - 2) or [""]
            click.echo(f"{name:<{width}}  {lines[0]}")
            for line in lines[1:]:
                click.echo(f"{'':<{width}}  {line}")
