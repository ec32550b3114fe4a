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
DATA = Path(wansim.__file__).resolve().parent / "data"


def test_packaged_folders_are_the_top_level_folders_themselves() -> None:
    for kind in ("experiments", "topologies"):
        assert (DATA / kind).is_symlink(), f"wansim/data/{kind} must stay a symlink, not a copy"
        assert (DATA / kind).resolve() == (ROOT / kind).resolve()


def test_package_data_includes_the_experiments() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["wansim"]
    shipped = {suffix for pattern in patterns if pattern.startswith("data/experiments/")
               for suffix in [pattern.rsplit(".", 1)[-1]]}
    # every kind of file the experiments folder holds (TOML, and CSVs they name) ships
    assert {p.suffix[1:] for p in (ROOT / "experiments").iterdir()} <= shipped
    topologies = {pattern for pattern in patterns if pattern.startswith("data/topologies/")}
    assert topologies == {"data/topologies/*.csv", "data/topologies/*.graphml"}


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


def test_wheel_layout_finds_bundled_topologies(tmp_path, monkeypatch) -> None:
    site = tmp_path / "site-packages" / "wansim"
    (site / "data" / "topologies").mkdir(parents=True)
    (site / "data" / "topologies" / "europe5.csv").write_bytes(
        (ROOT / "topologies" / "europe5.csv").read_bytes()
    )
    monkeypatch.setattr(wansim, "__file__", str(site / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    assert bundled.find("europe5", "topologies", ".csv") == site / "data/topologies/europe5.csv"
