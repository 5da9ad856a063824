"""Deterministic, realistic pcap generator for flow-meter tests and benchmarks.

generate(path, packets, seed) writes a classic libpcap file (microsecond magic, linktype 1) as a stream with
bounded memory: sessions interleave through a heap ordered by their next packet time; each session is a
generator building its frames from per-direction templates (prebuilt L2 header, address sums for the
incremental IPv4/TCP/UDP/ICMP checksums, payloads that are prefixes of one fixed buffer).

Traffic: TCP sessions (SYN/SYN-ACK with options, ACK, requests and responses both ways, FIN/ACK or RST
teardown, a few left open), DNS over UDP 53 (v4 and v6), RTP-like constant-rate UDP, ICMP and ICMPv6 echo,
IPv4 fragments (UDP and ICMP; some sent last fragment first), IPv6 fragments (Fragment header), ARP; any
session may be untagged, 802.1Q or QinQ (0x88a8 outer + 0x8100 inner). Frames under 60 bytes are padded
to 60 (the IP length stays the real one). Long-lived flows span the whole capture (so > active_timeout when
duration allows it); idle flows pause idle_gap..idle_gap+10 s mid-flow. Addresses: 198.18.0.0/15 and
2001:db8::/32 only. Timestamps strictly increase. Run: python -m tests.support.pcapgen OUT.pcap PACKETS [SEED].
"""

from __future__ import annotations

import heapq
import random
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import frames as F
from .frames import K_ARP, K_FRAG, K_PAD, K_QINQ, K_V4, K_V6, K_VLAN, PAYLOAD, Dir, Pkt

REC = struct.Struct("<IIII")
ROUTER_MAC = b"\x02\x00\x00\x00\x00\xfe"


@dataclass
class GenStats:
    """Counts of what was written. Categories overlap: an ARP frame (non_ip) may be QinQ-tagged too."""

    packets: int = 0
    ipv4: int = 0
    ipv6: int = 0
    non_ip: int = 0  # ARP
    fragments: int = 0  # IP packets that are fragments (first and non-first, v4 and v6)
    vlan: int = 0  # exactly one 802.1Q tag
    qinq: int = 0  # 0x88a8 + 0x8100
    padded: int = 0  # frames padded to 60 bytes
    frame_bytes: int = 0  # sum of captured frame lengths
    ip_bytes: int = 0  # sum of IPv4 total length / IPv6 payload length + 40
    first_ts: float = 0.0
    last_ts: float = 0.0
    sessions: dict[str, int] = field(default_factory=dict)

    @property
    def ip_packets(self) -> int:
        return self.ipv4 + self.ipv6

    @property
    def duration(self) -> float:
        return self.last_ts - self.first_ts


