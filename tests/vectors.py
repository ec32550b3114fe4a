"""Loader for the real strongSwan 6.1 run in `shared/vectors/` (test data, used in place).

Any test may reuse it (wire, keys and engine engineers alike)::

    from tests.vectors import load_strongswan_run, requires_vectors

    @requires_vectors
    def test_something():
        run = load_strongswan_run()
        run.datagrams[2].ike          # IKE message bytes of pcap frame 3 (non-ESP marker removed)
        run.key_sets[0].sk_ei         # SK_ei(0) from the initiator's charon log
        run.values("IntAuth_N")       # every hex dump with that label, in log order

What it offers:

- `datagrams`: every UDP datagram of `capture.pcap` (Ethernet/IPv4/UDP), with ports and
  either `.ike` (IKE message; the 4-byte non-ESP marker is stripped on port 4500) or
  `.esp` (raw ESP packet).
- `dumps`: every `label => N bytes` hex dump in `charon-i.log`, in order, as `(label, bytes)`.
- `key_sets`: the IKE key sets in derivation order (0: after IKE_SA_INIT, 1: after the
  ML-KEM IKE_INTERMEDIATE, 2: the rekeyed IKE SA), each with its inputs (`secret`,
  `additional_secret`, `nonces`) and outputs (`skeyseed`, `sk_d` ... `sk_pr`; `sk_ai`/`sk_ar`
  are empty for this AEAD suite).
- `decryption_table`: the rows of `keys-ikev2_decryption_table.txt`.

The data folder is optional: decorate tests with `requires_vectors` so they skip with a
clear reason when it is absent.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

VECTORS_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "vectors" / "strongswan-6.1-x25519-mlkem768"
)

requires_vectors = pytest.mark.skipif(
    not VECTORS_DIR.is_dir(), reason=f"strongSwan reference vectors not found at {VECTORS_DIR}"
)

NAT_T_PORT = 4500
PSK = b"lab-psk-0123456789abcdef-not-a-secret"  # from swanctl-i.conf / swanctl-r.conf


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram of the capture (frame numbers start at 1, like Wireshark)."""

    frame: int
    src: str
    sport: int
    dst: str
    dport: int
    udp_payload: bytes

    @property
    def is_esp(self) -> bool:
        """On port 4500 a datagram is ESP unless it starts with the non-ESP marker (RFC 3948)."""
        return NAT_T_PORT in (self.sport, self.dport) and self.udp_payload[:4] != b"\0\0\0\0"

    @property
    def ike(self) -> bytes | None:
        if self.is_esp:
            return None
        if NAT_T_PORT in (self.sport, self.dport):
            return self.udp_payload[4:]
        return self.udp_payload

    @property
    def esp(self) -> bytes | None:
        return self.udp_payload if self.is_esp else None


