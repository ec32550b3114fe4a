"""The tiny run and its report, built once per test session for test_report*.py.

Imported as ``tests.test_report_fixtures`` by both report test modules, so the cache below
is one object however pytest imports the test modules themselves.
"""

from __future__ import annotations

from wansim.experiment import parse_experiment
from wansim.experiment.runner import run_experiment
from wansim.report import ReportPaths, build_report

# Four POPs, a dozen branches, ten simulated minutes; Frankfurt fails silently after four:
# one second of simulation on one core, yet every section of the report has data.
TINY_TOML = """
name = "tiny"
description = "Report test: FRA fails under replicated and rehandshake."
[topology]
pops = "cloudflare"
only = ["FRA", "AMS", "LHR", "CDG"]
[sites]
count = 12
region_weights = { Europe = 1 }
start_window = "30s"
[ike]
proposals = ["aes256gcm16-prfsha384-x25519-ke1_mlkem768"]
dpd_delay = "10s"
[ike.child]
rekey_time = "3m"
[pop]
cores = 1
[anycast]
detection = { graceful = "0s", silent = "20s" }
[[failures.scheduled]]
pop = "FRA"
at = "4m"
duration = "4m"
kind = "silent"
[failover]
strategies = ["replicated", "rehandshake"]
[run]
duration = "10m"
seed = 3
pop_load_resolution = "10s"
"""

SWEEP_TOML = TINY_TOML.replace('name = "tiny"', 'name = "tiny-sweep"') + """
[sweep]
replications = 1
[sweep.grid]
"ike.proposals" = [["aes256gcm16-prfsha384-ecp384"], ["aes256gcm16-prfsha384-x25519-ke1_mlkem768"]]
"""

_CACHE: dict[str, object] = {}


def shared_run(tmp_path_factory):
    """(run folder, report paths) of the tiny experiment, made on first use."""
    if "run" not in _CACHE:
        run = tmp_path_factory.mktemp("report") / "run"
        run_experiment(parse_experiment(TINY_TOML), run)
        _CACHE["run"] = run
        _CACHE["report"] = build_report(run, tmp_path_factory.mktemp("out"), target_s=0.2)
    report = _CACHE["report"]
    assert isinstance(report, ReportPaths)
    return _CACHE["run"], report