class _Gen:
    def __init__(self, rng: random.Random, t0: int, duration: float, idle_gap: float, v6: float, vlan: float,
                 qinq: float) -> None:
        self.r, self.t0, self.end, self.idle_gap = rng, t0, t0 + int(duration * 1e6), idle_gap
        self.v6, self.vlan, self.qinq = v6, vlan, qinq
        self.sessions: dict[str, int] = {}
        self.forced: tuple[bool, str] | None = None  # (IPv6, "" / "vlan" / "qinq") for the next pair()

    def pair(self, v6: bool | None = None, sport: int = 0, dport: int = 0, server: int = -1) -> tuple[Dir, Dir]:
        r = self.r
        c, s = r.randrange(1, 8000), server if server >= 0 else r.randrange(1, 400)
        six = r.random() < self.v6 if v6 is None else v6
        x = r.random()
        encap = "qinq" if x < self.qinq else "vlan" if x < self.qinq + self.vlan else ""
        if self.forced:
            (six, encap), self.forced = self.forced, None
        if six:
            ca, sa = F.ip_bytes(f"2001:db8:c::{c:x}"), F.ip_bytes(f"2001:db8:5::{s:x}")
        else:
            ca, sa = bytes((198, 18, c >> 8, c & 255)), bytes((198, 19, s >> 8, s & 255))
        tags, kind = [], 0
        if encap == "qinq":
            tags, kind = [(F.TPID_QINQ, r.randrange(2, 4000)), (F.TPID_8021Q, r.randrange(2, 4000))], K_QINQ
        elif encap == "vlan":
            tags, kind = [(F.TPID_8021Q, r.randrange(2, 4000))], K_VLAN
        cmac, et = b"\x02\x00\xc0\x00" + c.to_bytes(2, "big"), F.ETH_IPV6 if six else F.ETH_IPV4
        return (Dir(F.l2_header(ROUTER_MAC, cmac, et, tags), kind, ca, sa, sport, dport),
                Dir(F.l2_header(cmac, ROUTER_MAC, et, tags), kind, sa, ca, dport, sport))

    def eph(self) -> int:
        return self.r.randrange(32768, 61000)

    MIX = (("tcp", 38, 16), ("dns", 32, 2), ("icmp", 9, 5), ("frag", 4, 6), ("arp", 6, 2), ("rtp", 0.3, 1360),
           ("bulk", 0.7, 550))  # (kind, weight in sessions, estimated packets)

    def new(self, t: int) -> tuple[int, Iterator[tuple]]:
        """A random session starting at t: (estimated packets, generator)."""
        name, _, est = self.r.choices(self.MIX, weights=[m[1] for m in self.MIX])[0]
        return est, self.make(name, t)

    def make(self, name: str, t: int) -> Iterator[tuple]:
        r = self.r
        self.sessions[name] = self.sessions.get(name, 0) + 1
        if name == "tcp":
            ex = [(r.randrange(60, 1400), min(3_000_000, int(r.paretovariate(1.3) * 400)))
                  for _ in range(r.choice((1, 1, 2, 3)))]
            return self.tcp(t, ex)
        if name == "bulk":
            return self.tcp(t, [(r.randrange(100, 600), r.randrange(50_000, 1_000_000))])
        if name == "ping":
            return self.frag(t, ping=True)
        return getattr(self, name)(t)

    def tcp(self, t: int, exchanges: list[tuple[int, int]], gap_at: int = -1, until: int = 0) -> Iterator[tuple]:
        r = self.r
        c, s = self.pair(None, self.eph(), r.choice((80, 443, 443, 443, 22, 8080, 25, 993, 3306)))
        mss, rtt = 1440 if c.v6 else 1460, r.randrange(300, 120_000)
        cs, ss = r.getrandbits(32), r.getrandbits(32)
        opts = b"\x02\x04" + mss.to_bytes(2, "big") + b"\x04\x02\x08\x0a" + bytes(8) + b"\x01\x03\x03\x07"
        yield t, *c.raw(_ip(c, F.TCP, F.tcp(c.src, c.dst, c.sport, c.dport, F.SYN, seq=cs, options=opts)))
        t += rtt
        syn_ack = F.tcp(s.src, s.dst, s.sport, s.dport, F.SYN | F.ACK, seq=ss, ack=cs + 1, options=opts)
        yield t, *s.raw(_ip(s, F.TCP, syn_ack))
        cs, ss = (cs + 1) & 0xFFFFFFFF, (ss + 1) & 0xFFFFFFFF
        t += 40
        yield t, *c.tcp(cs, ss, F.ACK)
        for i, (req, resp) in enumerate(exchanges):
            if i == gap_at:
                t += int((self.idle_gap + r.uniform(0.5, 10)) * 1e6)
            while until and t < until:  # long-lived: small keepalive exchanges until the given time
                t += r.randrange(500_000, 3_000_000)
                n = r.randrange(36, 120)
                yield t, *c.tcp(cs, ss, F.PSH | F.ACK, n)
                cs = (cs + n) & 0xFFFFFFFF
                t += rtt
                m = r.randrange(36, 300)
                yield t, *s.tcp(ss, cs, F.PSH | F.ACK, m)
                ss = (ss + m) & 0xFFFFFFFF
                t += 30
                yield t, *c.tcp(cs, ss, F.ACK)
            t += r.randrange(50, 5000)
            yield t, *c.tcp(cs, ss, F.PSH | F.ACK, req)
            cs = (cs + req) & 0xFFFFFFFF
            t += rtt + r.randrange(20, 3000)
            yield t, *s.tcp(ss, cs, F.ACK)
            k = 0
            while resp > 0:
                n = min(resp, mss)
                resp -= n
                t += r.randrange(15, 250)
                yield t, *s.tcp(ss, cs, F.PSH | F.ACK if resp == 0 else F.ACK, n)
                ss, k = (ss + n) & 0xFFFFFFFF, k + 1
                if k % 2 == 0 or resp == 0:
                    t += r.randrange(10, 60)
                    yield t, *c.tcp(cs, ss, F.ACK)
        t += r.randrange(100, 200_000)
        end = r.random()
        if end < 0.84:
            a, b, sa, sb = (c, s, cs, ss) if r.random() < 0.6 else (s, c, ss, cs)
            yield t, *a.tcp(sa, sb, F.FIN | F.ACK)
            t += rtt
            yield t, *b.tcp(sb, (sa + 1) & 0xFFFFFFFF, F.FIN | F.ACK)
            t += 40
            yield t, *a.tcp((sa + 1) & 0xFFFFFFFF, (sb + 1) & 0xFFFFFFFF, F.ACK)
        elif end < 0.96:
            a, sa = (c, cs) if r.random() < 0.5 else (s, ss)
            yield t, *a.tcp(sa, 0, F.RST)
        # else: left open (capture ends first, or the peers just went quiet)

    def dns(self, t: int) -> Iterator[tuple]:
        r = self.r
        c, s = self.pair(None, self.eph(), 53, server=r.choice((53, 153)))
        txid, name = r.getrandbits(16), f"h{r.randrange(100000)}.example.{r.choice(('com', 'net', 'org'))}"
        qtype, rlen = (28, 16) if c.v6 and r.random() < 0.7 else (1, 4)
        yield t, *c.raw(_ip(c, F.UDP, F.udp(c.src, c.dst, c.sport, 53, F.dns_query(txid, name, qtype))))
        if r.random() < 0.95:
            t += r.randrange(200, 80_000)
            ans = [r.randbytes(rlen) for _ in range(r.randrange(1, 5))]
            yield t, *s.raw(_ip(s, F.UDP, F.udp(s.src, s.dst, 53, s.dport, F.dns_response(txid, name, ans, qtype))))

    def icmp(self, t: int) -> Iterator[tuple]:
        r = self.r
        c, s = self.pair()
        ident, n, rtt = r.getrandbits(16), r.choice((56, 56, 32, 8, 1400)), r.randrange(200, 100_000)
        req, rep = (128, 129) if c.v6 else (8, 0)
        for seq in range(1, r.randrange(2, 6)):
            yield t, *c.icmp(req, ident, seq, n)
            if r.random() < 0.97:
                yield t + rtt, *s.icmp(rep, ident, seq, n)
            t += 1_000_000 + r.randrange(-2000, 2000)

    def frag(self, t: int, ping: bool | None = None) -> Iterator[tuple]:
        """Datagrams over the MTU: a UDP response (v4 or v6) or both echoes of a big v4 ping."""
        r = self.r
        c, s = self.pair(r.random() < 0.3, self.eph(), r.choice((2049, 5001, 7001, 9000)))  # no tunnel ports
        if not c.v6 and (r.random() < 0.3 if ping is None else ping):
            ident, data = r.getrandbits(16), PAYLOAD[: r.randrange(1600, 4000)]
            todo, proto = [(c, F.icmp_echo(ident, 1, data)), (s, F.icmp_echo(ident, 1, data, reply=True))], F.ICMP
        else:
            yield t, *c.udp(r.randrange(40, 300))
            todo, proto = [(s, F.udp(s.src, s.dst, s.sport, s.dport, PAYLOAD[: r.randrange(1500, 9000)]))], F.UDP
        for d, data in todo:
            t += r.randrange(300, 50_000)
            if d.v6:
                parts = F.ipv6_fragments(d.src, d.dst, proto, data, ident=r.getrandbits(32))
            else:
                parts = F.ipv4_fragments(d.src, d.dst, proto, data, ident=r.getrandbits(16))
            if r.random() < 0.15:
                parts.reverse()  # some stacks send the last fragment first
            for p in parts:
                t += r.randrange(15, 200)
                yield t, *d.raw(p, K_FRAG)

    def arp(self, t: int) -> Iterator[tuple]:
        r = self.r
        c, s = self.pair(False)
        cmac = c.l2[6:12]
        req = F.arp(cmac, c.src, s.src)
        yield t, *_l2(F.l2_header(b"\xff" * 6, cmac, F.ETH_ARP, _tags(c.l2)) + req, c.kind)
        if r.random() < 0.9:
            rep = F.arp(ROUTER_MAC, s.src, c.src, tha=cmac, reply=True)
            yield t + r.randrange(50, 2000), *_l2(F.l2_header(cmac, ROUTER_MAC, F.ETH_ARP, _tags(c.l2)) + rep, c.kind)

    def rtp(self, t: int, until: int = 0) -> Iterator[tuple]:
        r = self.r
        port = r.randrange(8192, 16384) * 2
        c, s = self.pair(None, port, port + r.choice((0, 2, 10)))
        both, ssrc = r.random() < 0.7, (r.getrandbits(32), r.getrandbits(32))
        n = r.randrange(100, 1500) if not until else 1 << 30
        for i in range(n):
            if until and t >= until:
                break
            for k, d in enumerate((c, s) if both else (c,)):
                head = struct.pack("!BBHII", 0x80, 0, (i + 1) & 0xFFFF, 160 * i & 0xFFFFFFFF, ssrc[k])
                yield t + k * r.randrange(100, 3000), *d.udp(160, head)
            t += 20_000 if not until else 1_000_000

    def idle(self, t: int) -> Iterator[tuple]:
        """A flow with one idle gap longer than idle_gap: TCP (gap between two exchanges) or UDP."""
        r = self.r
        if r.random() < 0.5:
            yield from self.tcp(t, [(r.randrange(60, 600), r.randrange(100, 5000)) for _ in range(2)], gap_at=1)
            return
        c, _ = self.pair(None, self.eph(), r.choice((514, 123, 161)))
        for part in range(2):
            for _ in range(r.randrange(3, 10)):
                yield t, *c.udp(r.randrange(20, 400))
                t += r.randrange(200_000, 1_500_000)
            if part == 0:
                t += int((self.idle_gap + r.uniform(0.5, 10)) * 1e6)

    def long(self, t: int) -> Iterator[tuple]:
        """A flow from the start to the end of the capture: TCP keepalive exchanges, or one slow UDP stream."""
        if self.r.random() < 0.5:
            return self.tcp(t, [(100, 400)], until=self.end)
        return self.rtp(t, until=self.end)


