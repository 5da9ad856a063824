"""The ring's index and the filter judgement it is read with: a stretch is skipped only when libpcap itself
would match none of its packets (checked packet by packet against pcap_offline_filter on generated traffic with
ARP, VLANs, QinQ, fragments and IPv6), the grammar's precedence and inheritance, and time selection."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from opentap.capture import ringfilter, ringindex
from opentap.capture.ringfilter import Summary
from opentap.pcap import pcapfile

from ..support import frames as F
from ..support.bpfmatch import Matcher
from ..support.pcapgen import generate

STRETCH = 16 * 1024  # small stretches: many of them, each with few enough addresses to be listed
BIG_STRETCH = 1 << 20  # the device's: too many addresses to list, so the Bloom filter answers


@pytest.fixture(scope="module", params=[STRETCH, BIG_STRETCH], ids=["listed", "bloom"])
def ring_file(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
              ) -> tuple[Path, ringindex.BlockIndex, list]:
    path = tmp_path_factory.mktemp("ring") / "block.pcap"
    generate(path, 20_000, seed=11)
    index = ringindex.build(path, request.param)
    packets = []  # (file offset of the record, ts_ns, frame, wire length)
    for block in pcapfile.read_packets(path, 0, STRETCH):
        base = block.next_offset - block.end
        for ts, off, caplen, wire, _lt, _if in pcapfile.DESC.iter_unpack(block.descs):
            packets.append((base + off - 16, ts, bytes(block.buf[off:off + caplen]), wire))
    return path, index, packets


def _addresses(packets: list, version: int, n: int) -> list[str]:
    seen: dict[str, None] = {}
    for _o, _t, frame, _w in packets:
        et = frame[12] << 8 | frame[13]
        if version == 4 and et == 0x0800:
            seen[str(ipaddress.IPv4Address(frame[26:30]))] = None
        elif version == 6 and et == 0x86DD:
            seen[str(ipaddress.IPv6Address(frame[22:38]))] = None
        if len(seen) >= n:
            break
    return list(seen)


def _stretch_of(index: ringindex.BlockIndex, offset: int) -> ringindex.Stretch:
    return next(s for s in index.stretches if s.offset <= offset < s.end)


def test_index_covers_every_record_once(ring_file: tuple) -> None:
    path, index, packets = ring_file
    assert index.packets == len(packets) == sum(s.packets for s in index.stretches)
    assert len(index.stretches) > 8
    blooms = [s.summary.bloom is not None for s in index.stretches]
    assert any(blooms) if len(index.stretches) < 20 else not any(blooms)
    for a, b in zip(index.stretches, index.stretches[1:], strict=False):
        assert a.end == b.offset and a.last_ns <= b.first_ns
    assert index.stretches[-1].end == path.stat().st_size
    assert (index.first_ns, index.last_ns) == (packets[0][1], packets[-1][1])


def test_skipping_never_drops_a_match(ring_file: tuple) -> None:
    """For each filter, every packet libpcap matches lies in a stretch the index keeps."""
    _path, index, packets = ring_file
    v4, v6 = _addresses(packets, 4, 3), _addresses(packets, 6, 1)
    net = ipaddress.ip_network(v4[0] + "/30", strict=False)
    filters = [f"host {v4[0]}", f"src host {v4[1]}", f"dst host {v4[2]}", f"host {v6[0]}", "port 53", "udp port 53",
               "tcp", "icmp", "icmp6", "sctp", f"net {net}", f"host {v4[0]} or host {v4[1]} and port 53",
               f"host {v4[0]} and not port 80", f"(tcp or udp) and host {v4[1]}", f"host {v4[0]} or {v4[2]}",
               f"ip6 and host {v6[0]}", "tcp port 80", f"src or dst host {v4[1]}", f"! host {v4[0]} && tcp",
               "arp", f"vlan and host {v4[0]}", "ip[9] = 17", "port 0", "udp and port 5004"]
    skipped_some = False
    for expr in filters:
        may, judged = ringfilter.compile_may(expr)
        match = Matcher(expr)
        kept = {s.offset for s in index.stretches if may(s.summary)}
        skipped_some |= judged and len(kept) < len(index.stretches)
        for offset, _ts, frame, wire in packets:
            if match(frame, wire):
                assert _stretch_of(index, offset).offset in kept, f"{expr!r} skips a stretch with a match"
    assert skipped_some


def test_arp_addresses_are_kept(tmp_path: Path) -> None:
    """libpcap's `host X` matches ARP's addresses: a stretch holding only ARP for X is not skipped."""
    frame = F.eth(F.arp(F.mac("02:00:00:00:00:01"), "198.18.7.1", "198.18.7.2"), 0x0806)
    F.write_pcap(tmp_path / "arp.pcap", [(1_700_000_000.0, frame)])
    index = ringindex.build(tmp_path / "arp.pcap")
    assert Matcher("host 198.18.7.2")(frame)
    assert ringfilter.compile_may("host 198.18.7.2")[0](index.stretches[0].summary)
    assert not ringfilter.compile_may("host 198.18.7.3")[0](index.stretches[0].summary)


def test_malformed_ip_makes_a_stretch_opaque(tmp_path: Path) -> None:
    """IPv4 frames the meter cannot decode (cut before the end of the header; a wrong version nibble): libpcap
    still looks at their bytes, so nothing can be ruled out."""
    header = F.l2_header(F.mac("02:00:00:00:00:02"), F.mac("02:00:00:00:00:01"), 0x0800)
    cut = header + bytes([0x45]) + bytes(11) + F.ip_bytes("198.18.9.9") + bytes(2)  # 32 bytes: no destination
    wrong = F.pad(header + bytes([0x65]) + bytes(11) + F.ip_bytes("198.18.9.9") + F.ip_bytes("198.18.9.8"))
    for n, frame in enumerate((cut, wrong)):
        assert Matcher("host 198.18.9.9")(frame)
        F.write_pcap(tmp_path / f"{n}.pcap", [(1_700_000_000.0, frame)])
        summary = ringindex.build(tmp_path / f"{n}.pcap").stretches[0].summary
        assert summary.opaque
        assert ringfilter.compile_may("host 198.18.9.9")[0](summary)


A, B = ipaddress.ip_address("198.18.0.1"), ipaddress.ip_address("198.18.0.2")
ONLY_A_TCP_1 = Summary(frozenset({str(A)}), frozenset({1}), frozenset({6}), False)


@pytest.mark.parametrize(("expr", "may"), [
    ("host 198.18.0.1", True), ("host 198.18.0.2", False),
    ("host 198.18.0.2 or host 198.18.0.1", True),
    # pcap-filter: `and` and `or` bind alike, left to right: (B or A) and port 2 -> no port 2 here
    ("host 198.18.0.2 or host 198.18.0.1 and port 2", False),
    ("host 198.18.0.1 or host 198.18.0.2 and port 1", True),
    ("host 198.18.0.2 or 198.18.0.3", True),  # a bare value inherits `host`: judged "may"
    ("not host 198.18.0.1", True), ("udp", False), ("tcp", True), ("tcp port 1", True), ("udp port 1", False),
    ("port 2", False), ("net 198.18.0.0/31", True), ("net 198.18.0.2/31", False),
    ("ether host 02:00:00:00:00:01", True), ("host example.org", True), ("tcp[13] & 2 != 0", True),
])
def test_judgement(expr: str, may: bool) -> None:
    assert ringfilter.compile_may(expr)[0](ONLY_A_TCP_1) is may


def test_unjudged_filters_say_so() -> None:
    for expr in ("vlan 100 and host 198.18.0.2", "portrange 1-100", "host a.example", "ip proto 6", "", None):
        assert ringfilter.compile_may(expr)[1] is False
    assert ringfilter.compile_may("host 198.18.0.1 and tcp")[1] is True
    opaque = Summary(frozenset(), frozenset(), frozenset(), True)
    assert ringfilter.compile_may("host 198.18.0.2")[0](opaque)


def test_time_selection(ring_file: tuple) -> None:
    _path, index, packets = ring_file
    mid = packets[len(packets) // 2][1]
    chosen = index.select(mid, mid + 10**9, ringfilter.compile_may(None)[0])
    assert 0 < len(chosen) < max(3, len(index.stretches) / 4)
    inside = [o for o, ts, _f, _w in packets if mid <= ts <= mid + 10**9]
    assert all(any(s.offset <= o < s.end for s in chosen) for o in inside)


def test_index_round_trips(ring_file: tuple, tmp_path: Path) -> None:
    _path, index, _packets = ring_file
    ringindex.write(index, tmp_path / "x.idx")
    assert ringindex.read(tmp_path / "x.idx") == index
    assert not list(tmp_path.glob(".*"))
