"""Capacity-planning report: figures, the N+1 / core-sizing analysis, HTML and PDF output.

    from wansim.report import build_report, plots
    build_report("results/quickstart")            # -> report.html, report.pdf, capacity.csv
    capacity_report(wansim.simulate(config))      # the N+1 table as a DataFrame
    plots.latency_cdf(wansim.load("results/quickstart").handshakes)   # in a notebook

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot state).
"""

from __future__ import annotations

from wansim.report import capacity, plots
from wansim.report.render import (
    DEFAULT_TARGET_S,
    ReportPaths,
    build_report,
    capacity_report,
)

__all__ = [
    "DEFAULT_TARGET_S",
    "ReportPaths",
    "build_report",
    "capacity",
    "capacity_report",
    "plots",
]
