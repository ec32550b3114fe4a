"""The experiments shipped in the repository's `experiments/` folder, found by name.

`wansim run quickstart` means `experiments/quickstart.toml`: looked up in the current
directory's `experiments/` first, then beside the installed package (editable installs and
source checkouts), so the bundled files work from anywhere in the tree.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import wansim


def folders() -> list[Path]:
    """Folders searched for bundled experiments, nearest first, existing ones only."""
    source_tree = Path(wansim.__file__).resolve().parents[1]
    candidates = [Path.cwd() / "experiments", source_tree / "experiments"]
    seen: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in seen:
            seen.append(folder.resolve())
    return seen


def resolve(name_or_path: str | Path) -> Path:
    """A path as given when it exists, else the bundled experiment of that name."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml" or len(path.parts) > 1:
        return path
    for folder in folders():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    return path  # the loader reports "cannot read"


def bundled() -> list[tuple[str, str, Path]]:
    """(name, description, path) of every bundled experiment, sorted by name."""
    found: dict[str, tuple[str, str, Path]] = {}
    for folder in folders():
        for path in sorted(folder.glob("*.toml")):
            if path.stem in found:
                continue
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                description = "(unreadable: run `wansim validate` on it)"
            else:
                description = str(data.get("description", "")).strip()
            found[path.stem] = (path.stem, description, path)
    return [found[k] for k in sorted(found)]
