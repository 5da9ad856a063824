"""The seed's workflow through the TaaS API, on real traffic between namespaces: a monitoring machine's port M
with a tap service, machines A and B on their own ports, tap flows from them; tcpdump inside the monitoring
namespace counts the copies. Then what an operator meets: VLAN filters, several flows and services, a VM's
interface going away and coming back, a daemon restart, and a capture at the tap service."""

from __future__ import annotations

import csv
import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opentap.datapath.base import Mirror
from opentap.datapath.tc import PRIO_BASE

from ..support.apicalls import wait_state
from ..support.daemon import running
from ..support.mirrorlab import ALICE, copies, create, make_port, mirrored, monitoring, wait_status
from ..support.netns import A_IP, B_IP, Lan, ip

pytestmark = pytest.mark.root


@pytest.fixture
def monitor(lan: Lan) -> Iterator[tuple[str, str]]:
    with monitoring(lan) as m:
        yield m


def test_tap_flows_through_the_api(make_client, lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """A port for the monitoring machine, a tap service on it, a BOTH tap flow from A's port; delete stops it."""
    ns, host = monitor
    api = make_client()
    m, a, gone = make_port(api, "monitor", host), make_port(api, "a", lan.ha), make_port(api, "gone", "nosuch0")
    ts = create(api, "tap_services", port_id=m)
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=a, direction="BOTH")
    assert tf["status"] == "DOWN" and tf["status_reason"] is None
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    wait_status(api, "tap_services", ts["id"], "ACTIVE")
    assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
    broken = create(api, "tap_flows", tap_service_id=ts["id"], source_port=gone, direction="IN")
    broken = wait_status(api, "tap_flows", broken["id"], "ERROR")
    assert broken["status_reason"] == "the source port's interface nosuch0 does not exist"
    assert api.delete(f"/v2.0/taas/tap_flows/{tf['id']}", headers=ALICE).status_code == 204
    assert api.get(f"/v2.0/taas/tap_flows/{tf['id']}", headers=ALICE).status_code == 404  # rules gone, then row
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}
    # the device made A's clsact qdisc for that flow: with its last filter gone, the qdisc went too
    assert "clsact" not in subprocess.run(["tc", "qdisc", "show", "dev", lan.ha], capture_output=True, text=True,
                                          check=True).stdout


def test_vlan_filter_with_tagged_traffic(make_client, lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """vlan_filter "100,150-160": of the untagged, VLAN 100, 155 and 200 frames A sends and receives, only VLANs
    100 and 155 are copied, tag and all. (This kernel has no VLAN devices: the machines write tagged frames on
    raw sockets; the veth moves each tag into skb metadata, where the filter reads it.)"""
    ns, host = monitor
    api = make_client()
    ts = create(api, "tap_services", port_id=make_port(api, "monitor", host))
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "a", lan.ha), direction="BOTH",
                vlan_filter="100,150-160")
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    with copies(ns, tmp_path) as seen:
        for vlan in ("none", 100, 155, 200):
            lan.run(lan.ns_a, "frames", "a0", A_IP, B_IP, vlan, 20)
            lan.run(lan.ns_b, "frames", "b0", B_IP, A_IP, vlan, 30)
    assert seen == {(A_IP, 100): 20, (B_IP, 100): 30, (A_IP, 155): 20, (B_IP, 155): 30}


