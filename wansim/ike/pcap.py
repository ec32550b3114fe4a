"""Engine conversations as pcap files Wireshark opens, plus its IKEv2 decryption-table lines.

A conversation is a sequence of (timestamp_s, src, dst, UDP payload) with endpoints as
"addr:port" strings or (addr, port) pairs. Each datagram becomes one Ethernet (or raw IP)
frame with a real IPv4 header (RFC 791) and UDP header (RFC 768), both with correct
checksums; with `mtu` set, datagrams larger than it are split into IPv4 fragments the way
a host would (RFC 791 §2.3: 8-byte offset units, shared Identification, MF on all but the
last). On the NAT-T port the 4-byte non-ESP marker (RFC 3948 §2.2) is prepended unless
the payload already starts with it (an IKE initiator SPI is never zero, RFC 7296 §3.1,
so a leading zero word can only be the marker).

Pure: the writer only writes to the binary file object it is given; `pcap_bytes()`
returns the whole file as bytes.

`decryption_table_line()` renders one record of Wireshark's `ikev2_decryption_table` UAT
(I-SPI, R-SPI, SK_ei, SK_er, encryption name, SK_ai, SK_ar, integrity name). Pass it to
tshark as `-o "uat:ikev2_decryption_table:<line>"` or put the lines in the file
`ikev2_decryption_table` of a Wireshark profile. The keys change after every RFC 9370
additional key exchange and every IKE rekey, so one IKE SA yields several lines.
"""

from __future__ import annotations

import io
import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal

from wansim.ike.constants import NAT_T_PORT, NON_ESP_MARKER, EncrId, IntegId

if TYPE_CHECKING:
    from wansim.ike.keymat import IkeKeys

Endpoint = tuple[str, int]
Link = Literal["ethernet", "raw"]

# pcap file header magic for nanosecond timestamps; link types from the tcpdump.org registry.
_PCAP_MAGIC_NS = 0xA1B23C4D
_LINKTYPE = {"ethernet": 1, "raw": 101}
_SNAPLEN = 262144
_IPV4_HEADER_BYTES = 20
_UDP_HEADER_BYTES = 8
_IP_PROTO_UDP = 17
_TTL = 64


@dataclass(frozen=True)
class CapturedDatagram:
    """One UDP datagram as seen on the wire at `at` seconds."""

    at: float
    src: Endpoint
    dst: Endpoint
    payload: bytes


def parse_endpoint(value: str | Endpoint) -> Endpoint:
    """Parse "192.0.2.1:500" or ("192.0.2.1", 500) into a checked (address, port)."""
    if isinstance(value, str):
        host, sep, port_text = value.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"endpoint {value!r} is not ADDRESS:PORT")
        value = (host, int(port_text))
    host, port = value
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"endpoint address {host!r} is not an IPv4 address") from None
    if not 0 <= int(port) <= 0xFFFF:
        raise ValueError(f"UDP port {port} is out of range")
    return (str(address), int(port))


def _checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum (ones' complement of the ones' complement sum)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_datagram(src: Endpoint, dst: Endpoint, payload: bytes) -> bytes:
    """UDP header + payload with the checksum over the IPv4 pseudo-header (RFC 768)."""
    length = _UDP_HEADER_BYTES + len(payload)
    if length > 0xFFFF - _IPV4_HEADER_BYTES:
        raise ValueError(f"UDP payload of {len(payload)} bytes does not fit one IPv4 datagram")
    src_ip = ipaddress.IPv4Address(src[0]).packed
    dst_ip = ipaddress.IPv4Address(dst[0]).packed
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, _IP_PROTO_UDP, length)
    header = struct.pack("!HHHH", src[1], dst[1], length, 0)
    checksum = _checksum(pseudo + header + payload) or 0xFFFF  # 0 means "none" in UDP
    return struct.pack("!HHHH", src[1], dst[1], length, checksum) + payload


def ipv4_packets(
    src: str, dst: str, ip_payload: bytes, *, identification: int, mtu: int | None = None
) -> list[bytes]:
    """One IPv4 packet, or RFC 791 fragments of at most `mtu` bytes each."""
    if mtu is not None and mtu < 68:
        raise ValueError(f"an IPv4 MTU is at least 68 bytes (RFC 791), not {mtu}")
    limit = mtu if mtu is not None else _IPV4_HEADER_BYTES + len(ip_payload)
    step = (limit - _IPV4_HEADER_BYTES) // 8 * 8  # fragment offsets count 8-byte units
    src_ip = ipaddress.IPv4Address(src).packed
    dst_ip = ipaddress.IPv4Address(dst).packed
    packets = []
    offset = 0
    while True:
        chunk = ip_payload[offset : offset + step] if mtu is not None else ip_payload
        more = offset + len(chunk) < len(ip_payload)
        flags_offset = (0x2000 if more else 0) | (offset // 8)
        total = _IPV4_HEADER_BYTES + len(chunk)
        header = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            total,
            identification & 0xFFFF,
            flags_offset,
            _TTL,
            _IP_PROTO_UDP,
            0,
            src_ip,
            dst_ip,
        )
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        packets.append(header + chunk)
        offset += len(chunk)
        if not more:
            return packets


def _mac(address: str) -> bytes:
    # Locally administered unicast MAC carrying the IPv4 address: stable and readable.
    return b"\x02\x00" + ipaddress.IPv4Address(address).packed


