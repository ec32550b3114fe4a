"""Durations as people write them in experiment files: "90s", "4h", "30d", "1h30m", "250ms".

strongSwan's configuration accepts the same suffixes (s, m, h, d) for its timers, so a
`rekey_time = "4h"` can be copied from `swanctl.conf`. A plain number (or a numeric string)
means seconds. Everything becomes float seconds, the simulator's only time unit.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

#: Seconds per unit suffix; "m" is minutes as in strongSwan (milliseconds are "ms").
UNITS_S: dict[str, float] = {
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|sec|min|s|m|h|d|w)\s*")
_PLAIN = re.compile(rf"\s*([+-]?{_NUMBER})\s*")


def parse_duration(value: object) -> float:
    """Return `value` as non-negative float seconds, or raise ValueError saying why.

    Accepts an int/float (seconds), a numeric string, or one or more number+unit parts
    ("4h", "1h30m", "1.5d", "250ms"). Booleans, negatives, NaN and infinities are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '90s' or '4h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(
            f"expected a duration such as '90s' or '4h', got {type(value).__name__} {value!r}"
        )
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"a duration must be finite, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    plain = _PLAIN.fullmatch(text)
    if plain:
        return float(plain.group(1))
    if text.strip().startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {text!r}")
    total, pos = 0.0, 0
    while pos < len(text):
        part = _PART.match(text, pos)
        if part is None or part.end() == pos:
            raise ValueError(
                f"cannot parse duration {text!r}: use a number with a unit "
                f"({', '.join(UNITS_S)}), e.g. '90s', '4h', '1h30m'"
            )
        total += float(part.group(1)) * UNITS_S[part.group(2)]
        pos = part.end()
    if pos == 0:
        raise ValueError(f"cannot parse an empty duration {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds` with one unit ("4h", "90s", "0.25s")."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / UNITS_S[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"


#: A pydantic field type: any accepted spelling in, float seconds out.
Duration = Annotated[float, BeforeValidator(parse_duration)]
