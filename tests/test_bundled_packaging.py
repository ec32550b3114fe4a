"""The bundled experiments ship inside the package without a second copy to drift.

`wansim/data/experiments` is a symlink to the top-level `experiments/` folder users read
and diff; the wheel's package data follows it (checked by hand with `pip wheel`), and
`wansim list`/`wansim run NAME` fall back to it outside a source checkout.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import wansim
from wansim.experiment import bundled

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = Path(wansim.__file__).resolve().parent / "data" / "experiments"


def test_packaged_experiments_are_the_top_level_folder_itself() -> None:
    assert PACKAGED.is_symlink(), "wansim/data/experiments must stay a symlink, not a copy"
    assert PACKAGED.resolve() == (ROOT / "experiments").resolve()


def test_package_data_includes_the_experiments() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["wansim"]
    shipped = {suffix for pattern in patterns if pattern.startswith("data/experiments/")
               for suffix in [pattern.rsplit(".", 1)[-1]]}
    # every kind of file the experiments folder holds (TOML, and CSVs they name) ships
    assert {p.suffix[1:] for p in (ROOT / "experiments").iterdir()} <= shipped


def test_bundled_names_found_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = [name for name, _, _ in bundled.bundled()]
    assert names == sorted(p.stem for p in (ROOT / "experiments").glob("*.toml"))
    assert bundled.resolve("quickstart").resolve() == (ROOT / "experiments/quickstart.toml")


def test_wheel_layout_without_a_source_tree_finds_the_packaged_copy(tmp_path, monkeypatch) -> None:
    site = tmp_path / "site-packages" / "wansim"
    (site / "data" / "experiments").mkdir(parents=True)
    for path in (ROOT / "experiments").glob("*.toml"):
        (site / "data" / "experiments" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(wansim, "__file__", str(site / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    assert "quickstart" in [name for name, _, _ in bundled.bundled()]
    assert bundled.resolve("quickstart") == site / "data" / "experiments" / "quickstart.toml"
