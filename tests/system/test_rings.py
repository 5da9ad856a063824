"""Packet rings with real traffic between namespaces: captures of past windows give exactly the packets a separate
plain tcpdump of the same interface saw in that window (by timestamp and content, with and without a filter,
across block boundaries), a window from the past into the future has no gap and no duplicate at the seam,
netflow from the ring, the ring at its budget (oldest blocks deleted, the directory never over, ring_since
moving), and a daemon restart keeping the ring (the down time told as a gap)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from opentap.capture import ringquery, ringrecorder, storage

from ..support.apicalls import headers, wait_state
from ..support.configs import write_config
from ..support.daemon import Daemon
from ..support.netns import B_IP
from ..support.procs import recorders_for
from ..support.ringoracle import PlainTcpdump, assert_same, between, records

pytestmark = pytest.mark.root
FINAL = ("complete", "truncated", "failed", "cancelled")


def ring_point(interface: str, mb: int = 16) -> str:
    return f'{{interface = "{interface}", ring_mb = {mb}}}'


def wait_recording(get, point: str = "a", timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ring = {r["point"]: r for r in get("/rings").json()["rings"]}[point]
        if ring["recording"] and ring["ring_since"]:
            return ring
        assert time.monotonic() < deadline, ring
        time.sleep(0.1)


def past_capture(client, tmp_path: Path, start: float, stop: float, kind: str = "ethernet", **params) -> tuple:
    r = client.get(f"/capture/{kind}", headers=headers(),
                   params={"start": f"{start:.6f}", "stop": f"{stop:.6f}", "observationpt": "a", **params})
    assert r.status_code == 200, r.text
    assert r.json()["options"].get("from_ring") is True, r.json()
    cap = wait_state(client, r.json()["id"], FINAL, timeout=60)
    fmt = "pcap" if kind == "ethernet" else "csv"
    data = client.get("/retrieve", params={"id": cap["id"], "format": fmt}, headers=headers())
    assert data.status_code == 200, data.text
    out = tmp_path / f"{cap['id']}.{fmt}"
    out.write_bytes(data.content)
    return cap, out


def test_past_windows_equal_a_plain_tcpdump(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": ring_point(lan.ha)})
    wait_recording(lambda p: client.get(p, headers=headers()))
    with PlainTcpdump(lan.ha, tmp_path / "ref.pcap") as ref:
        t0 = time.time()
        lan.run(lan.ns_a, "udp", B_IP, 5000, 3000, 1000, 1500)  # ~3 MB in 2 s: several 1 MB blocks
        lan.run(lan.ns_a, "udp", B_IP, 5001, 40, 200, 100)
        assert lan.run(lan.ns_a, "icmp", B_IP, 5)["replies"] == 5
        t1 = time.time()
        time.sleep(0.5)
        blocks = client.get("/rings", headers=headers()).json()["rings"][0]["blocks"]
        assert blocks >= 3  # the windows below cross block boundaries
        seen = ref.records(t0, t1)
        mid_a, mid_b = between(seen, len(seen) // 4), between(seen, 3 * len(seen) // 4)  # edges amid the traffic
        cases = [(t0, t1, ""), (mid_a, mid_b, ""), (t0, t1, "udp port 5001"), (t0, t1, "icmp"),
                 (mid_a, t1, f"host {B_IP} and udp and not port 5001")]
        for start, stop, bpf in cases:
            cap, pcap = past_capture(client, tmp_path, start, stop, **({"filter": bpf} if bpf else {}))
            want = ref.records(start, stop, bpf)
            assert want, (start, stop, bpf)
            assert_same(records(pcap), want)
            assert cap["state"] == "complete" and cap["packets"] == len(want), cap

        # from the past into the future: the packets before the request and after it, each exactly once
        start = time.time() - 1.0
        lan.run(lan.ns_a, "udp", B_IP, 5002, 50, 100, 100)  # 0.5 s, inside the past part
        r = client.get("/capture/ethernet", headers=headers(), params={
            "start": f"{start:.6f}", "stop": f"{time.time() + 3:.6f}", "observationpt": "a"})
        assert r.status_code == 200 and r.json()["options"]["from_ring"] is True, r.text
        lan.run(lan.ns_a, "udp", B_IP, 5002, 200, 100, 100)  # 2 s, across the present into the future
        copiers = [t for t in threading.enumerate() if t.name.startswith("ring-copy-")]  # still before the end
        assert copiers and all(os.getpriority(os.PRIO_PROCESS, t.native_id) == ringquery.NICE for t in copiers)
        cap = wait_state(client, r.json()["id"], FINAL, timeout=60)
        pcap = tmp_path / "span.pcap"
        pcap.write_bytes(client.get("/retrieve", params={"id": cap["id"]}, headers=headers()).content)
        got, want = records(pcap), ref.records(cap["startTime"], cap["stopTime"])
        assert_same(got, want)
        assert len([1 for _t, d in got if len(d) == 142]) == 250  # every datagram to 5002, each once
        assert cap["state"] == "complete", cap

        # netflow from the ring: the meter saw exactly the window's packets
        cap, csv = past_capture(client, tmp_path, t0, t1, kind="netflow")
        assert cap["state"] == "complete" and cap["stats"]["packets"] == len(ref.records(t0, t1)), cap
        assert "198.18.0.1,198.18.0.2" in csv.read_text().replace(" ", "")
        # and from the past into the future: every packet metered once
        r = client.get("/capture/netflow", headers=headers(), params={
            "start": f"{time.time() - 1:.6f}", "stop": f"{time.time() + 2.5:.6f}", "observationpt": "a"})
        assert r.json()["options"]["from_ring"] is True, r.text
        lan.run(lan.ns_a, "udp", B_IP, 5003, 150, 100, 100)
        cap = wait_state(client, r.json()["id"], FINAL, timeout=60)
        want = ref.records(cap["startTime"], cap["stopTime"])
        assert cap["state"] == "complete" and cap["stats"]["packets"] == len(want) >= 150, (cap, len(want))


def test_the_ring_stays_within_its_budget(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": ring_point(lan.ha, 32)})
    first = wait_recording(lambda p: client.get(p, headers=headers()))
    ring_dir = tmp_path / "data" / "rings" / "a"
    peak, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():  # bounded by the traffic below
            peak[0] = max(peak[0], storage.tree_size(ring_dir))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(6):  # ~67 MB through a 32 MiB ring
            lan.run(lan.ns_a, "udp", B_IP, 5000, 8000, 1400, 8000, timeout=60)
        time.sleep(1)
    finally:
        stop.set()
        watcher.join()
    assert 16 << 20 < peak[0] <= 32 << 20, peak[0]  # filled, never over
    ring = client.get("/rings", headers=headers()).json()["rings"][0]
    assert ring["ring_since"] > first["ring_since"] + 1 and ring["bytes"] <= 32 << 20, ring
    r = client.get("/capture/ethernet", headers=headers(), params={
        "start": f"{first['ring_since'] + 0.5:.3f}", "stop": f"{ring['ring_since'] + 1:.3f}", "observationpt": "a"})
    assert r.status_code == 400 and "reaches back to" in r.json()["msg"], r.text
    capabilities = client.get("/capabilities", headers=headers("tok-alice")).json()
    assert capabilities["observation_points"]["network"][0]["ring_since"] == ring["ring_since"]


def test_a_restart_keeps_the_ring(lan, tmp_path: Path) -> None:
    daemon = Daemon(write_config(tmp_path, {"a": ring_point(lan.ha)}, gc_interval_seconds=0.5))
    daemon.start()
    try:
        wait_recording(daemon.get)
        with PlainTcpdump(lan.ha, tmp_path / "ref.pcap") as ref:
            time.sleep(0.5)  # quiet before and after the traffic: the CLI's relative window below ends in quiet
            t0 = time.time()
            lan.run(lan.ns_a, "udp", B_IP, 5000, 300, 500, 300)
            t1 = time.time()
            time.sleep(2)
            before = wait_recording(daemon.get)
            daemon.stop()
            down = time.time()
            time.sleep(1)
            daemon.start()
            after = wait_recording(daemon.get)
            assert after["ring_since"] == before["ring_since"]
            r = daemon.get("/capture/ethernet", start=f"{t0:.6f}", stop=f"{t1:.6f}", observationpt="a")
            assert r.status_code == 200 and r.json()["options"]["from_ring"], r.text
            cap = daemon.wait(r.json()["id"], FINAL, timeout=60)
            data = httpx.get(daemon.url + "/retrieve", params={"id": cap["id"]}, headers=headers(), timeout=30)
            (tmp_path / "old.pcap").write_bytes(data.content)
            assert_same(records(tmp_path / "old.pcap"), ref.records(t0, t1))
            assert cap["state"] == "complete", cap
            # the command line, with times relative to now (--start -12.3s), as a user after an incident
            now = time.time()
            cli = subprocess.run(
                [sys.executable, "-m", "opentap", "capture", "ethernet", "--url", daemon.url, "--token", "tok-admin",
                 "--point", "a", "--start", f"-{now - t0 + 0.25:.3f}s", "--stop", f"-{now - t1 - 0.5:.3f}s",
                 "--filter", "udp port 5000", "-o", str(tmp_path / "cli.pcap"), "-f", "json"],
                capture_output=True, text=True, timeout=120)
            assert cli.returncode == 0, cli.stderr
            shown = json.loads(cli.stdout)
            assert shown["options"]["from_ring"] and shown["state"] == "complete", shown
            assert_same(records(tmp_path / "cli.pcap"), ref.records(t0 - 1, t1 + 1, "udp port 5000"))
            # a window over the down time: what the ring has, and the gap said
            r = daemon.get("/capture/ethernet", start=f"{t0:.6f}", stop=f"{time.time() - 0.5:.6f}", observationpt="a")
            cap = daemon.wait(r.json()["id"], FINAL, timeout=60)
            assert cap["state"] == "truncated" and "the ring did not record from" in cap["reason"], cap
            assert cap["packets"] == len(ref.records(t0, time.time())) > 0 and down < time.time()
    finally:
        daemon.stop()


def test_an_admin_turns_a_ring_on_and_off(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha})
    ring_dir = tmp_path / "data" / "rings" / "a"
    caps = client.get("/capabilities", headers=headers()).json()["observation_points"]["network"]
    assert caps[0]["ring_since"] is None
    r = client.put("/rings/a", json={"ring_mb": 16}, headers=headers())
    assert r.status_code == 200, r.text
    on = wait_recording(lambda p: client.get(p, headers=headers()))
    assert len(recorders_for(ring_dir)) == 1 and on["ring_mb"] == 16
    assert os.getpriority(os.PRIO_PROCESS, recorders_for(ring_dir)[0]) == ringrecorder.NICE  # it wins the CPU
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100, 100)
    off = client.put("/rings/a", json={"ring_mb": 0}, headers=headers()).json()["ring"]
    assert not off["recording"] and off["ring_since"] == on["ring_since"] and off["blocks"] >= 1
    assert recorders_for(ring_dir) == []
    # what it recorded can still be asked for; after it stopped recording is a gap (the start is rounded up: one
    # a hair before ring_since is out of reach, and so close to now it would be moved to now)
    r = client.get("/capture/ethernet", headers=headers(), params={
        "start": f"{on['ring_since'] + 0.001:.3f}", "stop": f"{time.time() + 0.5:.3f}", "observationpt": "a"})
    assert r.json()["options"]["from_ring"], r.json()
    cap = wait_state(client, r.json()["id"], FINAL, timeout=30)
    assert cap["packets"] >= 20 and cap["state"] == "truncated" and "the ring did not record from" in cap["reason"], cap
    # a capture still copying when the ring is deleted ends saying so, with what it had copied
    r = client.get("/capture/ethernet", headers=headers(), params={
        "start": f"{on['ring_since'] + 0.001:.3f}", "stop": f"{time.time() + 30:.3f}", "observationpt": "a"})
    following = r.json()["id"]
    time.sleep(1.5)
    assert client.delete("/rings/a", headers=headers()).status_code == 204
    assert not ring_dir.exists()
    ended = wait_state(client, following, FINAL, timeout=10)
    assert ended["state"] == "truncated" and "the ring was deleted" in ended["reason"], ended
    assert ended["packets"] == cap["packets"]
    assert client.get("/retrieve", params={"id": cap["id"]}, headers=headers()).status_code == 200  # the copy stays
