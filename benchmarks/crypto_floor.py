"""The crypto floor: what the real key exchanges and the key schedule cost on this machine.

Two tables, printed and written into docs/benchmarks.md (its "Crypto floor" section):

1. median µs per key-exchange operation (initiate / respond / finish) per method, for each
   backend that runs here;
2. the crypto of one whole IKE_SA_INIT (+ IKE_INTERMEDIATE per ML-KEM) + IKE_AUTH handshake,
   both ends in one process: every key exchange, SKEYSEED and SK_* after each exchange
   (RFC 7296 §2.14, RFC 9370 §2.2.2), the IntAuth chain (RFC 9242), both PSK AUTH values
   computed and checked on each side, and the first Child SA's KEYMAT. Not included:
   SK payload encryption/decryption, message parsing and state handling — the simulation
   charges those as per-exchange processing costs.

Times are thread CPU time (`time.thread_time`), medians over interleaved batches (see
`wansim.sim.calibration.time_calls`), so other load on a shared machine distorts them less
than wall-clock time would. Usage: `python benchmarks/crypto_floor.py [--no-write]`.
"""

from __future__ import annotations

import os
import sys

from _common import machine, parser, publish

from wansim.crypto import BACKENDS, METHODS, KeyExchange, get_kex, unavailable_reason
from wansim.ike.ciphers import CipherSuite
from wansim.ike.constants import EncrId, PrfId
from wansim.ike.keymat import (
    IkeSuite,
    IntAuthChain,
    child_keys,
    initial_keys,
    intermediate_keys,
    psk_auth,
    signed_octets,
)
from wansim.sim.calibration import measure_operations, time_calls

HANDSHAKES = [
    ("x25519",),
    ("ecp384",),
    ("x25519", "mlkem768"),
    ("ecp384", "mlkem768"),
    ("ecp384", "mlkem1024"),
]
# aes256gcm16-prfsha384: the suite of strongSwan's hybrid examples and of the shared vectors
IKE_SUITE = IkeSuite(PrfId.PRF_HMAC_SHA2_384, CipherSuite(EncrId.ENCR_AES_GCM_16, 256))
CHILD_SUITE = CipherSuite(EncrId.ENCR_AES_GCM_16, 256)
BATCHES = 15
MIN_BATCH_S = 0.003


def _exchange(kex: KeyExchange) -> tuple[bytes, bytes, int]:
    """One key exchange, both ends: (initiator secret, responder secret, request bytes)."""
    pending = kex.initiate()
    share, responder_secret = kex.respond(pending.share)
    return pending.finish(share), responder_secret, len(pending.share)


def handshake_crypto(kexes: list[KeyExchange], *, key_schedule: bool = True) -> bytes:
    """Run the crypto of one full handshake on both ends; return the initiator's SK_d.

    Message contents that only feed hashes (IKE_SA_INIT messages, IntAuth chunks, IDs) are
    zero bytes of realistic size: their bytes do not change the cost."""
    ni, nr, spi_i, spi_r = os.urandom(32), os.urandom(32), os.urandom(8), os.urandom(8)
    main, *additional = kexes
    secret_i, secret_r, request_bytes = _exchange(main)
    if not key_schedule:
        for kex in additional:
            _exchange(kex)
        return secret_i
    keys = [initial_keys(IKE_SUITE, s, ni, nr, spi_i, spi_r) for s in (secret_i, secret_r)]
    chains = [IntAuthChain(), IntAuthChain()]
    for kex in additional:
        secret_i, secret_r, request_bytes = _exchange(kex)
        chunk = bytes(28 + 8 + 8 + request_bytes)  # header, SK header, KE header, KE data
        chains = [chain.extend(k, chunk, chunk) for chain, k in zip(chains, keys, strict=True)]
        keys = [
            intermediate_keys(k, s, ni, nr, spi_i, spi_r)
            for k, s in zip(keys, (secret_i, secret_r), strict=True)
        ]
    init_message, id_body, psk = bytes(300 + request_bytes), bytes(20), bytes(32)
    mid = 1 + len(additional)
    for k, chain in zip(keys, chains, strict=True):  # each end: its own AUTH and the peer's
        for sk_p, nonce in ((k.pi, nr), (k.pr, ni)):
            octets = signed_octets(
                IKE_SUITE.prf, sk_p, init_message, nonce, id_body, chain.value(mid)
            )
            psk_auth(IKE_SUITE.prf, psk, octets)
        child_keys(k, CHILD_SUITE, ni, nr)
    if keys[0] != keys[1]:
        raise AssertionError("initiator and responder derived different keys")
    return keys[0].d


