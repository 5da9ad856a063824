"""The same traffic written by real capturers in every format the meter reads, metered to the same records:
tcpdump's pcap of an Ethernet interface; the same file as pcapng (Wireshark's editcap) and dumpcap's own live
pcapng; tcpdump on `any` (Linux cooked capture v2, what `-i any` writes, and v1 with -y LINUX_SLL)."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from opentap.flows import nfcsv
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files
from opentap.pcap.pcapfile import iter_packets

from ..support import oracles
from ..support.netns import A_IP, B_IP

pytestmark = pytest.mark.root
KEY = ("sa", "da", "sp", "dp", "pr", "flg", "stos", "ipkt", "ibyt", "svln", "ismc")
# the capturers and editcap without the sanitizer runtime that scripts/sanitized.sh preloads (editcap hangs in it)
TOOLS_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def capture(argv: list[str], log: Path, ready: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("w"), env=TOOLS_ENV)
    deadline = time.monotonic() + 10
    while ready not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready in log.read_text(), log.read_text()
    return proc


def records(path: Path) -> list[dict[str, str]]:
    flows = Flows.concat(list(meter_files([path], FlowMeter(idle_timeout=60))))
    rows = list(csv.DictReader(io.StringIO(nfcsv.HEADER + "\n" + nfcsv.csv_text(flows, written_at=0))))
    return sorted(rows, key=lambda r: tuple(r[k] for k in KEY))


def seconds(row: dict[str, str]) -> tuple[float, float]:
    start = time.mktime(time.strptime(row["ts"], "%Y-%m-%d %H:%M:%S"))
    return start, start + float(row["td"])


@pytest.mark.skipif(bool(oracles.have("dumpcap", "editcap")), reason=str(oracles.have("dumpcap", "editcap")))
def test_pcap_pcapng_and_linux_cooked_captures_meter_alike(lan, tmp_path: Path) -> None:
    ns = ["ip", "netns", "exec", lan.ns_a]
    only = f"host {A_IP} and host {B_IP}"  # not the bridge's own IGMP, which only the host end sees
    files = {"eth": tmp_path / "eth.pcap", "sll2": tmp_path / "sll2.pcap", "sll": tmp_path / "sll.pcap",
             "live": tmp_path / "live.pcapng"}
    procs = [
        capture(["tcpdump", "-i", lan.ha, "-n", "-w", str(files["eth"]), only], tmp_path / "eth.log", "listening on"),
        capture([*ns, "tcpdump", "-i", "any", "-n", "-w", str(files["sll2"]), only], tmp_path / "sll2.log",
                "listening on"),
        capture([*ns, "tcpdump", "-i", "any", "-y", "LINUX_SLL", "-n", "-w", str(files["sll"]), only],
                tmp_path / "sll.log", "listening on"),
        capture(["dumpcap", "-q", "-i", lan.ha, "-f", only, "-w", str(files["live"])], tmp_path / "live.log",
                "Capturing on"),
    ]
    try:  # both ends on one CPU: the capture points then see each direction in one order (netns._traffic)
        server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10, cpu=0)
        lan.run(lan.ns_a, "tcp", B_IP, 6000, 200_000, cpu=0)
        server.communicate(timeout=15)
        lan.run(lan.ns_a, "udp", B_IP, 5000, 30, 100, cpu=0)
        lan.run(lan.ns_a, "icmp", B_IP, 3, cpu=0)
        time.sleep(1.5)  # libpcap hands packets over in blocks, at least once a second
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
    converted = tmp_path / "eth.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(files["eth"]), str(converted)], check=True, env=TOOLS_ENV,
                   timeout=60)
    linktypes = {name: {lt for _ts, _wire, lt, _data in iter_packets([path])} for name, path in files.items()}
    assert linktypes == {"eth": {1}, "sll2": {276}, "sll": {113}, "live": {1}}

    eth = records(files["eth"])
    assert len(eth) >= 6 and {r["pr"] for r in eth} == {"TCP", "UDP", "ICMP"}
    assert records(converted) == eth  # the same packets in pcapng: the same records, to the millisecond
    for name in ("sll2", "sll", "live"):  # the same traffic seen by another capturer: times within a few ms
        theirs = records(files[name])
        assert [tuple(r[k] for k in KEY) for r in theirs] == [tuple(r[k] for k in KEY) for r in eth], name
        for mine, other in zip(eth, theirs, strict=True):
            assert all(abs(a - b) <= 1.01 for a, b in zip(seconds(mine), seconds(other), strict=True)), name
