"""`wansim handshake`: what a proposal puts on the wire, message by message.

Runs one IKEv2 handshake (and with --rekey a Child SA and an IKE SA rekey) between two
in-memory engines (`wansim.ike.loopback.run_handshake`) and prints each message's
exchange, direction, message ID, IKE length, UDP payload and IP sizes, fragments and
payload list; --json gives the same rows as JSON, --pcap/--keys write a capture and
Wireshark decryption-table lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("proposal")
@click.option(
    "--esp-proposal",
    default="aes256gcm16",
    show_default=True,
    help="ESP proposal of the Child SAs (KE tokens give PFS on rekeys).",
)
@click.option(
    "--fragment-size",
    default=1280,
    show_default=True,
    type=click.IntRange(576, 65535),
    help="Largest IP datagram carrying an IKE fragment (strongSwan fragment_size).",
)
@click.option(
    "--port-4500",
    is_flag=True,
    help="Float to UDP 4500 after IKE_SA_INIT (strongSwan with MOBIKE).",
)
@click.option("--rekey", is_flag=True, help="Also rekey the Child SA, then the IKE SA.")
@click.option(
    "--backend",
    type=click.Choice(["auto", "pyca", "liboqs"]),
    default="auto",
    show_default=True,
    help="Crypto backend for the key exchanges.",
)
@click.option(
    "--pcap",
    "pcap_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the conversation as a pcap file.",
)
@click.option(
    "--keys",
    "keys_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Wireshark ikev2_decryption_table lines, one per key set.",
)
@click.option(
    "--auth",
    type=click.Choice(["psk", "ecdsa-p256", "ecdsa-p384", "mldsa44", "mldsa65", "mldsa87"]),
    default="psk",
    show_default=True,
    help="PSK, or RFC 7427 signatures with certificates sent in CERT payloads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable rows.")
def handshake(proposal, esp_proposal, fragment_size, port_4500, rekey, backend, pcap_path,
              keys_path, auth, as_json) -> None:  # fmt: skip
    """Show what IKE PROPOSAL (strongSwan syntax) puts on the wire.

    t_ms is the in-memory link's clock (10 ms one way), not a latency: for handshake
    latency over real distances, loss and CPU queues use `wansim run`.

    \b
    Example:
      wansim handshake aes256gcm16-prfsha256-x25519-ke1_mlkem768 --port-4500
    """
    from pydantic import ValidationError

    from wansim.crypto import BackendUnavailable
    from wansim.ike.loopback import run_handshake

    try:
        run = run_handshake(
            proposal, esp_proposal, fragment_size=fragment_size, port_4500=port_4500,
            rekey=rekey, backend=backend, auth=auth,
        )  # fmt: skip
    except BackendUnavailable as error:
        raise click.UsageError(str(error)) from None
    except ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise click.BadParameter(problems, param_hint=_culprit(problems)) from None
    except ValueError as error:
        problem = str(error).splitlines()[0]
        raise click.BadParameter(problem, param_hint=_culprit(problem)) from None
    if not run.initiator.established and not rekey:
        failures = [type(e).__name__ for e in run.harness.events["i"]]
        raise click.ClickException(f"handshake did not complete: {', '.join(failures)}")
    if pcap_path is not None:
        from wansim.ike.pcap import pcap_bytes

        _write(pcap_path, pcap_bytes(run.datagrams), "'--pcap'")
    if keys_path is not None:
        from wansim.ike.pcap import decryption_table_line_for

        lines = [decryption_table_line_for(k.spi_i, k.spi_r, k.keys) for k in run.key_sets]
        _write(keys_path, ("\n".join(lines) + "\n").encode(), "'--keys'")
    if as_json:
        click.echo(json.dumps(run.records(), indent=1))
        return
    _print_table(run)


def _culprit(problem: str) -> str:
    """The option a proposal error is about: the ESP proposal's messages say so."""
    return "'--esp-proposal'" if problem.startswith("ESP proposal") else "PROPOSAL"


def _write(path: Path, data: bytes, option: str) -> None:
    """Write an output file; a missing folder or no permission is the user's input (exit 2)."""
    try:
        path.write_bytes(data)
    except OSError as error:
        message = f"cannot write {path}: {error.strerror}"
        raise click.BadParameter(message, param_hint=option) from None


def _print_table(run) -> None:
    head = ("t_ms", "exchange", "dir", "MID", "IKE B", "UDP B", "IP B", "frags", "payloads")
    rows = [
        (f"{r.at * 1000:.0f}", r.exchange, r.direction, str(r.message_id), str(r.ike_bytes),
         str(r.udp_bytes), str(r.ip_bytes), str(r.fragments), r.payloads)
        for r in run.rows
    ]  # fmt: skip
    widths = [max(len(x[n]) for x in (head, *rows)) for n in range(len(head) - 1)]
    for row in (head, *rows):
        cells = [c.rjust(w) if n in (0, 3, 4, 5, 6, 7) else c.ljust(w)
                 for n, (c, w) in enumerate(zip(row, widths, strict=False))]  # fmt: skip
        click.echo("  ".join(cells) + "  " + row[-1])
    total_ip = sum(r.ip_bytes for r in run.rows)
    packets = sum(r.fragments for r in run.rows)
    established = [e for e in run.harness.events["i"] if type(e).__name__ == "IkeSaEstablished"]
    rtts = established[0].round_trips if established else 0
    click.echo(f"\n{len(run.rows)} messages, {packets} datagrams, {total_ip} IP bytes; "
               f"IKE SA established after {rtts} round trips")  # fmt: skip
