"""Independent oracles for the flow meter: softflowd -> nfcapd -> nfdump, tshark, and a pure-Python reader.

Truth (own_truth, tshark_truth) is per one-way key (sa, da, sp, dp, proto) -> (packets, bytes): proto is the
IPv4 protocol or the IPv6 upper-layer header after extension headers (a fragment's Fragment-header next
header); sp/dp are TCP/UDP ports where the packet carries that header (not in non-first fragments), else 0;
with icmp_type_in_dp, ICMP/ICMPv6 packets carrying their header get dp = type * 256 + code (the NetFlow
convention); bytes are the IP length (IPv4 total length, IPv6 payload length + 40): no L2, no padding.

What the softflowd 1.1.0 -> nfcapd/nfdump 1.7.1 pipeline reports instead (observed here, modelled exactly
by softflowd_expected, source read to confirm):
- bytes = captured frame length minus the L2 header (14, or 18 with one 802.1Q tag): Ethernet padding IS
  counted (a 40-byte TCP ACK padded to 60 counts 46 bytes); frames are never reassembled.
- only untagged or single-0x8100-tagged frames are IP to it: QinQ (0x88a8 outer) and ARP are ignored.
- IPv4 non-first fragments: their own flow (sa, da, 0, 0, proto). IPv6 non-first fragments: proto 0 (!).
  First fragments carry ports and count with the flow.
- ICMP (v4): sp 0, dp = type * 256 + code (echo request 2048, reply 0). ICMPv6: nfdump shows dp 0.
- reading a file (-r), softflowd never expires flows on idle time ("If we are reading from a capture
  file, we never expire flows based on time"); maxlife marks a flow, and marked flows are exported after
  the current pcap_dispatch batch of -m packets; so records split arbitrarily: compare per-key sums.
- v9 carries IPv6 (NetFlow v5 cannot); dir is 1 when the source address sorts above the destination.
- softflowd exports each direction of its bidirectional flows as its own record (zero-packet sides not).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from opentap.flows.nfcsv import proto_name

Key = tuple[str, str, int, int, int]
Counts = dict[Key, tuple[int, int]]
NFDUMP_CSV_HEADER = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln,"
    "ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,exid,tr"
)
TAGS = (0x8100, 0x88A8, 0x9100)
V6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options (Fragment, 44, is handled apart)


def nfdump_proto(p: int) -> str:
    """nfdump's `pr` text: the device's table, which test_oracles checks against the real nfdump's output."""
    return proto_name(p)


def have(*tools: str) -> str | None:
    """None when all tools are installed, else a reason to skip."""
    missing = [t for t in tools if not shutil.which(t)]
    return f"not installed: {', '.join(missing)} (apt-get install softflowd nfdump tshark)" if missing else None


class Packet(NamedTuple):
    ts_us: int
    wirelen: int  # original frame length from the record header
    tags: tuple[int, ...]  # VLAN TPIDs, outermost first
    l2len: int  # Ethernet header incl. tags
    af: int  # 4, 6, or 0 for non-IP
    key: Key | None  # (sa, da, sp, dp, proto) with dp = 0 for ICMP
    iplen: int
    frag: int  # 0 not a fragment, 1 first fragment, 2 non-first
    icmp: int  # type * 256 + code when the packet carries an ICMP/ICMPv6 header, else -1
    tcp_flags: int


_ADDR: dict[bytes, str] = {}


def _addr(b: bytes) -> str:
    s = _ADDR.get(b)
    if s is None:
        s = _ADDR[b] = str(ipaddress.ip_address(b))
    return s