def _ip(d: Dir, proto: int, seg: bytes) -> bytes:
    return F.ipv6(d.src, d.dst, proto, seg) if d.v6 else F.ipv4(d.src, d.dst, proto, seg, ident=d.ident)


def _tags(l2: bytes) -> list[tuple[int, int]]:
    out, off = [], 12
    while int.from_bytes(l2[off : off + 2], "big") in (F.TPID_8021Q, F.TPID_QINQ):
        out.append((int.from_bytes(l2[off : off + 2], "big"), int.from_bytes(l2[off + 2 : off + 4], "big")))
        off += 4
    return out


def _l2(frame: bytes, kind: int) -> Pkt:
    kind = (kind & (K_VLAN | K_QINQ)) | K_ARP | (K_PAD if len(frame) < 60 else 0)
    return F.pad(frame), kind, 0


COVERAGE = (  # (session, IPv6, encapsulation)
    ("tcp", False, "vlan"), ("tcp", True, "qinq"), ("tcp", False, ""), ("dns", False, ""), ("dns", True, "vlan"),
    ("icmp", False, ""), ("icmp", True, "qinq"), ("frag", False, ""), ("frag", True, "vlan"), ("ping", False, ""),
    ("arp", False, "vlan"), ("rtp", True, ""), ("bulk", False, ""))


