"""What the chosen topology contains: POP codes and regions, for checking experiment files.

Loading the 360-POP list takes milliseconds, but a sweep validates every grid point, so
tables are cached per (source, file modification time).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from wansim.topology import BUILTIN_POPS, TopologyError, load_pops, load_sites

if TYPE_CHECKING:
    from wansim.experiment.config import TopologyConfig


def pops(topology: TopologyConfig) -> dict[str, str] | str:
    """POP code -> region of the whole POP list, or an error message if it cannot be read."""
    source = topology.pops
    if source in BUILTIN_POPS:
        return _load(source, 0.0)
    path = Path(source)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        return f"cannot read POP file {source!r}: {exc.strerror or exc}"
    return _load(str(path), mtime)


@functools.lru_cache(maxsize=16)
def _load(source: str, mtime: float) -> dict[str, str] | str:
    try:
        table = load_pops(source)
    except (TopologyError, OSError, ValueError) as exc:
        return f"cannot load POP list {source!r}: {exc}"
    return dict(zip(table.codes, table.regions, strict=True))


def sites_problem(source: str) -> str | None:
    """Why the sites CSV cannot be used (file, line, row and field), or None if it loads."""
    path = Path(source)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        return f"cannot read sites file {source!r}: {exc.strerror or exc}"
    return _sites_problem(str(path), mtime)


@functools.lru_cache(maxsize=16)
def _sites_problem(source: str, mtime: float) -> str | None:
    try:
        load_sites(source)
    except (TopologyError, OSError, ValueError) as exc:
        return str(exc)
    return None


def kept(all_pops: dict[str, str], topology: TopologyConfig) -> dict[str, str]:
    """The POPs left after `topology.only` and `topology.regions`, in file order."""
    only = set(topology.only) if topology.only is not None else None
    regions = set(topology.regions) if topology.regions is not None else None
    return {
        code: region
        for code, region in all_pops.items()
        if (only is None or code in only) and (regions is None or region in regions)
    }
