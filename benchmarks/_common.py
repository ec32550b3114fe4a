"""What every benchmark shares: its command line, the machine line and docs/benchmarks.md.

Each benchmark owns one section of docs/benchmarks.md, between `<!-- name:begin -->` and
`<!-- name:end -->`; re-running it replaces that section and keeps everyone else's. Not a
benchmark itself (`make bench` skips files starting with `_`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
INTRO = """# Benchmarks

Speed figures from `benchmarks/*.py`, one section per benchmark: medians and ratios from
one run on the machine named in the section. Re-run a benchmark to refresh its section
(`make bench` runs them all). Timed unit tests are avoided on purpose: these figures
describe a machine, they do not gate a build.
"""


def machine() -> str:
    """The machine a figure was measured on, e.g. `x86_64, 2 CPUs, Python 3.11.7`."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: described by its docstring's first line, with --no-write."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--no-write", action="store_true", help="print only")
    return p


def replace_section(name: str, body: str, path: Path = DOCS) -> None:
    """Put `body` between the `name` markers of `path`, keeping every other section."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = f"{begin}\n{body}\n{end}"
    current = path.read_text() if path.exists() else INTRO
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + text + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(current)


def publish(name: str, body: str, *, write: bool, path: Path = DOCS) -> None:
    """Print a benchmark's section and, unless told not to, write it into `path`."""
    print(body)
    if write:
        replace_section(name, body, path)
        print(f"\nwritten to {path}", file=sys.stderr)
