"""Flow records in nfdump 1.7's `-o csv` format: the same header, the same value formats, and the same
"Summary" trailer, so the original OpenTap client (which drops the last three rows) and nfdump users read
our files unchanged.

Columns we fill: ts, te, td, sa, da, sp, dp, pr, flg, stos, ipkt, ibyt, svln, ismc (source MAC), idmc
(destination MAC), tr (when the record was written). Every other column carries nfdump's own zero value,
because a passive meter has no routing, interface or exporter information; `ra` is 0.0.0.0 (there is no
exporting router), `exid` 0 and `eng` 0/0. Times are UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from opentap import _native

from .meter import Flows

HEADER = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
          "svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,"
          "ra,eng,exid,tr")
COLUMNS = HEADER.split(",")
# What nfdump 1.7 prints in `pr` for protocols 0..137 (its own short names, read off its output); from 138 on
# it prints the number left-aligned in 5 characters.
PROTO_NAMES = (  # noqa: SIM905 - a word list reads better than 138 quoted strings
    "0 ICMP IGMP GGP IPIP ST TCP CBT EGP IGP BBN NVPII PUP ARGUS ENCOM XNET CHAOS UDP MUX DCN HMP PRM XNS Trnk1 "
    "Trnk2 Leaf1 Leaf2 RDP IRTP ISO-4 NETBK MFESP MEINP DCCP 3PC IDPR XTP DDP IDPR TP++ IL IPv6 SDRP Rte6 Frag6 "
    "IDRP RSVP GRE MHRP BNA ESP AH INLSP SWIPE NARP MOBIL TLSP SKIP ICMP6 NOHE6 OPTS6 HOST CFTP NET SATNT KLAN RVD "
    "IPPC FS SATM VISA IPCV CPNX CPHB WSN PVP BSATM SUNND WBMON WBEXP ISOIP VMTP SVMTP VINES TTP NSIGP DGP TCF EIGRP "
    "OSPF S-RPC LARP MTP AX.25 OS MICP SCCSP ETHIP ENCAP 99 GMTP IFMP PNNI PIM ARIS SCPS QNX A/N IPcmp SNP CpqPP "
    "IPXIP VRRP PGM 0hop L2TP DDX IATP STP SRP UTI SMP SM PTP ISIS4 FIRE CRTP CRUDP 128 IPLT SPS PIPE SCTP FC 134 "
    "MHEAD UDP-L MPLS"
).split()


def proto_name(p: int) -> str:
    return PROTO_NAMES[p] if p < len(PROTO_NAMES) else f"{p:<5d}"


_PROTO_TEXT = tuple(proto_name(p) for p in range(256))


def csv_bytes(flows: Flows, written_at: float | None = None) -> bytes:
    """The CSV lines of the flows (ASCII), each with its newline (b"" for none). Formatted in C (csrc/csvfmt.c):
    in Python it cost more than the metering."""
    now = time.time() if written_at is None else written_at
    tr = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
    return _native.csv(flows.data, _PROTO_TEXT, tr)


def csv_text(flows: Flows, written_at: float | None = None) -> str:
    """csv_bytes as text."""
    return csv_bytes(flows, written_at).decode("ascii")


class Summary:
    """nfdump's trailer: totals over the records shown."""

    def __init__(self) -> None:
        self.flows = self.bytes = self.packets = 0

    def add_flows(self, flows: Flows) -> None:
        self.flows += len(flows)
        self.packets += flows.packets
        self.bytes += flows.bytes

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

