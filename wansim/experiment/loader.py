"""Read an experiment file: TOML -> overrides -> paths -> ExperimentConfig, or one ExperimentError.

Every problem is collected before anything is reported: TOML syntax, `--set` overrides,
schema violations (with their TOML line), unknown POP codes and every value of every sweep
grid (each value is validated in place, so a typo in the third proposal of a grid is found
before the first run starts, not hours into the sweep).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from wansim.experiment.bundled import find
from wansim.experiment.config import ExperimentConfig
from wansim.experiment.errors import (
    ExperimentError,
    Loc,
    Problem,
    dotted,
    key_lines,
    line_of,
    problems_from_validation,
)
from wansim.experiment.store import FILE_SETTINGS
from wansim.topology import BUILTIN_POPS

_NOT_PATHS = {("topology", "pops"): set(BUILTIN_POPS), ("pop", "cost_profile"): {"default"}}


def load_experiment(
    path: str | Path, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> ExperimentConfig:
    """Read, override and validate one experiment file; raise ExperimentError listing all."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError([Problem("", f"cannot read the file: {exc}")], path) from None
    return parse_experiment(text, source=path, base_dir=path.parent, overrides=overrides,
                            default_name=path.stem)


def parse_experiment(
    text: str,
    *,
    source: str | Path | None = None,
    base_dir: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    default_name: str | None = None,
) -> ExperimentConfig:
    """Validate experiment TOML text; relative file names are taken from `base_dir`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ExperimentError([Problem("", f"not valid TOML: {exc}", line)], source) from None
    lines = key_lines(text)
    problems: list[Problem] = []
    overridden: set[tuple[str, ...]] = set()
    for loc, value in _parse_overrides(overrides, problems):
        _set(data, loc, value)
        lines[loc] = None  # type: ignore[assignment]  # an override has no line
        overridden.add(tuple(loc))
    if default_name is not None and "name" not in data:
        data["name"] = re.sub(r"[^A-Za-z0-9_.-]", "-", default_name) or "experiment"
    if base_dir is not None:
        _resolve_paths(data, Path(base_dir), from_cwd=overridden)
    config = build_config(data, lines, problems)
    if problems:
        raise ExperimentError(problems, source)
    assert config is not None
    return config


def build_config(
    data: dict[str, Any], lines: dict[Loc, int] | None = None, problems: list[Problem] | None = None
) -> ExperimentConfig | None:
    """Validate raw data (and each sweep grid value); problems go to `problems` or raise."""
    collect = problems if problems is not None else []
    lines = lines or {}
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        collect.extend(problems_from_validation(exc, lines))
        config = None
    grid = data.get("sweep", {}).get("grid", {}) if isinstance(data.get("sweep"), dict) else {}
    if isinstance(grid, dict):
        collect.extend(_grid_problems(data, grid, lines, skip_base=config is None))
    if config is not None and not collect:
        config._raw = copy.deepcopy(data)
    if problems is None and collect:
        raise ExperimentError(collect)
    return None if collect else config


def with_values(config: ExperimentConfig, values: Mapping[str, Any]) -> ExperimentConfig:
    """A copy of `config` with dotted-path values replaced, derived defaults recomputed."""
    data = copy.deepcopy(config._raw) if config._raw else config.model_dump(mode="json")
    for path, value in values.items():
        _set(data, tuple(path.split(".")), value)
    result = build_config(data)
    assert result is not None
    return result


# ----------------------------------------------------------------------------- helpers
def _parse_overrides(
    overrides: Iterable[str] | Mapping[str, Any], problems: list[Problem]
) -> list[tuple[tuple[str, ...], Any]]:
    """`a.b=value` strings (value read as TOML, else as a bare string) or a mapping."""
    if isinstance(overrides, Mapping):
        return [(_override_loc(k), v) for k, v in overrides.items()]
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
            problems.append(Problem(key or item, f"--set needs KEY.PATH=VALUE, got {item!r}"))
            continue
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word such as fortios or 4h
        parsed.append((_override_loc(key), value))
    return parsed


def _override_loc(key: str) -> tuple[str, ...]:
    """`sweep.grid.pop.cores` names the grid entry "pop.cores", not a nested table."""
    if key.startswith("sweep.grid."):
        return ("sweep", "grid", key.removeprefix("sweep.grid."))
    return tuple(key.split("."))


def _set(data: dict[str, Any], loc: tuple[str, ...], value: Any) -> None:
    node = data
    for part in loc[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[loc[-1]] = value


def _get(data: dict[str, Any], loc: tuple[str, ...]) -> Any:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _resolve_paths(data: dict[str, Any], base: Path, from_cwd: set[tuple[str, ...]]) -> None:
    """File names relative to the experiment file — or to the current directory when an
    override (`--set pop.cost_profile=costs.json`) gave them, as on any command line; a bare
    POP list name such as "europe5" that is no file there means `topologies/europe5.csv`."""
    for loc in FILE_SETTINGS:
        value = _get(data, loc)
        if not isinstance(value, str) or value in _NOT_PATHS.get(loc, ()):
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = ((Path.cwd() if tuple(loc) in from_cwd else base) / path).resolve()
        if loc == ("topology", "pops") and not path.exists():
            path = find(value, "topologies", ".csv") or path
        _set(data, loc, str(path))


def _grid_problems(
    data: dict[str, Any], grid: dict[str, Any], lines: dict[Loc, int], skip_base: bool
) -> list[Problem]:
    """Check every grid path names a setting and every value is valid there."""
    problems: list[Problem] = []
    if not grid:
        return problems
    base = copy.deepcopy(data)
    base["sweep"] = {k: v for k, v in data["sweep"].items() if k != "grid"}
    for path, values in grid.items():
        where: Loc = ("sweep", "grid", path)
        if not isinstance(path, str) or not _is_setting(tuple(path.split("."))):
            problems.append(
                Problem(dotted(where), f"{path!r} is not a setting of the experiment",
                        line_of(where, lines))
            )
            continue
        if not isinstance(values, list):
            continue  # the schema reports "should be a list"
        if skip_base:
            continue  # the base experiment is already broken; its errors come first
        for i, value in enumerate(values):
            point = copy.deepcopy(base)
            _set(point, tuple(path.split(".")), value)
            try:
                ExperimentConfig.model_validate(point)
            except ValidationError as exc:
                for problem in problems_from_validation(exc):
                    problems.append(
                        Problem(
                            dotted((*where, i)),
                            f"{problem.path}: {problem.message}",
                            line_of(where, lines),
                        )
                    )
    return problems


def _is_setting(loc: tuple[str, ...]) -> bool:
    """True when `loc` names a field (or a key of a dict field) of ExperimentConfig."""
    model: type[BaseModel] | None = ExperimentConfig
    for i, part in enumerate(loc):
        if model is None:
            return False
        field = model.model_fields.get(part)
        if field is None:
            return False
        if loc[0] == "sweep":
            return False
        annotation = field.annotation
        nested = _model_of(annotation)
        if nested is None:
            # a leaf; a dict-valued leaf may take one more key (pop.cores_by_pop.FRA)
            rest = loc[i + 1 :]
            return not rest or (len(rest) == 1 and _is_dict(annotation))
        model = nested
    return True


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if getattr(annotation, "__origin__", None) is tuple:
        return None  # an array of tables ([[failures.scheduled]]) is replaced whole
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if candidate.__name__ == "Distribution":
                return None  # a distribution is replaced whole
            return candidate
    return None


def _is_dict(annotation: Any) -> bool:
    options = (annotation, *getattr(annotation, "__args__", ()))
    return any(getattr(a, "__origin__", a) is dict for a in options)
