"""Captures of real traffic between network namespaces: exact packet and byte counts, CSV, linkstats,
scheduling, concurrency, partial retrieval, retention and the disk quota."""

from __future__ import annotations

import csv
import io
import subprocess
import time
from pathlib import Path

import pytest

from opentap.pcap import pcapfile

from ..support.apicalls import headers, wait_state
from ..support.netns import B_IP, counters

pytestmark = pytest.mark.root
UDP_FRAME = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers
ICMP_FRAME = 14 + 20 + 8 + 12  # our echo requests carry 12 bytes


def start_capture(client, kind: str, point: str, seconds: float, delay: float = 0, **params) -> str:
    now = time.time()
    r = client.get(f"/capture/{kind}", headers=headers(),
                   params={"start": now + delay, "stop": now + delay + seconds, "observationpt": point, **params})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def fetch(client, cid: str, tmp_path: Path, fmt: str = "pcap") -> tuple[Path, dict]:
    r = client.get(f"/retrieve?id={cid}&format={fmt}", headers=headers())
    assert r.status_code == 200, r.text
    path = tmp_path / f"{cid}.{fmt}"
    path.write_bytes(r.content)
    return path, dict(r.headers)


def tcpdump_count(path: Path, bpf: str = "") -> int:
    """An independent reader: tcpdump's own count of the packets in the file (that match bpf)."""
    out = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-q", *([bpf] if bpf else [])],
                         capture_output=True, text=True, check=True)
    return len(out.stdout.splitlines())


def test_ethernet_capture_holds_exactly_the_traffic(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha, "b": lan.hb})
    cid = start_capture(client, "ethernet", "a", 5)
    wait_state(client, cid, ("running",))
    before = counters(lan.ha)
    assert lan.run(lan.ns_a, "udp", B_IP, 5000, 50, 100) == {"sent": 50}
    assert lan.run(lan.ns_a, "icmp", B_IP, 5) == {"sent": 5, "replies": 5}
    server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10)
    lan.run(lan.ns_a, "tcp", B_IP, 6000, 200_000)
    assert '"received": 200000' in server.communicate(timeout=15)[0]
    # read the counters once the window is over: the kernel's last ACKs of the TCP close may come well after the
    # processes' exit, and they are inside the window (nothing is sent after it)
    cap = wait_state(client, cid, ("complete", "truncated", "failed"))
    after = counters(lan.ha)
    assert cap["state"] == "complete" and cap["reason"] == "" and cap["drops_kernel"] == 0

    wire_packets = sum(after[k] - before[k] for k in ("rx_packets", "tx_packets"))
    wire_bytes = sum(after[k] - before[k] for k in ("rx_bytes", "tx_bytes"))
    assert (cap["packets"], cap["bytes"]) == (wire_packets, wire_bytes)

    pcap, hdrs = fetch(client, cid, tmp_path)
    assert hdrs["content-type"] == "application/vnd.tcpdump.pcap" and hdrs["x-opentap-partial"] == "false"
    records = list(pcapfile.iter_records([pcap]))
    assert len(records) == wire_packets == tcpdump_count(pcap)
    assert sum(orig for _ts, orig, _d in records) == wire_bytes

    csv_path, hdrs = fetch(client, cid, tmp_path, "csv")
    assert hdrs["content-type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == wire_packets
    udp = [r for r in rows if r["protocol"] == "UDP"]
    assert len(udp) == 50 and {(r["dst_ip"], r["dst_port"], r["length"]) for r in udp} == {
        (B_IP, "5000", str(UDP_FRAME + 100))}
    echo = [r for r in rows if r["protocol"] == "ICMP" and r["length"] == str(ICMP_FRAME)]
    assert len(echo) == 10  # 5 requests, 5 replies (the other ICMP rows are B's port-unreachables)
    tcp = [r for r in rows if r["protocol"] == "TCP"]
    assert {r["dst_port"] for r in tcp if r["src_port"] != "6000"} == {"6000"}
    times = [float(r["time"]) for r in rows]
    # in capture order; the kernel stamps packets on whichever CPU handles them, so neighbours may be a few
    # microseconds out of order (seen: 2 us), never more than a millisecond here
    assert all(b > a - 1.0 for a, b in zip(times, times[1:], strict=False)) and abs(times[0] / 1000 - time.time()) < 60


def test_linkstats_agree_with_the_interface(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha})
    cid = start_capture(client, "linkstats", "a", 2.5, period=200)
    wait_state(client, cid, ("running",))
    before = counters(lan.ha)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 30, 200)
    after = counters(lan.ha)
    cap = wait_state(client, cid, ("complete", "truncated"))
    path, hdrs = fetch(client, cid, tmp_path, "csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0])[:4] == ["time", "state", "rx_bytes", "rx_packets"]
    missed = cap["stats"]["missed_samples"]
    if cap["state"] == "truncated":  # a machine too busy to wake the sampler in time: the gap is said, not hidden
        assert missed > 0 and f"{missed} of {len(rows) + missed} samples were missed" in cap["reason"], cap
    assert cap["stats"]["samples"] == len(rows)
    assert 8 <= len(rows) + missed <= 16  # every 200 ms over 2.5 s, plus the first and last samples
    first, last = rows[0], rows[-1]
    assert int(first["rx_packets"]) <= before["rx_packets"] and int(last["rx_packets"]) >= after["rx_packets"]
    assert int(last["rx_packets"]) - int(first["rx_packets"]) == 30
    assert int(last["rx_bytes"]) - int(first["rx_bytes"]) == 30 * (UDP_FRAME + 200)
    assert first["state"] == "1"  # up, as the original wrote it


def test_future_schedule_and_concurrent_captures(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha, "b": lan.hb})
    all_a = start_capture(client, "ethernet", "a", 3, delay=1.5)
    udp_a = start_capture(client, "ethernet", "a", 3, delay=1.5, filter="udp")
    all_b = start_capture(client, "ethernet", "b", 3, delay=1.5)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 7, 10)  # before the window: must not be captured
    assert client.get(f"/captures/{all_a}", headers=headers()).json()["capture"]["state"] == "scheduled"
    for cid in (all_a, udp_a, all_b):
        wait_state(client, cid, ("running",))
    before = {i: counters(i) for i in (lan.ha, lan.hb)}
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 10)
    lan.run(lan.ns_a, "icmp", B_IP, 3)
    time.sleep(0.2)
    # B also answers some UDP with ICMP port-unreachable (rate-limited), so count what crossed each link
    seen = {i: sum(counters(i)[k] - before[i][k] for k in ("rx_packets", "tx_packets")) for i in before}
    assert seen[lan.ha] >= 26
    counts = {cid: wait_state(client, cid, ("complete",))["packets"] for cid in (all_a, udp_a, all_b)}
    assert counts == {all_a: seen[lan.ha], udp_a: 20, all_b: seen[lan.hb]}
    assert tcpdump_count(fetch(client, udp_a, tmp_path)[0]) == 20


