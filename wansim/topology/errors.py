"""The one error type for bad topology input (POP lists, site lists, backbone graphs)."""

from __future__ import annotations


class TopologyError(ValueError):
    """A topology or site file (or table) is malformed.

    `source` names the file, `line` is its 1-based line (the header is line 1, so
    data row n sits on line n + 1 for plain CSV), `row` the 1-based data row and
    `field` the column or graph attribute at fault, and `element` the graph node or
    edge (for GraphML/GML backbones, whose "rows" are nodes and edges); any may be
    None when the problem is not tied to one place (an empty file, say).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<table>",
        row: int | None = None,
        line: int | None = None,
        field: str | None = None,
        element: str | None = None,
    ) -> None:
        self.reason = message
        self.source = source
        self.row = row
        self.line = line
        self.field = field
        self.element = element
        where = [source]
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if element is not None:
            where.append(element)
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")
