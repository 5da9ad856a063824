"""Tap-as-a-Service across hosts, for real: three network namespaces as hosts on an underlay bridge, each running
its own `opentap serve` (its own data directory, config and socket) against one PostgreSQL server on the
underlay with password authentication (tests/support/hostlab.py); VMs behind veths on hosts 1 and 2, the
monitor on host 3. The daemons start at the same moment on the empty database (they migrate it once).

The TaaS workflow goes through openstacksdk against host 1's API; the monitor must see exactly the copies it
should, from both source hosts into one tap service, and nothing after the delete, when no host has anything of
ours left in its kernel. Then the failures: an agent killed with -9 during a stream (its flows go ERROR within
the heartbeat time, and every copy still arrives, each once, before and after it restarts), and PostgreSQL
restarted during a stream (no copy lost, no agent restarted)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support.hostlab import PASSWORD, Lab, in_ns
from ..support.mirrorlab import copies
from ..support.netns import TRAFFIC
from ..support.postgres import Server, unavailable_reason

openstack = pytest.importorskip("openstack", reason="openstacksdk is not installed (pip install -e '.[test]')")
pytestmark = [pytest.mark.root, pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))]
DOWN_TIME = 3.0  # agent_down_time: a dead agent's flows go ERROR within this (and a pass)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Server]]:
    work = tmp_path_factory.mktemp("hosts")
    lab = Lab(work)
    pg = Server(listen=(lab.pg_ip,), password=PASSWORD)
    try:
        lab.up()
        pg.start()
        lab.start({name: pg.url(lab.pg_ip) for name in lab.hosts}, agent_down_time=DOWN_TIME)
        yield lab, pg
    finally:
        logs = {name: h.log() for name, h in lab.hosts.items() if h.workdir.exists()}
        lab.down()
        pg.stop()
        for name, text in logs.items():  # shown when a test failed (pytest prints captured output then)
            print(f"--- {name}'s daemon log (end) ---\n{text[-4000:]}")


def sdk(lab: Lab, host: str = "h1", token: str = "tok-admin") -> Any:
    h = lab.hosts[host]
    return openstack.connect(auth_type="admin_token", auth={"endpoint": h.url + "/v2.0", "token": token},
                             verify=str(h.cert)).network


def wait(get: Any, done: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not done(value := get()):
        assert time.monotonic() < deadline, f"{what}: {value}"
        time.sleep(0.05)
    return value


def status(net: Any, flow: Any) -> tuple[str, str | None]:
    f = net.get_tap_flow(flow.id)
    return f.status, f.to_dict(computed=False).get("status_reason")


def active(net: Any, *flows: Any, timeout: float = 10) -> None:
    for f in flows:
        wait(lambda f=f: status(net, f), lambda st: st[0] == "ACTIVE", timeout, f"tap flow {f.id}")


def udp(ns: str, dst: str, count: int, rate: float = 0, size: int = 64) -> subprocess.Popen:
    """count datagrams of size bytes from namespace ns to dst (at rate per second, if given), in the background."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "python3", TRAFFIC, "udp", dst, "5000", str(count),
                             str(size), *([str(rate)] if rate else [])], stdout=subprocess.DEVNULL)


def send(lab: Lab, *bursts: tuple[str, str, int]) -> None:
    """(namespace, destination, count) bursts, one after the other, each to its end."""
    for ns, dst, count in bursts:
        assert udp(ns, dst, count).wait(60) == 0


