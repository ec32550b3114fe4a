"""Find liboqs without ever triggering liboqs-python's download-and-build.

`import oqs` (liboqs-python 0.16) looks for the native library and, when it finds none,
clones liboqs with git and builds it with cmake, then raises SystemExit if that fails.
So wansim imports `oqs` only after loading the native library itself through ctypes from
exactly the candidates `oqs.oqs._load_liboqs()` tries, in the same order:

1. `ctypes.util.find_library("liboqs")`, then `ctypes.util.find_library("oqs")`;
2. `liboqs.so` (`.dylib` on macOS, `oqs.dll`/`liboqs.dll` on Windows) in `lib/` then `lib64/`
   (`bin/` on Windows) under `$OQS_INSTALL_PATH`, or `~/_oqs` when the variable is unset.

If one of them loads, `import oqs` loads the same file and cannot start a build; SystemExit
and any other exception from the import are still caught as a backstop. The result is
cached per process: the native library, once loaded, stays loaded anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.metadata
import io
import logging
import os
import platform
import sys
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

ENABLE_HINT = (
    "build liboqs as a shared library (cmake -DBUILD_SHARED_LIBS=ON) and set "
    "OQS_INSTALL_PATH to its install prefix (the folder holding lib/liboqs.so)"
)


@dataclass(frozen=True)
class LiboqsStatus:
    """What the safe detection found; `module` is the imported `oqs` or None."""

    package_version: str | None
    library_path: str | None
    candidates: tuple[str, ...]
    reason: str | None
    module: ModuleType | None = field(default=None, repr=False, compare=False)
    library_version: str | None = None

    @property
    def available(self) -> bool:
        return self.module is not None


def package_version() -> str | None:
    """The installed liboqs-python version, read from metadata (never by importing `oqs`)."""
    try:
        return importlib.metadata.version("liboqs-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def install_dir() -> Path:
    """Where liboqs-python looks for (and would build) liboqs: $OQS_INSTALL_PATH or ~/_oqs."""
    if "OQS_INSTALL_PATH" in os.environ:
        return Path(os.environ["OQS_INSTALL_PATH"])
    return Path.home() / "_oqs"


def found_by_name() -> list[str]:
    """What `ctypes.util.find_library` reports for "liboqs", then "oqs" (liboqs-python's order:
    it inserts the "oqs" hit first, then the "liboqs" hit before it)."""
    found = []
    for name in ("liboqs", "oqs"):
        with contextlib.suppress(Exception):
            if hit := ctypes.util.find_library(name):
                found.append(hit)
    return found


def install_candidates() -> list[str]:
    """The files liboqs-python tries under `install_dir()`, in its order."""
    system = platform.system()
    base = install_dir()
    if system == "Windows":
        dirs, files = [base / "bin", base / "bin"], ["oqs.dll", "liboqs.dll"]
    else:
        dirs = [base / "lib", base / "lib64"]
        files = ["liboqs.dylib" if system == "Darwin" else "liboqs.so"]
    return [str(d.absolute() / f) for d in dirs for f in files]


def candidate_paths() -> list[str]:
    """Every library name/path liboqs-python tries, in its order (see module docstring)."""
    return found_by_name() + install_candidates()


def _load_native(candidates: list[str]) -> str | None:
    loader = ctypes.windll if platform.system() == "Windows" else ctypes.cdll  # type: ignore[attr-defined]
    for path in candidates:
        try:
            loader.LoadLibrary(path)
        except OSError:
            continue
        return path
    return None


def _import_oqs() -> ModuleType:
    """Import `oqs` quietly: it logs to stdout on import and may warn about versions."""
    captured = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
        warnings.simplefilter("ignore")
        import oqs  # only reached once the native library is known to load
    for handler in logging.getLogger("oqs.oqs").handlers:  # it bound our buffer as stdout
        if isinstance(handler, logging.StreamHandler) and handler.stream is captured:
            handler.setStream(sys.stderr)
    return oqs


@cache
def status() -> LiboqsStatus:
    """Detect liboqs once per process; import `oqs` only if its native library loads."""
    version = package_version()
    candidates = candidate_paths()
    if version is None:
        return LiboqsStatus(None, None, tuple(candidates), "liboqs-python is not installed")
    path = _load_native(candidates)
    if path is None:
        return LiboqsStatus(
            version,
            None,
            tuple(candidates),
            f"native liboqs not found; to enable it, {ENABLE_HINT}",
        )
    try:
        module = _import_oqs()
        library_version = module.oqs_version()
    except (Exception, SystemExit) as error:  # backstop: never let a build or exit escape
        reason = f"liboqs at {path} loads but `import oqs` failed: {error!r}"
        return LiboqsStatus(version, path, tuple(candidates), reason)
    return LiboqsStatus(version, path, tuple(candidates), None, module, library_version)
