"""On-the-wire IKE sizes, strongSwan 6.1 vs wansim, for the interop matrix (docs/interop.md).

For each proposal, three conversations on loopback run IKE_SA_INIT .. IKE_AUTH, a Child SA
rekey with PFS (+ IKE_FOLLOWUP_KE) and an IKE SA rekey:

1. charon initiator <-> charon responder: strongSwan's own sizes, read from its logs;
2. wansim initiator -> charon responder: the requests wansim sends;
3. charon initiator -> wansim responder: the responses wansim sends.

Same identities, PSK and traffic selectors in all three, so a size differs only where the
payload sets differ. Prints one Markdown table per proposal. Needs root and the chroot
(`interop/strongswan.sh setup`).

    .venv/bin/python interop/sizes.py [--case NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from wansim.ike.config import IkeConfig
from wansim.interop.session import ResponderThread, initiate
from wansim.interop.strongswan import Charon, CharonConfig, pubkey_credentials, sent_messages

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
    "x25519+mlkem768, fragment_size 576": (
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
        "aes256gcm16-x25519-ke1_mlkem768",
        576,
    ),
}
PSK = "wansim-interop-psk-not-a-secret"
IDS = ("initiator.interop.example", "responder.interop.example")
TS = ("198.51.100.0/24", "203.0.113.0/24")
PORTS = {"initiator": (45700, 45701), "responder": (45600, 45601)}


@dataclass(frozen=True)
class Sent:
    """One message as one implementation sent it: (exchange, MID, response) and sizes."""

    exchange: str
    message_id: int
    response: bool
    payloads: str
    datagram_bytes: tuple[int, ...]


def charon(case: tuple[str, str, int], role: str) -> CharonConfig:
    proposal, esp, fragment_size = case
    me, peer = ("initiator", "responder") if role == "initiator" else ("responder", "initiator")
    i = 0 if role == "initiator" else 1
    return CharonConfig(
        name=f"sizes-{role[0]}", port=PORTS[me][0], port_nat_t=PORTS[me][1],
        remote_port=PORTS[peer][0], proposal=proposal, esp_proposal=esp, psk=PSK,
        local_id=IDS[i], remote_id=IDS[1 - i], local_ts=TS[i], remote_ts=TS[1 - i],
        fragment_size=fragment_size,
    )  # fmt: skip


def wansim(case: tuple[str, str, int], role: str, profile: str = "strongswan") -> IkeConfig:
    proposal, esp, fragment_size = case
    i = 0 if role == "initiator" else 1
    return IkeConfig(
        ike_proposals=(proposal,), esp_proposals=(esp,), psk=PSK, local_id=IDS[i],
        remote_id=IDS[1 - i], local_ts=(TS[i],), remote_ts=(TS[1 - i],),
        fragment_size=fragment_size, profile=profile,
    )  # fmt: skip


def _wait_for(peer: Charon, text: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in peer.log():
        if time.monotonic() > deadline:
            raise RuntimeError(f"charon {peer.config.name}: no {text!r} in its log")
        time.sleep(0.05)


def _drive(initiator: Charon) -> None:
    """Handshake, Child SA rekey, IKE SA rekey, then delete — from a charon initiator."""
    done = initiator.initiate()
    if done.returncode != 0:
        raise RuntimeError(f"handshake failed: {done.output[-600:]}")
    initiator.swanctl("--rekey", "--child", "net")
    _wait_for(initiator, "rekeyed CHILD_SA net{1}")
    initiator.swanctl("--rekey", "--ike", "wansim")
    _wait_for(initiator, "IKE_SA wansim[2] rekeyed")
    time.sleep(0.2)
    initiator.swanctl("--terminate", "--ike", "wansim", "--timeout", "5")


def strongswan_run(case) -> list[Sent]:
    with Charon(charon(case, "responder")) as responder, Charon(charon(case, "initiator")) as ini:
        _drive(ini)
        time.sleep(0.2)
        logs = ini.log(), responder.log()
    sent = [m for log in logs for m in sent_messages(log)]
    return [Sent(m.exchange, m.message_id, m.is_response, m.payloads, m.datagram_bytes)
            for m in sent]  # fmt: skip


def wansim_runs(case, profile: str) -> list[Sent]:
    """wansim's requests (as initiator) and responses (as responder)."""
    with Charon(charon(case, "responder")):
        result = asyncio.run(
            initiate(
                wansim(case, "initiator", profile), ("127.0.0.1", PORTS["responder"][0]),
                local=("127.0.0.1", PORTS["initiator"][0]), always_marker=True,
                nat_t_port=PORTS["responder"][1], rekey_child=True, rekey_ike=True,
            )
        )  # fmt: skip
    if not result.ok:
        raise RuntimeError(f"wansim initiator: {result.failure}")
    sent = [m for m in result.sent if not m.response]
    responder = ResponderThread(
        wansim(case, "responder", profile),
        ("127.0.0.1", PORTS["responder"][0]),
        always_marker=True,
    )
    with Charon(charon(case, "initiator")) as ini:
        _drive(ini)
        answered = responder.join()
    if not answered.ok:
        raise RuntimeError(f"wansim responder: {answered.failure}")
    sent += [m for m in answered.sent if m.response]
    return [Sent(m.exchange, m.message_id, m.response, m.payloads, m.fragment_bytes)
            for m in sent if not m.retransmission]  # fmt: skip