def test_the_workflow_across_three_hosts(lab: tuple[Lab, Server], tmp_path: Path) -> None:
    lab_, _ = lab
    net = sdk(lab_)
    h1, h2, h3 = (lab_.hosts[n] for n in ("h1", "h2", "h3"))
    vm1, vm2 = h1.vms["vm1"], h2.vms["vm2"]
    agents = {a.host: a for a in net.agents()}
    assert set(agents) == {"h1", "h2", "h3"} and all(a.is_alive for a in agents.values())
    port = {name: net.create_port(project_id="alice", name=name, binding_host_id=host,
                                  binding_profile={"interface": iface})
            for name, host, iface in (("vm1", "h1", vm1.tap), ("vm2", "h2", vm2.tap), ("mon", "h3", "montap"))}
    assert port["vm1"].status == "ACTIVE" and port["mon"].status == "N/A"  # h1 cannot read h3's interfaces
    alice = sdk(lab_, token="tok-alice")
    service = alice.create_tap_service(name="mon", port_id=port["mon"].id)
    bursts = ((vm1.ns, vm1.host_ip, 20), (h1.ns, vm1.ip, 30), (vm2.ns, vm2.host_ip, 25), (h2.ns, vm2.ip, 15))

    def mirrored(**directions: str) -> dict[str, int]:
        flows = [alice.create_tap_flow(tap_service_id=service.id, source_port=port[vm].id, direction=d)
                 for vm, d in directions.items()]
        active(alice, *flows)
        with copies(lab_.monitor, tmp_path) as seen:
            send(lab_, *bursts)
        for f in flows:
            alice.delete_tap_flow(f)
        for f in flows:
            wait(lambda f=f: alice.find_tap_flow(f.id), lambda found: found is None, 10, f"tap flow {f.id} gone")
        return {src: n for (src, _vlan), n in seen.items()}

    # OUT is what the VM sends, IN what it receives: vm1 -> its host 20, back 30; vm2 -> its host 25, back 15
    assert mirrored(vm1="OUT", vm2="IN") == {vm1.ip: 20, vm2.host_ip: 15}
    assert mirrored(vm1="IN", vm2="OUT") == {vm1.host_ip: 30, vm2.ip: 25}
    assert mirrored(vm1="BOTH", vm2="BOTH") == {vm1.ip: 20, vm1.host_ip: 30, vm2.ip: 25, vm2.host_ip: 15}
    # a VLAN filter on a flow from host 2: only the tagged frames it names, tag and all, through the tunnel
    tagged = alice.create_tap_flow(tap_service_id=service.id, source_port=port["vm2"].id, direction="IN",
                                   vlan_filter="100,300-310")
    active(alice, tagged)
    with copies(lab_.monitor, tmp_path) as seen:
        for vlan in ("100", "200", "305", "none"):
            in_ns(h2.ns, "python3", TRAFFIC, "frames", vm2.tap, "198.18.99.1", vm2.ip, vlan, "10")
    assert seen == {("198.18.99.1", 100): 10, ("198.18.99.1", 305): 10}
    # deleting the tap service (the flow goes with it) leaves nothing of ours on any host, and no copies
    again = alice.create_tap_flow(tap_service_id=service.id, source_port=port["vm1"].id, direction="OUT")
    active(alice, again)
    # full-size frames (1514 bytes) no longer fit one outer packet (1500 - 36): each arrives whole all the same
    # (the underlay fragments it, h3 reassembles it), and h1's agent counts them as oversize copies
    with copies(lab_.monitor, tmp_path) as seen:
        assert udp(vm1.ns, vm1.host_ip, 10, size=1472).wait(60) == 0
        send(lab_, (vm1.ns, vm1.host_ip, 5))
    assert seen == {(vm1.ip, None): 15}
    wait(lambda: {a.host: a.configuration.get("oversize_copies") for a in net.agents()}["h1"], lambda n: n == 10,
         15, "h1's count of oversize copies (at its next full pass)")
    assert h1.ours() and h3.ours()
    alice.delete_tap_service(service)
    for h in (h1, h2, h3):
        wait(h.ours, lambda found: found == {}, 10, f"what of ours is left on {h.name}")
    with copies(lab_.monitor, tmp_path) as seen:
        send(lab_, *bursts)
    assert seen == {}