@dataclass(frozen=True)
class KeySet:
    """One `derive_ike_keys` run of the initiator's charon, inputs and outputs."""

    secret: bytes
    additional_secret: bytes
    nonces: bytes
    skeyseed: bytes
    sk_d: bytes
    sk_ai: bytes
    sk_ar: bytes
    sk_ei: bytes
    sk_er: bytes
    sk_pi: bytes
    sk_pr: bytes

    @property
    def ni(self) -> bytes:
        # strongSwan sends 32-byte nonces; tests check both halves appear in IKE_SA_INIT.
        return self.nonces[: len(self.nonces) // 2]

    @property
    def nr(self) -> bytes:
        return self.nonces[len(self.nonces) // 2 :]


@dataclass(frozen=True)
class StrongswanRun:
    datagrams: tuple[Datagram, ...]
    dumps: tuple[tuple[str, bytes], ...]
    key_sets: tuple[KeySet, ...]
    decryption_table: tuple[tuple[str, ...], ...]

    def values(self, label: str) -> list[bytes]:
        """Every hex dump whose label starts with `label`, in log order."""
        return [data for name, data in self.dumps if name.startswith(label)]

    def frame(self, number: int) -> Datagram:
        return next(d for d in self.datagrams if d.frame == number)


_DUMP_HEAD = re.compile(r"\] <[^>]*> (?P<label>.+?) => (?P<size>\d+) bytes")
_DUMP_LINE = re.compile(r"\] <[^>]*> +\d+: (?P<hex>(?:[0-9A-F]{2} )+)")


def parse_charon_log(text: str) -> tuple[tuple[str, bytes], ...]:
    """All `label => N bytes @ addr` hex dumps of a charon log, each checked for length."""
    dumps: list[tuple[str, bytes]] = []
    label: str | None = None
    size = 0
    data = bytearray()
    for line in text.splitlines():
        head = _DUMP_HEAD.search(line)
        if head and "state change" not in line:
            if label is not None:
                dumps.append((label, bytes(data)))
            label, size, data = head["label"], int(head["size"]), bytearray()
            continue
        body = _DUMP_LINE.search(line)
        if body and label is not None and len(data) < size:
            data += bytes.fromhex(body["hex"][:48])
            continue
        if label is not None:
            dumps.append((label, bytes(data)))
            label = None
    if label is not None:
        dumps.append((label, bytes(data)))
    return tuple(dumps)


def _key_sets(dumps: tuple[tuple[str, bytes], ...]) -> tuple[KeySet, ...]:
    sets = []
    for index, (label, _) in enumerate(dumps):
        if label != "SKEYSEED":
            continue
        before = dict(dumps[max(0, index - 3) : index])
        after = dict(dumps[index + 1 : index + 8])
        sets.append(
            KeySet(
                secret=before["key exchange secret"],
                additional_secret=before["additional key exchange secret"],
                nonces=before["nonces"],
                skeyseed=dumps[index][1],
                sk_d=after["Sk_d secret"],
                sk_ai=after.get("Sk_ai secret", b""),
                sk_ar=after.get("Sk_ar secret", b""),
                sk_ei=after["Sk_ei secret"],
                sk_er=after["Sk_er secret"],
                sk_pi=after["Sk_pi secret"],
                sk_pr=after["Sk_pr secret"],
            )
        )
    return tuple(sets)


def read_pcap(path: Path) -> tuple[Datagram, ...]:
    """UDP datagrams of a classic little/big-endian pcap with Ethernet framing over IPv4."""
    raw = path.read_bytes()
    magic = raw[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}[magic]
    (linktype,) = struct.unpack(endian + "I", raw[20:24])
    assert linktype == 1, f"expected Ethernet framing, got link type {linktype}"
    offset, frame, out = 24, 0, []
    while offset < len(raw):
        _, _, incl_len, _ = struct.unpack(endian + "IIII", raw[offset : offset + 16])
        packet = raw[offset + 16 : offset + 16 + incl_len]
        offset += 16 + incl_len
        frame += 1
        if packet[12:14] != b"\x08\x00":
            continue
        ip = packet[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        udp = ip[ihl:total]
        sport, dport, length = struct.unpack("!HHH", udp[:6])
        src = ".".join(str(b) for b in ip[12:16])
        dst = ".".join(str(b) for b in ip[16:20])
        out.append(Datagram(frame, src, sport, dst, dport, udp[8:length]))
    return tuple(out)


def _decryption_table(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(line.split(","))
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


@cache
def load_strongswan_run() -> StrongswanRun:
    """Parse the strongSwan 6.1 X25519 + ML-KEM-768 run (cached; call under requires_vectors)."""
    dumps = parse_charon_log((VECTORS_DIR / "charon-i.log").read_text())
    return StrongswanRun(
        datagrams=read_pcap(VECTORS_DIR / "capture.pcap"),
        dumps=dumps,
        key_sets=_key_sets(dumps),
        decryption_table=_decryption_table(
            (VECTORS_DIR / "keys-ikev2_decryption_table.txt").read_text()
        ),
    )
