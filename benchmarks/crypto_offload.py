"""Could key generation run ahead in worker processes? What a key costs to make vs to bring over.

Issue 5 suggests running real crypto ahead in worker processes. The only operations
that can run ahead are key generations (IKE_SA_INIT and IKE_INTERMEDIATE's `initiate`,
and the ephemeral key inside `respond`): everything else needs the peer's share. A key
made in a worker must then become a private-key object in the simulating process, from
bytes: raw X25519 scalar, PKCS#8 DER for P-384, the 64-byte seed for ML-KEM-768 (the
only private form pyca/cryptography loads). This measures both, thread CPU, median of
interleaved batches (`wansim.sim.calibration.time_calls`).

    .venv/bin/python benchmarks/crypto_offload.py [--no-write]
"""

from __future__ import annotations

import sys

from _common import machine, parser, publish
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519

from wansim.sim.calibration import time_calls

_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_PLAIN = serialization.NoEncryption()


def pairs() -> dict[str, tuple]:
    """Per method: (make a key, make one from bytes a worker sent) — each usable at once
    (its public share serialised, as the engine needs it)."""
    xk = x25519.X25519PrivateKey.generate().private_bytes_raw()
    pk = ec.generate_private_key(ec.SECP384R1()).private_bytes(_DER, _PKCS8, _PLAIN)
    mk = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
    point = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    return {
        "x25519": (
            lambda: x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
            lambda: x25519.X25519PrivateKey.from_private_bytes(xk).public_key().public_bytes_raw(),
        ),
        "ecp384": (
            lambda: ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(*point),
            lambda: serialization.load_der_private_key(pk, None).public_key().public_bytes(*point),
        ),
        "mlkem768": (
            lambda: mlkem.MLKEM768PrivateKey.generate().public_key().public_bytes_raw(),
            lambda: mlkem.MLKEM768PrivateKey.from_seed_bytes(mk).public_key().public_bytes_raw(),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    calls = {}
    for method, (make, load) in pairs().items():
        calls[(method, "make")] = make
        calls[(method, "load")] = load
    t = time_calls(calls, batches=15, min_batch_s=0.003)
    rows = [
        f"| {method} | {t[(method, 'make')] * 1e6:.1f} | {t[(method, 'load')] * 1e6:.1f} | "
        f"{t[(method, 'load')] / t[(method, 'make')]:.2f} |"
        for method in pairs()
    ]
    text = "\n".join(
        [
            "## Running key generation ahead in workers (`benchmarks/crypto_offload.py`)",
            "",
            f"One run on {machine()}; thread CPU, median of 15 interleaved batches; "
            "pyca/cryptography. A key generated in a worker process has to be rebuilt from "
            "bytes in the simulating process before the engine can use it.",
            "",
            "| method | generate µs | load from bytes µs | load ÷ generate |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            "Reading: loading a private key costs about as much as generating it, because "
            "pyca/cryptography (OpenSSL) recomputes the public value on load (the X25519 "
            "and P-384 base-point multiplication, ML-KEM's key expansion from the seed). So "
            "moving key generation to workers saves the simulating process nothing, and the "
            "other operations need the peer's share. wansim parallelises whole groups of "
            "sites instead (`simulate(config, workers=N)`, see the next sections).",
        ]
    )
    publish("crypto_offload", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
