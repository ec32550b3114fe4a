"""`wansim calibrate`: measure this machine's crypto operations and write a cost profile."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["auto", "pyca", "liboqs"]),
    default="auto",
    show_default=True,
    help="Crypto backend to measure (the one your experiments use).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("costs.json"),
    show_default=True,
    help="Profile file to write (JSON); give it to an experiment as its cost profile.",
)
@click.option("--name", help="Label for the profile, named in every result (default: host).")
@click.option(
    "--method",
    "methods",
    multiple=True,
    help="Key-exchange method token to measure (repeatable; default: all the backend runs).",
)
@click.option(
    "--batches", type=click.IntRange(3, 1000), default=15, show_default=True,
    help="Timed batches per operation; the median is kept.",
)  # fmt: skip
def calibrate(
    backend: str, output: Path, name: str | None, methods: tuple[str, ...], batches: int
) -> None:
    """Time the real key-exchange operations and write a CPU cost profile.

    Each (method, operation) pair — initiate / respond / finish of key exchanges, sign /
    verify of signature schemes — is timed with the thread's CPU clock; per-exchange
    processing costs are the strongSwan-calibrated defaults.
    """
    from rich.console import Console
    from rich.table import Table

    from wansim.crypto import BackendUnavailable, UnknownMethod
    from wansim.sim.calibration import calibrate as measure
    from wansim.sim.costs import CostTable

    try:  # the API refuses a backend that runs no key exchange here (BackendUnavailable)
        profile = measure(backend=backend, name=name, tokens=methods or None, batches=batches)
    except (BackendUnavailable, UnknownMethod) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    table = CostTable(profile)
    try:
        output.write_text(table.to_json())
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
        sys.exit(2)
    view = Table(title=f"cost profile {profile.name!r} ({profile.backend})")
    view.add_column("method")
    view.add_column("operation")
    view.add_column("CPU µs", justify="right")
    for token, ops in profile.operations_s.items():
        for operation, seconds in ops.items():
            view.add_row(token, operation, f"{seconds * 1e6:.1f}")
    console = Console()
    console.print(view)
    exchange_ms = next(iter(profile.exchange_s.values())) * 1e3
    console.print(f"per-exchange processing: {exchange_ms:.4f} ms (strongSwan-calibrated)")
    console.print(f"wrote {output}")
