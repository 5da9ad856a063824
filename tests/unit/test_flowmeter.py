"""The flow meter on hand-built packets: keys, counts, flags, VLANs, ICMP, IPv6, fragments, timeouts, and
the same records whatever the batch size."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from opentap.flows import nfcsv
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files

from ..support import frames as fr

A, B = "198.18.0.1", "198.18.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
T0 = 1_700_000_000.0


def meter(tmp_path: Path, records: list[tuple[float, bytes]], block: int = 1 << 22, **timeouts: float) -> tuple[
        list[dict[str, str]], FlowMeter]:
    path = tmp_path / "in.pcap"
    fr.write_pcap(path, records)
    m = FlowMeter(**timeouts)
    flows = Flows.concat(list(meter_files([path], m, block)))
    text = nfcsv.HEADER + "\n" + nfcsv.csv_text(flows)
    return list(csv.DictReader(io.StringIO(text))), m


def by_key(rows: list[dict[str, str]]) -> dict[tuple[str, ...], list[dict[str, str]]]:
    out: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for r in rows:
        out.setdefault((r["sa"], r["da"], r["sp"], r["dp"], r["pr"], r["svln"]), []).append(r)
    return out


def tcp4(ts: float, src: str, dst: str, sp: int, dp: int, flags: int, payload: bytes = b"") -> tuple[float, bytes]:
    return ts, fr.eth(fr.ipv4(src, dst, fr.TCP, fr.tcp(src, dst, sp, dp, flags, payload)))


def udp4(ts: float, sp: int, dp: int, payload: bytes, vlans=(), tos: int = 0) -> tuple[float, bytes]:
    return ts, fr.eth(fr.ipv4(A, B, fr.UDP, fr.udp(A, B, sp, dp, payload), tos=tos), vlans=vlans)


def test_header_and_formats(tmp_path: Path) -> None:
    rows, m = meter(tmp_path, [
        tcp4(T0, A, B, 40000, 80, fr.SYN),
        tcp4(T0 + 0.5, A, B, 40000, 80, fr.ACK | fr.PSH, b"x" * 100),
        tcp4(T0 + 1.25, A, B, 40000, 80, fr.ACK | fr.FIN),
        tcp4(T0 + 0.1, B, A, 80, 40000, fr.SYN | fr.ACK),
    ])
    assert nfcsv.HEADER.split(",")[:10] == ["ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "fwd"]
    assert len(nfcsv.COLUMNS) == 48
    flows = by_key(rows)
    fwd = flows[(A, B, "40000", "80", "TCP", "0")]
    assert len(fwd) == 1
    r = fwd[0]
    assert (r["ts"], r["te"], r["td"]) == ("2023-11-14 22:13:20", "2023-11-14 22:13:21", "1.250")
    assert (r["flg"], r["ipkt"], r["ibyt"]) == ("...AP.SF", "3", str(40 + 140 + 40))  # IP lengths, no padding
    assert (r["ismc"], r["idmc"], r["odmc"], r["mpls1"], r["cl"], r["ra"], r["eng"]) == (
        "02:00:00:00:00:01", "02:00:00:00:00:02", "00:00:00:00:00:00", "0-0-0", "    0.000", "0.0.0.0", "0/0")
    assert flows[(B, A, "80", "40000", "TCP", "0")][0]["flg"] == "...A..S."
    assert m.stats.flows == 2 and m.stats.packets == 4


def test_vlans_icmp_ipv6_fragments_and_non_ip(tmp_path: Path) -> None:
    big = fr.udp(A, B, 5353, 5353, b"z" * 3000)
    big6 = fr.udp(A6, B6, 7000, 7001, b"y" * 3000)
    recs = [
        udp4(T0, 1000, 53, b"q" * 30, vlans=[(fr.TPID_8021Q, 42)], tos=0x10),
        udp4(T0 + 1, 1000, 53, b"q" * 30, vlans=[(fr.TPID_QINQ, 100), (fr.TPID_8021Q, 200)]),
        (T0 + 2, fr.eth(fr.ipv4(A, B, fr.ICMP, fr.icmp_echo(7, 1)))),
        (T0 + 2.1, fr.eth(fr.ipv4(B, A, fr.ICMP, fr.icmp_echo(7, 1, reply=True)))),
        (T0 + 3, fr.eth(fr.ipv6(A6, B6, fr.ICMPV6, fr.icmpv6_echo(A6, B6, 9, 1)), fr.ETH_IPV6)),
        (T0 + 4, fr.eth(fr.ipv6(A6, B6, fr.TCP, fr.tcp(A6, B6, 5555, 443, fr.SYN)), fr.ETH_IPV6)),
        (T0 + 5, fr.eth(fr.arp(fr.mac("02:00:00:00:00:01"), A, B), fr.ETH_ARP)),
        *[(T0 + 6 + i / 10, fr.eth(f)) for i, f in enumerate(fr.ipv4_fragments(A, B, fr.UDP, big, ident=1))],
        *[(T0 + 7 + i / 10, fr.eth(f, fr.ETH_IPV6)) for i, f in
          enumerate(fr.ipv6_fragments(A6, B6, fr.UDP, big6, ident=2))],
    ]
    rows, m = meter(tmp_path, recs)
    flows = by_key(rows)
    assert flows[(A, B, "1000", "53", "UDP", "42")][0]["stos"] == "16"
    assert flows[(A, B, "1000", "53", "UDP", "100")][0]["ipkt"] == "1"  # QinQ: the outer (service) VLAN
    assert flows[(A, B, "0", "2048", "ICMP", "0")][0]["ipkt"] == "1"  # echo request: type 8 * 256
    assert flows[(B, A, "0", "0", "ICMP", "0")][0]["ipkt"] == "1"  # echo reply: type 0
    assert flows[(A6, B6, "0", "32768", "ICMP6", "0")][0]["ibyt"] == str(40 + 8)  # type 128
    assert flows[(A6, B6, "5555", "443", "TCP", "0")][0]["flg"] == "......S."
    # fragments: the first one carries the ports, later ones cannot and form a port-0 flow of their own
    n4 = len(fr.ipv4_fragments(A, B, fr.UDP, big, ident=1))
    assert flows[(A, B, "5353", "5353", "UDP", "0")][0]["ipkt"] == "1"
    assert flows[(A, B, "0", "0", "UDP", "0")][0]["ipkt"] == str(n4 - 1)
    total4 = sum(int(flows[(A, B, p, p, "UDP", "0")][0]["ibyt"]) for p in ("5353", "0"))
    assert total4 == 3008 + 20 * n4
    n6 = len(fr.ipv6_fragments(A6, B6, fr.UDP, big6, ident=2))
    assert flows[(A6, B6, "7000", "7001", "UDP", "0")][0]["ipkt"] == "1"
    assert flows[(A6, B6, "0", "0", "UDP", "0")][0]["ipkt"] == str(n6 - 1)
    assert (m.stats.non_ip_packets, m.stats.fragments, m.stats.packets) == (1, n4 + n6, len(recs))


def test_idle_and_active_timeouts_and_fin(tmp_path: Path) -> None:
    recs = [udp4(T0 + t, 9, 9, b"i") for t in (0, 1, 2, 30, 31)]  # idle gap of 28 s
    recs += [udp4(T0 + t, 8, 8, b"a") for t in range(101)]  # one packet a second for 100 s
    recs += [tcp4(T0, A, B, 1, 2, fr.SYN), tcp4(T0 + 1, A, B, 1, 2, fr.FIN | fr.ACK),
             tcp4(T0 + 2, A, B, 1, 2, fr.SYN), tcp4(T0 + 3, A, B, 1, 2, fr.RST)]
    rows, _ = meter(tmp_path, sorted(recs), idle_timeout=15, active_timeout=30)
    flows = by_key(rows)
    assert [r["ipkt"] for r in flows[(A, B, "9", "9", "UDP", "0")]] == ["3", "2"]
    active = flows[(A, B, "8", "8", "UDP", "0")]
    assert [r["ipkt"] for r in active] == ["31", "31", "31", "8"] and all(float(r["td"]) <= 30 for r in active)
    assert [r["flg"] for r in flows[(A, B, "1", "2", "TCP", "0")]] == ["...A..SF", ".....RS."]


@pytest.mark.parametrize("block", [64, 1000, 4096])
def test_batches_do_not_change_the_records(tmp_path: Path, block: int) -> None:
    recs = []
    for i in range(400):  # interleaved sessions with gaps that cross batch boundaries
        t = T0 + i * 0.37
        recs.append(udp4(t, 1000 + i % 13, 53, b"d" * (i % 50)))
        recs.append(tcp4(t + 0.01, A, B, 2000 + i % 7, 80, fr.ACK | (fr.FIN if i % 29 == 0 else 0)))
        if i % 11 == 0:
            recs.append((t + 0.02, fr.eth(fr.arp(fr.mac("02:00:00:00:00:09"), A, B), fr.ETH_ARP)))
    whole, _ = meter(tmp_path, recs, idle_timeout=5, active_timeout=40)
    pieces, _ = meter(tmp_path, recs, block=block, idle_timeout=5, active_timeout=40)

    def norm(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
        return sorted(tuple(v for k, v in r.items() if k != "tr") for r in rows)

    assert norm(whole) == norm(pieces) and len(whole) > 30


def test_runt_and_snaplen_cut_packets_do_not_break_metering(tmp_path: Path) -> None:
    full = fr.eth(fr.ipv4(A, B, fr.TCP, fr.tcp(A, B, 1, 2, fr.ACK, b"p" * 100)))
    path = tmp_path / "cut.pcap"
    with open(path, "wb") as f:
        w = fr.PcapWriter(f, snaplen=40)
        for i, cut in enumerate((10, 20, 30, 36, 40)):
            w.write(T0 + i, full[:cut])
    m = FlowMeter()
    flows = Flows.concat(list(meter_files([path], m)))
    assert m.stats.packets == 5 and len(flows) <= 2  # headers that are cut short never raise


def test_mangled_frames_never_break_the_meter(tmp_path: Path) -> None:
    """The C decoder reads only inside each frame's captured bytes: random bytes overwritten and frames cut
    anywhere give records that still account for every IP packet, and never a crash."""
    rng = random.Random(5)
    bases = [
        tcp4(0, A, B, 1, 2, fr.ACK, b"p" * 40)[1],
        udp4(0, 53, 53, b"q" * 30, vlans=[(fr.TPID_QINQ, 7), (fr.TPID_8021Q, 8)])[1],
        *(fr.eth(f, fr.ETH_IPV6) for f in fr.ipv6_fragments(A6, B6, fr.UDP, b"y" * 2000, ident=3)),
        fr.eth(fr.ipv6(A6, B6, fr.ICMPV6, fr.icmpv6_echo(A6, B6, 1, 1)), fr.ETH_IPV6),
    ]
    recs = []
    for i in range(5000):
        frame = bytearray(rng.choice(bases))
        for _ in range(rng.randrange(4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        recs.append((T0 + i / 1000, bytes(frame[: rng.randrange(len(frame) + 1)])))
    rows, m = meter(tmp_path, recs)
    s = m.stats
    assert s.packets == len(recs) and s.ip_packets + s.non_ip_packets == s.packets and s.ip_packets > 1000
    assert sum(int(r["ipkt"]) for r in rows) == s.ip_packets and len(rows) == s.flows


def test_a_chunk_that_reuses_a_deleted_chunks_inode_is_read_from_its_start(tmp_path: Path) -> None:
    """A live capture deletes the chunks it has metered; the filesystem hands their inode numbers to the next
    chunks tcpdump writes, which must not be taken for the old file (read from where it ended, the records are
    garbage: a payload byte read as a record length)."""
    from opentap.flows.pipeline import ChunkFollower

    meter = FlowMeter(idle_timeout=1000)
    follower = ChunkFollower(meter)
    first = tmp_path / "packets-001-000000.pcap"
    fr.write_pcap(first, [udp4(T0 + i, 1000, 53, b"I" * 900) for i in range(50)])
    list(follower.poll([first]))
    inode = first.stat().st_ino
    follower.remove(first)
    assert not first.exists()
    second = tmp_path / "packets-001-000001.pcap"
    fr.write_pcap(second, [udp4(T0 + 60 + i, 2000, 53, b"J" * 100) for i in range(10)])
    if second.stat().st_ino != inode:  # the filesystem did not reuse it this time: the bookkeeping still must
        assert inode not in follower.offsets
    list(follower.poll([second]))  # read from its start: no garbage record lengths, every packet metered
    assert follower.records == meter.stats.packets == 60
