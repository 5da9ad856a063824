"""Test hosts in network namespaces: two machines on a bridge, with the host ends as observation points.

    ns A (a0 198.18.0.1) --veth-- HA --+
                                       bridge BR
    ns B (b0 198.18.0.2) --veth-- HB --+

IPv6 is off and neighbours are static, so the only packets on the wire are the ones a test sends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TRAFFIC = str(Path(__file__).with_name("traffic.py"))
A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def sysctl(key: str, value: str, ns: str | None = None) -> None:
    argv = ["sysctl", "-qw", f"{key}={value}"]
    subprocess.run(["ip", "netns", "exec", ns, *argv] if ns else argv, check=True, capture_output=True)


def counters(iface: str) -> dict[str, int]:
    base = Path(f"/sys/class/net/{iface}/statistics")
    return {k: int((base / k).read_text()) for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")}


@dataclass
class Lan:
    prefix: str

    @property
    def ns_a(self) -> str:
        return f"{self.prefix}a"

    @property
    def ns_b(self) -> str:
        return f"{self.prefix}b"

    @property
    def ha(self) -> str:
        return f"{self.prefix}ha"

    @property
    def hb(self) -> str:
        return f"{self.prefix}hb"

    @property
    def br(self) -> str:
        return f"{self.prefix}br"

    def up(self) -> None:
        self.down()
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            sysctl("net.ipv6.conf.all.disable_ipv6", "1", ns)
            sysctl("net.ipv6.conf.default.disable_ipv6", "1", ns)
            ip("link", "set", "lo", "up", ns=ns)
        ip("link", "add", self.br, "type", "bridge")
        for host_end in (self.ha, self.hb):
            self.plug(host_end)
        sysctl(f"net.ipv6.conf.{self.br}.disable_ipv6", "1")
        ip("link", "set", self.br, "up")
        time.sleep(0.2)  # let the links settle before anything is counted

    def plug(self, host_end: str) -> None:
        """(Re)make a machine's link: the veth, its address, and static neighbours on both sides."""
        peer, ns, addr = (("a0", self.ns_a, A_IP) if host_end == self.ha else ("b0", self.ns_b, B_IP))
        ip("link", "add", host_end, "type", "veth", "peer", "name", peer, "netns", ns)
        sysctl(f"net.ipv6.conf.{host_end}.disable_ipv6", "1")
        ip("link", "set", host_end, "master", self.br)
        ip("link", "set", host_end, "up")
        sysctl(f"net.ipv6.conf.{peer}.disable_ipv6", "1", ns)
        ip("addr", "add", f"{addr}/24", "dev", peer, ns=ns)
        ip("link", "set", peer, "up", ns=ns)
        self._neighbours("a0", "b0", A_IP, B_IP)

    def _neighbours(self, dev_a: str, dev_b: str, a_ip: str, b_ip: str) -> None:
        """Static ARP entries (when both ends exist), so no ARP packet is ever counted."""
        try:
            mac_a, mac_b = self.mac(self.ns_a, "a0"), self.mac(self.ns_b, "b0")
        except subprocess.CalledProcessError:
            return  # the other machine's link is not made yet
        ip("neigh", "replace", b_ip, "lladdr", mac_b, "dev", dev_a, "nud", "permanent", ns=self.ns_a)
        ip("neigh", "replace", a_ip, "lladdr", mac_a, "dev", dev_b, "nud", "permanent", ns=self.ns_b)

    def mac(self, ns: str, dev: str) -> str:
        return json.loads(ip("-j", "link", "show", dev, ns=ns))[0]["address"]

    def down(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for dev in (self.ha, self.hb, self.br):
            ip("link", "del", dev, check=False)

    def run(self, ns: str, *args: str | int, timeout: float = 30, cpu: int | None = None) -> dict:
        out = subprocess.run(_traffic(ns, cpu, args), check=True, capture_output=True, text=True, timeout=timeout)
        return json.loads(out.stdout)

    def spawn(self, ns: str, *args: str | int, cpu: int | None = None) -> subprocess.Popen:
        return subprocess.Popen(_traffic(ns, cpu, args), stdout=subprocess.PIPE, text=True)


def _traffic(ns: str, cpu: int | None, args: tuple[str | int, ...]) -> list[str]:
    """The traffic tool in a namespace; with cpu, kept on that CPU. A sender that moves between CPUs mid-stream
    leaves its packets on two CPUs' backlogs, and the far end of a veth may then see them in another order than
    the near end (a FIN overtaking the last data segment, say): tests that compare two capture points pin it."""
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return ["ip", "netns", "exec", ns, *pin, sys.executable, TRAFFIC, *map(str, args)]


def prefix() -> str:
    return f"ot{os.getpid() % 100000}"
