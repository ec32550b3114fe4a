"""`wansim interop initiate|respond`: our IKEv2 engine against a real peer over UDP.

    wansim interop initiate 127.0.0.1:45500 --proposal aes256gcm16-prfsha256-x25519-ke1_mlkem768 \\
        --esp-proposal aes256gcm16-x25519-ke1_mlkem768 --psk-file psk.txt \\
        --local-id wansim.example --remote-id strongswan.example --nat-t-marker --rekey-child

Exit 0 once the IKE SA and Child SA are up (and the asked-for rekeys done); 1 naming the
peer's notify, our reason or the timeout; 2 for bad input. Each exchange is printed with
its sizes. `--nat-t-marker` puts the non-ESP marker on every datagram (charon on any port
but 500 wants it); `--nat-t-port` is the peer's NAT-T port when it is not 4500.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError

from wansim.ike.config import IkeConfig
from wansim.ike.events import ExchangeCompleted
from wansim.ike.pcap import parse_endpoint, write_pcap
from wansim.interop import session


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    try:
        return parse_endpoint(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _options(func):
    """The options both roles share (strongSwan names where there is one)."""
    options = [
        click.argument("endpoint", metavar="HOST:PORT", callback=_endpoint),
        click.option("--proposal", "proposals", multiple=True, required=True,
                     help="IKE proposal (strongSwan syntax); repeat for several."),
        click.option("--esp-proposal", "esp_proposals", multiple=True, required=True,
                     help="ESP proposal; KE tokens give PFS on rekeys."),
        click.option("--psk-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     required=True, help="File holding the pre-shared key (first line)."),
        click.option("--local-id", required=True, help="Our IKE identity."),
        click.option("--remote-id", required=True, help="The identity the peer must prove."),
        click.option("--local-ts", default="0.0.0.0/0", show_default=True,
                     help="Our traffic selectors (comma-separated prefixes)."),
        click.option("--remote-ts", default="0.0.0.0/0", show_default=True,
                     help="The peer's traffic selectors."),
        click.option("--nat-t-marker", is_flag=True,
                     help="Prepend the non-ESP marker to every datagram (peer not on 500)."),
        click.option("--nat-t-port", type=click.IntRange(1, 65535),
                     help="The peer's NAT-T port, where the engine floats (default 4500)."),
        click.option("--fragment-size", type=click.IntRange(576, 65535), default=1280,
                     show_default=True, help="IP datagram size of each IKE fragment."),
        click.option("--pcap", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the datagrams sent and received as a pcap."),
        click.option("--keys", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write Wireshark ikev2_decryption_table lines."),
        click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=30.0,
                     show_default=True, help="Give up after this many seconds."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _config(options: dict, psk_file: Path) -> IkeConfig:
    lines = psk_file.read_text().splitlines()
    psk = lines[0].strip() if lines else ""
    if not psk:
        raise click.BadParameter(f"{psk_file} holds no pre-shared key", param_hint="--psk-file")
    try:
        return IkeConfig(
            ike_proposals=options["proposals"],
            esp_proposals=options["esp_proposals"],
            psk=psk,
            local_id=options["local_id"],
            remote_id=options["remote_id"],
            local_ts=options["local_ts"],
            remote_ts=options["remote_ts"],
            fragment_size=options["fragment_size"],
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{_option_of(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise click.UsageError(problems) from None


def _option_of(loc: tuple) -> str:
    """The command-line option an IkeConfig field came from (ike_proposals -> --proposal)."""
    field = str(loc[0]) if loc else ""
    names = {"ike_proposals": "--proposal", "esp_proposals": "--esp-proposal"}
    return names.get(field, f"--{field.replace('_', '-')}" if field else "options")


def _report(result: session.SessionResult, options: dict, started_unix: float) -> None:
    for event in result.events:
        if isinstance(event, ExchangeCompleted):
            rtt = f"{event.round_trip_s * 1000:7.1f} ms" if event.round_trip_s is not None else ""
            click.echo(
                f"{event.exchange:<17} MID {event.message_id:<3} {event.side:<9} "
                f"request {event.request_bytes:>5} B in {event.request_datagrams} dgram  "
                f"response {event.response_bytes:>5} B in {event.response_datagrams} dgram  {rtt}"
            )
    try:
        if options.get("pcap"):
            with options["pcap"].open("wb") as file:
                write_pcap(file, result.capture, marker_ports=(), epoch_at=started_unix)
        if options.get("keys"):
            options["keys"].write_text("".join(line + "\n" for line in result.key_lines))
    except OSError as error:
        _bad_input(f"cannot write {error.filename}: {error.strerror}")
    if not result.ok:
        raise click.ClickException(result.failure or "failed")
    click.echo("ok")


def _run(coroutine, local: tuple[str, int]):
    """Run a session; a socket the OS refuses (port in use, address not ours) is bad input."""
    try:
        return asyncio.run(coroutine)
    except OSError as error:
        _bad_input(f"UDP socket on {local[0]}:{local[1]}: {error.strerror or error}")


def _bad_input(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
def interop() -> None:
    """Run our IKEv2 engine against a real IKEv2 peer (e.g. strongSwan) over UDP."""


@interop.command()
@_options
@click.option("--rekey-child", is_flag=True, help="Rekey the Child SA once established.")
@click.option("--rekey-ike", is_flag=True, help="Rekey the IKE SA once established.")
@click.option("--local", "local", default="127.0.0.1:0", callback=_endpoint, show_default=True,
              help="Our address and port.")  # fmt: skip
def initiate(endpoint, psk_file, rekey_child, rekey_ike, local, **options) -> None:
    """Initiate an IKE SA + Child SA to HOST:PORT; exit 0 once done."""
    config = _config(options, psk_file)
    started = time.time()
    result = _run(
        session.initiate(
            config,
            endpoint,
            local=local,
            always_marker=options["nat_t_marker"],
            nat_t_port=options["nat_t_port"],
            rekey_child=rekey_child,
            rekey_ike=rekey_ike,
            timeout_s=options["timeout_s"],
        ),
        local,
    )
    _report(result, options, started)


@interop.command()
@_options
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Exit once this many IKE SAs came up and the peer deleted them.")  # fmt: skip
@click.option("--cookie-threshold", type=click.IntRange(min=0), default=30, show_default=True,
              help="Demand a COOKIE once this many half-open SAs exist (0: always).")  # fmt: skip
def respond(endpoint, psk_file, count, cookie_threshold, **options) -> None:
    """Answer IKE_SA_INITs on HOST:PORT until COUNT IKE SAs came and went."""
    config = _config(options, psk_file)
    started = time.time()
    result = _run(
        session.respond(
            config,
            endpoint,
            count=count,
            cookie_threshold=cookie_threshold,
            always_marker=options["nat_t_marker"],
            nat_t_port=options["nat_t_port"],
            timeout_s=options["timeout_s"],
        ),
        endpoint,
    )
    _report(result, options, started)
