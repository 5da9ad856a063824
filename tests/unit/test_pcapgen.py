"""Tests of the flow-meter test harness itself: the pcap generator, the frame builders and the pure-Python reader
(tests/support/pcapgen.py, frames.py, oracles.py). The reader against tshark, and the softflowd -> nfcapd ->
nfdump oracle against its documented model: tests/system/test_oracles.py."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from pathlib import Path

import pytest

from ..support import frames as F
from ..support.oracles import (
    Packet,
    iter_packets,
    nfcapd_counts,
    own_truth,
    softflowd_key,
)
from ..support.pcapgen import GenStats, generate

SMALL, ACTIVE, IDLE = 5000, 60.0, 16.0
NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenStats, list[Packet]]:
    path = tmp_path_factory.mktemp("gen") / "small.pcap"
    stats = generate(path, SMALL, seed=7, active_timeout=ACTIVE, idle_gap=IDLE)
    return path, stats, list(iter_packets(path))


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    assert generate(a, 3000, seed=3) == generate(b, 3000, seed=3)
    generate(c, 3000, seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_stats_add_up(small: tuple[Path, GenStats, list[Packet]]) -> None:
    path, st, pkts = small
    assert st.packets == len(pkts) == SMALL
    assert st.ipv4 == sum(p.af == 4 for p in pkts) and st.ipv6 == sum(p.af == 6 for p in pkts)
    assert st.non_ip == sum(p.af == 0 for p in pkts) and st.ip_packets + st.non_ip == st.packets
    assert st.fragments == sum(p.frag > 0 for p in pkts)
    assert st.vlan == sum(p.tags == (F.TPID_8021Q,) for p in pkts)
    assert st.qinq == sum(p.tags == (F.TPID_QINQ, F.TPID_8021Q) for p in pkts)
    assert st.padded == sum(p.wirelen == 60 and p.l2len + (p.iplen if p.af else 28) < 60 for p in pkts)
    assert all(p.wirelen >= 60 for p in pkts)
    assert st.frame_bytes == sum(p.wirelen for p in pkts) == path.stat().st_size - 24 - 16 * st.packets
    assert st.ip_bytes == sum(p.iplen for p in pkts) == sum(b for _, b in own_truth(path).values())
    ts = [p.ts_us for p in pkts]
    assert all(x < y for x, y in zip(ts, ts[1:], strict=False)), "timestamps must strictly increase"
    assert (ts[0] / 1e6, ts[-1] / 1e6) == (st.first_ts, st.last_ts)


def test_traffic_mix(small: tuple[Path, GenStats, list[Packet]]) -> None:
    _, st, pkts = small
    ip = [p for p in pkts if p.key is not None]
    assert all(ipaddress.ip_address(a) in NETS[0 if p.af == 4 else 1] for p in ip for a in p.key[:2])
    flags = {p.tcp_flags for p in ip if p.key[4] == F.TCP}
    assert {F.SYN, F.SYN | F.ACK, F.ACK, F.FIN | F.ACK, F.RST} <= flags
    assert any(f & F.PSH for f in flags)
    for af in (4, 6):
        assert any(p.af == af and p.key[4] == F.TCP for p in ip)
        assert any(p.af == af and p.key[3] == 53 for p in ip) and any(p.af == af and p.key[2] == 53 for p in ip)
        assert any(p.af == af and p.frag == 1 for p in ip) and any(p.af == af and p.frag == 2 for p in ip)
    assert {8 << 8, 0, 128 << 8, 129 << 8} <= {p.icmp for p in ip}
    assert any(p.frag and p.key[4] == F.ICMP for p in ip), "a fragmented ping"
    assert any(p.af == 0 for p in pkts) and all(p.af or p.wirelen == 60 for p in pkts)  # ARP, padded
    assert {(), (F.TPID_8021Q,), (F.TPID_QINQ, F.TPID_8021Q)} == {p.tags for p in pkts}
    assert any(p.af == 6 and p.tags for p in pkts)
    rtp = defaultdict(int)
    for p in ip:
        if p.key[4] == F.UDP and p.iplen in (200, 220):  # 12-byte RTP header + 160 bytes
            rtp[p.key] += 1
    assert max(rtp.values()) >= 100
    first: dict[tuple, int] = {}
    last: dict[tuple, int] = {}
    gap: dict[tuple, int] = defaultdict(int)
    for p in ip:
        if p.key in last:
            gap[p.key] = max(gap[p.key], p.ts_us - last[p.key])
        first.setdefault(p.key, p.ts_us)
        last[p.key] = p.ts_us
    assert sum(last[k] - first[k] > ACTIVE * 1e6 for k in first) >= 3, "long-lived flows"
    assert sum(gap[k] > IDLE * 1e6 for k in gap) >= 2, "flows with an idle gap"
    changes = sum(a.key != b.key for a, b in zip(ip, ip[1:], strict=False))
    assert changes > 0.5 * len(ip), "sessions interleave"
    assert st.sessions["idle"] == 2 and st.sessions["long"] == 3


def test_templates_equal_slow_builders() -> None:
    """pcapgen's incremental checksums against frames.py's full ones, for every template builder."""
    for src, dst in (("198.18.1.2", "198.19.3.4"), ("2001:db8:c::1", "2001:db8:5::2")):
        s, d = F.ip_bytes(src), F.ip_bytes(dst)
        v6 = len(s) == 16
        l2 = F.l2_header(b"\x02" * 6, b"\x04" * 6, F.ETH_IPV6 if v6 else F.ETH_IPV4, [(F.TPID_8021Q, 5)])
        t = F.Dir(l2, F.K_VLAN, s, d, 40000, 443)

        def slow(proto: int, seg: bytes, t: F.Dir = t, s: bytes = s, d: bytes = d) -> bytes:
            pkt = F.ipv6(s, d, proto, seg) if len(s) == 16 else F.ipv4(s, d, proto, seg, ident=(t.ident + 1) & 0xFFFF)
            return F.pad(t.l2 + pkt)

        for n in (0, 1, 7, 100, 1460):
            want = slow(F.TCP, F.tcp(s, d, 40000, 443, F.PSH | F.ACK, F.PAYLOAD[:n], seq=0xFFFFFFF0, ack=12345))
            assert t.tcp(0xFFFFFFF0, 12345, F.PSH | F.ACK, n)[0] == want
            want = slow(F.UDP, F.udp(s, d, 40000, 443, b"\x80\x00" + F.PAYLOAD[:n]))
            assert t.udp(n, b"\x80\x00")[0] == want
            echo = F.icmpv6_echo(s, d, 7, n, F.PAYLOAD[:n]) if v6 else F.icmp_echo(7, n, F.PAYLOAD[:n])
            want = slow(F.ICMPV6 if v6 else F.ICMP, echo)
            assert t.icmp(128 if v6 else 8, 7, n, n)[0] == want


def test_builders_and_reader(tmp_path: Path) -> None:
    (a, b), (x, y) = F.SAMPLE_V4, F.SAMPLE_V6
    frames = F.sample_frames()
    path = tmp_path / "b.pcap"
    assert F.write_pcap(path, [(1_700_000_000 + i / 10, fr) for i, fr in enumerate(frames)]) == len(frames)
    got = list(iter_packets(path))
    assert [(p.key, p.iplen, p.frag, p.tags, p.wirelen) for p in got] == [
        ((a, b, 1000, 80, 6), 40, 0, (F.TPID_QINQ, F.TPID_8021Q), 62),
        ((x, y, 5353, 53, 17), 49, 0, (F.TPID_8021Q,), 67),
        (None, 0, 0, (), 60),
        ((b, a, 0, 0, 1), 84, 0, (), 98),
        ((a, b, 7, 9, 17), 1500, 1, (), 1514),
        ((a, b, 0, 0, 17), 1500, 2, (), 1514),
        ((a, b, 0, 0, 17), 68, 2, (), 82),
        ((x, y, 7, 9, 17), 1280, 1, (), 1294),
        ((x, y, 0, 0, 17), 824, 2, (), 838),
    ]
    assert [p.ts_us for p in got] == [1_700_000_000_000_000 + i * 100_000 for i in range(len(frames))]
    assert got[3].icmp == 0 and got[0].tcp_flags == F.SYN
    assert [softflowd_key(p) for p in got[:4]] == [None, ((x, y, 5353, 53, 17), 49), None, ((b, a, 0, 0, 1), 84)]
    assert softflowd_key(got[8]) == ((x, y, 0, 0, 0), 824)  # softflowd: IPv6 non-first fragment, proto 0


def test_nfcapd_counts_sum_every_file_it_wrote() -> None:
    """nfcapd prints its counts once per file; a run across its 5-minute boundary wrote two (a CI run did)."""
    log = ("Startup nfcapd.\n\n"
           "Ident: 'none' Flows: 12502, Packets: 99019, Bytes: 61626948, Sequence Errors: 0, Bad Packets: 0\n"
           "Ident: 'none' Flows: 94177, Packets: 654970, Bytes: 314244531, Sequence Errors: 2, Bad Packets: 1\n"
           "Terminating nfcapd.\n")
    assert nfcapd_counts(log) == {"flows": 106679, "packets": 753989, "bytes": 375871479, "sequence_errors": 2,
                                  "bad_packets": 1}
    assert nfcapd_counts("Startup nfcapd.\n") == {}