def test_an_agent_killed_during_a_stream(lab: tuple[Lab, Server], tmp_path: Path) -> None:
    """Its flows go ERROR within the heartbeat time (seen through another host's API); its rules stay, so the
    copies go on; once it is back (adopting its rules) the flows are ACTIVE again; every copy arrives once."""
    lab_, pg = lab
    h1, h2 = lab_.hosts["h1"], lab_.hosts["h2"]
    vm1, vm2 = h1.vms["vm1"], h2.vms["vm2"]
    net = sdk(lab_)
    ports = [net.create_port(project_id="alice", binding_host_id=host, binding_profile={"interface": iface})
             for host, iface in (("h1", vm1.tap), ("h2", vm2.tap), ("h3", "montap"))]
    service = net.create_tap_service(project_id="alice", port_id=ports[2].id)
    one, two = (net.create_tap_flow(project_id="alice", tap_service_id=service.id, source_port=p.id, direction="OUT")
                for p in ports[:2])
    active(net, one, two)
    with copies(lab_.monitor, tmp_path) as seen:
        streams = [udp(vm1.ns, vm1.host_ip, 4000, 500), udp(vm2.ns, vm2.host_ip, 4000, 500)]  # 8 s each
        time.sleep(1)
        h2.kill9()
        began, logged = time.monotonic(), len(h2.log())
        reason = wait(lambda: status(net, two), lambda st: st[0] == "ERROR", DOWN_TIME + 3, "h2's flow")[1]
        assert reason.startswith("host h2: its agent is dead") and time.monotonic() - began < DOWN_TIME + 3
        assert status(net, one) == ("ACTIVE", None)  # h1 and h3 are alive
        h2.start(pg.url(lab_.pg_ip), agent_down_time=DOWN_TIME)
        h2.wait_up()
        active(net, two)
        assert [s.wait(30) for s in streams] == [0, 0]
    assert {src: n for (src, _), n in seen.items()} == {vm1.ip: 4000, vm2.ip: 4000}, where_lost(lab_)
    assert "drift" not in h2.log()[logged:]  # it adopted its rules, changing none
    net.delete_tap_service(service)


def test_postgres_restarted_during_a_stream(lab: tuple[Lab, Server], tmp_path: Path) -> None:
    lab_, pg = lab
    h1 = lab_.hosts["h1"]
    vm1 = h1.vms["vm1"]
    pids = {name: h.proc.pid for name, h in lab_.hosts.items() if h.proc}
    net = sdk(lab_)
    src, mon = (net.create_port(project_id="alice", binding_host_id=host, binding_profile={"interface": iface})
                for host, iface in (("h1", vm1.tap), ("h3", "montap")))
    service = net.create_tap_service(project_id="alice", port_id=mon.id)
    flow = net.create_tap_flow(project_id="alice", tap_service_id=service.id, source_port=src.id, direction="OUT")
    active(net, flow)
    with copies(lab_.monitor, tmp_path) as seen:
        stream = udp(vm1.ns, vm1.host_ip, 3000, 500)  # 6 s
        time.sleep(1)
        pg.restart()
        assert stream.wait(30) == 0
    assert {src: n for (src, _), n in seen.items()} == {vm1.ip: 3000}, where_lost(lab_)
    assert {name: h.proc.pid for name, h in lab_.hosts.items() if h.proc} == pids
    assert all(h.proc.poll() is None for h in lab_.hosts.values() if h.proc)
    # every agent is back on the database: a new flow turns ACTIVE through NOTIFY and both ends' passes
    net = wait(lambda: _retry(lambda: sdk(lab_)), lambda n: n is not None, 20, "the API after the restart")
    again = wait(lambda: _retry(lambda: net.create_tap_flow(project_id="alice", tap_service_id=service.id,
                                                            source_port=src.id, direction="IN")),
                 lambda f: f is not None, 20, "a create after the restart")
    active(net, again)
    for h in lab_.hosts.values():
        wait(lambda h=h: "listening for TaaS changes again" in h.log(), bool, 20, f"{h.name}'s listener")
    net.delete_tap_service(service)


def where_lost(lab: Lab) -> str:
    """For a failure's message: what each host's filters of ours counted (copies made, copies delivered), the
    monitor's drops, and the daemons' warnings, so that a lost copy can be placed."""
    lines = []
    for h in lab.hosts.values():
        for name, text in h.ours().items():
            lines += [f"{h.name} {name}: {x.strip()}" for x in text.splitlines() if "pkt" in x or "cookie" in x]
        lines += [f"{h.name} log: {x}" for x in h.log().splitlines() if " WARNING " in x and "heartbeat" not in x
                  and "notifications" not in x][-10:]
    lines.append("monitor m0: " + in_ns(lab.monitor, "ip", "-s", "link", "show", "m0"))
    return "\n".join(lines)


def _retry(call: Any) -> Any:
    """call(), or None when the API answered 5xx (its database connection was being replaced)."""
    try:
        return call()
    except openstack.exceptions.HttpException as e:
        if e.status_code is not None and e.status_code < 500:
            raise
        return None
