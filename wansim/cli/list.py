"""`wansim list`: the bundled experiments, with what each one asks."""

from __future__ import annotations

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
        for name, description, _ in found:
            first = description.splitlines()[0] if description else ""
            click.echo(f"{name:<{width}}  {first}")
