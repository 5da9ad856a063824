"""Real flow collectors for the export tests: nfdump's nfcapd, pmacct's nfacctd (both UDP only in the versions
Debian ships: nfdump 1.7.1, pmacct 1.7.7), and tshark's IPFIX dissector for a TCP session captured on loopback.
Each gives the records it received as tuples of our CSV's columns, to compare flow by flow."""

from __future__ import annotations

import calendar
import csv
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from . import oracles

# our CSV's columns that a collector can know (not ra, exid, eng, tr: the exporter's identity and the write time)
COLUMNS = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "stos", "ipkt", "ibyt", "svln", "ismc", "idmc")
FLAGS = "CEUAPRSF"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ours(csv_path: Path) -> Counter:
    rows = []
    with csv_path.open() as f:
        for row in csv.DictReader(f):
            if row["ts"] == "Summary":
                break
            rows.append(tuple(row[c] for c in COLUMNS))
    return Counter(rows)


class Nfcapd:
    def __init__(self, workdir: Path, buffer: int = 1 << 25) -> None:
        self.dir, self.port = workdir / "nfcapd", free_port()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.log = workdir / "nfcapd.log"
        self.proc = subprocess.Popen(["nfcapd", "-w", str(self.dir), "-b", "127.0.0.1", "-p", str(self.port),
                                      "-B", str(buffer)], stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while oracles._udp_queue(self.port) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def drops(self) -> int:
        """Datagrams the kernel dropped at nfcapd's socket."""
        q = oracles._udp_queue(self.port)
        return q[1] if q else -1

    def stop(self) -> tuple[Counter, dict[str, int]]:
        """The records it wrote, and its own counts (flows, sequence_errors, ...)."""
        deadline = time.monotonic() + 10
        while (oracles._udp_queue(self.port) or (0, 0))[0] and time.monotonic() < deadline:
            time.sleep(0.05)  # until it has read what was sent
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        counts = oracles.nfcapd_counts(self.log.read_text(errors="replace"))
        rows, _summary, _seconds = oracles.read_nfdump(self.dir)
        return Counter(tuple(str(r[c]) for c in COLUMNS) for r in rows), counts


class Nfacctd:
    """pmacct's collector with its print plugin writing CSV: every primitive our records have, numeric."""

    PRIMITIVES = "src_mac, dst_mac, vlan, src_host, dst_host, src_port, dst_port, tcpflags, proto, tos, " \
                 "timestamp_start, timestamp_end"

    def __init__(self, workdir: Path) -> None:
        self.port, self.out = free_port(), workdir / "nfacctd.csv"
        conf = workdir / "nfacctd.conf"
        conf.write_text("\n".join([
            "daemonize: false", "nfacctd_ip: 127.0.0.1", f"nfacctd_port: {self.port}", "nfacctd_pipe_size: 33554432",
            "plugins: print[out]", "print_output[out]: csv", f"print_output_file[out]: {self.out}",
            "print_refresh_time[out]: 3600", "print_num_protos[out]: true", "timestamps_since_epoch[out]: true",
            f"aggregate[out]: {self.PRIMITIVES}", ""]))
        self.log = workdir / "nfacctd.log"
        self.proc = subprocess.Popen(["nfacctd", "-f", str(conf)], stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while oracles._udp_queue(self.port) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> Counter:
        deadline = time.monotonic() + 10
        while (oracles._udp_queue(self.port) or (0, 0))[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # the core process hands records to the plugin through a pipe
        self.proc.send_signal(signal.SIGINT)  # the print plugin writes its cache out as it ends
        self.proc.wait(60)
        out = Counter()
        with self.out.open() as f:
            for r in csv.DictReader(f):
                out[_from_pmacct(r)] += 1
        return out


def _when(epoch: str) -> tuple[str, int]:
    seconds, _, frac = epoch.partition(".")
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(seconds))), int(seconds) * 1000 + int(frac[:3] or 0)


def flags_text(value: int) -> str:
    return "".join(FLAGS[i] if value & (0x80 >> i) else "." for i in range(8))


def _from_pmacct(r: dict[str, str]) -> tuple[str, ...]:
    (ts, first), (te, last) = _when(r["TIMESTAMP_START"]), _when(r["TIMESTAMP_END"])
    td = last - first
    proto = int(r["PROTOCOL"])
    return (ts, te, f"{td // 1000}.{td % 1000:03d}", r["SRC_IP"], r["DST_IP"], r["SRC_PORT"], r["DST_PORT"],
            oracles.nfdump_proto(proto), flags_text(int(r["TCP_FLAGS"])), r["TOS"], r["PACKETS"], r["BYTES"],
            r["VLAN"], r["SRC_MAC"], r["DST_MAC"])


TSHARK_FIELDS = ("cflow.flowset_id", "cflow.flowset_length", "cflow.srcaddr", "cflow.dstaddr", "cflow.srcaddrv6",
                 "cflow.dstaddrv6", "cflow.srcport", "cflow.dstport", "cflow.protocol", "cflow.tcpflags", "cflow.tos",
                 "cflow.vlanid", "cflow.srcmac", "cflow.dstmac", "cflow.packets", "cflow.octets",
                 "cflow.abstimestart", "cflow.abstimeend")


def tshark_ipfix(pcap: Path, port: int, record_sizes: dict[int, int]) -> Counter:
    """The IPFIX records of a captured TCP session, as tshark's dissector reads them. tshark lists each field's
    values per packet; the sets (their ids and lengths) say which values belong to which record."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-d", f"tcp.port=={port},cflow", "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for name in TSHARK_FIELDS:
        cmd += ["-e", name]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600,
                          env=dict(os.environ, TZ="UTC")).stdout
    out: Counter = Counter()
    for line in text.splitlines():
        cols = dict(zip(TSHARK_FIELDS, (c.split("|") if c else [] for c in line.split("\t")), strict=True))
        at = {name: 0 for name in TSHARK_FIELDS}
        for set_id, length in zip(cols["cflow.flowset_id"], cols["cflow.flowset_length"], strict=True):
            set_id = int(set_id, 0)
            if set_id < 256:
                continue
            for _ in range((int(length) - 4) // record_sizes[set_id]):
                src, dst = ("cflow.srcaddr", "cflow.dstaddr") if set_id == 256 else ("cflow.srcaddrv6",
                                                                                       "cflow.dstaddrv6")
                value = {}
                for name in (src, dst, *TSHARK_FIELDS[6:]):
                    value[name] = cols[name][at[name]]
                    at[name] += 1
                out[_from_tshark(value, src, dst)] += 1
    return out


def _tshark_time(text: str) -> tuple[str, int]:
    """'Nov 14, 2023 22:13:20.002000000 UTC' -> (CSV time, ms since the epoch)."""
    whole, _, frac = text.partition(".")
    when = time.strptime(whole, "%b %d, %Y %H:%M:%S")
    return time.strftime("%Y-%m-%d %H:%M:%S", when), calendar.timegm(when) * 1000 + int(frac[:3])


def _from_tshark(v: dict[str, str], src: str, dst: str) -> tuple[str, ...]:
    (ts, first), (te, last) = _tshark_time(v["cflow.abstimestart"]), _tshark_time(v["cflow.abstimeend"])
    td = last - first
    proto = int(v["cflow.protocol"])
    return (ts, te, f"{td // 1000}.{td % 1000:03d}", v[src], v[dst], v["cflow.srcport"], v["cflow.dstport"],
            oracles.nfdump_proto(proto), flags_text(int(v["cflow.tcpflags"], 0)), str(int(v["cflow.tos"], 0)),
            v["cflow.packets"], v["cflow.octets"], v["cflow.vlanid"], v["cflow.srcmac"], v["cflow.dstmac"])
