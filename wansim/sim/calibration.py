"""Measure this machine's real crypto operations and turn them into a cost profile.

Each operation named in the cost table — ``initiate`` / ``respond`` / ``finish`` of every
key-exchange method the chosen backend runs — is called in batches and timed with the
calling thread's CPU clock (``time.thread_time``), so other processes on a shared machine
inflate the figures less than wall-clock timing would. The profile keeps the median
per-call time over the batches. Per-exchange processing costs are not measurable without a
real daemon; they come from :func:`wansim.sim.costs.strongswan_exchange_s`.
"""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from importlib import metadata

from wansim.crypto import METHODS, BackendUnavailable, KeyExchange, get_kex, unavailable_reason
from wansim.crypto.signatures import SIGNATURE_SCHEMES
from wansim.sim.costs import EXCHANGES, CostProfile, strongswan_exchange_s

#: Bytes signed per IKE_AUTH: the signed octets are the first message plus nonce and a MAC
#: (RFC 7296 §2.15), a few hundred bytes for a hybrid handshake's IKE_SA_INIT.
AUTH_OCTETS_BYTES = 512


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _batch_size(call: Callable[[], object], min_batch_s: float) -> int:
    """Calls per batch so that one batch takes at least ``min_batch_s`` of CPU."""
    call()  # warm up caches, lazy imports, key loading
    per_batch = 1
    while per_batch < 1 << 16:
        start = time.thread_time()
        for _ in range(per_batch):
            call()
        if time.thread_time() - start >= min_batch_s:
            break
        per_batch *= 2
    return per_batch


def time_calls(
    calls: dict[str, Callable[[], object]], *, batches: int, min_batch_s: float
) -> dict[str, float]:
    """Median CPU seconds per call of each named call.

    The batches are interleaved round-robin over all calls, so a burst of load from other
    processes spreads over every operation instead of skewing one of them.
    """
    sizes = {key: _batch_size(call, min_batch_s) for key, call in calls.items()}
    samples: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(batches):
        for key, call in calls.items():
            n = sizes[key]
            start = time.thread_time()
            for _ in range(n):
                call()
            samples[key].append((time.thread_time() - start) / n)
    return {key: statistics.median(values) for key, values in samples.items()}


def kex_calls(kex: KeyExchange) -> dict[str, Callable[[], object]]:
    """`kex`'s three operations as calls without arguments, on one exchange made now (so
    `respond` and `finish` always answer the same, valid share)."""
    pending = kex.initiate()
    share, _ = kex.respond(pending.share)
    return {
        "initiate": kex.initiate,
        "respond": lambda: kex.respond(pending.share),
        "finish": lambda: pending.finish(share),
    }


def _runnable(tokens: Iterable[str], backend: str) -> list[str]:
    """The key exchanges ``backend`` runs here; BackendUnavailable if it runs none (a
    profile of signatures only, labelled with another backend, would mislead)."""
    names = ("liboqs", "pyca") if backend == "auto" else (backend,)
    out, reasons = [], []
    for token in tokens:
        why = [unavailable_reason(token, name) for name in names]
        if any(reason is None for reason in why):
            out.append(token)
        else:
            reasons.extend(str(reason) for reason in why)
    if not out:
        reason = "; ".join(dict.fromkeys(reasons)) or "no method requested"
        raise BackendUnavailable(f"backend {backend!r} runs no key exchange here: {reason}")
    return out


def measure_operations(
    *,
    backend: str = "auto",
    tokens: Iterable[str] | None = None,
    batches: int = 15,
    min_batch_s: float = 0.002,
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Time initiate/respond/finish of each key exchange and sign/verify of each signature
    scheme pyca runs; returns (costs, backend used per token).

    Raises :class:`BackendUnavailable` when ``backend`` runs no key exchange here.
    """
    wanted = list(tokens) if tokens is not None else list(METHODS)
    costs: dict[str, dict[str, float]] = {}
    used: dict[str, str] = {}
    calls: dict[str, Callable[[], object]] = {}
    for token in _runnable(wanted, backend) if tokens is None else wanted:
        kex = get_kex(token, backend)  # raises BackendUnavailable for an explicit token
        for operation, call in kex_calls(kex).items():
            calls[f"{token}:{operation}"] = call
        used[token] = kex.backend
    if tokens is None:
        for token, scheme in SIGNATURE_SCHEMES.items():
            try:
                key = scheme.generate()
            except Exception:  # noqa: BLE001 - a scheme this pyca build lacks is skipped
                continue
            data = bytes(AUTH_OCTETS_BYTES)
            signature = scheme.sign(key, data)
            public = key.public_key()
            calls[f"{token}:sign"] = lambda s=scheme, k=key, d=data: s.sign(k, d)
            calls[f"{token}:verify"] = lambda s=scheme, p=public, d=data, g=signature: s.verify(
                p, d, g
            )
            used[token] = "pyca"
    for key, seconds in time_calls(calls, batches=batches, min_batch_s=min_batch_s).items():
        token, operation = key.split(":")
        costs.setdefault(token, {})[operation] = seconds
    return costs, used


def calibrate(
    *,
    backend: str = "auto",
    name: str | None = None,
    tokens: Iterable[str] | None = None,
    batches: int = 15,
    min_batch_s: float = 0.002,
) -> CostProfile:
    """Measure this machine and return a complete cost profile."""
    costs, used = measure_operations(
        backend=backend, tokens=tokens, batches=batches, min_batch_s=min_batch_s
    )
    if not costs:
        raise BackendUnavailable(f"backend {backend!r} runs none of the requested methods")
    per_exchange = strongswan_exchange_s()
    backends = sorted(set(used.values()))
    label = name or f"{platform.node() or 'host'}-{'+'.join(backends)}"
    return CostProfile(
        name=label,
        backend="+".join(backends),
        operations_s=costs,
        exchange_s={exchange: per_exchange for exchange in EXCHANGES},
        provenance={
            "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu": _cpu_model(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cryptography": _version("cryptography"),
            "liboqs-python": _version("liboqs-python") if "liboqs" in backends else None,
            "backend_per_method": used,
            "method": (
                f"median over {batches} batches of thread CPU time per call "
                f"(batches of at least {min_batch_s * 1e3:g} ms)"
            ),
            "exchange_s": (
                "per-exchange processing fitted to strongSwan 6.1 responder CPU on a 2-core "
                "EPYC VM (1.3 ms x25519+mlkem768, 2.5 ms ecp384+mlkem768, minus their key "
                "exchanges 0.3 / 1.2 ms, over 4 exchanges each): "
                "wansim.sim.costs.strongswan_exchange_s"
            ),
        },
    )
