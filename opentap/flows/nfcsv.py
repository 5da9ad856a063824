"""Flow records in nfdump 1.7's `-o csv` format: the same header, the same value formats, and the same
"Summary" trailer, so the original OpenTap client (which drops the last three rows) and nfdump users read
our files unchanged.

Columns we fill: ts, te, td, sa, da, sp, dp, pr, flg, stos, ipkt, ibyt, svln, ismc (source MAC), idmc
(destination MAC), tr (when the record was written). Every other column carries nfdump's own zero value,
because a passive meter has no routing, interface or exporter information; `ra` is 0.0.0.0 (there is no
exporting router), `exid` 0 and `eng` 0/0. Times are UTC.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .meter import NS, Flows

HEADER = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
          "svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,"
          "ra,eng,exid,tr")
COLUMNS = HEADER.split(",")
ORIGINAL_CLIENT_COLUMNS = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH",
               58: "ICMP6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP"}
FLAG_LETTERS = "CEUAPRSF"  # bit 7 .. bit 0, nfdump's order
ZERO_MAC = "00:00:00:00:00:00"
_MIDDLE = "0,0,0,0,0,0,0,0,0.0.0.0,0.0.0.0"  # in,out,sas,das,smk,dmk,dtos,dir,nh,nhb
_TAIL = ",".join(["0-0-0"] * 10 + ["    0.000"] * 3 + ["0.0.0.0", "0/0", "0"])


def flags_text(flags: int) -> str:
    return "".join(letter if flags & (0x80 >> i) else "." for i, letter in enumerate(FLAG_LETTERS))


def mac_text(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


def _addr(ip: int, hi: int, lo: int) -> str:
    if ip == 4:
        return socket.inet_ntoa(struct.pack("!I", lo))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // NS))


def lines(flows: Flows, written_at: float | None = None) -> Iterator[str]:
    """One CSV line per flow, with its newline."""
    now = time.time() if written_at is None else written_at
    tr = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
    cols = [getattr(flows, n).tolist() for n in ("ip", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport",
                                                 "proto", "flags", "tos", "packets", "bytes", "vlan", "smac",
                                                 "dmac", "first", "last")]
    rows = zip(*cols, strict=True)
    for ip, shi, slo, dhi, dlo, sp, dp, pr, flg, tos, pkts, byts, vlan, smac, dmac, first, last in rows:
        yield (f"{_when(first)},{_when(last)},{(last - first) / NS:.3f},{_addr(ip, shi, slo)},{_addr(ip, dhi, dlo)},"
               f"{sp},{dp},{PROTO_NAMES.get(pr, pr)},{flags_text(flg)},0,{tos},{pkts},{byts},0,0,{_MIDDLE},"
               f"{vlan},0,{mac_text(smac)},{ZERO_MAC},{mac_text(dmac)},{ZERO_MAC},{_TAIL},{tr}\n")


@dataclass
class Summary:
    """nfdump's trailer: totals over the records shown."""

    flows: int = 0
    bytes: int = 0
    packets: int = 0

    def add_line(self, line: str) -> None:
        parts = line.split(",", 13)
        self.flows += 1
        self.packets += int(parts[11])
        self.bytes += int(parts[12])

    def lines(self, duration_s: float) -> Iterator[str]:
        d = max(duration_s, 0.001)
        bpp = self.bytes // self.packets if self.packets else 0
        yield "Summary\n"
        yield "flows,bytes,packets,avg_bps,avg_pps,avg_bpp\n"
        yield f"{self.flows},{self.bytes},{self.packets},{int(self.bytes * 8 / d)},{int(self.packets / d)},{bpp}\n"

