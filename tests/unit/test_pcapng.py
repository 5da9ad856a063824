"""Reading pcapng (opentap/pcap/pcapng.py and the C block scan): sections and byte orders, interfaces with their
link types and timestamp resolutions, enhanced, simple and obsolete packet blocks, blocks stepped over, damage;
and the same packets as pcap meter to the same records."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentap.flows import nfcsv
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files
from opentap.pcap.pcapfile import Damage, PcapError, iter_packets

from ..support import frames as fr
from ..support import pcapngbytes as ng
from ..support.pcapgen import generate

A, B = "198.18.0.1", "198.18.0.2"
T0 = 1_700_000_000


def udp(i: int) -> bytes:
    return fr.eth(fr.ipv4(A, B, fr.UDP, fr.udp(A, B, 1000 + i, 53, b"q" * i)))


def raw(i: int) -> bytes:
    return fr.ipv4(B, A, fr.UDP, fr.udp(B, A, 53, 1000 + i, b"r" * i))


@pytest.mark.parametrize("order", ["<", ">"])
def test_sections_interfaces_resolutions_and_packet_blocks(tmp_path: Path, order: str) -> None:
    other = ">" if order == "<" else "<"
    data = b"".join([
        ng.shb(order), ng.idb(1, order=order), ng.idb(101, order=order, tsresol=9),  # Ethernet (µs), raw IP (ns)
        ng.epb(0, T0 * 10**6 + 5, udp(1), order),
        ng.statistics(0, order),  # stepped over
        ng.epb(1, T0 * 10**9 + 7, raw(2), order),
        ng.spb(udp(3), order),  # no time: the packet before it is the best there is
        ng.obsolete_pb(0, T0 * 10**6 + 9, udp(4), order),
        # a second section in the other byte order: new interfaces, binary resolution and an offset
        ng.shb(other), ng.idb(228, order=other, tsresol=0x80 | 20, tsoffset=10),
        ng.epb(0, 3 << 20, raw(5), other),
    ])
    path = tmp_path / "a.pcapng"
    path.write_bytes(data)
    got = list(iter_packets([path]))
    assert got == [
        (T0 * 10**9 + 5000, len(udp(1)), 1, udp(1)),
        (T0 * 10**9 + 7, len(raw(2)), 101, raw(2)),
        (T0 * 10**9 + 7, len(udp(3)), 1, udp(3)),
        (T0 * 10**9 + 9000, len(udp(4)), 1, udp(4)),
        (13 * 10**9, len(raw(5)), 228, raw(5)),  # 3 s (units of 2^-20 s) + 10 s offset
    ]
    for block in (13, 64, 100, 1 << 20):  # blocks cut anywhere, even inside a section header
        m = FlowMeter()
        flows = Flows.concat(list(meter_files([path], m, block)))
        assert (m.stats.packets, m.stats.ip_packets, len(flows)) == (5, 5, 5)


def test_the_same_packets_as_pcap_and_pcapng_give_the_same_records(tmp_path: Path) -> None:
    """A generated mix (VLANs, QinQ, fragments, IPv6, ARP...) written as pcap, then its records as EPBs."""
    pcap = tmp_path / "mix.pcap"
    generate(pcap, 5000, seed=3)
    packets = list(iter_packets([pcap]))
    pcapng = tmp_path / "mix.pcapng"
    pcapng.write_bytes(ng.shb(">") + ng.idb(1, order=">", tsresol=9) + b"".join(
        ng.epb(0, ts, data, ">", orig_len=wire) for ts, wire, _lt, data in packets))
    assert list(iter_packets([pcapng])) == packets

    def records(path: Path) -> list[str]:
        flows = Flows.concat(list(meter_files([path], FlowMeter(), 4096)))
        return sorted(nfcsv.csv_text(flows, written_at=0).splitlines())  # batches end elsewhere: order differs

    assert records(pcap) == records(pcapng) and len(records(pcap)) > 200


@pytest.mark.parametrize(("damage", "what"), [
    (lambda b: b[:-4] + b"\x00\x00\x00\x00", "trailing length differs"),
    (lambda b: b[:4] + b"\x0d\x00\x00\x00" + b[8:], "not a multiple of 4"),
    (lambda b: b[:8] + b"\x07\x00\x00\x00" + b[12:], "no interface block described"),
])
def test_a_damaged_block_ends_the_file_where_it_is(tmp_path: Path, damage, what: str) -> None:
    good = ng.shb() + ng.idb() + ng.epb(0, 1, udp(1))
    path = tmp_path / "bad.pcapng"
    path.write_bytes(good + damage(ng.epb(0, 2, udp(2))) + ng.epb(0, 3, udp(3)))
    with pytest.raises(PcapError, match=rf"bad\.pcapng: damaged at byte {len(good)}: .*{what}"):
        list(iter_packets([path]))
    found: list[Damage] = []
    assert len(list(iter_packets([path], damage=found))) == 1
    assert [(d.offset, what in d.what) for d in found] == [(len(good), True)]


@pytest.mark.parametrize(("data", "what"), [
    (ng.shb(version=(2, 0)), "pcapng version 2.0 is not supported"),
    (ng.shb(opts=[b"\x02\x00\xff\x00abcd"]), "past the end of its block"),
    (ng.shb()[:8] + b"\x00\x00\x00\x00" + ng.shb()[12:], "byte-order magic"),
    (ng.shb() + ng.idb(tsresol=99), "timestamp resolution"),
])
def test_bad_headers_are_refused(tmp_path: Path, data: bytes, what: str) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(data + ng.epb(0, 1, udp(1)))
    with pytest.raises(PcapError, match=what):
        list(iter_packets([path]))


def test_hostile_timestamps_saturate(tmp_path: Path) -> None:
    """A 64-bit timestamp at the finest resolution and the largest offset must not overflow (C's undefined
    behaviour, which the sanitized build would catch)."""
    path = tmp_path / "t.pcapng"
    path.write_bytes(ng.shb() + ng.idb(tsresol=0, tsoffset=2**62) + ng.epb(0, 2**64 - 1, udp(1)) +
                     ng.idb(tsresol=0x80 | 63, tsoffset=-(2**62)) + ng.epb(1, 2**64 - 1, udp(2)))
    stamps = [ts for ts, *_ in iter_packets([path])]
    assert stamps[0] == 2**63 - 1 and stamps[1] < 0


@pytest.mark.parametrize(("tsresol", "units", "ns"), [
    (0, 3, 3 * 10**9),  # seconds
    (3, 1_700_000_000_123, 1_700_000_000_123_000_000),  # ms
    (6, 1_700_000_000_123_456, 1_700_000_000_123_456_000),  # µs, the default
    (12, 12_345_678_901_234_567, 12_345_678_901_234),  # ps: truncated to ns
    (18, 2**64 - 1, (2**64 - 1) // 10**9),  # attoseconds, the finest the reader takes
])
def test_decimal_resolutions(tmp_path: Path, tsresol: int, units: int, ns: int) -> None:
    path = tmp_path / "r.pcapng"
    path.write_bytes(ng.shb() + ng.idb(tsresol=tsresol) + ng.epb(0, units % 2**64, udp(1)))
    assert [ts for ts, *_ in iter_packets([path])] == [ns]  # csrc/scan.c's ng_time, every decimal branch
