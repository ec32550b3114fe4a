"""The result store: one folder per run, written whole or not at all, and read back as pandas.

A run folder holds `handshakes.parquet`, `pop_load.parquet`, `failovers.parquet` (those the
experiment's `[outputs]` asks for), `summary.json` and `manifest.json`. It is assembled in a
hidden temporary sibling and renamed into place (`os.rename` is atomic on one file system),
so a folder that exists is complete: a sweep killed with SIGKILL leaves at worst a stale
`.tmp-*` folder, which the next start removes, and finished runs are never redone.

A run's id is a hash of its resolved configuration (seed included), so the same settings
always land in the same folder, whichever machine or executor produced them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import uuid
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import wansim
from wansim.experiment.config import TABLES, ExperimentConfig
from wansim.sim.costs import DEFAULT_PROFILE
from wansim.topology import BUILTIN_POPS

if TYPE_CHECKING:
    from wansim.sim.results import Results

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
_TMP_PREFIX = ".tmp-"
_PACKAGES = (
    "wansim", "numpy", "pandas", "pyarrow", "simpy", "networkx", "scipy", "pydantic",
    "cryptography", "liboqs-python", "dask", "distributed",
)


def run_id(config: ExperimentConfig) -> str:
    """16 hex digits of SHA-256 over the resolved config.

    Only what changes the results counts: the sweep table, the name and the description
    are left out, so rewording an experiment does not orphan a half-finished sweep; input
    files (POP list, sites, backbone, cost profile) count by content, not by path, so an
    edited file gives new runs and a moved checkout keeps its finished ones. The wansim
    version counts too: results of two model versions are never mixed in one aggregate.
    """
    resolved = config.model_dump(mode="json", exclude={"sweep", "name", "description"})
    for loc in FILE_SETTINGS:
        section, key = resolved, loc[-1]
        for part in loc[:-1]:
            section = section[part]
        path = _input_file(loc, section.get(key))
        if path is not None:
            section[key] = _file_digest(str(path), path.stat().st_mtime_ns)
    resolved["wansim_version"] = wansim.__version__  # a new model version gives new runs
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


#: Settings that name input files (resolved against the experiment file by the loader).
FILE_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("topology", "pops"),
    ("topology", "backbone", "file"),
    ("sites", "file"),
    ("pop", "cost_profile"),
)


def _input_file(loc: tuple[str, ...], value: object) -> Path | None:
    """The file a file setting reads, shipped data files (cloudflare, default) included."""
    if not isinstance(value, str):
        return None
    if loc == ("topology", "pops") and value in BUILTIN_POPS:
        path = Path(str(resources.files("wansim.data") / BUILTIN_POPS[value]))
    elif loc == ("pop", "cost_profile") and value == "default":
        path = Path(str(resources.files("wansim") / "data" / DEFAULT_PROFILE))
    else:
        path = Path(value)
    return path if path.is_file() else None


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_complete(folder: Path) -> bool:
    """True when `folder` is a finished run (its manifest is written last, then renamed)."""
    return (folder / MANIFEST).is_file()


def write_run(folder: Path, results: Results, config: ExperimentConfig,
              extra_manifest: dict[str, Any] | None = None) -> bool:
    """Write `results` into `folder` atomically; False if a finished copy already exists."""
    folder = Path(folder)
    if is_complete(folder):
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / temporary_name(folder.name)
    tmp.mkdir()
    try:
        compression = None if config.outputs.compression == "none" else config.outputs.compression
        for table in config.outputs.tables:
            frame: pd.DataFrame = getattr(results, table)
            frame.to_parquet(tmp / f"{table}.parquet", compression=compression, index=False)
        _write_json(tmp / SUMMARY, results.summary)
        manifest = {**results.manifest, **(extra_manifest or {})}
        manifest.setdefault("config", config.model_dump(mode="json"))
        manifest.setdefault("seed", config.run.seed)
        manifest["run_id"] = run_id(config)
        manifest["tables"] = list(config.outputs.tables)
        manifest["versions"] = {**package_versions(), **manifest.get("versions", {})}
        manifest["machine"] = {**machine(), **manifest.get("machine", {})}
        manifest["written_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        _write_json(tmp / MANIFEST, manifest)
        _fsync_dir(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if is_complete(folder):  # another worker finished the same run first
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            raise
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def remove_stale(parent: Path) -> int:
    """Delete temporary folders whose writer on this machine is gone (killed); count them.

    A temporary name carries its writer's host and pid, so a sweep started again (or a
    second sweep into the same folder) never removes the work in flight of a live process.
    """
    removed = 0
    if not parent.is_dir():
        return removed
    host = socket.gethostname()
    for child in parent.iterdir():
        if not (child.name.startswith(_TMP_PREFIX) and child.is_dir()):
            continue
        owner = _owner(child.name)
        if owner is not None and owner[0] == host and not _alive(owner[1]):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def temporary_name(name: str) -> str:
    """A hidden sibling name for writing `name`, tagged with this host and process."""
    return f"{_TMP_PREFIX}{name}@{socket.gethostname()}@{os.getpid()}@{uuid.uuid4().hex[:8]}"


def _owner(tmp_name: str) -> tuple[str, int] | None:
    parts = tmp_name.split("@")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_run(folder: str | Path) -> Results:
    """Load one finished run folder as a :class:`wansim.sim.results.Results`."""
    from wansim.sim.results import Results

    folder = Path(folder)
    if not is_complete(folder):
        raise FileNotFoundError(f"{folder} is not a finished wansim run (no {MANIFEST})")
    manifest = json.loads((folder / MANIFEST).read_text())
    tables = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        if (folder / f"{name}.parquet").is_file() else pd.DataFrame()
        for name in TABLES
    }
    summary = json.loads((folder / SUMMARY).read_text())
    return Results(**tables, summary=summary, manifest=manifest)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    """Where the run happened: enough to explain a difference in wall time, nothing secret."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def runs_table(runs: list[dict[str, Any]], runs_dir: Path) -> pd.DataFrame:
    """Planned runs (sweep.json "runs") as a frame: run_id, grid values, replication, seed,
    complete. List-valued grid values (proposal lists) become JSON text so they can group."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run_id": run["run_id"]}
        row.update({k: json.dumps(v) if isinstance(v, list | dict) else v
                    for k, v in run["point"].items()})
        row.update(replication=run["replication"], seed=run["seed"],
                   complete=is_complete(runs_dir / run["run_id"]))
        rows.append(row)
    return pd.DataFrame(rows)


def jsonable(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively, so JSON stays strict."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(jsonable(data), f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to `path` and rename it over `path`."""
    tmp = path.with_name(temporary_name(path.name))
    _write_json(tmp, data)
    os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
