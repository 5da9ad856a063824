"""The tc datapath on real traffic: a monitoring namespace M receives copies of what machine A sends (OUT),
receives (IN) or both, through filters the driver installs on A's host-side veth; other tc rules are untouched."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentap.datapath.base import Mirror
from opentap.datapath.tc import PRIO_BASE, TcDriver

from ..support.mirrorlab import copies, mirrored, monitoring, tc_rules
from ..support.netns import A_IP, B_IP, Lan
from ..support.traffic import tagged_frame

pytestmark = pytest.mark.root


@pytest.fixture
def monitor(lan: Lan) -> Iterator[tuple[str, str]]:
    with monitoring(lan) as m:
        yield m


@pytest.fixture
def driver() -> Iterator[TcDriver]:
    d = TcDriver(owner=os.urandom(16))
    yield d
    d.close()


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
    assert driver.installed(lan.ha) == {(lan.ha, 5): driver.expected(Mirror(5, lan.ha, host, "OUT")),
                                        (lan.ha, 6): driver.expected(Mirror(6, lan.ha, host, "IN"))}
    assert mirrored(lan, ns, tmp_path) == {A_IP: 20, B_IP: 30}
    driver.remove(lan.ha, 5)
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 30}
    driver.remove(lan.ha, 6)
    assert mirrored(lan, ns, tmp_path) == {A_IP: 0, B_IP: 0}
    shown = subprocess.run(["tc", "filter", "show", "dev", lan.ha, "ingress"], capture_output=True, text=True).stdout
    assert "pref 7 " in shown and "mirred" not in shown


def test_vlan_filter_reads_inline_tags(lan: Lan, monitor: tuple[str, str], driver: TcDriver, tmp_path: Path) -> None:
    """Frames the host itself writes to A's interface keep their tag in the bytes (a veth moves it to metadata
    only on receive, which test_datapath_api covers): the filter program reads it there too."""
    ns, host = monitor
    driver.install(Mirror(9, lan.ha, host, "IN", vlan_filter="100,300-310"))
    sources = {100: "198.18.1.1", 200: "198.18.1.2", 305: "198.18.1.3", None: "198.18.1.4"}
    with copies(ns, tmp_path) as seen, socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((lan.ha, 0))
        for vlan, src in sources.items():
            for _ in range(10):
                raw.send(tagged_frame(vlan, src, A_IP))
    assert seen == {("198.18.1.1", 100): 10, ("198.18.1.3", 305): 10}


def test_two_mirrors_on_one_hook(lan: Lan, monitor: tuple[str, str], driver: TcDriver, tmp_path: Path) -> None:
    """Two tap flows of what A sends, to two services: both get every copy (a mirror must not end the hook's
    classification, or the first would hide the packets from the second)."""
    ns, host = monitor
    with monitoring(lan, "n") as (ns2, host2):
        driver.install(Mirror(1, lan.ha, host, "OUT"))
        driver.install(Mirror(2, lan.ha, host2, "OUT"))
        with copies(ns, tmp_path) as seen, copies(ns2, tmp_path) as seen2:
            lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 64)
        assert seen == seen2 == {(A_IP, None): 20}


def test_two_owners_share_a_priority(lan: Lan, monitor: tuple[str, str], driver: TcDriver, tmp_path: Path) -> None:
    """Two devices, each its own driver, with a mirror at the same slot on the same interface and hook: each sees
    only its own, and removing or re-installing one's leaves the other's filter (the same kernel object) alone."""
    ns, host = monitor
    other = TcDriver(owner=os.urandom(16))
    try:
        with monitoring(lan, "n") as (ns2, host2):
            mine, theirs = Mirror(0, lan.ha, host, "OUT"), Mirror(0, lan.ha, host2, "BOTH", vlan_filter="7")
            driver.install(mine)
            other.install(theirs)
            assert driver.installed(lan.ha) == {(lan.ha, 0): driver.expected(mine)}
            assert other.installed(lan.ha) == {(lan.ha, 0): other.expected(theirs)}
            theirs_before = [r for r in tc_rules(lan.ha) if r.cookie == other.owner.hex()]
            assert len(theirs_before) == 2 and {r.pref for r in tc_rules(lan.ha)} == {PRIO_BASE}
            driver.install(mine)  # again: ours replaced, theirs not
            driver.remove(lan.ha, 0)
            assert [r for r in tc_rules(lan.ha) if r.cookie != other.owner.hex()] == []
            assert [r for r in tc_rules(lan.ha) if r.cookie == other.owner.hex()] == theirs_before
            driver.install(mine)
            with copies(ns, tmp_path) as seen, copies(ns2, tmp_path) as seen2, \
                    socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
                raw.bind((lan.ha, 0))
                for vlan in (7, 8):
                    raw.send(tagged_frame(vlan, "198.18.1.1", A_IP))
            assert seen == {} and seen2 == {("198.18.1.1", 7): 1}  # IN frames: only theirs (BOTH) copies
    finally:
        other.close()


def test_copies_too_large_for_a_tunnel_are_counted(lan: Lan, monitor: tuple[str, str], driver: TcDriver,
                                                   tmp_path: Path) -> None:
    """A mirror into a tunnel (fits: the largest frame the tunnel carries in one outer packet) still copies every
    frame, and its second filter counts those longer than fits: at 300, a 300-byte frame fits, a 301-byte one does
    not. The count goes with the rules."""
    ns, host = monitor
    mirror = Mirror(4, lan.ha, host, "OUT", fits=300)
    driver.install(mirror)
    assert driver.installed(lan.ha) == {(lan.ha, 4): driver.expected(mirror)}
    assert len(driver.expected(mirror)) == 2  # the hook's two programs: fits, and larger
    with copies(ns, tmp_path) as seen:
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 300 - 42)  # Ethernet 14 + IPv4 20 + UDP 8 + payload
        lan.run(lan.ns_a, "udp", B_IP, 5000, 7, 301 - 42)
    assert seen == {(A_IP, None): 27}
    driver.survey(lan.ha)
    assert driver.oversize() == 7
    driver.remove(lan.ha, 4)
    driver.survey(lan.ha)
    assert driver.oversize() == 0 and driver.installed(lan.ha) == {}


def _rx(ns: str) -> tuple[int, int]:
    stats = [int(subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/m0/statistics/{c}"],
                                check=True, capture_output=True, text=True).stdout) for c in ("rx_packets", "rx_bytes")]
    return stats[0], stats[1]


def test_gso_copies_are_judged_by_their_segments(lan: Lan, monitor: tuple[str, str], driver: TcDriver) -> None:
    """A TCP stream crosses A's port as GSO super-packets (TSO on the veth: skbs far longer than any frame). Into a
    tunnel that carries A's full-size frame (fits = MTU 1500 + 14) none of them is oversize, though each skb is
    longer than fits: the tunnel keeps them whole and the underlay never fragments them. One byte less, and every
    full-size segment is counted (tc counts a super-packet as its segments)."""
    ns, host = monitor
    nbytes, mss = 3_000_000, 1448  # 1500 - IPv4 20 - TCP 20 - timestamps 12
    for fits, oversize in ((1514, lambda n: n == 0), (1513, lambda n: n >= nbytes // mss * 9 // 10)):
        mirror = Mirror(5, lan.ha, host, "OUT", fits=fits)
        driver.install(mirror)
        before = _rx(ns)
        server = lan.spawn(lan.ns_b, "tcpserve", 6001, 10)
        lan.run(lan.ns_a, "tcp", B_IP, 6001, nbytes)
        assert server.wait(15) == 0
        packets, size = (after - was for after, was in zip(_rx(ns), before, strict=True))
        assert size >= nbytes and size / packets > fits  # the copies were super-packets, on average
        driver.survey(lan.ha)
        assert oversize(driver.oversize()), (fits, driver.oversize(), packets)
        driver.remove(lan.ha, 5)
