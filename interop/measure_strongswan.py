"""Measure what strongSwan 6.1 itself puts on the wire: two charons on loopback.

For each proposal of the interop matrix, a charon initiator and a charon responder (both in
the sid chroot, private ports) run IKE_SA_INIT .. IKE_AUTH, a Child SA rekey with PFS and
an IKE SA rekey; the sizes are read back from their logs. Prints a Markdown table per case
(used in docs/interop.md). Needs root and the chroot: `interop/strongswan.sh setup`.

    .venv/bin/python interop/measure_strongswan.py [--case NAME]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from wansim.interop.strongswan import Charon, CharonConfig, SentMessage, sent_messages

CASES = {
    "x25519": ("aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", 1280),
    "x25519+mlkem768": (
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
        "aes256gcm16-x25519-ke1_mlkem768",
        1280,
    ),
    "ecp384+mlkem768": (
        "aes256gcm16-prfsha384-ecp384-ke1_mlkem768",
        "aes256gcm16-ecp384-ke1_mlkem768",
        1280,
    ),
    "ecp256+mlkem1024": (
        "aes256gcm16-prfsha256-ecp256-ke1_mlkem1024",
        "aes256gcm16-ecp256-ke1_mlkem1024",
        1280,
    ),
    "x25519+mlkem768+mlkem1024": (
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024",
        "aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem1024",
        1280,
    ),
    "x25519+mlkem768 @576": (
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
        "aes256gcm16-x25519-ke1_mlkem768",
        576,
    ),
}


def pair(configs: tuple[str, str, int]) -> tuple[CharonConfig, CharonConfig]:
    proposal, esp, fragment_size = configs
    common = dict(proposal=proposal, esp_proposal=esp, fragment_size=fragment_size)
    responder = CharonConfig(
        name="measure-r", port=45600, port_nat_t=45601, remote_port=45700,
        local_id="responder.interop.example", remote_id="initiator.interop.example",
        local_ts="203.0.113.0/24", remote_ts="198.51.100.0/24", **common,
    )  # fmt: skip
    initiator = CharonConfig(
        name="measure-i", port=45700, port_nat_t=45701, remote_port=45600,
        local_id="initiator.interop.example", remote_id="responder.interop.example",
        local_ts="198.51.100.0/24", remote_ts="203.0.113.0/24", **common,
    )  # fmt: skip
    return initiator, responder


def _wait_for(charon: Charon, text: str, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while charon.log().count(text) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"charon {charon.config.name}: no {count}x {text!r} in the log")
        time.sleep(0.05)


def run(configs: tuple[str, str, int]) -> list[tuple[SentMessage, SentMessage | None]]:
    """Handshake + Child rekey + IKE rekey between two charons; (request, response) pairs."""
    initiator_config, responder_config = pair(configs)
    with Charon(responder_config) as responder, Charon(initiator_config) as initiator:
        done = initiator.initiate()
        if done.returncode != 0:
            raise RuntimeError(f"charon-to-charon handshake failed: {done.output[-600:]}")
        initiator.swanctl("--rekey", "--child", "net")
        _wait_for(initiator, "CHILD_SA net{2} established", 1)
        initiator.swanctl("--rekey", "--ike", "wansim")
        _wait_for(initiator, "IKE_SA wansim[2] rekeyed", 1)
        time.sleep(0.3)  # let the old SAs' deletes be answered
        requests = [m for m in sent_messages(initiator.log()) if not m.is_response]
        responses = [m for m in sent_messages(responder.log()) if m.is_response]
    seen: Counter = Counter()
    pairs = []
    for request in requests:
        key = (request.exchange, request.message_id)
        matches = [r for r in responses if (r.exchange, r.message_id) == key]
        response = matches[seen[key]] if seen[key] < len(matches) else None
        seen[key] += 1
        pairs.append((request, response))
    return pairs


def markdown(name: str, pairs: list[tuple[SentMessage, SentMessage | None]]) -> str:
    rows = [
        f"#### strongSwan ↔ strongSwan: {name}",
        "",
        "| exchange | MID | request payloads | request bytes | response payloads | "
        "response bytes |",
        "|---|---|---|---|---|---|",
    ]
    for request, response in pairs:
        rows.append(
            f"| {request.exchange} | {request.message_id} | {request.payloads} | "
            f"{' + '.join(map(str, request.datagram_bytes))} | "
            f"{response.payloads if response else '—'} | "
            f"{' + '.join(map(str, response.datagram_bytes)) if response else '—'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    args = parser.parse_args()
    for name in args.case or CASES:
        print(markdown(name, run(CASES[name])))
        print()


if __name__ == "__main__":
    main()
