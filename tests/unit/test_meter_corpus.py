"""The meter on third-party captures (tests/data/captures: tcpdump's and libpcap's test files, BSD): what it
makes of each, and the four counting bugs of issue 16, each on its file."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from opentap.flows import nfcsv
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files
from opentap.pcap.pcapfile import PcapError

from ..support import frames as fr

DATA = Path(__file__).resolve().parents[1] / "data" / "captures"

# file: (packets, IP packets, flows, bytes in the records) or the error it is refused with
EXPECTED: dict[str, tuple[int, int, int, int] | str] = {
    "libpcap/AH-IPcomp-IPv6.pcap": (15, 15, 2, 2442),
    "libpcap/ipv6_ah_modes.pcap": (2, 2, 1, 236),
    "libpcap/ipv6_ext_headers.pcap": (1, 1, 1, 858),
    "libpcap/linktype-reserved-field-not-zero.pcap": "reserved bits set",
    "libpcap/pcap-invalid-version-1.pcap": "pcap version 1.4 is not supported",
    "libpcap/pcapng-invalid-vers-1.pcapng": "pcapng version 0.1 is not supported",
    "libpcap/pppoes.pcap": (2, 0, 0, 0),  # PPPoE sessions carrying LCP, not IP
    "libpcap/rarp_req_reply.pcapng": (2, 0, 0, 0),
    "libpcap/shb-option-too-long.pcapng": "past the end of its block",
    "libpcap/slip-bad-direction.pcap": (1, 0, 0, 0),  # SLIP, a fuzzed frame that is not IP
    "tcpdump/802.1ad_QinQ.pcap": (2, 0, 0, 0),  # ARP in 802.1ad + 802.1Q
    "tcpdump/LINKTYPE_IPV4.pcap": (1, 1, 1, 57),
    "tcpdump/LINKTYPE_IPV4_invalid.pcap": (1, 0, 0, 0),  # an IPv6 packet where the link type says IPv4
    "tcpdump/LINKTYPE_IPV6.pcap": (1, 1, 1, 77),
    "tcpdump/LINKTYPE_RAW_ipv4.pcap": (1, 1, 1, 57),
    "tcpdump/LINKTYPE_RAW_ipv6.pcap": (1, 1, 1, 77),
    "tcpdump/OSPFv3_with_AH.pcap": (61, 61, 4, 9120),
    "tcpdump/babel.pcap": (25, 25, 13, 2496),  # Linux cooked capture (SLL)
    "tcpdump/bgp-orf.pcapng": (1, 1, 1, 151),  # SLL in pcapng
    "tcpdump/bigtcp-ipv4.pcap": (1, 1, 1, 80052),
    "tcpdump/bigtcp-ipv6-hbh.pcap": (1, 1, 1, 80080),
    "tcpdump/empty.pcapng": (0, 0, 0, 0),
    "tcpdump/ikev2four.pcap": (21, 21, 2, 5412),  # NULL (BSD loopback)
    "tcpdump/ipv4_invalid_hdr_length.pcap": (1, 0, 0, 0),
    "tcpdump/ipv4_invalid_total_length_2.pcap": (1, 0, 0, 0),
    "tcpdump/mpls-ldp-hello.pcap": (1, 1, 1, 70),  # PPP
    "tcpdump/mpls-traceroute.pcap": (18, 18, 12, 1536),  # PPP, MPLS inside
    "tcpdump/nfs-write-verf-cookie.pcapng": (2, 2, 2, 416),
    "tcpdump/olsr-oobr-1.pcap": (4, 4, 3, 21492),
    "tcpdump/ppp_ip_udp_dns.pcap": (1, 0, 0, 0),  # PPP in HDLC framing, a protocol that is not IP
    "tcpdump/quic_handshake.pcap": (18, 18, 2, 5418),  # NULL
    "tcpdump/time_2107.pcapng": (1, 1, 1, 84),
    "tcpdump/vsock-1.pcapng": "VSOCK (271) cannot be metered",
}


def meter(path: Path, block: int = 1 << 20) -> tuple[list[dict[str, str]], FlowMeter]:
    m = FlowMeter()
    flows = Flows.concat(list(meter_files([path], m, block)))
    return list(csv.DictReader(io.StringIO(nfcsv.HEADER + "\n" + nfcsv.csv_text(flows)))), m


def test_the_corpus_is_what_the_table_names() -> None:
    assert sorted(str(p.relative_to(DATA)) for p in DATA.glob("*/*.pcap*")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_capture_meters_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(PcapError, match=re.escape(expected)):
            meter(DATA / name)
        return
    rows, m = meter(DATA / name)
    s = m.stats
    assert (s.packets, s.ip_packets, s.flows, sum(int(r["ibyt"]) for r in rows)) == expected
    assert sum(int(r["ipkt"]) for r in rows) == s.ip_packets


def test_tso_and_big_tcp_count_what_the_frame_holds() -> None:
    """IPv4 total length 0 (TSO / BIG TCP) and an IPv6 jumbogram (payload length 0, Jumbo Payload option):
    the bytes are what the frame holds from the IP header on (tshark's 80,052 for the first), not 0 or 40."""
    (v4,), _ = meter(DATA / "tcpdump/bigtcp-ipv4.pcap")
    assert (v4["pr"], v4["ipkt"], v4["ibyt"]) == ("TCP", "1", "80052")
    (v6,), _ = meter(DATA / "tcpdump/bigtcp-ipv6-hbh.pcap")
    assert (v6["pr"], v6["sp"], v6["dp"], v6["ibyt"]) == ("TCP", "41851", "43913", "80080")


def test_reads_stay_inside_the_ip_header_and_datagram(tmp_path: Path) -> None:
    """A header length below 5 words, or a total length below the header's: not IPv4 (the old reader took ports
    from inside the IP header). Transport fields past the datagram's end are not read from Ethernet padding."""
    for name in ("ipv4_invalid_hdr_length.pcap", "ipv4_invalid_total_length_2.pcap"):
        rows, m = meter(DATA / "tcpdump" / name)
        assert rows == [] and (m.stats.ip_packets, m.stats.non_ip_packets) == (0, 1)
    a, b = "198.18.0.1", "198.18.0.2"
    junk = b"\x12\x34\x56\x78" + b"\xff" * 40  # padding that looks like ports and TCP flags
    udp = fr.ipv4(a, b, fr.UDP, b"\x03\xe8")  # 22 bytes: the source port only
    tcp = fr.ipv4(a, b, fr.TCP, fr.tcp(a, b, 7, 8, fr.SYN)[:10])  # 30 bytes: the ports, not the flags
    pcap = tmp_path / "short.pcap"
    fr.write_pcap(pcap, [(1_700_000_000, fr.eth(udp + junk)[:60]), (1_700_000_001, fr.eth(tcp + junk)[:60])])
    rows, _ = meter(pcap)
    assert sorted((r["pr"], r["sp"], r["dp"], r["flg"], r["ibyt"]) for r in rows) == [
        ("TCP", "7", "8", "........", "30"), ("UDP", "0", "0", "........", "22")]


def test_ah_is_the_protocol_in_ipv6_as_in_ipv4() -> None:
    """tshark and softflowd report AH (51) for an AH-protected packet; so does the meter, in IPv6 too (it used
    to skip AH as an extension header there and report the protocol after it)."""
    rows, _ = meter(DATA / "libpcap/ipv6_ah_modes.pcap")
    assert [(r["pr"], r["ipkt"]) for r in rows] == [("AH", "2")]
    rows, _ = meter(DATA / "tcpdump/OSPFv3_with_AH.pcap")
    assert {r["pr"] for r in rows} == {"AH"}


def test_a_long_chain_of_extension_headers_is_followed_to_its_end() -> None:
    """~100 extension headers, then UDP (tshark reads them all): never an extension header's number."""
    (row,), _ = meter(DATA / "libpcap/ipv6_ext_headers.pcap")
    assert (row["pr"], row["sp"], row["dp"], row["ibyt"]) == ("UDP", "12345", "54321", "858")


@pytest.mark.parametrize("block", [16, 40, 100, 200, 1 << 20])
def test_time_going_backwards_gives_the_same_flows_whatever_the_block_size(block: int) -> None:
    """olsr-oobr-1: 1975, 2038, 1975, 2038. The expiry at 2038 ends the 1975 flow before its second packet,
    whatever the blocks are (it used to give 2 flows with one block size and 3 with another)."""
    rows, _ = meter(DATA / "tcpdump/olsr-oobr-1.pcap", block)
    assert sorted((r["ts"][:4], r["ipkt"]) for r in rows) == [("1975", "1"), ("1975", "1"), ("2038", "2")]