class PcapWriter:
    """Writes a classic pcap (nanosecond timestamps) of UDP datagrams to a binary file.

    `epoch_at` is the Unix time that simulated time 0 maps to (engine clocks start at 0);
    `marker_ports` are the ports on which IKE carries the non-ESP marker.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        link: Link = "ethernet",
        mtu: int | None = None,
        marker_ports: Iterable[int] = (NAT_T_PORT,),
        epoch_at: float = 0.0,
    ) -> None:
        if link not in _LINKTYPE:
            raise ValueError(f"link must be one of {sorted(_LINKTYPE)}, not {link!r}")
        self._file = file
        self._link = link
        self._mtu = mtu
        self._marker_ports = frozenset(marker_ports)
        self._epoch_at = epoch_at
        self._identification = 0
        self.frames = 0
        file.write(struct.pack("<IHHiIII", _PCAP_MAGIC_NS, 2, 4, 0, 0, _SNAPLEN, _LINKTYPE[link]))

    def write(self, at: float, src: str | Endpoint, dst: str | Endpoint, payload: bytes) -> int:
        """Append one datagram; returns how many frames (IP fragments) it took."""
        src, dst = parse_endpoint(src), parse_endpoint(dst)
        # Added in integer nanoseconds: a float near 1.8e9 s only resolves ~0.2 us.
        stamp_ns = round(self._epoch_at * 1e9) + round(at * 1e9)
        if stamp_ns < 0:
            raise ValueError(f"timestamp {at} s is before the Unix epoch")
        if {src[1], dst[1]} & self._marker_ports and not payload.startswith(NON_ESP_MARKER):
            payload = NON_ESP_MARKER + payload
        self._identification += 1
        packets = ipv4_packets(
            src[0],
            dst[0],
            udp_datagram(src, dst, payload),
            identification=self._identification,
            mtu=self._mtu,
        )
        seconds, nanoseconds = divmod(stamp_ns, 1_000_000_000)
        for packet in packets:
            if self._link == "ethernet":
                packet = _mac(dst[0]) + _mac(src[0]) + b"\x08\x00" + packet
            self._file.write(struct.pack("<IIII", seconds, nanoseconds, len(packet), len(packet)))
            self._file.write(packet)
        self.frames += len(packets)
        return len(packets)


Conversation = Iterable["CapturedDatagram | tuple[float, str | Endpoint, str | Endpoint, bytes]"]


def write_pcap(file: BinaryIO, conversation: Conversation, **options: object) -> int:
    """Write a whole conversation; returns the number of frames. Options as `PcapWriter`."""
    writer = PcapWriter(file, **options)  # type: ignore[arg-type]
    for item in conversation:
        if isinstance(item, CapturedDatagram):
            writer.write(item.at, item.src, item.dst, item.payload)
        else:
            writer.write(*item)
    return writer.frames


def pcap_bytes(conversation: Conversation, **options: object) -> bytes:
    """The pcap file of a conversation, as bytes."""
    buffer = io.BytesIO()
    write_pcap(buffer, conversation, **options)
    return buffer.getvalue()


# Wireshark's names for the algorithms (the strings its UAT stores, packet-isakmp.c).
_ENCR_NAMES: dict[tuple[int, int], str] = {
    (EncrId.ENCR_AES_CBC, bits): f"AES-CBC-{bits} [RFC3602]" for bits in (128, 192, 256)
} | {
    (encr, bits): f"AES-GCM-{bits} with {icv} octet ICV [RFC5282]"
    for encr, icv in (
        (EncrId.ENCR_AES_GCM_8, 8),
        (EncrId.ENCR_AES_GCM_12, 12),
        (EncrId.ENCR_AES_GCM_16, 16),
    )
    for bits in (128, 192, 256)
}
_INTEG_NAMES: dict[int, str] = {
    IntegId.NONE: "NONE [RFC4306]",
    IntegId.AUTH_HMAC_SHA1_96: "HMAC_SHA1_96 [RFC2404]",
    IntegId.AUTH_HMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
    IntegId.AUTH_HMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
    IntegId.AUTH_HMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
}


def decryption_table_line(
    *,
    spi_i: bytes,
    spi_r: bytes,
    sk_ei: bytes,
    sk_er: bytes,
    encr: int,
    key_bits: int,
    sk_ai: bytes = b"",
    sk_ar: bytes = b"",
    integ: int | None = None,
) -> str:
    """One `ikev2_decryption_table` record. SK_e* include the salt for AES-GCM (RFC 5282)."""
    if len(spi_i) != 8 or len(spi_r) != 8:
        raise ValueError("IKE SPIs are 8 bytes each (RFC 7296 §3.1)")
    try:
        encr_name = _ENCR_NAMES[(encr, key_bits)]
    except KeyError:
        raise ValueError(f"Wireshark cannot decrypt ENCR {encr} with {key_bits}-bit keys") from None
    try:
        integ_name = _INTEG_NAMES[integ or IntegId.NONE]
    except KeyError:
        raise ValueError(f"Wireshark cannot check INTEG {integ}") from None
    return ",".join(
        [
            spi_i.hex(),
            spi_r.hex(),
            sk_ei.hex(),
            sk_er.hex(),
            f'"{encr_name}"',
            sk_ai.hex(),
            sk_ar.hex(),
            f'"{integ_name}"',
        ]
    )


def decryption_table_line_for(spi_i: bytes, spi_r: bytes, keys: IkeKeys) -> str:
    """The record for one key set of `wansim.ike.keymat` (IkeKeys with its CipherSuite)."""
    cipher = keys.suite.cipher
    return decryption_table_line(
        spi_i=spi_i,
        spi_r=spi_r,
        sk_ei=keys.ei,
        sk_er=keys.er,
        encr=cipher.encr,
        key_bits=cipher.key_bits,
        sk_ai=keys.ai,
        sk_ar=keys.ar,
        integ=cipher.integ,
    )
