"""Debian packages some tests need (tshark, chromium, debootstrap).

When a package is missing and we run as root (CI, fresh machines), it is installed
non-interactively with apt-get; anywhere else the caller skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_apt_updated = False


def _install(package: str) -> str | None:
    """Install a Debian package; return None on success or the reason it failed."""
    global _apt_updated
    if os.geteuid() != 0:
        return f"{package} is not installed and the tests do not run as root to install it"
    if shutil.which("apt-get") is None:
        return f"{package} is not installed and this machine has no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        _apt_updated = True
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"apt-get install {package} failed: {done.stderr.strip()[-300:]}"
    return None


def require_program(program: str, package: str | None = None) -> str:
    """Return the path of `program`, installing its Debian package if needed, else skip."""
    path = shutil.which(program)
    if path is None:
        reason = _install(package or program)
        path = shutil.which(program)
        if path is None:
            pytest.skip(reason or f"{program} not found after installing {package or program}")
    return path
