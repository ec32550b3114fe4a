"""Strict CSV reading shared by the POP and site loaders.

A schema lists the columns a file may have; every cell is parsed and checked, and
the first problem raises a `TopologyError` naming the file, line, row and column —
the way a planner fixing a spreadsheet wants to be told.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wansim.topology.errors import TopologyError


@dataclass(frozen=True)
class Column:
    """One column of a CSV schema."""

    name: str
    parse: Callable[[str], Any] = str
    """Turns the stripped cell text into a value, raising ValueError with a reason."""
    required: bool = True
    """The header must have this column and every row a non-empty value."""
    default: Any = None
    """Value used when an optional column is absent or its cell empty."""


def text(cell: str) -> str:
    """Any non-empty text."""
    return cell


def number(lo: float, hi: float) -> Callable[[str], float]:
    """A parser for a finite decimal number within [lo, hi]."""

    def parse(cell: str) -> float:
        try:
            value = float(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a number") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"{cell} is out of range [{lo:g}, {hi:g}]")
        return value

    return parse


LATITUDE = number(-90.0, 90.0)
LONGITUDE = number(-180.0, 180.0)


def read_csv(
    source: str | Path | io.TextIOBase,
    columns: list[Column],
    *,
    unique: str | None = None,
) -> list[dict[str, Any]]:
    """Parse a CSV file (path or open text) against `columns`; one dict per data row.

    `unique` names a column whose values may not repeat. Unknown columns, missing
    required columns, ragged rows, empty or unparsable cells all raise TopologyError.
    """
    if isinstance(source, str | Path):
        name = str(source)
        try:
            handle: io.TextIOBase = open(source, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise TopologyError(f"cannot open: {exc.strerror}", source=name) from None
    else:
        name = getattr(source, "name", "<csv>")
        handle = source
    with handle:
        return _parse(csv.reader(handle), name, {c.name: c for c in columns}, unique)


def _parse(
    reader: Any, name: str, schema: dict[str, Column], unique: str | None
) -> list[dict[str, Any]]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise TopologyError("the file is empty; expected a header line", source=name) from None
    except csv.Error as exc:
        raise TopologyError(f"not valid CSV: {exc}", source=name, line=1) from None
    for h in header:
        if h not in schema:
            raise TopologyError(
                f"unknown column; expected some of {', '.join(schema)}",
                source=name, line=1, field=h,
            )
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise TopologyError("column appears twice in the header", source=name, line=1, field=dup)
    for col in schema.values():
        if col.required and col.name not in header:
            raise TopologyError("required column is missing", source=name, line=1, field=col.name)

    rows: list[dict[str, Any]] = []
    seen: dict[Any, int] = {}
    row_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise TopologyError(
                f"not valid CSV: {exc}", source=name, line=reader.line_num, row=row_no + 1
            ) from None
        if not cells or all(not c.strip() for c in cells):
            continue  # blank line
        row_no += 1
        line = reader.line_num
        if len(cells) != len(header):
            raise TopologyError(
                f"has {len(cells)} cells but the header has {len(header)} columns",
                source=name, line=line, row=row_no,
            )
        values = dict(zip(header, (c.strip() for c in cells), strict=True))
        row: dict[str, Any] = {}
        for col in schema.values():
            cell = values.get(col.name, "")
            if not cell:
                if col.required:
                    raise TopologyError("value is empty", source=name, line=line, row=row_no,
                                        field=col.name)
                row[col.name] = col.default
                continue
            try:
                row[col.name] = col.parse(cell)
            except ValueError as exc:
                raise TopologyError(str(exc), source=name, line=line, row=row_no,
                                    field=col.name) from None
        if unique is not None:
            key = row[unique]
            if key in seen:
                raise TopologyError(
                    f"{key!r} repeats row {seen[key]}", source=name, line=line, row=row_no,
                    field=unique,
                )
            seen[key] = row_no
        rows.append(row)
    if not rows:
        raise TopologyError("the file has a header but no data rows", source=name)
    return rows