def test_partial_retrieve_while_running(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha})
    cid = start_capture(client, "ethernet", "a", 6)
    wait_state(client, cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 400, 1000)
    time.sleep(1.5)  # libpcap hands packets to tcpdump in blocks, at the latest after 1 s
    path, hdrs = fetch(client, cid, tmp_path)
    assert hdrs["x-opentap-partial"] == "true" and hdrs["x-opentap-state"] == "running"
    partial = tcpdump_count(path, "udp")  # a valid pcap of whole records, as far as tcpdump has written
    assert partial == 400  # the device has tcpdump flush its buffer (SIGUSR2) every half second
    wait_state(client, cid, ("complete",))
    assert tcpdump_count(fetch(client, cid, tmp_path)[0], "udp") == 400


def test_retention_deletes_data_and_row(make_client, lan) -> None:
    client = make_client(points={"a": lan.ha}, retention_minutes=0.02)  # 1.2 s
    cid = start_capture(client, "ethernet", "a", 0.5)
    wait_state(client, cid, ("complete",))
    directory = client.app.state.device.cfg.data_dir / "projects" / "admin" / cid
    deadline = time.monotonic() + 10
    while client.get(f"/captures/{cid}", headers=headers()).status_code == 200:
        assert time.monotonic() < deadline, "retention did not delete the capture"
        time.sleep(0.1)
    assert not directory.exists()


def test_disk_quota_truncates_then_refuses(make_client, lan) -> None:
    client = make_client(points={"a": lan.ha}, disk_quota_mb=0.1, chunk_mb=1)  # ~100 KiB
    cid = start_capture(client, "ethernet", "a", 20)
    wait_state(client, cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 400, 1000)  # ~400 KiB
    cap = wait_state(client, cid, ("truncated",), timeout=5)
    assert "disk quota of 0.1 MB" in cap["reason"] and cap["packets"] > 0
    r = client.get("/capture/ethernet", params={"start": time.time(), "stop": time.time() + 5,
                                                "observationpt": "a"}, headers=headers())
    assert r.status_code == 507 and "quota" in r.json()["msg"]
    assert client.delete(f"/captures/{cid}", headers=headers()).status_code == 204
    r = client.get("/capture/ethernet", params={"start": time.time(), "stop": time.time() + 1,
                                                "observationpt": "a"}, headers=headers())
    assert r.status_code == 200  # deleting data frees the quota


def test_the_last_second_of_the_window_is_kept_and_nothing_after(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha})
    cid = start_capture(client, "ethernet", "a", 2.5)
    stop = client.get(f"/captures/{cid}", headers=headers()).json()["capture"]["stopTime"]
    wait_state(client, cid, ("running",))
    time.sleep(max(0.0, stop - 0.4 - time.time()))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 50, 10)  # inside the window, in libpcap's last block
    time.sleep(max(0.0, stop + 0.3 - time.time()))
    lan.run(lan.ns_a, "udp", B_IP, 5001, 20, 10)  # after the window, while tcpdump still runs
    wait_state(client, cid, ("complete",))
    pcap = fetch(client, cid, tmp_path)[0]
    assert tcpdump_count(pcap, "udp port 5000") == 50 and tcpdump_count(pcap, "udp port 5001") == 0
