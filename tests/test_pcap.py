"""wansim.ike.pcap: byte-exact IPv4/UDP framing, fragments, markers, and tshark agreeing.

The strongSwan 6.1 vector (shared/vectors) is read with a tiny independent pcap reader,
its IKE messages are written back through our writer, and tshark must decode both files
identically (exchange types, message IDs, payload types, fragments) and decrypt every
protected message with the vector's key sets: IKE_INTERMEDIATE and IKE_AUTH under key
sets 0 and 1, the CREATE_CHILD_SA / IKE_FOLLOWUP_KE rekeys, and the rekeyed IKE SA's
INFORMATIONALs under key set 2.
"""

from __future__ import annotations

import io
import ipaddress
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sysdeps import require_program
from tests.tshark import ike_frames
from tests.vectors import VECTORS_DIR
from wansim.ike.constants import NON_ESP_MARKER, EncrId, IntegId
from wansim.ike.pcap import (
    CapturedDatagram,
    PcapWriter,
    decryption_table_line,
    ipv4_packets,
    parse_endpoint,
    pcap_bytes,
    udp_datagram,
)

# --- a tiny independent reader ------------------------------------------------------------


def read_pcap(data: bytes) -> list[tuple[float, bytes]]:
    """(timestamp, IPv4 packet) per frame of a classic pcap (Ethernet or raw IP)."""
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), hex(magic)
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    link = struct.unpack("<I", data[20:24])[0]
    frames, offset = [], 24
    while offset < len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if link == 1:
            if frame[12:14] != b"\x08\x00":
                continue
            frame = frame[14:]
        frames.append((sec + frac * scale, frame))
    return frames


def udp_datagrams(data: bytes, *, verify_udp: bool = True) -> list[CapturedDatagram]:
    """Reassemble IPv4 fragments and return each UDP datagram, checking the checksums."""
    out, pending = [], {}
    for at, packet in read_pcap(data):
        ihl = (packet[0] & 0x0F) * 4
        assert _sum16(packet[:ihl]) == 0xFFFF, "bad IPv4 header checksum"
        total, ident, flags_offset, proto = struct.unpack("!HHHxB", packet[2:10])
        if proto != 17:
            continue
        src, dst = packet[12:16], packet[16:20]
        parts = pending.setdefault((src, dst, ident), {})
        parts[(flags_offset & 0x1FFF) * 8] = packet[ihl:total]
        if flags_offset & 0x2000:
            continue
        del pending[(src, dst, ident)]
        body = b"".join(parts[k] for k in sorted(parts))
        sport, dport, length, checksum = struct.unpack("!HHHH", body[:8])
        pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
        assert not verify_udp or _sum16(pseudo + body) == 0xFFFF, "bad UDP checksum"
        out.append(
            CapturedDatagram(
                at,
                (str(ipaddress.IPv4Address(src)), sport),
                (str(ipaddress.IPv4Address(dst)), dport),
                body[8:length],
            )
        )
    return out


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _vector() -> Path:
    if not VECTORS_DIR.is_dir():
        pytest.skip(f"strongSwan vector folder {VECTORS_DIR} is absent")
    return VECTORS_DIR


def _vector_key_lines() -> list[str]:
    text = (_vector() / "keys-ikev2_decryption_table.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _vector_ike() -> list[CapturedDatagram]:
    """The vector's IKE messages as the engine would hand them over: marker stripped, no ESP."""
    out = []
    for d in udp_datagrams((_vector() / "capture.pcap").read_bytes(), verify_udp=False):
        if 4500 in (d.src[1], d.dst[1]):
            if not d.payload.startswith(NON_ESP_MARKER):
                continue  # ESP in UDP
            d = CapturedDatagram(d.at, d.src, d.dst, d.payload[4:])
        out.append(d)
    return out


# --- byte-exact framing ---------------------------------------------------------------------


def test_udp_headers_match_the_vector():
    # Every UDP datagram strongSwan/Linux put on the wire, rebuilt from ports and payload.
    # The capture was taken on a veth with checksum offload, so its checksum field holds
    # only the pseudo-header sum the NIC would have completed; ours is the full RFC 768 one.
    data = (_vector() / "capture.pcap").read_bytes()
    packets = [packet for _, packet in read_pcap(data) if packet[9] == 17]
    assert len(packets) == 25
    for packet in packets:
        udp = packet[20:]
        src = (str(ipaddress.IPv4Address(packet[12:16])), struct.unpack("!H", udp[:2])[0])
        dst = (str(ipaddress.IPv4Address(packet[16:20])), struct.unpack("!H", udp[2:4])[0])
        ours = udp_datagram(src, dst, udp[8:])
        assert ours[:6] + ours[8:] == udp[:6] + udp[8:]
        pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, len(udp))
        assert udp[6:8] == struct.pack("!H", _sum16(pseudo))  # the offload's partial sum
        assert _sum16(pseudo + ours) == 0xFFFF


