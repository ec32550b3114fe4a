"""The `wansim` command line: a thin layer over the Python API.

Each verb lives in its own module under `wansim.cli` and is imported only when it
is invoked, so `wansim doctor` stays fast and a broken optional feature cannot
break the other verbs. Exit codes: 0 ok, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import importlib

import click

# verb -> "module:attribute" of a click.Command; add one line per verb.
VERBS: dict[str, str] = {
    "handshake": "wansim.cli.handshake:handshake",
    "doctor": "wansim.cli.doctor:doctor",
    "calibrate": "wansim.cli.calibrate:calibrate",
    "interop": "wansim.cli.interop:interop",
    "validate": "wansim.cli.validate:validate",
    "list": "wansim.cli.list:list_",
    "run": "wansim.cli.run:run",
    "sweep": "wansim.cli.sweep:sweep",
    "report": "wansim.cli.report:report",
}


class LazyGroup(click.Group):
    """A click group that imports a verb's module only when the verb runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = VERBS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="wansim")
def main() -> None:
    """Simulate an anycast IPsec WAN with real hybrid post-quantum IKEv2 handshakes.

    \b
    Start here:
      wansim list                                 the bundled experiments
      wansim run quickstart                       one simulation into results/quickstart
      wansim report results/quickstart            results/quickstart/report/report.html, .pdf
      wansim handshake aes256gcm16-prfsha384-ecp384-ke1_mlkem768 --port-4500
                                                  what a proposal puts on the wire
    """