def _key(m: Sent, seen: Counter) -> tuple:
    base = (m.exchange, m.message_id, m.response)
    seen[base] += 1
    return (*base, seen[base])


def markdown(name: str, case, profile: str = "strongswan") -> str:
    ours = wansim_runs(case, profile)
    theirs = strongswan_run(case)
    seen_ours: Counter = Counter()
    by_key = {_key(m, seen_ours): m for m in ours}
    seen: Counter = Counter()
    rows = [
        f"#### {name} (`{case[0]}`, ESP `{case[1]}`, fragment_size {case[2]}"
        + (f", wansim profile {profile!r})" if profile != "strongswan" else ")"),
        "",
        "| exchange | MID | from | strongSwan payloads | strongSwan bytes | wansim bytes | Δ |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    # Each request followed by its response (the logs list the initiator's messages first).
    requests = [m for m in theirs if not m.response]
    responses = [m for m in theirs if m.response]
    paired = []
    for request in requests:
        paired.append(request)
        match = next((r for r in responses if (r.exchange, r.message_id) ==
                      (request.exchange, request.message_id)), None)  # fmt: skip
        if match is not None:
            responses.remove(match)
            paired.append(match)
    for m in paired + responses:
        mine = by_key.get(_key(m, seen))
        ss_total, ours_total = sum(m.datagram_bytes), sum(mine.datagram_bytes) if mine else None
        delta = "—" if ours_total is None else f"{ours_total - ss_total:+d}"
        rows.append(
            f"| {m.exchange} | {m.message_id} | {'R' if m.response else 'I'} | "
            f"{m.payloads or '(empty)'} | {' + '.join(map(str, m.datagram_bytes))} | "
            f"{' + '.join(map(str, mine.datagram_bytes)) if mine else '—'} | {delta} |"
        )
    return "\n".join(rows)


def signature_markdown(token: str, case) -> str:
    """IKE_AUTH with RFC 7427 signatures and CERT payloads: charon<->charon vs wansim as
    initiator (our responder cannot be given a certificate charon trusts yet)."""
    creds = {ident: pubkey_credentials(token, ident) for ident in IDS}

    def pubkey(role: str) -> CharonConfig:
        mine, peer = (IDS[0], IDS[1]) if role == "initiator" else (IDS[1], IDS[0])
        return charon(case, role).model_copy(update=dict(
            auth="pubkey", local_cert_pem=creds[mine][3], local_key_pem=creds[mine][2],
            remote_cert_pem=creds[peer][3],
        ))  # fmt: skip

    with Charon(pubkey("responder")) as responder, Charon(pubkey("initiator")) as ini:
        done = ini.initiate()
        if done.returncode != 0:
            raise RuntimeError(f"charon-to-charon {token} failed: {done.output[-600:]}")
        logs = ini.log(), responder.log()
    theirs = [m for log in logs for m in sent_messages(log) if m.exchange == "IKE_AUTH"]
    config = wansim(case, "initiator").model_copy(update={"auth": token, "psk": ""})
    with Charon(pubkey("responder")):
        result = asyncio.run(
            initiate(
                config, ("127.0.0.1", PORTS["responder"][0]),
                local=("127.0.0.1", PORTS["initiator"][0]), always_marker=True,
                nat_t_port=PORTS["responder"][1], credentials=creds[IDS[0]][:2],
            )
        )  # fmt: skip
    if not result.ok:
        raise RuntimeError(f"wansim initiator with {token}: {result.failure}")
    ours = [m for m in result.sent if m.exchange == "IKE_AUTH" and not m.response]
    rows = [
        f"#### IKE_AUTH with {token} signatures and certificates (`{case[0]}`)",
        "",
        "| from | strongSwan payloads | strongSwan bytes | wansim bytes |",
        "|---|---|---:|---:|",
    ]
    for m in theirs:
        mine = ours[0].fragment_bytes if not m.is_response and ours else None
        rows.append(
            f"| {'R' if m.is_response else 'I'} | {m.payloads} | "
            f"{' + '.join(map(str, m.datagram_bytes))} | "
            f"{' + '.join(map(str, mine)) if mine else '—'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--profile", choices=("strongswan", "minimal"), default="strongswan",
                        help="wansim's notify profile (IkeConfig.profile)")  # fmt: skip
    parser.add_argument("--auth", choices=("ecdsa-p256", "ecdsa-p384"),
                        help="IKE_AUTH only, with this signature scheme")  # fmt: skip
    args = parser.parse_args()
    if args.auth:
        print(signature_markdown(args.auth, CASES["x25519+mlkem768"]))
        return
    for name in args.case or CASES:
        print(markdown(name, CASES[name], args.profile))
        print()


if __name__ == "__main__":
    main()