def generate(path: Path | str, packets: int, seed: int = 1, start_ts: float = 1_700_000_000.0, *,
             duration: float | None = None, active_timeout: float = 60.0, idle_gap: float = 16.0,
             long_flows: int | None = None, idle_flows: int | None = None, ipv6_share: float = 0.2,
             vlan_share: float = 0.2, qinq_share: float = 0.05, coverage: bool = True) -> GenStats:
    """Write `packets` packets to path. duration (default: max(2.5 * active_timeout, packets / 8000) s) is
    the target capture length; long_flows (default 3 + packets // 200_000) span it all; idle_flows (default
    2 + packets // 25_000) each pause > idle_gap once; coverage starts one session of each sort (COVERAGE)
    at the beginning."""
    rng = random.Random(seed)
    duration = duration or max(2.5 * active_timeout, packets / 8000)
    n_long = 3 + packets // 200_000 if long_flows is None else long_flows
    n_idle = 2 + packets // 25_000 if idle_flows is None else idle_flows
    t0 = int(round(start_ts * 1e6))
    g = _Gen(rng, t0, duration, idle_gap, ipv6_share, vlan_share, qinq_share)
    heap: list[tuple] = []
    cnt = 0

    def start(gen: Iterator[tuple]) -> None:
        nonlocal cnt
        pkt = next(gen, None)
        if pkt is not None:
            heapq.heappush(heap, (pkt[0], cnt, pkt, gen))
            cnt += 1

    if coverage:  # one session of each sort first, so that even a small capture has every feature
        for k, (name, six, encap) in enumerate(COVERAGE):
            g.forced = (six, encap)
            start(g.make(name, t0 + k * 1000))
    for i in range(n_long):
        start(g.long(t0 + i * 7919))
    latest = int(min(0.3 * duration, max(0.0, duration - idle_gap - 25)) * 1e6)  # early: the gap must fit
    for _ in range(n_idle):
        start(g.idle(t0 + rng.randrange(0, latest + 1)))
    g.sessions.update(long=n_long, idle=n_idle)
    est = {m[0]: m[2] for m in g.MIX} | {"ping": 6}
    planned = n_long * 2 * duration / 1.5 + n_idle * 14 + (sum(est[c[0]] for c in COVERAGE) if coverage else 0)
    rate = max(1.0, packets - planned) / duration  # packets per second left for random sessions
    arrival, last, first = t0, t0 - 1, 0
    kinds = [0] * 128
    frame_bytes = ip_bytes = 0
    with open(path, "wb", buffering=1 << 20) as f:
        write = f.write
        write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        done = 0
        while done < packets:
            if not heap or arrival <= heap[0][0]:
                est, gen = g.new(arrival)
                start(gen)
                arrival += max(1, int(est / rate * 1e6 * rng.expovariate(1.0)))
                continue
            ts, _, pkt, gen = heapq.heappop(heap)
            last = ts = ts if ts > last else last + 1
            first = first or ts
            frame = pkt[1]
            sec, usec = divmod(ts, 1_000_000)
            write(REC.pack(sec, usec, len(frame), len(frame)))
            write(frame)
            kinds[pkt[2]] += 1
            frame_bytes += len(frame)
            ip_bytes += pkt[3]
            done += 1
            nxt = next(gen, None)
            if nxt is not None:
                heapq.heappush(heap, (nxt[0], cnt, nxt, gen))
                cnt += 1
    st = GenStats(packets=done, frame_bytes=frame_bytes, ip_bytes=ip_bytes, first_ts=first / 1e6,
                  last_ts=last / 1e6 if done else 0.0, sessions=dict(sorted(g.sessions.items())))
    for name, bit in (("ipv4", K_V4), ("ipv6", K_V6), ("non_ip", K_ARP), ("fragments", K_FRAG), ("vlan", K_VLAN),
                      ("qinq", K_QINQ), ("padded", K_PAD)):
        setattr(st, name, sum(n for k, n in enumerate(kinds) if k & bit))
    return st


if __name__ == "__main__":
    began = time.perf_counter()
    stats = generate(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    took = time.perf_counter() - began
    print(f"{stats}\n{stats.packets} packets in {took:.1f} s ({stats.packets / took:,.0f} packets/s)")
