"""The tc datapath on real traffic: a monitoring namespace M receives copies of what machine A sends (OUT),
receives (IN) or both, through filters the driver installs on A's host-side veth; other tc rules are untouched."""

from __future__ import annotations

import csv
import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap.capture import pcapfile
from opentap.datapath.base import Mirror
from opentap.datapath.tc import TcDriver

from .conftest import wait_state
from .netns import A_IP, B_IP, Lan, ip, sysctl

pytestmark = pytest.mark.root


@pytest.fixture
def monitor(lan: Lan) -> Iterator[tuple[str, str]]:
    """A monitoring namespace, its interface m0 and the host end of its link."""
    ns, host = f"{lan.prefix}m", f"{lan.prefix}hm"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sysctl("net.ipv6.conf.all.disable_ipv6", "1", ns)
        ip("link", "add", host, "type", "veth", "peer", "name", "m0", "netns", ns)
        sysctl(f"net.ipv6.conf.{host}.disable_ipv6", "1")
        sysctl("net.ipv6.conf.m0.disable_ipv6", "1", ns)
        ip("link", "set", host, "up")
        ip("link", "set", "m0", "up", ns=ns)
        yield ns, host
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        ip("link", "del", host, check=False)


@pytest.fixture
def driver() -> Iterator[TcDriver]:
    d = TcDriver()
    yield d
    d.close()


def mirrored(lan: Lan, ns: str, tmp_path: Path) -> dict[str, int]:
    """Send 20 datagrams A->B and 30 B->A; count the copies tcpdump sees in the monitoring namespace, by source."""
    out = tmp_path / f"m{time.monotonic_ns()}.pcap"
    # --immediate-mode: libpcap otherwise hands packets over in blocks, and the last one is lost at SIGTERM
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "m0", "--immediate-mode", "-U", "-Z", "root",
                             "-w", str(out), "udp"], stderr=subprocess.PIPE, text=True)
    try:
        assert dump.stderr is not None and "listening on" in dump.stderr.readline()
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
        lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(10)
    counts = {A_IP: 0, B_IP: 0}
    for _ts, _wire, frame in pcapfile.iter_records([out]):
        src = ".".join(str(b) for b in frame[26:30])
        counts[src] = counts.get(src, 0) + 1
    return counts


@pytest.mark.parametrize(("direction", "expected"), [("BOTH", {A_IP: 20, B_IP: 30}), ("OUT", {A_IP: 20, B_IP: 0}),
                                                      ("IN", {A_IP: 0, B_IP: 30})])
def test_directions(lan: Lan, monitor: tuple[str, str], driver: TcDriver, tmp_path: Path, direction: str,
                    expected: dict[str, int]) -> None:
    ns, host = monitor
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}  # nothing before
    driver.install(Mirror(1, lan.ha, host, direction))
    assert mirrored(lan, ns, tmp_path) == expected


def test_two_mirrors_and_foreign_rules(lan: Lan, monitor: tuple[str, str], driver: TcDriver, tmp_path: Path) -> None:
    ns, host = monitor
    subprocess.run(["tc", "qdisc", "add", "dev", lan.ha, "clsact"], check=True)
    # someone else's rule, before ours (ours sit at low precedence so as never to shadow anyone's)
    subprocess.run(["tc", "filter", "add", "dev", lan.ha, "ingress", "prio", "7", "protocol", "ip", "u32", "match",
                    "ip", "dst", "198.19.255.1/32", "flowid", "1:1"], check=True)
    driver.install(Mirror(5, lan.ha, host, "OUT"))
    driver.install(Mirror(6, lan.ha, host, "IN"))
    driver.install(Mirror(6, lan.ha, host, "IN"))  # again: still one set of rules
    assert {k: v for k, v in driver.installed().items() if k[0] == lan.ha} == {
        (lan.ha, 5): {"ingress"}, (lan.ha, 6): {"egress"}}
    assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
    driver.remove(lan.ha, 5)
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 30}
    driver.remove(lan.ha, 6)
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}
    shown = subprocess.run(["tc", "filter", "show", "dev", lan.ha, "ingress"], capture_output=True, text=True).stdout
    assert "pref 7 " in shown and "mirred" not in shown


ALICE = {"X-Auth-Token": "tok-alice"}


def make_port(api: TestClient, name: str, iface: str) -> str:
    r = api.post("/v2.0/ports", headers={"X-Auth-Token": "tok-admin"}, json={"port": {
        "project_id": "alice", "name": name, "port_security_enabled": False, "binding:profile": {"interface": iface}}})
    return r.json()["port"]["id"]


def wait_status(api: TestClient, kind: str, obj_id: str, wanted: str) -> dict:
    deadline = time.monotonic() + 3
    while (obj := api.get(f"/v2.0/taas/{kind}/{obj_id}", headers=ALICE).json()[kind[:-1]])["status"] != wanted:
        assert time.monotonic() < deadline, obj
        time.sleep(0.05)
    return obj


def create(api: TestClient, kind: str, **attrs: object) -> dict:
    r = api.post(f"/v2.0/taas/{kind}", headers=ALICE, json={kind[:-1]: attrs})
    assert r.status_code == 201, r.text
    return r.json()[kind[:-1]]


def test_tap_flows_through_the_api(make_client, lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """The seed's workflow: a port for the monitoring machine, a tap service on it, a tap flow from A's port."""
    ns, host = monitor
    api = make_client()
    m, a, gone = make_port(api, "monitor", host), make_port(api, "a", lan.ha), make_port(api, "gone", "nosuch0")
    ts = create(api, "tap_services", port_id=m)
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=a, direction="BOTH")
    assert tf["status"] == "DOWN"
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    wait_status(api, "tap_services", ts["id"], "ACTIVE")
    assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
    broken = create(api, "tap_flows", tap_service_id=ts["id"], source_port=gone, direction="IN")
    wait_status(api, "tap_flows", broken["id"], "ERROR")  # its interface does not exist
    assert api.delete(f"/v2.0/taas/tap_flows/{tf['id']}", headers=ALICE).status_code == 204
    assert api.get(f"/v2.0/taas/tap_flows/{tf['id']}", headers=ALICE).status_code == 404  # rules gone, then row
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}


def test_netflow_capture_on_a_tap_service(make_client, lan: Lan, monitor: tuple[str, str]) -> None:  # noqa: ANN001
    """The OpenTap loop: a tenant captures at its tap service, and gets A's flows (OUT: what A sends) only."""
    _ns, host = monitor
    api = make_client()
    ts = create(api, "tap_services", name="watch", port_id=make_port(api, "monitor", host))
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "a", lan.ha), direction="OUT")
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    now = time.time()
    r = api.get("/capture/netflow", headers=ALICE, params={"start": now, "stop": now + 3, "observationpt": "watch"})
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    wait_state(api, cid, ("running",), token="tok-alice")
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
    lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
    assert wait_state(api, cid, ("complete",), timeout=20, token="tok-alice")["state"] == "complete"
    rows = list(csv.DictReader(io.StringIO(api.get("/retrieve", headers=ALICE, params={"id": cid}).text)))[:-3]
    udp = [r for r in rows if r["pr"] == "UDP"]
    assert {r["sa"] for r in rows} == {A_IP} and sum(int(r["ipkt"]) for r in udp) == 20
