"""Whose tc rules are whose: a device marks its mirrors with its id (opentap/identity.py), so it clears the ones
it made before it lost its database, never touches another device's on the same host, nor anyone's hand-made
rules, and takes over the unmarked mirrors its previous version made."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opentap.datapath.tc import HOOKS, PRIO_BASE
from opentap.datapath.tcfilters import FilterSocket
from opentap.identity import device_id
from opentap.taas.reconcile import Reconciler

from ..support.daemon import running
from ..support.mirrorlab import ALICE, copies, create, make_port, mirrored, monitoring, tc_rules, wait_for, wait_status
from ..support.netns import A_IP, B_IP, Lan

pytestmark = pytest.mark.root
BOB = {"X-Auth-Token": "tok-bob"}
MATCH_ALL = "1,6 0 0 4294967295"  # tc's notation for the classic program `ret -1`


@pytest.fixture
def monitor(lan: Lan) -> Iterator[tuple[str, str]]:
    with monitoring(lan) as m:
        yield m


def tc(*args: str, check: bool = True) -> None:
    subprocess.run(["tc", *args], check=check, capture_output=True)


def marked_anywhere(owner: bytes) -> list[tuple[str, int]]:
    """(interface, priority) of every filter on the host carrying this cookie, on every interface."""
    found, filters = [], FilterSocket()
    try:
        for index, name in socket.if_nameindex():
            for parent in HOOKS.values():
                with contextlib.suppress(OSError):  # no clsact qdisc
                    found += [(name, f.prio) for f in filters.dump(index, parent) if f.cookie == owner]
    finally:
        filters.close()
    return found


def flow(api: httpx.Client, source: str, target: str, direction: str) -> dict:
    ts = create(api, "tap_services", port_id=make_port(api, "monitor", target))
    tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=make_port(api, "src", source),
                direction=direction)
    return wait_status(api, "tap_flows", tf["id"], "ACTIVE")


def test_lost_database_leaves_no_mirror(lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:
    """Alice mirrors A and B to M; the database is lost; the daemon comes back with an empty one: its old
    mirrors go from every interface (no port names them now), and Bob, given ports on the old source and target
    interfaces by an admin, with tap services there, receives nothing of Alice's traffic."""
    ns, host = monitor
    with running(tmp_path) as d, httpx.Client(base_url=d.url, timeout=10) as api:
        ts = create(api, "tap_services", port_id=make_port(api, "monitor", host))
        # B's flow copies VLAN 100 only: none of the (untagged) test traffic, which A's flow copies once already
        for port, extra in ((make_port(api, "a", lan.ha), {"direction": "BOTH"}),
                            (make_port(api, "b", lan.hb), {"direction": "OUT", "vlan_filter": "100"})):
            tf = create(api, "tap_flows", tap_service_id=ts["id"], source_port=port, **extra)
            wait_status(api, "tap_flows", tf["id"], "ACTIVE")
        assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
        owner = device_id(tmp_path / "data")
        d.stop()
        (tmp_path / "opentap.db").unlink()
        assert sorted(marked_anywhere(owner)) == [(lan.ha, PRIO_BASE)] * 2 + [(lan.hb, PRIO_BASE + 1)]
        d.start()
        wait_for(lambda: marked_anywhere(owner), lambda found: not found, 5)
        assert [r for ifname in (lan.ha, lan.hb, host) for r in tc_rules(ifname)] == []
        for iface in (lan.ha, host):
            port = make_port(api, "bob", iface, project="bob")
            create(api, "tap_services", headers=BOB, port_id=port)
        assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}
        assert api.get("/v2.0/taas/tap_flows", headers=ALICE).json()["tap_flows"] == []
    log = (tmp_path / "daemon.log").read_text()
    assert log.count("drift: removing our rules") == 2, log


