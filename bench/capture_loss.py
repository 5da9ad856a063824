"""Capture loss benchmark: offered load vs packets captured on a veth link, OpenTap device vs bare tcpdump.

    netns otbench-tx: otbt0 198.18.1.2 --veth-- otbh0 198.18.1.1 (root netns, the observation point)

trafgen in the namespace sends 106-byte UDP frames at fixed rates and flat out; for every rate the same traffic
is captured once by an in-process device (TestClient, engine thread, its own tcpdump child) and once by a bare
`tcpdump -B 4096 -w FILE`. Offered = the observation interface's kernel rx+tx packet counters over the send
(tx: the few rate-limited ICMP port-unreachables the host answers with, which a tap must capture too).
A target rate is a per-second average: trafgen -b sends each second's quota back to back (measured ~370 kpps
bursts), so every rate also tests how the capture absorbs line-rate bursts; --quick counts are one burst each.
Run as root: .venv/bin/python bench/capture_loss.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from opentap import auth, config
from opentap.api.app import create_app
from opentap.capture import storage, tcpdump
from opentap.pcap import pcapfile

NS, HOST_IF, PEER_IF = "otbench-tx", "otbh0", "otbt0"
HOST_IP, PEER_IP = "198.18.1.1", "198.18.1.2"
TOKEN, POINT = "otbench-token", "bench"
HDRS = {"X-Auth-Token": TOKEN}
MAX_GUESS_PPS = 250_000  # only sizes the device's capture window for the unthrottled run
_CPU_RE = re.compile(r"(\d+) sec, (\d+) usec on CPU\d+")


def run(*argv: str, ns: str | None = None, timeout: float = 30, check: bool = True) -> str:
    argv = ("ip", "netns", "exec", ns, *argv) if ns else argv
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout).stdout


def mac(dev: str, ns: str | None = None) -> str:
    return json.loads(run("ip", "-j", "link", "show", dev, ns=ns))[0]["address"]


def topology_down() -> None:
    run("ip", "netns", "del", NS, check=False)  # takes the peer end and so the whole veth pair with it
    run("ip", "link", "del", HOST_IF, check=False)


def topology_up() -> tuple[str, str]:
    topology_down()
    run("ip", "netns", "add", NS)
    run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF, "netns", NS)
    # No IPv6 and static neighbours: nothing but the benchmark's frames (and ICMP answers) on the wire.
    run("sysctl", "-qw", f"net.ipv6.conf.{HOST_IF}.disable_ipv6=1")
    run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", f"net.ipv6.conf.{PEER_IF}.disable_ipv6=1", ns=NS)
    run("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
    run("ip", "addr", "add", f"{PEER_IP}/24", "dev", PEER_IF, ns=NS)
    run("ip", "link", "set", HOST_IF, "up")
    run("ip", "link", "set", PEER_IF, "up", ns=NS)
    host_mac, peer_mac = mac(HOST_IF), mac(PEER_IF, NS)
    run("ip", "neigh", "replace", PEER_IP, "lladdr", peer_mac, "dev", HOST_IF, "nud", "permanent")
    run("ip", "neigh", "replace", HOST_IP, "lladdr", host_mac, "dev", PEER_IF, "nud", "permanent", ns=NS)
    time.sleep(0.3)
    return host_mac, peer_mac


def trafgen_conf(path: Path, host_mac: str, peer_mac: str) -> Path:
    # 14 Ethernet + 20 IPv4 + 8 UDP + 64 payload = 106 bytes; trafgen fills in lengths and checksums.
    path.write_text(f"{{\n  eth(da={host_mac}, sa={peer_mac}),\n  ipv4(saddr={PEER_IP}, daddr={HOST_IP}, ttl=64),\n"
                    "  udp(sp=40000, dp=9),\n  fill(0x42, 64),\n}\n")
    return path


def wire_packets() -> int:
    stats = Path(f"/sys/class/net/{HOST_IF}/statistics")
    return int((stats / "rx_packets").read_text()) + int((stats / "tx_packets").read_text())


def send(conf: Path, count: int, rate: int | None) -> dict[str, float]:
    """Send count frames at rate pps (None: flat out on every CPU); offered packets and achieved pps."""
    # One sender CPU is enough up to ~300 kpps here; "max" forks one per CPU, as trafgen does by default.
    limit = ["-P", "1", "-b", f"{rate}pps"] if rate else []
    before, t0 = wire_packets(), time.monotonic()
    out = run("trafgen", "-o", PEER_IF, "-i", str(conf), "-n", str(count), *limit, ns=NS,
              timeout=count / (rate or 50_000) * 3 + 30)
    wall = time.monotonic() - t0
    # trafgen's own per-worker send time excludes its start-up (ring setup, forks); the slowest worker counts.
    seconds = max((int(s) + int(us) / 1e6 for s, us in _CPU_RE.findall(out)), default=wall) or wall
    time.sleep(0.5)  # let the receive backlog drain into the counters
    offered = wire_packets() - before
    return {"offered": offered, "pps": round(offered / seconds)}


def write_config(workdir: Path, buffer_kib: int | None) -> Path:
    lines = [f'data_dir = "{workdir / "data"}"', "capture_length_limit = 3600", "disk_quota_mb = 16384",
             "max_concurrent_captures = 1", "gc_interval_seconds = 5"]
    lines += [f"capture_buffer_kib = {buffer_kib}"] if buffer_kib else []
    lines += ["", "[observation_points]", f'{POINT} = "{HOST_IF}"', "", "[[tokens]]",
              f'sha256 = "{auth.hash_token(TOKEN)}"', 'project = "bench"', 'roles = ["admin"]']
    path = workdir / "opentap.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_state(client: TestClient, cid: str, states: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cap = client.get(f"/captures/{cid}", headers=HDRS).json()["capture"]
        if cap["state"] in states or time.monotonic() > deadline:
            return cap
        time.sleep(0.1)


def device_capture(client: TestClient, data_dir: Path, traffic: Callable[[], dict], expect_s: float) -> dict:
    start = time.time()
    r = client.get("/capture/ethernet", headers=HDRS,
                   params={"start": f"{start:.3f}", "stop": f"{start + expect_s * 2 + 4:.3f}", "observationpt": POINT})
    r.raise_for_status()
    cid = r.json()["id"]
    cap = wait_state(client, cid, {"running", "failed"}, 15)
    if cap["state"] != "running":
        raise RuntimeError(f"device capture did not start: {cap}")
    sent = traffic()
    cap = wait_state(client, cid, {"complete", "truncated", "failed", "cancelled"}, cap["stopTime"] - time.time() + 30)
    if cap["state"] != "complete":
        raise RuntimeError(f"device capture ended {cap['state']}: {cap['reason']}")
    in_files = pcapfile.count(tcpdump.chunk_files(storage.capture_dir(data_dir, cap["project_id"], cid))).packets
    client.delete(f"/captures/{cid}", headers=HDRS)  # frees the disk before the next rate
    return {**sent, "captured": cap["packets"], "captured_in_files": in_files, "kernel_drops": cap["drops_kernel"]}


def tcpdump_capture(workdir: Path, traffic: Callable[[], dict]) -> dict:
    pcap, err = workdir / "bare.pcap", workdir / "bare.err"
    with open(err, "w") as e:
        proc = subprocess.Popen([tcpdump.tcpdump_path(), "-i", HOST_IF, "-B", "4096", "-w", str(pcap), "-n"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e)
    try:
        deadline = time.monotonic() + 10
        while "listening on" not in err.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {err.read_text().strip()}")
            time.sleep(0.02)
        sent = traffic()
        # libpcap hands over a TPACKET_V3 ring block when full or after its 1 s timeout; tcpdump stopped sooner
        # loses the last partly filled block, so give it time (the device's window ends >= 4 s after the traffic).
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)  # SIGINT: flush the file and print the drop counts
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stats = tcpdump.parse_stats(err.read_text())
    captured = pcapfile.count([pcap]).packets
    pcap.unlink()
    return {**sent, "captured": captured, "kernel_drops": stats.dropped_kernel}


def loss(captured: int, offered: int) -> float:
    return round(100 * (1 - captured / offered), 4) if offered else float("nan")


def bench(quick: bool, buffer_kib: int | None, log: Callable[[str], None]) -> list[dict]:
    plan: list[tuple[int | None, int]] = [(r, 20_000 if quick else min(r * 5, 1_000_000))
                                          for r in (50_000, 100_000, 200_000)]
    plan.append((None, 50_000 if quick else 2_000_000))
    workdir = Path(tempfile.mkdtemp(prefix="otbench-"))
    rows = []
    try:
        host_mac, peer_mac = topology_up()
        conf = trafgen_conf(workdir / "udp106.cfg", host_mac, peer_mac)
        cfg = config.load(write_config(workdir, buffer_kib))
        with TestClient(create_app(cfg)) as client:
            for rate, count in plan:
                label = f"{rate // 1000}k" if rate else "max"
                log(f"{label}: {count} packets, device capture ...")

                def traffic(rate: int | None = rate, count: int = count) -> dict:
                    return send(conf, count, rate)

                dev = device_capture(client, cfg.data_dir, traffic, count / (rate or MAX_GUESS_PPS))
                log(f"{label}: {count} packets, bare tcpdump ...")
                bare = tcpdump_capture(workdir, traffic)
                rows.append({"rate": label, "count": count, "device": dev, "tcpdump": bare,
                             "device_loss_pct": loss(dev["captured"], dev["offered"]),
                             "tcpdump_loss_pct": loss(bare["captured"], bare["offered"])})
    finally:
        topology_down()
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def table(rows: list[dict]) -> str:
    head = ("rate", "achieved pps", "offered", "dev captured", "dev loss %", "dev kdrops",
            "td achieved", "td offered", "td captured", "td loss %", "td kdrops")
    lines = [" ".join(f"{h:>12}" for h in head)]
    for r in rows:
        d, t = r["device"], r["tcpdump"]
        cells = (r["rate"], d["pps"], d["offered"], d["captured"], f"{r['device_loss_pct']:.3f}", d["kernel_drops"],
                 t["pps"], t["offered"], t["captured"], f"{r['tcpdump_loss_pct']:.3f}", t["kernel_drops"])
        lines.append(" ".join(f"{c:>12}" for c in cells))
    top = rows[-1]
    ratio = top["device"]["captured"] / top["tcpdump"]["captured"] if top["tcpdump"]["captured"] else float("nan")
    return "\n".join([*lines, f"device/tcpdump captured ratio at max rate: {ratio:.4f}"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts: a smoke run of well under a minute")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--buffer-kib", type=int, help="device capture_buffer_kib (default: the config default)")
    args = ap.parse_args()
    for tool in ("ip", "trafgen"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    # SIGTERM -> SystemExit, so the finally blocks remove the namespace and the temp dir as on Ctrl-C; SIGINT is
    # set explicitly because a shell starts background jobs with it ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rows = bench(args.quick, args.buffer_kib, lambda msg: print(msg, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("interrupted; namespace, veth and temp dir removed", file=sys.stderr)
        return 130
    if args.json:
        top = rows[-1]
        ratio = top["device"]["captured"] / top["tcpdump"]["captured"] if top["tcpdump"]["captured"] else None
        print(json.dumps({"rows": rows, "device_tcpdump_ratio_at_max": ratio}, indent=2))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
