"""The reconciler across hosts (opentap/taas/crosshost.py, flowstatus.py) on the in-memory drivers: several hosts'
reconcilers over one database, each with its own kernel. A flow from a port on one host into a tap service on
another: the source's host mirrors into a sending tunnel, the service's host receives; the status follows both
ends and the other end's heartbeat; deletes leave nothing on either. The same on real kernels, in namespaces:
tests/system/test_taas_hosts.py."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from opentap.datapath.base import Tunnel
from opentap.taas.agents import HOSTS, Heartbeat
from opentap.taas.attributes import TAP_FLOWS, TAP_SERVICES
from opentap.taas.reconcile import Reconciler

from ..support.memdriver import Kernel, MemDriver, MemTunnels, Rule
from ..support.taasdb import TaasRows

IPS = {"h1": "198.18.10.1", "h2": "198.18.10.2", "h3": "198.18.10.3"}


@dataclass
class Host:
    name: str
    kernel: Kernel
    r: Reconciler
    tunnels: MemTunnels

    def tunnel(self, vni: int) -> str:
        return self.tunnels.name(vni)


def host(taas: TaasRows, name: str, *links: str, beat: bool = True) -> Host:
    kernel = Kernel(links=dict.fromkeys(links, True))
    tunnels = MemTunnels(kernel)
    r = Reconciler(taas.sessions, MemDriver(kernel), host=name, tunnels=tunnels, tunnel_ip=IPS[name], down_time=5)
    if beat:
        Heartbeat(taas.sessions, name, IPS[name], 1, lambda: {"datapath": True}).beat()
    return Host(name, kernel, r, tunnels)


def age(taas: TaasRows, name: str, seconds: float) -> None:
    """Make a host's last heartbeat this old (as if its agent had died then)."""
    with taas.sessions() as s, s.begin():
        s.execute(sa.update(HOSTS).where(HOSTS.c.host == name).values(heartbeat_at=HOSTS.c.heartbeat_at - seconds))


def across(taas: TaasRows, **flow: str) -> tuple[str, str, int]:
    """A tap service on h2's mon-tap and a flow into it from h1's vm1-tap: (service, flow, its VNI)."""
    service = taas.service(taas.port("mon-tap", host="h2"))
    made = taas.flow(service, taas.port("vm1-tap", host="h1"), **flow)
    with taas.sessions() as s:
        vni = s.execute(sa.text("SELECT tap_id FROM tap_services WHERE id = :id"), {"id": service}).scalar_one()
    return service, made, vni


