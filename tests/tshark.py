"""tshark as an independent IKEv2 parser: per-frame exchange, message ID, payloads, decryption.

`ike_frames(pcap)` runs tshark (-T json) once without keys and once per decryption-table
line, and merges: a frame's `decrypted` payload list comes from the run whose key set
verified its ICV. One run per line because tshark 4.0 (Debian 12) keeps one key set per
SPI pair, while RFC 9370 changes the keys under the same SPIs after every additional key
exchange; newer tshark versions try every line, which gives the same merged answer.
tshark 4.0 names IKE_INTERMEDIATE (43) and IKE_FOLLOWUP_KE (44) "Unknown": we compare numbers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tests.sysdeps import require_program

SK, SKF = 46, 53
_ICV_BAD = "Integrity Checksum Data is incorrect"


@dataclass(frozen=True)
class IkeFrame:
    """What tshark saw in one frame carrying an IKE message (or fragment)."""

    number: int
    exchange_type: int
    message_id: int
    is_response: bool
    ike_length: int
    payloads: tuple[int, ...]
    """Top-level payload types in chain order (SK=46 / SKF=53 for protected messages)."""
    fragment: tuple[int, int] | None
    """(number, total) of an SKF fragment."""
    malformed: bool
    """tshark flagged the frame malformed (in the run that decrypted it, if any)."""
    decrypted: tuple[int, ...] | None
    """Inner payload types once a key set verified the ICV: () for a non-final fragment,
    the reassembled message's payloads on the final one; None if no key set verified it."""


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _contains(tree: object, predicate) -> bool:
    """Whether any (key, value) anywhere in a tshark JSON tree satisfies `predicate`."""
    if isinstance(tree, dict):
        return any(predicate(k, v) or _contains(v, predicate) for k, v in tree.items())
    if isinstance(tree, list):
        return any(_contains(item, predicate) for item in tree)
    return False


def _ints(value: object) -> tuple[int, ...]:
    return tuple(int(v) for v in _as_list(value))


def _protected(entry: dict) -> tuple[tuple[int, int] | None, tuple[int, ...] | None]:
    """(fragment, decrypted payloads) of one SK/SKF payload's tshark subtree."""
    fragment = None
    if "isakmp.frag.number" in entry:
        fragment = (int(entry["isakmp.frag.number"]), int(entry["isakmp.frag.total"]))
    decrypted = entry.get("isakmp.enc.decrypted")
    icv_bad = _contains(entry, lambda k, v: k == "_ws.expert.message" and _ICV_BAD in str(v))
    if not isinstance(decrypted, dict) or icv_bad:
        return fragment, None
    if fragment is not None:
        # tshark puts a reassembled message's payloads beside the final fragment's SKF.
        return fragment, _ints(entry.get("isakmp.typepayload"))
    contained = decrypted.get("isakmp.enc.contained")
    inner = contained.get("isakmp.typepayload") if isinstance(contained, dict) else None
    return fragment, _ints(inner)


def _frame(layers: dict) -> IkeFrame | None:
    ike = layers.get("isakmp")
    if not isinstance(ike, dict) or "isakmp.exchangetype" not in ike:
        return None
    payloads = _ints(ike.get("isakmp.typepayload"))
    fragment, decrypted = None, None
    for kind, entry in zip(payloads, _as_list(ike.get("isakmp.typepayload_tree")), strict=False):
        if kind in (SK, SKF) and isinstance(entry, dict):
            fragment, decrypted = _protected(entry)
    flags = int(str(ike.get("isakmp.flags", "0")), 0)
    return IkeFrame(
        number=int(layers["frame"]["frame.number"]),
        exchange_type=int(ike["isakmp.exchangetype"]),
        message_id=int(str(ike["isakmp.messageid"]), 0),
        is_response=bool(flags & 0x20),
        ike_length=int(ike["isakmp.length"]),
        payloads=payloads,
        fragment=fragment,
        malformed=_contains(layers, lambda k, v: k == "_ws.malformed"),
        decrypted=decrypted,
    )


def _run(tshark: str, pcap: Path, decode_as: Mapping[int, str], key_line: str | None) -> dict:
    command = [tshark, "-n", "-r", str(pcap), "-T", "json", "--no-duplicate-keys"]
    for port, protocol in decode_as.items():
        command += ["-d", f"udp.port=={port},{protocol}"]
    if key_line is not None:
        command += ["-o", f"uat:ikev2_decryption_table:{key_line}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tshark failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    frames = {}
    for packet in json.loads(done.stdout or "[]"):
        frame = _frame(packet["_source"]["layers"])
        if frame is not None:
            frames[frame.number] = frame
    return frames


def ike_frames(
    pcap: Path | str,
    *,
    key_lines: Sequence[str] = (),
    decode_as: Mapping[int, str] | None = None,
) -> list[IkeFrame]:
    """Every IKE frame of `pcap` as tshark decodes it (skips the test without tshark).

    `decode_as` maps extra UDP ports to "isakmp" (plain IKE) or "udpencap" (IKE after the
    non-ESP marker), e.g. {45500: "udpencap"} for charon on private ports.
    """
    tshark = require_program("tshark")
    decode_as = dict(decode_as or {})
    frames = _run(tshark, Path(pcap), decode_as, None)
    for line in key_lines:
        for number, keyed in _run(tshark, Path(pcap), decode_as, line).items():
            frame = frames[number]
            if frame.decrypted is None and keyed.decrypted is not None:
                frames[number] = replace(
                    frame, decrypted=keyed.decrypted, malformed=keyed.malformed
                )
    return [frames[n] for n in sorted(frames)]
