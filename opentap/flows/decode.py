"""Packets -> columns: a block of whole pcap records decoded into numpy arrays, all packets at once.

Only the walk over record headers is a Python loop (each record's length gives the next one's offset);
every header field after that is read for the whole batch with fancy indexing and masks. A field that lies
past a packet's captured length (snaplen, a runt frame) reads as 0 and clears the packet's validity bits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
V6_EXT_SIMPLE = (0, 43, 60)  # hop-by-hop, routing, destination options: (len + 1) * 8 bytes
V6_FRAGMENT, V6_AH = 44, 51
PORT_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP
ICMP_PROTOS = (1, 58)


@dataclass
class Packets:
    """One row per packet. Addresses are two uint64 halves; IPv4 lives in `lo` with `hi` = 0."""

    ts_ns: np.ndarray  # int64
    wire_len: np.ndarray  # int64, bytes on the wire
    ip: np.ndarray  # uint8: 4, 6, or 0 for non-IP
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray  # uint16-valued int64; ICMP: 0
    dport: np.ndarray  # ICMP: type * 256 + code, as nfdump shows
    proto: np.ndarray
    vlan: np.ndarray
    tos: np.ndarray
    tcp_flags: np.ndarray
    ip_bytes: np.ndarray  # IPv4 total length, IPv6 payload length + 40
    fragment: np.ndarray  # bool: any fragment (first or later)
    smac: np.ndarray  # uint64
    dmac: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    def take(self, mask: np.ndarray) -> Packets:
        return Packets(**{name: column[mask] for name, column in vars(self).items()})


def record_offsets(buf: bytes | memoryview, end: int, byteorder: str) -> np.ndarray:
    """Offsets of the 16-byte record headers in buf[:end] (which holds whole records only)."""
    caplen_at = struct.Struct(byteorder + "I").unpack_from
    offsets = []
    append = offsets.append
    pos = 0
    while pos < end:
        append(pos)
        pos += 16 + caplen_at(buf, pos + 8)[0]
    return np.array(offsets, dtype=np.int64)


class _Reader:
    """Bounds-checked big-endian reads of one field from every packet at per-packet offsets."""

    def __init__(self, data: np.ndarray, pkt_end: np.ndarray) -> None:
        self.data, self.end, self.last = data, pkt_end, len(data) - 1

    def u(self, off: np.ndarray, size: int, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(value, ok & the field lies within the captured bytes)."""
        ok = ok & (off + size <= self.end)
        value = np.zeros(len(off), dtype=np.uint64)
        for i in range(size):
            byte = self.data[np.minimum(off + i, self.last)].astype(np.uint64)
            value = (value << np.uint64(8)) | byte
        return np.where(ok, value, np.uint64(0)), ok


