"""Per-packet CSV export of capture chunks, streamed line by line.

Decoding is deliberately shallow (L2 to L4 ports) and never raises on short packets: a capture
cut by snaplen or a malformed frame yields the fields that could be read and empty ones after.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from opentap.pcap.pcapfile import Damage, iter_packets

CSV_COLUMNS = [
    "time",
    "src_mac",
    "dst_mac",
    "ethertype",
    "vlan",
    "src_ip",
    "dst_ip",
    "protocol",
    "src_port",
    "dst_port",
    "length",
]

LINKTYPE_ETHERNET = 1
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, legacy QinQ
_IPV6_EXT = frozenset({0, 43, 44, 51, 60})  # hop-by-hop, routing, fragment, AH, destination options
_PORT_PROTOS = frozenset({6, 17, 132})  # TCP, UDP, SCTP
_PROTO_NAMES = {
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    132: "SCTP",
}
# Indexes into the per-packet field list (CSV_COLUMNS minus time and length).
_SRC_MAC, _DST_MAC, _ETYPE, _VLAN, _SRC_IP, _DST_IP, _PROTO, _SPORT, _DPORT = range(9)

_u16 = struct.Struct(">H").unpack_from
_ports = struct.Struct(">HH").unpack_from
_ntoa = socket.inet_ntoa


def _proto_name(number: int) -> str:
    return _PROTO_NAMES.get(number) or str(number)


@functools.lru_cache(maxsize=4096)  # ipaddress formatting is slow; addresses repeat a lot
def _ipv6_text(packed: bytes) -> str:
    return str(ipaddress.IPv6Address(packed))


def _l4_ports(data: bytes, off: int, row: list[str]) -> None:
    # Source and destination port are the first two 16-bit words of TCP, UDP and SCTP alike.
    if len(data) >= off + 4:
        sport, dport = _ports(data, off)
        row[_SPORT] = str(sport)
        row[_DPORT] = str(dport)


def _ipv4(data: bytes, off: int, row: list[str]) -> None:
    n = len(data)
    if n < off + 10:
        return
    ihl = (data[off] & 0x0F) * 4
    proto = data[off + 9]
    row[_PROTO] = _proto_name(proto)
    if n < off + 16:
        return
    row[_SRC_IP] = _ntoa(data[off + 12 : off + 16])
    if n < off + 20:
        return
    row[_DST_IP] = _ntoa(data[off + 16 : off + 20])
    # Only the first fragment (offset 0) carries the L4 header; later ones start mid-payload.
    if proto in _PORT_PROTOS and _u16(data, off + 6)[0] & 0x1FFF == 0 and ihl >= 20:
        _l4_ports(data, off + ihl, row)


def _ipv6(data: bytes, off: int, row: list[str]) -> None:
    n = len(data)
    if n < off + 24:
        return
    nh = data[off + 6]
    row[_SRC_IP] = _ipv6_text(data[off + 8 : off + 24])
    if n < off + 40:
        return
    row[_DST_IP] = _ipv6_text(data[off + 24 : off + 40])
    p = off + 40
    first_fragment = True
    # Walk the extension header chain to the upper-layer protocol; if the chain is cut short
    # the protocol stays empty rather than naming an extension header.
    while nh in _IPV6_EXT:
        if n < p + 8:  # every extension header is at least 8 bytes
            return
        if nh == 44:  # fragment: fixed 8 bytes; the offset sits in the top 13 bits
            first_fragment = _u16(data, p + 2)[0] >> 3 == 0
            nh, p = data[p], p + 8
            if not first_fragment:
                break  # later fragments hold payload, not further headers
        elif nh == 51:  # AH counts its length in 4-byte units, minus 2
            nh, p = data[p], p + (data[p + 1] + 2) * 4
        else:  # hop-by-hop, routing, destination options: 8-byte units, minus 1
            nh, p = data[p], p + (data[p + 1] + 1) * 8
    row[_PROTO] = _proto_name(nh)
    if first_fragment and nh in _PORT_PROTOS:
        _l4_ports(data, p, row)


def _arp(data: bytes, off: int, row: list[str]) -> None:
    row[_PROTO] = "ARP"
    if len(data) < off + 6:
        return
    hlen, plen = data[off + 4], data[off + 5]
    spa = off + 8 + hlen  # sender protocol address follows the sender hardware address
    tpa = spa + plen + hlen
    for col, start in ((_SRC_IP, spa), (_DST_IP, tpa)):
        addr = data[start : start + plen]
        if len(addr) < plen:
            return
        if plen == 4:
            row[col] = _ntoa(addr)
        elif plen == 16:
            row[col] = _ipv6_text(addr)


def _ethernet(data: bytes) -> list[str]:
    row = [""] * 9
    n = len(data)
    if n >= 6:
        row[_DST_MAC] = data[0:6].hex(":")
    if n >= 12:
        row[_SRC_MAC] = data[6:12].hex(":")
    return _from_ethertype(data, 12, row)


def _from_ethertype(data: bytes, off: int, row: list[str]) -> list[str]:
    """The EtherType at data[off] (after any VLAN tags) and what follows it."""
    n = len(data)
    while True:
        if n < off + 2:
            return row
        etype = _u16(data, off)[0]
        if etype not in _VLAN_TPIDS:
            break
        if n < off + 4:
            return row
        if not row[_VLAN]:  # the outer tag (service VLAN for QinQ) is the one reported
            row[_VLAN] = str(_u16(data, off + 2)[0] & 0x0FFF)
        off += 4
    off += 2
    if etype < 0x0600:
        return row  # 802.3 length field (LLC/SNAP follows), not an EtherType
    row[_ETYPE] = f"0x{etype:04x}"
    if etype == 0x0800:
        _ipv4(data, off, row)
    elif etype == 0x86DD:
        _ipv6(data, off, row)
    elif etype == 0x0806:
        _arp(data, off, row)
    return row


def _time_ms(timestamp_ns: int) -> str:
    # Integer arithmetic: epoch milliseconds with exactly three (microsecond) decimals.
    us = timestamp_ns // 1000
    return f"{us // 1000}.{us % 1000:03d}"


def _cooked(data: bytes, v2: bool) -> list[str]:
    """Linux cooked captures (what `tcpdump -i any` writes): SLL (16 bytes: packet type, ARPHRD type, address
    length, address, protocol) and SLL2 (20 bytes: protocol, reserved, ifindex, ARPHRD, packet type, address
    length, address). The address is the source's; there is no destination MAC."""
    row = [""] * 9
    alen_at, addr_at, proto_at = (11, 12, 0) if v2 else (4, 6, 14)
    if len(data) < (20 if v2 else 16):
        return row
    alen = data[alen_at] if v2 else _u16(data, alen_at)[0]
    if alen == 6:
        row[_SRC_MAC] = data[addr_at : addr_at + 6].hex(":")
    if v2:  # the protocol sits in front: put it where the payload starts, as in SLL and Ethernet
        return _from_ethertype(data[0:2] + data[20:], 0, row)
    return _from_ethertype(data, proto_at, row)