def test_two_devices_share_an_interface(lan: Lan, tmp_path: Path) -> None:
    """Two devices on one host (own config, data dir, database and port) mirror A: their filters share a
    priority on A's interface. Each one's full passes (forced by a restart, proved by the stray rule of its own
    it then removes from another interface) leave the other's filters as they are, and deleting one's flow
    removes its filter only; each monitor gets its copies throughout."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    with monitoring(lan, "m") as (ns1, host1), monitoring(lan, "n") as (ns2, host2), \
            running(one) as d1, running(two) as d2, \
            httpx.Client(base_url=d1.url, timeout=10) as api1, httpx.Client(base_url=d2.url, timeout=10) as api2:
        f1, _f2 = flow(api1, lan.ha, host1, "OUT"), flow(api2, lan.ha, host2, "BOTH")
        ids = {d1: device_id(one / "data"), d2: device_id(two / "data")}
        rules = tc_rules(lan.ha)
        assert sorted((r.hook, r.pref, r.cookie) for r in rules) == sorted([
            ("egress", PRIO_BASE, ids[d2].hex()), ("ingress", PRIO_BASE, ids[d1].hex()),
            ("ingress", PRIO_BASE, ids[d2].hex())])

        def copied() -> tuple[dict, dict]:
            with copies(ns1, tmp_path) as seen1, copies(ns2, tmp_path) as seen2:
                lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
                lan.run(lan.ns_b, "udp", A_IP, 5001, 30, 64)
            return seen1, seen2

        assert copied() == ({(A_IP, None): 20}, {(A_IP, None): 20, (B_IP, None): 30})
        tc("qdisc", "add", "dev", lan.hb, "clsact", check=False)
        for d, host, prio in ((d1, host1, PRIO_BASE + 7), (d2, host2, PRIO_BASE + 8)):
            d.stop()
            tc("filter", "add", "dev", lan.hb, "egress", "prio", str(prio), "protocol", "all", "bpf", "bytecode",
               MATCH_ALL, "action", "mirred", "egress", "mirror", "dev", host, "cookie", ids[d].hex())
            d.start()
            wait_for(lambda d=d: marked_anywhere(ids[d]), lambda found, p=prio: (lan.hb, p) not in found, 5)
            assert tc_rules(lan.ha) == rules  # the same filters and actions: none removed, changed or re-made
        assert api1.delete(f"/v2.0/taas/tap_flows/{f1['id']}", headers=ALICE).status_code == 204
        assert tc_rules(lan.ha) == [r for r in rules if r.cookie == ids[d2].hex()]
        assert copied() == ({}, {(A_IP, None): 20, (B_IP, None): 30})
    for d in (one, two):
        assert (d / "daemon.log").read_text().count("drift: removing our rules") == 1


def test_foreign_rules_are_never_touched(make_client, lan: Lan, monitor: tuple[str, str],  # noqa: ANN001
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Rules that are not ours, wherever they are: outside our range, inside it by hand (a mirror like ours
    without a cookie, on our port's interface), at the very priority of our flow, another device's: full passes,
    a restart's first pass (which replaces unmarked mirrors to our target only) and deleting our flow leave
    them as they were."""
    _ns, host = monitor
    stranger = "5a" * 16
    for ifname in (lan.ha, lan.hb):
        tc("qdisc", "add", "dev", ifname, "clsact")
    for ifname, hook, prio, rule in [
            (lan.ha, "ingress", 7, ["u32", "match", "ip", "dst", "198.19.255.1/32", "flowid", "1:1"]),
            (lan.ha, "ingress", PRIO_BASE + 5, ["u32", "match", "u32", "0", "0", "action", "mirred", "egress",
                                                "mirror", "dev", host]),
            (lan.ha, "egress", PRIO_BASE, ["bpf", "bytecode", MATCH_ALL, "action", "mirred", "egress", "mirror",
                                           "dev", lan.hb]),
            (lan.ha, "egress", PRIO_BASE + 9, ["bpf", "bytecode", MATCH_ALL, "action", "mirred", "egress", "mirror",
                                               "dev", host, "cookie", stranger]),
            (lan.hb, "egress", PRIO_BASE + 3, ["u32", "match", "u32", "0", "0", "flowid", "1:1"])]:
        tc("filter", "add", "dev", ifname, hook, "prio", str(prio), "protocol", "all", *rule)
    foreign = tc_rules(lan.ha) + tc_rules(lan.hb)
    assert len(foreign) == 5

    api = make_client()
    tf = create(api, "tap_services", port_id=make_port(api, "monitor", host))
    tf = create(api, "tap_flows", tap_service_id=tf["id"], source_port=make_port(api, "a", lan.ha), direction="BOTH")
    wait_status(api, "tap_flows", tf["id"], "ACTIVE")
    datapath = api.app.state.device.datapath
    owner = datapath.driver.owner.hex()

    def theirs() -> list:
        return [r for r in tc_rules(lan.ha) + tc_rules(lan.hb) if r.cookie != owner]

    ours = [r for r in tc_rules(lan.ha) if r.cookie == owner]
    assert sorted((r.hook, r.pref) for r in ours) == [("egress", PRIO_BASE), ("ingress", PRIO_BASE)]
    assert theirs() == foreign
    datapath.run_once(full=True)
    assert theirs() == foreign and datapath.drift == 0
    datapath.stop()  # as a restart: a new reconciler's first pass, with our rules gone meanwhile
    tc("filter", "del", "dev", lan.ha, "ingress", "prio", str(PRIO_BASE))
    tc("filter", "del", "dev", lan.ha, "egress", "prio", str(PRIO_BASE), "handle",
       next(r.handle for r in ours if r.hook == "egress"), "protocol", "all", "bpf")
    restarted = Reconciler(datapath.sessions, datapath.driver)
    restarted.run_once()
    assert theirs() == foreign and len([r for r in tc_rules(lan.ha) if r.cookie == owner]) == 2
    assert "1 unmarked rule(s) at slot 0" in caplog.text and "replaced" not in caplog.text
    assert api.delete(f"/v2.0/taas/tap_flows/{tf['id']}", headers=ALICE).status_code == 204
    restarted.run_once(full=True)
    assert tc_rules(lan.ha) + tc_rules(lan.hb) == foreign