def parse_frame(ts_us: int, wirelen: int, f: bytes) -> Packet:
    off, tags = 12, []
    et = int.from_bytes(f[12:14], "big")
    while et in TAGS and len(f) >= off + 6:
        tags.append(et)
        off += 4
        et = int.from_bytes(f[off : off + 2], "big")
    l2, sp, dp, icmp, flags, frag = off + 2, 0, 0, -1, 0, 0
    if et == 0x0800 and len(f) >= l2 + 20:
        af, ihl, iplen, fr = 4, (f[l2] & 15) * 4, int.from_bytes(f[l2 + 2 : l2 + 4], "big"), f[l2 + 6] << 8 | f[l2 + 7]
        proto, src, dst = f[l2 + 9], f[l2 + 12 : l2 + 16], f[l2 + 16 : l2 + 20]
        frag = 0 if not fr & 0x3FFF else 2 if fr & 0x1FFF else 1
        p = l2 + ihl
    elif et == 0x86DD and len(f) >= l2 + 40:
        af, iplen, proto = 6, int.from_bytes(f[l2 + 4 : l2 + 6], "big") + 40, f[l2 + 6]
        src, dst, p = f[l2 + 8 : l2 + 24], f[l2 + 24 : l2 + 40], l2 + 40
        while len(f) >= p + 8 and (proto in V6_EXT or proto == 44):
            if proto == 44:
                frag = 2 if int.from_bytes(f[p + 2 : p + 4], "big") & 0xFFF8 else 1
                proto, p = f[p], p + 8
                if frag == 2:
                    break
            else:
                proto, p = f[p], p + (f[p + 1] + 1) * 8
    else:
        return Packet(ts_us, wirelen, tuple(tags), l2, 0, None, 0, 0, -1, 0)
    if frag != 2 and len(f) >= p + 4:
        if proto in (6, 17):
            sp, dp = int.from_bytes(f[p : p + 2], "big"), int.from_bytes(f[p + 2 : p + 4], "big")
            flags = f[p + 13] if proto == 6 and len(f) > p + 13 else 0
        elif proto == (1 if af == 4 else 58):
            icmp = f[p] * 256 + f[p + 1]
    key = (_addr(src), _addr(dst), sp, dp, proto)
    return Packet(ts_us, wirelen, tuple(tags), l2, af, key, iplen, frag, icmp, flags)