def operation_table() -> list[str]:
    rows = ["| method | ID | backend | initiate µs | respond µs | finish µs | all three µs |"]
    rows.append("|---|---:|---|---:|---:|---:|---:|")
    missing = []
    for backend in BACKENDS:
        tokens = [t for t in METHODS if unavailable_reason(t, backend) is None]
        for token in METHODS:
            reason = unavailable_reason(token, backend)
            if reason and (METHODS[token].kind == "kem" or backend == "pyca"):
                missing.append(f"{token} on {backend}: {reason.split(';')[0]}")
        if not tokens:
            continue
        costs, _ = measure_operations(
            backend=backend, tokens=tokens, batches=BATCHES, min_batch_s=MIN_BATCH_S
        )
        for token in tokens:
            ops = [costs[token][op] * 1e6 for op in ("initiate", "respond", "finish")]
            rows.append(
                f"| {token} | {METHODS[token].method_id} | {backend} | "
                + " | ".join(f"{v:.1f}" for v in ops)
                + f" | {sum(ops):.1f} |"
            )
    return rows + [""] + [f"Not measured: {m}." for m in missing]


def handshake_table() -> list[str]:
    calls = {}
    backends = {}
    for tokens in HANDSHAKES:
        kexes = [get_kex(t) for t in tokens]
        handshake_crypto(kexes)  # warm up and check that both ends agree
        name = "+".join(tokens)
        backends[name] = "+".join(k.backend for k in kexes)
        calls[f"{name}:ke"] = lambda k=kexes: handshake_crypto(k, key_schedule=False)
        calls[f"{name}:all"] = lambda k=kexes: handshake_crypto(k)
    medians = time_calls(calls, batches=BATCHES, min_batch_s=MIN_BATCH_S)
    base = medians["x25519:all"]
    rows = [
        "| handshake | backend | key exchanges µs | total µs | × x25519 |",
        "|---|---|---:|---:|---:|",
    ]
    for tokens in HANDSHAKES:
        name = "+".join(tokens)
        ke, total = medians[f"{name}:ke"] * 1e6, medians[f"{name}:all"] * 1e6
        rows.append(
            f"| {name} | {backends[name]} | {ke:.0f} | {total:.0f} | "
            f"{medians[f'{name}:all'] / base:.2f} |"
        )
    return rows


def section() -> str:
    from wansim.crypto import environment

    v = environment.versions()
    libs = f"cryptography {v['cryptography']} ({v['openssl']}), liboqs {v['liboqs'] or 'absent'}"
    return "\n".join(
        [
            "## Crypto floor (`benchmarks/crypto_floor.py`)",
            "",
            f"Thread CPU time, median of 15 interleaved batches; one run on {machine()}; {libs}.",
            "",
            "### Per key-exchange operation",
            "",
            *operation_table(),
            "",
            "### One full handshake, both ends in one process",
            "",
            "IKE_SA_INIT with the first method, one IKE_INTERMEDIATE per additional (ML-KEM) "
            "method, then IKE_AUTH with PSK and the first Child SA (aes256gcm16-prfsha384). "
            "The total adds SKEYSEED/SK_* after every exchange, the IntAuth chain, "
            "both PSK AUTH values on both ends and the Child SA KEYMAT; SK payload "
            "encryption, parsing and state handling are not included (the simulation "
            "charges them per exchange).",
            "",
            *handshake_table(),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    publish("crypto_floor", section(), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