def decode(buf: bytes | memoryview, end: int, byteorder: str, nanosecond: bool) -> Packets:
    """Decode the Ethernet records in buf[:end] (whole records, as pcapfile yields them)."""
    rec = record_offsets(buf, end, byteorder)
    data = np.frombuffer(buf, dtype=np.uint8, count=end)
    # gather the 16-byte record headers into rows, then read them as 4 words in the file's byte order
    headers = data[rec[:, None] + np.arange(16)].view(np.dtype(byteorder + "u4")).astype(np.int64)
    sec, frac, caplen, wire = headers[:, 0], headers[:, 1], headers[:, 2], headers[:, 3]
    n = len(rec)
    ts = sec * 1_000_000_000 + frac * (1 if nanosecond else 1000)
    start = rec + 16
    rd = _Reader(data, start + caplen)
    everything = np.ones(n, dtype=bool)

    dmac, eth_ok = rd.u(start, 6, everything)
    smac, _ = rd.u(start + 6, 6, everything)
    ethertype, eth_ok = rd.u(start + 12, 2, eth_ok)
    l3 = start + 14
    vlan = np.zeros(n, dtype=np.uint64)
    tagged_any = np.zeros(n, dtype=bool)
    for _ in range(2):  # 802.1Q, and QinQ's outer 802.1ad tag: the outer id is the flow's VLAN
        tagged = eth_ok & np.isin(ethertype, VLAN_TAGS)
        tci, _ = rd.u(l3, 2, tagged)
        vlan = np.where(tagged & ~tagged_any, tci & np.uint64(0x0FFF), vlan)
        tagged_any |= tagged
        inner, tag_ok = rd.u(l3 + 2, 2, tagged)
        ethertype = np.where(tagged, inner, ethertype)
        eth_ok = np.where(tagged, tag_ok, eth_ok)
        l3 = np.where(tagged, l3 + 4, l3)

    is4 = eth_ok & (ethertype == ETH_IPV4)
    is6 = eth_ok & (ethertype == ETH_IPV6)
    # IPv4
    ver_ihl, is4 = rd.u(l3, 1, is4)
    is4 &= (ver_ihl >> np.uint64(4)) == 4
    tos4, _ = rd.u(l3 + 1, 1, is4)
    total_len, _ = rd.u(l3 + 2, 2, is4)
    frag_field, _ = rd.u(l3 + 6, 2, is4)
    proto4, _ = rd.u(l3 + 9, 1, is4)
    src4, is4 = rd.u(l3 + 12, 4, is4)
    dst4, is4 = rd.u(l3 + 16, 4, is4)
    frag4 = is4 & ((frag_field & np.uint64(0x3FFF)) != 0)
    later4 = is4 & ((frag_field & np.uint64(0x1FFF)) != 0)
    l4_4 = l3 + ((ver_ihl & np.uint64(0x0F)).astype(np.int64) * 4)
    # IPv6
    first_word, is6 = rd.u(l3, 4, is6)
    is6 &= (first_word >> np.uint64(28)) == 6
    tos6 = (first_word >> np.uint64(20)) & np.uint64(0xFF)
    payload_len, _ = rd.u(l3 + 4, 2, is6)
    nh, _ = rd.u(l3 + 6, 1, is6)
    s6hi, _ = rd.u(l3 + 8, 8, is6)
    s6lo, _ = rd.u(l3 + 16, 8, is6)
    d6hi, _ = rd.u(l3 + 24, 8, is6)
    d6lo, is6 = rd.u(l3 + 32, 8, is6)
    l4_6 = l3 + 40
    frag6 = np.zeros(n, dtype=bool)
    later6 = np.zeros(n, dtype=bool)
    walking = is6.copy()
    for _ in range(6):  # follow the extension header chain to the upper-layer protocol
        simple = walking & np.isin(nh, V6_EXT_SIMPLE)
        fragment = walking & (nh == V6_FRAGMENT)
        ah = walking & (nh == V6_AH)
        ext = simple | fragment | ah
        if not ext.any():
            break
        next_nh, ext_ok = rd.u(l4_6, 1, ext)
        ext_len, _ = rd.u(l4_6 + 1, 1, simple | ah)
        offset_field, _ = rd.u(l4_6 + 2, 2, fragment)
        frag6 |= fragment
        later6 |= fragment & ((offset_field >> np.uint64(3)) != 0)
        size = np.where(simple, (ext_len.astype(np.int64) + 1) * 8,
                        np.where(ah, (ext_len.astype(np.int64) + 2) * 4, 8))
        nh = np.where(ext & ext_ok, next_nh, np.where(ext, np.uint64(255), nh))  # cut chain: unknown
        l4_6 = np.where(ext, l4_6 + size, l4_6)
        walking = ext & ext_ok & ~(fragment & ((offset_field >> np.uint64(3)) != 0))

    ip = np.where(is4, 4, np.where(is6, 6, 0)).astype(np.uint8)
    is_ip = ip != 0
    proto = np.where(is4, proto4, np.where(is6, nh, 0))
    later = later4 | later6
    l4 = np.where(is4, l4_4, l4_6)
    ported = is_ip & ~later & np.isin(proto, PORT_PROTOS)
    sport, ported_ok = rd.u(l4, 2, ported)
    dport, _ = rd.u(l4 + 2, 2, ported_ok)
    tcp = ported & (proto == 6)
    flags, _ = rd.u(l4 + 13, 1, tcp)
    icmp = is_ip & ~later & np.isin(proto, ICMP_PROTOS)
    icmp_tc, _ = rd.u(l4, 2, icmp)  # type and code: type * 256 + code is the big-endian 16-bit word
    dport = np.where(icmp, icmp_tc, dport)
    zero = np.uint64(0)
    return Packets(
        ts_ns=ts, wire_len=wire, ip=ip,
        src_hi=np.where(is6, s6hi, zero), src_lo=np.where(is6, s6lo, np.where(is4, src4, zero)),
        dst_hi=np.where(is6, d6hi, zero), dst_lo=np.where(is6, d6lo, np.where(is4, dst4, zero)),
        sport=sport.astype(np.int64), dport=dport.astype(np.int64), proto=proto.astype(np.int64),
        vlan=np.where(is_ip, vlan, zero).astype(np.int64),
        tos=np.where(is4, tos4, np.where(is6, tos6, zero)).astype(np.int64),
        tcp_flags=flags.astype(np.int64),
        ip_bytes=np.where(is4, total_len, np.where(is6, payload_len + np.uint64(40), zero)).astype(np.int64),
        fragment=frag4 | frag6, smac=smac, dmac=dmac,
    )