def iter_packets(pcap: Path | str) -> Iterator[Packet]:
    """Every record of a classic pcap file (either byte order, us or ns), Ethernet only, parsed."""
    with open(pcap, "rb", buffering=1 << 20) as fh:
        head = fh.read(24)
        magic = head[:4]
        order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        scale = 1 if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4") else 1000
        if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            raise ValueError(f"{pcap}: not a classic pcap file")
        if struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF != 1:
            raise ValueError(f"{pcap}: linktype is not Ethernet")
        rec = struct.Struct(order + "IIII")
        while len(hdr := fh.read(16)) == 16:
            sec, frac, caplen, wirelen = rec.unpack(hdr)
            yield parse_frame(sec * 1_000_000 + frac // scale, wirelen, fh.read(caplen))


def _add(out: Counts, key: Key, nbytes: int) -> None:
    p, b = out.get(key, (0, 0))
    out[key] = (p + 1, b + nbytes)


def own_truth(pcap: Path | str, *, icmp_type_in_dp: bool = False) -> Counts:
    out: Counts = {}
    for pk in iter_packets(pcap):
        if pk.key is not None:
            key = pk.key if not (icmp_type_in_dp and pk.icmp >= 0) else pk.key[:3] + (pk.icmp, pk.key[4])
            _add(out, key, pk.iplen)
    return out


_FIELDS = (
    "ip.src ip.dst ipv6.src ipv6.dst ip.proto ipv6.nxt ipv6.hopopts.nxt ipv6.routing.nxt ipv6.dstopts.nxt "
    "ipv6.fraghdr.nxt tcp.srcport tcp.dstport udp.srcport udp.dstport ip.len ipv6.plen icmp.type icmp.code "
    "icmpv6.type icmpv6.code"
)
TSHARK_FIELDS = _FIELDS.split()


def tshark_truth(pcap: Path | str, *, icmp_type_in_dp: bool = False, timeout: float = 1800) -> Counts:
    """The same as own_truth, from tshark's dissection (IP reassembly off; first occurrence = outer header)."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    out: Counts = {}
    with tempfile.TemporaryFile("w+") as tmp:
        subprocess.run(cmd, stdout=tmp, stderr=subprocess.DEVNULL, check=True, timeout=timeout, text=True)
        tmp.seek(0)
        for line in tmp:
            c = line.rstrip("\n").split("\t")
            if c[0]:
                sa, da, proto, nbytes, ity, ico = c[0], c[1], int(c[4]), int(c[14]), c[16], c[17]
            elif c[2]:
                sa, da, proto, nbytes, ity, ico = c[2], c[3], int(c[5]), int(c[15]) + 40, c[18], c[19]
                ext = {0: c[6], 43: c[7], 60: c[8], 44: c[9]}
                while proto in ext and ext[proto]:
                    proto = int(ext.pop(proto))
            else:
                continue  # not IP
            sp, dp = (c[10], c[11]) if proto == 6 else (c[12], c[13]) if proto == 17 else ("", "")
            dpn = int(dp or 0)
            if icmp_type_in_dp and ity and proto in (1, 58):  # (not an ICMP header inside a tunnel)
                dpn = int(ity) * 256 + int(ico or 0)
            _add(out, (sa, da, int(sp or 0), dpn, proto), nbytes)
    return out


def softflowd_key(pk: Packet) -> tuple[Key, int] | None:
    """The key and byte count under which softflowd -> nfdump reports this packet (None: ignored)."""
    if pk.key is None or pk.tags not in ((), (0x8100,)):
        return None
    sa, da, sp, dp, proto = pk.key
    if pk.frag == 2:
        key = (sa, da, 0, 0, proto if pk.af == 4 else 0)
    elif pk.icmp >= 0:
        key = (sa, da, 0, pk.icmp if pk.af == 4 else 0, proto)
    else:
        key = pk.key
    return key, pk.wirelen - pk.l2len


def softflowd_differences(pkts: list[Packet]) -> tuple[set[Key], dict[Key, int]]:
    """Against the truth (own_truth with icmp_type_in_dp): the keys whose packets softflowd counts under other
    keys or not at all (fragments, QinQ, ICMPv6), and per key the Ethernet padding it adds to the bytes. On every
    other key softflowd's packets equal the truth's and its bytes are the truth's plus that padding."""
    pad: dict[Key, int] = {}
    odd: set[Key] = set()
    for p in pkts:
        if p.key is not None:
            k = p.key if p.icmp < 0 else p.key[:3] + (p.icmp, p.key[4])
            pad[k] = pad.get(k, 0) + p.wirelen - p.l2len - p.iplen
            if p.frag or len(p.tags) > 1 or (p.af == 6 and p.icmp >= 0):
                odd.add(k)
    return odd, pad


def softflowd_expected(pcap: Path | str) -> Counts:
    out: Counts = {}
    for pk in iter_packets(pcap):
        if (kb := softflowd_key(pk)) is not None:
            _add(out, *kb)
    return out


class FlowRecords(list[dict[str, str | int]]):
    """nfdump CSV rows as dicts keyed by its header, plus `proto`, `first_ms`, `last_ms` (ints, from -o pipe);
    and what each stage said: softflowd's statistics, nfcapd's, the kernel's drops, nfdump's summary."""

    softflowd: dict[str, int]
    nfcapd: dict[str, int]
    summary: dict[str, str]
    kernel_drops: int
    seconds: dict[str, float]  # softflowd (nfcapd receives meanwhile); nfcapd after it; nfdump -o csv

    @property
    def exported(self) -> int:
        return self.softflowd.get("records", 0)

    @property
    def lost(self) -> int:
        return self.exported - len(self)


def per_key(records: list[dict[str, str | int]]) -> Counts:
    out: Counts = {}
    for r in records:
        key = (str(r["sa"]), str(r["da"]), int(r["sp"]), int(r["dp"]), int(r["proto"]))
        p, b = out.get(key, (0, 0))
        out[key] = (p + int(r["ipkt"]), b + int(r["ibyt"]))
    return out


def _run_to_file(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    with tempfile.TemporaryFile("w+") as tmp:
        subprocess.run(cmd, stdout=tmp, stderr=subprocess.STDOUT, check=True, timeout=timeout, text=True, env=env)
        tmp.seek(0)
        return tmp.read()


def _as_is(_name: str, argv: list[str]) -> list[str]:
    return argv


def read_nfdump(flowdir: Path, timeout: float = 600, wrap: Callable[[str, list[str]], list[str]] = _as_is
                ) -> tuple[list[dict[str, str | int]], dict[str, str], float]:
    """All records of the nfcapd files in flowdir, nfdump's summary (flows, bytes, packets, ...), and the
    seconds `nfdump -o csv` took (the second run, for exact times, is the oracle's, not the pipeline's)."""
    if not any(flowdir.glob("nfcapd.*")):
        return [], {}, 0.0
    env = dict(os.environ, TZ="UTC")  # nfdump prints local time
    began = time.monotonic()
    csv = _run_to_file(wrap("nfdump", ["nfdump", "-R", str(flowdir), "-o", "csv"]), timeout, env).splitlines()
    seconds = time.monotonic() - began
    pipe = _run_to_file(["nfdump", "-R", str(flowdir), "-q", "-o", "pipe"], timeout, env).splitlines()
    header, end = csv[0].split(","), csv.index("Summary")
    rows, intern = [], {}
    for line, p in zip(csv[1:end], pipe, strict=True):
        rec: dict[str, str | int] = dict(zip(header, (intern.setdefault(v, v) for v in line.split(",")), strict=True))
        q = p.split("|")
        if (q[8], q[13], q[20], q[21]) != (rec["sp"], rec["dp"], rec["ipkt"], rec["ibyt"]):
            raise RuntimeError(f"nfdump csv and pipe outputs disagree: {line!r} vs {p!r}")
        rec.update(proto=int(q[3]), first_ms=int(q[1]), last_ms=int(q[2]))
        rows.append(rec)
    summary = dict(zip(csv[end + 1].split(","), csv[end + 2].split(","), strict=True)) if len(csv) > end + 2 else {}
    return rows, summary, seconds


def nfcapd_counts(log: str) -> dict[str, int]:
    """nfcapd's own counts (flows, packets, bytes, sequence_errors, bad_packets) from its output: one line per
    file it wrote, so a run across one of its 5-minute boundaries (-t, on the wall clock) has two, summed."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"Flows: (\d+), Packets: (\d+), Bytes: (\d+), Sequence Errors: (\d+), Bad Packets: (\d+)",
                         log):
        for key, value in zip(("flows", "packets", "bytes", "sequence_errors", "bad_packets"), m.groups(),
                              strict=True):
            counts[key] = counts.get(key, 0) + int(value)
    return counts


def _udp_queue(port: int) -> tuple[int, int] | None:
    """(bytes waiting, datagrams dropped) of the UDP socket bound to 127.0.0.1:port, from /proc/net/udp."""
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        c = line.split()
        if c[1] == f"0100007F:{port:04X}":
            return int(c[4].split(":")[1], 16), int(c[-1])
    return None


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, wait: float = 30) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def softflowd_pipeline(pcap: Path, workdir: Path, *, flows_hint: int, active: int | None = None,
                       idle: int | None = None, timeout: float | None = None,
                       wrap: Callable[[str, list[str]], list[str]] = _as_is) -> FlowRecords:
    """softflowd -r pcap (NetFlow v9, ms timestamps) -> nfcapd on a free 127.0.0.1 UDP port -> nfdump.

    -m is max(8192, 2 * flows_hint) so the flow table never overflows (overflow force-expires flows).
    active -> -t maxlife=..., idle -> -t tcp/udp/icmp/general=...: accepted, but see the module docstring:
    with -r softflowd applies no idle timeout and maxlife only in batches. Records lost between softflowd
    and nfdump: FlowRecords.lost (softflowd's "records" count minus the rows nfdump shows). wrap(name, argv)
    may put a command in front of softflowd, nfcapd and nfdump (bench/flows.py measures their memory)."""
    timeout = timeout or 300 + pcap.stat().st_size / 2e6
    workdir.mkdir(parents=True, exist_ok=True)
    flowdir = workdir / "flows"
    shutil.rmtree(flowdir, ignore_errors=True)
    flowdir.mkdir()
    helptext = subprocess.run(["nfcapd", "-h"], capture_output=True, text=True, timeout=30)
    dirflag = "-w" if re.search(r"^-w\s.*director", helptext.stdout + helptext.stderr, re.M) else "-l"  # 1.7 / 1.6
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = FlowRecords()
    out.seconds, nfcapd, began = {}, None, time.monotonic()
    log = workdir / "nfcapd.log"
    try:
        with open(log, "wb") as logf:
            argv = ["nfcapd", dirflag, str(flowdir), "-b", "127.0.0.1", "-p", str(port), "-B", "33554432"]
            nfcapd = subprocess.Popen(wrap("nfcapd", argv), stdout=logf, stderr=subprocess.STDOUT)
        while _udp_queue(port) is None and nfcapd.poll() is None and time.monotonic() - began < 20:
            time.sleep(0.05)
        if nfcapd.poll() is not None or _udp_queue(port) is None:
            raise RuntimeError(f"nfcapd did not start: {log.read_text()}")
        cmd = ["softflowd", "-r", str(pcap), "-v", "9", "-A", "milli", "-m", str(max(8192, 2 * flows_hint)),
               "-n", f"127.0.0.1:{port}", "-d", "-p", str(workdir / "softflowd.pid")]
        cmd += ["-t", f"maxlife={active}"] if active else []
        for name in ("tcp", "udp", "icmp", "general") if idle else ():
            cmd += ["-t", f"{name}={idle}"]
        t = time.monotonic()
        done = subprocess.run(wrap("softflowd", cmd), capture_output=True, text=True, timeout=timeout)
        out.seconds["softflowd"] = time.monotonic() - t
        (workdir / "softflowd.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"softflowd failed ({done.returncode}): {done.stdout}{done.stderr}")
        m = re.search(r"Flows exported: (\d+) \((\d+) records\) in (\d+) packets \((\d+) failures\)", done.stdout)
        n = re.search(r"Packets processed: (\d+)\nFragments: (\d+)\nIgnored packets: (\d+) \((\d+) non-IP", done.stdout)
        if not m or not n:
            raise RuntimeError(f"unexpected softflowd output: {done.stdout}")
        out.softflowd = dict(zip(("flows", "records", "packets_sent", "failures"), map(int, m.groups()), strict=True))
        out.softflowd |= dict(zip(("processed", "fragments", "ignored", "non_ip"), map(int, n.groups()), strict=True))
        t, quiet, drained = time.monotonic(), 0, 0.0
        while quiet < 5 and time.monotonic() - t < 60:  # until nfcapd has read all it was sent
            q = _udp_queue(port)
            if q is None or q[0] == 0:
                drained, quiet = drained or time.monotonic() - t, quiet + 1
            else:
                drained, quiet = 0.0, 0
            time.sleep(0.02)
        q = _udp_queue(port)
        out.kernel_drops = q[1] if q else -1
        stopping = time.monotonic()
        _stop(nfcapd, wait=120)  # nfcapd writes its last file as it stops
        out.seconds["nfcapd"] = drained + time.monotonic() - stopping  # the quiet polls are not its time
    finally:
        _stop(nfcapd, signal.SIGKILL)
    out.nfcapd = nfcapd_counts(log.read_text(errors="replace"))
    rows, out.summary, out.seconds["nfdump"] = read_nfdump(flowdir, wrap=wrap)
    out.extend(rows)
    return out
