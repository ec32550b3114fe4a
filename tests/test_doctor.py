"""`wansim doctor` tells the truth about this machine (the no-oqs/no-build guarantee is
proved in a clean subprocess in test_crypto_liboqs.py)."""

from __future__ import annotations

import cryptography
from click.testing import CliRunner

from wansim.cli import main
from wansim.crypto import METHODS, SIGNATURE_SCHEMES, BackendUnavailable, get_kex, liboqs


def test_doctor_reports_versions_liboqs_and_each_method() -> None:
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"cryptography   {cryptography.__version__}" in out
    assert "OpenSSL" in out
    found = liboqs.status()
    if found.available:
        assert f"liboqs {found.library_version} at {found.library_path}" in out
    else:
        assert "native liboqs not found" in out and "OQS_INSTALL_PATH" in out
        for path in liboqs.install_candidates():
            assert path in out

    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("key exchange")) + 2
    rows = {line.split()[0]: line.split() for line in lines[start : start + len(METHODS)]}
    assert set(rows) == set(METHODS)
    for token, method in METHODS.items():
        _, method_id, name, auto, check, *_ = rows[token]
        assert (int(method_id), name) == (method.method_id, method.name)
        try:
            expected = get_kex(token).backend
        except BackendUnavailable:
            assert (auto, check) == ("none", "-")
        else:
            assert (auto, check) == (expected, "ok")

    start = next(i for i, line in enumerate(lines) if line.startswith("signatures")) + 2
    signatures = {line.split()[0]: line for line in lines[start:]}
    assert set(signatures) == set(SIGNATURE_SCHEMES)
    assert all(" ok " in line for line in signatures.values())


def test_doctor_is_listed_in_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "doctor" in result.output