def test_round_trip_keeps_payloads_times_and_marker():
    ike = _vector_ike()
    assert len(ike) == 23  # 25 frames minus 2 ESP
    data = pcap_bytes(ike, link="raw")
    back = udp_datagrams(data)
    assert [d.payload for d in back] == [
        (NON_ESP_MARKER if 4500 in (d.src[1], d.dst[1]) else b"") + d.payload for d in ike
    ]
    assert [(d.src, d.dst) for d in back] == [(d.src, d.dst) for d in ike]
    assert all(abs(a.at - b.at) < 1e-6 for a, b in zip(back, ike, strict=True))


def test_marker_is_added_once_and_only_on_nat_t_ports():
    message = bytes(range(1, 41))
    data = pcap_bytes(
        [
            (0.0, "192.0.2.1:500", "192.0.2.2:500", message),
            (0.1, "192.0.2.1:4500", "192.0.2.2:4500", message),
            (0.2, "192.0.2.1:4500", "192.0.2.2:4500", NON_ESP_MARKER + message),
            (0.3, ("192.0.2.1", 45501), ("192.0.2.2", 45500), message),
        ],
        marker_ports=(4500, 45500),
    )
    payloads = [d.payload for d in udp_datagrams(data)]
    assert payloads == [message] + [NON_ESP_MARKER + message] * 3


def test_ip_fragmentation_splits_on_8_byte_boundaries():
    ip_payload = bytes(range(256)) * 12  # 3072 bytes
    packets = ipv4_packets("192.0.2.1", "192.0.2.2", ip_payload, identification=7, mtu=1280)
    assert [len(p) for p in packets] == [1276, 1276, 580]  # 1256 = 157 * 8 data bytes each
    offsets = [struct.unpack("!H", p[6:8])[0] for p in packets]
    assert offsets == [0x2000 | 0, 0x2000 | 157, 314]
    assert b"".join(p[20:] for p in packets) == ip_payload
    assert all(_sum16(p[:20]) == 0xFFFF for p in packets)
    assert len(ipv4_packets("192.0.2.1", "192.0.2.2", ip_payload, identification=7)) == 1
    with pytest.raises(ValueError, match="at least 68"):
        ipv4_packets("192.0.2.1", "192.0.2.2", ip_payload, identification=7, mtu=60)


def test_timestamps_are_nanosecond_and_offset_by_epoch():
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, epoch_at=1_795_920_047.0)
    writer.write(0.123456789, "192.0.2.1:500", "192.0.2.2:500", b"\x01" * 28)
    assert struct.unpack("<II", buffer.getvalue()[24:32]) == (1_795_920_047, 123_456_789)
    writer.write(-1.0, "192.0.2.1:500", "192.0.2.2:500", b"\x01" * 28)  # still after 1970
    with pytest.raises(ValueError, match="before the Unix epoch"):
        PcapWriter(io.BytesIO()).write(-1.0, "192.0.2.1:500", "192.0.2.2:500", b"\x01" * 28)


@pytest.mark.parametrize(
    "endpoint, message",
    [
        ("192.0.2.1", "ADDRESS:PORT"),
        ("192.0.2.1:x", "ADDRESS:PORT"),
        ("[2001:db8::1]:500", "IPv4"),
        ("host.example:500", "IPv4"),
        (("192.0.2.1", 70000), "out of range"),
    ],
)
def test_bad_endpoints_are_rejected(endpoint, message):
    with pytest.raises(ValueError, match=message):
        parse_endpoint(endpoint)


def test_oversized_datagram_and_bad_link_are_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        udp_datagram(("192.0.2.1", 1), ("192.0.2.2", 2), bytes(65508))
    with pytest.raises(ValueError, match="link must be"):
        PcapWriter(io.BytesIO(), link="token-ring")  # type: ignore[arg-type]


@settings(deadline=None, max_examples=200)
@given(
    payloads=st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=4),
    mtu=st.one_of(st.none(), st.integers(min_value=68, max_value=1500)),
    ports=st.tuples(st.integers(1, 65535), st.integers(1, 65535)),
    link=st.sampled_from(["ethernet", "raw"]),
)
def test_any_conversation_reads_back(payloads, mtu, ports, link):
    conversation = [
        (i * 0.5, ("198.51.100.7", ports[0]), ("203.0.113.9", ports[1]), p)
        for i, p in enumerate(payloads)
    ]
    back = udp_datagrams(pcap_bytes(conversation, mtu=mtu, link=link, marker_ports=()))
    assert [d.payload for d in back] == payloads
    assert {d.src[1] for d in back} == {ports[0]}


