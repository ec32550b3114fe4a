"""One error for a bad experiment, listing every problem with its dotted path and TOML line.

Planners edit experiment files by hand; a run that stops at the first typo and then at the
next one wastes their evening. pydantic already collects every problem of a model, so the
loader turns all of them into :class:`Problem` rows and raises a single
:class:`ExperimentError`. Line numbers come from :func:`key_lines`, a small scan of the TOML
text (tomllib keeps no positions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment: where (dotted path, TOML line) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path or "(top level)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class ExperimentError(ValueError):
    """An experiment file or override is invalid; `problems` lists every reason."""

    def __init__(self, problems: Sequence[Problem], source: str | Path | None = None) -> None:
        self.problems = tuple(problems)
        self.source = str(source) if source is not None else None
        head = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            text = f"{head}{self.problems[0]}"
        else:
            text = f"{head}{len(self.problems)} problems: " + "; ".join(map(str, self.problems))
        super().__init__(text)


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler address given does not answer (a bad --scheduler)."""


def dotted(loc: Iterable[str | int]) -> str:
    """('sweep', 'grid', 'ike.proposals', 2) -> 'sweep.grid."ike.proposals"[2]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = f'"{part}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", part) else part
            out += f".{key}" if out else key
    return out


def problems_from_validation(
    error: ValidationError, lines: dict[Loc, int] | None = None, prefix: Loc = ()
) -> list[Problem]:
    """Turn a pydantic ValidationError into Problems, dropping pydantic's internal loc parts."""
    problems = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(p for p in item["loc"] if not _is_internal(p))
        message = _in_toml_words(item["msg"].removeprefix("Value error, "))
        if item["type"] == "extra_forbidden":
            message = "unknown key (not a setting of this section)"
        problems.append(Problem(dotted(loc), message, line_of(loc, lines or {})))
    return problems


#: pydantic speaks Python; experiment files are TOML (arrays, tables).
_TOML_WORDS = (
    ("a valid tuple", "an array"), ("Tuple should", "Array should"),
    ("a valid list", "an array"), ("List should", "Array should"),
    ("a valid dictionary", "a table"), ("Dictionary should", "Table should"),
)


def _in_toml_words(message: str) -> str:
    for python, toml in _TOML_WORDS:
        message = message.replace(python, toml)
    return message


def _is_internal(part: str | int) -> bool:
    # pydantic adds the branch name of tagged/union/function validators to the loc
    return isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS)


_UNION_TAGS = {"str", "int", "float", "bool", "list[any]", "dict[str,any]", "none"}


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the longest prefix of `loc` that the TOML text defines."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE_OR_QUOTED = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_KEY_PART = re.compile(r"""\s*("([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*\.?""")


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(
        m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None
        else m.group(4)
        for m in _KEY_PART.finditer(text)
        if m.group(1)
    )


def key_lines(text: str) -> dict[Loc, int]:
    """Map every table header and key of a TOML document to its 1-based line.

    Array-of-tables entries get their index (`failures.scheduled[1]`). Keys inside multi-line
    values are ignored (they are not at the start of a line after `key =`); good enough to
    point a user at the right place.
    """
    lines: dict[Loc, int] = {}
    table: Loc = ()
    counts: dict[Loc, int] = {}
    in_multiline = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.count('"""') % 2 == 1 or raw.count("'''") % 2 == 1:
            in_multiline = not in_multiline
            if not in_multiline:
                continue
        elif in_multiline:
            continue
        header = _HEADER.match(raw)
        if header:
            path = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = counts.get(path, -1) + 1
                counts[path] = index
                table = path + (index,)
                lines.setdefault(path, number)
            else:
                table = path
            lines[table] = number
            continue
        key = _KEY.match(raw)
        if key:
            lines[table + _split_key(key.group(1))] = number
    return lines
