"""NetFlow captures of real traffic between namespaces, read the way the original OpenTap client reads them."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from ..support.apicalls import headers, wait_state
from ..support.netns import A_IP, B_IP

pytestmark = pytest.mark.root


def flows_frame(text: str) -> pd.DataFrame:
    """What the original client does: read the CSV, check the nfdump columns, drop the 3-line Summary."""
    df = pd.read_csv(io.StringIO(text))
    assert {"ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"} <= set(df.columns)
    assert list(df["ts"].iloc[-3:].astype(str)) == ["Summary", "flows", str(len(df) - 3)]
    return df[: len(df) - 3].astype({"sp": int, "dp": int, "ipkt": int, "ibyt": int})


def test_netflow_capture_end_to_end(make_client, lan, tmp_path: Path) -> None:
    client = make_client(points={"a": lan.ha}, flow_idle_timeout=1)
    now = time.time()
    r = client.get("/capture/netflow", headers=headers(), params={
        "start": now, "stop": now + 10, "observationPt": "a", "keep_packets": "true", "id": "nf-e2e"})
    assert r.status_code == 200, r.text
    wait_state(client, "nf-e2e", ("running",))
    server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10)
    lan.run(lan.ns_a, "tcp", B_IP, 6000, 300_000)
    server.communicate(timeout=15)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 30, 100)
    lan.run(lan.ns_a, "icmp", B_IP, 3)
    time.sleep(5.5)  # idle timeout 1 s + the meter's 3 s allowance for capture latency + a poll

    mid = client.get("/retrieve?id=nf-e2e", headers=headers())
    assert mid.headers["x-opentap-partial"] == "true" and mid.headers["content-type"] == "text/csv"
    early = flows_frame(mid.text)
    udp = early[(early.pr == "UDP") & (early.dp == 5000)]
    assert list(udp.ipkt) == [30] and list(udp.ibyt) == [30 * (20 + 8 + 100)]  # ended (idle) mid-window
    assert (early[(early.pr == "TCP") & (early.dp == 6000)].ipkt.sum()) > 0  # the FIN ended the TCP flow

    cap = wait_state(client, "nf-e2e", ("complete",))
    df = flows_frame(client.get("/retrieve?id=nf-e2e", headers=headers()).text)
    assert cap["stats"]["flows"] == len(df) and cap["stats"]["non_ip_packets"] == 0
    assert df.ipkt.sum() == cap["packets"] and df.ibyt.sum() == cap["bytes"]
    pcap = tmp_path / "kept.pcap"
    pcap.write_bytes(client.get("/retrieve?id=nf-e2e&format=pcap", headers=headers()).content)

    def tcpdump_count(bpf: str) -> int:
        out = subprocess.run(["tcpdump", "-r", str(pcap), "-nn", "-q", bpf], capture_output=True, text=True)
        return len(out.stdout.splitlines())

    a_to_b = df[(df.sa == A_IP) & (df.da == B_IP) & (df.pr == "TCP")]
    b_to_a = df[(df.sa == B_IP) & (df.da == A_IP) & (df.pr == "TCP")]
    assert a_to_b.ipkt.sum() == tcpdump_count(f"tcp and src host {A_IP}")
    assert b_to_a.ipkt.sum() == tcpdump_count(f"tcp and src host {B_IP}")
    assert set(a_to_b.dp) == {6000} and "S" in "".join(a_to_b.flg) and "F" in "".join(a_to_b.flg)
    echo = df[(df.pr == "ICMP") & (df.dp == 8 * 256)]
    assert list(echo.ipkt) == [3] and list(df[(df.pr == "ICMP") & (df.dp == 0)].ipkt) == [3]
    assert pd.to_datetime(df.ts).min() >= pd.Timestamp(now - 1, unit="s").floor("s")


def test_netflow_packets_deleted_by_default(make_client, lan) -> None:
    client = make_client(points={"a": lan.ha})
    now = time.time()
    cid = client.get("/capture/netflow", headers=headers(),
                     params={"start": now, "stop": now + 2, "observationpt": "a"}).json()["id"]
    wait_state(client, cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 10, 10)
    cap = wait_state(client, cid, ("complete",))
    directory = client.app.state.device.cfg.data_dir / "projects" / "admin" / cid
    assert not list(directory.glob("*.pcap*")) and cap["stats"]["ip_packets"] >= 10
    r = client.get(f"/retrieve?id={cid}&format=pcap", headers=headers())
    assert r.status_code == 409 and "not kept" in r.json()["msg"]
