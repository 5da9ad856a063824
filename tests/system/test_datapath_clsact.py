"""The clsact qdisc on the real kernel (issue 13, item 9): the driver removes the one it created once its last
filter is gone and nothing else is on it, and leaves alone any clsact someone else made or that holds anyone
else's filters, also after a restart (a new driver on the same ledger file)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentap.datapath.base import Mirror
from opentap.datapath.tc import TcDriver

from ..support.mirrorlab import monitoring
from ..support.netns import Lan

pytestmark = pytest.mark.root


@pytest.fixture
def monitor(lan: Lan) -> Iterator[str]:
    with monitoring(lan) as (_ns, host):
        yield host


def clsact(ifname: str) -> bool:
    out = subprocess.run(["tc", "qdisc", "show", "dev", ifname], capture_output=True, text=True, check=True).stdout
    return "qdisc clsact ffff:" in out


def tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, capture_output=True)


def driver(ledger: Path | None = None) -> TcDriver:
    return TcDriver(owner=os.urandom(16), ledger=ledger)


def test_the_clsact_we_made_goes_with_our_last_filter(lan: Lan, monitor: str, tmp_path: Path) -> None:
    ours = driver(tmp_path / "ledger.json")
    try:
        assert not clsact(lan.ha)
        ours.install(Mirror(1, lan.ha, monitor, "BOTH"))
        ours.install(Mirror(2, lan.ha, monitor, "IN", vlan_filter="7"))
        ours.install(Mirror(2, lan.ha, monitor, "IN", vlan_filter="8"))  # a re-install keeps the qdisc
        assert clsact(lan.ha)
        ours.remove(lan.ha, 1)
        assert clsact(lan.ha)  # our other mirror is still on it
        ours.remove(lan.ha, 2)
        assert not clsact(lan.ha)
        ours.remove(lan.ha, 2)  # again: nothing to do, no error
    finally:
        ours.close()


def test_a_clsact_someone_else_made_stays(lan: Lan, monitor: str) -> None:
    tc("qdisc", "add", "dev", lan.ha, "clsact")
    ours = driver()
    try:
        ours.install(Mirror(1, lan.ha, monitor, "OUT"))
        ours.remove(lan.ha, 1)
        assert clsact(lan.ha)
    finally:
        ours.close()


def test_our_clsact_stays_while_anyone_else_uses_it(lan: Lan, monitor: str) -> None:
    """Our qdisc, and on it a hand-made filter (and then another device's mirror): it stays while either is
    there, and goes at our next removal once they are gone."""
    ours, other = driver(), driver()
    try:
        ours.install(Mirror(1, lan.ha, monitor, "BOTH"))
        tc("filter", "add", "dev", lan.ha, "egress", "prio", "7", "protocol", "ip", "u32", "match", "ip", "dst",
           "198.19.255.1/32", "flowid", "1:1")
        ours.remove(lan.ha, 1)
        assert clsact(lan.ha) and "pref 7 " in subprocess.run(["tc", "filter", "show", "dev", lan.ha, "egress"],
                                                              capture_output=True, text=True).stdout
        tc("filter", "del", "dev", lan.ha, "egress", "prio", "7")
        ours.install(Mirror(1, lan.ha, monitor, "OUT"))
        other.install(Mirror(1, lan.ha, monitor, "IN"))  # another device, the same slot even
        ours.remove(lan.ha, 1)
        assert clsact(lan.ha) and other.installed(lan.ha) == {(lan.ha, 1): other.expected(Mirror(1, lan.ha, monitor,
                                                                                                   "IN"))}
        other.remove(lan.ha, 1)  # not its qdisc: it stays, empty
        assert clsact(lan.ha)
        ours.install(Mirror(3, lan.ha, monitor, "OUT"))
        ours.remove(lan.ha, 3)  # ours, and empty now
        assert not clsact(lan.ha)
    finally:
        ours.close()
        other.close()


def test_a_restarted_driver_knows_the_clsact_it_made(lan: Lan, monitor: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.json"
    owner = os.urandom(16)
    before = TcDriver(owner, ledger)
    before.install(Mirror(4, lan.ha, monitor, "OUT"))
    before.close()
    after = TcDriver(owner, ledger)  # the daemon restarted: the same device, a new process
    try:
        after.remove(lan.ha, 4)
        assert not clsact(lan.ha) and after.installed(lan.ha) == {}
    finally:
        after.close()


def test_a_recreated_interface_is_not_ours(lan: Lan, monitor: str, tmp_path: Path) -> None:
    """The ledger names an interface by index and name: the same name on a new link (its old qdisc went with the
    old link) is someone else's clsact now."""
    ledger = tmp_path / "ledger.json"
    owner = os.urandom(16)
    first = TcDriver(owner, ledger)
    first.install(Mirror(1, lan.ha, monitor, "OUT"))
    first.close()
    subprocess.run(["ip", "link", "del", lan.ha], check=True)
    lan.plug(lan.ha)
    tc("qdisc", "add", "dev", lan.ha, "clsact")  # someone's, on the new link
    again = TcDriver(owner, ledger)
    try:
        again.install(Mirror(1, lan.ha, monitor, "OUT"))
        again.remove(lan.ha, 1)
        assert clsact(lan.ha)
    finally:
        again.close()
