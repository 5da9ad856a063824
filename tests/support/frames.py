"""Frame builders and a pcap writer for tests: Ethernet (802.1Q, QinQ), IPv4/IPv6 (+fragments), TCP, UDP,
ICMP, ICMPv6, ARP, DNS; write_pcap(path, [(ts, frame), ...]) writes them. The functions are general but slow;
Dir (at the end) is the fast per-direction template that tests/support/pcapgen.py builds its sessions from.

Checksums are real (IPv4 header, TCP/UDP/ICMPv6 with the pseudo-header, ICMP), so tshark and tcpdump
see well-formed packets. Frames shorter than 60 bytes are zero-padded to 60, as a NIC does on the wire;
the IP total length keeps the real length, so the padding is only visible at the Ethernet layer.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

ETH_IPV4, ETH_IPV6, ETH_ARP, TPID_8021Q, TPID_QINQ = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8
TCP, UDP, ICMP, ICMPV6, IPV6_FRAG = 6, 17, 1, 58, 44
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MIN_FRAME = 60  # Ethernet minimum without the FCS

_REC = struct.Struct("<IIII")


def word_sum(data: bytes) -> int:
    """Sum of the big-endian 16-bit words of data (odd length: padded with a zero byte), not folded."""
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def fold(total: int) -> int:
    """One's-complement checksum from a word sum."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def checksum(data: bytes) -> int:
    return fold(word_sum(data))


