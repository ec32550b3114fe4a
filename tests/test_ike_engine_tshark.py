"""tshark, an independent IKEv2 parser, agrees with the engine's bytes.

A full hybrid handshake (X25519 + ML-KEM-768, port 4500, fragment_size 1280, so the
IKE_INTERMEDIATE and IKE_FOLLOWUP_KE requests travel in two SKF fragments) with a Child
SA rekey (PFS + ADDKE) and an IKE SA rekey, written with `wansim.ike.pcap`: tshark must
find no malformed packet, the same exchange types, message IDs, flags and top-level
payloads, and — with our `ikev2_decryption_table` lines — decrypt every SK payload and
every reassembled SKF message to the same inner payload types we sent.
"""

from __future__ import annotations

import pytest
from test_ike_engine import handshake

from tests.tshark import ike_frames
from tests.vectors import VECTORS_DIR, requires_vectors
from wansim.ike.loopback import run_handshake
from wansim.ike.message import Message, parse_payload_chain
from wansim.ike.pcap import decryption_table_line_for, pcap_bytes
from wansim.ike.protection import Fragment, Reassembly, unprotect

pytestmark = pytest.mark.system


def _our_view(run):
    """Per datagram: (exchange, MID, response, top-level types, inner types or None)."""
    rows = []
    buffers: dict[bytes, Reassembly] = {}
    for _, _, _, payload in run.datagrams:
        ike = payload[4:] if payload[:4] == b"\0\0\0\0" else payload
        message = Message.from_bytes(ike)
        header = message.header
        top = tuple(int(p.payload_type) for p in message.payloads)
        inner = None
        if message.encrypted is not None:
            for ks in run.key_sets:
                if (ks.spi_i, ks.spi_r) != (header.spi_i, header.spi_r):
                    continue
                suite = ks.keys.suite.cipher
                # the original initiator (I flag) sends with SK_ei/SK_ai, the other with SK_er/ar
                k = ks.keys
                keys = (k.ei, k.ai) if header.is_initiator else (k.er, k.ar)
                try:
                    opened = unprotect(ike, suite, *keys)
                except ValueError:
                    continue
                if isinstance(opened, Fragment):
                    opened = buffers.setdefault(opened.message_key, Reassembly()).add(opened, 0.0)
                    inner = () if opened is None else None
                if opened is not None:
                    chain = parse_payload_chain(opened.first_inner, opened.inner)
                    inner = tuple(int(p.payload_type) for p in chain)
                break
        rows.append((int(header.exchange_type), header.message_id, header.is_response, top, inner))
    return rows


def _decoded(run, pcap):
    """tshark's frames of `run` (written to `pcap`, decrypted with our keys) and our view;
    both say the same exchange, Message ID, flags and top-level payloads frame by frame."""
    pcap.write_bytes(pcap_bytes(run.datagrams))
    lines = [decryption_table_line_for(k.spi_i, k.spi_r, k.keys) for k in run.key_sets]
    frames, ours = ike_frames(pcap, key_lines=lines), _our_view(run)
    for frame, (exchange, mid, response, top, _) in zip(frames, ours, strict=True):
        assert (frame.exchange_type, frame.message_id, frame.is_response) == (
            exchange,
            mid,
            response,
        )
        assert frame.payloads == top
    return frames, ours


def test_tshark_agrees_on_a_fragmented_hybrid_handshake_with_rekeys(tmp_path):
    run = run_handshake(
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768",
        port_4500=True, rekey=True, seed=11,
    )  # fmt: skip
    assert len(run.key_sets) == 3  # IKE_SA_INIT, after IKE_INTERMEDIATE 1, after the IKE rekey
    frames, ours = _decoded(run, tmp_path / "hybrid.pcap")
    assert len(frames) == len(ours) == 21
    assert not [f.number for f in frames if f.malformed]
    # every protected message (SK, or SKF reassembled on its last fragment) decrypts
    for frame, (*_, inner) in zip(frames, ours, strict=True):
        if inner is not None:
            assert frame.decrypted == inner, frame.number
    protected = [row for row in ours if row[3][-1] in (46, 53)]
    assert all(row[4] is not None for row in protected)  # our own keys open all of them
    fragments = sum(frame.fragment is not None for frame in frames)
    assert fragments == 6  # three 2-fragment requests: IKE_INTERMEDIATE, 2 x IKE_FOLLOWUP_KE
    exchanges = [f.exchange_type for f in frames]
    assert exchanges.count(43) == 3 and exchanges.count(44) == 6 and exchanges.count(36) == 4


def test_tshark_agrees_on_ml_dsa_certificates_in_a_fragmented_ike_auth(tmp_path):
    """RFC 7427 with ML-DSA-65: IKE_AUTH carries CERT + AUTH in 8 SKF fragments each way."""
    run = run_handshake("aes256gcm16-prfsha256-x25519", port_4500=True, auth="mldsa65", seed=5)
    frames, ours = _decoded(run, tmp_path / "mldsa.pcap")
    assert len(frames) == len(ours) == 18 and not [f for f in frames if f.malformed]
    for frame, (*_, inner) in zip(frames, ours, strict=True):
        if inner:  # the reassembled IKE_AUTH messages: IDi, CERT, ..., AUTH, SA, TSi, TSr
            assert frame.decrypted == inner and 37 in inner and 39 in inner


@requires_vectors
def test_same_payloads_in_the_same_order_as_strongswan(tmp_path):
    """tshark decodes (and decrypts) the strongSwan 6.1 capture and our conversation with
    the same proposals: every message has the same top-level and inner payload types in
    the same order — handshake, Child SA rekey with IKE_FOLLOWUP_KE, IKE SA rekey."""
    vector_lines = [
        line
        for line in (VECTORS_DIR / "keys-ikev2_decryption_table.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    theirs = ike_frames(VECTORS_DIR / "capture.pcap", key_lines=vector_lines)
    h, wire, i, r = handshake(
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768",
        port_4500="always",
    )  # fmt: skip
    i.rekey_child(h.now)
    h.run()
    i.rekey_ike(h.now)
    h.run()
    pcap = tmp_path / "ours.pcap"
    addr = {"i": "192.0.2.1", "r": "192.0.2.2"}
    conversation = [(s.at, (addr[s.src], s.dst_addr[1]), s.dst_addr, s.data) for s in h.wire]
    pcap.write_bytes(pcap_bytes(conversation))
    lines = [decryption_table_line_for(k.spi_i, k.spi_r, k.keys) for k in i.key_sets]
    ours = ike_frames(pcap, key_lines=lines)

    def shape(frames):
        return [(f.exchange_type, f.is_response, f.payloads, f.decrypted) for f in frames]

    assert len(ours) == 21
    assert all(f.decrypted is not None for f in ours if f.payloads[-1] in (46, 53))
    assert shape(ours) == shape(theirs)[: len(ours)]
