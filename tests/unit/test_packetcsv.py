"""Tests for opentap.capture.packetcsv, on frames built byte by byte here."""

from __future__ import annotations

import csv
import io
import ipaddress
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest

from opentap.pcap.packetcsv import CSV_COLUMNS, csv_lines

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "aa:bb:cc:dd:ee:ff"
TS = 1_700_000_000_123_456_789  # ns; shown as 1700000000123.456


# --- frame builders --------------------------------------------------------------------------


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ether(etype: int, payload: bytes, vlans: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet frame; vlans is a list of (tpid, vlan id), outermost first."""
    tags = b"".join(struct.pack(">HH", tpid, (5 << 13) | vid) for tpid, vid in vlans)  # PCP 5 set
    return mac(DST_MAC) + mac(SRC_MAC) + tags + struct.pack(">H", etype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, frag_offset: int = 0, more: bool = False,
         options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    flags = (0x2000 if more else 0) | frag_offset
    head = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 1, flags, 64,
                       proto, 0, ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return head + options + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes) -> bytes:
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), nh, 64,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


def ext_hdr(nh: int, body_len: int = 6) -> bytes:
    """Hop-by-hop / routing / destination options header: length in 8-byte units beyond the first."""
    total = 2 + body_len
    assert total % 8 == 0
    return bytes([nh, total // 8 - 1]) + b"\x01" * body_len


def frag_hdr(nh: int, offset: int, more: bool) -> bytes:
    return struct.pack(">BBHI", nh, 0, (offset << 3) | int(more), 0x1234)


def ah_hdr(nh: int) -> bytes:
    return bytes([nh, 4, 0, 0]) + b"\x00" * 20  # (4 + 2) * 4 = 24 bytes


def tcp(sport: int, dport: int) -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def udp(sport: int, dport: int, data: bytes = b"hi") -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data


def icmp(type_: int = 8) -> bytes:
    return struct.pack(">BBHHH", type_, 0, 0, 7, 1) + b"ping"


def arp(sender: str, target: str) -> bytes:
    return struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac(SRC_MAC), ipaddress.IPv4Address(sender).packed,
                       b"\x00" * 6, ipaddress.IPv4Address(target).packed)


def pcap(frames: list[bytes], ts: int = TS, linktype: int = 1, snaplen: int = 262144, nano: bool = True,
         orig_lens: list[int] | None = None) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, data in enumerate(frames):
        sec, ns = divmod(ts + i, 1_000_000_000)
        orig = orig_lens[i] if orig_lens else len(data)
        out.append(struct.pack("<IIII", sec, ns if nano else ns // 1000, min(len(data), snaplen), orig))
        out.append(data[:snaplen])
    return b"".join(out)


def rows(tmp_path: Path, frames: list[bytes], **kw: object) -> list[dict[str, str]]:
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap(frames, **kw))  # type: ignore[arg-type]
    lines = list(csv_lines([path]))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert lines[0] == ",".join(CSV_COLUMNS) + "\n"
    parsed = list(csv.DictReader(io.StringIO("".join(lines))))
    assert all(None not in r and len(r) == len(CSV_COLUMNS) for r in parsed)
    return parsed


def pick(row: dict[str, str], *cols: str) -> tuple[str, ...]:
    return tuple(row[c] for c in cols)


L34 = ("ethertype", "vlan", "src_ip", "dst_ip", "protocol", "src_port", "dst_port")


# --- tests -----------------------------------------------------------------------------------


def test_header_only_for_no_packets(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(b"")
    assert list(csv_lines([tmp_path / "empty.pcap"])) == [",".join(CSV_COLUMNS) + "\n"]


def test_ipv4_tcp_full_row(tmp_path: Path) -> None:
    frame = ether(0x0800, ipv4("10.0.0.1", "192.168.1.2", 6, tcp(44321, 443)))
    [row] = rows(tmp_path, [frame], orig_lens=[1514])
    assert row == {
        "time": "1700000000123.456", "src_mac": SRC_MAC, "dst_mac": DST_MAC, "ethertype": "0x0800",
        "vlan": "", "src_ip": "10.0.0.1", "dst_ip": "192.168.1.2", "protocol": "TCP",
        "src_port": "44321", "dst_port": "443", "length": "1514",
    }


def test_time_is_exact_milliseconds_with_microseconds(tmp_path: Path) -> None:
    frame = ether(0x88CC, b"lldp")
    got = [r["time"] for r in rows(tmp_path, [frame] * 3, ts=1_700_000_000_000_999_999)]
    assert got == ["1700000000000.999", "1700000000001.000", "1700000000001.000"]
    got = [r["time"] for r in rows(tmp_path, [frame], ts=5_000_001_000, nano=False)]
    assert got == ["5000.001"]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 17, udp(5353, 53))),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "UDP", "5353", "53")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 1, icmp())),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "ICMP", "", "")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 132, udp(2905, 2906))),  # SCTP ports sit where UDP's do
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "SCTP", "2905", "2906")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 47, b"\x00\x00\x08\x00")),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "GRE", "", "")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 50, b"\x00" * 16)),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "ESP", "", "")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 253, b"\x00" * 8)),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "253", "", "")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 6, tcp(1, 2), options=b"\x01\x01\x01\x00")),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "TCP", "1", "2")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 17, udp(1000, 2000), more=True)),  # first fragment
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "UDP", "1000", "2000")),
        (ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 17, b"\x03\xe8\x07\xd0" * 8, frag_offset=185)),
         ("0x0800", "", "1.2.3.4", "5.6.7.8", "UDP", "", "")),
        (ether(0x86DD, ipv6("2001:db8::1", "2001:db8:0:0:1::2", 6, tcp(50000, 22))),
         ("0x86dd", "", "2001:db8::1", "2001:db8::1:0:0:2", "TCP", "50000", "22")),
        (ether(0x86DD, ipv6("fe80::1", "ff02::1", 58, icmp(135))),
         ("0x86dd", "", "fe80::1", "ff02::1", "ICMPv6", "", "")),
        (ether(0x86DD, ipv6("::1", "::2", 44, frag_hdr(17, 0, True) + udp(4000, 4001))),
         ("0x86dd", "", "::1", "::2", "UDP", "4000", "4001")),
        (ether(0x86DD, ipv6("::1", "::2", 44, frag_hdr(17, 181, False) + udp(4000, 4001))),
         ("0x86dd", "", "::1", "::2", "UDP", "", "")),
        (ether(0x86DD, ipv6("::1", "::2", 44, frag_hdr(60, 181, False) + ext_hdr(17) + udp(1, 2))),
         ("0x86dd", "", "::1", "::2", "60", "", "")),  # later fragments hold payload, not headers
        (ether(0x86DD, ipv6("::1", "::2", 0, ext_hdr(43))),  # hop-by-hop says routing follows; it doesn't
         ("0x86dd", "", "::1", "::2", "", "", "")),
        (ether(0x86DD, ipv6("::1", "::2", 0, ext_hdr(43, 14) + ext_hdr(60) + ext_hdr(51)
                            + ah_hdr(44) + frag_hdr(6, 0, True) + tcp(80, 8080))),
         ("0x86dd", "", "::1", "::2", "TCP", "80", "8080")),
        (ether(0x86DD, ipv6("::1", "::2", 59, b"")),
         ("0x86dd", "", "::1", "::2", "59", "", "")),
        (ether(0x0800, ipv4("10.1.1.1", "10.2.2.2", 17, udp(1, 2)), [(0x8100, 100)]),
         ("0x0800", "100", "10.1.1.1", "10.2.2.2", "UDP", "1", "2")),
        (ether(0x86DD, ipv6("::a", "::b", 17, udp(1, 2)), [(0x88A8, 300), (0x8100, 42)]),
         ("0x86dd", "300", "::a", "::b", "UDP", "1", "2")),
        (ether(0x0806, arp("192.168.0.1", "192.168.0.254")),
         ("0x0806", "", "192.168.0.1", "192.168.0.254", "ARP", "", "")),
        (ether(0x0806, arp("192.168.0.1", "192.168.0.254"), [(0x8100, 4095)]),
         ("0x0806", "4095", "192.168.0.1", "192.168.0.254", "ARP", "", "")),
        (ether(0x88CC, b"\x02\x07\x04" + b"\x00" * 40),
         ("0x88cc", "", "", "", "", "", "")),
        (ether(0x0026, b"\x42\x42\x03" + b"\x00" * 40),  # 802.3 length field: not an EtherType
         ("", "", "", "", "", "", "")),
    ],
)
def test_protocol_rows(tmp_path: Path, frame: bytes, expected: tuple[str, ...]) -> None:
    [row] = rows(tmp_path, [frame])
    assert pick(row, *L34) == expected
    assert (row["src_mac"], row["dst_mac"], row["length"]) == (SRC_MAC, DST_MAC, str(len(frame)))


def test_snaplen_truncated_packets(tmp_path: Path) -> None:
    frame = ether(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1234, 80) + b"x" * 1000))
    # Cut inside the IPv4 destination address: everything before it is still reported.
    [row] = rows(tmp_path, [frame], snaplen=14 + 18)
    assert pick(row, *L34) == ("0x0800", "", "10.0.0.1", "", "TCP", "", "")
    assert row["length"] == str(len(frame))
    # Cut after the IP header and one port byte: no ports, rest intact.
    [row] = rows(tmp_path, [frame], snaplen=14 + 20 + 3)
    assert pick(row, *L34) == ("0x0800", "", "10.0.0.1", "10.0.0.2", "TCP", "", "")
    # Cut in the middle of the destination MAC.
    [row] = rows(tmp_path, [frame], snaplen=4)
    assert (row["src_mac"], row["dst_mac"], row["ethertype"], row["length"]) == ("", "", "", str(len(frame)))


FUZZ_FRAMES = [
    ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 6, tcp(1, 2), options=b"\x01" * 8)),
    ether(0x86DD, ipv6("::1", "::2", 60, ext_hdr(51) + ah_hdr(44) + frag_hdr(17, 0, False) + udp(7, 9)),
          [(0x88A8, 1), (0x8100, 2)]),
    ether(0x0806, arp("1.1.1.1", "2.2.2.2"), [(0x8100, 9)]),
    ether(0x0800, bytes([0x4F]) + b"\xff" * 40),  # IHL says 60 bytes, garbage inside
    ether(0x86DD, ipv6("::1", "::2", 0, bytes([0, 255]) + b"\xff" * 40)),  # hop-by-hop runs off the end
]


@pytest.mark.parametrize("frame", FUZZ_FRAMES)
def test_every_truncation_is_decoded_without_error(tmp_path: Path, frame: bytes) -> None:
    frames = [frame[:n] for n in range(len(frame) + 1)]
    got = rows(tmp_path, frames, orig_lens=[len(frame)] * len(frames))
    assert len(got) == len(frames)
    full = got[-1]
    for row in got:
        assert row["length"] == str(len(frame))
        # A shorter capture never invents a value: each field is either empty or the full decode's.
        assert all(row[c] in ("", full[c]) for c in CSV_COLUMNS if c != "time")


def test_other_linktype_gives_time_and_length_only(tmp_path: Path) -> None:
    radio = b"\x00" * 40  # 802.11 with radiotap: not decoded
    [row] = rows(tmp_path, [radio], linktype=127)
    assert row["time"] == "1700000000123.456" and row["length"] == str(len(radio))
    assert all(row[c] == "" for c in CSV_COLUMNS if c not in ("time", "length"))


@pytest.mark.parametrize(("linktype", "head"), [
    (101, b""), (228, b""), (0, b"\x02\x00\x00\x00"), (108, b"\x00\x00\x00\x02"), (9, b"\xff\x03\x00\x21"),
    (113, b"\x00\x04\x00\x01\x00\x06\x02\x00\x00\x00\x00\x01\x00\x00\x08\x00"),
    (276, b"\x08\x00\x00\x00\x00\x00\x00\x03\x00\x01\x04\x06\x02\x00\x00\x00\x00\x01\x00\x00"),
])
def test_raw_ip_loopback_ppp_and_linux_cooked_captures(tmp_path: Path, linktype: int, head: bytes) -> None:
    """What `tcpdump -i any` writes (SLL, SLL2), raw IP, BSD loopback and PPP: the IP fields as for Ethernet; the
    cooked captures also have the source MAC."""
    packet = ipv4("1.2.3.4", "5.6.7.8", 6, tcp(1, 2))
    [row] = rows(tmp_path, [head + packet], linktype=linktype)
    assert (row["ethertype"], row["src_ip"], row["dst_ip"], row["protocol"], row["src_port"], row["dst_port"]) == (
        "0x0800", "1.2.3.4", "5.6.7.8", "TCP", "1", "2")
    assert row["src_mac"] == ("02:00:00:00:00:01" if linktype in (113, 276) else "") and row["dst_mac"] == ""


def test_several_chunks_and_partial_tail(tmp_path: Path) -> None:
    frame = ether(0x0800, ipv4("1.2.3.4", "5.6.7.8", 17, udp(1, 2)))
    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    c = tmp_path / "c.pcap"
    a.write_bytes(pcap([frame] * 2))
    b.write_bytes(pcap([frame], linktype=101))
    c.write_bytes(pcap([frame] * 3)[:-5])  # last record still being written
    lines = list(csv_lines([a, b, tmp_path / "gone.pcap", c]))
    assert len(lines) == 1 + 2 + 1 + 2
    assert [line.split(",")[7] for line in lines[1:]] == ["UDP", "UDP", "", "UDP", "UDP"]
