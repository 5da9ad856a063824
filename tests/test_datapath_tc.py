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
from opentap.datapath.tc import TcDriver

from .mirrorlab import copies, mirrored, monitoring
from .netns import A_IP, B_IP, Lan
from .traffic import tagged_frame

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