def test_many_flows_and_services(make_client, lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """Two flows into one service; two services fed from one port; deleting a flow leaves the others."""
    ns, host = monitor
    api = make_client()
    with monitoring(lan, "n") as (ns2, host2):
        a, b = make_port(api, "a", lan.ha), make_port(api, "b", lan.hb)
        one = create(api, "tap_services", port_id=make_port(api, "monitor", host))
        two = create(api, "tap_services", port_id=make_port(api, "monitor2", host2))
        flows = [create(api, "tap_flows", tap_service_id=one["id"], source_port=a, direction="OUT"),
                 create(api, "tap_flows", tap_service_id=one["id"], source_port=b, direction="OUT"),
                 create(api, "tap_flows", tap_service_id=two["id"], source_port=a, direction="IN")]
        for tf in flows:
            wait_status(api, "tap_flows", tf["id"], "ACTIVE")
        with copies(ns, tmp_path) as seen, copies(ns2, tmp_path) as seen2:
            lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
            lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
        assert seen == {(A_IP, None): 20, (B_IP, None): 30} and seen2 == {(B_IP, None): 30}
        assert api.delete(f"/v2.0/taas/tap_flows/{flows[0]['id']}", headers=ALICE).status_code == 204
        with copies(ns, tmp_path) as seen, copies(ns2, tmp_path) as seen2:
            lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
            lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
        assert seen == {(B_IP, None): 30} and seen2 == {(B_IP, None): 30}


def test_interface_recreated(make_client, lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """A's interface goes (a VM stops): the flow is ERROR with the reason; it comes back: mirroring resumes by
    itself, at once (link events, not the periodic pass)."""
    ns, host = monitor
    api = make_client()
    ts = create(api, "tap_services", port_id=make_port(api, "monitor", host))
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "a", lan.ha), direction="BOTH")
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    api.app.state.device.datapath.period = 60  # from its next wait on, only link events (and API calls) start a pass
    time.sleep(1.2)
    ip("link", "del", lan.ha)
    gone = wait_status(api, "tap_flows", tf["id"], "ERROR")
    assert gone["status_reason"] == f"the source port's interface {lan.ha} does not exist"
    lan.plug(lan.ha)
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}


def test_drift_is_repaired(make_client, lan: Lan, monitor: tuple[str, str]) -> None:  # noqa: ANN001
    """Someone deletes our rule: a full pass puts it back. A rule in our range that no flow wants is removed. Both
    count as drift."""
    _ns, host = monitor
    api = make_client()
    ts = create(api, "tap_services", port_id=make_port(api, "monitor", host))
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "a", lan.ha), direction="OUT")
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    datapath = api.app.state.device.datapath
    ours = datapath.driver.installed(lan.ha)
    (_ifname, slot), = ours
    subprocess.run(["tc", "filter", "del", "dev", lan.ha, "ingress", "prio", str(PRIO_BASE + slot)], check=True)
    datapath.driver.install(Mirror(slot + 1, lan.ha, host, "IN"))  # as if left by a flow deleted long ago
    datapath.run_once(full=True)  # as the periodic full pass (every 10 s) would
    assert datapath.driver.installed(lan.ha) == ours and datapath.drift == 2


def filters(ifname: str) -> str:
    return "".join(subprocess.run(["tc", "filter", "show", "dev", ifname, hook], capture_output=True, text=True,
                                  check=True).stdout for hook in ("ingress", "egress"))


def test_daemon_restart_keeps_mirroring(lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:
    """Like OVS flows, mirrors live in the kernel: a steady stream from A is copied whole while the daemon stops
    and starts again, and the restarted daemon finds its rules as they are (not re-installed, not doubled)."""
    ns, host = monitor
    with running(tmp_path) as d, httpx.Client(base_url=d.url, timeout=10) as api:
        ts = create(api, "tap_services", port_id=make_port(api, "monitor", host))
        tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "a", lan.ha),
                    direction="BOTH")
        wait_status(api, "tap_flows", tf["id"], "ACTIVE")
        before = filters(lan.ha)
        with copies(ns, tmp_path) as seen:
            stream = lan.spawn(lan.ns_a, "udp", B_IP, 5000, 1000, 64, 200)  # 5 s at 200 datagrams/s
            time.sleep(0.5)
            d.stop()
            time.sleep(0.5)
            d.start()
            assert stream.wait(30) == 0 and stream.poll() == 0
        assert wait_status(api, "tap_flows", tf["id"], "ACTIVE")["status_reason"] is None
        assert seen == {(A_IP, None): 1000}  # every datagram copied once: no gap, and no doubled rule
        assert filters(lan.ha) == before  # the same rules and action indexes: nothing was re-installed
    assert "drift" not in (tmp_path / "daemon.log").read_text()


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