def ip_bytes(addr: str | bytes) -> bytes:
    return addr if isinstance(addr, bytes) else ipaddress.ip_address(addr).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Word sum of the IPv4 or IPv6 pseudo-header (by address length)."""
    return word_sum(src) + word_sum(dst) + proto + (length >> 16) + (length & 0xFFFF)


def l2_header(dst: bytes, src: bytes, ethertype: int, vlans: Iterable[tuple[int, int]] = ()) -> bytes:
    """Ethernet header; vlans = [(tpid, vid), ...] outermost first (QinQ: [(0x88a8, s), (0x8100, c)])."""
    out = dst + src
    for tpid, vid in vlans:
        out += struct.pack("!HH", tpid, vid & 0x0FFF)
    return out + struct.pack("!H", ethertype)


def pad(frame: bytes) -> bytes:
    return frame if len(frame) >= MIN_FRAME else frame + bytes(MIN_FRAME - len(frame))


def eth(
    payload: bytes,
    ethertype: int = ETH_IPV4,
    *,
    vlans: Iterable[tuple[int, int]] = (),
    dst: bytes = b"\x02\x00\x00\x00\x00\x02",
    src: bytes = b"\x02\x00\x00\x00\x00\x01",
) -> bytes:
    return pad(l2_header(dst, src, ethertype, vlans) + payload)


def ipv4(
    src: str | bytes,
    dst: str | bytes,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
    tos: int = 0,
    df: bool = True,
    mf: bool = False,
    frag_offset: int = 0,
    total_length: int | None = None,
) -> bytes:
    """IPv4 header (no options) + payload; frag_offset in bytes (multiple of 8)."""
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    length = 20 + len(payload) if total_length is None else total_length
    head = struct.pack("!BBHHHBBH4s4s", 0x45, tos, length, ident, flags, ttl, proto, 0, ip_bytes(src), ip_bytes(dst))
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def ipv6(src: str | bytes, dst: str | bytes, nxt: int, payload: bytes, *, hlim: int = 64, flow: int = 0) -> bytes:
    head = struct.pack("!IHBB16s16s", 0x60000000 | flow, len(payload), nxt, hlim, ip_bytes(src), ip_bytes(dst))
    return head + payload


def tcp(
    src: str | bytes,
    dst: str | bytes,
    sport: int,
    dport: int,
    flags: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    window: int = 64240,
    options: bytes = b"",
) -> bytes:
    """TCP segment with its checksum over the pseudo-header of src/dst (v4 or v6)."""
    s, d = ip_bytes(src), ip_bytes(dst)
    off = (20 + len(options)) // 4
    head = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0) + options
    csum = fold(pseudo_sum(s, d, TCP, len(head) + len(payload)) + word_sum(head + payload))
    return head[:16] + struct.pack("!H", csum) + head[18:] + payload


def udp(src: str | bytes, dst: str | bytes, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = ip_bytes(src), ip_bytes(dst)
    length = 8 + len(payload)
    csum = fold(pseudo_sum(s, d, UDP, length) + word_sum(struct.pack("!HHH", sport, dport, length) + payload))
    return struct.pack("!HHHH", sport, dport, length, csum or 0xFFFF) + payload


def icmp_echo(ident: int, seq: int, payload: bytes = b"", *, reply: bool = False) -> bytes:
    head = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq)
    return head[:2] + struct.pack("!H", checksum(head + payload)) + head[4:] + payload


def icmpv6_echo(src: str | bytes, dst: str | bytes, ident: int, seq: int, payload: bytes = b"", *,
                reply: bool = False) -> bytes:
    head = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, seq)
    csum = fold(pseudo_sum(ip_bytes(src), ip_bytes(dst), ICMPV6, len(head) + len(payload)) + word_sum(head + payload))
    return head[:2] + struct.pack("!H", csum) + head[4:] + payload


def arp(sha: bytes, spa: str | bytes, tpa: str | bytes, *, tha: bytes = bytes(6), reply: bool = False) -> bytes:
    """ARP payload (Ethernet/IPv4); wrap with eth(..., ETH_ARP)."""
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, 2 if reply else 1, sha, ip_bytes(spa), tha, ip_bytes(tpa))


def ipv4_fragments(src: str | bytes, dst: str | bytes, proto: int, data: bytes, *, ident: int, mtu: int = 1500,
                   ttl: int = 64) -> list[bytes]:
    """Split an L4 datagram (header included) into IPv4 fragments; only the first carries the L4 header."""
    step = (mtu - 20) // 8 * 8
    out = []
    for off in range(0, len(data), step):
        chunk = data[off : off + step]
        out.append(ipv4(src, dst, proto, chunk, ident=ident, ttl=ttl, df=False, mf=off + step < len(data),
                        frag_offset=off))
    return out


def ipv6_fragments(src: str | bytes, dst: str | bytes, nxt: int, data: bytes, *, ident: int,
                   mtu: int = 1280) -> list[bytes]:
    """Split an upper-layer datagram into IPv6 packets with a Fragment extension header (8 bytes) each."""
    step = (mtu - 48) // 8 * 8
    out = []
    for off in range(0, len(data), step):
        more = 1 if off + step < len(data) else 0
        frag = struct.pack("!BBHI", nxt, 0, off | more, ident)
        out.append(ipv6(src, dst, IPV6_FRAG, frag + data[off : off + step]))
    return out


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def dns_query(txid: int, name: str, qtype: int = 1) -> bytes:
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 1) + dns_name(name) + struct.pack("!HH", qtype, 1) + \
        b"\0\0\x29\x04\xd0\0\0\0\0\0\0"  # EDNS0 OPT, 1232-byte UDP payload


def dns_response(txid: int, name: str, answers: list[bytes], qtype: int = 1) -> bytes:
    """Answers are RDATA (4 bytes for A, 16 for AAAA); each points back to the question name."""
    head = struct.pack("!HHHHHH", txid, 0x8180, 1, len(answers), 0, 0)
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    rrs = b"".join(struct.pack("!HHHIH", 0xC00C, qtype, 1, 300, len(r)) + r for r in answers)
    return head + question + rrs


class PcapWriter:
    """Classic libpcap writer (microsecond magic, little-endian) over a buffered binary file."""

    def __init__(self, f: BinaryIO, *, linktype: int = 1, snaplen: int = 262144) -> None:
        self.f = f
        self.packets = 0
        self.bytes = 0
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))

    def write_us(self, ts_us: int, frame: bytes) -> None:
        sec, usec = divmod(ts_us, 1_000_000)
        self.f.write(_REC.pack(sec, usec, len(frame), len(frame)))
        self.f.write(frame)
        self.packets += 1
        self.bytes += len(frame)

    def write(self, ts: float, frame: bytes) -> None:
        self.write_us(round(ts * 1_000_000), frame)


# Fast per-direction templates (used by pcapgen): checksums are updated incrementally, payloads are
# prefixes of PAYLOAD whose word sums are precomputed.

K_V4, K_V6, K_FRAG, K_VLAN, K_QINQ, K_PAD, K_ARP = 1, 2, 4, 8, 16, 32, 64
PAYLOAD = random.Random(20240601).randbytes(9216)
_W = struct.unpack(f"!{len(PAYLOAD) // 2}H", PAYLOAD)
PSUM = [0] * (len(PAYLOAD) + 1)  # PSUM[n]: checksum word sum of PAYLOAD[:n]
for _n in range(2, len(PAYLOAD) + 1, 2):
    PSUM[_n] = PSUM[_n - 2] + _W[_n // 2 - 1]
for _n in range(1, len(PAYLOAD) + 1, 2):  # odd length: the last byte is the high half of a padded word
    PSUM[_n] = PSUM[_n - 1] + (PAYLOAD[_n - 1] << 8)
IP4H, IP6H = struct.Struct("!BBHHHBBH4s4s"), struct.Struct("!IHBB16s16s")
TCPH, UDPH, ICMPH = struct.Struct("!HHIIBBHHH"), struct.Struct("!HHHH"), struct.Struct("!BBHHH")
Pkt = tuple[bytes, int, int]  # frame, kind bits, IP length (0 for non-IP)


def _fold(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    return ~((s & 0xFFFF) + (s >> 16)) & 0xFFFF


class Dir:
    """One direction of a session: frames from templates; fields that change are packed per packet."""

    def __init__(self, l2: bytes, kind: int, src: bytes, dst: bytes, sport: int = 0, dport: int = 0) -> None:
        self.l2, self.src, self.dst, self.sport, self.dport = l2, src, dst, sport, dport
        self.v6 = len(src) == 16
        self.kind = kind | (K_V6 if self.v6 else K_V4)
        self.asum = word_sum(src) + word_sum(dst)
        self.ipsum = 0x4500 + 0x4000 + (64 << 8) + self.asum
        self.ident = (self.asum * 7919 + sport) & 0xFFFF
        self.tsum = self.asum + TCP + sport + dport + 0x5000 + 64240
        self.usum = self.asum + UDP + sport + dport

    def ip(self, proto: int, seg: bytes) -> Pkt:
        n = len(seg)
        if self.v6:
            frame, iplen = self.l2 + IP6H.pack(0x60000000, n, proto, 64, self.src, self.dst) + seg, n + 40
        else:
            iplen = n + 20
            self.ident = ident = (self.ident + 1) & 0xFFFF
            c = _fold(self.ipsum + proto + iplen + ident)
            frame = self.l2 + IP4H.pack(0x45, 0, iplen, ident, 0x4000, 64, proto, c, self.src, self.dst) + seg
        if len(frame) < 60:
            return frame + bytes(60 - len(frame)), self.kind | K_PAD, iplen
        return frame, self.kind, iplen

    def raw(self, packet: bytes, extra: int = 0) -> Pkt:
        """An IP packet built elsewhere (frames.py), e.g. a fragment."""
        iplen = struct.unpack_from("!H", packet, 4)[0] + 40 if self.v6 else struct.unpack_from("!H", packet, 2)[0]
        frame = self.l2 + packet
        if len(frame) < 60:
            return frame + bytes(60 - len(frame)), self.kind | extra | K_PAD, iplen
        return frame, self.kind | extra, iplen

    def tcp(self, seq: int, ack: int, flags: int, n: int = 0) -> Pkt:
        c = _fold(self.tsum + 20 + n + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF) + flags + PSUM[n])
        return self.ip(TCP, TCPH.pack(self.sport, self.dport, seq, ack, 0x50, flags, 64240, c, 0) + PAYLOAD[:n])

    def udp(self, n: int, head: bytes = b"") -> Pkt:
        ulen = 8 + len(head) + n  # len(head) must be even (PSUM alignment)
        c = _fold(self.usum + 2 * ulen + (word_sum(head) if head else 0) + PSUM[n]) or 0xFFFF
        return self.ip(UDP, UDPH.pack(self.sport, self.dport, ulen, c) + head + PAYLOAD[:n])

    def icmp(self, typ: int, ident: int, seq: int, n: int) -> Pkt:
        s = (typ << 8) + ident + seq + PSUM[n]
        if self.v6:
            s += self.asum + ICMPV6 + 8 + n
        return self.ip(ICMPV6 if self.v6 else ICMP, ICMPH.pack(typ, 0, _fold(s), ident, seq) + PAYLOAD[:n])


def write_pcap(path: Path | str, records: Iterable[tuple[float, bytes]]) -> int:
    """Write (timestamp in seconds, frame) records to a pcap file; returns the number of packets."""
    with open(path, "wb", buffering=1 << 20) as f:
        w = PcapWriter(f)
        for ts, frame in records:
            w.write(ts, frame)
        return w.packets


SAMPLE_V4, SAMPLE_V6 = ("198.18.0.1", "198.19.0.2"), ("2001:db8::1", "2001:db8::2")


def sample_frames() -> list[bytes]:
    """One frame of each kind the readers tell apart, in this order: QinQ-tagged TCP, 802.1Q-tagged IPv6 UDP, ARP,
    an ICMP echo reply, an IPv4 datagram in three fragments and an IPv6 one in two (addresses SAMPLE_V4/V6)."""
    (a, b), (x, y) = SAMPLE_V4, SAMPLE_V6
    return [
        eth(ipv4(a, b, TCP, tcp(a, b, 1000, 80, SYN)), vlans=[(TPID_QINQ, 7), (TPID_8021Q, 8)]),
        eth(ipv6(x, y, UDP, udp(x, y, 5353, 53, b"q")), ETH_IPV6, vlans=[(TPID_8021Q, 9)]),
        eth(arp(mac("02:00:00:00:00:01"), a, b), ETH_ARP),
        eth(ipv4(b, a, ICMP, icmp_echo(1, 2, b"p" * 56, reply=True))),
        *(eth(p) for p in ipv4_fragments(a, b, UDP, udp(a, b, 7, 9, bytes(3000)), ident=5)),
        *(eth(p, ETH_IPV6) for p in ipv6_fragments(x, y, UDP, udp(x, y, 7, 9, bytes(2000)), ident=6)),
    ]
