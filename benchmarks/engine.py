"""The IKE engine's own cost per handshake and per rekey, with the crypto taken out.

One handshake (or one Child / IKE SA rekey) = two `IkeSa` engines (initiator and
responder, strongSwan profile, PSK, first Child SA, fragment_size 1280 on port 4500)
driven to completion by the in-memory
`wansim.ike.loopback.Harness`: building, protecting, fragmenting, parsing and
reassembling every message, proposal selection, state handling and events on both ends.

Thread CPU time of each whole handshake is split by timing wrappers installed only in
this process: key exchanges (the `kex_factory` hook: initiate / respond / finish),
symmetric protection (`CipherSuite.seal` / `open`: AES-GCM, AES-CBC + HMAC) and the key
schedule (`keymat.prf` / `prf_plus`: SKEYSEED, SK_*, IntAuth, AUTH, KEYMAT). The engine's
own cost is the rest. Medians over interleaved rounds. Usage:
`python benchmarks/engine.py [--rounds N] [--no-write]`; the section between the
`engine` markers of docs/benchmarks.md is replaced.
"""

from __future__ import annotations

import functools
import random
import statistics
import sys
import time

from _common import machine, parser, publish

from wansim.crypto import get_kex
from wansim.ike import keymat
from wansim.ike.ciphers import CipherSuite
from wansim.ike.config import IkeConfig
from wansim.ike.loopback import engine_pair

PROPOSALS = (
    "aes256gcm16-prfsha256-x25519",
    "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
    "aes256gcm16-prfsha384-ecp384-ke1_mlkem768",
    "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024",
    "aes256-sha256-x25519-ke1_mlkem768",
)
# (operation, IKE proposal): handshakes for every proposal, rekeys for two of them; the
# Child SAs use the IKE proposal's key exchanges for PFS (ESP = IKE minus the PRF).
RUNS = [("handshake", p) for p in PROPOSALS] + [
    (operation, p)
    for operation in ("child rekey", "IKE rekey")
    for p in (PROPOSALS[1], PROPOSALS[3])
]


class Clock:
    """Thread CPU seconds spent inside wrapped calls, by category (outermost call only)."""

    def __init__(self) -> None:
        self.spent = {"kex": 0.0, "symmetric": 0.0, "schedule": 0.0}
        self._depth = 0

    def wrap(self, category: str, function):
        def timed(*args, **kwargs):
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.spent[category] += time.thread_time() - start
                self._depth -= 1

        return timed

    def reset(self) -> None:
        self.spent = dict.fromkeys(self.spent, 0.0)


class TimedKex:
    """A key exchange whose three operations are charged to the clock."""

    def __init__(self, kex, clock: Clock) -> None:
        self._kex, self._clock = kex, clock
        self.method_id, self.token = kex.method_id, kex.token
        self.respond = clock.wrap("kex", kex.respond)

    def initiate(self):
        pending = self._clock.wrap("kex", self._kex.initiate)()

        class Pending:
            share = pending.share
            finish = staticmethod(self._clock.wrap("kex", pending.finish))

        return Pending()


class TimedAead:
    """An AES-GCM object whose encrypt and decrypt are charged to the clock (the engine's
    SK channels call them directly, not through `CipherSuite.seal` / `open`)."""

    def __init__(self, aead, clock: Clock) -> None:
        self.encrypt = clock.wrap("symmetric", aead.encrypt)
        self.decrypt = clock.wrap("symmetric", aead.decrypt)


def install(clock: Clock) -> None:
    CipherSuite.seal = clock.wrap("symmetric", CipherSuite.seal)
    CipherSuite.open = clock.wrap("symmetric", CipherSuite.open)
    gcm = CipherSuite._gcm

    def timed_gcm(suite, encr_key):
        aead, salt = gcm(suite, encr_key)
        return TimedAead(aead, clock), salt

    CipherSuite._gcm = timed_gcm
    keymat.prf = clock.wrap("schedule", keymat.prf)
    keymat.prf_plus = clock.wrap("schedule", keymat.prf_plus)


@functools.cache
def _configs(proposal: str) -> tuple[IkeConfig, IkeConfig]:
    """One config per side and proposal, shared by every run (as a POP shares its)."""
    esp = "-".join(t for t in proposal.split("-") if not t.startswith("prf"))
    common = dict(ike_proposals=(proposal,), esp_proposals=(esp,), psk="bench-psk",
                  port_4500="always")  # fmt: skip
    ci = IkeConfig(**common, local_id="site.example", remote_id="pop.example")
    cr = IkeConfig(**common, local_id="pop.example", remote_id="site.example")
    return ci, cr