def test_upgrade_replaces_unmarked_mirrors(lan: Lan, monitor: tuple[str, str], tmp_path: Path) -> None:
    """Rules the previous version made (u32, no cookie) for a flow that is still wanted: the first pass after
    the upgrade puts ours in their place, as ACTIVE, with no drift; mirroring goes on."""
    ns, host = monitor
    with running(tmp_path) as d, httpx.Client(base_url=d.url, timeout=10) as api:
        tf = flow(api, lan.ha, host, "BOTH")
        d.stop()
        for hook in ("ingress", "egress"):  # as the previous version left them
            tc("filter", "del", "dev", lan.ha, hook, "prio", str(PRIO_BASE))
            tc("filter", "add", "dev", lan.ha, hook, "prio", str(PRIO_BASE), "protocol", "all", "u32", "match", "u32",
               "0", "0", "classid", "1:1", "action", "mirred", "egress", "mirror", "dev", host)
        # (each hook's dump lists both hooks' u32 filters at a priority: they share their hash tables)
        assert {(r.pref, r.target, r.cookie) for r in tc_rules(lan.ha)} == {(PRIO_BASE, host, None)}
        d.start()
        owner = device_id(tmp_path / "data").hex()
        wait_for(lambda: tc_rules(lan.ha), lambda rules: [r.cookie for r in rules] == [owner] * 2, 5)
        assert wait_status(api, "tap_flows", tf["id"], "ACTIVE")["status_reason"] is None
        assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
    log = (tmp_path / "daemon.log").read_text()
    assert "replaced the 2 unmarked rule(s)" in log and "drift" not in log and "left alone" not in log