def _ip_only(data: bytes, off: int) -> list[str]:
    """An IP header at data[off], its version from its first nibble (raw IP, loopback, PPP)."""
    row = [""] * 9
    if len(data) > off:
        version = data[off] >> 4
        if version == 4:
            row[_ETYPE] = "0x0800"
            _ipv4(data, off, row)
        elif version == 6:
            row[_ETYPE] = "0x86dd"
            _ipv6(data, off, row)
    return row


_IP_AT = {0: 4, 108: 4, 101: 0, 12: 0, 14: 0, 228: 0, 229: 0}  # NULL and LOOP: a 4-byte family; raw IP


def packet_fields(linktype: int, data: bytes) -> list[str]:
    """The nine fields between ``time`` and ``length``; all empty for unsupported link types."""
    if linktype == LINKTYPE_ETHERNET:
        return _ethernet(data)
    if linktype in (113, 276):
        return _cooked(data, linktype == 276)
    if linktype in _IP_AT:
        return _ip_only(data, _IP_AT[linktype])
    if linktype in (9, 50):  # PPP, with or without HDLC framing: IPv4 0x0021, IPv6 0x0057
        off = 2 if data[:2] == b"\xff\x03" else 0
        if data[off : off + 2] in (b"\x00\x21", b"\x00\x57"):
            return _ip_only(data, off + 2)
    return [""] * 9


def csv_lines(paths: Sequence[Path], damage: list[Damage] | None = None) -> Iterator[str]:
    """The CSV header line, then one line per whole packet of the chunks, each ending in a newline. damage:
    as for pcapfile's readers (a damaged chunk ends at its last good record and is listed there).

    No quoting is needed: every field is generated here and none can contain a comma.
    """
    yield ",".join(CSV_COLUMNS) + "\n"
    for timestamp_ns, orig_len, linktype, data in iter_packets(paths, damage):  # pcapng: a link type per interface
        fields = packet_fields(linktype, data)
        yield f"{_time_ms(timestamp_ns)},{','.join(fields)},{orig_len}\n"
