"""liboqs: safe detection (never import `oqs` or start a build without the native library),
the liboqs-python adapter, and pyca <-> liboqs cross-encapsulation where liboqs is present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem as pyca_mlkem

from wansim.crypto import METHODS, KeyExchangeError, get_kex, liboqs, registry, unavailable_reason

CHILD = r"""
import json, sys
from click.testing import CliRunner
from wansim.cli import main
from wansim.crypto import BACKENDS, METHODS, BackendUnavailable, get_kex
doctor = CliRunner().invoke(main, ["doctor"])
chosen = {}
for token in METHODS:
    for backend in ("auto", *BACKENDS):
        try:
            chosen[f"{token}/{backend}"] = get_kex(token, backend).backend
        except BackendUnavailable as error:
            chosen[f"{token}/{backend}"] = str(error)
oqs = sorted(m for m in sys.modules if m == "oqs" or m.startswith("oqs."))
print(json.dumps({"exit": doctor.exit_code, "output": doctor.output, "oqs": oqs, "chosen": chosen}))
"""
CONSOLE_SCRIPT = "import sys; from wansim.cli import main; sys.exit(main())"


def _sandbox(tmp_path: Path, install_dir: Path) -> tuple[dict[str, str], Path]:
    """Environment whose HOME is empty, OQS_INSTALL_PATH is `install_dir`, and whose `git` and
    `cmake` only leave a marker file behind."""
    bin_dir, home, marker = tmp_path / "bin", tmp_path / "home", tmp_path / "build-started"
    bin_dir.mkdir()
    home.mkdir()
    for tool in ("git", "cmake"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{marker}"\nexit 1\n')
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYOQS", "OQS_"))}
    env.update(
        OQS_INSTALL_PATH=str(install_dir),
        HOME=str(home),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    return env, marker


@pytest.mark.parametrize("layout", ["empty", "broken-library"])
def test_doctor_and_backend_choice_never_import_oqs_or_build(tmp_path: Path, layout: str) -> None:
    if liboqs.found_by_name():
        pytest.skip(f"a system liboqs is installed ({liboqs.found_by_name()}): oqs may load")
    install_dir = tmp_path / "oqs-install"
    (install_dir / "lib").mkdir(parents=True)
    if layout == "broken-library":  # a file that exists but is no shared library
        (install_dir / "lib" / "liboqs.so").write_bytes(b"not an ELF file")
    env, marker = _sandbox(tmp_path, install_dir)

    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["oqs"] == []
    assert report["exit"] == 0, report["output"]
    assert str(install_dir / "lib" / "liboqs.so") in report["output"]
    assert "OQS_INSTALL_PATH" in report["output"]
    assert report["chosen"]["mlkem768/auto"] == "pyca"
    assert report["chosen"]["x25519/auto"] == "pyca"
    assert "OQS_INSTALL_PATH" in report["chosen"]["mlkem512/auto"]
    assert "OQS_INSTALL_PATH" in report["chosen"]["mlkem768/liboqs"]

    # the installed console script, as a user runs it
    script = Path(sys.executable).with_name("wansim")
    command = [str(script)] if script.exists() else [sys.executable, "-c", CONSOLE_SCRIPT]
    cli = subprocess.run([*command, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "liboqs-python" in cli.stdout and "not found" in cli.stdout
    assert not marker.exists(), marker.read_text()


def test_install_dir_follows_liboqs_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OQS_INSTALL_PATH", str(tmp_path))
    assert liboqs.install_dir() == tmp_path
    assert liboqs.install_candidates()[:2] == [
        str(tmp_path / "lib" / "liboqs.so"),
        str(tmp_path / "lib64" / "liboqs.so"),
    ]
    monkeypatch.delenv("OQS_INSTALL_PATH")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert liboqs.install_dir() == tmp_path / "home" / "_oqs"


# --- the adapter, run against a stand-in with liboqs-python's API and quirks ------------------


class _StandInKem:
    """liboqs-python's KeyEncapsulation surface, backed by pyca: (ciphertext, secret) from
    encap_secret, short inputs silently zero-padded (ctypes.create_string_buffer), the secret
    key wiped on exit."""

    def __init__(self, alg_name: str, secret_key: bytes | None = None) -> None:
        size = alg_name.removeprefix("ML-KEM-")
        self._private = getattr(pyca_mlkem, f"MLKEM{size}PrivateKey")
        self._public = getattr(pyca_mlkem, f"MLKEM{size}PublicKey")
        method = METHODS[f"mlkem{size}"]
        self.length_public_key = method.initiator_share_bytes
        self.length_ciphertext = method.responder_share_bytes
        self.length_shared_secret = method.secret_bytes
        self.secret_key = secret_key

    def __enter__(self) -> _StandInKem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.secret_key = None

    @staticmethod
    def _buffer(data: bytes, length: int) -> bytes:
        if len(data) > length:
            raise ValueError("byte string too long")
        return data.ljust(length, b"\0")

    def generate_keypair(self) -> bytes:
        private = self._private.generate()
        self.secret_key = private.private_bytes_raw()
        return private.public_key().public_bytes_raw()

    def export_secret_key(self) -> bytes:
        return bytes(self.secret_key)

    def encap_secret(self, public_key: bytes) -> tuple[bytes, bytes]:
        key = self._public.from_public_bytes(self._buffer(public_key, self.length_public_key))
        secret, ciphertext = key.encapsulate()
        return ciphertext, secret

    def decap_secret(self, ciphertext: bytes) -> bytes:
        private = self._private.from_seed_bytes(self.secret_key)
        return private.decapsulate(self._buffer(ciphertext, self.length_ciphertext))


@pytest.fixture
def stand_in_liboqs(monkeypatch: pytest.MonkeyPatch):
    module = types.SimpleNamespace(
        KeyEncapsulation=_StandInKem,
        get_enabled_kem_mechanisms=lambda: ("ML-KEM-768", "ML-KEM-1024"),
        oqs_version=lambda: "stand-in",
    )
    found = liboqs.LiboqsStatus("stand-in", "/stand-in/liboqs.so", (), None, module, "stand-in")
    registry.unavailable_reason.cache_clear()
    registry._instance.cache_clear()
    monkeypatch.setattr(liboqs, "status", lambda: found)
    yield
    registry.unavailable_reason.cache_clear()
    registry._instance.cache_clear()


@pytest.mark.parametrize("token", ["mlkem768", "mlkem1024"])
def test_liboqs_adapter_against_stand_in(stand_in_liboqs, token: str) -> None:
    kex = get_kex(token)
    assert kex.backend == "liboqs"  # auto prefers liboqs for ML-KEM
    pending = kex.initiate()
    ciphertext, secret = kex.respond(pending.share)
    assert len(ciphertext) == kex.responder_share_bytes and len(secret) == 32
    assert pending.finish(ciphertext) == secret
    # the stand-in would zero-pad these; the length check must refuse them first
    with pytest.raises(KeyExchangeError, match="responder share"):
        pending.finish(ciphertext[:-1])
    with pytest.raises(KeyExchangeError, match="initiator share"):
        kex.respond(pending.share[:-1])
    bad = bytearray(pending.share)
    bad[0:2] = b"\xff\xff"  # first coefficient 0xfff >= q
    with pytest.raises(KeyExchangeError, match="modulus check"):
        kex.respond(bytes(bad))
    assert "lacks ML-KEM-512" in unavailable_reason("mlkem512", "liboqs")


# --- the real thing, where liboqs is installed ------------------------------------------------

CROSS = [
    (token, initiator, responder)
    for token in ("mlkem768", "mlkem1024")
    for initiator, responder in (("pyca", "liboqs"), ("liboqs", "pyca"))
]


@pytest.mark.parametrize(("token", "initiator", "responder"), CROSS)
def test_cross_encapsulation(token: str, initiator: str, responder: str) -> None:
    for backend in (initiator, responder):
        if reason := unavailable_reason(token, backend):
            pytest.skip(f"{token} on {backend}: {reason}")
    pending = get_kex(token, initiator).initiate()
    ciphertext, secret = get_kex(token, responder).respond(pending.share)
    assert pending.finish(ciphertext) == secret
