"""`wansim doctor`: versions, liboqs status and which backend runs each key exchange.

Everything printed is found out on this machine: each available method also runs one real
exchange end to end. liboqs is detected without importing `oqs` unless its native library
loads (see `wansim.crypto.liboqs`), so this command can never start a liboqs build.
"""

from __future__ import annotations

import sys

import click

from wansim.crypto import SIGNATURE_SCHEMES, environment, get_kex, liboqs


def _check(token: str) -> str:
    """Run one full exchange on the default backend; say whether both ends agree."""
    kex = get_kex(token)
    pending = kex.initiate()
    share, secret = kex.respond(pending.share)
    return "ok" if pending.finish(share) == secret else "MISMATCH"


def _versions() -> list[str]:
    found = environment.versions()
    notes = {
        "python": sys.executable,
        "openssl": "used by cryptography",
        "liboqs-python": "package metadata; `oqs` is imported only if native liboqs loads",
    }
    lines = []
    for name, version in found.items():
        missing = "not found" if name == "liboqs" else "not installed"
        note = f"  ({notes[name]})" if name in notes else ""
        lines.append(f"  {name:<14} {version or missing}{note}")
    return lines


def _liboqs_lines() -> list[str]:
    found = liboqs.status()
    if found.available:
        return [f"  found     liboqs {found.library_version} at {found.library_path}"]
    by_name = ", ".join(liboqs.found_by_name()) or "nothing"
    return [
        f"  status    {found.reason.split(';')[0]}",
        f"  searched  ctypes.util.find_library('liboqs'/'oqs'): {by_name}",
        *(f"            {path}" for path in liboqs.install_candidates()),
        f"  prefix    {liboqs.install_dir()}  ($OQS_INSTALL_PATH, else ~/_oqs)",
        f"  enable    {liboqs.ENABLE_HINT}",
    ]


def _backend_note(backend: str, reason: str | None) -> str:
    if reason is None:
        return f"{backend}: yes"
    if backend == "liboqs" and not liboqs.status().available:
        return "liboqs: not found"
    return f"{backend}: {reason}"


def _method_lines() -> tuple[list[str], bool]:
    """One line per method, and whether every available method's two ends agreed."""
    healthy = True
    lines = [f"  {'token':<10} {'ID':>3}  {'method':<12} {'auto':<7} {'check':<8} backends"]
    for row in environment.method_support():
        m = row.method
        check = _check(m.token) if row.auto else "-"
        healthy &= check != "MISMATCH"
        notes = "; ".join(_backend_note(b, r) for b, r in row.reasons.items())
        lines.append(
            f"  {m.token:<10} {m.method_id:>3}  {m.name:<12} {row.auto or 'none':<7} "
            f"{check:<8} {notes}"
        )
    return lines, healthy


def _signature_lines() -> tuple[list[str], bool]:
    """One line per signature scheme, each checked by signing and verifying once."""
    healthy = True
    lines = [f"  {'token':<11} {'scheme':<26} {'check':<8} hash ID"]
    for scheme in SIGNATURE_SCHEMES.values():
        try:
            key = scheme.generate()
            scheme.verify(key.public_key(), b"doctor", scheme.sign(key, b"doctor"))
            check = "ok"
        except Exception as error:  # report any backend failure instead of crashing
            check, healthy = f"failed: {error}", False
        lines.append(f"  {scheme.token:<11} {scheme.name:<26} {check:<8} {scheme.hash_algorithm}")
    return lines, healthy


@click.command()
def doctor() -> None:
    """Show versions, liboqs status and which backend provides each key-exchange method."""
    methods, kex_ok = _method_lines()
    signatures, signatures_ok = _signature_lines()
    sections = {
        "versions": _versions(),
        "liboqs (the native library behind liboqs-python)": _liboqs_lines(),
        "key exchange (auto = backend used unless one is chosen; check = one real exchange)": (
            methods
        ),
        "signatures (RFC 7427 authentication, pyca/cryptography)": signatures,
    }
    click.echo("\n\n".join("\n".join([title, *lines]) for title, lines in sections.items()))
    if not (kex_ok and signatures_ok):
        raise click.ClickException("a self-check above failed")
