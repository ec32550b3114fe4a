"""`wansim validate FILE`: check an experiment and say what it would run; writes nothing."""

from __future__ import annotations

import click

from wansim.experiment.console import debug_option, exit_codes


@click.command()
@click.argument("file", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a setting, e.g. --set pop.cores=8 (repeatable).")
@click.option("--keys", is_flag=True,
              help="List every setting an experiment file accepts, with default and meaning.")
@debug_option
def validate(file: str | None, overrides: tuple[str, ...], keys: bool, debug: bool) -> None:
    """Check experiment FILE (a path or a bundled name) and summarise it.

    Every problem is listed with its dotted path and TOML line; exit code 2 if any.
    """
    if keys:
        _print_keys()
        return
    if file is None:
        raise click.UsageError("give an experiment FILE (or --keys)")
    with exit_codes(debug):
        from wansim.experiment import catalogue, load_experiment
        from wansim.experiment.bundled import resolve
        from wansim.experiment.durations import format_duration
        from wansim.experiment.sweep import plan

        path = resolve(file)
        config = load_experiment(path, overrides)
        if config.pop.cost_profile != "default":
            from wansim.sim.costs import CostTable

            CostTable.load(config.pop.cost_profile)  # unreadable or malformed: exit 2 here
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


def _print_keys() -> None:
    from wansim.experiment.schema import settings

    rows = list(settings())
    key_width = max(len(key) for key, _, _ in rows)
    default_width = min(max(len(default) for _, default, _ in rows), 24)
    for key, default, description in rows:
        shown = default if len(default) <= default_width else default[: default_width - 1] + "…"
        click.echo(f"{key:<{key_width}}  {shown:<{default_width}}  {description}")