# --- decryption table -----------------------------------------------------------------------


def test_decryption_table_lines_match_the_vector():
    for line in _vector_key_lines():
        spi_i, spi_r, ei, er, _, ai, ar, _ = line.split(",")
        ours = decryption_table_line(
            spi_i=bytes.fromhex(spi_i),
            spi_r=bytes.fromhex(spi_r),
            sk_ei=bytes.fromhex(ei),
            sk_er=bytes.fromhex(er),
            encr=EncrId.ENCR_AES_GCM_16,
            key_bits=256,
            sk_ai=bytes.fromhex(ai),
            sk_ar=bytes.fromhex(ar),
        )
        assert ours == line


def test_decryption_table_line_for_cbc_hmac_and_errors():
    line = decryption_table_line(
        spi_i=bytes(8),
        spi_r=bytes(range(8)),
        sk_ei=b"\x01" * 16,
        sk_er=b"\x02" * 16,
        encr=EncrId.ENCR_AES_CBC,
        key_bits=128,
        sk_ai=b"\x03" * 32,
        sk_ar=b"\x04" * 32,
        integ=IntegId.AUTH_HMAC_SHA2_256_128,
    )
    assert line.split(",")[4] == '"AES-CBC-128 [RFC3602]"'
    assert line.split(",")[7] == '"HMAC_SHA2_256_128 [RFC4868]"'
    with pytest.raises(ValueError, match="8 bytes"):
        decryption_table_line(
            spi_i=bytes(4),
            spi_r=bytes(8),
            sk_ei=b"",
            sk_er=b"",
            encr=EncrId.ENCR_AES_GCM_16,
            key_bits=256,
        )
    with pytest.raises(ValueError, match="cannot decrypt"):
        decryption_table_line(
            spi_i=bytes(8),
            spi_r=bytes(8),
            sk_ei=b"",
            sk_er=b"",
            encr=EncrId.ENCR_AES_CTR,
            key_bits=256,
        )


# --- tshark agrees --------------------------------------------------------------------------


def _facts(frames):
    return [
        (
            f.exchange_type,
            f.message_id,
            f.is_response,
            f.ike_length,
            f.payloads,
            f.fragment,
            f.decrypted,
        )
        for f in frames
    ]


def test_tshark_decodes_and_decrypts_our_pcap_like_the_original(tmp_path):
    keys = _vector_key_lines()
    original = ike_frames(_vector() / "capture.pcap", key_lines=keys)
    ours_path = tmp_path / "ours.pcap"
    ours_path.write_bytes(pcap_bytes(_vector_ike(), epoch_at=0.0))
    ours = ike_frames(ours_path, key_lines=keys)
    assert _facts(ours) == _facts(original)
    assert not any(f.malformed for f in ours)
    # Every protected message decrypts: fragments, IKE_INTERMEDIATE (43), IKE_AUTH (35),
    # CREATE_CHILD_SA (36), IKE_FOLLOWUP_KE (44), INFORMATIONAL (37).
    protected = [f for f in ours if f.exchange_type != 34]
    assert all(f.decrypted is not None for f in protected)
    assert {f.exchange_type for f in protected} == {35, 36, 37, 43, 44}
    auth_request = next(f for f in ours if f.exchange_type == 35 and not f.is_response)
    assert auth_request.decrypted[:4] == (35, 41, 36, 39)  # IDi N(INITIAL_CONTACT) IDr AUTH


def test_tshark_reassembles_our_ip_fragments_and_finds_valid_checksums(tmp_path):
    ike = _vector_ike()[:5]  # IKE_SA_INIT pair, IKE_INTERMEDIATE (2 SKF) and its response
    path = tmp_path / "fragmented.pcap"
    path.write_bytes(pcap_bytes(ike, mtu=576, link="raw"))
    frames = ike_frames(path, key_lines=_vector_key_lines()[:1])
    assert [(f.exchange_type, f.message_id, f.fragment) for f in frames] == [
        (34, 0, None),
        (34, 0, None),
        (43, 1, (1, 2)),
        (43, 1, (2, 2)),
        (43, 1, None),
    ]
    assert frames[3].decrypted == (34,) and frames[4].decrypted == (34,)
    tshark = require_program("tshark")
    statuses = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(path),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "ip.checksum.status",
            "-e",
            "udp.checksum.status",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert statuses and set(statuses) == {"1"}  # 0 bad, 1 good, 2 unverified (tshark)


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(max_size=30), st.tuples(st.text(max_size=20), st.integers())))
def test_parse_endpoint_accepts_or_raises_value_error(value):
    try:
        host, port = parse_endpoint(value)
    except ValueError:
        return
    assert str(ipaddress.IPv4Address(host)) == host and 0 <= port <= 0xFFFF
