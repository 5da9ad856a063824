"""Flow export received by real collectors, flow by flow equal to the CSV of the same run: IPFIX and NetFlow v9
over UDP into nfdump's nfcapd, IPFIX over UDP into pmacct's nfacctd, IPFIX over TCP read by tshark's dissector (the
nfcapd and nfacctd that Debian ships listen on UDP only). 100,000 records and more: none lost over TCP; over UDP
what is lost is what the collector and the kernel count as lost."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from opentap._native import FLOW_SIZE

from opentap.cli.main import main
from opentap.flows import ipfix, nfcsv
from opentap.flows.export import Exporter
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files

from ..support import oracles
from ..support.collectors import Nfacctd, Nfcapd, free_port, ours, tshark_ipfix
from ..support.pcapgen import generate

pytestmark = pytest.mark.skipif(bool(oracles.have("nfcapd", "nfdump", "nfacctd", "tshark", "tcpdump")),
                                reason=str(oracles.have("nfcapd", "nfdump", "nfacctd", "tshark", "tcpdump")))


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "traffic.pcap"
    generate(path, 760_000, seed=5)
    return path


def run(pcap: Path, out: Path, url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["flows", str(pcap), "-o", str(out), "--export", url]) == 0
    return capsys.readouterr().err


@pytest.mark.parametrize("protocol", ["ipfix", "netflow9"])
def test_nfcapd_receives_every_record(capture: Path, tmp_path: Path, protocol: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    nfcapd = Nfcapd(tmp_path)
    err = run(capture, tmp_path / "flows.csv", f"{protocol}://127.0.0.1:{nfcapd.port}", capsys)
    drops = nfcapd.drops()
    received, counts = nfcapd.stop()
    mine = ours(tmp_path / "flows.csv")
    assert sum(mine.values()) >= 100_000 and f"{sum(mine.values())} records in" in err
    lost = sum((mine - received).values())
    assert not received - mine  # nothing it got differs from our records
    # over UDP a loss is possible; it must then be one the collector and the kernel saw and counted
    assert lost == 0 or (drops > 0 and counts["sequence_errors"] > 0), (lost, drops, counts)
    assert counts["flows"] == sum(received.values()) and lost == 0, f"{lost} lost ({drops} datagrams dropped)"


def test_nfacctd_receives_every_record(capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pmacct = Nfacctd(tmp_path)
    run(capture, tmp_path / "flows.csv", f"ipfix://127.0.0.1:{pmacct.port}", capsys)
    received = pmacct.stop()
    mine = ours(tmp_path / "flows.csv")
    assert sum(mine.values()) >= 100_000
    assert received == mine


def test_udp_losses_are_counted_by_the_collector(capture: Path, tmp_path: Path) -> None:
    """A collector that cannot keep up (stopped, with a small socket buffer) while the first half is sent: the
    kernel drops datagrams, and when the second half comes the collector's sequence check sees the gap. What it
    did get is still right."""
    flows = Flows.concat(list(meter_files([capture], FlowMeter())))
    half = flows.count // 2 * FLOW_SIZE
    first, second = Flows(flows.data[:half], flows.count // 2), Flows(flows.data[half:], flows.count - flows.count // 2)
    (tmp_path / "flows.csv").write_text(nfcsv.HEADER + "\n" + nfcsv.csv_text(flows, written_at=0))
    nfcapd = Nfcapd(tmp_path, buffer=1 << 16)
    exporter = Exporter.open(f"ipfix://127.0.0.1:{nfcapd.port}")
    nfcapd.proc.send_signal(signal.SIGSTOP)
    try:
        exporter.send(first)
        time.sleep(0.2)
        drops = nfcapd.drops()
    finally:
        nfcapd.proc.send_signal(signal.SIGCONT)
    time.sleep(1)
    exporter.send(second)
    exporter.close()
    received, counts = nfcapd.stop()
    mine = ours(tmp_path / "flows.csv")
    assert exporter.records == flows.count and exporter.lost == 0  # sent: the loss is the network's
    assert drops > 0 and counts["sequence_errors"] > 0
    assert not received - mine and 0 < sum(received.values()) < sum(mine.values())


def test_ipfix_over_tcp_loses_nothing(capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(socket.SOCK_STREAM)
    pcap = tmp_path / "session.pcap"
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-s", "0", "-B", "65536", "-w", str(pcap),
                             f"tcp port {port}"], stderr=subprocess.PIPE, text=True)
    assert "listening on" in (dump.stderr.readline() if dump.stderr else "")
    received = bytearray()

    def collect() -> None:
        with socket.create_server(("127.0.0.1", port)) as server:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(1 << 20):
                    received.extend(chunk)

    server = threading.Thread(target=collect)
    server.start()
    time.sleep(0.2)
    err = run(capture, tmp_path / "flows.csv", f"ipfix+tcp://127.0.0.1:{port}", capsys)
    server.join(30)
    time.sleep(1)
    dump.send_signal(signal.SIGINT)
    _, tail = dump.communicate(timeout=30)
    assert "0 packets dropped by kernel" in tail.splitlines()
    mine = ours(tmp_path / "flows.csv")
    assert sum(mine.values()) >= 100_000 and "lost" not in err
    sizes = {t: ipfix.RECORD[t].size for t in ipfix.RECORD}
    theirs = tshark_ipfix(pcap, port, sizes)
    assert theirs == mine and sum(Counter(theirs).values()) == sum(mine.values())
