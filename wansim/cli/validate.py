"""`wansim validate FILE`: check an experiment and say what it would run; writes nothing."""

from __future__ import annotations

import click

from wansim.experiment.console import debug_option, exit_codes


@click.command()
@click.argument("file")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a setting, e.g. --set pop.cores=8 (repeatable).")
@debug_option
def validate(file: str, overrides: tuple[str, ...], debug: bool) -> None:
    """Check experiment FILE (a path or a bundled name) and summarise it.

    Every problem is listed with its dotted path and TOML line; exit code 2 if any.
    """
    with exit_codes(debug):
        from wansim.experiment import catalogue, load_experiment
        from wansim.experiment.bundled import resolve
        from wansim.experiment.durations import format_duration
        from wansim.experiment.sweep import plan

        path = resolve(file)
        config = load_experiment(path, overrides)
        pops = catalogue.pops(config.topology)
        kept = catalogue.kept(pops, config.topology) if isinstance(pops, dict) else {}
        sites = f"{config.sites.count} generated" if config.sites.count else config.sites.file
        runs = len({spec.run_id for spec in plan(config)})
        click.echo(f"ok: {path} — experiment {config.name!r}")
        click.echo(f"  POPs: {len(kept)} from {config.topology.pops}; sites: {sites}")
        click.echo(f"  IKE: {', '.join(config.ike.proposals)} (profile {config.ike.profile})")
        click.echo(f"  ESP: {', '.join(config.ike.child.esp_proposals)}")
        click.echo(f"  failover: {', '.join(config.failover.strategies)}; "
                   f"{len(config.failures.scheduled)} scheduled, "
                   f"{len(config.failures.regional)} regional failures"
                   + (", random failures" if config.failures.random else ""))
        click.echo(f"  run: {format_duration(config.run.duration)} simulated, "
                   f"seed {config.run.seed}; sweep: {runs} run(s)")
