"""`wansim run FILE`: one simulation, written to a results folder."""

from __future__ import annotations

from pathlib import Path

import click

from wansim.experiment.console import debug_option, exit_codes, progress_bar


@click.command()
@click.argument("file")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Results folder (default: results/<experiment name>).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Override run.seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a setting, e.g. --set pop.cores=8 (repeatable).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Processes sharing the run: sites that never reach a common POP are "
                   "simulated apart; the results are identical.")
@debug_option
def run(file: str, out: Path | None, seed: int | None, overrides: tuple[str, ...],
        workers: int, debug: bool) -> None:
    """Simulate experiment FILE (a path or a bundled name) once; a [sweep] table is ignored.

    The folder gets handshakes/pop_load/failovers as parquet, summary.json and
    manifest.json; running the same config into the same folder again does nothing.
    """
    with exit_codes(debug):
        from wansim.experiment import load_experiment
        from wansim.experiment.bundled import resolve
        from wansim.experiment.runner import run_experiment

        settings = list(overrides) + ([f"run.seed={seed}"] if seed is not None else [])
        config = load_experiment(resolve(file), settings)
        out = out if out is not None else Path("results") / config.name
        if config.sweep.grid or config.sweep.replications > 1:
            click.echo("note: [sweep] is ignored by `run` (one run of the base settings); "
                       "use `wansim sweep` for the grid", err=True)
        with progress_bar(f"simulating {config.name}", counted=False) as update:
            folder, ran = run_experiment(config, out, progress=update, workers=workers)
        if not ran:
            click.echo(f"{folder}: this run is already complete (same config and seed)")
            return
        click.echo(f"wrote {folder}")
        _print_summary(folder)


def _print_summary(folder: Path) -> None:
    import json

    summary = json.loads((folder / "summary.json").read_text())
    click.echo(f"  {summary.get('sites', '?')} sites, {summary.get('pops', '?')} POPs, "
               f"{summary.get('failures', 0)} failure(s)")
    for strategy, entry in (summary.get("strategies") or {}).items():
        if not isinstance(entry, dict):
            continue
        latency = entry.get("latency_s") or {}
        total = (entry.get("failover_s") or {}).get("total_s") or {}
        parts = [f"{entry.get('handshakes', 0)} handshakes"]
        if latency.get("p50") is not None:
            parts.append(f"latency p50 {latency['p50'] * 1e3:.1f} ms, "
                         f"p99 {latency['p99'] * 1e3:.1f} ms")
        if entry.get("failovers"):
            parts.append(f"{entry['failovers']} failovers")
            if total.get("p50") is not None:
                parts.append(f"failover p50 {total['p50']:.1f} s, p99 {total['p99']:.1f} s")
            by_outcome = entry.get("failover_total_s_by_outcome") or {}
            counts = entry.get("failover_outcomes") or {}
            if len(by_outcome) > 1:  # e.g. dual-tunnel: switched vs no surviving tunnel
                parts.append(", ".join(
                    f"{counts.get(outcome, '?')} {outcome} p50 {stats['p50']:.1f} s"
                    for outcome, stats in by_outcome.items() if stats.get("p50") is not None
                ))  # fmt: skip
        click.echo(f"  {strategy}: " + "; ".join(parts))
