"""Every setting an experiment file accepts, as rows: dotted key, default, description.

`wansim validate --keys` prints this table, so the reference for experiment files is the
schema itself and can never drift from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from wansim.experiment.config import Distribution, ExperimentConfig
from wansim.experiment.durations import format_duration


def settings(model: type[BaseModel] = ExperimentConfig, prefix: str = ""
             ) -> Iterator[tuple[str, str, str]]:
    """(dotted key, default as TOML-ish text, description) for every leaf setting."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _section_of(field.annotation)
        if nested is not None:
            array = getattr(field.annotation, "__origin__", None) is tuple
            yield from settings(nested, f"{key}[]." if array else f"{key}.")
            continue
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "(required)"
        else:
            default = _spell(field.get_default(call_default_factory=True),
                             duration="parse_duration" in repr(field))
        yield key, default, field.description or ""


def _section_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if (isinstance(candidate, type) and issubclass(candidate, BaseModel)
                and candidate is not Distribution):
            return candidate
    return None


def _spell(value: Any, duration: bool) -> str:
    if isinstance(value, BaseModel):
        value = {k: v for k, v in value.model_dump(mode="json").items() if v is not None}
    if value is None:
        return "(unset)"
    if duration and isinstance(value, float):
        return f'"{format_duration(value)}"'
    return json.dumps(value, default=str)