def test_a_flow_across_hosts_is_active_once_both_ends_are_installed(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, vni = across(taas, direction="IN", vlan_filter="100")
    h1.r.run_once()
    assert h1.kernel.tunnels == {(b"test-device", vni): Tunnel(vni, IPS["h1"], remote=IPS["h2"])}
    slot = taas.flow_row(flow).slot
    assert h1.kernel.marked() == {("vm1-tap", slot): Rule(h1.tunnel(vni), "IN", False, "100", fits=1464)}
    assert taas.status(flow) == ("DOWN", None)  # the service's host has not said anything yet
    h2.r.run_once()
    assert h2.kernel.tunnels == {(b"test-device", vni): Tunnel(vni, IPS["h2"], deliver="mon-tap")}
    assert h2.kernel.marked() == {}  # no mirror there: the receiving tunnel delivers
    assert taas.status(flow) == ("ACTIVE", None)
    h1.r.run_once(full=True)
    h2.r.run_once(full=True)
    assert h1.tunnels.made == h2.tunnels.made == 1 and h1.r.drift == h2.r.drift == 0


def test_each_end_says_what_is_wrong_on_its_host(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2")  # mon-tap is not on h2 (yet)
    _, flow, vni = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    assert taas.status(flow) == ("ERROR", "host h2: the tap service port's interface mon-tap does not exist")
    h1.r.run_once(full=False)  # the source's host does not overwrite the other end's reason
    assert taas.status(flow)[0] == "ERROR" and taas.flow_row(flow).source_side == "ok"
    h2.kernel.plug("mon-tap")
    h2.r.run_once(full=False)
    assert taas.status(flow) == ("ACTIVE", None)
    h1.kernel.unplug("vm1-tap")
    h1.r.run_once(full=False)
    assert taas.status(flow) == ("ERROR", "host h1: the source port's interface vm1-tap does not exist")


def test_an_end_whose_agent_is_dead_or_absent_is_an_error_naming_its_host(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, _ = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    assert taas.status(flow) == ("ACTIVE", None)
    age(taas, "h2", 60)  # h2's agent died a minute ago; its tunnel (and the copies) are still there
    h1.r.run_once(full=False)
    status, reason = taas.status(flow)
    assert status == "ERROR" and reason.startswith("host h2: its agent is dead (no heartbeat for 6")
    Heartbeat(taas.sessions, "h2", IPS["h2"], 1, lambda: {"datapath": True}).beat()  # it came back
    h2.r.run_once()
    assert taas.status(flow) == ("ACTIVE", None)
    orphan = taas.flow(taas.service(taas.port("mon2", host="h9")), taas.port("vm1-tap", host="h1"))
    h1.r.run_once(full=False)
    assert taas.status(orphan) == ("ERROR", "host h9 has no agent (no daemon of that host name has registered)")


def test_one_service_fed_from_two_hosts_has_one_receiving_tunnel(taas: TaasRows) -> None:
    h1, h2, h3 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap"), host(taas, "h3", "vm3-tap")
    service, one, vni = across(taas)
    two = taas.flow(service, taas.port("vm3-tap", host="h3"), direction="OUT")
    local = taas.flow(service, taas.port("vm2-tap", host="h2"))
    h2.kernel.plug("vm2-tap")
    for h in (h1, h2, h3):
        h.r.run_once()
    assert list(h2.kernel.tunnels.values()) == [Tunnel(vni, IPS["h2"], deliver="mon-tap")]
    assert list(h3.kernel.tunnels.values()) == [Tunnel(vni, IPS["h3"], remote=IPS["h2"])]
    assert h2.kernel.marked() == {("vm2-tap", taas.flow_row(local).slot): Rule("mon-tap", "BOTH")}
    assert [taas.status(f) for f in (one, two, local)] == [("ACTIVE", None)] * 3
    taas.delete(TAP_FLOWS, two)  # h2 keeps receiving for h1's flow
    h3.r.run_once(full=False)
    h2.r.run_once(full=False)
    assert taas.flow_row(two) is None and h3.kernel.tunnels == {} and h3.kernel.marked() == {}
    assert len(h2.kernel.tunnels) == 1


def test_deleting_leaves_no_tunnel_and_no_rule_on_any_host(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    service, flow, _ = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    taas.delete(TAP_FLOWS, flow)
    h2.r.run_once(full=False)  # the service's host neither removes the source's mirror nor the row
    assert taas.status(flow)[0] == "PENDING_DELETE" and h2.kernel.tunnels == {}
    h1.r.run_once(full=False)
    assert taas.flow_row(flow) is None and h1.kernel.tunnels == {} and h1.kernel.marked() == {}
    again = taas.flow(service, taas.port("vm1-tap", host="h1"))
    h1.r.run_once(full=False)
    h2.r.run_once(full=False)
    assert taas.status(again) == ("ACTIVE", None)
    taas.delete(TAP_SERVICES, service)
    h1.r.run_once(full=False)
    h2.r.run_once(full=False)
    assert (h1.kernel.tunnels, h1.kernel.marked(), h2.kernel.tunnels) == ({}, {}, {})
    assert set(h1.kernel.links) == {"vm1-tap"} and set(h2.kernel.links) == {"mon-tap"}


def test_a_flow_whose_source_host_is_dead_is_deleted_by_the_other_end(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, _ = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    age(taas, "h1", 60)
    taas.delete(TAP_FLOWS, flow)
    h2.r.run_once(full=False)
    assert taas.flow_row(flow) is None and h2.kernel.tunnels == {}
    assert h1.kernel.marked() != {}  # h1's mirror is left until h1 comes back ...
    again = Reconciler(taas.sessions, MemDriver(h1.kernel), host="h1", tunnels=MemTunnels(h1.kernel),
                       tunnel_ip=IPS["h1"])
    again.run_once()  # ... and its first (full) pass removes what no flow wants
    assert h1.kernel.marked() == {} and h1.kernel.tunnels == {} and again.counts()["drift"] == 2


def test_a_restart_adopts_the_tunnels_and_mirrors_without_touching_them(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, _ = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    before = (dict(h1.kernel.tunnels), h1.kernel.marked(), dict(h2.kernel.tunnels))
    h1.kernel.changes.clear()
    tunnels1, tunnels2 = MemTunnels(h1.kernel), MemTunnels(h2.kernel)
    for name, kernel, tunnels in (("h1", h1.kernel, tunnels1), ("h2", h2.kernel, tunnels2)):
        Reconciler(taas.sessions, MemDriver(kernel), host=name, tunnels=tunnels, tunnel_ip=IPS[name]).run_once()
    assert (dict(h1.kernel.tunnels), h1.kernel.marked(), dict(h2.kernel.tunnels)) == before
    assert h1.kernel.changes == [] and tunnels1.made == tunnels2.made == 0
    assert taas.status(flow) == ("ACTIVE", None)


def test_a_tunnel_removed_behind_our_back_is_made_again_with_its_mirrors(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, vni = across(taas)
    h1.r.run_once()
    h2.r.run_once()
    wanted = h1.kernel.marked()
    h1.kernel.tunnels.clear()  # someone ran `ip link del` on it
    h1.kernel.unplug(h1.tunnel(vni))
    h1.r.run_once(full=True)
    assert h1.kernel.marked() == wanted and len(h1.kernel.tunnels) == 1 and h1.r.counts()["drift"] >= 1
    assert taas.status(flow) == ("ACTIVE", None)


def test_a_host_without_a_tunnel_address_says_so(taas: TaasRows) -> None:
    h1, h2 = host(taas, "h1", "vm1-tap"), host(taas, "h2", "mon-tap")
    _, flow, _ = across(taas)
    h1.r.tunnel_ip = None
    h1.r.run_once()
    h2.r.run_once()
    assert taas.status(flow) == ("ERROR", "host h1: this host (h1) has no tunnel_ip in its config")
    assert h1.kernel.tunnels == {} and h1.kernel.marked() == {}
