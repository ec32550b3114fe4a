"""The issue's big scenario: 10,000 sites × 360 POPs × 24 simulated hours.

Hourly Child SA rekeys with PFS (ecp384 + ML-KEM-768), IKE SA rekeys every 4 h, three
silent POP failures; strongSwan timer defaults otherwise. Records wall time, thread CPU
time, peak RSS, the number of real handshakes and rekeys, and that workload's single-core
crypto floor, measured in the same run: per handshake or rekey, the ecp384 and ML-KEM-768
key exchanges on both ends, and (a second figure) those plus a full handshake's key
schedule, IntAuth and AUTH (`crypto_floor.py`); SK protection excluded. A third figure is
the workload's own crypto, operation by operation: a full handshake's crypto per initial
handshake or re-establishment, the key exchanges plus the new Child SA's KEYMAT on both
ends per Child rekey, the key exchanges plus the new IKE SA's SKEYSEED and SK_* on both
ends per IKE rekey, and one AES-GCM seal and open per protected datagram (those the
handshakes table counts, plus each rekey's Delete exchange).

    nice .venv/bin/python benchmarks/sim_scale.py [--sites N] [--hours H] [--workers 1 2]

Each `--workers` value runs in a fresh process (clean peak RSS); the section in
docs/benchmarks.md gets one row per value.

It takes long (tens of minutes to hours on a shared 2-core machine): run it once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, parser, publish  # noqa: E402
from crypto_floor import CHILD_SUITE, IKE_SUITE, _exchange, handshake_crypto  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from wansim.crypto import get_kex  # noqa: E402
from wansim.experiment.config import ExperimentConfig  # noqa: E402
from wansim.ike.keymat import child_keys, initial_keys, rekeyed_keys  # noqa: E402
from wansim.sim.calibration import time_calls  # noqa: E402
from wansim.sim.run import simulate  # noqa: E402

KE_METHODS = ("ecp384", "mlkem768")


def scenario(sites: int, hours: float) -> ExperimentConfig:
    duration = hours * 3600
    return ExperimentConfig.model_validate(
        {
            "name": "scale-10k-360-24h",
            "sites": {"count": sites},
            "ike": {
                "proposals": ["aes256gcm16-prfsha384-ecp384-ke1_mlkem768"],
                "rekey_time": "4h",
                "child": {"esp_proposals": ["aes256gcm16-ecp384-ke1_mlkem768"],
                          "rekey_time": "1h"},
            },
            "failures": {
                "scheduled": [
                    {"pop": "FRA", "at": duration * 0.25, "duration": "30m"},
                    {"pop": "IAD", "at": duration * 0.50, "duration": "30m"},
                    {"pop": "SIN", "at": duration * 0.75, "duration": "30m"},
                ]
            },
            "run": {"duration": duration, "pop_load_resolution": "60s"},
        }
    )  # fmt: skip


def floor_per_operation() -> dict[str, float]:
    """This machine's crypto per handshake or rekey, measured now (thread CPU, medians of
    interleaved batches): the ecp384 + ML-KEM-768 key exchanges on both ends, and with them
    the full handshake's key schedule, IntAuth and PSK AUTH (`crypto_floor.py`)."""
    kexes = [get_kex(token) for token in KE_METHODS]
    t = time_calls(
        {
            "kex": lambda: [_exchange(kex) for kex in kexes],
            "full": lambda: handshake_crypto(kexes),
        },
        batches=15,
        min_batch_s=0.01,
    )
    return {"kex_s": t["kex"], "full_s": t["full"]}


#: Protected datagrams per rekey that the handshakes table does not count: the Delete
#: exchange of the old SA (RFC 7296 §1.4.1), request and response.
DELETE_DATAGRAMS = 2


def workload_crypto(datagram_bytes: int) -> dict[str, float]:
    """CPU seconds of the crypto each kind of operation needs, both ends, measured now:
    per initial handshake (or re-establishment), Child rekey with PFS and IKE rekey, and
    per protected datagram (one AES-GCM-256 seal and one open of `datagram_bytes`)."""
    kexes = [get_kex(token) for token in KE_METHODS]
    ni, nr, spis = os.urandom(32), os.urandom(32), (os.urandom(8), os.urandom(8))
    ike_keys = initial_keys(IKE_SUITE, os.urandom(48), ni, nr, *spis)

    def child_rekey() -> None:
        for secrets in zip(*(_exchange(kex)[:2] for kex in kexes), strict=True):
            child_keys(ike_keys, CHILD_SUITE, ni, nr, secrets)

    def ike_rekey() -> None:
        for secrets in zip(*(_exchange(kex)[:2] for kex in kexes), strict=True):
            rekeyed_keys(ike_keys, IKE_SUITE, secrets, ni, nr, *spis)

    aead, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    plaintext, aad = bytes(datagram_bytes), bytes(32)

    def datagram() -> None:
        aead.decrypt(nonce, aead.encrypt(nonce, plaintext, aad), aad)

    return time_calls(
        {"handshake": lambda: handshake_crypto(kexes), "rekey_child": child_rekey,
         "rekey_ike": ike_rekey, "datagram": datagram},
        batches=15, min_batch_s=0.01,
    )  # fmt: skip