def one_run(operation: str, proposal: str, clock: Clock, seed: int) -> float:
    """Thread CPU seconds of one handshake, or of one rekey (with its Delete exchange) of
    an SA established beforehand, both ends together."""
    ci, cr = _configs(proposal)
    rng = random.Random(seed)
    kexes = {}

    def factory(token: str):
        if token not in kexes:
            kexes[token] = TimedKex(get_kex(token), clock)
        return kexes[token]

    start = time.thread_time()
    harness = engine_pair(ci, cr, rng.randbytes, kex_factory=factory)
    i, r = harness.initiator, harness.responder
    i.initiate(0.0)
    harness.run()
    if not (i.established and r.established):
        raise RuntimeError(f"{proposal}: handshake did not complete")
    if operation != "handshake":
        clock.reset()
        start = time.thread_time()
        (i.rekey_child if operation == "child rekey" else i.rekey_ike)(harness.now)
        harness.run()
    return time.thread_time() - start


def measure(rounds: int) -> list[dict]:
    clock = Clock()
    install(clock)
    samples = {run: {"total": [], "kex": [], "symmetric": [], "schedule": []} for run in RUNS}
    for n in range(rounds):
        for run in RUNS:  # interleaved, so load bursts spread over all rows
            clock.reset()
            total = one_run(*run, clock, seed=n)
            samples[run]["total"].append(total)
            for key, value in clock.spent.items():
                samples[run][key].append(value)
    rows = []
    for (operation, proposal), s in samples.items():
        engine = [
            t - k - y - c
            for t, k, y, c in zip(s["total"], s["kex"], s["symmetric"], s["schedule"], strict=True)
        ]
        row = {key: statistics.median(values) * 1e6 for key, values in s.items()}
        row["engine"] = statistics.median(engine) * 1e6
        row["proposal"], row["operation"] = proposal, operation
        rows.append(row)
    return rows


def section(rows: list[dict], rounds: int) -> str:
    import cryptography

    base = rows[0]["engine"]
    lines = [
        "## IKE engine cost per handshake and rekey (`benchmarks/engine.py`)",
        "",
        f"Thread CPU time, median of {rounds} interleaved rounds; one run on {machine()}, "
        f"cryptography {cryptography.__version__}. Both engines of one handshake "
        "(IKE_SA_INIT, one IKE_INTERMEDIATE per ADDKE, IKE_AUTH with PSK and the first "
        "Child SA; strongSwan profile, port 4500, fragment_size 1280) in one process, "
        "or one rekey of an established SA initiated by the site (CREATE_CHILD_SA with PFS, "
        "one IKE_FOLLOWUP_KE per ADDKE, then the Delete of the old SA). "
        "`engine` = total minus the time inside key exchanges, SK protection "
        "(seal/open) and the key schedule (prf/prf+), measured by timing wrappers.",
        "",
        "| operation | proposal | total µs | key exchanges µs | SK seal/open µs | prf/prf+ µs "
        "| engine µs | engine × x25519 handshake |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['operation']} | {r['proposal']} | {r['total']:.0f} | {r['kex']:.0f} "
            f"| {r['symmetric']:.0f} "
            f"| {r['schedule']:.0f} | {r['engine']:.0f} | {r['engine'] / base:.2f} |"
        )
    lines += [
        "",
        "Reading: the engine's own work (building and parsing payloads, proposal selection, "
        "fragmentation and reassembly, state, events) is the part a simulation pays per "
        "handshake on top of the crypto; it grows with the number of exchanges and datagrams "
        "(fragments), not with the key-exchange method. The column also carries this "
        "benchmark's own instrumentation (the timing wrappers and the wrapper objects made "
        "around every key exchange), which a plain run does not pay. What a handshake repeats "
        "from the last one is memoised: payload parses (SA payloads with their SPIs zeroed), "
        "the encodings of configured and chosen proposals, identities, status notifies and "
        "traffic selectors, proposal choice and selector narrowing (keyed by wire bytes or by "
        "object identity), cipher suites and cipher objects; key exchange data, nonces, SPIs "
        "and every cryptographic operation are new each time. What is left is Python's "
        "per-call cost along each message's path: parsing, SK framing, dispatch and events, "
        "and this loopback harness.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__)
    cli.add_argument("--rounds", type=int, default=15)
    args = cli.parse_args(argv)
    rows = measure(args.rounds)
    publish("engine", section(rows, args.rounds), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
