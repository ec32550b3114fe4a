"""Files shipped in the repository's `experiments/` and `topologies/` folders, found by name.

`wansim run quickstart` means `experiments/quickstart.toml`, and `[topology] pops =
"europe5"` means `topologies/europe5.csv`: looked up in the current directory first, then
beside the installed package (editable installs and source checkouts), so the bundled files
work from anywhere in the tree; the experiments also ship inside the package (wheel installs).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

import wansim


def folders(kind: str = "experiments") -> list[Path]:
    """Existing `kind` folders (experiments, topologies), nearest first.

    Installed from a wheel, the experiments come from `wansim/data/experiments`, which in
    the source tree is a symlink to the top-level `experiments/` (one copy of each file).
    """
    package = Path(wansim.__file__).resolve().parent
    seen: list[Path] = []
    for folder in (Path.cwd() / kind, package.parent / kind, package / "data" / kind):
        if folder.is_dir() and folder.resolve() not in seen:
            seen.append(folder.resolve())
    return seen


def find(name: str, kind: str, suffix: str) -> Path | None:
    """The bundled file `kind/name+suffix`, if `name` is a bare name and such a file exists."""
    if not name or Path(name).suffix or len(Path(name).parts) != 1:
        return None
    for folder in folders(kind):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def resolve(name_or_path: str | Path) -> Path:
    """A path as given when it exists, else the bundled experiment of that name."""
    path = Path(name_or_path)
    if path.exists():
        return path
    found = find(str(name_or_path), "experiments", ".toml")
    if found is not None:
        return found
    if not path.suffix and len(path.parts) == 1:  # a bare name: say which names exist
        names = [name for name, _, _ in bundled()]
        close = difflib.get_close_matches(str(name_or_path), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise FileNotFoundError(f"{name_or_path}: no such file or bundled experiment; {hint}"
                                f"bundled: {', '.join(names) or 'none found'}")
    return path  # the loader says "cannot read the file"


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