def workload_floor(run: dict, per_op: dict[str, float]) -> float:
    """The run's own crypto in CPU seconds: each operation's crypto by kind, plus the
    seal and open of every protected datagram."""
    kinds = run["by_kind"]
    full = kinds.get("initial", 0) + kinds.get("reestablish", 0)
    rekeys = kinds.get("rekey_child", 0) + kinds.get("rekey_ike", 0)
    datagrams = run["protected_datagrams"] + DELETE_DATAGRAMS * rekeys
    return (
        full * per_op["handshake"]
        + kinds.get("rekey_child", 0) * per_op["rekey_child"]
        + kinds.get("rekey_ike", 0) * per_op["rekey_ike"]
        + datagrams * per_op["datagram"]
    )


def measure(sites: int, hours: float, workers: int) -> dict:
    """One simulation of the scenario in this process (with `workers` processes)."""
    config = scenario(sites, hours)
    wall0, cpu0, kids0 = time.perf_counter(), time.thread_time(), _children_cpu()
    results = simulate(config, workers=workers)
    wall = time.perf_counter() - wall0
    cpu = time.thread_time() - cpu0 + _children_cpu() - kids0
    hs = results.handshakes
    done = hs[hs["outcome"] == "established"]
    rekeys = hs[hs["kind"].isin(["rekey_child", "rekey_ike"])]
    summary = results.summary["strategies"]["replicated"]
    return {
        "sites": sites,
        "pops": results.summary["pops"],
        "simulated_h": hours,
        "workers": workers,
        "handshakes": int(len(hs)),
        "by_kind": {k: int(v) for k, v in hs["kind"].value_counts().items()},
        "established": int(len(done)),
        # every datagram but the two of IKE_SA_INIT (unprotected, RFC 7296 §1.2) per
        # initial handshake or re-establishment
        "protected_datagrams": int(hs["datagrams"].sum())
        - 2 * int(hs["kind"].isin(["initial", "reestablish"]).sum()),
        "rekey_datagram_bytes": int(rekeys["bytes"].sum() / max(1, rekeys["datagrams"].sum())),
        "failovers": int(len(results.failovers)),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "worker_peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
        "latency_s": summary["latency_s"],
        "summary_digest": hashlib.sha256(
            json.dumps(results.summary, sort_keys=True, default=str).encode()
        ).hexdigest()[:16],
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def section(runs: list[dict], per_op: dict[str, float], work: dict[str, float]) -> str:
    first = runs[0]
    kinds = first["by_kind"]
    same = len({r["summary_digest"] for r in runs}) == 1
    floors = (
        workload_floor(first, work),
        *(first["handshakes"] * per_op[k] for k in ("kex_s", "full_s")),
    )

    def ratios(seconds: float) -> str:
        return " / ".join(f"{seconds / floor:.2f}" for floor in floors)

    rows = [
        f"| {r['workers']} | {r['wall_s']:,.0f} | {r['cpu_s']:,.0f} | {ratios(r['wall_s'])} | "
        f"{ratios(r['cpu_s'])} | {r['peak_rss_gb']:.2f} | "
        + (f"{r['worker_peak_rss_gb']:.2f} |" if r["workers"] > 1 else "— |")
        for r in runs
    ]
    p = first["latency_s"]
    us = {k: v * 1e6 for k, v in work.items()}
    return "\n".join(
        [
            "## The big scenario: 10,000 sites × 360 POPs × 24 h (`benchmarks/sim_scale.py`)",
            "",
            f"One run per row on {machine()}, each in a fresh process. Scenario: "
            f"{first['pops']} POPs (4 cores each), {first['sites']:,} generated sites, "
            f"{first['simulated_h']:g} simulated hours, strongSwan timers, IKE "
            "`aes256gcm16-prfsha384-ecp384-ke1_mlkem768`, Child SAs rekeyed hourly with PFS "
            "(`aes256gcm16-ecp384-ke1_mlkem768`), IKE SAs every 4 h, FRA, IAD and SIN failing "
            "silently for 30 min at 25/50/75 % of the run; strategy `replicated`; pyca backend. "
            f"{first['handshakes']:,} real handshakes and rekeys "
            f"({kinds.get('initial', 0):,} initial, {kinds.get('rekey_child', 0):,} Child "
            f"rekeys, {kinds.get('rekey_ike', 0):,} IKE rekeys; "
            f"{first['established']:,} established), {first['failovers']} sites failed over. "
            "CPU = every process's CPU time; a forked worker's peak RSS counts the pages it "
            "shares with the parent.",
            "",
            "Single-core crypto floor, three ways, each measured in the same run (thread CPU, "
            "medians of interleaved batches):",
            "",
            f"- **workload** {floors[0]:,.0f} s: the crypto this run's operations need, kind "
            f"by kind, both ends: {us['handshake']:,.0f} µs per initial handshake (every key "
            "exchange, the key schedule, IntAuth, both PSK AUTHs, the first Child SA's KEYMAT), "
            f"{us['rekey_child']:,.0f} µs per Child rekey (both key exchanges, the new KEYMAT "
            f"with PFS), {us['rekey_ike']:,.0f} µs per IKE rekey (both key exchanges, the new "
            f"SKEYSEED and SK_*), and {us['datagram']:.1f} µs per protected datagram (one "
            f"AES-GCM-256 seal and open of {first['rekey_datagram_bytes']} bytes, the mean of a "
            f"rekey's datagrams; {first['protected_datagrams']:,} datagrams plus "
            f"{DELETE_DATAGRAMS} per rekey for its Delete exchange);",
            f"- **kex** {floors[1]:,.0f} s: only the ecp384 and ML-KEM-768 key exchanges on "
            f"both ends, {per_op['kex_s'] * 1e6:,.0f} µs per operation;",
            f"- **full** {floors[2]:,.0f} s: a full handshake's crypto for every operation "
            f"({per_op['full_s'] * 1e6:,.0f} µs), which overstates a rekey.",
            "",
            "| workers | wall s | CPU s | wall ÷ floor (workload / kex / full) "
            "| CPU ÷ floor (workload / kex / full) | peak RSS GB "
            "| largest worker's peak RSS GB |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Handshake latency p50 / p99 / max: {p['p50'] * 1e3:.1f} ms / "
            f"{p['p99'] * 1e3:.0f} ms / {p['max']:.1f} s. "
            + (
                "Every row's summary is identical (same digest). "
                if same
                else "**The rows' summaries differ.** "
            ),
            "",
            *(_reading(r, floors[0]) for r in runs),
        ]
    )


def _reading(run: dict, floor: float) -> str:
    """Each row against issue 5's targets, judged by the workload floor."""
    ratio = run["wall_s"] / floor
    if run["workers"] == 1:
        target, met = "≤ 1.2 × the floor on one core", ratio <= 1.2
    else:
        target, met = "below the floor with crypto in worker processes", ratio < 1.0
    rss = run["peak_rss_gb"]
    if run["workers"] > 1:  # at most: the parent plus every worker at the largest one's peak
        rss += run["workers"] * run["worker_peak_rss_gb"]
    return (
        f"- {run['workers']} process{'es' if run['workers'] > 1 else ''}: wall "
        f"{ratio:.2f} × the workload floor, target {target}: "
        f"{'met' if met else '**not met**'}; peak RSS of all processes at most {rss:.2f} GB, "
        f"target ≤ 4 GB: {'met' if rss <= 4 else '**not met**'}."
    )


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__)
    cli.add_argument("--sites", type=int, default=10_000)
    cli.add_argument("--hours", type=float, default=24.0)
    cli.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                     help="one run per value, each in a fresh process")  # fmt: skip
    cli.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    cli.add_argument("--json", default=None, help="also write the figures to this file")
    args = cli.parse_args(argv)
    if args.one:  # a child run: print this process's figures as JSON
        figures = measure(args.sites, args.hours, args.workers[0])
        print(json.dumps(figures, default=float))
        return 0
    per_op = floor_per_operation()
    runs = []
    for workers in args.workers:
        child = subprocess.run(
            [sys.executable, __file__, "--one", "--sites", str(args.sites), "--hours",
             str(args.hours), "--workers", str(workers)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1], indent=2), file=sys.stderr)
    work = workload_crypto(runs[0]["rekey_datagram_bytes"])
    if args.json:
        figures = {"per_op": per_op, "workload": work, "runs": runs}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    publish("sim_scale", section(runs, per_op, work), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
